// scripted_worker: a real worker process without libtorch, for tests and benchmarks that drive
// the runtime's worker boundary (job manager, sessions, the covert-channel harness).
//
// It follows chiron-worker's start-up path exactly (src/worker/worker_main.cc): Lockdown() while
// single-threaded, hello, the configure frame, and only then the "recipe" is read: the recipe
// memfd's bytes, a script (never dlopened). Then it serves describe, initial-parameters,
// compute-gradients, predict and shutdown like the real worker, with a real model: multinomial
// logistic regression trained by the runtime's own optimizer. The script's keys (declarations,
// sleeps, allocations, failures, covert-channel leaks, secrets in frame fields) are documented in
// tests/workers/scripted_recipe.h, with ScriptedRecipe() to write one.
//
//   scripted_worker            (no arguments; started by the runtime's SandboxLauncher)
//
// Exit codes are chiron-worker's (shared/worker_abi/worker_protocol.h); a script it cannot parse
// is kWorkerExitProtocolError.
#include <fcntl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "shared/worker_abi/sandbox_policy.h"
#include "shared/worker_abi/worker_protocol.h"
#include "tests/workers/scripted_script.h"
#include "worker/lockdown.h"

namespace chiron::scripted {
namespace {

struct Channel {
  uint8_t* data = nullptr;
  size_t size = 0;
};

Channel MapChannel(int fd, int protection) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) _exit(kWorkerExitProtocolError);
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), protection, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(kWorkerExitProtocolError);
  return {static_cast<uint8_t*>(p), static_cast<size_t>(st.st_size)};
}

void SendBytes(const uint8_t* bytes, size_t size) {
  ssize_t n;
  do {
    n = write(kWorkerControlFd, bytes, size);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(size)) _exit(kWorkerExitProtocolError);
}

void Send(const WorkerFrame& frame) {
  const auto bytes = EncodeWorkerFrame(frame);
  SendBytes(bytes.data(), bytes.size());
}

WorkerFrame Receive() {
  uint8_t buffer[kWorkerFrameSize + 1];
  ssize_t n;
  do {
    n = read(kWorkerControlFd, buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  if (n == 0) _exit(kWorkerExitOk);
  Result<WorkerFrame> frame =
      DecodeWorkerFrame(ByteSpan(buffer, n < 0 ? 0 : static_cast<size_t>(n)));
  if (!frame.ok()) _exit(kWorkerExitProtocolError);
  return *frame;
}

void SendFailure(uint64_t sequence, uint64_t reason) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kFailed;
  frame.sequence = sequence;
  frame.fields[0] = reason;
  Send(frame);
}

void SleepMs(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

[[noreturn]] void Hang() {
  for (;;) SleepMs(1000);
}

[[noreturn]] void Crash() {
  std::raise(SIGSEGV);
  _exit(kWorkerExitRecipeFailed);  // not reached
}

// Allocates and touches `mib` MiB that stay allocated until the process ends.
void AllocateAndTouch(uint64_t mib) {
  const size_t size = static_cast<size_t>(mib) << 20;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(kWorkerExitOutOfMemory);
  auto* bytes = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < size; i += 4096) bytes[i] = static_cast<uint8_t>(i >> 12 | 1);
}

// The whole recipe file, read once after the lockdown (Landlock allows reading it, nothing else).
std::string ReadRecipe(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) _exit(kWorkerExitRecipeFailed);
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) _exit(kWorkerExitRecipeFailed);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxScriptSize) _exit(kWorkerExitProtocolError);
  }
  close(fd);
  return text;
}

class Worker {
 public:
  Worker(const Script& script, const WorkerJobConfig& config)
      : script_(script),
        config_(config),
        elements_(static_cast<uint64_t>(config.schema.SampleElementCount())),
        classes_(static_cast<uint64_t>(config.schema.class_count)),
        sample_size_(elements_ * ElementSize(config.schema.element_type)),
        parameter_count_(classes_ * elements_ + classes_),
        buffer_count_(script.buffers),
        features_(elements_),
        logits_(classes_) {}

  uint64_t parameter_count() const { return parameter_count_; }
  uint64_t buffer_count() const { return buffer_count_; }
  uint64_t output_size() const { return classes_; }

