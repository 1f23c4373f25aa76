#include "runtime/sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "runtime/sandbox/channels.h"
#include "shared/worker_abi/sandbox_policy.h"

namespace chiron::sandbox {
namespace {

// The id a root runtime maps the worker's uid/gid 0 to: "nobody", which owns nothing.
constexpr uid_t kUnprivilegedId = 65534;

// Steps of the child between clone and execve, reported through the error pipe.
enum ChildStep : int {
  kStepSync = 1,
  kStepSetgroups,
  kStepSetresgid,
  kStepSetresuid,
  kStepSetsid,
  kStepMoveDescriptors,
  kStepCloseDescriptors,
  kStepRlimit,
  kStepNoNewPrivs,
  kStepDumpable,
  kStepDeathSignal,
  kStepExec,
};

const char* ChildStepName(int step) {
  switch (step) {
    case kStepSync: return "wait for the uid/gid maps";
    case kStepSetgroups: return "setgroups";
    case kStepSetresgid: return "setresgid";
    case kStepSetresuid: return "setresuid";
    case kStepSetsid: return "setsid";
    case kStepMoveDescriptors: return "move the channels to their descriptor numbers";
    case kStepCloseDescriptors: return "close every other descriptor";
    case kStepRlimit: return "set resource limits";
    case kStepNoNewPrivs: return "set no_new_privs";
    case kStepDumpable: return "clear dumpable";
    case kStepDeathSignal: return "set the parent-death signal";
    case kStepExec: return "execve the worker";
  }
  return "unknown step";
}

struct ResourceLimit {
  int resource;
  struct rlimit limit;
};

// Everything the child needs, prepared before the clone (the child may not allocate).
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  std::array<int, kWorkerFirstFreeFd> sources{};  // descriptor to install at each number
  int sync_read_fd = -1;
  int sync_write_fd = -1;
  int error_fd = -1;
  bool drop_groups = false;
  std::array<ResourceLimit, 7> limits{};
};

// Runs in the cloned child: async-signal-safe system calls only, on the plan's memory.
// Every call below is a raw system call: no libc wrapper and no sanitizer interceptor runs in the
// child (a wrapper or an interceptor may take a lock another thread of chirond held at the clone,
// and that lock stays held forever in the child: seen as a worker that never said hello when two
// workers started at once under ThreadSanitizer). For the same reason the function itself is not
// instrumented by a sanitizer.
[[noreturn]] __attribute__((no_sanitize("address", "thread", "undefined"))) void ChildFail(
    int error_fd, int step) {
  int payload[2] = {step, errno};
  long ignored = syscall(SYS_write, error_fd, payload, sizeof(payload));
  (void)ignored;
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

[[noreturn]] __attribute__((no_sanitize("address", "thread", "undefined"))) void ChildMain(
    const ChildPlan& plan) {
  int error_fd = plan.error_fd;
  if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
    ChildFail(error_fd, kStepDeathSignal);
  }
  syscall(SYS_close, plan.sync_write_fd);
  char go = 0;
  if (syscall(SYS_read, plan.sync_read_fd, &go, 1) != 1) ChildFail(error_fd, kStepSync);
  if (plan.drop_groups && syscall(SYS_setgroups, 0, nullptr) != 0) {
    ChildFail(error_fd, kStepSetgroups);
  }
  if (syscall(SYS_setresgid, 0, 0, 0) != 0) ChildFail(error_fd, kStepSetresgid);
  if (syscall(SYS_setresuid, 0, 0, 0) != 0) ChildFail(error_fd, kStepSetresuid);
  if (syscall(SYS_setsid) < 0) ChildFail(error_fd, kStepSetsid);

  constexpr int kHigh = 64;
  int high[kWorkerFirstFreeFd];
  for (int i = 0; i < kWorkerFirstFreeFd; ++i) {
    high[i] = static_cast<int>(syscall(SYS_fcntl, plan.sources[i], F_DUPFD_CLOEXEC, kHigh));
    if (high[i] < 0) ChildFail(error_fd, kStepMoveDescriptors);
  }
  const int moved_error_fd =
      static_cast<int>(syscall(SYS_fcntl, error_fd, F_DUPFD_CLOEXEC, kHigh));
  if (moved_error_fd < 0) ChildFail(error_fd, kStepMoveDescriptors);
  error_fd = moved_error_fd;
  for (int i = 0; i < kWorkerFirstFreeFd; ++i) {
    // dup3 clears FD_CLOEXEC; high[i] >= kHigh never equals i.
    if (syscall(SYS_dup3, high[i], i, 0) != i) ChildFail(error_fd, kStepMoveDescriptors);
  }
  if (syscall(SYS_close_range, kWorkerFirstFreeFd, error_fd - 1, 0) != 0) {
    ChildFail(error_fd, kStepCloseDescriptors);
  }
  if (syscall(SYS_close_range, error_fd + 1, ~0u, 0) != 0) {
    ChildFail(error_fd, kStepCloseDescriptors);
  }

  for (const ResourceLimit& limit : plan.limits) {
    if (syscall(SYS_prlimit64, 0, limit.resource, &limit.limit, nullptr) != 0) {
      ChildFail(error_fd, kStepRlimit);
    }
  }
  if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    ChildFail(error_fd, kStepNoNewPrivs);
  }
  if (syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) ChildFail(error_fd, kStepDumpable);
  syscall(SYS_execve, plan.path, plan.argv, plan.envp);
  ChildFail(error_fd, kStepExec);
}

