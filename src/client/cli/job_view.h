// What the training-related commands (train, job, model, predict) share: names of job states and
// failure categories with advice for the user, printing of accuracy / per-class accuracy /
// confusion matrices, JSON forms of the API's views, following a job live (Jobs.Watch) with a
// progress display, and finding a model's info by name.
//
// Everything printed here comes from the runtime's own views (OwnerJobView, EvaluationReport,
// ModelInfo); the provider's recipe never contributes text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chiron/v1/jobs.pb.h"
#include "chiron/v1/models.pb.h"
#include "client/connection.h"
#include "shared/base/status.h"

namespace chiron::client {

// "queued", "running", "succeeded", "failed", "cancelled".
std::string JobStateName(v1::JobState state);
// "none", "crashed", "out-of-memory", "time-limit", "invalid-output", "numerical-error",
// "recipe-rejected", "sandbox-violation", "internal".
std::string FailureName(v1::FailureCategory failure);
// One sentence: what happened and what to do next (e.g. "... try fewer --epochs").
std::string FailureAdvice(v1::FailureCategory failure);
bool IsFinished(v1::JobState state);

// Class names for `count` classes: `names` where present, else the class index.
std::vector<std::string> ClassLabels(const std::vector<std::string>& names, size_t count);

// Prints "accuracy", per-class accuracy (with class names) and the confusion matrix (rows: true
// class, columns: predicted class) to stdout. `confusion` is row-major class × class; it is
// skipped (with a note) if its size is not a square of the class count.
void PrintClassMetrics(const std::vector<std::string>& class_names,
                       const std::vector<double>& per_class_accuracy,
                       const std::vector<uint64_t>& confusion);

nlohmann::json OwnerJobViewJson(const v1::OwnerJobView& view,
                                const std::vector<std::string>& class_names);
nlohmann::json ModelInfoJson(const v1::ModelInfo& info);

// The owner's model called `name` (Models.List). NotFound saying how to list models.
// The caller's jobs (Jobs.ListOwnerJobs). Defined in job_command.cc.
Result<std::vector<v1::OwnerJobView>> ListJobs(Connection& connection);
// The caller's job whose id is `id` or starts with it (at least 6 characters, unambiguous);
// NotFound names `program job list`. Defined in job_command.cc.
Result<v1::OwnerJobView> FindJob(Connection& connection, const std::string& id,
                                 const std::string& program);

Result<v1::ModelInfo> FindModel(Connection& connection, const std::string& name,
                                const std::string& program);

struct WatchOptions {
  std::string program = "chiron";
  bool print_epochs = true;  // one plain line per finished epoch on stdout (off for --json)
};

// Follows a job with Jobs.Watch until it finishes (or the stream ends), showing progress: a
// live bar on stderr when it is a terminal (epoch k/N, samples, rate, ETA, train loss,
// validation accuracy) and one plain line per finished epoch. Returns the last view received.
// Ctrl-C stops watching only: the job keeps running and the message says how to watch it again.
Result<v1::OwnerJobView> WatchJob(Connection& connection, const v1::OwnerJobView& start,
                                  const WatchOptions& options);

// Prints the end of a job for a person: state, failure with advice, or the final validation
// metrics (class names from the trained model when it exists). Returns the exit code:
// kExitOk for a succeeded job, kExitJobFailed otherwise.
int ReportFinishedJob(Connection& connection, const v1::OwnerJobView& view, bool json,
                      const std::string& program);

}  // namespace chiron::client
