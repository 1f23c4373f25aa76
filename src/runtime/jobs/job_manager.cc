#include "runtime/jobs/job_manager.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <future>

#include "runtime/jobs/dataset_loader.h"
#include "runtime/train/trained_model.h"
#include "runtime/train/training_session.h"
#include "shared/base/file_system.h"
#include "shared/base/log.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/random.h"

namespace chiron::jobs {
namespace {

using store::BlobKind;

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
  }
  return 8;
}

// ⌈log2(bytes)⌉: the coarse memory figure a provider may see.
uint32_t Log2Bucket(uint64_t bytes) {
  uint32_t bucket = 0;
  while (bucket < 63 && (uint64_t{1} << bucket) < bytes) ++bucket;
  return bucket;
}

// Peak resident size of any worker this process has waited for (Linux keeps the maximum over
// all reaped children). Coarse by construction: only its power-of-two bucket is ever shown.
uint64_t ChildrenPeakResidentBytes() {
  struct rusage usage {};
  if (getrusage(RUSAGE_CHILDREN, &usage) != 0) return 0;
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

bool Finished(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

}  // namespace

JobManager::JobManager(store::Store* store, JobManagerOptions options)
    : store_(store),
      options_(std::move(options)),
      limiter_(options_.clock ? options_.clock
                              : RateLimiter::Clock([] { return std::chrono::steady_clock::now(); })) {}

JobManager::~JobManager() { Stop(); }

Status JobManager::Start() {
  CHIRON_RETURN_IF_ERROR(RegisterBuiltins());
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> jobs, store_->ListBlobs(BlobKind::kJob));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const store::BlobInfo& info : jobs) {
      auto record = DecodeJobRecord(info.metadata);
      if (!record.ok()) {
        LogError("job.unreadable", {{"job", info.id}, {"error", record.status().ToString()}});
        continue;
      }
      versions_[record->id] = 1;
      if (record->cancel_requested) cancelled_.insert(record->id);
      if (!Finished(record->state)) {
        LogInfo("job.resume", {{"job", record->id}});
        queue_.push_back(record->id);
      }
    }
  }
  training_thread_ = std::thread([this] { TrainingLoop(); });
  prediction_thread_ = std::thread([this] { PredictionLoop(); });
  return Status::Ok();
}

void JobManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  {
    std::lock_guard<std::mutex> lock(prediction_mutex_);
    prediction_stopping_ = true;
  }
  prediction_cv_.notify_all();
  if (training_thread_.joinable()) training_thread_.join();
  if (prediction_thread_.joinable()) prediction_thread_.join();
}

// ---- recipes -----------------------------------------------------------------------------------

Status JobManager::RegisterBuiltins() {
  auto existing = store_->GetPrincipal(kBuiltinPrincipal);
  if (!existing.ok()) {
    CHIRON_RETURN_IF_ERROR(store_
                               ->RegisterPrincipal(kBuiltinPrincipal, store::Role::kProvider,
                                                   "Chiron built-in recipes")
                               .status());
  }
  if (options_.recipes_dir.empty()) return Status::Ok();
  auto names = FileSystem::Default()->ListDirectory(options_.recipes_dir);
  if (!names.ok()) {
    LogWarning("recipes.builtin_missing",
               {{"dir", options_.recipes_dir}, {"error", names.status().message()}});
    return Status::Ok();
  }
  for (const std::string& file : *names) {
    constexpr std::string_view kPrefix = "chiron_recipe_";
    constexpr std::string_view kSuffix = ".so";
    if (file.size() <= kPrefix.size() + kSuffix.size() || !file.starts_with(kPrefix) ||
        !file.ends_with(kSuffix)) {
      continue;
    }
    std::string name = file.substr(kPrefix.size(), file.size() - kPrefix.size() - kSuffix.size());
    CHIRON_ASSIGN_OR_RETURN(Bytes bytes, FileSystem::Default()->ReadFile(
                                             JoinPath(options_.recipes_dir, file),
                                             options_.max_recipe_size));
    auto record = RegisterRecipe(kBuiltinPrincipal, name, "builtin", "Chiron built-in " + name,
                                 bytes);
    if (!record.ok()) return record.status().WithContext("built-in recipe " + file);
    LogInfo("recipes.builtin", {{"name", name}, {"id", record->id}});
  }
  return Status::Ok();
}

