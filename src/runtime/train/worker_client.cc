#include "runtime/train/worker_client.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "shared/base/vector_clones.h"
#include "shared/worker_abi/sandbox_policy.h"

namespace chiron::train {
namespace {

using Clock = std::chrono::steady_clock;

// How the worker's own end maps onto the categories (the exit status is the kernel's word, not
// the worker's, except for the exit codes of the worker's trusted main).
FailureCategory CategoryForExit(const sandbox::ExitInfo& exit, FailureCategory fallback) {
  switch (exit.category) {
    case sandbox::ExitCategory::kInvalidSyscall: return FailureCategory::kSandboxViolation;
    case sandbox::ExitCategory::kOutOfMemory: return FailureCategory::kOutOfMemory;
    case sandbox::ExitCategory::kCpuTimeLimit: return FailureCategory::kTimeLimit;
    case sandbox::ExitCategory::kCrashed: return FailureCategory::kCrashed;
    case sandbox::ExitCategory::kFailed:
      return exit.exit_code == kWorkerExitRecipeFailed && fallback == FailureCategory::kCrashed
                 ? FailureCategory::kCrashed
                 : fallback;
    case sandbox::ExitCategory::kExitedCleanly:
    case sandbox::ExitCategory::kKilledByRuntime: return fallback;
  }
  return fallback;
}

FailureCategory CategoryForReason(uint64_t reason) {
  switch (static_cast<WorkerFailure>(reason)) {
    case WorkerFailure::kOutOfMemory: return FailureCategory::kOutOfMemory;
    case WorkerFailure::kNumericalError: return FailureCategory::kNumericalError;
    case WorkerFailure::kUnsupported: return FailureCategory::kRecipeRejected;
    case WorkerFailure::kBadRequest: return FailureCategory::kInvalidOutput;
    case WorkerFailure::kRecipeError: return FailureCategory::kCrashed;
    case WorkerFailure::kNoEntryPoint:
    case WorkerFailure::kRecipeAbi:
    case WorkerFailure::kNotLoadable: return FailureCategory::kRecipeRejected;
  }
  return FailureCategory::kInvalidOutput;
}


// The largest |x| of `values` as a bit pattern. For non-negative floats the bit patterns order
// like the values, and every NaN and infinity lies above every finite value, so one integer
// maximum checks finiteness and range at once; the loop vectorises (one pass, about 0.1 ms for
// LeNet's 431,080 gradients from cache).
CHIRON_VECTOR_CLONES
uint32_t MaxAbsBits(const float* __restrict values, size_t count) {
  uint32_t largest = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], sizeof bits);
    bits &= 0x7fffffffu;
    largest = bits > largest ? bits : largest;
  }
  return largest;
}

}  // namespace

WorkerCheck CheckRange(std::span<const float> values, float max_abs) {
  if (!(max_abs >= 0)) return WorkerRefusal::kOutOfRange;  // a NaN bound: nothing passes
  uint32_t bound;
  std::memcpy(&bound, &max_abs, sizeof bound);
  const uint32_t largest = MaxAbsBits(values.data(), values.size());
  if (largest <= (bound & 0x7fffffffu)) return WorkerCheck();
  // Which value failed is not said: its index is the worker's choice.
  return largest >= 0x7f800000u ? WorkerRefusal::kNotFinite : WorkerRefusal::kOutOfRange;
}

