// TrainingSession: confined training, with the trusted runtime in charge (docs/training.md).
//
// The runtime (chirond; this library never links libtorch) owns the parameters, the buffers
// (batch-norm statistics...) and the optimizer; it picks every batch with the seeded Shuffler and
// applies every update. A sandboxed chiron-worker running the provider's recipe only computes
// gradients on the batches it is given:
//
//   per step   runtime writes params || buffers into the parameter arena and the batch's samples
//              and labels into the input arena → worker: compute-gradients → runtime copies the
//              gradients and the updated buffers out, validates them (counts, NaN/Inf, ranges),
//              then runs its own optimizer step (train::Optimizer, PyTorch-exact);
//   per epoch  the held-out validation split is predicted by the worker (unlabelled inputs only)
//              and scored by the runtime (train::MetricsAccumulator): loss, accuracy, per-class
//              accuracy, confusion matrix. These metrics are for the data owner only.
//
// The validation split is chosen by the runtime from the seed and never reaches the worker with
// its labels, so a recipe cannot train on it to inflate the owner's metrics.
//
// Checkpoints: at the end of every epoch (and every `checkpoint_every_steps` steps if set) the
// session serialises parameters, buffers, optimizer state, epoch/step and the batch position to
// bytes and hands them to the checkpoint callback; the caller seals and stores them. A new
// session given those bytes (Restore) continues exactly where the old one stopped: the same
// batches, the same updates, bit for bit, for any recipe whose training step is deterministic
// (no dropout; libtorch's CPU kernels are deterministic at a fixed thread count).
//
// Failure: if the worker dies, hangs, breaks the protocol or returns non-finite or out-of-range
// numbers, Run() kills it and returns an error; failure() gives the FailureCategory. No text from
// the worker is ever part of an error.
//
// Limits: `deadline` bounds the whole job in wall-clock time (every request's deadline is
// min(request_timeout, deadline); past it the worker is killed and Run() fails with kTimeLimit);
// `max_resident_size` bounds the worker's peak resident memory (the sandbox's monitor kills it:
// kOutOfMemory); worker.limits bound CPU seconds, address space and threads.
//
// Stop: Abort(), from any thread, kills the worker at once; a Run() blocked in a request returns
// within milliseconds with Aborted and failure() == kStopped. Create() cannot be aborted (no
// session exists yet); it is bounded by worker.start_timeout and the deadline.
//
// Thread safety: a session is used from one thread; Run() blocks (with staleness >= 1 it runs the
// exchange on one more thread of its own, joined before it returns). Abort() and
// peak_resident_size() may be called from any thread while it runs (not concurrently with the
// destructor). Start sessions from a long-lived thread (see SandboxedProcess: the worker dies with
// the thread that started it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/train/collective.h"
#include "runtime/train/metrics.h"
#include "runtime/train/trained_model.h"
#include "runtime/train/worker_settings.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::train {

// The decrypted training data: schema.sample_count records of schema.record_size() bytes each,
// label then sample, as in the dataset container's chunks (docs/formats/dataset.md). Borrowed:
// it must outlive Create() only (the session copies what it needs).
struct TrainingData {
  dataset::DatasetSchema schema;
  ByteSpan records;
};

// The largest TrainingOptions::staleness accepted.
inline constexpr uint32_t kMaxStaleness = 4;

struct TrainingOptions {
  // Hyper-parameters: normally the recipe's declarations (DescribeRecipe), always passed through
  // SanitizeTrainingConfig by Create().
  TrainingConfig config;
  double validation_fraction = 0.1;  // [0, 0.5]; at least one training sample must remain
  uint64_t seed = 0;                 // validation split, batch order, model initialisation
  uint64_t checkpoint_every_steps = 0;  // 0: only at the end of each epoch
  uint32_t prediction_batch = 256;      // validation samples per predict request
  // Live progress (BatchProgressCallback) at most this often: after at least
  // progress_every_batches steps and progress_interval of time since the last report, whichever
  // comes later, so a fast model does not flood the caller.
  uint32_t progress_every_batches = 10;
  std::chrono::milliseconds progress_interval{500};
  WorkerSettings worker;
  // The job's wall-clock limit (max(): none). Also bounds Create()'s worker start.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // The worker's peak resident memory, bytes (0: none); the smaller of it and
  // worker.limits.max_resident_size applies. At least sandbox::kMinResidentLimit.
  uint64_t max_resident_size = 0;
  // Synchronous data-parallel training over several nodes (docs/distributed.md); null: this
  // node alone. Borrowed: must outlive the session. With a collective, the data is this node's
  // shard of the owner's dataset (its validation split is taken from the shard),
  // config.batch_size is the global batch (each rank takes batch_size / N, the first
  // batch_size % N ranks one more), every rank runs the same steps per epoch (the largest shard's;
  // a smaller shard wraps around its own permutation), every step ends with the same model on
  // every rank, and the epoch metrics cover every rank's data. samples_seen counts global batches.
  Collective* collective = nullptr;
  // Asynchronous data-parallel training with bounded staleness S (docs/distributed.md,
  // "Asynchronous mode"); 0: synchronous, as above. Needs a collective; at most kMaxStaleness.
  // With S >= 1 the exchange and the optimizer run on a second thread while the worker computes
  // the next gradients: the gradient of step t is computed on the parameters after step
  // max(d, t - S), d the last drain point (each epoch's start, and every checkpoint_every_steps
  // steps when that is set, with or without a checkpoint callback). Every rank still ends every
  // step with the same parameters, runs are deterministic for a seed, and checkpoints are taken
  // only at drain points, so a restored run ends as one that never stopped (with the same
  // checkpoint_every_steps). Costs (S + 1) × 2 copies of the state vector in memory. Live
  // progress (BatchProgress) counts the steps whose gradients are computed, up to S ahead of the
  // optimizer between drain points.
  uint32_t staleness = 0;
  // Bounds on what the worker hands back; beyond them is a numerical error.
  float max_abs_gradient = 1e6f;
  float max_abs_buffer = 1e9f;
  float max_abs_output = 1e6f;
};