Result<RecipeRecord> JobManager::RegisterRecipe(const std::string& provider_id,
                                                const std::string& name,
                                                const std::string& version,
                                                const std::string& description,
                                                ByteSpan shared_object) {
  CHIRON_RETURN_IF_ERROR(ValidateName("recipe name", name));
  CHIRON_RETURN_IF_ERROR(ValidateName("recipe version", version));
  if (description.size() > 200) {
    return InvalidArgumentError("recipe description must be at most 200 characters");
  }
  for (char c : description) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("recipe description must be printable text");
    }
  }
  if (shared_object.empty() || shared_object.size() > options_.max_recipe_size) {
    return InvalidArgumentError("a recipe must be a shared object of 1.." +
                                std::to_string(options_.max_recipe_size) + " bytes");
  }
  static constexpr uint8_t kElfMagic[] = {0x7f, 'E', 'L', 'F'};
  if (shared_object.size() < 4 || !std::equal(kElfMagic, kElfMagic + 4, shared_object.begin())) {
    return InvalidArgumentError(
        "a recipe must be an ELF shared object built against include/chiron/recipe.h "
        "(see docs/recipes.md)");
  }
  RecipeRecord record;
  // The commitment owners see: the code and its manifest (who registered it, under which name
  // and version), so the same bytes registered by two providers are two recipes.
  Bytes commitment = ToBytes("chiron-recipe-v1");
  for (const std::string* field : {&provider_id, &name, &version}) {
    commitment.push_back(0);
    Append(commitment, AsBytes(*field));
  }
  commitment.push_back(0);
  Append(commitment, shared_object);
  record.id = HexEncode(crypto::Sha256(commitment));
  record.name = name;
  record.version = version;
  record.description = description;
  record.provider_id = provider_id;
  record.built_in = provider_id == kBuiltinPrincipal;
  record.size = shared_object.size();
  record.created_unix = NowUnix();
  auto existing = store_->GetBlobInfo(BlobKind::kRecipe, record.id);
  if (existing.ok()) {
    CHIRON_ASSIGN_OR_RETURN(RecipeRecord old, DecodeRecipeRecord(existing->metadata));
    return old;  // the same provider, name, version and code: idempotent
  }
  std::optional<store::AuditEvent> audit;
  if (!record.built_in) audit = store::AuditEvent{provider_id, "recipe.register", record.id};
  CHIRON_RETURN_IF_ERROR(store_
                             ->PutBlob(BlobKind::kRecipe, record.id, provider_id, shared_object,
                                       EncodeRecipeRecord(record), audit)
                             .status());
  return record;
}

Result<std::vector<RecipeRecord>> JobManager::ListRecipes() {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs,
                          store_->ListBlobs(BlobKind::kRecipe));
  std::vector<RecipeRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(RecipeRecord record, DecodeRecipeRecord(info.metadata));
    out.push_back(std::move(record));
  }
  return out;
}

Result<RecipeRecord> JobManager::FindRecipe(const std::string& id_or_name) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<RecipeRecord> recipes, ListRecipes());
  std::optional<RecipeRecord> by_name;
  for (const RecipeRecord& r : recipes) {
    if (r.id == id_or_name) return r;
    if (r.name == id_or_name && (!by_name || r.created_unix >= by_name->created_unix)) by_name = r;
  }
  if (by_name) return *by_name;
  return NotFoundError("no recipe '" + id_or_name +
                       "': list the registered ones with `chiron recipe list`");
}

// ---- jobs --------------------------------------------------------------------------------------

Result<JobRecord> JobManager::LoadJob(const std::string& job_id) {
  CHIRON_ASSIGN_OR_RETURN(store::BlobInfo info, store_->GetBlobInfo(BlobKind::kJob, job_id));
  return DecodeJobRecord(info.metadata);
}