Result<std::unique_ptr<WorkerClient>> WorkerClient::Start(ByteSpan recipe,
                                                          const WorkerClientOptions& options,
                                                          const WorkerSettings& settings,
                                                          FailureCategory* failure) {
  if (failure != nullptr) *failure = FailureCategory::kInternal;
  if (settings.stopper != nullptr && settings.stopper->stopped()) {
    if (failure != nullptr) *failure = FailureCategory::kStopped;
    return AbortedError("worker: stopped by the runtime before the start");
  }
  const int64_t elements = options.schema.SampleElementCount();
  if (elements <= 0) return InvalidArgumentError("worker: empty input shape");
  const uint64_t sample_size =
      static_cast<uint64_t>(elements) * ElementSize(options.schema.element_type);
  if (settings.threads < 1 || settings.threads > 256) {
    return InvalidArgumentError("worker: threads must be in [1, 256]");
  }
  WorkerJobConfig job;
  job.schema = options.schema;
  job.threads = static_cast<uint32_t>(settings.threads);
  job.seed = options.seed;
  job.max_batch = options.max_batch;
  CHIRON_ASSIGN_OR_RETURN(WorkerFrame configure, EncodeConfigureFrame(job, 1));

  sandbox::SandboxConfig config;
  config.worker_path = settings.worker_path;
  config.environment = WorkerEnvironment(settings);
  config.input_size = InputArenaBytes(options.max_batch, sample_size);
  config.recipe = recipe;
  config.parameter_count = settings.max_arena_count;
  config.output_count = static_cast<uint64_t>(options.max_batch) * settings.max_output_size;
  config.limits = settings.limits;
  // The job's deadline bounds the start too (the configure exchange below checks it again).
  const auto start = Clock::now();
  if (start >= options.deadline) {
    if (failure != nullptr) *failure = FailureCategory::kTimeLimit;
    return DeadlineExceededError("worker: the job's wall-clock limit was reached before the start");
  }
  config.hello_timeout = std::min(
      settings.start_timeout,
      std::chrono::ceil<std::chrono::milliseconds>(options.deadline - start));
  Result<std::unique_ptr<sandbox::SandboxedProcess>> process =
      sandbox::SandboxLauncher::Start(config);
  if (!process.ok()) {
    if (failure != nullptr && Clock::now() >= options.deadline) {
      *failure = FailureCategory::kTimeLimit;
    } else if (failure != nullptr && process.status().code() == StatusCode::kResourceExhausted) {
      *failure = FailureCategory::kOutOfMemory;  // killed for its memory while starting
    }
    return process.status();
  }
  std::unique_ptr<WorkerClient> client(
      new WorkerClient(std::move(process).value(), settings, sample_size, options.deadline));
  // From here a Stop() kills this worker, and one that came during the launch already has.
  if (settings.stopper != nullptr) settings.stopper->Attach(client.get());

  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kConfigured;
  expect.sequence = 1;
  expect.max_arena_count = settings.max_arena_count;
  expect.max_output_size = settings.max_output_size;
  Result<WorkerFrame> configured = client->Exchange(configure, expect);
  if (!configured.ok()) {
    // A worker that dies or refuses while loading the recipe has seen no data yet.
    if (client->failure_ == FailureCategory::kCrashed)
      client->failure_ = FailureCategory::kRecipeRejected;
    if (failure != nullptr) *failure = client->failure_;
    return configured.status();
  }
  client->parameter_count_ = configured->fields[0];
  client->buffer_count_ = configured->fields[1];
  client->output_size_ = configured->fields[2];
  if (failure != nullptr) *failure = FailureCategory::kNone;
  return client;
}

WorkerClient::~WorkerClient() {
  if (settings_.stopper != nullptr) settings_.stopper->Detach(this);
  Shutdown();
}

void WorkerStopper::Stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
  for (WorkerClient* client : clients_) client->Abort();
}

bool WorkerStopper::stopped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopped_;
}

void WorkerStopper::Attach(WorkerClient* client) {
  std::lock_guard<std::mutex> lock(mutex_);
  clients_.push_back(client);
  if (stopped_) client->Abort();
}

void WorkerStopper::Detach(WorkerClient* client) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase(clients_, client);
}

void WorkerClient::Shutdown() {
  if (process_ == nullptr) return;
  WorkerFrame bye;
  bye.type = WorkerFrameType::kShutdown;
  bye.sequence = ++sequence_;
  const bool exited = failure_ == FailureCategory::kNone && !aborted() &&
                      process_->SendFrame(bye, Clock::now() + std::chrono::seconds(2)).ok() &&
                      process_->Wait(Clock::now() + std::chrono::seconds(5)).ok();
  if (!exited) {
    process_->Kill();
    process_->Wait(Clock::now() + std::chrono::seconds(10)).status().IgnoreError();
  }
  std::lock_guard<std::mutex> lock(process_mutex_);
  released_peak_ = std::max(released_peak_, process_->peak_resident_size());
  process_.reset();
}

void WorkerClient::Abort() {
  aborted_.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> lock(process_mutex_);
  if (process_ != nullptr) process_->Kill();
}

uint64_t WorkerClient::peak_resident_size() const {
  std::lock_guard<std::mutex> lock(process_mutex_);
  return std::max(released_peak_, process_ != nullptr ? process_->peak_resident_size() : 0);
}