Status WriteProcFile(pid_t pid, const char* name, const std::string& content) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  if (write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    return ErrnoStatus("write " + path);
  }
  return Status::Ok();
}

// `size` rounded up to whole pages, at least one page.
uint64_t PageRound(uint64_t size) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t bytes = std::max<uint64_t>(size, 1);
  return (bytes + page - 1) / page * page;
}

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

int MillisecondsUntil(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// The "VmHWM:" figure (peak resident size) of a /proc/PID/status text, in bytes; 0 if absent
// (the process has exited and its memory is gone).
uint64_t ParsePeakResidentSize(std::string_view status) {
  constexpr std::string_view kKey = "\nVmHWM:";
  const size_t at = status.find(kKey);
  if (at == std::string_view::npos) return 0;
  uint64_t kibibytes = 0;
  for (size_t i = at + kKey.size(); i < status.size() && status[i] != '\n'; ++i) {
    if (status[i] >= '0' && status[i] <= '9') kibibytes = kibibytes * 10 + (status[i] - '0');
  }
  return kibibytes * 1024;
}

class SandboxedProcessImpl : public SandboxedProcess {
 public:
  SandboxedProcessImpl(pid_t pid, UniqueFd pidfd, UniqueFd status, UniqueFd control,
                       Mapping inputs, Mapping parameters, Mapping gradients, Mapping output,
                       const SandboxConfig& config)
      : pid_(pid),
        pidfd_(std::move(pidfd)),
        status_(std::move(status)),
        control_(std::move(control)),
        inputs_(std::move(inputs)),
        parameters_(std::move(parameters)),
        gradients_(std::move(gradients)),
        output_(std::move(output)),
        parameter_count_(config.parameter_count),
        output_count_(config.output_count),
        input_size_(config.input_size),
        cpu_seconds_limit_(config.limits.cpu_seconds),
        max_resident_size_(config.limits.max_resident_size) {
    if (max_resident_size_ != 0) monitor_ = std::thread([this] { MonitorMemory(); });
  }

  ~SandboxedProcessImpl() override {
    if (!reaped_) {
      Kill();
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    // The monitor returns once the pidfd says the worker has exited.
    if (monitor_.joinable()) monitor_.join();
  }

  pid_t pid() const override { return pid_; }
  int landlock_abi() const override { return landlock_abi_; }
  void set_landlock_abi(int abi) { landlock_abi_ = abi; }

  std::span<float> parameters() override {
    return {static_cast<float*>(parameters_.data()), parameter_count_};
  }
  std::span<uint8_t> inputs() override {
    return {static_cast<uint8_t*>(inputs_.data()), input_size_};
  }

  Status SendFrame(const WorkerFrame& frame, Deadline deadline) override {
    const auto bytes = EncodeWorkerFrame(frame);
    for (;;) {
      pollfd fds{control_.get(), POLLOUT, 0};
      int ready = poll(&fds, 1, MillisecondsUntil(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return ErrnoStatus("poll the control channel");
      if (ready == 0) return DeadlineExceededError("worker did not accept a frame in time");
      ssize_t n = send(control_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(bytes.size())) return Status::Ok();
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      return UnavailableError(std::string("worker control channel closed: ") +
                              (n < 0 ? std::strerror(errno) : "short send"));
    }
  }

  Result<WorkerFrame> ReceiveFrame(const WorkerFrameExpectation& expect,
                                   Deadline deadline) override {
    for (;;) {
      pollfd fds[2] = {{control_.get(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}};
      int ready = poll(fds, 2, MillisecondsUntil(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return ErrnoStatus("poll the control channel");
      if (ready == 0) {
        return DeadlineExceededError("no " + std::string(WorkerFrameTypeName(expect.type)) +
                                     " frame from the worker within the deadline");
      }
      if (fds[0].revents != 0) {
        // Copy first: the frame lands in this stack buffer, never parsed in place.
        std::array<uint8_t, kWorkerFrameSize> buffer{};
        iovec iov{buffer.data(), buffer.size()};
        msghdr message{};
        message.msg_iov = &iov;
        message.msg_iovlen = 1;
        // MSG_TRUNC: the real length of an oversized frame; no control buffer, so descriptors
        // the worker might try to pass are discarded by the kernel (and flagged MSG_CTRUNC).
        ssize_t n = recvmsg(control_.get(), &message, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return ErrnoStatus("receive from the control channel");
        if (n == 0) {
          return UnavailableError("worker closed its control channel (or sent an empty frame)");
        }
        if ((message.msg_flags & MSG_TRUNC) != 0 || n != static_cast<ssize_t>(kWorkerFrameSize)) {
          return RefuseWorker(WorkerRefusal::kFrameSize);  // never the size it sent
        }
        if ((message.msg_flags & MSG_CTRUNC) != 0) {
          return RefuseWorker(WorkerRefusal::kAncillaryData);
        }
        return ValidateWorkerFrame(ByteSpan(buffer.data(), buffer.size()), expect);
      }
      if (fds[1].revents != 0) return UnavailableError("worker exited before answering");
    }
  }

  Result<std::vector<float>> ReadGradients(size_t count, float max_abs) override {
    if (count > parameter_count_) {
      return InvalidArgumentError("asked for more gradients than the arena holds");
    }
    return CopyAndValidate(gradients_, count, max_abs);
  }

  Status CopyGradients(size_t offset, std::span<float> out) override {
    if (offset > parameter_count_ || out.size() > parameter_count_ - offset) {
      return InvalidArgumentError("asked for gradients past the end of the arena");
    }
    // std::copy_n: an empty `out` may have a null data(), which memcpy may not be given.
    std::copy_n(static_cast<const float*>(gradients_.data()) + offset, out.size(), out.data());
    return Status::Ok();
  }

  Result<std::vector<float>> ReadOutput(size_t count, float max_abs) override {
    if (count > output_count_) {
      return InvalidArgumentError("asked for more outputs than the arena holds");
    }
    return CopyAndValidate(output_, count, max_abs);
  }

  // Any thread: pidfd_ is fixed from construction to destruction, and the kernel answers ESRCH
  // (ignored) for a worker that has already exited or been reaped.
  void Kill() override {
    if (reaped_.load(std::memory_order_acquire)) return;
    killed_.store(true, std::memory_order_release);
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  }

  // Monotonic: the largest of every reading (the kernel's counters are approximate per CPU, so
  // a later ru_maxrss can be a little below an earlier VmHWM).
  uint64_t peak_resident_size() const override {
    if (reaped_.load(std::memory_order_acquire)) return peak_.load(std::memory_order_acquire);
    return RecordPeak(ReadPeakResidentSize());
  }

  Result<ExitInfo> Wait(Deadline deadline) override {
    if (reaped_) return exit_info_;
    for (;;) {
      pollfd fds{pidfd_.get(), POLLIN, 0};
      int ready = poll(&fds, 1, MillisecondsUntil(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return ErrnoStatus("poll the worker's pidfd");
      if (ready == 0) return DeadlineExceededError("worker still running at the deadline");
      break;
    }
    int status = 0;
    rusage usage{};
    pid_t reaped;
    do {
      reaped = wait4(pid_, &status, 0, &usage);
    } while (reaped < 0 && errno == EINTR);
    if (reaped != pid_) return ErrnoStatus("wait4 for the worker");
    exit_info_ = Classify(status, usage);
    // ru_maxrss of this child is its own final peak (the monitor's readings are samples of it).
    RecordPeak(exit_info_.max_resident_size);
    reaped_.store(true, std::memory_order_release);
    if (monitor_.joinable()) monitor_.join();  // its pidfd is readable: it has returned or will
    return exit_info_;
  }

 private:
  static Result<std::vector<float>> CopyAndValidate(const Mapping& arena, size_t count,
                                                    float max_abs) {
    // Copy, then check: the worker may keep writing the shared pages while we look at them.
    Bytes copy(count * sizeof(float));
    std::copy_n(static_cast<const uint8_t*>(arena.data()), copy.size(), copy.data());
    return ValidateFloatArena(copy, count, max_abs);
  }

  // VmHWM of this worker, read through the descriptor opened before the child could be reaped
  // (bound to this process, not to its pid number). 0 once it has exited or without a descriptor.
  uint64_t ReadPeakResidentSize() const {
    if (!status_.valid()) return 0;
    std::array<char, 4096> text;
    ssize_t n;
    do {
      n = pread(status_.get(), text.data(), text.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return 0;
    return ParsePeakResidentSize(std::string_view(text.data(), static_cast<size_t>(n)));
  }

  // peak_ = max(peak_, bytes); returns the new maximum.
  uint64_t RecordPeak(uint64_t bytes) const {
    uint64_t seen = peak_.load(std::memory_order_acquire);
    while (bytes > seen && !peak_.compare_exchange_weak(seen, bytes)) {
    }
    return std::max(seen, bytes);
  }

  // The monitor thread: every kMemoryPollInterval, the worker's peak against the limit. It ends
  // when the worker has exited (pidfd readable), or once it has killed it.
  void MonitorMemory() {
    const int interval = static_cast<int>(kMemoryPollInterval.count());
    for (;;) {
      pollfd fds{pidfd_.get(), POLLIN, 0};
      const int ready = poll(&fds, 1, interval);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {  // cannot watch any more: fail closed
        Kill();
        return;
      }
      if (ready > 0) return;  // exited
      const uint64_t peak = ReadPeakResidentSize();
      RecordPeak(peak);
      if (peak > max_resident_size_) {
        memory_killed_.store(true, std::memory_order_release);
        syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        return;
      }
    }
  }

  ExitInfo Classify(int status, const rusage& usage) const {
    ExitInfo info;
    info.cpu_seconds = Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
    info.max_resident_size = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
    if (WIFEXITED(status)) {
      info.exit_code = WEXITSTATUS(status);
      info.category = info.exit_code == kWorkerExitOk ? ExitCategory::kExitedCleanly
                      : info.exit_code == kWorkerExitOutOfMemory ? ExitCategory::kOutOfMemory
                                                                 : ExitCategory::kFailed;
      return info;
    }
    info.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (info.signal == SIGSYS) {
      info.category = ExitCategory::kInvalidSyscall;
    } else if (info.signal == SIGXCPU) {
      info.category = ExitCategory::kCpuTimeLimit;
    } else if (info.signal == SIGKILL && memory_killed_.load(std::memory_order_acquire)) {
      info.category = ExitCategory::kOutOfMemory;
    } else if (info.signal == SIGKILL && killed_.load(std::memory_order_acquire)) {
      info.category = ExitCategory::kKilledByRuntime;
    } else if (info.signal == SIGKILL && info.cpu_seconds >= 0.5 * cpu_seconds_limit_) {
      // RLIMIT_CPU with soft == hard: the kernel sends SIGKILL at the limit (a PID-namespace
      // init ignores SIGXCPU). The kernel's CPU clock and the rusage the runtime reads are
      // sampled differently (seen: a kill at the 1 s limit reported as 0.73 s on a loaded
      // machine), so any unexplained SIGKILL past half the limit counts as the limit.
      info.category = ExitCategory::kCpuTimeLimit;
    } else {
      info.category = ExitCategory::kCrashed;
    }
    return info;
  }

  pid_t pid_;
  const UniqueFd pidfd_;  // never reassigned: Kill() from any thread relies on it
  const UniqueFd status_;  // /proc/PID/status of this worker (invalid if it could not be opened)
  UniqueFd control_;
  Mapping inputs_;
  Mapping parameters_;
  Mapping gradients_;
  Mapping output_;
  size_t parameter_count_;
  size_t output_count_;
  size_t input_size_;
  double cpu_seconds_limit_;
  uint64_t max_resident_size_;
  int landlock_abi_ = 0;
  std::atomic<bool> killed_{false};
  std::atomic<bool> memory_killed_{false};
  std::atomic<bool> reaped_{false};
  mutable std::atomic<uint64_t> peak_{0};  // bytes: the largest VmHWM read or ru_maxrss
  ExitInfo exit_info_;             // valid once reaped_ (owner thread only)
  std::thread monitor_;            // last member: started after every other one is ready
};

Status ValidateConfig(const SandboxConfig& config) {
  if (config.worker_path.empty() || config.worker_path[0] != '/') {
    return InvalidArgumentError("sandbox: worker_path must be absolute");
  }
  if (access(config.worker_path.c_str(), X_OK) != 0) {
    return InvalidArgumentError("sandbox: worker binary " + config.worker_path +
                                " is not executable: " + std::strerror(errno));
  }
  if (config.recipe.empty()) return InvalidArgumentError("sandbox: the recipe is empty");
  if (config.input_size == 0 || config.input_size > (1ull << 36)) {
    return InvalidArgumentError("sandbox: input_size must be in [1, 64 GiB]");
  }
  constexpr uint64_t kMaxArenaCount = 1ull << 32;  // 16 GiB of floats
  if (config.parameter_count == 0 || config.parameter_count > kMaxArenaCount) {
    return InvalidArgumentError("sandbox: parameter_count must be in [1, 2^32]");
  }
  if (config.output_count == 0 || config.output_count > kMaxArenaCount) {
    return InvalidArgumentError("sandbox: output_count must be in [1, 2^32]");
  }
  if (config.limits.address_space_size < (64ull << 20) || config.limits.cpu_seconds == 0 ||
      config.limits.max_threads == 0) {
    return InvalidArgumentError(
        "sandbox: limits need address space >= 64 MiB, cpu_seconds > 0, max_threads > 0");
  }
  if (config.limits.max_resident_size != 0 &&
      config.limits.max_resident_size < kMinResidentLimit) {
    return InvalidArgumentError("sandbox: max_resident_size must be 0 (none) or >= 16 MiB");
  }
  for (const std::string& entry : config.environment) {
    if (entry.find('=') == std::string::npos || entry.find('\0') != std::string::npos) {
      return InvalidArgumentError("sandbox: environment entry without '=': " + entry);
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view ExitCategoryName(ExitCategory category) {
  switch (category) {
    case ExitCategory::kExitedCleanly: return "exited cleanly";
    case ExitCategory::kFailed: return "failed";
    case ExitCategory::kInvalidSyscall: return "invalid syscall (killed by seccomp)";
    case ExitCategory::kOutOfMemory: return "out of memory";
    case ExitCategory::kCpuTimeLimit: return "CPU time limit";
    case ExitCategory::kKilledByRuntime: return "killed by the runtime";
    case ExitCategory::kCrashed: return "crashed";
  }
  return "unknown";
}

std::string ExitInfo::ToString() const {
  std::string out(ExitCategoryName(category));
  if (signal != 0) out += " (signal " + std::to_string(signal) + ")";
  if (signal == 0 && exit_code >= 0) out += " (exit " + std::to_string(exit_code) + ")";
  out += ", cpu " + std::to_string(cpu_seconds) + " s";
  return out;
}

uint64_t ArenaSize(uint64_t count) { return PageRound(count * sizeof(float)); }

Result<std::unique_ptr<SandboxedProcess>> SandboxLauncher::Start(const SandboxConfig& config) {
  CHIRON_RETURN_IF_ERROR(ValidateConfig(config));

  // ---- channels (all close-on-exec in this process) ----
  CHIRON_ASSIGN_OR_RETURN(ReadOnlyArena inputs,
                          CreateRuntimeWritableArena("chiron-inputs", PageRound(config.input_size)));
  CHIRON_ASSIGN_OR_RETURN(UniqueFd recipe, CreateSealedMemfd("chiron-recipe", config.recipe));
  CHIRON_ASSIGN_OR_RETURN(UniqueFd recipe_ro, ReopenReadOnly(recipe.get()));
  CHIRON_ASSIGN_OR_RETURN(
      ReadOnlyArena parameters,
      CreateRuntimeWritableArena("chiron-parameters", ArenaSize(config.parameter_count)));
  CHIRON_ASSIGN_OR_RETURN(
      WorkerWritableArena gradients,
      CreateWorkerWritableArena("chiron-gradients", ArenaSize(config.parameter_count)));
  CHIRON_ASSIGN_OR_RETURN(
      WorkerWritableArena output,
      CreateWorkerWritableArena("chiron-output", ArenaSize(config.output_count)));
  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0) {
    return ErrnoStatus("socketpair for the control channel");
  }
  UniqueFd control(sockets[0]);
  UniqueFd worker_control(sockets[1]);
  UniqueFd dev_null(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null.valid()) return ErrnoStatus("open /dev/null");
  int sync_pipe[2];
  if (pipe2(sync_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd sync_read(sync_pipe[0]);
  UniqueFd sync_write(sync_pipe[1]);
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd error_read(error_pipe[0]);
  UniqueFd error_write(error_pipe[1]);

  // ---- everything the child will touch, prepared now ----
  std::vector<std::string> argument_storage;
  argument_storage.push_back("chiron-worker");
  argument_storage.insert(argument_storage.end(), config.arguments.begin(),
                          config.arguments.end());
  std::vector<char*> argv;
  for (std::string& a : argument_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment_storage = config.environment;
  std::vector<char*> envp;
  for (std::string& e : environment_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const bool privileged = geteuid() == 0;
  const uid_t outside_uid = privileged ? kUnprivilegedId : geteuid();
  const gid_t outside_gid = privileged ? kUnprivilegedId : getegid();

  ChildPlan plan;
  plan.path = config.worker_path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.sources = {dev_null.get(),         dev_null.get(),    dev_null.get(),
                  worker_control.get(),   inputs.worker_fd.get(), parameters.worker_fd.get(),
                  gradients.worker_fd.get(), output.worker_fd.get(), recipe_ro.get()};
  plan.sync_read_fd = sync_read.get();
  plan.sync_write_fd = sync_write.get();
  plan.error_fd = error_write.get();
  plan.drop_groups = privileged;
  const rlim_t cpu = config.limits.cpu_seconds;
  const rlim_t address_space = config.limits.address_space_size;
  plan.limits = {{
      {RLIMIT_CORE, {kFixedWorkerLimits.core_size, kFixedWorkerLimits.core_size}},
      {RLIMIT_CPU, {cpu, cpu}},
      {RLIMIT_AS, {address_space, address_space}},
      {RLIMIT_NOFILE, {kFixedWorkerLimits.open_files, kFixedWorkerLimits.open_files}},
      {RLIMIT_NPROC, {config.limits.max_threads, config.limits.max_threads}},
      {RLIMIT_MEMLOCK, {kFixedWorkerLimits.locked_memory, kFixedWorkerLimits.locked_memory}},
      {RLIMIT_MSGQUEUE, {kFixedWorkerLimits.message_queues, kFixedWorkerLimits.message_queues}},
  }};

  // ---- the clone: a direct child (exact exit status, rusage) that is PID 1 of its namespace ----
  int pidfd = -1;
  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD |
                              SIGCHLD;
  long cloned = syscall(SYS_clone, flags, nullptr, &pidfd, nullptr, 0);
  if (cloned == 0) ChildMain(plan);
  if (cloned < 0) {
    return FailedPreconditionError(std::string("sandbox: clone into new namespaces failed: ") +
                                   std::strerror(errno) +
                                   " (are unprivileged user namespaces disabled?)");
  }
  const pid_t pid = static_cast<pid_t>(cloned);
  UniqueFd pidfd_owner(pidfd);
  auto abandon = [&](Status status) -> Status {
    syscall(SYS_pidfd_send_signal, pidfd_owner.get(), SIGKILL, nullptr, 0);
    int ignored;
    while (waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    return status;
  };
  // The child cannot be reaped before we wait for it, so this pid is still this child: the
  // descriptor stays bound to it (reads fail once it has exited, never show another process).
  UniqueFd status(open(("/proc/" + std::to_string(pid) + "/status").c_str(),
                       O_RDONLY | O_CLOEXEC));
  if (!status.valid() && config.limits.max_resident_size != 0) {
    return abandon(ErrnoStatus("sandbox: open the worker's /proc status for its memory limit"));
  }
  // The child holds its own copies now.
  sync_read.reset();
  error_write.reset();
  worker_control.reset();
  inputs.worker_fd.reset();
  recipe_ro.reset();
  parameters.worker_fd.reset();
  gradients.worker_fd.reset();
  output.worker_fd.reset();

  Status maps = Status::Ok();
  if (!privileged) maps = WriteProcFile(pid, "setgroups", "deny");
  if (maps.ok()) maps = WriteProcFile(pid, "uid_map", "0 " + std::to_string(outside_uid) + " 1\n");
  if (maps.ok()) maps = WriteProcFile(pid, "gid_map", "0 " + std::to_string(outside_gid) + " 1\n");
  if (!maps.ok()) return abandon(maps.WithContext("sandbox: user namespace maps"));
  if (write(sync_write.get(), "g", 1) != 1) {
    return abandon(ErrnoStatus("sandbox: release the child"));
  }
  sync_write.reset();

  int payload[2] = {0, 0};
  ssize_t got;
  do {
    got = read(error_read.get(), payload, sizeof(payload));
  } while (got < 0 && errno == EINTR);
  if (got != 0) {
    std::string what = got == static_cast<ssize_t>(sizeof(payload))
                           ? std::string(ChildStepName(payload[0])) + ": " +
                                 std::strerror(payload[1])
                           : "unreadable error report";
    return abandon(FailedPreconditionError("sandbox: launching the worker failed at " + what));
  }

  auto process = std::make_unique<SandboxedProcessImpl>(
      pid, std::move(pidfd_owner), std::move(status), std::move(control),
      std::move(inputs.runtime_mapping),
      std::move(parameters.runtime_mapping),
      std::move(gradients.runtime_mapping), std::move(output.runtime_mapping), config);

  // The worker says hello only once its lockdown is complete; until then it is not a worker.
  WorkerFrameExpectation hello;
  hello.type = WorkerFrameType::kHello;
  hello.sequence = 0;
  hello.policy_fingerprint = SandboxPolicyFingerprint();
  hello.min_landlock_abi = config.min_landlock_abi;
  Result<WorkerFrame> frame =
      process->ReceiveFrame(hello, std::chrono::steady_clock::now() + config.hello_timeout);
  if (!frame.ok() || frame->type != WorkerFrameType::kHello) {
    Status cause = frame.ok() ? UnavailableError("worker reported a failure instead of hello")
                              : frame.status();
    process->Kill();
    Result<ExitInfo> exit = process->Wait(std::chrono::steady_clock::now() +
                                          std::chrono::seconds(10));
    // How it ended, as a category only: its exit code and signal are the worker's choice.
    const std::string_view how =
        exit.ok() ? ExitCategoryName(exit->category) : "not reaped in time";
    // Killed for its memory before it was locked down: the limit is below what the worker itself
    // needs (ResourceExhausted, so the caller can say out of memory rather than internal).
    const StatusCode code =
        exit.ok() && exit->category == ExitCategory::kOutOfMemory ? StatusCode::kResourceExhausted
        : cause.code() == StatusCode::kInvalidArgument            ? cause.code()
                                                                  : StatusCode::kUnavailable;
    return Status(code, "sandbox: worker did not complete its lockdown: " + cause.message() +
                            " (worker " + std::string(how) + ")");
  }
  process->set_landlock_abi(static_cast<int>(frame->fields[1]));
  return std::unique_ptr<SandboxedProcess>(std::move(process));
}

}  // namespace chiron::sandbox