Status JobManager::SaveJob(const JobRecord& record, const std::optional<store::AuditEvent>& audit) {
  JobRecord copy = record;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancelled_.count(record.id)) copy.cancel_requested = true;
  }
  CHIRON_RETURN_IF_ERROR(
      store_->UpdateBlobMetadata(BlobKind::kJob, record.id, EncodeJobRecord(copy), audit)
          .status());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++versions_[record.id];
  }
  changed_.notify_all();
  return Status::Ok();
}

Result<JobRecord> JobManager::StartTraining(const std::string& owner_id,
                                            const StartTrainingArgs& args) {
  CHIRON_RETURN_IF_ERROR(ValidateName("model name", args.model_name));
  if (!(args.validation_fraction >= 0.0 && args.validation_fraction <= 0.5)) {
    return InvalidArgumentError("validation fraction must be between 0 and 0.5");
  }
  if (args.epochs > train::kMaxEpochs) {
    return InvalidArgumentError("at most " + std::to_string(train::kMaxEpochs) + " epochs");
  }
  CHIRON_ASSIGN_OR_RETURN(store::DatasetRecord dataset,
                          store_->FindDataset(owner_id, args.dataset_name));
  if (!dataset.complete) {
    return FailedPreconditionError("dataset '" + args.dataset_name +
                                   "' is not completely uploaded; resume it with "
                                   "`chiron dataset upload` first");
  }
  CHIRON_ASSIGN_OR_RETURN(RecipeRecord recipe, FindRecipe(args.recipe));
  if (store_->GetBlobInfo(BlobKind::kModel, ModelBlobId(owner_id, args.model_name)).ok()) {
    return AlreadyExistsError("you already have a model named '" + args.model_name +
                              "': choose another --model or delete it with `chiron model "
                              "delete`");
  }
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
  record.created_unix = NowUnix();
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
    queue_.push_back(record.id);
  }
  changed_.notify_all();
  LogInfo("job.queued", {{"job", record.id}, {"recipe", recipe.id}});
  return record;
}

Result<JobRecord> JobManager::GetJob(const std::string& owner_id, const std::string& job_id) {
  auto record = LoadJob(job_id);
  if (!record.ok() || record->owner_id != owner_id) {
    return NotFoundError("you have no job '" + job_id + "': see `chiron job list`");
  }
  OverlayLiveProgress(*record);
  return record;
}

void JobManager::OverlayLiveProgress(JobRecord& record) {
  if (Finished(record.state)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(record.id);
  if (it == live_.end() || it->second.batches_done < record.batches_done) return;
  record.samples_done = it->second.samples_done;
  record.batches_done = it->second.batches_done;
  record.samples_per_second = it->second.samples_per_second;
  record.elapsed_seconds = std::max(record.elapsed_seconds, it->second.elapsed_seconds);
}

Result<std::vector<JobRecord>> JobManager::ListOwnerJobs(const std::string& owner_id) {
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

Result<std::vector<JobRecord>> JobManager::ListProviderJobs(const std::string& provider_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs, store_->ListBlobs(BlobKind::kJob));
  std::vector<JobRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(JobRecord record, DecodeJobRecord(info.metadata));
    if (record.provider_id == provider_id) out.push_back(std::move(record));
  }
  return out;
}

Result<JobRecord> JobManager::CancelJob(const std::string& owner_id, const std::string& job_id) {
  CHIRON_ASSIGN_OR_RETURN(JobRecord record, GetJob(owner_id, job_id));
  if (Finished(record.state)) return record;
  record.cancel_requested = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_.insert(job_id);
  }
  if (record.state == JobState::kQueued) {
    record.state = JobState::kCancelled;
    record.finished_unix = NowUnix();
  }
  CHIRON_RETURN_IF_ERROR(SaveJob(record, store::AuditEvent{owner_id, "job.cancel", job_id}));
  return record;
}

Result<JobRecord> JobManager::WaitForJob(const std::string& owner_id, const std::string& job_id,
                                         uint64_t* version,
                                         std::chrono::steady_clock::time_point deadline) {
  CHIRON_RETURN_IF_ERROR(GetJob(owner_id, job_id).status());
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_until(lock, deadline,
                        [&] { return stopping_ || versions_[job_id] > *version; });
    *version = versions_[job_id];
  }
  return GetJob(owner_id, job_id);
}

