// TrainingQueue: the owners' training jobs, from acceptance to a model (docs/training.md).
//
// StartTraining checks the request, reserves the model name (no other unfinished job of the owner
// may train a model of that name, and no model of that name may exist) and stores the job's
// sealed record. `slots` runner threads take queued jobs in a fair order: the oldest job of the
// owner with the fewest running jobs and, among those, of the owner served longest ago, so one
// owner's backlog (or one provider's slow recipe) cannot keep another owner's job queued behind
// all of it: a job waits for at most one job per other owner with queued work per free slot,
// each bounded by its time budget. A job run:
//
//   load   the dataset is decrypted inside the runtime (LoadDataset); the recipe's declarations
//          are read through a sandboxed worker with no data (DescribeRecipe)
//   limits the job's wall-clock and memory budget: the recipe's declared ResourceBudget, or the
//          operator's limits where it declares none; a declaration above the operator's limits
//          fails the job (kRecipeRejected) before any data reaches the recipe
//   train  a train::TrainingSession whose worker is killed when the budget's time runs out or
//          its resident memory exceeds the budget; progress, owner-only metrics and the job's
//          state are saved in the sealed record after every epoch; checkpoints are sealed in
//          the store, so a chirond restarted mid-job resumes from the last one
//   model  a finished job leaves a model (sealed parameters) under the reserved name
//
// Stopping: CancelJob kills a running job's worker at once (the job ends cancelled within about
// a second, or as soon as a worker being started says hello: at most WorkerSettings'
// start_timeout); Stop() kills every running worker, leaves those jobs "running" in the store,
// and the next Start() resumes them from their last checkpoint.
//
// What the provider sees of a job is computed from its record by ProviderFacts
// (provider_facts.h); nothing here writes a worker-chosen value into a log line, an error or a
// record: the session's errors carry a fixed category and a reason from a closed list only.
//
// Thread safety: all public methods are safe to call concurrently. Workers are started only on
// the queue's own long-lived runner threads (a worker dies with the thread that started it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/jobs/node_dispatch.h"
#include "runtime/jobs/recipe_registry.h"
#include "runtime/jobs/records.h"
#include "runtime/store/store.h"
#include "runtime/train/worker_settings.h"

namespace chiron::jobs {

struct TrainingQueueOptions {
  train::WorkerSettings worker;
  uint64_t initial_query_budget = 100000;  // of every model a job creates
  uint64_t checkpoint_every_steps = 200;
  // Live progress of a running job (Jobs.Watch): at most every this many batches and this
  // interval, whichever comes later (train::TrainingOptions).
  uint32_t progress_every_batches = 10;
  std::chrono::milliseconds progress_interval{500};
  // Jobs trained at the same time (each a sandboxed worker with worker.threads threads).
  uint32_t slots = 2;
  // The operator's limits on one job; a recipe's declared budget may only lower them.
  uint64_t max_job_seconds = 6 * 3600;           // wall-clock over all of the job's runs
  uint64_t max_job_memory_size = uint64_t{8} << 30;  // resident bytes of the job's worker
  // How jobs on several nodes reach this node's cluster peers; null: this chirond is not in a
  // cluster and refuses jobs for more than one node.
  std::shared_ptr<NodeDispatcher> dispatcher;
  // A job on several nodes whose group breaks (a node lost, a peer's worker failed) or that finds
  // too few nodes is dispatched again from the ranks' common checkpoint, at most this many runs
  // in all; the waits between runs start at `redispatch_delay` and double up to 30 s (about four
  // minutes in all with the defaults: a node that restarts within them lets the job go on).
  uint32_t max_dispatch_attempts = 8;
  std::chrono::milliseconds redispatch_delay{2000};
};

struct StartTrainingArgs {
  std::string dataset_name;
  std::string recipe;  // recipe id (hex) or name (newest registration of that name)
  std::string model_name;
  double validation_fraction = 0.1;
  uint32_t epochs = 0;  // 0: the recipe's
  uint64_t seed = 0;
  ProviderView provider_view = ProviderView::kCoarse;
  uint32_t nodes = 1;       // ranks, this node included (docs/distributed.md)
  std::string node_policy;  // the owner's policy (JSON) every other node must pass
  uint32_t staleness = 0;   // with nodes > 1: 0 synchronous, 1..train::kMaxStaleness asynchronous
};

class TrainingQueue {
 public:
  TrainingQueue(store::Store* store, RecipeRegistry* recipes, TrainingQueueOptions options);
  ~TrainingQueue();  // Stop()
  TrainingQueue(const TrainingQueue&) = delete;
  TrainingQueue& operator=(const TrainingQueue&) = delete;

