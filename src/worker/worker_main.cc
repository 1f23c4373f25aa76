// chiron-worker: the sandboxed process that runs a provider's recipe (docs/sandbox.md,
// docs/training.md, docs/formats/worker-protocol.md).
//
// Start-up order, which is the whole point of this file:
//   1. the dynamic loader maps libtorch and its dependencies and runs *their* static
//      initialisers (Chiron's own code and the distribution's libraries: no recipe code exists);
//   2. main() fixes the few environment settings libtorch reads lazily, then calls Lockdown()
//      while the process is still single-threaded (libtorch starts its OpenMP pool only at the
//      first parallel kernel, so the pool inherits the seccomp filter and the Landlock domain);
//   3. hello (the runtime's Start() returns only now), then the configure frame with the schema
//      and engine options; only then Engine::Load dlopens /recipe.so, and the recipe's static
//      initialisers run inside the finished cage;
//   4. configured (layout counts), then requests until shutdown or EOF.
//
// Everything the worker sends is a fixed-size frame with numbers in it; a failure is one of the
// WorkerFailure codes, never text. The engine's error messages stay in this process.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "shared/worker_abi/worker_protocol.h"
#include "worker/engine.h"
#include "worker/lockdown.h"
#include "shared/worker_abi/sandbox_policy.h"
#include "worker/torch_preinit.h"

namespace chiron::worker {
namespace {

struct Channel {
  uint8_t* data = nullptr;
  size_t size = 0;
};

// Maps a whole channel (its size is fixed and sealed by the runtime).
Channel MapChannel(int fd, int protection) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) _exit(kWorkerExitProtocolError);
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), protection, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(kWorkerExitProtocolError);
  return {static_cast<uint8_t*>(p), static_cast<size_t>(st.st_size)};
}

