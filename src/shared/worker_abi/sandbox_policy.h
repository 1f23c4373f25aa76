// The sandbox policy of chiron-worker, in one place: the seccomp allowlist, the Landlock rule and
// the fixed resource limits. Part of the worker boundary's ABI (src/shared/worker_abi), compiled
// into both sides:
//   - the worker (src/worker/lockdown.cc) enforces it on itself;
//   - the runtime (src/runtime/sandbox) applies the fixed limits when it launches the worker, and
//     checks the fingerprint the worker reports in its hello frame against its own.
// The policy is therefore covered by the measurement of both binaries (they are part of the
// attested image), and SandboxPolicyBytes() gives its canonical text so that an auditor can read
// exactly what was measured: the build writes those bytes to bin/sandbox-policy.txt
// (chiron_sandbox_policy_gen), and chirond refuses to start when that file differs from its own
// compiled-in copy (src/runtime/main/chirond.cc). There is no command-line flag that prints them.
//
// Changing anything here changes SandboxPolicyFingerprint(): a worker and a runtime built from
// different policies refuse to work together (the runtime rejects the hello frame).
//
// Thread safety: everything here is immutable.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace chiron {

// How the arguments of an allowed system call are restricted.
enum class SyscallArgRule : uint8_t {
  kAny,              // allowed with any arguments
  kCloneThreadOnly,  // clone: CLONE_THREAD set and no CLONE_NEW* flag: threads, never processes
  kOpenReadOnly,     // openat: read-only access mode; no O_CREAT, O_TRUNC, O_APPEND, O_TMPFILE
  kSignalSelfOnly,   // tgkill: only the worker's own thread group (abort(), raise())
  kGetLimitOnly,     // prlimit64: pid 0 and no new limit (getrlimit only)
  kArchXcompOnly,    // arch_prctl: ARCH_{GET_XCOMP_SUPP,GET_XCOMP_PERM,REQ_XCOMP_PERM} (AMX)
  kFailWithEnosys,   // clone3: fail with ENOSYS so glibc falls back to clone, whose flags a
                     // filter can see (clone3 passes them in memory)
};

struct SyscallRule {
  std::string_view name;  // as libseccomp names it (x86_64)
  SyscallArgRule rule;
  std::string_view why;   // who needs it
};

// The complete allowlist. Any other system call, or a listed one whose arguments break its rule,
// kills the whole worker (SECCOMP_RET_KILL_PROCESS, seen by the runtime as SIGSYS). Calls from
// other architectures (int 0x80, x32) kill as well.
std::span<const SyscallRule> WorkerSyscallRules();

// Limits the runtime applies to every worker, whatever the job (per-job limits such as address
// space and CPU time come from SandboxConfig).
struct FixedWorkerLimits {
  uint64_t core_size = 0;        // RLIMIT_CORE: a core dump would write plaintext to disk
  uint64_t open_files = 16;      // RLIMIT_NOFILE: channels 0-8 plus what dlopen needs
  uint64_t locked_memory = 0;    // RLIMIT_MEMLOCK: no pinning of memory
  uint64_t message_queues = 0;   // RLIMIT_MSGQUEUE: no POSIX message queues
};
inline constexpr FixedWorkerLimits kFixedWorkerLimits{};

// The only file the worker may open after its lockdown: the recipe copied into its empty root.
inline constexpr std::string_view kRecipePathInSandbox = "/recipe.so";

// Canonical text of the whole policy (syscalls with their rules, Landlock rule, fixed limits,
// channel layout). Stable byte for byte for a given build.
std::string_view SandboxPolicyBytes();

// FNV-1a 64 of SandboxPolicyBytes(): detects a worker/runtime policy mismatch. Not a security
// boundary by itself (the binaries are measured); it catches version skew in one frame.
uint64_t SandboxPolicyFingerprint();

}  // namespace chiron