  // Re-queues the jobs a previous run left queued or running (they resume from their last
  // checkpoint) and starts the runner threads.
  Status Start();
  // Kills every running job's worker and joins the runners: bounded by about a second, or by
  // worker.start_timeout while a worker is being started. Stopped jobs stay "running" in the
  // store and resume at the next Start().
  void Stop();

  // InvalidArgument (names, fraction, epochs), NotFound (dataset, recipe), FailedPrecondition (an
  // incomplete upload), AlreadyExists (a model of that name, or an unfinished job training one).
  Result<JobRecord> StartTraining(const std::string& owner_id, const StartTrainingArgs& args);
  // The owner's views carry live progress between saves; NotFound for another owner's job.
  Result<JobRecord> GetJob(const std::string& owner_id, const std::string& job_id);
  Result<std::vector<JobRecord>> ListOwnerJobs(const std::string& owner_id);
  // Jobs that run recipes registered by `provider_id`: stored records only, no live progress
  // (see provider_facts.h for what may be shown of them).
  Result<std::vector<JobRecord>> ListProviderJobs(const std::string& provider_id);
  // A queued job ends cancelled at once; a running job's worker is killed and the job ends
  // cancelled as soon as its runner notices (about a second). Finished jobs are returned as is.
  Result<JobRecord> CancelJob(const std::string& owner_id, const std::string& job_id);
  // Blocks until the job's record is newer than *version (0: return at once) or `deadline`;
  // sets *version to the returned record's version. Unavailable once Stop() was called.
  Result<JobRecord> WaitForJob(const std::string& owner_id, const std::string& job_id,
                               uint64_t* version, std::chrono::steady_clock::time_point deadline);

  // Ids of the owner's unfinished jobs that read dataset `dataset_id`.
  Result<std::vector<std::string>> UnfinishedJobsReading(const std::string& owner_id,
                                                         const std::string& dataset_id);
  // Cancels those jobs (audited as the owner's) and waits until none of them runs any more, or
  // `deadline` (DeadlineExceeded).
  Status CancelJobsReading(const std::string& owner_id, const std::string& dataset_id,
                           std::chrono::steady_clock::time_point deadline);

  uint32_t running_count();  // jobs on a runner now (tests, metrics)

 private:
  // A job on a runner thread. Guarded by mutex_.
  struct Running {
    std::string owner_id;
    // Stops every worker of this run, also one still starting (CancelJob, Stop).
    std::shared_ptr<train::WorkerStopper> stopper;
  };
  // Running jobs' progress between saves (owner-only fields of JobRecord).
  struct LiveProgress {
    uint64_t samples_done = 0;
    uint64_t batches_done = 0;
    double samples_per_second = 0;
    uint64_t elapsed_seconds = 0;
  };

  Result<JobRecord> LoadJob(const std::string& job_id);
  // Writes the record (with a pending cancel request folded in) and wakes watchers.
  Status SaveJob(const JobRecord& record, const std::optional<store::AuditEvent>& audit = {});
  void OverlayLiveProgress(JobRecord& record);
  // Takes the next job in fair order (mutex_ held); false if none is queued.
  bool PickNext(std::string* job_id);
  void RunnerLoop();
  // training_run.cc: one run of a job, from load to model.
  void RunJob(const std::string& job_id);
  // The stopper of a job on a runner (PickNext made it). Runner thread only.
  std::shared_ptr<train::WorkerStopper> StopperOf(const std::string& job_id);
  bool CancelRequested(const std::string& job_id);
  bool Stopping();
  // Sleeps up to `delay`, less if the job is cancelled or chirond stops.
  void WaitUnlessInterrupted(const std::string& job_id, std::chrono::milliseconds delay);
  void PublishProgress(const std::string& job_id, const LiveProgress& progress);

  store::Store* store_;
  RecipeRegistry* recipes_;
  TrainingQueueOptions options_;

  // Serialises StartTraining's name reservation check with the record it writes.
  std::mutex reserve_mutex_;
  // Serialises every write of a job record (read-modify-write in CancelJob included), so a
  // cancel never writes back a stale state over a runner's final one.
  std::mutex save_mutex_;

  std::mutex mutex_;
  std::condition_variable changed_;  // job versions, queue, running set, stop
  std::map<std::string, uint64_t> versions_;
  std::map<std::string, LiveProgress> live_;
  std::deque<std::pair<std::string, std::string>> queue_;  // (job id, owner id), oldest first
  std::map<std::string, Running> running_;
  // When each owner's job last took a slot (PickNext's fairness), counted in picks.
  std::map<std::string, uint64_t> last_served_;
  uint64_t served_count_ = 0;
  // Jobs whose owner asked to cancel them; never erased while chirond runs (a runner's in-memory
  // record may predate the request, so every save folds it in).
  std::set<std::string> cancelled_;
  bool stopping_ = false;
  std::vector<std::thread> runners_;
};

}  // namespace chiron::jobs