void Send(const WorkerFrame& frame) {
  const auto bytes = EncodeWorkerFrame(frame);
  ssize_t n;
  do {
    n = write(kWorkerControlFd, bytes.data(), bytes.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(bytes.size())) _exit(kWorkerExitProtocolError);
}

// The next request; exits 0 when the runtime closed the channel.
WorkerFrame Receive() {
  uint8_t buffer[kWorkerFrameSize + 1];
  ssize_t n;
  do {
    n = read(kWorkerControlFd, buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  if (n == 0) _exit(kWorkerExitOk);
  Result<WorkerFrame> frame = DecodeWorkerFrame(ByteSpan(buffer, n < 0 ? 0 : static_cast<size_t>(n)));
  if (!frame.ok()) _exit(kWorkerExitProtocolError);
  return *frame;
}

void SendFailure(uint64_t sequence, WorkerFailure reason) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kFailed;
  frame.sequence = sequence;
  frame.fields[0] = static_cast<uint64_t>(reason);
  Send(frame);
}

// The engine turns every exception into a Status with a message; only a reason code leaves the
// process. Allocation failures (RLIMIT_AS) and non-finite losses get their own codes so that the
// runtime can report out-of-memory and numerical errors as such.
WorkerFailure ReasonFor(const Status& status) {
  const std::string& m = status.message();
  if (m.find("can't allocate memory") != std::string::npos ||
      m.find("bad_alloc") != std::string::npos ||
      m.find("not enough memory") != std::string::npos) {
    return WorkerFailure::kOutOfMemory;
  }
  if (m.find("NaN or infinite") != std::string::npos) return WorkerFailure::kNumericalError;
  if (status.code() == StatusCode::kInvalidArgument) return WorkerFailure::kBadRequest;
  return WorkerFailure::kRecipeError;
}

// Why Engine::Load failed, as a code registration can report (docs/recipes.md, "Checked at the
// door"): the engine's own texts name the case, the runtime gets only the code.
WorkerFailure LoadFailureFor(const Status& status) {
  const std::string& m = status.message();
  if (status.code() == StatusCode::kFailedPrecondition) return WorkerFailure::kRecipeAbi;
  if (m.find("is not a Chiron recipe") != std::string::npos ||
      m.find("null entry record") != std::string::npos ||
      m.find("entry record lacks") != std::string::npos) {
    return WorkerFailure::kNoEntryPoint;
  }
  if (m.find("is not a loadable shared object") != std::string::npos) {
    return WorkerFailure::kNotLoadable;
  }
  if (status.code() == StatusCode::kInvalidArgument) return WorkerFailure::kUnsupported;
  return ReasonFor(status);
}

int Serve(Engine& engine, const WorkerJobConfig& config) {
  const ParameterLayout& layout = engine.layout();
  const uint64_t parameter_count = layout.parameter_count;
  const uint64_t buffer_count = layout.buffer_count;
  const uint64_t output_size = static_cast<uint64_t>(engine.output_size());
  const uint64_t sample_size = static_cast<uint64_t>(config.schema.SampleElementCount()) *
                               ElementSize(config.schema.element_type);
  const Channel inputs = MapChannel(kWorkerInputFd, PROT_READ);
  const Channel parameters = MapChannel(kWorkerParameterFd, PROT_READ);
  const Channel gradients = MapChannel(kWorkerGradientFd, PROT_READ | PROT_WRITE);
  const Channel output = MapChannel(kWorkerOutputFd, PROT_READ | PROT_WRITE);
  const uint64_t state_size = (parameter_count + buffer_count) * sizeof(float);
  if (state_size > parameters.size || state_size > gradients.size) {
    return kWorkerExitProtocolError;  // the runtime checked this against the configured frame
  }
  const auto* params = reinterpret_cast<const float*>(parameters.data);
  auto* grads = reinterpret_cast<float*>(gradients.data);
  auto* out = reinterpret_cast<float*>(output.data);
  const std::span<const float> param_span(params, parameter_count);
  const std::span<const float> buffer_span(params + parameter_count, buffer_count);

  for (;;) {
    const WorkerFrame request = Receive();
    WorkerFrame reply;
    reply.sequence = request.sequence;
    switch (request.type) {
      case WorkerFrameType::kShutdown:
        return kWorkerExitOk;
      case WorkerFrameType::kDescribe: {
        const uint64_t page = request.fields[0];
        if (page >= kDescriptionPages) return kWorkerExitProtocolError;
        const RecipeDeclarationValues values =
            PackRecipeDeclarations(engine.training_config(), engine.budget(),
                                   engine.output_policy());
        reply.type = WorkerFrameType::kDescription;
        reply.fields[0] = page;
        for (size_t i = 0; i < kDescriptionValuesPerPage; ++i) {
          reply.fields[1 + i] = values[page * kDescriptionValuesPerPage + i];
        }
        break;
      }
      case WorkerFrameType::kInitialParameters: {
        if (request.fields[0] != parameter_count || request.fields[1] != buffer_count) {
          SendFailure(request.sequence, WorkerFailure::kBadRequest);
          continue;
        }
        Status status = engine.InitialParameters(
            std::span<float>(grads, parameter_count),
            std::span<float>(grads + parameter_count, buffer_count));
        if (!status.ok()) {
          SendFailure(request.sequence, ReasonFor(status));
          continue;
        }
        reply.type = WorkerFrameType::kParametersReady;
        reply.fields[0] = parameter_count;
        reply.fields[1] = buffer_count;
        break;
      }
      case WorkerFrameType::kComputeGradients: {
        const uint64_t count = request.fields[0];
        if (count == 0 || count > config.max_batch || request.fields[1] != parameter_count ||
            request.fields[2] != buffer_count ||
            InputArenaBytes(count, sample_size) > inputs.size) {
          SendFailure(request.sequence, WorkerFailure::kBadRequest);
          continue;
        }
        BatchView batch{{inputs.data, count * sample_size},
                        {inputs.data + InputLabelOffset(count, sample_size),
                         count * sizeof(uint16_t)},
                        LabelType::kU16,
                        count};
        float loss = 0;
        Status status = engine.ComputeGradients(
            param_span, buffer_span, batch, std::span<float>(grads, parameter_count),
            std::span<float>(grads + parameter_count, buffer_count), &loss);
        if (!status.ok()) {
          SendFailure(request.sequence, ReasonFor(status));
          continue;
        }
        // No finiteness pass here: the runtime checks every number it copies out (a NaN is a
        // numerical error there), and a pass over the gradients would cost every step.
        reply.type = WorkerFrameType::kGradientsReady;
        const double loss64 = loss;
        std::memcpy(&reply.fields[1], &loss64, sizeof(loss64));
        reply.fields[0] = parameter_count;
        reply.fields[2] = count;
        reply.fields[3] = buffer_count;
        break;
      }
      case WorkerFrameType::kPredict: {
        const uint64_t count = request.fields[0];
        if (count == 0 || count > config.max_batch || request.fields[1] != count * output_size ||
            count * sample_size > inputs.size || count * output_size * sizeof(float) > output.size) {
          SendFailure(request.sequence, WorkerFailure::kBadRequest);
          continue;
        }
        Status status = engine.Predict(param_span, buffer_span,
                                       std::span<const uint8_t>(inputs.data, count * sample_size),
                                       count, std::span<float>(out, count * output_size));
        if (!status.ok()) {
          SendFailure(request.sequence, ReasonFor(status));
          continue;
        }
        reply.type = WorkerFrameType::kOutputReady;
        reply.fields[0] = count * output_size;
        break;
      }
      default:
        return kWorkerExitProtocolError;
    }
    Send(reply);
  }
}

// `chiron-worker --explain-load RECIPE.so SHAPE CLASSES TYPE` (SHAPE like 1x28x28, TYPE u8 or
// f32): loads the recipe in this process, WITHOUT the sandbox, and prints Engine::Load's message
// (BuildModel's error, the missing entry point...) on stdout; exit 0 if it loaded, 1 if not, 2
// on bad arguments. Only `chiron-operator recipe check` runs it, on the provider's own machine
// with the provider's own recipe and no data; chirond's sandbox launcher always starts the
// worker with no argument, and any other argument list still exits at once.
int ExplainLoad(int argc, char** argv) {
  if (argc != 6) return 2;
  DatasetSchema schema;
  std::string shape = argv[3];
  for (size_t at = 0; at <= shape.size();) {
    size_t end = shape.find('x', at);
    if (end == std::string::npos) end = shape.size();
    schema.input_shape.push_back(std::atoll(shape.substr(at, end - at).c_str()));
    at = end + 1;
  }
  schema.class_count = std::atoll(argv[4]);
  schema.element_type = std::string(argv[5]) == "f32" ? ElementType::kF32 : ElementType::kU8;
  Result<std::unique_ptr<Engine>> engine = Engine::Load(argv[2], schema, EngineOptions{});
  if (!engine.ok()) {
    std::printf("%s\n", engine.status().message().c_str());
    return 1;
  }
  std::printf("loaded\n");
  return 0;
}

int Main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--explain-load") == 0) return ExplainLoad(argc, argv);
  if (argc != 1) return kWorkerExitProtocolError;
  // Read lazily by oneDNN at its first kernel: no profiler dlopen (refused anyway), no AMX
  // permission dance beyond what the policy allows. The runtime sets the same values; these are
  // a fallback for a hand-started worker.
  setenv("DNNL_JIT_PROFILE", "0", 0);
  // libtorch reads /proc, /sys and /dev/urandom on first use; after the lockdown none exists.
  PreinitializeTorchBeforeLockdown();

  Result<LockdownReport> report = Lockdown(LockdownOptions{});
  if (!report.ok()) return kWorkerExitLockdownFailed;

  WorkerFrame hello;
  hello.type = WorkerFrameType::kHello;
  hello.fields[0] = SandboxPolicyFingerprint();
  hello.fields[1] = static_cast<uint64_t>(report->landlock_abi);
  Send(hello);

  const WorkerFrame configure = Receive();
  if (configure.type == WorkerFrameType::kShutdown) return kWorkerExitOk;
  Result<WorkerJobConfig> config = DecodeConfigureFrame(configure);
  if (!config.ok()) return kWorkerExitProtocolError;

  EngineOptions options;
  options.threads = static_cast<int>(config->threads);
  options.seed = config->seed;
  options.max_batch = config->max_batch;
  // The first moment any recipe code runs (dlopen → its static initialisers): inside the cage.
  Result<std::unique_ptr<Engine>> engine =
      Engine::Load(report->recipe_path, config->schema, options);
  if (!engine.ok()) {
    SendFailure(configure.sequence, LoadFailureFor(engine.status()));
    return kWorkerExitRecipeFailed;
  }
  WorkerFrame configured;
  configured.type = WorkerFrameType::kConfigured;
  configured.sequence = configure.sequence;
  configured.fields[0] = (*engine)->layout().parameter_count;
  configured.fields[1] = (*engine)->layout().buffer_count;
  configured.fields[2] = static_cast<uint64_t>((*engine)->output_size());
  Send(configured);
  return Serve(**engine, *config);
}

}  // namespace
}  // namespace chiron::worker

int main(int argc, char** argv) {
  try {
    return chiron::worker::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    return chiron::kWorkerExitOutOfMemory;
  } catch (...) {
    return chiron::kWorkerExitRecipeFailed;
  }
}