  int Serve() {
    inputs_ = MapChannel(kWorkerInputFd, PROT_READ);
    const Channel parameters = MapChannel(kWorkerParameterFd, PROT_READ);
    const Channel gradients = MapChannel(kWorkerGradientFd, PROT_READ | PROT_WRITE);
    const Channel output = MapChannel(kWorkerOutputFd, PROT_READ | PROT_WRITE);
    const uint64_t state_size = (parameter_count_ + buffer_count_) * sizeof(float);
    if (state_size > parameters.size || state_size > gradients.size) {
      return kWorkerExitProtocolError;
    }
    params_ = reinterpret_cast<const float*>(parameters.data);
    grads_ = reinterpret_cast<float*>(gradients.data);
    out_ = reinterpret_cast<float*>(output.data);
    output_capacity_ = output.size / sizeof(float);
    for (;;) {
      const WorkerFrame request = Receive();
      switch (request.type) {
        case WorkerFrameType::kShutdown: return kWorkerExitOk;
        case WorkerFrameType::kDescribe: Describe(request); break;
        case WorkerFrameType::kInitialParameters: InitialParameters(request); break;
        case WorkerFrameType::kComputeGradients: ComputeGradients(request); break;
        case WorkerFrameType::kPredict: Predict(request); break;
        default: return kWorkerExitProtocolError;
      }
    }
  }

 private:
  const uint8_t* Sample(uint64_t i) const { return inputs_.data + i * sample_size_; }

  // Features of sample i into features_; notes the leak bit.
  void LoadFeatures(uint64_t i) {
    const uint8_t* sample = Sample(i);
    leak_bit_ |= sample[0] & 1;
    if (config_.schema.element_type == ElementType::kU8) {
      for (uint64_t d = 0; d < elements_; ++d) features_[d] = sample[d] / 255.0f;
    } else {
      std::memcpy(features_.data(), sample, elements_ * sizeof(float));
    }
  }

  // logits_ = W x + b for the features in features_.
  void Forward() {
    for (uint64_t c = 0; c < classes_; ++c) {
      const float* w = params_ + c * elements_;
      float z = params_[classes_ * elements_ + c];
      for (uint64_t d = 0; d < elements_; ++d) z += w[d] * features_[d];
      logits_[c] = z;
    }
  }

  void Describe(const WorkerFrame& request) {
    const uint64_t page = request.fields[0];
    if (page >= kDescriptionPages) _exit(kWorkerExitProtocolError);
    const RecipeDeclarationValues values =
        PackRecipeDeclarations(script_.training, script_.budget, script_.output);
    WorkerFrame reply;
    reply.type = WorkerFrameType::kDescription;
    reply.sequence = request.sequence;
    reply.fields[0] = page;
    for (size_t i = 0; i < kDescriptionValuesPerPage; ++i) {
      reply.fields[1 + i] = values[page * kDescriptionValuesPerPage + i];
      if (page == 0 && script_.secret_place == SecretPlace::kDescription) {
        reply.fields[1 + i] = script_.secret;
      }
    }
    Send(reply);
  }

  void InitialParameters(const WorkerFrame& request) {
    if (request.fields[0] != parameter_count_ || request.fields[1] != buffer_count_) {
      SendFailure(request.sequence, static_cast<uint64_t>(WorkerFailure::kBadRequest));
      return;
    }
    uint64_t state = config_.seed ^ 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < parameter_count_; ++i) {
      // splitmix64 → uniform in [-0.01, 0.01) for the weights; biases 0.
      uint64_t z = (state += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      const double unit = static_cast<double>(z >> 11) * 0x1.0p-53;
      grads_[i] = i < classes_ * elements_ ? static_cast<float>((unit * 2 - 1) * 0.01) : 0.0f;
    }
    if (buffer_count_ > 0) grads_[parameter_count_] = 0;  // training samples seen
    WorkerFrame reply;
    reply.type = WorkerFrameType::kParametersReady;
    reply.sequence = request.sequence;
    reply.fields[0] = parameter_count_;
    reply.fields[1] = buffer_count_;
    Send(reply);
  }

