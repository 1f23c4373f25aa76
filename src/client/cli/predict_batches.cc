#include "client/cli/predict_batches.h"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

#include "chiron/v1/models.grpc.pb.h"

namespace chiron::client {
namespace {

constexpr size_t kSamplesPerRequest = 64;
// The runtime's waits are at most a minute (a request never exceeds the per-minute limit); a
// larger one is not believed (a broken or hostile server must not park the client for hours).
constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::minutes(2);

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// Tells `on_wait`, then sleeps `wait`, or less if Ctrl-C comes first (then returns false). The
// handler is in place before anyone is told of the wait; SIGINT's previous disposition is
// restored afterwards, so Ctrl-C outside waits behaves as before.
bool InterruptibleSleep(std::chrono::milliseconds wait,
                        const std::function<void(std::chrono::milliseconds)>& on_wait) {
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  g_interrupted = 0;
  const bool installed = ::sigaction(SIGINT, &action, &previous) == 0;
  if (on_wait) on_wait(wait);
  const auto until = std::chrono::steady_clock::now() + wait;
  while (g_interrupted == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  if (installed) ::sigaction(SIGINT, &previous, nullptr);
  return g_interrupted == 0;
}

// The server's `retry-after-ms`, if it sent one we believe (1 ms .. kMaxRetryAfter).
std::chrono::milliseconds RetryAfter(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kRetryAfterMetadata);
  if (it == trailers.end()) return std::chrono::milliseconds(0);
  const char* begin = it->second.data();
  const char* end = begin + it->second.size();
  int64_t millis = 0;
  auto [at, error] = std::from_chars(begin, end, millis);
  if (error != std::errc() || at != end || millis <= 0 ||
      millis > static_cast<int64_t>(kMaxRetryAfter.count())) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::milliseconds(millis);
}

PredictStop Classify(const Status& status, std::chrono::milliseconds retry_after) {
  switch (status.code()) {
    case StatusCode::kResourceExhausted:
      // A rate refusal carries a wait, except for a request the limit can never pass; its text
      // names the per-minute limit either way. Everything else exhausted is a query budget.
      return retry_after.count() > 0 || status.message().find("per minute") != std::string::npos
                 ? PredictStop::kRateLimit
                 : PredictStop::kBudget;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return PredictStop::kConnection;
    default:
      return PredictStop::kError;
  }
}

// The checks every answered batch passes before its answers are kept.
Status CheckAnswer(const v1::PredictResponse& response, size_t sent, uint32_t classes) {
  if (static_cast<size_t>(response.predictions_size()) != sent) {
    return DataLossError("Models.Predict answered " + std::to_string(response.predictions_size()) +
                         " predictions for " + std::to_string(sent) + " samples");
  }
  for (const v1::Prediction& prediction : response.predictions()) {
    if (response.label_only()
            ? (prediction.classes_size() != 1 || prediction.probabilities_size() != 0)
            : prediction.classes_size() != prediction.probabilities_size()) {
      return DataLossError("Models.Predict answered classes and probabilities that do not "
                           "match its output policy");
    }
    for (int k = 0; k < prediction.classes_size(); ++k) {
      if (classes > 0 && prediction.classes(k) >= classes) {
        return DataLossError("Models.Predict answered an out-of-range class");
      }
    }
    for (float p : prediction.probabilities()) {
      if (!(p >= 0.0f && p <= 1.0f)) {
        return DataLossError("Models.Predict answered an out-of-range probability");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

const char* PredictStopName(PredictStop stop) {
  switch (stop) {
    case PredictStop::kNone: return "";
    case PredictStop::kRateLimit: return "rate_limit";
    case PredictStop::kBudget: return "budget";
    case PredictStop::kConnection: return "connection";
    case PredictStop::kInterrupted: return "interrupted";
    case PredictStop::kInvalidAnswer: return "invalid_answer";
    case PredictStop::kError: return "error";
  }
  return "error";
}

size_t BatchSize(const v1::ModelInfo& model) {
  size_t batch = kSamplesPerRequest;
  if (model.max_batch() > 0) batch = std::min<size_t>(batch, model.max_batch());
  if (model.rate_per_minute() > 0) batch = std::min<size_t>(batch, model.rate_per_minute());
  return std::max<size_t>(batch, 1);
}

std::string WaitText(std::chrono::milliseconds wait) {
  const double seconds = static_cast<double>(wait.count()) / 1000.0;
  char text[32];
  if (seconds < 10.0) {
    std::snprintf(text, sizeof text, "%.1f s", std::ceil(seconds * 10.0) / 10.0);
  } else {
    std::snprintf(text, sizeof text, "%.0f s", std::ceil(seconds));
  }
  return text;
}

PredictRun SendPredictions(Connection& connection, const v1::ModelInfo& model,
                           const std::vector<std::string>& samples, const std::string& owner_id,
                           uint32_t top_k, const PredictPacing& pacing) {
  auto stub = v1::Models::NewStub(connection.channel());
  PredictRun run;
  const uint32_t classes =
      model.class_names_size() > 0 ? model.class_names_size() : model.output_size();
  const size_t batch = BatchSize(model);
  size_t start = 0;
  while (start < samples.size()) {
    const size_t end = std::min(samples.size(), start + batch);
    v1::PredictRequest request;
    request.set_model_name(model.name());
    request.set_owner_id(owner_id);
    request.set_top_k(top_k);
    for (size_t i = start; i < end; ++i) request.add_samples(samples[i]);
    v1::PredictResponse response;
    auto context = connection.NewContext();
    Status status = FromGrpc(stub->Predict(context.get(), request, &response), "Models.Predict");
    if (!status.ok()) {
      const std::chrono::milliseconds retry_after = RetryAfter(*context);
      const PredictStop stop = Classify(status, retry_after);
      if (stop == PredictStop::kRateLimit && retry_after.count() > 0 && !pacing.no_wait) {
        if (InterruptibleSleep(retry_after, pacing.on_wait)) continue;  // the same batch again
        run.stop = PredictStop::kInterrupted;
        run.stopped = CancelledError("interrupted while waiting " + WaitText(retry_after) +
                                     " for the rate limit of model '" + model.name() + "'");
        return run;
      }
      run.stop = stop;
      run.stopped = status;
      run.retry_after = stop == PredictStop::kRateLimit ? retry_after
                                                        : std::chrono::milliseconds(0);
      return run;
    }
    Status checked = CheckAnswer(response, end - start, classes);
    if (!checked.ok()) {
      run.stop = PredictStop::kInvalidAnswer;
      run.stopped = checked;
      return run;
    }
    for (const v1::Prediction& prediction : response.predictions()) {
      run.predictions.push_back(prediction);
    }
    run.label_only = response.label_only();
    run.queries_used = response.queries_used();
    run.query_budget = response.query_budget();
    start = end;
  }
  return run;
}

}  // namespace chiron::client
