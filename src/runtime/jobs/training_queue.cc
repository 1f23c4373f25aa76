#include "runtime/jobs/training_queue.h"

#include <algorithm>

#include "runtime/train/training_session.h"
#include "shared/base/log.h"
#include "shared/crypto/random.h"

namespace chiron::jobs {

using store::BlobKind;

TrainingQueue::TrainingQueue(store::Store* store, RecipeRegistry* recipes,
                             TrainingQueueOptions options)
    : store_(store), recipes_(recipes), options_(std::move(options)) {
  if (options_.slots == 0) options_.slots = 1;
}

TrainingQueue::~TrainingQueue() { Stop(); }

Status TrainingQueue::Start() {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> jobs, store_->ListBlobs(BlobKind::kJob));
  std::vector<JobRecord> unfinished;
  for (const store::BlobInfo& info : jobs) {
    auto record = DecodeJobRecord(info.metadata);
    if (!record.ok()) {
      LogError("job.unreadable", {{"job", info.id}, {"error", record.status().ToString()}});
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    versions_[record->id] = 1;
    if (record->cancel_requested) cancelled_.insert(record->id);
    if (!Finished(record->state)) unfinished.push_back(std::move(*record));
  }
  // Oldest first, as they were accepted.
  std::sort(unfinished.begin(), unfinished.end(), [](const JobRecord& a, const JobRecord& b) {
    return a.created_unix < b.created_unix;
  });
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    for (const JobRecord& record : unfinished) {
      LogInfo("job.resume", {{"job", record.id}});
      queue_.emplace_back(record.id, record.owner_id);
    }
  }
  for (uint32_t i = 0; i < options_.slots; ++i) {
    runners_.emplace_back([this] { RunnerLoop(); });
  }
  return Status::Ok();
}

void TrainingQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, running] : running_) running.stopper->Stop();
  }
  changed_.notify_all();
  for (std::thread& runner : runners_) {
    if (runner.joinable()) runner.join();
  }
  runners_.clear();
}

bool TrainingQueue::Stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

void TrainingQueue::WaitUnlessInterrupted(const std::string& job_id,
                                          std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, delay, [&] { return stopping_ || cancelled_.count(job_id) != 0; });
}

bool TrainingQueue::CancelRequested(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_.count(job_id) != 0;
}

std::shared_ptr<train::WorkerStopper> TrainingQueue::StopperOf(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_.at(job_id).stopper;
}

uint32_t TrainingQueue::running_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<uint32_t>(running_.size());
}

// ---- records -----------------------------------------------------------------------------------

Result<JobRecord> TrainingQueue::LoadJob(const std::string& job_id) {
  CHIRON_ASSIGN_OR_RETURN(store::BlobInfo info, store_->GetBlobInfo(BlobKind::kJob, job_id));
  return DecodeJobRecord(info.metadata);
}

Status TrainingQueue::SaveJob(const JobRecord& record,
                              const std::optional<store::AuditEvent>& audit) {
  JobRecord copy = record;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancelled_.count(record.id)) copy.cancel_requested = true;
  }
  {
    std::lock_guard<std::mutex> save(save_mutex_);
    CHIRON_RETURN_IF_ERROR(
        store_->UpdateBlobMetadata(BlobKind::kJob, record.id, EncodeJobRecord(copy), audit)
            .status());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++versions_[record.id];
  }
  changed_.notify_all();
  return Status::Ok();
}

void TrainingQueue::OverlayLiveProgress(JobRecord& record) {
  if (Finished(record.state)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(record.id);
  if (it == live_.end() || it->second.batches_done < record.batches_done) return;
  record.samples_done = it->second.samples_done;
  record.batches_done = it->second.batches_done;
  record.samples_per_second = it->second.samples_per_second;
  record.elapsed_seconds = std::max(record.elapsed_seconds, it->second.elapsed_seconds);
}

void TrainingQueue::PublishProgress(const std::string& job_id, const LiveProgress& progress) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    live_[job_id] = progress;
    ++versions_[job_id];
  }
  changed_.notify_all();
}

// ---- owners' and providers' calls --------------------------------------------------------------

