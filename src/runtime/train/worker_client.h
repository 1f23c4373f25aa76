// WorkerClient: the runtime's typed view of one sandboxed chiron-worker (internal to
// src/runtime/train). It owns the SandboxedProcess, speaks the worker protocol (v2) with a
// deadline on every request, copies then validates everything the worker hands back, and turns
// every way a worker can fail into a FailureCategory. After the first failure the worker is
// killed and every call fails with the same category.
//
// Limits: every request's deadline is min(now + the request timeout, the job's deadline); past
// either the worker is killed (kTimeLimit). The worker's resident memory is bounded by
// settings.limits.max_resident_size (the sandbox's monitor; kOutOfMemory).
//
// Thread safety: one thread at a time, except Abort() and peak_resident_size(), which any thread
// may call at any moment until the destructor starts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "runtime/sandbox/sandbox.h"
#include "runtime/train/worker_settings.h"
#include "shared/base/status.h"

namespace chiron::train {

struct WorkerClientOptions {
  DatasetSchema schema;     // the recipe's view
  uint64_t seed = 0;        // libtorch's generator before the model is built
  uint32_t max_batch = 1;   // largest batch of any request
  // The job's wall-clock limit: no request (the start's configure included) runs past it.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Copy, then check: `values` must already be runtime memory. Refused with kNotFinite if any value
// is NaN or infinite (it would poison the optimizer), else kOutOfRange if any is beyond
// +-max_abs (huge values would let a recipe write data into the magnitude of an update); a NaN
// bound refuses everything (kOutOfRange). Never says which value: its index is the worker's
// choice. One vectorised pass: it runs on every gradient of every training step.
WorkerCheck CheckRange(std::span<const float> values, float max_abs);

class WorkerClient {
 public:
  // Launches the worker, sends the configure frame and waits for the configured layout.
  static Result<std::unique_ptr<WorkerClient>> Start(ByteSpan recipe,
                                                     const WorkerClientOptions& options,
                                                     const WorkerSettings& settings,
                                                     FailureCategory* failure);
  ~WorkerClient();

  uint64_t parameter_count() const { return parameter_count_; }
  uint64_t buffer_count() const { return buffer_count_; }
  uint64_t output_size() const { return output_size_; }
  uint64_t sample_size() const { return sample_size_; }
  FailureCategory failure() const { return failure_; }

  // The recipe's declarations (untrusted; see SanitizeTrainingConfig).
  Status Describe(TrainingConfig& training, ResourceBudget& budget, OutputPolicy& output);
  // The recipe's initial parameters and buffers, validated (finite, |x| <= max_abs).
  Status InitialParameters(std::vector<float>& params, std::vector<float>& buffers, float max_abs);

  // Where the caller writes parameters || buffers before a request.
  std::span<float> state();
  // Where the caller writes a batch (samples from offset 0, u16 labels at InputLabelOffset).
  std::span<uint8_t> inputs();

  // Gradients of the batch of `count` samples in the input arena. On success grads (parameter
  // count) and buffers (buffer count) hold validated copies and *loss the loss; on error their
  // contents are unspecified. Pass the same vectors every step: they are resized, not
  // reallocated, so the copy out of the arena touches no fresh pages.
  Status ComputeGradients(uint64_t count, std::vector<float>& grads, std::vector<float>& buffers,
                          double* loss, float max_abs_gradient, float max_abs_buffer);
  // count × output_size validated outputs for the `count` samples in the input arena.
  Result<std::vector<float>> Predict(uint64_t count, float max_abs_output);

  // Asks the worker to exit and reaps it (kills it if it does not).
  void Shutdown();

  // Stops the worker now (SIGKILL), from any thread; idempotent. A request blocked in another
  // thread returns at once, and it and every later call fail with Aborted and kStopped.
  void Abort();
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }
  // What every request checks first: after Abort(), Aborted (kStopped); past the job's deadline,
  // DeadlineExceeded (kTimeLimit); either kills the worker. OK otherwise. Owner thread.
  Status CheckLimits();
  // The worker's own peak resident size in bytes (SandboxedProcess::peak_resident_size), kept
  // after Shutdown(). Any thread.
  uint64_t peak_resident_size() const;

 private:
  WorkerClient(std::unique_ptr<sandbox::SandboxedProcess> process, const WorkerSettings& settings,
               uint64_t sample_size, std::chrono::steady_clock::time_point deadline)
      : process_(std::move(process)),
        settings_(settings),
        sample_size_(sample_size),
        deadline_(deadline) {}

  Result<WorkerFrame> Exchange(const WorkerFrame& request, const WorkerFrameExpectation& expect);
  // Kills the worker, refines `category` from how it ended, and returns an error naming it.
  Status Fail(FailureCategory category, const Status& cause);

  // Written only by the owner thread, under process_mutex_; Abort() and peak_resident_size()
  // read it under the mutex, the owner thread without.
  std::unique_ptr<sandbox::SandboxedProcess> process_;
  mutable std::mutex process_mutex_;
  std::atomic<bool> aborted_{false};
  uint64_t released_peak_ = 0;  // the peak of the worker once released (under process_mutex_)
  WorkerSettings settings_;
  uint64_t sample_size_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t parameter_count_ = 0;
  uint64_t buffer_count_ = 0;
  uint64_t output_size_ = 0;
  uint64_t sequence_ = 1;
  FailureCategory failure_ = FailureCategory::kNone;
  Status failure_status_ = Status::Ok();
};

}  // namespace chiron::train
