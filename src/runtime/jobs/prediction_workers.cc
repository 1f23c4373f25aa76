#include "runtime/jobs/prediction_workers.h"

#include <algorithm>
#include <future>

#include "runtime/train/trained_model.h"

namespace chiron::jobs {

using store::BlobKind;

Result<PredictionIsolation> ParsePredictionIsolation(std::string_view text) {
  if (text == "principal") return PredictionIsolation::kPerPrincipal;
  if (text == "request") return PredictionIsolation::kPerRequest;
  return InvalidArgumentError("prediction isolation must be 'principal' (a worker per model and "
                              "querying principal) or 'request' (a fresh worker per request)");
}

PredictionWorkers::PredictionWorkers(store::Store* store, PredictionWorkersOptions options)
    : store_(store), options_(std::move(options)) {
  if (options_.threads == 0) options_.threads = 1;
}

PredictionWorkers::~PredictionWorkers() { Stop(); }

void PredictionWorkers::Start() {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  stopping_ = false;
  for (uint32_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { PoolLoop(); });
}

void PredictionWorkers::Stop() {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    stopping_ = true;
  }
  pool_cv_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entries.swap(entries_);
  }
  entries.clear();  // no request runs any more: every worker is killed and reaped here
}

void PredictionWorkers::AbortInFlight() {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    stopping_ = true;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  aborting_ = true;
  for (const auto& e : entries_) {
    if (e->in_use && e->session != nullptr) e->session->Abort();
  }
}

void PredictionWorkers::PoolLoop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(pool_mutex_);
      pool_cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) break;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

Status PredictionWorkers::Run(const ModelRecord& model, const std::string& principal,
                              const Use& use) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (stopping_) return UnavailableError("chirond is stopping: try again when it is back");
    tasks_.push_back([this, promise, &model, &principal, &use] {
      promise->set_value(Serve(model, principal, use));
    });
  }
  pool_cv_.notify_one();
  return future.get();
}

std::shared_ptr<PredictionWorkers::Entry> PredictionWorkers::Checkout(
    const ModelRecord& model, const std::string& principal, uint64_t generation,
    std::unique_lock<std::mutex>& lock) {
  while (options_.isolation == PredictionIsolation::kPerPrincipal) {
    auto match = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) {
      return e->model_id == model.id && e->principal == principal && !e->doomed;
    });
    if (match == entries_.end()) break;
    if ((*match)->in_use) {
      // The same principal's concurrent requests take turns on its worker.
      released_.wait(lock);
      continue;
    }
    (*match)->in_use = true;
    (*match)->last_used = ++clock_;
    return *match;
  }
  auto entry = std::make_shared<Entry>();
  entry->model_id = model.id;
  entry->principal = principal;
  entry->generation = generation;
  entry->in_use = true;
  entry->last_used = ++clock_;
  entries_.push_back(entry);
  return entry;
}

void PredictionWorkers::Release(const std::shared_ptr<Entry>& entry) {
  std::unique_ptr<train::PredictionSession> stop;
  std::vector<std::unique_ptr<train::PredictionSession>> trimmed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entry->in_use = false;
    const bool keep = !entry->doomed && entry->session != nullptr &&
                      options_.isolation == PredictionIsolation::kPerPrincipal;
    if (!keep) {
      stop = std::move(entry->session);
      entries_.erase(std::remove(entries_.begin(), entries_.end(), entry), entries_.end());
    }
    TrimIdle(trimmed);
  }
  released_.notify_all();
  // `stop` and `trimmed` go out of scope here, outside the lock: their workers are killed.
}

void PredictionWorkers::TrimIdle(std::vector<std::unique_ptr<train::PredictionSession>>& out) {
  while (true) {
    std::vector<std::shared_ptr<Entry>> idle;
    for (const auto& e : entries_) {
      if (!e->in_use) idle.push_back(e);
    }
    if (idle.size() <= options_.max_live_workers) return;
    auto oldest = std::min_element(idle.begin(), idle.end(), [](const auto& a, const auto& b) {
      return a->last_used < b->last_used;
    });
    out.push_back(std::move((*oldest)->session));
    entries_.erase(std::remove(entries_.begin(), entries_.end(), *oldest), entries_.end());
  }
}

Status PredictionWorkers::Serve(const ModelRecord& model, const std::string& principal,
                                const Use& use) {
  // The model's current sealed generation; gone once DeleteModel deleted the blob (Evict runs
  // after that, so a worker started here before the deletion is stopped by it).
  auto info = store_->GetBlobInfo(BlobKind::kModel, model.id);
  if (!info.ok()) return NotFoundError("model '" + model.name +
                                         "' was deleted meanwhile: see `chiron model list`");
  std::shared_ptr<Entry> entry;
  std::unique_ptr<train::PredictionSession> stale;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    entry = Checkout(model, principal, info->generation, lock);
    // A worker of an older generation of the model, or one whose session failed, is replaced.
    if (entry->session != nullptr &&
        (entry->generation != info->generation ||
         entry->session->failure() != train::FailureCategory::kNone)) {
      stale = std::move(entry->session);
    }
    entry->generation = info->generation;
  }
  stale.reset();
  struct Releaser {
    PredictionWorkers* self;
    const std::shared_ptr<Entry>& entry;
    ~Releaser() { self->Release(entry); }
  } releaser{this, entry};

  if (entry->session == nullptr) {
    CHIRON_ASSIGN_OR_RETURN(SecretBytes recipe,
                            store_->GetBlob(BlobKind::kRecipe, model.recipe_id));
    CHIRON_ASSIGN_OR_RETURN(SecretBytes parameters, store_->GetBlob(BlobKind::kModel, model.id));
    CHIRON_ASSIGN_OR_RETURN(train::TrainedModel trained,
                            train::DecodeTrainedModel(parameters.span()));
    train::PredictionOptions options;
    options.worker = options_.worker;
    options.max_batch = options_.max_batch;
    train::FailureCategory failure = train::FailureCategory::kNone;
    auto session = train::PredictionSession::Start(recipe.span(), model.schema, trained, options,
                                                   &failure);
    SecureZero(trained.parameters.data(), trained.parameters.size() * sizeof(float));
    SecureZero(trained.buffers.data(), trained.buffers.size() * sizeof(float));
    if (!session.ok()) {
      return UnavailableError("the model's sandboxed worker did not start (" +
                              std::string(train::FailureCategoryName(failure)) +
                              "): try again; if it keeps failing, tell the recipe's provider");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    entry->session = std::move(*session);
    if (aborting_) entry->session->Abort();  // started while chirond was shutting down
  }
  return use(*entry->session);
}

void PredictionWorkers::Evict(const std::string& model_id) {
  std::vector<std::unique_ptr<train::PredictionSession>> stop;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    for (const auto& e : entries_) {
      if (e->model_id == model_id) e->doomed = true;
    }
    released_.wait(lock, [&] {
      return std::none_of(entries_.begin(), entries_.end(), [&](const auto& e) {
        return e->model_id == model_id && e->in_use;
      });
    });
    for (auto it = entries_.begin(); it != entries_.end();) {
      if ((*it)->model_id == model_id) {
        stop.push_back(std::move((*it)->session));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

size_t PredictionWorkers::live_workers(const std::string& model_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [&](const auto& e) {
    return e->model_id == model_id && e->session != nullptr;
  }));
}

}  // namespace chiron::jobs