struct EpochMetrics {
  uint32_t epoch = 0;         // epochs completed (1-based once the first epoch is done)
  uint64_t step = 0;          // optimizer steps completed
  uint64_t samples_seen = 0;  // training samples processed since the start of the job
  double train_loss = 0;      // mean loss of this epoch's batches, weighted by batch size
  bool has_validation = false;
  ClassificationReport validation;  // owner only
};

// Where training stands between epochs (owner only, like EpochMetrics).
struct BatchProgress {
  uint32_t epoch = 0;               // epochs completed
  uint64_t batches_done = 0;        // optimizer steps completed in the whole job
  uint64_t batches_per_epoch = 0;
  uint64_t batches_total = 0;       // batches_per_epoch × epochs
  uint64_t samples_seen = 0;        // training samples processed since the start of the job
  double samples_per_second = 0;    // this Run's training rate (validation time included)
};

struct TrainingResult {
  TrainedModel model;
  std::vector<EpochMetrics> epochs;  // those run by this session (after a Restore, the rest)
};

class TrainingSession {
 public:
  // Progress of a finished epoch (for the Jobs service): owner-only metrics included, so the
  // caller decides who sees what.
  using ProgressCallback = std::function<void(const EpochMetrics&)>;
  // A checkpoint to seal and store. An error from the callback stops training with that error.
  using CheckpointCallback = std::function<Status(ByteSpan checkpoint, const EpochMetrics&)>;
  // Live progress inside an epoch, rate-limited by the options' progress_every_batches and
  // progress_interval; called on Run()'s thread between steps, so keep it short.
  using BatchProgressCallback = std::function<void(const BatchProgress&)>;

  virtual ~TrainingSession() = default;

  // Validates the data and options, splits off the validation set, starts the worker and loads
  // the recipe in it (FailureCategory kRecipeRejected if it refuses the schema). Errors:
  // InvalidArgument (data, options, hyper-parameters), and those of the worker start.
  // Data-parallel (options.collective): Create and Run exchange with the other ranks, so every
  // rank calls them at the same time (Create returns once every rank has started its worker and
  // holds the same initial model); a rank whose Create or Run fails breaks the group, and the
  // others then fail promptly (failure() kInternal unless their own worker failed).
  static Result<std::unique_ptr<TrainingSession>> Create(const TrainingData& data,
                                                         ByteSpan recipe,
                                                         const TrainingOptions& options,
                                                         FailureCategory* failure = nullptr);

  // Continues from a checkpoint written by a session with the same data, recipe, seed and
  // hyper-parameters. InvalidArgument if the bytes do not parse or do not match (sizes, the
  // data and configuration fingerprint). Call before Run().
  virtual Status Restore(ByteSpan checkpoint) = 0;

  // Trains the remaining epochs. On error, failure() says how.
  virtual Result<TrainingResult> Run(const ProgressCallback& progress = {},
                                     const CheckpointCallback& checkpoint = {},
                                     const BatchProgressCallback& batch_progress = {}) = 0;

  // Stops the job now: kills the worker (any thread, idempotent). A Run() in progress, and every
  // later one, fails with Aborted and failure() == kStopped.
  virtual void Abort() = 0;
  // The largest peak resident size, in bytes, of the workers this session started (its own
  // processes only; the runtime's measurement, not the recipe's declaration). Any thread.
  virtual uint64_t peak_resident_size() const = 0;

  virtual FailureCategory failure() const = 0;
  // The layout the worker reported (untrusted, but checked against the arenas).
  virtual uint64_t parameter_count() const = 0;
  virtual uint64_t buffer_count() const = 0;
  virtual const TrainingConfig& config() const = 0;  // after SanitizeTrainingConfig
  virtual uint64_t training_sample_count() const = 0;
  virtual uint64_t validation_sample_count() const = 0;
  virtual uint64_t batches_per_epoch() const = 0;  // training batches (the last may be short)
};

// The optimizer step a checkpoint was taken at, read from its header only (Restore checks the
// rest). InvalidArgument if the bytes are not a training checkpoint.
Result<uint64_t> CheckpointStep(ByteSpan checkpoint);

}  // namespace chiron::train
