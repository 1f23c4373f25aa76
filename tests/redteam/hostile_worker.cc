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

#include <cstdlib>
#include <cstring>
#include <string>

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

int Main(int argc, char** argv) {
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
