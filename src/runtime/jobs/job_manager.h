// JobManager: recipes, training jobs and models inside the trusted runtime (docs/training.md).
//
// Recipes are stored sealed (store::BlobKind::kRecipe, id = hex SHA-256 of the shared object:
// the public commitment owners see); chirond's built-in recipes belong to kBuiltinPrincipal.
// A training job runs on the manager's training thread: the owner's dataset is decrypted inside
// the runtime, the recipe's declarations are read through a sandboxed worker, and a
// train::TrainingSession trains with the runtime owning parameters and optimizer. Progress,
// owner-only metrics and the job's state are kept in the job's sealed record after every epoch;
// checkpoints are sealed in the store, so a chirond restarted mid-job resumes from the last one.
// Between saves, owners' views (GetJob, ListOwnerJobs, WaitForJob) also carry live progress
// (samples and batches done, rate) refreshed every few batches in memory; providers' never do.
// A finished job leaves a model (sealed parameters and buffers) that only its owner, and the
// principals the owner grants access (store grants), can query through Predict: the provider's
// output policy narrowed by the owner's limits (top-k, rounding, label only), the model's query
// budget (and a grant's), and a per-principal rate limit (RateLimiter). The owner alone may
// Evaluate (aggregate metrics on one of its labelled datasets), change limits, grant, revoke and
// delete. Nobody can download a model's parameters or a recipe's code: no method returns them.
//
// Authorisation by role happens in the services; the manager scopes every lookup to the calling
// principal (an owner's jobs and models, a provider's recipes' jobs): another principal's object
// is reported as not found.
//
// Thread safety: all methods are safe to call concurrently. Sandboxed workers are started only on
// the manager's own long-lived threads (a worker dies with the thread that started it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/jobs/rate_limiter.h"
#include "runtime/jobs/records.h"
#include "runtime/store/store.h"
#include "runtime/train/metrics.h"
#include "runtime/train/prediction_session.h"
#include "runtime/train/worker_settings.h"