void JobManager::TrainingLoop() {
  while (true) {
    std::string job_id;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job_id = queue_.front();
      queue_.pop_front();
    }
    RunJob(job_id);
  }
}

void JobManager::RunJob(const std::string& job_id) {
  auto loaded = LoadJob(job_id);
  if (!loaded.ok()) {
    LogError("job.unreadable", {{"job", job_id}, {"error", loaded.status().ToString()}});
    return;
  }
  JobRecord record = std::move(*loaded);
  if (Finished(record.state)) return;
  auto started = std::chrono::steady_clock::now();
  uint64_t elapsed_before = record.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      std::chrono::steady_clock::now() - started)
                                                      .count());
  };
  // Ends the job; `failure` is what the provider may see, `status` is logged for the operator
  // without any worker-provided text (there is none: sessions never carry worker text).
  auto finish = [&](JobState state, train::FailureCategory failure, const Status& status) {
    record.state = state;
    record.failure = ProtoFailure(failure);
    record.finished_unix = NowUnix();
    record.elapsed_seconds = elapsed();
    record.peak_memory_log2 = Log2Bucket(ChildrenPeakResidentBytes());
    Status saved = SaveJob(record);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(record.id);
    }
    store_->DeleteBlob(BlobKind::kCheckpoint, record.id).IgnoreError();
    LogInfo("job.finished", {{"job", record.id},
                             {"state", std::to_string(static_cast<int>(state))},
                             {"failure", std::string(train::FailureCategoryName(failure))},
                             {"detail", status.ok() ? "" : status.ToString()}});
    if (!saved.ok()) LogError("job.save_failed", {{"job", record.id}, {"error", saved.ToString()}});
  };

  if (record.cancel_requested) {
    finish(JobState::kCancelled, train::FailureCategory::kNone, Status::Ok());
    return;
  }
  record.state = JobState::kRunning;
  ++record.attempts;
  if (Status s = SaveJob(record); !s.ok()) {
    LogError("job.save_failed", {{"job", record.id}, {"error", s.ToString()}});
    return;
  }

  auto recipe = store_->GetBlob(BlobKind::kRecipe, record.recipe_id);
  if (!recipe.ok()) {
    finish(JobState::kFailed, train::FailureCategory::kInternal, recipe.status());
    return;
  }
  auto data = LoadDataset(*store_, record.dataset_id);
  if (!data.ok()) {
    finish(JobState::kFailed, train::FailureCategory::kInternal, data.status());
    return;
  }
  train::FailureCategory failure = train::FailureCategory::kNone;
  auto description = train::DescribeRecipe(recipe->span(), data->schema, options_.worker, &failure);
  if (!description.ok()) {
    finish(JobState::kFailed, failure, description.status());
    return;
  }
  train::TrainingOptions training;
  training.config = description->training;
  if (record.epochs_requested > 0) training.config.epochs = record.epochs_requested;
  training.validation_fraction = record.validation_fraction;
  training.seed = record.seed;
  training.checkpoint_every_steps = options_.checkpoint_every_steps;
  training.progress_every_batches = options_.progress_every_batches;
  training.progress_interval = options_.progress_interval;
  training.worker = options_.worker;
  auto session = train::TrainingSession::Create(
      train::TrainingData{data->schema, data->records.span()}, recipe->span(), training, &failure);
  if (!session.ok()) {
    finish(JobState::kFailed, failure, session.status());
    return;
  }
  auto checkpoint = store_->GetBlob(BlobKind::kCheckpoint, record.id);
  if (checkpoint.ok()) {
    Status restored = (*session)->Restore(checkpoint->span());
    if (!restored.ok()) {
      LogWarning("job.checkpoint_unusable", {{"job", record.id}, {"error", restored.ToString()}});
    } else {
      LogInfo("job.restored", {{"job", record.id}});
    }
  }
  record.epochs_total = (*session)->config().epochs;
  record.samples_total = (*session)->training_sample_count() * record.epochs_total;
  record.batches_per_epoch = (*session)->batches_per_epoch();
  record.batches_total = record.batches_per_epoch * record.epochs_total;
  SaveJob(record).IgnoreError();

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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_[record.id] = LiveProgress{p.samples_seen, p.batches_done, p.samples_per_second,
                                      elapsed()};
      ++versions_[record.id];
    }
    changed_.notify_all();
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancelled_.count(record.id)) {
        record.cancel_requested = true;
        return CancelledError("cancelled by its owner");
      }
      if (stopping_) return AbortedError("chirond is stopping; the job resumes at next start");
    }
    CHIRON_RETURN_IF_ERROR(
        store_->PutBlob(BlobKind::kCheckpoint, record.id, record.owner_id, bytes, {}).status());
    update_from(m);
    return SaveJob(record);
  };

  auto result = (*session)->Run(progress, save_checkpoint, batch_progress);
  if (!result.ok()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(record.id);
    }
    if (record.cancel_requested) {
      finish(JobState::kCancelled, train::FailureCategory::kNone, result.status());
    } else if (result.status().code() == StatusCode::kAborted) {
      LogInfo("job.suspended", {{"job", record.id}});  // stays running; resumed next start
    } else {
      finish(JobState::kFailed, (*session)->failure(), result.status());
    }
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
  model.query_budget = options_.query_budget;
  model.validation_accuracy =
      record.history.empty() ? 0.0 : record.history.back().validation_accuracy;
  model.created_unix = NowUnix();
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

