#include "runtime/train/prediction_session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "runtime/train/worker_client.h"
#include "shared/base/secret.h"

namespace chiron::train {
namespace {

class PredictionSessionImpl final : public PredictionSession {
 public:
  PredictionSessionImpl(std::unique_ptr<WorkerClient> worker, const PredictionOptions& options)
      : worker_(std::move(worker)), options_(options) {}

  Result<std::vector<float>> Predict(ByteSpan inputs, size_t count) override {
    if (count == 0 || count > options_.max_batch) {
      return InvalidArgumentError("predict: count must be in [1, " +
                                  std::to_string(options_.max_batch) + "]");
    }
    if (inputs.size() != count * worker_->sample_size()) {
      return InvalidArgumentError("predict: " + std::to_string(inputs.size()) +
                                  " bytes are not " + std::to_string(count) + " samples of " +
                                  std::to_string(worker_->sample_size()) + " bytes");
    }
    // The owner's inputs stay in the (cached) session's arena only while the worker predicts:
    // wiped on every path out, so the next request, or a later look at memory, finds nothing.
    std::span<uint8_t> arena = worker_->inputs();
    ScopedWipe wipe_inputs(arena.data(), inputs.size());
    std::memcpy(arena.data(), inputs.data(), inputs.size());
    return worker_->Predict(count, options_.max_abs_output);
  }

  uint64_t output_size() const override { return worker_->output_size(); }
  FailureCategory failure() const override { return worker_->failure(); }
  void Abort() override { worker_->Abort(); }
  uint64_t peak_resident_size() const override { return worker_->peak_resident_size(); }

 private:
  std::unique_ptr<WorkerClient> worker_;
  PredictionOptions options_;
};

}  // namespace

Result<std::unique_ptr<PredictionSession>> PredictionSession::Start(
    ByteSpan recipe, const dataset::DatasetSchema& schema, const TrainedModel& model,
    const PredictionOptions& options, FailureCategory* failure) {
  if (failure != nullptr) *failure = FailureCategory::kInternal;
  if (options.max_batch < 1 || options.max_batch > 65536) {
    return InvalidArgumentError("prediction: max_batch must be in [1, 65536]");
  }
  WorkerClientOptions worker_options;
  CHIRON_ASSIGN_OR_RETURN(worker_options.schema, RecipeSchemaFor(schema));
  worker_options.seed = options.seed;
  worker_options.max_batch = options.max_batch;
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> worker,
                          WorkerClient::Start(recipe, worker_options, options.worker, failure));
  if (worker->parameter_count() != model.parameters.size() ||
      worker->buffer_count() != model.buffers.size()) {
    if (failure != nullptr) *failure = FailureCategory::kNone;
    // Neither layout is quoted: both counts were chosen by workers running the recipe.
    return RefuseWorker(WorkerRefusal::kModelLayout);
  }
  if (worker->output_size() != schema.class_count()) {
    if (failure != nullptr) *failure = FailureCategory::kRecipeRejected;
    return RefuseWorker(WorkerRefusal::kOutputClasses);
  }
  // The worker maps the parameter arena read-only; the model is written once, here.
  std::span<float> state = worker->state();
  // std::copy: a model may have no buffers, and memcpy may not be given a null pointer.
  std::copy(model.parameters.begin(), model.parameters.end(), state.data());
  std::copy(model.buffers.begin(), model.buffers.end(), state.data() + model.parameters.size());
  if (failure != nullptr) *failure = FailureCategory::kNone;
  return std::unique_ptr<PredictionSession>(new PredictionSessionImpl(std::move(worker), options));
}

OutputPolicy EffectiveOutputPolicy(const chiron::OutputPolicy& provider,
                                   const OutputLimits& owner, uint32_t requested_top_k,
                                   uint64_t output_size) {
  OutputPolicy policy;
  policy.label_only = provider.kind != chiron::OutputKind::kScores || owner.label_only;
  uint64_t k = requested_top_k == 0 ? kDefaultTopK : requested_top_k;
  if (provider.max_top_k != 0) k = std::min<uint64_t>(k, provider.max_top_k);
  if (owner.max_top_k != 0) k = std::min<uint64_t>(k, owner.max_top_k);
  k = std::max<uint64_t>(1, std::min<uint64_t>(k, output_size));
  policy.top_k = policy.label_only ? 1 : static_cast<uint32_t>(k);
  int decimals = static_cast<int>(std::min(provider.decimals, chiron::kMaxOutputDecimals));
  if (owner.decimals >= 0) decimals = std::min(decimals, static_cast<int>(owner.decimals));
  policy.decimals = decimals;
  return policy;
}

std::vector<ClassScore> ApplyOutputPolicy(std::span<const float> logits,
                                          const OutputPolicy& policy) {
  if (policy.label_only) {
    if (logits.empty()) return {};
    auto best = std::max_element(logits.begin(), logits.end());  // first of equals
    return {ClassScore{static_cast<uint32_t>(best - logits.begin()), 0.0}};
  }
  std::vector<ClassScore> scores(logits.size());
  if (logits.empty()) return scores;
  const float top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    scores[i].class_index = static_cast<uint32_t>(i);
    scores[i].probability = std::exp(static_cast<double>(logits[i]) - top);
    sum += scores[i].probability;
  }
  for (ClassScore& s : scores) s.probability /= sum;
  std::stable_sort(scores.begin(), scores.end(), [](const ClassScore& a, const ClassScore& b) {
    return a.probability > b.probability;
  });
  if (policy.top_k != 0 && policy.top_k < scores.size()) scores.resize(policy.top_k);
  if (policy.decimals >= 0) {
    const double scale = std::pow(10.0, std::min(policy.decimals, 12));
    for (ClassScore& s : scores) s.probability = std::round(s.probability * scale) / scale;
  }
  return scores;
}

}  // namespace chiron::train
