// PredictionWorkers: the sandboxed workers that answer Predict and Evaluate (docs/predictions.md).
//
// Request isolation (as in Ryoan): a worker serves one principal of one model, never two. A
// recipe could otherwise keep one caller's inputs in memory and encode them into another
// caller's answers. Two modes:
//
//   kPerPrincipal  (default) a worker per (model, querying principal), kept alive between that
//                  principal's requests; at most `max_live_workers` idle workers are kept (least
//                  recently used ones are stopped first)
//   kPerRequest    a fresh worker for every request (every Predict call, every Evaluate), stopped
//                  when it is answered: nothing survives even between one principal's requests;
//                  costs a worker start per request: about 0.8 s with libtorch
//                  (bench/predict_isolation_bench.cc, docs/predictions.md)
//
// Workers are started and used on a small pool of long-lived threads (a worker dies with the
// thread that started it, see SandboxedProcess), so one slow recipe holds one pool thread, not
// every prediction of every model.
//
// Thread safety: all public methods are safe to call concurrently.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/jobs/records.h"
#include "runtime/store/store.h"
#include "runtime/train/prediction_session.h"
#include "runtime/train/worker_settings.h"

namespace chiron::jobs {

enum class PredictionIsolation { kPerPrincipal, kPerRequest };
// "principal" / "request"; InvalidArgument for anything else.
Result<PredictionIsolation> ParsePredictionIsolation(std::string_view text);

struct PredictionWorkersOptions {
  train::WorkerSettings worker;
  uint32_t max_batch = 256;  // samples per worker call
  PredictionIsolation isolation = PredictionIsolation::kPerPrincipal;
  uint32_t max_live_workers = 4;  // idle per-principal workers kept
  uint32_t threads = 2;           // pool threads (requests served at once)
};

class PredictionWorkers {
 public:
  using Use = std::function<Status(train::PredictionSession& session)>;

  PredictionWorkers(store::Store* store, PredictionWorkersOptions options);
  ~PredictionWorkers();  // Stop()
  PredictionWorkers(const PredictionWorkers&) = delete;
  PredictionWorkers& operator=(const PredictionWorkers&) = delete;

  void Start();
  // Stops the pool (queued requests fail with Unavailable) and every worker.
  void Stop();

  // Runs `use` on a pool thread with a worker that holds `model` (the current generation of its
  // sealed parameters) for `principal` alone, and returns its status. NotFound if the model's
  // blob is gone (deleted); Unavailable if the worker does not start (the message names the
  // FailureCategory only) or the pool is stopping. A worker whose session failed is replaced
  // at the next request.
  Status Run(const ModelRecord& model, const std::string& principal, const Use& use);

  // Stops every worker of `model_id` and waits for requests using one to finish. Call after the
  // model's blob is deleted: from then on no request can start a worker for it, so when Evict
  // returns no worker holds the model's parameters.
  void Evict(const std::string& model_id);

  // Kills the worker of every request in flight (they fail with an error) and refuses new
  // requests: chirond's shutdown after its grace period. Stop() still has to be called.
  void AbortInFlight();

  size_t live_workers(const std::string& model_id);  // tests
  const PredictionWorkersOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string model_id;
    std::string principal;
    uint64_t generation = 0;
    std::unique_ptr<train::PredictionSession> session;
    bool in_use = false;
    bool doomed = false;  // evicted while in use: stopped when released
    uint64_t last_used = 0;
  };
  // A request's entry: an idle matching one, or a new (placeholder) one. mutex_ held.
  std::shared_ptr<Entry> Checkout(const ModelRecord& model, const std::string& principal,
                                  uint64_t generation, std::unique_lock<std::mutex>& lock);
  void Release(const std::shared_ptr<Entry>& entry);
  // Stops idle workers beyond max_live_workers, least recently used first. mutex_ held; the
  // sessions are destroyed by the caller after unlocking (a worker's reaping can take a moment).
  void TrimIdle(std::vector<std::unique_ptr<train::PredictionSession>>& out);
  Status Serve(const ModelRecord& model, const std::string& principal, const Use& use);
  void PoolLoop();

  store::Store* store_;
  PredictionWorkersOptions options_;

  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<std::shared_ptr<Entry>> entries_;
  uint64_t clock_ = 0;
  bool aborting_ = false;  // AbortInFlight was called

  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace chiron::jobs