// ---- models ------------------------------------------------------------------------------------

Result<ModelRecord> JobManager::LoadModel(const std::string& owner_id, const std::string& name) {
  CHIRON_RETURN_IF_ERROR(ValidateName("model name", name));
  auto info = store_->GetBlobInfo(BlobKind::kModel, ModelBlobId(owner_id, name));
  if (!info.ok() || info->owner_id != owner_id) {
    return NotFoundError("you have no model '" + name + "': see `chiron model list`");
  }
  return DecodeModelRecord(info->metadata);
}

Result<std::vector<ModelRecord>> JobManager::ListModels(const std::string& owner_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs,
                          store_->ListBlobs(BlobKind::kModel, owner_id));
  std::vector<ModelRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(ModelRecord record, DecodeModelRecord(info.metadata));
    out.push_back(std::move(record));
  }
  return out;
}

Status JobManager::DeleteModel(const std::string& owner_id, const std::string& name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  CHIRON_RETURN_IF_ERROR(OnPredictionThread([this, &model] {
    if (session_model_id_ == model.id) {
      session_.reset();
      session_model_id_.clear();
    }
    return Status::Ok();
  }));
  // Grants first: a crash in between leaves a model nobody else may query (fail closed), and a
  // model trained later under the same name starts with no grants.
  CHIRON_RETURN_IF_ERROR(store_->DeleteGrants(model.id));
  limiter_.Forget(model.id + "/");
  return store_->DeleteBlob(BlobKind::kModel, model.id,
                            store::AuditEvent{owner_id, "model.delete", name});
}

Result<ModelRecord> JobManager::SetModelLimits(const std::string& owner_id,
                                               const std::string& name,
                                               const ModelLimitsUpdate& update) {
  std::lock_guard<std::mutex> usage(usage_mutex_);
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  if (update.query_budget.has_value()) {
    if (*update.query_budget > options_.query_budget) {
      return InvalidArgumentError("a model's query budget can be at most " +
                                  std::to_string(options_.query_budget) +
                                  " on this chirond (its --query-budget)");
    }
    model.query_budget = *update.query_budget;
  }
  if (update.rate_per_minute.has_value()) model.rate_per_minute = *update.rate_per_minute;
  if (update.output.has_value()) {
    const train::OutputLimits& o = *update.output;
    if (o.decimals > static_cast<int32_t>(chiron::kMaxOutputDecimals) ||
        o.max_top_k > chiron::kMaxOutputTopK) {
      return InvalidArgumentError("output limits: decimals go up to " +
                                  std::to_string(chiron::kMaxOutputDecimals) + ", top-k up to " +
                                  std::to_string(chiron::kMaxOutputTopK));
    }
    model.owner_output = o;
  }
  std::string subject = name + " budget=" + std::to_string(model.query_budget) +
                        " per_minute=" + std::to_string(model.rate_per_minute) +
                        " label_only=" + (model.owner_output.label_only ? "1" : "0") +
                        " top_k=" + std::to_string(model.owner_output.max_top_k) +
                        " decimals=" + std::to_string(model.owner_output.decimals);
  CHIRON_RETURN_IF_ERROR(store_
                             ->UpdateBlobMetadata(BlobKind::kModel, model.id,
                                                  EncodeModelRecord(model),
                                                  store::AuditEvent{owner_id, "model.limit",
                                                                    subject})
                             .status());
  return model;
}