Status WorkerClient::Fail(FailureCategory category, const Status& cause) {
  if (failure_ != FailureCategory::kNone) return failure_status_;
  if (process_ != nullptr) {
    process_->Kill();
    Result<sandbox::ExitInfo> exit = process_->Wait(Clock::now() + std::chrono::seconds(10));
    // Only the category: the exit code and signal are the worker's choice (ExitInfo::ToString
    // is for debugging, never for a message).
    if (exit.ok()) category = CategoryForExit(*exit, category);
  }
  if (aborted()) {
    // Whatever the request saw (a closed channel, most likely), the runtime asked for this end.
    failure_ = FailureCategory::kStopped;
    failure_status_ = AbortedError("worker stopped by the runtime");
    return failure_status_;
  }
  failure_ = category;
  // The message is the runtime's own (frame validation, deadline, category): no worker text.
  failure_status_ = Status(cause.code() == StatusCode::kOk ? StatusCode::kInternal : cause.code(),
                           "worker failed (" + std::string(FailureCategoryName(category)) +
                               "): " + cause.message());
  return failure_status_;
}

Status WorkerClient::CheckLimits() {
  if (failure_ != FailureCategory::kNone) return failure_status_;
  if (aborted()) return Fail(FailureCategory::kStopped, AbortedError("stopped"));
  if (Clock::now() >= deadline_) {
    return Fail(FailureCategory::kTimeLimit,
                DeadlineExceededError("the job's wall-clock limit was reached"));
  }
  return Status::Ok();
}

Result<WorkerFrame> WorkerClient::Exchange(const WorkerFrame& request,
                                           const WorkerFrameExpectation& expect) {
  if (failure_ != FailureCategory::kNone) return failure_status_;
  if (process_ == nullptr) return FailedPreconditionError("worker: already shut down");
  CHIRON_RETURN_IF_ERROR(CheckLimits());
  const auto now = Clock::now();
  const auto timeout = request.type == WorkerFrameType::kConfigure ? settings_.start_timeout
                                                                    : settings_.request_timeout;
  // The request's own limit or the job's, whichever comes first (time_point::max() - now does
  // not overflow: now is positive).
  const bool job_limit_first = deadline_ - now <= timeout;
  const auto deadline = job_limit_first ? deadline_ : now + timeout;
  auto deadline_error = [job_limit_first](const Status& status) {
    return job_limit_first ? DeadlineExceededError(
                                 "the job's wall-clock limit was reached during a request")
                           : status;
  };
  if (Status sent = process_->SendFrame(request, deadline); !sent.ok()) {
    return sent.code() == StatusCode::kDeadlineExceeded
               ? Fail(FailureCategory::kTimeLimit, deadline_error(sent))
               : Fail(FailureCategory::kCrashed, sent);
  }
  Result<WorkerFrame> frame = process_->ReceiveFrame(expect, deadline);
  if (!frame.ok()) {
    const StatusCode code = frame.status().code();
    if (code == StatusCode::kDeadlineExceeded) {
      return Fail(FailureCategory::kTimeLimit, deadline_error(frame.status()));
    }
    return Fail(code == StatusCode::kInvalidArgument ? FailureCategory::kInvalidOutput
                                                     : FailureCategory::kCrashed,
                frame.status());
  }
  if (frame->type == WorkerFrameType::kFailed) {
    return Fail(CategoryForReason(frame->fields[0]),
                UnknownError(std::string(WorkerFrameTypeName(request.type)) + " refused: " +
                             std::string(WorkerFailureMessage(
                                 static_cast<WorkerFailure>(frame->fields[0])))));
  }
  return frame;
}

Status WorkerClient::Describe(TrainingConfig& training, ResourceBudget& budget,
                              OutputPolicy& output) {
  RecipeDeclarationValues values{};
  for (uint64_t page = 0; page < kDescriptionPages; ++page) {
    WorkerFrame request;
    request.type = WorkerFrameType::kDescribe;
    request.sequence = ++sequence_;
    request.fields[0] = page;
    WorkerFrameExpectation expect;
    expect.type = WorkerFrameType::kDescription;
    expect.sequence = request.sequence;
    expect.page = page;
    CHIRON_ASSIGN_OR_RETURN(WorkerFrame frame, Exchange(request, expect));
    for (size_t i = 0; i < kDescriptionValuesPerPage; ++i) {
      values[page * kDescriptionValuesPerPage + i] = frame.fields[1 + i];
    }
  }
  if (Status s = UnpackRecipeDeclarations(values, training, budget, &output); !s.ok()) {
    return Fail(FailureCategory::kRecipeRejected, s);
  }
  return Status::Ok();
}

