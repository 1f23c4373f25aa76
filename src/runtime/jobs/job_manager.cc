#include "runtime/jobs/job_manager.h"

namespace chiron::jobs {
namespace {

TrainingQueueOptions TrainingOptionsFrom(const JobManagerOptions& o) {
  TrainingQueueOptions out;
  out.worker = o.worker;
  out.initial_query_budget = o.query_budget;
  out.checkpoint_every_steps = o.checkpoint_every_steps;
  out.progress_every_batches = o.progress_every_batches;
  out.progress_interval = o.progress_interval;
  out.slots = o.training_slots;
  out.max_job_seconds = o.max_job_seconds;
  out.max_job_memory_size = o.max_job_memory_size;
  out.dispatcher = o.dispatcher;
  return out;
}

ModelAccessOptions ModelOptionsFrom(const JobManagerOptions& o) {
  ModelAccessOptions out;
  out.workers.worker = o.worker;
  out.workers.max_batch = o.max_predict_batch;
  out.workers.isolation = o.prediction_isolation;
  out.workers.max_live_workers = o.max_prediction_workers;
  out.max_query_budget = o.query_budget;
  out.max_predict_batch = o.max_predict_batch;
  out.clock = o.clock;
  return out;
}

}  // namespace

JobManager::JobManager(store::Store* store, JobManagerOptions options)
    : recipes_(store,
               RecipeRegistryOptions{options.recipes_dir, options.max_recipe_size, options.worker}),
      training_(store, &recipes_, TrainingOptionsFrom(options)),
      models_(store, ModelOptionsFrom(options)) {}

JobManager::~JobManager() { Stop(); }

Status JobManager::Start() {
  CHIRON_RETURN_IF_ERROR(recipes_.RegisterBuiltins());
  CHIRON_RETURN_IF_ERROR(training_.Start());
  models_.Start();
  return Status::Ok();
}

void JobManager::Stop() {
  training_.Stop();
  models_.Stop();
}

}  // namespace chiron::jobs
