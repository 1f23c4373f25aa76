// SandboxLauncher: the trusted runtime's half of the worker sandbox (docs/sandbox.md).
//
// Start() creates the worker's channels, then launches the worker binary in a fresh cage:
//
//   channels   inputs         memfd the runtime maps read/write (one batch at a time); the
//                             worker gets an O_RDONLY reopen and the memfd carries
//                             F_SEAL_FUTURE_WRITE, so the worker can never map it writable
//              parameters     the same construction (parameters, then buffers)
//              gradients      fixed-size memfd (grow/shrink sealed) the worker writes
//              output         fixed-size memfd (grow/shrink sealed) the worker writes
//              control        SOCK_SEQPACKET socketpair carrying 64-byte frames
//              recipe         sealed memfd with the recipe shared object
//   process    clone() into new user, mount, PID, network, IPC, UTS and cgroup namespaces; the
//              worker is PID 1 of its PID namespace and a direct child of the runtime; uid/gid
//              0 inside map to an unprivileged id outside (65534 when the runtime is root, the
//              runtime's own id otherwise); new session; descriptors 0-2 are /dev/null and every
//              descriptor but the channels is closed; rlimits (core 0, CPU, address space,
//              files, threads, locked memory, message queues); no_new_privs; parent-death
//              SIGKILL; execve with exactly the configured environment.
//
// The worker completes the cage itself (worker/lockdown.h: empty root, Landlock, seccomp) before
// loading any recipe code, and proves it by sending a hello frame; Start() returns only after a
// valid hello, so a SandboxedProcess always has a locked-down worker at the other end.
//
// Between clone and execve the child runs only async-signal-safe system calls on memory prepared
// before the clone: chirond is multi-threaded (gRPC) and any lock held by another thread at the
// moment of the clone stays held forever in the child.
//
// Caveat: the parent-death signal fires when the *thread* that called Start() exits, not the
// process. Call Start() from a thread that outlives the worker (a job thread, not a transient
// RPC thread), or accept that the worker dies with that thread.
//
// Precondition: the process must not ignore SIGCHLD nor reap children it did not start
// (waitpid(-1)): the worker is a direct child and Wait() reaps it with wait4.
//
// Memory: with limits.max_resident_size set, a monitor thread per SandboxedProcess reads the
// worker's peak resident size (VmHWM of /proc/PID/status, through a descriptor opened while the
// child could not yet be reaped, so never another process's) every kMemoryPollInterval and
// SIGKILLs the worker through its pidfd once the peak exceeds the limit; Wait() then classifies
// the end as kOutOfMemory. Between two polls a worker can overshoot the limit by what it can fault
// in during one interval (docs/sandbox.md, "Memory": about 40-120 MiB at 2-6 GB/s).
//
// Thread safety: Start() may be called from several threads at once. A SandboxedProcess is used
// from one thread at a time, except Kill() and peak_resident_size(), which any thread may call at
// any moment until the destructor starts (the pidfd they use is fixed for the object's lifetime,
// and a signal to an exited or reaped worker is a no-op): a Kill() from another thread makes a
// ReceiveFrame() or Wait() blocked in the owner thread return promptly (Unavailable, or the exit).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/worker_abi/worker_protocol.h"

namespace chiron::sandbox {

using Deadline = std::chrono::steady_clock::time_point;

struct SandboxLimits {
  uint64_t address_space_size = 8ull << 30;  // RLIMIT_AS, bytes (libtorch needs ~3x resident)
  uint32_t cpu_seconds = 3600;               // RLIMIT_CPU; the kernel SIGKILLs at the limit
  uint32_t max_threads = 64;                 // RLIMIT_NPROC inside the worker's user namespace
  // Peak resident memory, bytes (0: none), enforced by the runtime's monitor (see above), not by
  // the kernel: at least kMinResidentLimit. It counts every page the worker touched, including
  // the pages of the shared arenas it mapped (inputs, parameters, gradients, output).
  uint64_t max_resident_size = 0;
};

// How often the monitor reads the worker's resident size when max_resident_size is set.
inline constexpr std::chrono::milliseconds kMemoryPollInterval{20};
inline constexpr uint64_t kMinResidentLimit = 16ull << 20;

struct SandboxConfig {
  std::string worker_path;               // absolute path of the worker binary
  std::vector<std::string> arguments;    // argv[1...] (argv[0] is "chiron-worker")
  std::vector<std::string> environment;  // the worker's entire environment, "NAME=value"
  uint64_t input_size = 0;               // bytes of the input arena (batches), >= 1
  ByteSpan recipe;                       // recipe shared object, copied into a sealed memfd
  uint64_t parameter_count = 0;          // floats in the parameter and gradient arenas
  uint64_t output_count = 0;             // floats in the output arena
  // Arenas are memfds: pages cost memory only once touched, so capacities may be generous.
  SandboxLimits limits;
  // How long the worker may take to lock itself down and say hello.
  std::chrono::milliseconds hello_timeout{10000};
  uint32_t min_landlock_abi = 1;
};

// How a worker ended, from the runtime's point of view.
enum class ExitCategory {
  kExitedCleanly,    // exit status 0
  kFailed,           // another exit status (see worker_protocol.h kWorkerExit*)
  kInvalidSyscall,   // killed by seccomp (SIGSYS): the recipe tried something forbidden
  kOutOfMemory,      // exit kWorkerExitOutOfMemory (an allocation failed under RLIMIT_AS), or
                     // SIGKILL from the monitor: the peak resident size passed max_resident_size
  kCpuTimeLimit,     // killed by RLIMIT_CPU
  kKilledByRuntime,  // Kill() was called (deadline, shutdown, protocol violation)
  kCrashed,          // any other signal (SIGSEGV, SIGABRT, ...)
};
std::string_view ExitCategoryName(ExitCategory category);

struct ExitInfo {
  ExitCategory category = ExitCategory::kCrashed;
  int exit_code = -1;  // when the worker exited
  int signal = 0;      // when a signal ended it
  double cpu_seconds = 0;
  uint64_t max_resident_size = 0;  // bytes: wait4's ru_maxrss of this worker (and nothing else)
  // DEBUGGING ONLY (test failure output, a developer at a debugger): the category with the exit
  // code or signal and the CPU time. The worker's code chooses its exit code and can raise any
  // signal on itself, so this text must never reach a Status, log line, audit record, metric or
  // response: those carry ExitCategoryName(category) and nothing else.
  std::string ToString() const;
};

// One running, locked-down worker. Destroying it kills the worker (SIGKILL) and reaps it.
class SandboxedProcess {
 public:
  virtual ~SandboxedProcess() = default;

