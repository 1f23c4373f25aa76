// One run of a training job on a runner thread (TrainingQueue::RunJob): load, limits, train,
// model. See training_queue.h for the contract.
#include <algorithm>

#include "runtime/jobs/dataset_loader.h"
#include "runtime/jobs/training_queue.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/trained_model.h"
#include "runtime/train/training_session.h"
#include "shared/base/log.h"

namespace chiron::jobs {
namespace {

using store::BlobKind;

// chiron.v1.FailureCategory for a session's failure.
int ProtoFailure(train::FailureCategory category) {
  switch (category) {
    case train::FailureCategory::kNone: return 0;
    case train::FailureCategory::kCrashed: return 1;
    case train::FailureCategory::kOutOfMemory: return 2;
    case train::FailureCategory::kTimeLimit: return 3;
    case train::FailureCategory::kInvalidOutput: return 4;
    case train::FailureCategory::kNumericalError: return 5;
    case train::FailureCategory::kRecipeRejected: return 6;
    case train::FailureCategory::kSandboxViolation: return 7;
    case train::FailureCategory::kInternal: return 8;
    case train::FailureCategory::kStopped: return 8;  // never a job's final category
  }
  return 8;
}

// ⌈log2(bytes)⌉: the memory figure kept in the record (ProviderFacts coarsens it further).
uint32_t Log2Bucket(uint64_t bytes) {
  uint32_t bucket = 0;
  while (bucket < 63 && (uint64_t{1} << bucket) < bytes) ++bucket;
  return bucket;
}

// The job's limits: the recipe's declared budget (0: none declared) within the operator's.
// kRecipeRejected when a declaration exceeds the operator's limit: the recipe asked for more
// than this chirond gives, and no data has reached it yet.
Status ResolveBudget(const ResourceBudget& declared, const TrainingQueueOptions& options,
                     JobRecord& record) {
  if (declared.max_training_seconds > options.max_job_seconds ||
      declared.max_memory_size > options.max_job_memory_size) {
    return FailedPreconditionError(
        "the recipe declares a budget above this chirond's limits (" +
        std::to_string(options.max_job_seconds) + " s, " +
        std::to_string(options.max_job_memory_size >> 20) +
        " MiB per job): ask the provider for a recipe within them, or the operator to raise "
        "--max-job-seconds / --max-job-memory");
  }
  record.budget_seconds =
      declared.max_training_seconds != 0 ? declared.max_training_seconds : options.max_job_seconds;
  record.budget_memory_size =
      declared.max_memory_size != 0 ? declared.max_memory_size : options.max_job_memory_size;
  return Status::Ok();
}

}  // namespace

void TrainingQueue::RunJob(const std::string& job_id) {
  auto loaded = LoadJob(job_id);
  if (!loaded.ok()) {
    LogError("job.unreadable", {{"job", job_id}, {"error", loaded.status().ToString()}});
    return;
  }
  JobRecord record = std::move(*loaded);
  if (Finished(record.state)) return;
  const auto started = std::chrono::steady_clock::now();
  const uint64_t elapsed_before = record.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      std::chrono::steady_clock::now() - started)
                                                      .count());
  };
  uint64_t peak_resident_size = 0;
  // Ends the job. `failure` is what the provider may see. `status` is the runtime's own account
  // for the operator's log: sessions and the loader build their errors from fixed reasons only,
  // never from a value the worker chose (docs/provider-facts.md).
  auto finish = [&](JobState state, train::FailureCategory failure, const Status& status) {
    record.state = state;
    record.failure = ProtoFailure(failure);
    record.finished_unix = NowUnix();
    record.elapsed_seconds = elapsed();
    record.peak_memory_log2 = peak_resident_size == 0 ? 0 : Log2Bucket(peak_resident_size);
    Status saved = SaveJob(record);
    store_->DeleteBlob(BlobKind::kCheckpoint, record.id).IgnoreError();
    LogInfo("job.finished", {{"job", record.id},
                             {"state", std::to_string(static_cast<int>(state))},
                             {"failure", std::string(train::FailureCategoryName(failure))},
                             {"detail", status.ok() ? "" : status.ToString()}});
    if (!saved.ok()) LogError("job.save_failed", {{"job", record.id}, {"error", saved.ToString()}});
  };

  if (record.cancel_requested || CancelRequested(record.id)) {
    finish(JobState::kCancelled, train::FailureCategory::kNone, Status::Ok());
    return;
  }
  record.state = JobState::kRunning;
  ++record.attempts;
  if (record.started_unix == 0) record.started_unix = NowUnix();
  // Until the recipe's declarations are read, the operator's limits stand (the provider's view
  // of a job that fails before is revealed at the same, data-independent moment).
  if (record.budget_seconds == 0) record.budget_seconds = options_.max_job_seconds;
  if (record.budget_memory_size == 0) record.budget_memory_size = options_.max_job_memory_size;
  if (Status s = SaveJob(record); !s.ok()) {
    LogError("job.save_failed", {{"job", record.id}, {"error", s.ToString()}});
    return;
  }

  // Cancel and stop act through the stopper on every worker of this run, also while one is
  // starting; a run they interrupted ends cancelled, or stays running to resume (stop).
  std::shared_ptr<train::WorkerStopper> stopper = StopperOf(record.id);
  auto interrupted = [&] {
    if (CancelRequested(record.id)) {
      record.cancel_requested = true;
      finish(JobState::kCancelled, train::FailureCategory::kNone, Status::Ok());
      return true;
    }
    if (Stopping()) {
      record.elapsed_seconds = elapsed();
      SaveJob(record).IgnoreError();
      LogInfo("job.suspended", {{"job", record.id}});  // stays running; resumed next start
      return true;
    }
    return false;
  };
  auto recipe = store_->GetBlob(BlobKind::kRecipe, record.recipe_id);
  if (!recipe.ok()) {
    finish(JobState::kFailed, train::FailureCategory::kInternal, recipe.status());
    return;
  }
  auto data = LoadDataset(*store_, record.dataset_id);
  if (!data.ok()) {
    // A dataset deleted under the job (`chiron dataset delete --force`) cancelled it first.
    if (!interrupted()) {
      finish(JobState::kFailed, train::FailureCategory::kInternal, data.status());
    }
    return;
  }
  // A cancel or stop that came while the runner was picking the job up: no worker starts.
  if (interrupted()) return;
  train::FailureCategory failure = train::FailureCategory::kNone;
  train::WorkerSettings describe_settings = options_.worker;
  describe_settings.stopper = stopper;
  describe_settings.limits.max_resident_size = options_.max_job_memory_size;
  auto description =
      train::DescribeRecipe(recipe->span(), data->schema, describe_settings, &failure);
  if (!description.ok()) {
    if (!interrupted()) finish(JobState::kFailed, failure, description.status());
    return;
  }
  peak_resident_size = std::max(peak_resident_size, description->peak_resident_size);
  if (Status budget = ResolveBudget(description->budget, options_, record); !budget.ok()) {
    finish(JobState::kFailed, train::FailureCategory::kRecipeRejected, budget);
    return;
  }
  if (elapsed_before >= record.budget_seconds) {
    finish(JobState::kFailed, train::FailureCategory::kTimeLimit,
           DeadlineExceededError("the job's time budget was used up by its earlier runs"));
    return;
  }
  if (interrupted()) return;
  train::TrainingOptions training;
  training.config = description->training;
  if (record.epochs_requested > 0) training.config.epochs = record.epochs_requested;
  training.validation_fraction = record.validation_fraction;
  training.seed = record.seed;
  training.checkpoint_every_steps = options_.checkpoint_every_steps;
  training.progress_every_batches = options_.progress_every_batches;
  training.progress_interval = options_.progress_interval;
  training.worker = options_.worker;
  training.worker.stopper = stopper;
  training.max_resident_size = record.budget_memory_size;
  training.deadline = started + std::chrono::seconds(record.budget_seconds - elapsed_before);

  auto update_from = [&](const train::EpochMetrics& m) {
    record.epochs_done = m.epoch;
    record.samples_done = m.samples_seen;
    record.batches_done = m.step;
    record.elapsed_seconds = elapsed();
  };
  // Live progress between saves: memory only, for the owner's Watch (no store write).
  auto batch_progress = [&](const train::BatchProgress& p) {
    record.samples_done = p.samples_seen;
    record.batches_done = p.batches_done;
    record.samples_per_second = p.samples_per_second;
    PublishProgress(record.id,
                    LiveProgress{p.samples_seen, p.batches_done, p.samples_per_second, elapsed()});
  };
  auto progress = [&](const train::EpochMetrics& m) {
    update_from(m);
    EpochRecord epoch;
    epoch.epoch = m.epoch;
    epoch.train_loss = m.train_loss;
    if (m.has_validation) {
      epoch.validation_loss = m.validation.mean_loss;
      epoch.validation_accuracy = m.validation.accuracy;
      record.per_class_accuracy = m.validation.per_class_accuracy;
      record.confusion = m.validation.confusion;
    }
    // A job resumed from a checkpoint taken before this epoch's end runs the rest of the epoch
    // again (bit-exactly) and reports it again: its record replaces the one saved before the
    // crash, never duplicates it.
    while (!record.history.empty() && record.history.back().epoch >= epoch.epoch) {
      record.history.pop_back();
    }
    record.history.push_back(epoch);
    SaveJob(record).IgnoreError();
  };
  auto save_checkpoint = [&](ByteSpan bytes, const train::EpochMetrics& m) -> Status {
    if (CancelRequested(record.id)) return CancelledError("cancelled by its owner");
    if (Stopping()) return AbortedError("chirond is stopping; the job resumes at next start");
    CHIRON_RETURN_IF_ERROR(
        store_->PutBlob(BlobKind::kCheckpoint, record.id, record.owner_id, bytes, {}).status());
    update_from(m);
    return SaveJob(record);
  };

  // One run of the session: alone, or rank 0 of the job's nodes (docs/distributed.md, "Jobs on
  // several nodes"). A job on several nodes whose group breaks is dispatched again, from the
  // checkpoint every rank holds, up to max_dispatch_attempts runs.
  Result<train::TrainingResult> result = InternalError("the job did not run");
  for (uint32_t attempt = 1;; ++attempt) {
    std::unique_ptr<DistributedRun> distributed;
    training.collective = nullptr;  // a previous try's group is gone
    train::TrainingData local{data->schema, data->records.span()};
    auto checkpoint = store_->GetBlob(BlobKind::kCheckpoint, record.id);
    if (record.nodes > 1) {
      auto config = train::SanitizeTrainingConfig(training.config);
      if (!config.ok()) {
        finish(JobState::kFailed, train::FailureCategory::kRecipeRejected, config.status());
        return;
      }
      DispatchRequest request;
      request.job_id = record.id;
      request.owner_id = record.owner_id;
      request.nodes = record.nodes;
      request.node_policy = record.node_policy;
      request.recipe = recipe->span();
      request.schema = &data->schema;
      request.records = data->records.span();
      request.config = *config;
      request.validation_fraction = record.validation_fraction;
      request.seed = record.seed;
      request.checkpoint_every_steps = options_.checkpoint_every_steps;
      request.seconds_left = record.budget_seconds - std::min(record.budget_seconds, elapsed());
      request.max_resident_size = record.budget_memory_size;
      request.staleness = record.staleness;
      request.attempt = attempt;
      auto dispatched = options_.dispatcher
                            ? options_.dispatcher->Dispatch(request)
                            : Result<std::unique_ptr<DistributedRun>>(FailedPreconditionError(
                                  "this chirond is no longer in a cluster"));
      if (!dispatched.ok()) {
        result = dispatched.status();
      } else {
        distributed = std::move(*dispatched);
        // The owner's audit chain names every node that received a shard of the dataset, at
        // every dispatch (each sends the shard again).
        record.node_list = distributed->nodes();
        ++record.dispatches;
        for (const JobNodeRecord& node : record.node_list) {
          if (node.rank == 0) continue;
          SaveJob(record, store::AuditEvent{record.owner_id, "dataset.shard_sent",
                                            record.dataset_name + " job=" + record.id +
                                                " rank=" + std::to_string(node.rank) +
                                                " node=" + node.address + " key=" + node.key_id +
                                                " records=" + std::to_string(node.records)})
              .IgnoreError();
        }
        local.schema.sample_count = distributed->local_record_count();
        local.records = distributed->local_records();
        training.collective = &distributed->collective();
        training.staleness = record.staleness;
      }
    }
    // Alone: restore the checkpoint if any. On several nodes: only if every rank holds one at
    // the same step (AgreeOnResume, before the session's own exchanges), so all restore or none.
    bool restore = checkpoint.ok();
    if (distributed) {
      uint64_t step = 0;
      if (checkpoint.ok()) {
        auto at = train::CheckpointStep(checkpoint->span());
        if (at.ok()) step = *at;
      }
      auto agreed = train::AgreeOnResume(distributed->collective(), step);
      restore = agreed.ok() && *agreed;
      if (!agreed.ok()) {
        result = agreed.status();
        distributed.reset();
      }
    }
    if (record.nodes <= 1 || distributed) {
      auto session = train::TrainingSession::Create(local, recipe->span(), training, &failure);
      if (!session.ok()) {
        result = session.status();
      } else {
        if (restore) {
          Status restored = (*session)->Restore(checkpoint->span());
          if (!restored.ok()) {
            LogWarning("job.checkpoint_unusable",
                       {{"job", record.id}, {"error", restored.ToString()}});
          } else {
            LogInfo("job.restored", {{"job", record.id}});
          }
        }
        record.epochs_total = (*session)->config().epochs;
        record.samples_total = (*session)->training_sample_count() * record.epochs_total;
        record.batches_per_epoch = (*session)->batches_per_epoch();
        record.batches_total = record.batches_per_epoch * record.epochs_total;
        SaveJob(record).IgnoreError();
        result = (*session)->Run(progress, save_checkpoint, batch_progress);
        peak_resident_size = std::max(peak_resident_size, (*session)->peak_resident_size());
        failure = (*session)->failure();
      }
    }
    if (result.ok() || record.nodes <= 1) break;
    if (interrupted()) return;
    // Several nodes: a failure of this node's own worker ends the job, as does a request a node
    // refuses as malformed or unauthorised (trying again would not change it); a broken group
    // (another node lost or failing) or a dispatch that found too few nodes is tried again.
    const StatusCode code = result.status().code();
    const bool group_problem = (failure == train::FailureCategory::kInternal ||
                                failure == train::FailureCategory::kNone) &&
                               code != StatusCode::kInvalidArgument &&
                               code != StatusCode::kPermissionDenied;
    // Another rank's own worker failed (it says so, NodeExchange.RankFailed): the recipe failed
    // on that node's shard, and trying again would not change it. Its report may come a moment
    // after the group broke, so it is asked again after the wait.
    auto rank_failed = [&] {
      auto reported =
          options_.dispatcher ? options_.dispatcher->TakeRankFailure(record.id) : std::nullopt;
      if (!reported) return false;
      failure = *reported;
      result = FailedPreconditionError("another node's worker failed on its shard");
      return true;
    };
    if (!group_problem || attempt >= options_.max_dispatch_attempts || rank_failed()) break;
    WaitUnlessInterrupted(record.id,
                          std::min<std::chrono::milliseconds>(
                              options_.redispatch_delay * (1u << std::min(attempt - 1, 10u)),
                              std::chrono::seconds(30)));
    if (interrupted()) return;
    if (rank_failed()) break;
    LogWarning("job.redispatch", {{"job", record.id},
                                  {"attempt", std::to_string(attempt)},
                                  {"error", result.status().ToString()}});
    failure = train::FailureCategory::kNone;
  }
  if (!result.ok()) {
    if (failure == train::FailureCategory::kNone) failure = train::FailureCategory::kInternal;
    if (!interrupted()) finish(JobState::kFailed, failure, result.status());
    return;
  }

  ModelRecord model;
  model.id = ModelBlobId(record.owner_id, record.model_name);
  model.name = record.model_name;
  model.owner_id = record.owner_id;
  model.job_id = record.id;
  model.recipe_id = record.recipe_id;
  model.dataset_id = record.dataset_id;
  model.schema = data->schema;
  model.output_size = description->output_size;
  model.provider_output = description->output;  // untrusted: EffectiveOutputPolicy clamps it
  model.query_budget = options_.initial_query_budget;
  model.validation_accuracy =
      record.history.empty() ? 0.0 : record.history.back().validation_accuracy;
  model.created_unix = NowUnix();
  // The name was reserved when the job was accepted; a model under it now means the store was
  // changed behind the runtime's back. Never replace a model silently.
  if (store_->GetBlobInfo(BlobKind::kModel, model.id).ok()) {
    finish(JobState::kFailed, train::FailureCategory::kInternal,
           AlreadyExistsError("a model named '" + model.name + "' appeared during the job"));
    return;
  }
  Bytes parameters;
  train::EncodeTrainedModel(result->model, parameters);
  Status stored = store_
                      ->PutBlob(BlobKind::kModel, model.id, record.owner_id, parameters,
                                EncodeModelRecord(model),
                                store::AuditEvent{record.owner_id, "model.create",
                                                  record.model_name + " job=" + record.id})
                      .status();
  SecureZero(parameters.data(), parameters.size());
  if (!stored.ok()) {
    finish(JobState::kFailed, train::FailureCategory::kInternal, stored);
    return;
  }
  finish(JobState::kSucceeded, train::FailureCategory::kNone, Status::Ok());
}

}  // namespace chiron::jobs
