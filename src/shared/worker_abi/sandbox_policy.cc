#include "shared/worker_abi/sandbox_policy.h"

#include <string>

#include "shared/worker_abi/worker_protocol.h"

namespace chiron {
namespace {

// Start: the 38 calls a libtorch training loop was measured to need (docs NOTES: "A libtorch
// training loop ran under a 38-syscall seccomp allowlist"), with arguments narrowed where the
// kernel lets a filter see them, plus the few dlopen and glibc need after the lockdown.
constexpr SyscallRule kRules[] = {
    {"read", SyscallArgRule::kAny, "control frames; dlopen reads the recipe"},
    {"write", SyscallArgRule::kAny, "control frames (0-2 are /dev/null)"},
    {"writev", SyscallArgRule::kAny, "glibc's fatal-error messages (to /dev/null)"},
    {"close", SyscallArgRule::kAny, "descriptors"},
    {"openat", SyscallArgRule::kOpenReadOnly, "dlopen of the recipe; Landlock allows nothing else"},
    {"fstat", SyscallArgRule::kAny, "dlopen, stdio"},
    {"newfstatat", SyscallArgRule::kAny, "dlopen, fstat via AT_EMPTY_PATH"},
    {"lseek", SyscallArgRule::kAny, "libtorch streams"},
    {"pread64", SyscallArgRule::kAny, "dlopen reads ELF headers"},
    {"mmap", SyscallArgRule::kAny, "memory; arenas (read-only descriptors refuse PROT_WRITE)"},
    {"munmap", SyscallArgRule::kAny, "memory"},
    {"mprotect", SyscallArgRule::kAny, "dlopen relocation, thread stacks"},
    {"madvise", SyscallArgRule::kAny, "allocators"},
    {"mremap", SyscallArgRule::kAny, "allocators"},
    {"brk", SyscallArgRule::kAny, "malloc"},
    {"mbind", SyscallArgRule::kAny, "oneDNN/OpenMP NUMA hints"},
    {"get_mempolicy", SyscallArgRule::kAny, "oneDNN/OpenMP NUMA hints"},
    {"set_mempolicy", SyscallArgRule::kAny, "oneDNN/OpenMP NUMA hints"},
    {"clone", SyscallArgRule::kCloneThreadOnly, "libtorch/OpenMP worker threads"},
    {"clone3", SyscallArgRule::kFailWithEnosys, "glibc tries it first for threads"},
    {"set_robust_list", SyscallArgRule::kAny, "new threads"},
    {"rseq", SyscallArgRule::kAny, "new threads"},
    {"futex", SyscallArgRule::kAny, "locks, thread joins"},
    {"sched_yield", SyscallArgRule::kAny, "OpenMP spin-wait"},
    {"sched_getaffinity", SyscallArgRule::kAny, "OpenMP thread count"},
    {"rt_sigprocmask", SyscallArgRule::kAny, "threads, abort"},
    {"rt_sigaction", SyscallArgRule::kAny, "abort"},
    {"rt_sigreturn", SyscallArgRule::kAny, "signal return"},
    {"restart_syscall", SyscallArgRule::kAny, "sleeps interrupted by SIGSTOP/SIGCONT"},
    {"tgkill", SyscallArgRule::kSignalSelfOnly, "abort(), raise()"},
    {"getpid", SyscallArgRule::kAny, "glibc"},
    {"gettid", SyscallArgRule::kAny, "glibc"},
    {"getrusage", SyscallArgRule::kAny, "libtorch profiling of its own use"},
    {"prlimit64", SyscallArgRule::kGetLimitOnly, "getrlimit (stack size for threads)"},
    {"getrandom", SyscallArgRule::kAny, "libtorch seeding, std::random_device"},
    {"clock_gettime", SyscallArgRule::kAny, "timing (vDSO fallback)"},
    {"clock_nanosleep", SyscallArgRule::kAny, "OpenMP back-off"},
    {"nanosleep", SyscallArgRule::kAny, "OpenMP back-off"},
    {"arch_prctl", SyscallArgRule::kArchXcompOnly, "oneDNN asks for AMX tile state"},
    {"exit", SyscallArgRule::kAny, "thread exit"},
    {"exit_group", SyscallArgRule::kAny, "process exit"},
};

std::string_view RuleName(SyscallArgRule rule) {
  switch (rule) {
    case SyscallArgRule::kAny: return "any";
    case SyscallArgRule::kCloneThreadOnly: return "clone-thread-only";
    case SyscallArgRule::kOpenReadOnly: return "open-read-only";
    case SyscallArgRule::kSignalSelfOnly: return "signal-self-only";
    case SyscallArgRule::kGetLimitOnly: return "get-limit-only";
    case SyscallArgRule::kArchXcompOnly: return "arch-xcomp-only";
    case SyscallArgRule::kFailWithEnosys: return "fail-with-enosys";
  }
  return "?";
}

std::string BuildPolicyText() {
  std::string text = "chiron-worker sandbox policy v1\n";
  text += "namespaces: user mount pid net ipc uts cgroup\n";
  text += "root: empty tmpfs (read-only after setup) holding only " +
          std::string(kRecipePathInSandbox) + "\n";
  text += "landlock: handle every access right of the running ABI; allow read_file+execute on " +
          std::string(kRecipePathInSandbox) + "; scope abstract-unix-socket+signal\n";
  text += "capabilities: none (bounding, ambient, effective, permitted, inheritable cleared)\n";
  text += "prctl: no_new_privs=1 dumpable=0 pdeathsig=SIGKILL\n";
  text += "seccomp: default kill-process; other architectures kill-process\n";
  for (const SyscallRule& rule : kRules) {
    text += "allow ";
    text += rule.name;
    text += " ";
    text += RuleName(rule.rule);
    text += "\n";
  }
  text += "rlimit core=" + std::to_string(kFixedWorkerLimits.core_size) +
          " nofile=" + std::to_string(kFixedWorkerLimits.open_files) +
          " memlock=" + std::to_string(kFixedWorkerLimits.locked_memory) +
          " msgqueue=" + std::to_string(kFixedWorkerLimits.message_queues) + "\n";
  text += "channels: control=" + std::to_string(kWorkerControlFd) +
          " inputs=" + std::to_string(kWorkerInputFd) +
          " parameters=" + std::to_string(kWorkerParameterFd) +
          " gradients=" + std::to_string(kWorkerGradientFd) +
          " output=" + std::to_string(kWorkerOutputFd) +
          " recipe=" + std::to_string(kWorkerRecipeFd) + "\n";
  return text;
}

}  // namespace

std::span<const SyscallRule> WorkerSyscallRules() { return kRules; }

std::string_view SandboxPolicyBytes() {
  static const std::string* const kText = new std::string(BuildPolicyText());
  return *kText;
}

uint64_t SandboxPolicyFingerprint() {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : SandboxPolicyBytes()) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace chiron