namespace chiron::jobs {

struct JobManagerOptions {
  train::WorkerSettings worker;
  // Built-in recipes: every chiron_recipe_<name>.so in this directory is registered as <name>.
  std::string recipes_dir;
  uint64_t query_budget = 100000;        // predictions per model
  uint64_t checkpoint_every_steps = 200;  // also the granularity of cancellation
  uint64_t max_recipe_size = uint64_t{64} << 20;
  uint32_t max_predict_batch = 256;
  // The rate limiter's clock (tests inject one); null: std::chrono::steady_clock.
  RateLimiter::Clock clock;
  // Live progress of a running job (Jobs.Watch): at most every this many batches and this
  // interval, whichever comes later (train::TrainingOptions).
  uint32_t progress_every_batches = 10;
  std::chrono::milliseconds progress_interval{500};
};

// What `chiron model limit` changes; unset fields stay as they are.
struct ModelLimitsUpdate {
  std::optional<uint64_t> query_budget;     // at most JobManagerOptions::query_budget
  std::optional<uint32_t> rate_per_minute;  // 0: no rate limit
  std::optional<train::OutputLimits> output;
};

// A model shared with a grantee: what the grantee may know of it, and its grant.
struct SharedModel {
  ModelRecord model;
  store::ModelGrant grant;
};

struct StartTrainingArgs {
  std::string dataset_name;
  std::string recipe;  // recipe id (hex) or name (newest registration of that name)
  std::string model_name;
  double validation_fraction = 0.1;
  uint32_t epochs = 0;  // 0: the recipe's
  uint64_t seed = 0;
};

struct PredictOutput {
  std::vector<std::vector<train::ClassScore>> predictions;
  train::OutputPolicy policy;  // what was applied (label_only: no probabilities may be sent)
  // The owner: the model's use and budget. A grantee: its grant's (budget 0: no grant budget).
  uint64_t queries_used = 0;
  uint64_t query_budget = 0;
};

class JobManager {
 public:
  JobManager(store::Store* store, JobManagerOptions options);
  ~JobManager();  // Stop()
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Registers the built-in recipes, re-queues jobs a previous run left queued or running (they
  // resume from their last checkpoint) and starts the threads.
  Status Start();
  // Stops the threads; a running job's worker is killed and the job stays "running" in the
  // store, to be resumed by the next Start().
  void Stop();

  Result<RecipeRecord> RegisterRecipe(const std::string& provider_id, const std::string& name,
                                      const std::string& version, const std::string& description,
                                      ByteSpan shared_object);
  Result<std::vector<RecipeRecord>> ListRecipes();

  Result<JobRecord> StartTraining(const std::string& owner_id, const StartTrainingArgs& args);
  Result<JobRecord> GetJob(const std::string& owner_id, const std::string& job_id);
  Result<std::vector<JobRecord>> ListOwnerJobs(const std::string& owner_id);
  // Jobs that run recipes registered by `provider_id`.
  Result<std::vector<JobRecord>> ListProviderJobs(const std::string& provider_id);
  Result<JobRecord> CancelJob(const std::string& owner_id, const std::string& job_id);
  // Blocks until the job's record is newer than *version (0: return at once) or `deadline`;
  // sets *version to the returned record's version.
  Result<JobRecord> WaitForJob(const std::string& owner_id, const std::string& job_id,
                               uint64_t* version, std::chrono::steady_clock::time_point deadline);

  Result<std::vector<ModelRecord>> ListModels(const std::string& owner_id);
  Status DeleteModel(const std::string& owner_id, const std::string& name);
  // Predictions from `owner_id`'s model (empty owner_id: the caller's own). A caller other than
  // the owner needs a grant; without one the model is reported NotFound, exactly as a model
  // that does not exist. ResourceExhausted for a spent budget (model or grant) or the rate
  // limit (the message says when to retry). Every accepted query is audited in the owner's
  // chain, and a grantee's also in its own.
  Result<PredictOutput> Predict(const std::string& caller_id, const std::string& owner_id,
                                const std::string& model_name,
                                const std::vector<std::string>& samples, uint32_t top_k);
  // Owner only (the model is looked up among the caller's own).
  Result<ModelRecord> SetModelLimits(const std::string& owner_id, const std::string& name,
                                     const ModelLimitsUpdate& update);
  Result<store::ModelGrant> GrantModel(const std::string& owner_id, const std::string& name,
                                       const std::string& grantee_id, uint64_t budget);
  Status RevokeModel(const std::string& owner_id, const std::string& name,
                     const std::string& grantee_id);
  Result<std::vector<store::ModelGrant>> ListModelGrants(const std::string& owner_id,
                                                         const std::string& name);
  // Models other owners granted to `grantee_id` (grants whose model is gone are skipped).
  Result<std::vector<SharedModel>> ListSharedModels(const std::string& grantee_id);
  uint32_t max_predict_batch() const { return options_.max_predict_batch; }

  Result<train::ClassificationReport> Evaluate(const std::string& owner_id,
                                               const std::string& model_name,
                                               const std::string& dataset_name);

 private:
  Status RegisterBuiltins();
  Result<RecipeRecord> FindRecipe(const std::string& id_or_name);
  Result<JobRecord> LoadJob(const std::string& job_id);
  Status SaveJob(const JobRecord& record, const std::optional<store::AuditEvent>& audit = {});
  Result<ModelRecord> LoadModel(const std::string& owner_id, const std::string& name);
  // Puts a running job's live progress (owner-only fields) over its stored record.
  void OverlayLiveProgress(JobRecord& record);
  void TrainingLoop();
  void RunJob(const std::string& job_id);
  void PredictionLoop();
  // Runs `task` on the prediction thread and waits for it.
  Status OnPredictionThread(const std::function<Status()>& task);
  Result<train::PredictionSession*> SessionFor(const ModelRecord& model);

  store::Store* store_;
  JobManagerOptions options_;

  std::mutex mutex_;
  std::condition_variable changed_;  // job versions, queue, stop
  std::map<std::string, uint64_t> versions_;
  // Running jobs' progress between saves (owner-only fields of JobRecord, never JobFacts').
  struct LiveProgress {
    uint64_t samples_done = 0;
    uint64_t batches_done = 0;
    double samples_per_second = 0;
    uint64_t elapsed_seconds = 0;
  };
  std::map<std::string, LiveProgress> live_;
  std::deque<std::string> queue_;
  // Jobs whose owner asked to cancel them; the training thread checks it at every checkpoint and
  // never writes the flag back to false (its in-memory record may predate the request).
  std::set<std::string> cancelled_;
  bool stopping_ = false;
  std::thread training_thread_;

  RateLimiter limiter_;
  // Serialises the read-check-update of models' query counters (and grants' charges).
  std::mutex usage_mutex_;

  std::mutex prediction_mutex_;
  std::condition_variable prediction_cv_;
  std::deque<std::function<void()>> prediction_tasks_;
  bool prediction_stopping_ = false;
  std::thread prediction_thread_;
  // Used only on the prediction thread: the most recently used model's live worker.
  std::string session_model_id_;
  uint64_t session_generation_ = 0;
  std::unique_ptr<train::PredictionSession> session_;
};

}  // namespace chiron::jobs
