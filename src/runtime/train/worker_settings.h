// What the trusted runtime needs to run a sandboxed chiron-worker for a job, and how a job ends
// when the worker fails. Shared by TrainingSession and PredictionSession (docs/training.md).
//
// Part of chirond: no libtorch. Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "chiron/recipe_types.h"
#include "runtime/sandbox/sandbox.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::train {

// How a session ended when it did not succeed. A fixed list chosen by the runtime from what it
// observed: the worker can never send text, so nothing derived from the data can ride on an
// error. Safe to show to the provider.
enum class FailureCategory : uint8_t {
  kNone = 0,
  kRecipeRejected = 1,    // the recipe did not load, refused the schema or declared unusable
                          // settings (before any training data reached it)
  kCrashed = 2,           // the worker died by a signal or exited abnormally, or the recipe threw
  kSandboxViolation = 3,  // killed by seccomp: the recipe tried a forbidden system call
  kOutOfMemory = 4,       // an allocation failed under the memory limit, or the worker's peak
                          // resident size passed max_resident_size (the runtime killed it)
  kTimeLimit = 5,         // CPU-time limit, a per-request deadline or the job's wall-clock limit
  kInvalidOutput = 6,     // a malformed frame, a wrong count or sequence, a protocol violation
  kNumericalError = 7,    // NaN, infinite or out-of-range loss, gradient, buffer or output
  kInternal = 8,          // the runtime itself failed (launch, kernel refused a channel...)
  kStopped = 9,           // the runtime stopped the worker on request (Abort(): cancel,
                          // shutdown); not the recipe's doing. chiron.v1 has no value for it yet:
                          // the job manager maps it (a cancelled job is not a failed one)
};
std::string_view FailureCategoryName(FailureCategory category);

class WorkerClient;

// Stops the workers of a job from any thread, including while TrainingSession::Create(),
// PredictionSession::Start() or DescribeRecipe() is still starting the worker and loading the
// recipe (recipe code runs then: up to start_timeout), when there is no session to Abort() yet.
// Share one (WorkerSettings::stopper) between the options and the thread that may stop the job.
// Stop() is idempotent and sticky: it aborts every worker started with it so far (as Abort()
// does: their calls fail with Aborted, kStopped) and every later one at once; a Create() or Start()
// after it launches nothing and fails with Aborted (*failure kStopped). Thread safe.
class WorkerStopper {
 public:
  void Stop();
  bool stopped() const;

 private:
  friend class WorkerClient;
  void Attach(WorkerClient* client);  // aborts it at once if already stopped
  void Detach(WorkerClient* client);

  mutable std::mutex mutex_;
  bool stopped_ = false;
  std::vector<WorkerClient*> clients_;  // not owned; each detaches itself before it is destroyed
};

// How the worker's OpenMP threads wait between parallel regions (libgomp, read once at the
// worker's start; the choice changes no number the worker computes, only its speed).
//   kSpin     GOMP_SPINCOUNT=300000, what PyTorch users get by default (OMP_WAIT_POLICY unset):
//             a thread spins that many `pause`s (~8 ms on AMD EPYC Zen 3: 26 ns each) before it
//             sleeps, so the team stays awake between a step's parallel regions and across the
//             runtime's update. On a machine with no CPU to spare it burns whole scheduler
//             slices while a preempted team-mate holds a barrier: LeNet trained 2-5x slower than
//             passive there.
//   kPassive  GOMP_SPINCOUNT=0 (OMP_WAIT_POLICY=passive): a futex wake-up per parallel region,
//             ~30 % slower than kSpin on an idle machine, the fastest on a busy one.
//   kAuto     kSpin if the machine has a free CPU for each worker thread when the worker starts
//             (MachineHasIdleCpus), else kPassive. docs/performance.md has the measurements.
enum class WorkerSpinPolicy : uint8_t { kAuto = 0, kSpin = 1, kPassive = 2 };
inline constexpr int64_t kWorkerSpinCount = 300000;

// Whether `threads` more busy threads would each find a CPU: true when the runnable tasks other
// than the caller, averaged over `runnable_samples` (each the first number of the fourth field
// of /proc/loadavg, "running/total", which counts the reader itself), leave at least `threads`
// of `cpus` free. An empty or unparsable sample list says false (fail towards kPassive, the
// choice that is never pathological). Pure: the reading is done by the caller.
bool MachineHasIdleCpus(const std::vector<std::string>& runnable_samples, int cpus, int threads);

