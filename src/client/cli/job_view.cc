#include "client/cli/job_view.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "client/cli/cli_common.h"

namespace chiron::client {
namespace {

std::string Clock(uint64_t seconds) {
  char text[32];
  if (seconds >= 3600) {
    std::snprintf(text, sizeof text, "%llu:%02llu:%02llu",
                  static_cast<unsigned long long>(seconds / 3600),
                  static_cast<unsigned long long>(seconds / 60 % 60),
                  static_cast<unsigned long long>(seconds % 60));
  } else {
    std::snprintf(text, sizeof text, "%llu:%02llu", static_cast<unsigned long long>(seconds / 60),
                  static_cast<unsigned long long>(seconds % 60));
  }
  return text;
}

std::string Count(double value) {
  char text[32];
  if (value >= 1e6) {
    std::snprintf(text, sizeof text, "%.1fM", value / 1e6);
  } else if (value >= 1e4) {
    std::snprintf(text, sizeof text, "%.1fk", value / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.0f", value);
  }
  return text;
}

int TerminalWidth() {
  struct winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 100;
}

// Ctrl-C while watching: the job is the server's, not this process's. Say so and how to come
// back (async-signal-safe: a preformatted message and write(2)).
char g_interrupt_message[512];
size_t g_interrupt_message_size = 0;

void OnInterrupt(int) {
  ssize_t ignored = ::write(STDERR_FILENO, g_interrupt_message, g_interrupt_message_size);
  (void)ignored;
  ::_exit(130);
}

class InterruptNotice {
 public:
  InterruptNotice(const std::string& job_id, const std::string& program) {
    std::string message = "\n" + program + ": stopped watching; job " + job_id +
                          " keeps running on the server. Follow it with `" + program +
                          " job watch " + job_id + "` or stop it with `" + program +
                          " job cancel " + job_id + "`.\n";
    g_interrupt_message_size = std::min(message.size(), sizeof g_interrupt_message);
    std::memcpy(g_interrupt_message, message.data(), g_interrupt_message_size);
    struct sigaction action{};
    action.sa_handler = OnInterrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptNotice() { ::sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_{};
};

// The live progress line on stderr (terminals only), redrawn a few times a second so elapsed
// time and ETA move between the server's updates. Plain per-epoch lines go to stdout through
// PrintLine, which clears the bar first so the two never interleave.
class TrainingProgress {
 public:
  TrainingProgress() : enabled_(::isatty(STDERR_FILENO) == 1) {
    if (enabled_) ticker_ = std::thread([this] { Tick(); });
  }
  ~TrainingProgress() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (ticker_.joinable()) ticker_.join();
    std::lock_guard lock(mutex_);
    ClearLocked();
  }

  void Update(const v1::OwnerJobView& view) {
    std::lock_guard lock(mutex_);
    view_ = view;
    have_view_ = true;
    received_ = std::chrono::steady_clock::now();
    DrawLocked();
  }

  void PrintLine(const std::string& line) {
    std::lock_guard lock(mutex_);
    ClearLocked();
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    DrawLocked();
  }

 private:
  void Tick() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      if (!stop_) DrawLocked();
    }
  }

  void ClearLocked() {
    if (!drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

  void DrawLocked() {
    if (!enabled_ || !have_view_ || IsFinished(view_.state())) return;
    double since_update =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - received_).count();
    double elapsed = view_.elapsed_seconds() + since_update;
    double fraction = 0;
    if (view_.samples_total() > 0) {
      fraction = static_cast<double>(view_.samples_done()) / view_.samples_total();
    } else if (view_.epochs_total() > 0) {
      fraction = static_cast<double>(view_.epochs_done()) / view_.epochs_total();
    }
    fraction = std::clamp(fraction, 0.0, 1.0);
    // Rate from the server's own clock: its measured training rate (live progress, every few
    // batches), else samples done over the job's elapsed seconds.
    double rate = view_.samples_per_second() > 0 ? view_.samples_per_second()
                  : view_.elapsed_seconds() > 0 && view_.samples_done() > 0
                      ? static_cast<double>(view_.samples_done()) / view_.elapsed_seconds()
                      : 0;
    if (!std::isfinite(rate) || rate < 0) rate = 0;  // the server's number, shown, never trusted
    std::string eta = "--:--";
    if (rate > 0 && view_.samples_total() >= view_.samples_done()) {
      double left = (view_.samples_total() - view_.samples_done()) / rate - since_update;
      eta = Clock(static_cast<uint64_t>(std::clamp(left, 0.0, 1e9)));
    }
    // The bar takes whatever width the facts leave (up to 20 columns; none below 5).
    const size_t width = static_cast<size_t>(TerminalWidth() - 1);
    std::string head;
    std::string tail;
    char line[512];
    if (view_.state() == v1::JOB_STATE_QUEUED) {
      head = "queued: waiting for the runtime's training thread";
    } else if (view_.epochs_total() == 0) {
      head = "starting: decrypting the dataset, loading the recipe in the sandbox";
    } else {
      uint32_t epoch = std::min(view_.epochs_done() + 1, view_.epochs_total());
      head = "epoch " + std::to_string(epoch) + "/" + std::to_string(view_.epochs_total());
      // The batch within the epoch, from the live progress (servers before it send none).
      const uint64_t per_epoch = view_.batches_per_epoch();
      if (per_epoch > 0 && view_.batches_done() <= view_.batches_total()) {
        const uint64_t in_epoch = std::min<uint64_t>(
            view_.batches_done() - std::min<uint64_t>(view_.batches_done(),
                                                      uint64_t{view_.epochs_done()} * per_epoch),
            per_epoch);
        head += " batch " + std::to_string(in_epoch) + "/" + std::to_string(per_epoch);
      }
      std::snprintf(line, sizeof line, "%3d%% %s/%s", static_cast<int>(fraction * 100),
                    Count(static_cast<double>(view_.samples_done())).c_str(),
                    Count(static_cast<double>(view_.samples_total())).c_str());
      tail = line;
      if (rate > 0) tail += " " + Count(rate) + "/s ETA " + eta;
    }
    tail += (tail.empty() ? "(" : " (") + Clock(static_cast<uint64_t>(elapsed)) + ")";
    if (!view_.history().empty()) {
      const v1::EpochMetrics& last = view_.history(view_.history_size() - 1);
      std::snprintf(line, sizeof line, " loss %.3f val acc %.3f", last.train_loss(),
                    last.validation_accuracy());
      tail += line;
    }
    std::string text = head + " " + tail;
    if (view_.epochs_total() > 0 && view_.state() != v1::JOB_STATE_QUEUED &&
        text.size() + 8 <= width) {
      size_t bar_width = std::min<size_t>(20, width - text.size() - 3);
      std::string bar(static_cast<size_t>(fraction * bar_width), '#');
      bar.resize(bar_width, '.');
      text = head + " [" + bar + "] " + tail;
    }
    if (text.size() > width) text.resize(width);
    std::fprintf(stderr, "\r%s\033[K", text.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  const bool enabled_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool drawn_ = false;
  bool have_view_ = false;
  v1::OwnerJobView view_;
  std::chrono::steady_clock::time_point received_;
  std::thread ticker_;
};

std::string EpochLine(const v1::EpochMetrics& epoch, uint32_t epochs_total, uint32_t elapsed) {
  char line[256];
  std::snprintf(line, sizeof line,
                "epoch %u/%u  train loss %.4f  validation loss %.4f  validation accuracy %.4f  "
                "(%s)",
                epoch.epoch(), epochs_total, epoch.train_loss(), epoch.validation_loss(),
                epoch.validation_accuracy(), Clock(elapsed).c_str());
  return line;
}

}  // namespace

std::string JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    case v1::JOB_STATE_ENDED: return "ended";  // a provider's done-only view
    default: return "unknown";
  }
}

std::string FailureName(v1::FailureCategory failure) {
  switch (failure) {
    case v1::FAILURE_NONE: return "none";
    case v1::FAILURE_CRASHED: return "crashed";
    case v1::FAILURE_OUT_OF_MEMORY: return "out-of-memory";
    case v1::FAILURE_TIME_LIMIT: return "time-limit";
    case v1::FAILURE_INVALID_OUTPUT: return "invalid-output";
    case v1::FAILURE_NUMERICAL_ERROR: return "numerical-error";
    case v1::FAILURE_RECIPE_REJECTED: return "recipe-rejected";
    case v1::FAILURE_SANDBOX_VIOLATION: return "sandbox-violation";
    case v1::FAILURE_INTERNAL: return "internal";
    default: return "unknown";
  }
}

std::string FailureAdvice(v1::FailureCategory failure) {
  switch (failure) {
    case v1::FAILURE_CRASHED:
      return "the recipe's sandboxed worker crashed. This is the recipe's fault, not your data's: "
             "choose another recipe (`chiron recipe list`) or report the recipe id to its "
             "provider.";
    case v1::FAILURE_OUT_OF_MEMORY:
      return "the recipe ran out of its memory budget. Choose a smaller recipe "
             "(`chiron recipe list` shows each budget) or ask the provider for a larger one.";
    case v1::FAILURE_TIME_LIMIT:
      return "the job ran past its time budget. Train for fewer --epochs or choose a faster "
             "recipe.";
    case v1::FAILURE_INVALID_OUTPUT:
      return "the recipe sent output that breaks the worker protocol, so the runtime stopped it. "
             "Report the recipe id to its provider and choose another recipe.";
    case v1::FAILURE_NUMERICAL_ERROR:
      return "the loss or the gradients became NaN or infinite. Try another --seed, or another "
             "recipe; report the recipe id to its provider if it persists.";
    case v1::FAILURE_RECIPE_REJECTED:
      return "the recipe did not load or refused this dataset's shape before seeing any data. "
             "Choose a recipe that fits the dataset (`chiron recipe list`).";
    case v1::FAILURE_SANDBOX_VIOLATION:
      return "the recipe tried a forbidden system call and the sandbox killed it; nothing left "
             "the sandbox. Do not use this recipe again; report its id to the provider.";
    case v1::FAILURE_INTERNAL:
      return "the runtime itself failed (not the recipe). Retry; if it persists, the operator "
             "should look at chirond's log.";
    default: return "";
  }
}

bool IsFinished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::vector<std::string> ClassLabels(const std::vector<std::string>& names, size_t count) {
  std::vector<std::string> labels;
  for (size_t i = 0; i < count; ++i) {
    labels.push_back(i < names.size() && !names[i].empty() ? names[i] : std::to_string(i));
  }
  return labels;
}

void PrintClassMetrics(const std::vector<std::string>& class_names,
                       const std::vector<double>& per_class_accuracy,
                       const std::vector<uint64_t>& confusion) {
  size_t classes = std::max(per_class_accuracy.size(), class_names.size());
  std::vector<std::string> labels = ClassLabels(class_names, classes);
  size_t label_width = 5;
  for (const std::string& label : labels) label_width = std::max(label_width, label.size());
  label_width = std::min<size_t>(label_width, 24);
  if (!per_class_accuracy.empty()) {
    std::printf("per-class accuracy:\n");
    for (size_t i = 0; i < per_class_accuracy.size(); ++i) {
      double accuracy = per_class_accuracy[i];
      std::string bar(static_cast<size_t>(std::clamp(accuracy, 0.0, 1.0) * 20 + 0.5), '#');
      std::printf("  %3zu %-*.*s %.4f  %s\n", i, static_cast<int>(label_width),
                  static_cast<int>(label_width), labels[i].c_str(), accuracy, bar.c_str());
    }
  }
  if (confusion.empty()) return;
  size_t n = per_class_accuracy.size();
  if (n == 0) {
    while (n * n < confusion.size()) ++n;
  }
  if (n * n != confusion.size()) {
    std::printf("(confusion matrix omitted: %zu entries for %zu classes)\n", confusion.size(), n);
    return;
  }
  labels = ClassLabels(class_names, n);
  uint64_t largest = *std::max_element(confusion.begin(), confusion.end());
  int width = std::max<int>(4, static_cast<int>(std::to_string(largest).size()) + 1);
  std::printf("confusion matrix (rows: true class, columns: predicted class):\n");
  std::printf("  %3s %-*s", "", static_cast<int>(label_width), "");
  for (size_t column = 0; column < n; ++column) std::printf("%*zu", width, column);
  std::printf("\n");
  for (size_t row = 0; row < n; ++row) {
    std::printf("  %3zu %-*.*s", row, static_cast<int>(label_width),
                static_cast<int>(label_width), labels[row].c_str());
    for (size_t column = 0; column < n; ++column) {
      std::printf("%*llu", width, static_cast<unsigned long long>(confusion[row * n + column]));
    }
    std::printf("\n");
  }
}

nlohmann::json OwnerJobViewJson(const v1::OwnerJobView& view,
                                const std::vector<std::string>& class_names) {
  nlohmann::json history = nlohmann::json::array();
  for (const v1::EpochMetrics& epoch : view.history()) {
    history.push_back({{"epoch", epoch.epoch()},
                       {"train_loss", epoch.train_loss()},
                       {"validation_loss", epoch.validation_loss()},
                       {"validation_accuracy", epoch.validation_accuracy()}});
  }
  nlohmann::json j = {
      {"job_id", view.job_id()},
      {"state", JobStateName(view.state())},
      {"failure", FailureName(view.failure())},
      {"epochs_done", view.epochs_done()},
      {"epochs_total", view.epochs_total()},
      {"samples_done", view.samples_done()},
      {"samples_total", view.samples_total()},
      {"history", history},
      {"per_class_accuracy", std::vector<double>(view.per_class_accuracy().begin(),
                                                 view.per_class_accuracy().end())},
      {"confusion_matrix", std::vector<uint64_t>(view.confusion_matrix().begin(),
                                                 view.confusion_matrix().end())},
      {"model_name", view.model_name()},
      {"dataset_name", view.dataset_name()},
      {"recipe_id", view.recipe_id()},
      {"train_loss", view.train_loss()},
      {"elapsed_seconds", view.elapsed_seconds()},
      {"batches_done", view.batches_done()},
      {"batches_total", view.batches_total()},
      {"batches_per_epoch", view.batches_per_epoch()},
      {"samples_per_second", view.samples_per_second()},
      {"budget_seconds", view.budget_seconds()},
      {"budget_memory_bytes", view.budget_memory_bytes()},
      {"provider_view",
       view.provider_view() == v1::PROVIDER_VIEW_DONE_ONLY ? "done-only" : "coarse"},
  };
  nlohmann::json nodes = nlohmann::json::array();
  for (const v1::JobNode& node : view.nodes()) {
    nodes.push_back({{"rank", node.rank()},
                     {"address", node.address()},
                     {"key_id", node.key_id()},
                     {"records", node.records()}});
  }
  j["nodes"] = nodes;
  j["dispatches"] = view.dispatches();
  j["staleness"] = view.staleness();
  if (!view.history().empty()) {
    j["validation_accuracy"] = view.history(view.history_size() - 1).validation_accuracy();
  }
  if (!class_names.empty()) j["class_names"] = class_names;
  return j;
}

nlohmann::json ModelInfoJson(const v1::ModelInfo& info) {
  return {{"name", info.name()},
          {"job_id", info.job_id()},
          {"recipe_id", info.recipe_id()},
          {"output_size", info.output_size()},
          {"queries_used", info.queries_used()},
          {"query_budget", info.query_budget()},
          {"created_unix", info.created_unix()},
          {"class_names",
           std::vector<std::string>(info.class_names().begin(), info.class_names().end())},
          {"input_shape",
           std::vector<uint32_t>(info.input_shape().begin(), info.input_shape().end())},
          {"input_type", info.input_type()},
          {"validation_accuracy", info.validation_accuracy()}};
}

Result<v1::ModelInfo> FindModel(Connection& connection, const std::string& name,
                                const std::string& program) {
  v1::ListModelsResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(FromGrpc(v1::Models::NewStub(connection.channel())
                                      ->List(context.get(), v1::ListModelsRequest(), &response),
                                  "Models.List"));
  for (const v1::ModelInfo& info : response.models()) {
    if (info.name() == name) return info;
  }
  return NotFoundError("you have no model named '" + name + "': `" + program +
                       " model list` shows yours; `" + program +
                       " train --dataset D --recipe R --model " + name + "` creates it");
}

Result<v1::OwnerJobView> WatchJob(Connection& connection, const v1::OwnerJobView& start,
                                  const WatchOptions& options) {
  InterruptNotice notice(start.job_id(), options.program);
  TrainingProgress progress;
  v1::OwnerJobView last = start;
  int printed_epochs = 0;
  v1::JobState printed_state = v1::JOB_STATE_UNSPECIFIED;
  uint32_t printed_dispatches = start.dispatches();
  auto show = [&](const v1::OwnerJobView& view) {
    if (options.print_epochs && view.dispatches() > printed_dispatches && printed_dispatches > 0) {
      progress.PrintLine("job " + view.job_id() +
                         ": a node was lost; handed to its nodes again "
                         "(dispatch " +
                         std::to_string(view.dispatches()) +
                         "), going on from the nodes' common checkpoint");
    }
    printed_dispatches = std::max(printed_dispatches, view.dispatches());
    if (options.print_epochs) {
      if (view.state() != printed_state && !IsFinished(view.state())) {
        progress.PrintLine("job " + view.job_id() + ": " + JobStateName(view.state()));
      }
      for (int i = printed_epochs; i < view.history_size(); ++i) {
        progress.PrintLine(EpochLine(view.history(i), view.epochs_total(),
                                     view.elapsed_seconds()));
      }
    }
    printed_state = view.state();
    printed_epochs = view.history_size();
    progress.Update(view);
  };
  show(start);
  if (IsFinished(start.state())) return start;

  // No deadline: a job may train for hours. The stream ends when the job finishes.
  grpc::ClientContext context;
  v1::JobRef ref;
  ref.set_job_id(start.job_id());
  auto reader = v1::Jobs::NewStub(connection.channel())->Watch(&context, ref);
  v1::OwnerJobView view;
  while (reader->Read(&view)) {
    if (!view.job_id().empty() && view.job_id() != start.job_id()) {
      context.TryCancel();
      return DataLossError("Jobs.Watch answered about job " + view.job_id() + " when asked for " +
                           start.job_id());
    }
    last = view;
    show(view);
    if (IsFinished(view.state())) {
      context.TryCancel();
      (void)reader->Finish();
      return last;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    Status error = FromGrpc(status, "Jobs.Watch");
    if (error.code() == StatusCode::kUnavailable) {
      return Status(error.code(), error.message() + "; the job keeps running on the server: `" +
                                      options.program + " job watch " + start.job_id() +
                                      "` follows it again");
    }
    return error;
  }
  if (!IsFinished(last.state())) {
    return UnavailableError("the server ended the watch while job " + start.job_id() + " is " +
                            JobStateName(last.state()) + "; `" + options.program +
                            " job watch " + start.job_id() + "` follows it again");
  }
  return last;
}

int ReportFinishedJob(Connection& connection, const v1::OwnerJobView& view, bool json,
                      const std::string& program) {
  std::vector<std::string> class_names;
  if (view.state() == v1::JOB_STATE_SUCCEEDED) {
    auto model = FindModel(connection, view.model_name(), program);
    if (model.ok()) class_names.assign(model->class_names().begin(), model->class_names().end());
  }
  int code = view.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitJobFailed;
  if (json) {
    std::cout << OwnerJobViewJson(view, class_names).dump(2) << "\n";
    if (code != kExitOk) {
      std::fprintf(stderr, "%s: job %s %s (%s): %s\n", program.c_str(), view.job_id().c_str(),
                   JobStateName(view.state()).c_str(), FailureName(view.failure()).c_str(),
                   FailureAdvice(view.failure()).c_str());
    }
    return code;
  }
  if (view.state() == v1::JOB_STATE_FAILED) {
    std::printf("job %s failed after %u of %u epochs: %s\n", view.job_id().c_str(),
                view.epochs_done(), view.epochs_total(), FailureName(view.failure()).c_str());
    std::fprintf(stderr, "%s: job %s failed (%s): %s\n", program.c_str(), view.job_id().c_str(),
                 FailureName(view.failure()).c_str(), FailureAdvice(view.failure()).c_str());
    return code;
  }
  if (view.state() == v1::JOB_STATE_CANCELLED) {
    std::printf("job %s was cancelled after %u of %u epochs\n", view.job_id().c_str(),
                view.epochs_done(), view.epochs_total());
    std::fprintf(stderr, "%s: job %s was cancelled; start a new one with `%s train`\n",
                 program.c_str(), view.job_id().c_str(), program.c_str());
    return code;
  }
  if (view.state() != v1::JOB_STATE_SUCCEEDED) {
    std::printf("job %s is %s (%u of %u epochs done); `%s job watch %s` follows it\n",
                view.job_id().c_str(), JobStateName(view.state()).c_str(), view.epochs_done(),
                view.epochs_total(), program.c_str(), view.job_id().c_str());
    return kExitOk;
  }
  std::printf("job %s succeeded in %s: model '%s' is ready\n", view.job_id().c_str(),
              Clock(view.elapsed_seconds()).c_str(), view.model_name().c_str());
  if (view.nodes_size() > 1) {
    std::printf("trained on %d nodes, each holding only its shard of the dataset%s:\n",
                view.nodes_size(),
                view.dispatches() > 1 ? (" (handed to them " + std::to_string(view.dispatches()) +
                                         " times: a node was lost and the job went on)")
                                            .c_str()
                                      : "");
    for (const v1::JobNode& node : view.nodes()) {
      std::printf("  rank %u  %s  key %.16s…  %llu records\n", node.rank(), node.address().c_str(),
                  node.key_id().c_str(), static_cast<unsigned long long>(node.records()));
    }
  }
  if (!view.history().empty()) {
    const v1::EpochMetrics& last = view.history(view.history_size() - 1);
    std::printf("validation accuracy: %.4f (validation loss %.4f, train loss %.4f, %u epoch%s)\n",
                last.validation_accuracy(), last.validation_loss(), last.train_loss(),
                view.epochs_done(), view.epochs_done() == 1 ? "" : "s");
  }
  PrintClassMetrics(class_names,
                    std::vector<double>(view.per_class_accuracy().begin(),
                                        view.per_class_accuracy().end()),
                    std::vector<uint64_t>(view.confusion_matrix().begin(),
                                          view.confusion_matrix().end()));
  std::printf(
      "next: `%s model evaluate %s --dataset TEST-SET` scores it on a held-out dataset; "
      "`%s predict %s --idx IMAGES` queries it\n",
      program.c_str(), view.model_name().c_str(), program.c_str(), view.model_name().c_str());
  return code;
}

}  // namespace chiron::client