Result<store::ModelGrant> JobManager::GrantModel(const std::string& owner_id,
                                                 const std::string& name,
                                                 const std::string& grantee_id,
                                                 uint64_t budget) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  if (grantee_id == owner_id) {
    return InvalidArgumentError("you own model '" + name + "': you need no grant on it");
  }
  const std::string budget_text = budget == 0 ? "model" : std::to_string(budget);
  return store_->PutGrant(
      model.id, owner_id, grantee_id, budget,
      {store::AuditEvent{owner_id, "model.grant",
                         name + " to=" + grantee_id + " budget=" + budget_text},
       store::AuditEvent{grantee_id, "model.grant",
                         "model=" + model.id + " from=" + owner_id + " budget=" + budget_text}});
}

Status JobManager::RevokeModel(const std::string& owner_id, const std::string& name,
                               const std::string& grantee_id) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  Status deleted = store_->DeleteGrant(
      model.id, grantee_id,
      {store::AuditEvent{owner_id, "model.revoke", name + " from=" + grantee_id},
       store::AuditEvent{grantee_id, "model.revoke", "model=" + model.id + " by=" + owner_id}});
  if (deleted.code() == StatusCode::kNotFound) {
    return NotFoundError("principal " + grantee_id + " has no grant on model '" + name +
                         "': `chiron model show " + name + "` lists its grants");
  }
  CHIRON_RETURN_IF_ERROR(deleted);
  limiter_.Forget(model.id + "/" + grantee_id);
  return Status::Ok();
}

Result<std::vector<store::ModelGrant>> JobManager::ListModelGrants(const std::string& owner_id,
                                                                   const std::string& name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  return store_->ListGrants(model.id);
}

Result<std::vector<SharedModel>> JobManager::ListSharedModels(const std::string& grantee_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::ModelGrant> grants,
                          store_->ListGrantsTo(grantee_id));
  std::vector<SharedModel> out;
  for (store::ModelGrant& grant : grants) {
    auto info = store_->GetBlobInfo(BlobKind::kModel, grant.model_id);
    if (!info.ok() || info->owner_id != grant.owner_id) continue;  // deleted meanwhile
    CHIRON_ASSIGN_OR_RETURN(ModelRecord model, DecodeModelRecord(info->metadata));
    out.push_back(SharedModel{std::move(model), std::move(grant)});
  }
  return out;
}

Status JobManager::OnPredictionThread(const std::function<Status()>& task) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(prediction_mutex_);
    if (prediction_stopping_) return UnavailableError("chirond is stopping");
    prediction_tasks_.push_back([promise, &task] { promise->set_value(task()); });
  }
  prediction_cv_.notify_one();
  return future.get();
}

void JobManager::PredictionLoop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(prediction_mutex_);
      prediction_cv_.wait(lock, [this] { return prediction_stopping_ || !prediction_tasks_.empty(); });
      if (prediction_tasks_.empty()) break;
      task = std::move(prediction_tasks_.front());
      prediction_tasks_.pop_front();
    }
    task();
  }
  session_.reset();
}

