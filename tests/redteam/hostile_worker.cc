// The red-team worker: the real worker start-up path (Lockdown, hello, LoadRecipeAfterLockdown,
// channels at their fixed numbers) with the hostile recipe in place of a provider's model.
//
//   hostile_worker [--attack=NAME] [--arg=ARG] [--no-lockdown] [--thread-before-lockdown]
//
// After the lockdown it answers the runtime's requests. With --attack, the first request runs the
// hostile recipe's attack NAME; the report goes to the output arena (redteam_abi.h) unless the
// attack answered the request itself (frame and arena attacks). --no-lockdown skips Lockdown()
// (the launcher's cage still applies): a control that shows what each layer stops. Tests only.
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shared/worker_abi/worker_protocol.h"
#include "tests/redteam/redteam_abi.h"
#include "worker/loader.h"
#include "worker/lockdown.h"
#include "shared/worker_abi/sandbox_policy.h"

namespace chiron::redteam {
namespace {

void* MapChannel(int fd, int protection, size_t* size) {
  struct stat st;
  if (fstat(fd, &st) != 0) _exit(kWorkerExitProtocolError);
  *size = static_cast<size_t>(st.st_size);
  if (*size == 0) return nullptr;
  void* p = mmap(nullptr, *size, protection, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(kWorkerExitProtocolError);
  return p;
}

void Send(const WorkerFrame& frame) {
  auto bytes = EncodeWorkerFrame(frame);
  if (write(kWorkerControlFd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    _exit(kWorkerExitProtocolError);
  }
}

void* Idle(void*) {
  for (;;) sleep(1000);
  return nullptr;
}

// ---- Secret-value attacks (REDTEAM_SECRET_ATTACK) --------------------------------------------
// The worker speaks the whole protocol (hello, configure, describe, initial parameters,
// gradients, predictions) benignly, except for the one field the attack names, where it puts
// kSecret: "PHASE-FIELD", PHASE one of hello, configure, describe, initial, gradients, predict.

bool Attacking(const std::string& attack, const char* phase, const char* field) {
  return attack == std::string(phase) + "-" + field;
}

// Sends `frame` with the attack applied to its header or size where the attack asks for it.
void SendAttacked(WorkerFrame frame, const std::string& attack, const char* phase) {
  if (Attacking(attack, phase, "sequence")) frame.sequence = kSecret;
  if (Attacking(attack, phase, "padding")) frame.fields[5] = kSecret;
  if (Attacking(attack, phase, "failure")) {
    frame.type = WorkerFrameType::kFailed;
    frame.fields = {kSecret, 0, 0, 0, 0, 0};
  }
  if (Attacking(attack, phase, "request")) frame.type = WorkerFrameType::kPredict;
  auto bytes = EncodeWorkerFrame(frame);
  if (Attacking(attack, phase, "type")) {  // an unknown type: the secret's low 16 bits
    bytes[6] = static_cast<uint8_t>(kSecret);
    bytes[7] = static_cast<uint8_t>(kSecret >> 8);
  }
  if (Attacking(attack, phase, "version")) {
    bytes[4] = static_cast<uint8_t>(kSecret);
    bytes[5] = static_cast<uint8_t>(kSecret >> 8);
  }
  if (Attacking(attack, phase, "size")) {  // a frame of (secret & 0xfff) bytes
    std::vector<uint8_t> sized(kSecretIndex, 0x34);
    std::memcpy(sized.data(), bytes.data(), std::min(sized.size(), bytes.size()));
    if (write(kWorkerControlFd, sized.data(), sized.size()) < 0) _exit(kWorkerExitProtocolError);
    return;
  }
  if (Attacking(attack, phase, "exit")) _exit(static_cast<int>(kSecret & 0xff));
  if (write(kWorkerControlFd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    _exit(kWorkerExitProtocolError);
  }
}

int SecretAttackMain(const std::string& attack) {
  Result<LockdownReport> report = Lockdown(LockdownOptions{});
  if (!report.ok()) return kWorkerExitLockdownFailed;
  WorkerFrame hello;
  hello.type = WorkerFrameType::kHello;
  hello.fields[0] = Attacking(attack, "hello", "fingerprint") ? kSecret
                                                              : SandboxPolicyFingerprint();
  hello.fields[1] = Attacking(attack, "hello", "landlock")
                        ? kSecret
                        : static_cast<uint64_t>(report->landlock_abi);
  SendAttacked(hello, attack, "hello");

  size_t parameter_size, gradient_size, output_size;
  MapChannel(kWorkerParameterFd, PROT_READ, &parameter_size);
  auto* gradients = static_cast<float*>(
      MapChannel(kWorkerGradientFd, PROT_READ | PROT_WRITE, &gradient_size));
  auto* output =
      static_cast<float*>(MapChannel(kWorkerOutputFd, PROT_READ | PROT_WRITE, &output_size));
  // A NaN at index kSecretIndex, or (the "huge" attacks) the secret as a float there.
  auto plant = [&](float* arena, size_t floats, const char* phase) {
    if (kSecretIndex >= floats) _exit(kWorkerExitProtocolError);
    if (Attacking(attack, phase, "nan")) arena[kSecretIndex] = std::nanf("");
    if (Attacking(attack, phase, "huge")) arena[kSecretIndex] = static_cast<float>(kSecret);
  };
  for (;;) {
    uint8_t buffer[kWorkerFrameSize + 1];
    ssize_t n = read(kWorkerControlFd, buffer, sizeof(buffer));
    if (n == 0) return kWorkerExitOk;
    Result<WorkerFrame> request = DecodeWorkerFrame(ByteSpan(buffer, n < 0 ? 0 : n));
    if (!request.ok()) return kWorkerExitProtocolError;
    WorkerFrame reply;
    reply.sequence = request->sequence;
    const char* phase = "";
    switch (request->type) {
      case WorkerFrameType::kShutdown: return kWorkerExitOk;
      case WorkerFrameType::kConfigure:
        phase = "configure";
        reply.type = WorkerFrameType::kConfigured;
        reply.fields[0] = Attacking(attack, phase, "layout") ? kSecret : kSecretAttackParameters;
        reply.fields[2] = Attacking(attack, phase, "outputs") ? kSecret : kSecretAttackOutputs;
        break;
      case WorkerFrameType::kDescribe: {
        phase = "describe";
        reply.type = WorkerFrameType::kDescription;
        const uint64_t page = request->fields[0];
        reply.fields[0] = Attacking(attack, phase, "page") ? kSecret : page;
        TrainingConfig training;
        training.epochs = 1;
        RecipeDeclarationValues values = PackRecipeDeclarations(training, ResourceBudget{});
        if (Attacking(attack, phase, "epochs")) values[14] = kSecret;  // wider than u32
        if (Attacking(attack, phase, "rate")) {
          const double rate = -static_cast<double>(kSecret);
          std::memcpy(&values[1], &rate, sizeof(rate));
        }
        if (page >= kDescriptionPages) return kWorkerExitProtocolError;
        for (size_t i = 0; i < kDescriptionValuesPerPage; ++i) {
          reply.fields[1 + i] = values[page * kDescriptionValuesPerPage + i];
        }
        break;
      }
      case WorkerFrameType::kInitialParameters: {
        phase = "initial";
        const uint64_t count = request->fields[0] + request->fields[1];
        if (count * sizeof(float) > gradient_size) return kWorkerExitProtocolError;
        std::memset(gradients, 0, count * sizeof(float));
        plant(gradients, count, phase);
        reply.type = WorkerFrameType::kParametersReady;
        reply.fields[0] = Attacking(attack, phase, "count") ? kSecret : request->fields[0];
        reply.fields[1] = request->fields[1];
        break;
      }
      case WorkerFrameType::kComputeGradients: {
        phase = "gradients";
        const uint64_t count = request->fields[1] + request->fields[2];
        if (count * sizeof(float) > gradient_size) return kWorkerExitProtocolError;
        for (uint64_t i = 0; i < count; ++i) gradients[i] = 0.25f;
        plant(gradients, count, phase);
        reply.type = WorkerFrameType::kGradientsReady;
        reply.fields[0] = Attacking(attack, phase, "count") ? kSecret : request->fields[1];
        const double loss = Attacking(attack, phase, "loss") ? std::bit_cast<double>(kSecret) : 1.5;
        std::memcpy(&reply.fields[1], &loss, sizeof(loss));
        reply.fields[2] = Attacking(attack, phase, "samples") ? kSecret : request->fields[0];
        reply.fields[3] = Attacking(attack, phase, "buffers") ? kSecret : request->fields[2];
        break;
      }
      case WorkerFrameType::kPredict: {
        phase = "predict";
        const uint64_t count = request->fields[1];
        if (count * sizeof(float) > output_size) return kWorkerExitProtocolError;
        for (uint64_t i = 0; i < count; ++i) output[i] = 0.5f;
        plant(output, count, phase);
        reply.type = WorkerFrameType::kOutputReady;
        reply.fields[0] = Attacking(attack, phase, "count") ? kSecret : count;
        break;
      }
      default: return kWorkerExitProtocolError;
    }
    SendAttacked(reply, attack, phase);
  }
}

int Main(int argc, char** argv) {
  if (const char* secret_attack = std::getenv(kSecretAttackVariable)) {
    return SecretAttackMain(secret_attack);
  }
  std::string attack = "none";
  std::string arg;
  bool lock = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--attack=", 0) == 0) attack = a.substr(9);
    else if (a.rfind("--arg=", 0) == 0) arg = a.substr(6);
    else if (a == "--no-lockdown") lock = false;
    else if (a == "--thread-before-lockdown") {
      // A worker (or a library it loaded) that started a thread too early: Landlock would
      // confine only the calling thread, so Lockdown() must refuse.
      pthread_t thread;
      if (pthread_create(&thread, nullptr, Idle, nullptr) != 0) return kWorkerExitProtocolError;
    }
    else return kWorkerExitProtocolError;
  }

  std::string recipe_path = "/proc/self/fd/" + std::to_string(kWorkerRecipeFd);
  int landlock_abi = LandlockAbiVersion();
  if (lock) {
    Result<LockdownReport> report = Lockdown(LockdownOptions{});
    if (!report.ok()) return kWorkerExitLockdownFailed;
    recipe_path = report->recipe_path;
    landlock_abi = report->landlock_abi;
  }
  WorkerFrame hello;
  hello.type = WorkerFrameType::kHello;
  hello.fields[0] = SandboxPolicyFingerprint();
  hello.fields[1] = static_cast<uint64_t>(landlock_abi);
  Send(hello);

  void* handle = nullptr;
  if (lock) {
    Result<void*> loaded = LoadRecipeAfterLockdown(recipe_path);
    if (!loaded.ok()) return kWorkerExitRecipeFailed;
    handle = *loaded;
  } else {
    handle = dlopen(recipe_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return kWorkerExitRecipeFailed;
  }
  auto run = reinterpret_cast<RunAttackFunction>(dlsym(handle, kRunSymbol));
  if (run == nullptr) return kWorkerExitRecipeFailed;

  size_t dataset_size, parameter_size, gradient_size, output_size;
  auto* dataset = static_cast<const uint8_t*>(MapChannel(kWorkerInputFd, PROT_READ, &dataset_size));
  auto* parameters =
      static_cast<const float*>(MapChannel(kWorkerParameterFd, PROT_READ, &parameter_size));
  auto* gradients = static_cast<float*>(
      MapChannel(kWorkerGradientFd, PROT_READ | PROT_WRITE, &gradient_size));
  auto* output =
      static_cast<float*>(MapChannel(kWorkerOutputFd, PROT_READ | PROT_WRITE, &output_size));

  bool attacked = false;
  for (;;) {
    uint8_t buffer[kWorkerFrameSize + 1];
    ssize_t n = read(kWorkerControlFd, buffer, sizeof(buffer));
    if (n == 0) return kWorkerExitOk;
    Result<WorkerFrame> request = DecodeWorkerFrame(ByteSpan(buffer, n < 0 ? 0 : n));
    if (!request.ok()) return kWorkerExitProtocolError;
    if (request->type == WorkerFrameType::kShutdown) return kWorkerExitOk;
    const uint64_t count = request->fields[1];  // gradient or output count (protocol v2)
    AttackReport report;
    if (!attacked) {
      attacked = true;
      AttackContext context;
      context.attack = attack.c_str();
      context.arg = arg.c_str();
      context.request = *request;
      context.dataset = dataset;
      context.dataset_size = dataset_size;
      context.parameter_arena_size = parameter_size;
      context.gradients = gradients;
      context.output = output;
      run(&context, &report);
      if (report.out_of_memory) return kWorkerExitOutOfMemory;
      if (report.answered) continue;
    }
    WorkerFrame reply;
    reply.sequence = request->sequence;
    if (request->type == WorkerFrameType::kComputeGradients) {
      if (count * sizeof(float) > gradient_size || count * sizeof(float) > parameter_size) {
        return kWorkerExitProtocolError;
      }
      // Benign: a value that depends on both inputs, so the test can check both channels.
      for (uint64_t i = 0; i < count; ++i) {
        gradients[i] = 2.0f * parameters[i] + (dataset_size ? dataset[i % dataset_size] : 0) / 255.0f;
      }
      reply.type = WorkerFrameType::kGradientsReady;
      const double loss = 1.5;
      std::memcpy(&reply.fields[1], &loss, sizeof(loss));
      reply.fields[0] = count;
      reply.fields[2] = request->fields[0];
      reply.fields[3] = request->fields[2];
    } else if (request->type == WorkerFrameType::kPredict) {
      if (count * sizeof(float) > output_size || count < kReportFloats) {
        return kWorkerExitProtocolError;
      }
      std::memset(output, 0, count * sizeof(float));
      output[0] = static_cast<float>(report.outcome);
      output[1] = static_cast<float>(report.error);
      output[2] = static_cast<float>(report.leaked_size);
      for (int i = 0; i < report.leaked_size; ++i) output[3 + i] = report.leaked[i];
      reply.type = WorkerFrameType::kOutputReady;
      reply.fields[0] = count;
    } else {
      return kWorkerExitProtocolError;
    }
    Send(reply);
  }
}

}  // namespace
}  // namespace chiron::redteam

int main(int argc, char** argv) { return chiron::redteam::Main(argc, argv); }