// Samples /proc/loadavg 10 times over ~10 ms and applies MachineHasIdleCpus with the CPUs this
// process may run on. About 10 ms, once per worker start (a prediction worker per request pays
// it per request, ~1 % of such a request).
bool MachineHasIdleCpusNow(int threads);

// Everything about the worker process that the runtime, not the recipe, decides.
struct WorkerSettings {
  std::string worker_path;              // absolute path of chiron-worker
  int threads = 2;                      // libtorch intra-op threads in the worker
  sandbox::SandboxLimits limits;        // address space, CPU seconds, threads, resident memory
  std::chrono::milliseconds start_timeout{30000};    // hello + loading the recipe
  std::chrono::milliseconds request_timeout{60000};  // one batch or one prediction
  // Added to the worker's fixed environment (e.g. "LD_LIBRARY_PATH=..." to select OpenBLAS).
  // Never derived from the job.
  std::vector<std::string> extra_environment;
  uint64_t max_arena_count = 64ull << 20;  // parameters + buffers (floats); sparse until used
  uint32_t max_output_size = 65536;        // outputs per sample
  // Optional: lets another thread stop the worker, even while it starts (see WorkerStopper).
  std::shared_ptr<WorkerStopper> stopper;
  // How the worker's OpenMP threads wait (see WorkerSpinPolicy, above).
  WorkerSpinPolicy spin = WorkerSpinPolicy::kAuto;
};

// The worker's environment: DNNL_JIT_PROFILE=0 (oneDNN would otherwise dlopen a profiler on its
// first kernel), GOMP_SPINCOUNT per settings.spin (kAuto samples the machine: ~10 ms), glibc
// malloc thresholds that keep freed training buffers mapped (GLIBC_TUNABLES), then
// settings.extra_environment, whose entries replace fixed ones of the same NAME (getenv reads
// the first; so "GOMP_SPINCOUNT=..." can be tried without a rebuild).
std::vector<std::string> WorkerEnvironment(const WorkerSettings& settings);

// The recipe's view of a dataset schema (shape, element type, classes).
Result<DatasetSchema> RecipeSchemaFor(const dataset::DatasetSchema& schema);

// What a recipe declares, as read back through a sandboxed worker (untrusted values).
struct RecipeDescription {
  TrainingConfig training;
  ResourceBudget budget;
  OutputPolicy output;  // structurally checked; applied by train::EffectiveOutputPolicy
  uint64_t parameter_count = 0;  // floats in the flat parameter array (with alignment padding)
  uint64_t buffer_count = 0;     // floats of buffers (batch-norm statistics...)
  uint64_t output_size = 0;      // outputs per sample (must equal the class count)
  // The describing worker's own peak resident size, bytes (runtime-measured, not declared).
  uint64_t peak_resident_size = 0;
};

// Starts a worker with no data, loads the recipe for `schema` and reads its declarations and
// layout. Errors carry a FailureCategory via DescribeRecipeFailure-style messages; on error
// *failure (if non-null) says how the worker failed.
Result<RecipeDescription> DescribeRecipe(ByteSpan recipe, const dataset::DatasetSchema& schema,
                                         const WorkerSettings& settings,
                                         FailureCategory* failure = nullptr);

// Sane ranges for the recipe's untrusted hyper-parameters.
inline constexpr uint32_t kMaxEpochs = 1000;
inline constexpr uint32_t kMaxBatchSize = 4096;
inline constexpr double kMaxLearningRate = 10.0;

// The runtime's copy of a recipe's declared TrainingConfig: epochs clamped to [1, kMaxEpochs],
// batch size to [1, kMaxBatchSize], learning rate to (0, kMaxLearningRate]; then every field is
// validated (train::ValidateTrainingConfig). Refused (RefuseWorker(kHyperParameters), a fixed
// text that quotes no value: the values are the recipe's) for NaN/Inf anywhere, an unknown
// optimizer or schedule kind, or a value no clamp makes sense of (negative weight decay...).
Result<TrainingConfig> SanitizeTrainingConfig(const TrainingConfig& declared);

}  // namespace chiron::train