Result<JobRecord> TrainingQueue::StartTraining(const std::string& owner_id,
                                               const StartTrainingArgs& args) {
  CHIRON_RETURN_IF_ERROR(ValidateName("model name", args.model_name));
  if (!(args.validation_fraction >= 0.0 && args.validation_fraction <= 0.5)) {
    return InvalidArgumentError("validation fraction must be between 0 and 0.5");
  }
  if (args.epochs > train::kMaxEpochs) {
    return InvalidArgumentError("at most " + std::to_string(train::kMaxEpochs) + " epochs");
  }
  if (args.provider_view != ProviderView::kCoarse &&
      args.provider_view != ProviderView::kDoneOnly) {
    return InvalidArgumentError("unknown provider view: use coarse or done-only");
  }
  if (args.nodes > 1) {
    if (!options_.dispatcher) {
      return FailedPreconditionError(
          "this chirond is not in a cluster, so it trains on one node: drop --nodes, or ask the "
          "operator to start it with --node-listen, --peers and --cluster-policy");
    }
    if (args.nodes - 1 > options_.dispatcher->peer_count()) {
      return InvalidArgumentError(
          "--nodes " + std::to_string(args.nodes) + " needs " + std::to_string(args.nodes - 1) +
          " other nodes, and this chirond's cluster has " +
          std::to_string(options_.dispatcher->peer_count()) + " (`chiron attest` lists them)");
    }
    if (args.node_policy.empty()) {
      return InvalidArgumentError(
          "a job on several nodes needs your attestation policy (node_policy): only nodes that "
          "pass it receive a shard of your data");
    }
    CHIRON_RETURN_IF_ERROR(options_.dispatcher->CheckNodePolicy(args.node_policy));
  }
  if (args.staleness > 0 && args.nodes <= 1) {
    return InvalidArgumentError(
        "--staleness applies to a job on several nodes: add --nodes N, or drop --staleness");
  }
  if (args.staleness > train::kMaxStaleness) {
    return InvalidArgumentError("--staleness must be 0 (synchronous) to " +
                                std::to_string(train::kMaxStaleness));
  }
  if (args.nodes > kMaxJobNodes) {
    return InvalidArgumentError("at most " + std::to_string(kMaxJobNodes) + " nodes");
  }
  CHIRON_ASSIGN_OR_RETURN(store::DatasetRecord dataset,
                          store_->FindDataset(owner_id, args.dataset_name));
  if (!dataset.complete) {
    return FailedPreconditionError("dataset '" + args.dataset_name +
                                   "' is not completely uploaded; resume it with "
                                   "`chiron dataset upload` first");
  }
  CHIRON_ASSIGN_OR_RETURN(RecipeRecord recipe, recipes_->Find(args.recipe));
  CHIRON_ASSIGN_OR_RETURN(Bytes id_bytes, crypto::RandomBytes(12));
  JobRecord record;
  record.id = "job-" + HexEncode(id_bytes);
  record.owner_id = owner_id;
  record.provider_id = recipe.provider_id;
  record.recipe_id = recipe.id;
  record.dataset_id = dataset.id;
  record.dataset_name = args.dataset_name;
  record.model_name = args.model_name;
  record.seed = args.seed;
  record.validation_fraction = args.validation_fraction;
  record.epochs_requested = args.epochs;
  record.provider_view = args.provider_view;
  record.nodes = std::max<uint32_t>(1, args.nodes);
  if (record.nodes > 1) {
    record.node_policy = args.node_policy;
    record.staleness = args.staleness;
  }
  record.created_unix = NowUnix();

  // The model name is reserved from here on: checked and taken under one lock, so two requests
  // for the same name cannot both pass the check.
  std::lock_guard<std::mutex> reserve(reserve_mutex_);
  if (store_->GetBlobInfo(BlobKind::kModel, ModelBlobId(owner_id, args.model_name)).ok()) {
    return AlreadyExistsError("you already have a model named '" + args.model_name +
                              "': choose another --model or delete it with `chiron model "
                              "delete " + args.model_name + "`");
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> owned,
                          store_->ListBlobs(BlobKind::kJob, owner_id));
  for (const store::BlobInfo& info : owned) {
    auto other = DecodeJobRecord(info.metadata);
    if (other.ok() && !Finished(other->state) && other->model_name == args.model_name) {
      return AlreadyExistsError("your job " + other->id + " is already training a model named '" +
                                args.model_name + "': choose another --model, or cancel it "
                                "with `chiron job cancel " + other->id + "`");
    }
  }
  CHIRON_RETURN_IF_ERROR(store_
                             ->PutBlob(BlobKind::kJob, record.id, owner_id, {},
                                       EncodeJobRecord(record),
                                       store::AuditEvent{owner_id, "job.train",
                                                         record.id + " dataset=" + dataset.id +
                                                             " recipe=" + recipe.id})
                             .status());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    versions_[record.id] = 1;
    queue_.emplace_back(record.id, owner_id);
  }
  changed_.notify_all();
  LogInfo("job.queued", {{"job", record.id}, {"recipe", recipe.id}});
  return record;
}

Result<JobRecord> TrainingQueue::GetJob(const std::string& owner_id, const std::string& job_id) {
  auto record = LoadJob(job_id);
  if (!record.ok() || record->owner_id != owner_id) {
    return NotFoundError("you have no job '" + job_id + "': see `chiron job list`");
  }
  OverlayLiveProgress(*record);
  return record;
}

Result<std::vector<JobRecord>> TrainingQueue::ListOwnerJobs(const std::string& owner_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs,
                          store_->ListBlobs(BlobKind::kJob, owner_id));
  std::vector<JobRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(JobRecord record, DecodeJobRecord(info.metadata));
    OverlayLiveProgress(record);
    out.push_back(std::move(record));
  }
  return out;
}

