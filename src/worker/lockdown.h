// The worker's half of the sandbox: what chiron-worker does to itself, after it has loaded its
// own shared libraries and before any recipe code exists in the process.
//
// The runtime's SandboxLauncher (src/runtime/sandbox/sandbox.h) has already put the worker in new
// user, mount, PID, network, IPC, UTS and cgroup namespaces, closed every descriptor but the
// channels (fixed numbers, shared/worker_abi/worker_protocol.h), set the resource limits and
// no_new_privs, and exec'd the worker with a fixed environment. Lockdown() completes the cage:
//
//   1. refuses to run unless the process is single-threaded (Landlock restricts only the calling
//      thread, and a thread started earlier would escape it);
//   2. closes every descriptor from kWorkerFirstFreeFd up;
//   3. makes every mount private, mounts a fresh tmpfs, copies the recipe shared object from its
//      sealed memfd into it (the only file there), pivot_roots into it, detaches the old root and
//      remounts the new one read-only: no /proc, no /dev, no /etc, nothing of the host;
//   4. sets no_new_privs, dumpable 0 and the parent-death signal again (execve reset dumpable);
//   5. drops every capability (bounding, ambient, permitted, effective, inheritable): the worker
//      was root of its user namespace only to build the empty root;
//   6. applies a Landlock ruleset that handles every access right of the kernel's ABI
//      (filesystem, network, scopes) and allows only read+execute of the recipe file;
//   7. loads the seccomp allowlist of shared/worker_abi/sandbox_policy.h (kill-process by
//      default), with TSYNC.
//
// Any failure leaves the process in an unknown, partly confined state: the caller must exit with
// kWorkerExitLockdownFailed at once and never load the recipe.
#pragma once

#include <cstdint>
#include <string>

#include "shared/base/status.h"
#include "shared/worker_abi/worker_protocol.h"

namespace chiron {

struct LockdownOptions {
  // The sealed memfd holding the recipe shared object (closed by Lockdown).
  int recipe_fd = kWorkerRecipeFd;
  // Largest recipe accepted (bytes); also sizes the tmpfs.
  uint64_t max_recipe_size = 512ull << 20;
  // Refuse to run on kernels whose Landlock ABI is older (1 = Linux 5.13).
  int min_landlock_abi = 1;
};

struct LockdownReport {
  int landlock_abi = 0;           // the ABI whose every right the ruleset handles
  std::string recipe_path;        // where the recipe now lives, for LoadRecipeAfterLockdown
};

Result<LockdownReport> Lockdown(const LockdownOptions& options);

// True once Lockdown() has returned OK in this process.
bool IsLockedDown();

// The Landlock ABI version of the running kernel (0 if Landlock is unavailable). Usable before
// and after the lockdown.
int LandlockAbiVersion();

}  // namespace chiron
