// JobManager: chirond's recipes, training jobs and models, in three parts (docs/training.md):
//
//   RecipeRegistry  recipe_registry.h   the providers' sealed recipes and the built-in ones
//   TrainingQueue   training_queue.h    jobs from acceptance to a model: fair slots, budgets,
//                                       cancel and stop by killing the worker, checkpoints
//   ModelAccess     model_access.h      predictions (request-isolated workers), evaluation,
//                                       limits, grants, deletion
//
// This class only builds the three from one set of options and starts and stops them together;
// the services call the parts through it. Authorisation by role happens in the services; the
// parts scope every lookup to the calling principal.
//
// Thread safety: all methods are safe to call concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/jobs/model_access.h"
#include "runtime/jobs/recipe_registry.h"
#include "runtime/jobs/training_queue.h"

namespace chiron::jobs {

struct JobManagerOptions {
  train::WorkerSettings worker;
  // Built-in recipes: every chiron_recipe_<name>.so in this directory is registered as <name>.
  std::string recipes_dir;
  uint64_t query_budget = 100000;         // predictions per model (initial and maximum)
  uint64_t checkpoint_every_steps = 200;
  uint64_t max_recipe_size = uint64_t{64} << 20;
  uint32_t max_predict_batch = 256;
  // The rate limiter's clock (tests inject one); null: std::chrono::steady_clock.
  RateLimiter::Clock clock;
  // Live progress of a running job (Jobs.Watch), see TrainingQueueOptions.
  uint32_t progress_every_batches = 10;
  std::chrono::milliseconds progress_interval{500};
  // Jobs trained at once, and the operator's limits on each (TrainingQueueOptions).
  uint32_t training_slots = 2;
  uint64_t max_job_seconds = 6 * 3600;
  uint64_t max_job_memory_size = uint64_t{8} << 30;
  // Request isolation of predictions (PredictionWorkers).
  PredictionIsolation prediction_isolation = PredictionIsolation::kPerPrincipal;
  uint32_t max_prediction_workers = 4;
  // Jobs on several nodes (TrainingQueueOptions::dispatcher); null: this node alone.
  std::shared_ptr<NodeDispatcher> dispatcher;
};

class JobManager {
 public:
  JobManager(store::Store* store, JobManagerOptions options);
  ~JobManager();  // Stop()
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Registers the built-in recipes, re-queues unfinished jobs and starts the threads.
  Status Start();
  // Stops training (running jobs resume at the next Start) and the prediction workers.
  void Stop();

  RecipeRegistry& recipes() { return recipes_; }
  TrainingQueue& training() { return training_; }
  ModelAccess& models() { return models_; }

 private:
  RecipeRegistry recipes_;
  TrainingQueue training_;
  ModelAccess models_;
};

}  // namespace chiron::jobs