Result<std::vector<JobRecord>> TrainingQueue::ListProviderJobs(const std::string& provider_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs, store_->ListBlobs(BlobKind::kJob));
  std::vector<JobRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(JobRecord record, DecodeJobRecord(info.metadata));
    if (record.provider_id == provider_id) out.push_back(std::move(record));
  }
  return out;
}

Result<JobRecord> TrainingQueue::CancelJob(const std::string& owner_id,
                                           const std::string& job_id) {
  CHIRON_ASSIGN_OR_RETURN(JobRecord seen, GetJob(owner_id, job_id));
  if (Finished(seen.state)) return seen;
  bool was_queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_.insert(job_id);
    auto queued = std::find_if(queue_.begin(), queue_.end(),
                               [&](const auto& entry) { return entry.first == job_id; });
    if (queued != queue_.end()) {
      queue_.erase(queued);
      was_queued = true;
    }
    auto running = running_.find(job_id);
    if (running != running_.end()) running->second.stopper->Stop();
  }
  changed_.notify_all();
  // Read, change and write under the save lock: a runner's final save cannot fall in between.
  JobRecord record;
  {
    std::lock_guard<std::mutex> save(save_mutex_);
    CHIRON_ASSIGN_OR_RETURN(record, LoadJob(job_id));
    if (Finished(record.state)) return record;
    record.cancel_requested = true;
    if (was_queued) {
      record.state = JobState::kCancelled;
      record.finished_unix = NowUnix();
    }
    CHIRON_RETURN_IF_ERROR(store_
                               ->UpdateBlobMetadata(BlobKind::kJob, job_id,
                                                    EncodeJobRecord(record),
                                                    store::AuditEvent{owner_id, "job.cancel",
                                                                      job_id})
                               .status());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++versions_[job_id];
  }
  changed_.notify_all();
  OverlayLiveProgress(record);
  return record;
}

Result<JobRecord> TrainingQueue::WaitForJob(const std::string& owner_id,
                                            const std::string& job_id, uint64_t* version,
                                            std::chrono::steady_clock::time_point deadline) {
  CHIRON_RETURN_IF_ERROR(GetJob(owner_id, job_id).status());
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_until(lock, deadline,
                        [&] { return stopping_ || versions_[job_id] > *version; });
    if (stopping_) {
      return UnavailableError("chirond is stopping; watch the job again when it is back");
    }
    *version = versions_[job_id];
  }
  return GetJob(owner_id, job_id);
}

Result<std::vector<std::string>> TrainingQueue::UnfinishedJobsReading(
    const std::string& owner_id, const std::string& dataset_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, ListOwnerJobs(owner_id));
  std::vector<std::string> out;
  for (const JobRecord& job : jobs) {
    if (!Finished(job.state) && job.dataset_id == dataset_id) out.push_back(job.id);
  }
  return out;
}

Status TrainingQueue::CancelJobsReading(const std::string& owner_id,
                                        const std::string& dataset_id,
                                        std::chrono::steady_clock::time_point deadline) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> jobs,
                          UnfinishedJobsReading(owner_id, dataset_id));
  for (const std::string& job_id : jobs) {
    CHIRON_RETURN_IF_ERROR(CancelJob(owner_id, job_id).status());
  }
  std::unique_lock<std::mutex> lock(mutex_);
  bool idle = changed_.wait_until(lock, deadline, [&] {
    return std::none_of(jobs.begin(), jobs.end(),
                        [&](const std::string& id) { return running_.count(id) != 0; });
  });
  if (!idle) {
    return DeadlineExceededError("a job reading the dataset is still stopping; try again in a "
                                 "few seconds");
  }
  return Status::Ok();
}

// ---- runners -----------------------------------------------------------------------------------

bool TrainingQueue::PickNext(std::string* job_id) {
  if (queue_.empty()) return false;
  // Fair order: the owner with the fewest running jobs, then the owner served longest ago (never
  // served first), then the oldest job. One owner's backlog thus alternates with the others'.
  std::map<std::string, uint32_t> running_per_owner;
  for (const auto& [id, running] : running_) ++running_per_owner[running.owner_id];
  auto rank = [&](const std::pair<std::string, std::string>& entry) {
    auto served = last_served_.find(entry.second);
    return std::make_pair(running_per_owner[entry.second],
                          served == last_served_.end() ? uint64_t{0} : served->second);
  };
  auto best = queue_.begin();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (rank(*it) < rank(*best)) best = it;
  }
  *job_id = best->first;
  last_served_[best->second] = ++served_count_;
  auto stopper = std::make_shared<train::WorkerStopper>();
  if (stopping_ || cancelled_.count(best->first) != 0) stopper->Stop();
  running_[best->first] = Running{best->second, std::move(stopper)};
  queue_.erase(best);
  return true;
}

void TrainingQueue::RunnerLoop() {
  while (true) {
    std::string job_id;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      if (!PickNext(&job_id)) continue;
    }
    RunJob(job_id);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.erase(job_id);
      live_.erase(job_id);
    }
    changed_.notify_all();
  }
}

}  // namespace chiron::jobs