std::span<float> WorkerClient::state() {
  return process_->parameters().first(parameter_count_ + buffer_count_);
}

std::span<uint8_t> WorkerClient::inputs() { return process_->inputs(); }

Status WorkerClient::InitialParameters(std::vector<float>& params, std::vector<float>& buffers,
                                       float max_abs) {
  WorkerFrame request;
  request.type = WorkerFrameType::kInitialParameters;
  request.sequence = ++sequence_;
  request.fields[0] = parameter_count_;
  request.fields[1] = buffer_count_;
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kParametersReady;
  expect.sequence = request.sequence;
  expect.count = parameter_count_;
  expect.buffer_count = buffer_count_;
  CHIRON_RETURN_IF_ERROR(Exchange(request, expect).status());
  Result<std::vector<float>> copy = process_->ReadGradients(
      parameter_count_ + buffer_count_, std::numeric_limits<float>::max());
  if (!copy.ok()) return Fail(FailureCategory::kNumericalError, copy.status());
  if (Status s = CheckRange(*copy, max_abs); !s.ok()) {
    return Fail(FailureCategory::kNumericalError, s);
  }
  params.assign(copy->begin(), copy->begin() + static_cast<ptrdiff_t>(parameter_count_));
  buffers.assign(copy->begin() + static_cast<ptrdiff_t>(parameter_count_), copy->end());
  return Status::Ok();
}

Status WorkerClient::ComputeGradients(uint64_t count, std::vector<float>& grads,
                                      std::vector<float>& buffers, double* loss,
                                      float max_abs_gradient, float max_abs_buffer) {
  WorkerFrame request;
  request.type = WorkerFrameType::kComputeGradients;
  request.sequence = ++sequence_;
  request.fields[0] = count;
  request.fields[1] = parameter_count_;
  request.fields[2] = buffer_count_;
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kGradientsReady;
  expect.sequence = request.sequence;
  expect.count = parameter_count_;
  expect.sample_count = count;
  expect.buffer_count = buffer_count_;
  Result<WorkerFrame> frame = Exchange(request, expect);
  if (!frame.ok()) {
    // ValidateWorkerFrame rejects a non-finite or huge loss as a malformed frame; it is a
    // numerical failure of the recipe, not garbage, so say so.
    if (failure_ == FailureCategory::kInvalidOutput &&
        WorkerRefusalOf(frame.status()) == WorkerRefusal::kLoss) {
      failure_ = FailureCategory::kNumericalError;
      failure_status_ =
          Status(failure_status_.code(), "worker failed (numerical error): " +
                                             RefuseWorker(WorkerRefusal::kLoss).message());
      return failure_status_;
    }
    return frame.status();
  }
  std::memcpy(loss, &frame->fields[1], sizeof(*loss));
  // Copy into the caller's reused arrays (no allocation, no page faults), then check the copies.
  grads.resize(parameter_count_);
  buffers.resize(buffer_count_);
  if (Status s = process_->CopyGradients(0, grads); !s.ok()) {
    return Fail(FailureCategory::kInternal, s);
  }
  if (Status s = process_->CopyGradients(parameter_count_, buffers); !s.ok()) {
    return Fail(FailureCategory::kInternal, s);
  }
  if (Status s = CheckRange(grads, max_abs_gradient); !s.ok()) {
    return Fail(FailureCategory::kNumericalError, s);
  }
  if (Status s = CheckRange(buffers, max_abs_buffer); !s.ok()) {
    return Fail(FailureCategory::kNumericalError, s);
  }
  return Status::Ok();
}

Result<std::vector<float>> WorkerClient::Predict(uint64_t count, float max_abs_output) {
  WorkerFrame request;
  request.type = WorkerFrameType::kPredict;
  request.sequence = ++sequence_;
  request.fields[0] = count;
  request.fields[1] = count * output_size_;
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kOutputReady;
  expect.sequence = request.sequence;
  expect.count = count * output_size_;
  CHIRON_RETURN_IF_ERROR(Exchange(request, expect).status());
  Result<std::vector<float>> copy =
      process_->ReadOutput(count * output_size_, std::numeric_limits<float>::max());
  if (!copy.ok()) return Fail(FailureCategory::kNumericalError, copy.status());
  if (Status s = CheckRange(*copy, max_abs_output); !s.ok()) {
    return Fail(FailureCategory::kNumericalError, s);
  }
  return copy;
}

}  // namespace chiron::train