  // What the script does at this step before the gradients are computed. May not return.
  void BeforeStep(uint64_t step, const WorkerFrame& request, bool* nan) {
    if (script_.sleep_per_step_ms > 0) SleepMs(script_.sleep_per_step_ms);
    if (script_.allocate_mb > 0 && step == script_.allocate_at_step) {
      AllocateAndTouch(script_.allocate_mb);
    }
    if (script_.leak != LeakChannel::kNone) {
      const uint64_t at = script_.leak_at_step;
      switch (script_.leak) {
        case LeakChannel::kTime:
          if (step == at && leak_bit_) SleepMs(script_.leak_sleep_ms);
          break;
        case LeakChannel::kMemory:
          if (step == at && leak_bit_) AllocateAndTouch(script_.leak_mb);
          break;
        case LeakChannel::kState:
          if (step == at && leak_bit_) Crash();
          break;
        case LeakChannel::kFailure:
          if (step == at) {
            if (!leak_bit_) Crash();
            *nan = true;
          }
          break;
        case LeakChannel::kEpochs:
          if ((step == at && leak_bit_) || step == 2 * at) Crash();
          break;
        case LeakChannel::kNone: break;
      }
    }
    if (script_.fail && step == script_.fail_step) {
      switch (script_.fail_kind) {
        case FailKind::kCrash: Crash();
        case FailKind::kNan: *nan = true; break;
        case FailKind::kHang: Hang();
        case FailKind::kExit: _exit(script_.fail_code);
        case FailKind::kBadFrame: {
          auto bytes = EncodeWorkerFrame(WorkerFrame{});
          bytes[0] ^= 0xff;  // not "CHWF"
          SendBytes(bytes.data(), bytes.size());
          Hang();  // the runtime kills the worker
        }
        case FailKind::kSyscall:
          syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);  // seccomp kills the process here
          Hang();
        case FailKind::kRefuse: break;  // answered by the caller
      }
    }
    if (script_.secret_place == SecretPlace::kExitCode && step == script_.secret_at_step) {
      _exit(static_cast<int>(script_.secret & 0xff));
    }
    (void)request;
  }

  void ComputeGradients(const WorkerFrame& request) {
    const uint64_t step = step_++;
    const uint64_t count = request.fields[0];
    if (count == 0 || count > config_.max_batch || request.fields[1] != parameter_count_ ||
        request.fields[2] != buffer_count_ || InputArenaBytes(count, sample_size_) > inputs_.size) {
      SendFailure(request.sequence, static_cast<uint64_t>(WorkerFailure::kBadRequest));
      return;
    }
    // The leak bit sees this batch before the script acts on it.
    for (uint64_t i = 0; i < count; ++i) leak_bit_ |= Sample(i)[0] & 1;
    bool nan = false;
    BeforeStep(step, request, &nan);
    if (script_.fail && step == script_.fail_step && script_.fail_kind == FailKind::kRefuse) {
      SendFailure(request.sequence, script_.fail_code);
      return;
    }
    const bool secret_now =
        script_.secret_place != SecretPlace::kNone && step == script_.secret_at_step;
    if (secret_now && script_.secret_place == SecretPlace::kReason) {
      SendFailure(request.sequence, script_.secret);
      return;
    }

    std::memset(grads_, 0, parameter_count_ * sizeof(float));
    const auto* labels =
        reinterpret_cast<const uint16_t*>(inputs_.data + InputLabelOffset(count, sample_size_));
    double loss = 0;
    const float scale = 1.0f / static_cast<float>(count);
    for (uint64_t i = 0; i < count; ++i) {
      uint16_t label;
      std::memcpy(&label, &labels[i], sizeof label);
      if (label >= classes_) {
        SendFailure(request.sequence, static_cast<uint64_t>(WorkerFailure::kBadRequest));
        return;
      }
      LoadFeatures(i);
      Forward();
      float largest = logits_[0];
      for (uint64_t c = 1; c < classes_; ++c) largest = std::max(largest, logits_[c]);
      double total = 0;
      for (uint64_t c = 0; c < classes_; ++c) total += std::exp(double{logits_[c]} - largest);
      loss += std::log(total) - (double{logits_[label]} - largest);
      for (uint64_t c = 0; c < classes_; ++c) {
        const float p = static_cast<float>(std::exp(double{logits_[c]} - largest) / total);
        const float g = (p - (c == label ? 1.0f : 0.0f)) * scale;
        float* gw = grads_ + c * elements_;
        for (uint64_t d = 0; d < elements_; ++d) gw[d] += g * features_[d];
        grads_[classes_ * elements_ + c] += g;
      }
    }
    loss /= static_cast<double>(count);
    // The buffer, like batch norm's num_batches_tracked: training samples seen, after this batch.
    if (buffer_count_ > 0)
      grads_[parameter_count_] = params_[parameter_count_] + static_cast<float>(count);
    if (nan) grads_[0] = std::numeric_limits<float>::quiet_NaN();
    if (secret_now && script_.secret_place == SecretPlace::kNanIndex) {
      grads_[script_.secret % parameter_count_] = std::numeric_limits<float>::quiet_NaN();
    }

    WorkerFrame reply;
    reply.type = WorkerFrameType::kGradientsReady;
    reply.sequence = request.sequence;
    reply.fields[0] = parameter_count_;
    std::memcpy(&reply.fields[1], &loss, sizeof loss);
    reply.fields[2] = count;
    reply.fields[3] = buffer_count_;
    if (secret_now) {
      switch (script_.secret_place) {
        case SecretPlace::kSequence: reply.sequence = script_.secret; break;
        case SecretPlace::kCount: reply.fields[0] = script_.secret; break;
        case SecretPlace::kLoss: reply.fields[1] = script_.secret; break;
        case SecretPlace::kSamples: reply.fields[2] = script_.secret; break;
        case SecretPlace::kBuffers: reply.fields[3] = script_.secret; break;
        case SecretPlace::kReserved: reply.fields[4] = reply.fields[5] = script_.secret; break;
        default: break;
      }
    }
    Send(reply);
  }

  void Predict(const WorkerFrame& request) {
    const uint64_t count = request.fields[0];
    if (count == 0 || count > config_.max_batch || request.fields[1] != count * classes_ ||
        count * sample_size_ > inputs_.size || count * classes_ > output_capacity_) {
      SendFailure(request.sequence, static_cast<uint64_t>(WorkerFailure::kBadRequest));
      return;
    }
    if (script_.remember_inputs && !remembered_) {
      remembered_ = true;
      remembered_class_ = Sample(0)[0] % classes_;
    }
    for (uint64_t i = 0; i < count; ++i) {
      LoadFeatures(i);
      Forward();
      if (script_.remember_inputs) {  // every answer names the class the first input chose
        for (uint64_t c = 0; c < classes_; ++c) logits_[c] = c == remembered_class_ ? 20.0f : 0.0f;
      }
      std::memcpy(out_ + i * classes_, logits_.data(), classes_ * sizeof(float));
    }
    WorkerFrame reply;
    reply.type = WorkerFrameType::kOutputReady;
    reply.sequence = request.sequence;
    reply.fields[0] = count * classes_;
    if (!predicted_) {
      predicted_ = true;
      if (script_.secret_place == SecretPlace::kOutputNanIndex) {
        out_[script_.secret % (count * classes_)] = std::numeric_limits<float>::quiet_NaN();
      } else if (script_.secret_place == SecretPlace::kOutputCount) {
        reply.fields[0] = script_.secret;
      }
    }
    Send(reply);
  }

  const Script script_;
  const WorkerJobConfig config_;
  const uint64_t elements_, classes_, sample_size_, parameter_count_, buffer_count_;
  Channel inputs_;
  const float* params_ = nullptr;
  float* grads_ = nullptr;
  float* out_ = nullptr;
  uint64_t output_capacity_ = 0;
  std::vector<float> features_, logits_;
  uint64_t step_ = 0;
  bool leak_bit_ = false;
  bool predicted_ = false;
  bool remembered_ = false;
  uint64_t remembered_class_ = 0;
};

int Main(int argc, char**) {
  if (argc != 1) return kWorkerExitProtocolError;
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
  // The "recipe" is read only now, as chiron-worker loads its recipe only after configure.
  Result<Script> script = ParseScript(ReadRecipe(report->recipe_path));
  if (!script.ok()) return kWorkerExitProtocolError;

  Worker worker(*script, *config);
  WorkerFrame configured;
  configured.type = WorkerFrameType::kConfigured;
  configured.sequence = configure.sequence;
  configured.fields[0] = worker.parameter_count();
  configured.fields[1] = worker.buffer_count();
  configured.fields[2] = worker.output_size();
  if (script->secret_place == SecretPlace::kConfigured) {
    configured.fields[0] = configured.fields[1] = configured.fields[2] = script->secret;
  }
  Send(configured);
  return worker.Serve();
}

}  // namespace
}  // namespace chiron::scripted

int main(int argc, char** argv) {
  try {
    return chiron::scripted::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    return chiron::kWorkerExitOutOfMemory;
  } catch (...) {
    return chiron::kWorkerExitRecipeFailed;
  }
}