// Prediction thread only.
Result<train::PredictionSession*> JobManager::SessionFor(const ModelRecord& model) {
  CHIRON_ASSIGN_OR_RETURN(store::BlobInfo info, store_->GetBlobInfo(BlobKind::kModel, model.id));
  if (session_ && session_model_id_ == model.id && session_generation_ == info.generation &&
      session_->failure() == train::FailureCategory::kNone) {
    return session_.get();
  }
  session_.reset();
  session_model_id_.clear();
  CHIRON_ASSIGN_OR_RETURN(SecretBytes recipe, store_->GetBlob(BlobKind::kRecipe, model.recipe_id));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes parameters, store_->GetBlob(BlobKind::kModel, model.id));
  CHIRON_ASSIGN_OR_RETURN(train::TrainedModel trained, train::DecodeTrainedModel(parameters.span()));
  train::PredictionOptions options;
  options.worker = options_.worker;
  options.max_batch = options_.max_predict_batch;
  train::FailureCategory failure = train::FailureCategory::kNone;
  auto session = train::PredictionSession::Start(recipe.span(), model.schema, trained, options,
                                                 &failure);
  if (!session.ok()) {
    return UnavailableError("the model's sandboxed worker did not start (" +
                            std::string(train::FailureCategoryName(failure)) + ")");
  }
  session_ = std::move(*session);
  session_model_id_ = model.id;
  session_generation_ = info.generation;
  return session_.get();
}

Result<PredictOutput> JobManager::Predict(const std::string& caller_id,
                                          const std::string& owner_id,
                                          const std::string& model_name,
                                          const std::vector<std::string>& samples,
                                          uint32_t top_k) {
  const std::string& owner = owner_id.empty() ? caller_id : owner_id;
  const bool grantee = owner != caller_id;
  auto found = LoadModel(owner, model_name);
  if (grantee) {
    // Without a grant, a model is indistinguishable from one that does not exist: a caller
    // probing other owners' model names learns nothing.
    const std::string not_shared = "no model '" + model_name + "' of principal " + owner +
                                   " is shared with you: `chiron model shared` lists those "
                                   "that are";
    if (!found.ok()) return NotFoundError(not_shared);
    auto grant = store_->GetGrant(found->id, caller_id);
    if (!grant.ok() || grant->owner_id != owner) return NotFoundError(not_shared);
  }
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, std::move(found));
  if (samples.empty() || samples.size() > options_.max_predict_batch) {
    return InvalidArgumentError("send 1.." + std::to_string(options_.max_predict_batch) +
                                " samples per request");
  }
  const uint64_t sample_size = model.schema.sample_size();
  Bytes inputs;
  inputs.reserve(samples.size() * sample_size);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].size() != sample_size) {
      return InvalidArgumentError("sample " + std::to_string(i) + " is " +
                                  std::to_string(samples[i].size()) + " bytes; model '" +
                                  model_name + "' takes " + model.schema.Describe() + " (" +
                                  std::to_string(sample_size) + " bytes)");
    }
    Append(inputs, AsBytes(samples[i]));
  }
  CHIRON_RETURN_IF_ERROR(limiter_.Take(model.id + "/" + caller_id, model.rate_per_minute,
                                       samples.size(), "model '" + model_name + "'"));
  PredictOutput output;
  {
    // Count the queries before answering (fail closed: a crash after the answer cannot refund).
    std::lock_guard<std::mutex> usage(usage_mutex_);
    CHIRON_ASSIGN_OR_RETURN(model, LoadModel(owner, model_name));  // fresh counters
    if (model.queries_used + samples.size() > model.query_budget) {
      return ResourceExhaustedError("model '" + model_name + "' has used " +
                                    std::to_string(model.queries_used) + " of its " +
                                    std::to_string(model.query_budget) +
                                    " queries; its query budget is spent");
    }
    const std::string count = std::to_string(samples.size());
    std::optional<store::AuditEvent> owner_audit =
        store::AuditEvent{owner, "model.predict", model_name + " samples=" + count};
    if (grantee) {
      // The grant is charged (with both audit records) before the model's counter: if the
      // grant was revoked meanwhile or its budget is spent, nothing is charged anywhere.
      auto charged = store_->ChargeGrant(
          model.id, caller_id, samples.size(),
          {store::AuditEvent{owner, "model.predict",
                             model_name + " samples=" + count + " by=" + caller_id},
           store::AuditEvent{caller_id, "model.predict",
                             "model=" + model.id + " samples=" + count}});
      if (charged.status().code() == StatusCode::kNotFound) {
        return NotFoundError("no model '" + model_name + "' of principal " + owner +
                             " is shared with you");
      }
      CHIRON_RETURN_IF_ERROR(charged.status());
      output.queries_used = charged->used;
      output.query_budget = charged->budget;
      owner_audit.reset();
    }
    model.queries_used += samples.size();
    CHIRON_RETURN_IF_ERROR(store_
                               ->UpdateBlobMetadata(BlobKind::kModel, model.id,
                                                    EncodeModelRecord(model), owner_audit)
                               .status());
    if (!grantee) {
      output.queries_used = model.queries_used;
      output.query_budget = model.query_budget;
    }
  }
  output.policy = train::EffectiveOutputPolicy(model.provider_output, model.owner_output, top_k,
                                               model.output_size);
  CHIRON_RETURN_IF_ERROR(OnPredictionThread([&]() -> Status {
    CHIRON_ASSIGN_OR_RETURN(train::PredictionSession * session, SessionFor(model));
    CHIRON_ASSIGN_OR_RETURN(std::vector<float> logits, session->Predict(inputs, samples.size()));
    const uint64_t width = session->output_size();
    for (size_t i = 0; i < samples.size(); ++i) {
      output.predictions.push_back(train::ApplyOutputPolicy(
          std::span<const float>(logits).subspan(i * width, width), output.policy));
    }
    return Status::Ok();
  }));
  SecureZero(inputs.data(), inputs.size());
  return output;
}