  virtual pid_t pid() const = 0;
  // Landlock ABI the worker reported in its hello.
  virtual int landlock_abi() const = 0;

  // The runtime's writable view of the parameter arena (parameter_count floats). The worker
  // sees the same pages read-only; write them only while no request is outstanding.
  virtual std::span<float> parameters() = 0;
  // Likewise for the input arena (input_size bytes).
  virtual std::span<uint8_t> inputs() = 0;

  // Sends a request frame. Unavailable if the worker is gone; DeadlineExceeded.
  virtual Status SendFrame(const WorkerFrame& frame, Deadline deadline) = 0;
  // Receives one frame, copies it, and validates it against `expect` (ValidateWorkerFrame).
  // InvalidArgument for a malformed frame (any size but 64 bytes included), whose message is a
  // fixed WorkerRefusal text (worker_refusal.h: never a value from the frame), Unavailable if the
  // worker exited or closed its channel, DeadlineExceeded. After any error the caller should
  // Kill() the worker: its stream can no longer be trusted.
  virtual Result<WorkerFrame> ReceiveFrame(const WorkerFrameExpectation& expect,
                                           Deadline deadline) = 0;
  // Copies `count` gradients out of the shared arena, then validates the copy
  // (ValidateFloatArena with max_abs; a refusal names the reason, never the value or its index).
  virtual Result<std::vector<float>> ReadGradients(size_t count, float max_abs) = 0;
  // Same for the output arena.
  virtual Result<std::vector<float>> ReadOutput(size_t count, float max_abs) = 0;
  // Only the copy, for callers that validate themselves and reuse their memory every training
  // step: out.size() floats starting at float `offset` of the gradient arena into `out` (trusted
  // memory; check the copy, never the arena). InvalidArgument if the range exceeds the arena.
  virtual Status CopyGradients(size_t offset, std::span<float> out) = 0;

  // SIGKILL through the pidfd (never hits a recycled pid). Idempotent; callable from any thread
  // (see the thread-safety note above). Wait() then says kKilledByRuntime (or kOutOfMemory if the
  // memory monitor killed it first).
  virtual void Kill() = 0;
  // This worker's own peak resident size in bytes: its VmHWM while it runs (the largest seen by the
  // monitor or read now), wait4's ru_maxrss for this child once Wait() reaped it. Never another
  // process's (unlike getrusage(RUSAGE_CHILDREN)). 0 if the kernel would not say. Any thread.
  virtual uint64_t peak_resident_size() const = 0;
  // Waits for the worker to end (after Kill() or on its own) and classifies the end.
  // DeadlineExceeded if it is still running at the deadline (it keeps running).
  virtual Result<ExitInfo> Wait(Deadline deadline) = 0;
};

class SandboxLauncher {
 public:
  // Errors: InvalidArgument (config), FailedPrecondition (kernel refused a namespace, memfd,
  // seal...: the message names the step), Unavailable (the worker died or failed its lockdown
  // before saying hello; the message includes how it ended as an ExitCategoryName, never its
  // exit code or signal), ResourceExhausted (likewise, but killed for passing
  // limits.max_resident_size), DeadlineExceeded (no hello in hello_timeout), InvalidArgument (a
  // malformed hello: a fixed WorkerRefusal text).
  static Result<std::unique_ptr<SandboxedProcess>> Start(const SandboxConfig& config);
};

// The size, in bytes, of an arena of `count` floats (rounded up to whole pages, at least one).
uint64_t ArenaSize(uint64_t count);

}  // namespace chiron::sandbox