Result<train::ClassificationReport> JobManager::Evaluate(const std::string& owner_id,
                                                         const std::string& model_name,
                                                         const std::string& dataset_name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, model_name));
  CHIRON_ASSIGN_OR_RETURN(store::DatasetRecord dataset,
                          store_->FindDataset(owner_id, dataset_name));
  CHIRON_ASSIGN_OR_RETURN(LoadedDataset data, LoadDataset(*store_, dataset.id));
  if (data.schema.shape != model.schema.shape ||
      data.schema.element_type != model.schema.element_type ||
      data.schema.class_count() != model.schema.class_count()) {
    return InvalidArgumentError("dataset '" + dataset_name + "' (" + data.schema.Describe() +
                                ") does not match model '" + model_name + "' (" +
                                model.schema.Describe() + ")");
  }
  CHIRON_ASSIGN_OR_RETURN(train::MetricsAccumulator metrics,
                          train::MetricsAccumulator::Create(
                              static_cast<int64_t>(model.schema.class_count())));
  const uint64_t record_size = data.schema.record_size();
  const uint64_t label_size = dataset::LabelSize(data.schema.label_type);
  const uint64_t count = data.schema.sample_count;
  CHIRON_RETURN_IF_ERROR(OnPredictionThread([&]() -> Status {
    CHIRON_ASSIGN_OR_RETURN(train::PredictionSession * session, SessionFor(model));
    Bytes inputs;
    std::vector<int64_t> labels;
    for (uint64_t first = 0; first < count; first += options_.max_predict_batch) {
      uint64_t n = std::min<uint64_t>(options_.max_predict_batch, count - first);
      inputs.clear();
      labels.clear();
      for (uint64_t i = first; i < first + n; ++i) {
        const uint8_t* rec = data.records.data() + i * record_size;
        labels.push_back(label_size == 1 ? rec[0] : (rec[0] | (rec[1] << 8)));
        inputs.insert(inputs.end(), rec + label_size, rec + record_size);
      }
      CHIRON_ASSIGN_OR_RETURN(std::vector<float> logits, session->Predict(inputs, n));
      CHIRON_RETURN_IF_ERROR(metrics.Add(logits, labels));
    }
    SecureZero(inputs.data(), inputs.size());
    return Status::Ok();
  }));
  CHIRON_RETURN_IF_ERROR(store_
                             ->AppendAudit(store::AuditEvent{owner_id, "model.evaluate",
                                                             model_name + " dataset=" +
                                                                 dataset.id})
                             .status());
  return metrics.Report();
}

}  // namespace chiron::jobs
