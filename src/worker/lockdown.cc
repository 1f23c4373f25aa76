#include "worker/lockdown.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "shared/worker_abi/worker_protocol.h"
#include "shared/worker_abi/sandbox_policy.h"

namespace chiron {
namespace {

bool g_locked_down = false;

Status ErrnoError(const std::string& what) {
  return FailedPreconditionError("lockdown: " + what + ": " + std::strerror(errno));
}

// ---- Landlock ---------------------------------------------------------------------------------
// Debian 12's <linux/landlock.h> stops at ABI 1-2; the kernel here speaks ABI 7. The structures
// and constants are defined locally (their layout is kernel ABI and cannot change).
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};
constexpr uint32_t kLandlockCreateRulesetVersion = 1u << 0;
constexpr int kLandlockRulePathBeneath = 1;
constexpr uint64_t kAccessFsExecute = 1ull << 0;
constexpr uint64_t kAccessFsReadFile = 1ull << 2;
// Rights known when this was written, by ABI: 1 → bits 0-12, 2 → REFER (13), 3 → TRUNCATE (14),
// 5 → IOCTL_DEV (15); net (4): BIND_TCP, CONNECT_TCP; scoped (6): ABSTRACT_UNIX_SOCKET, SIGNAL.
// Newer kernels may know more: ProbeHandledRights asks the kernel bit by bit, so the ruleset
// handles (and therefore denies) every right the running kernel knows, even ones newer than this
// file.

long LandlockCreateRuleset(const LandlockRulesetAttr* attr, size_t size, uint32_t flags) {
  return syscall(__NR_landlock_create_ruleset, attr, size, flags);
}

// Returns the mask of rights in one of the three fields that the kernel accepts, by trying each
// bit alone: the kernel rejects (EINVAL) a ruleset naming a right it does not know.
uint64_t ProbeHandledRights(int field) {
  uint64_t mask = 0;
  for (int bit = 0; bit < 64; ++bit) {
    LandlockRulesetAttr attr{};
    uint64_t* slot = field == 0 ? &attr.handled_access_fs
                     : field == 1 ? &attr.handled_access_net
                                  : &attr.scoped;
    *slot = 1ull << bit;
    long fd = LandlockCreateRuleset(&attr, sizeof(attr), 0);
    if (fd >= 0) {
      close(static_cast<int>(fd));
      mask |= 1ull << bit;
    }
  }
  return mask;
}

Status ApplyLandlock(const std::string& recipe_path, int abi) {
  LandlockRulesetAttr attr{};
  attr.handled_access_fs = ProbeHandledRights(0);
  attr.handled_access_net = ProbeHandledRights(1);
  attr.scoped = ProbeHandledRights(2);
  // Fail closed if the probe found less than ABI 1 promises (something is wrong with the kernel).
  constexpr uint64_t kAbi1Fs = (1ull << 13) - 1;
  if ((attr.handled_access_fs & kAbi1Fs) != kAbi1Fs) {
    return FailedPreconditionError("lockdown: Landlock does not accept the ABI 1 rights");
  }
  if (abi >= 4 && attr.handled_access_net == 0) {
    return FailedPreconditionError("lockdown: Landlock ABI >= 4 but no network rights accepted");
  }
  if (abi >= 6 && attr.scoped == 0) {
    return FailedPreconditionError("lockdown: Landlock ABI >= 6 but no scopes accepted");
  }
  long ruleset = LandlockCreateRuleset(&attr, sizeof(attr), 0);
  if (ruleset < 0) return ErrnoError("landlock_create_ruleset");
  int ruleset_fd = static_cast<int>(ruleset);

  int file_fd = open(recipe_path.c_str(), O_PATH | O_CLOEXEC);
  if (file_fd < 0) {
    Status s = ErrnoError("open " + recipe_path + " for the Landlock rule");
    close(ruleset_fd);
    return s;
  }
  LandlockPathBeneathAttr rule{};
  rule.allowed_access = kAccessFsReadFile | kAccessFsExecute;
  rule.parent_fd = file_fd;
  long added = syscall(__NR_landlock_add_rule, ruleset_fd, kLandlockRulePathBeneath, &rule, 0);
  int add_errno = errno;
  close(file_fd);
  if (added != 0) {
    errno = add_errno;
    Status s = ErrnoError("landlock_add_rule");
    close(ruleset_fd);
    return s;
  }
  long restricted = syscall(__NR_landlock_restrict_self, ruleset_fd, 0);
  int restrict_errno = errno;
  close(ruleset_fd);
  if (restricted != 0) {
    errno = restrict_errno;
    return ErrnoError("landlock_restrict_self");
  }
  return Status::Ok();
}

// ---- seccomp ----------------------------------------------------------------------------------

Status ApplySeccomp() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return FailedPreconditionError("lockdown: seccomp_init failed");
  auto fail = [&](const std::string& what, int rc) {
    seccomp_release(ctx);
    return FailedPreconditionError("lockdown: seccomp: " + what + ": " + std::strerror(-rc));
  };
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc != 0) return fail("bad-arch action", rc);
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc != 0) return fail("tsync", rc);
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
  if (rc != 0) return fail("no_new_privs", rc);

  constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                       CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                       CLONE_NEWNET | CLONE_NEWTIME;
  // O_TMPFILE is 020000000 | O_DIRECTORY; only its own bit is tested (O_DIRECTORY is harmless).
  constexpr uint64_t kTmpfileBit = 020000000;
  static_assert((O_TMPFILE & kTmpfileBit) != 0);
  constexpr uint64_t kWritingOpenFlags = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | kTmpfileBit;
  const uint64_t self = static_cast<uint64_t>(getpid());
  for (const SyscallRule& rule : WorkerSyscallRules()) {
    const std::string name(rule.name);
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      seccomp_release(ctx);
      return FailedPreconditionError("lockdown: seccomp does not know syscall " + name);
    }
    switch (rule.rule) {
      case SyscallArgRule::kAny:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        break;
      case SyscallArgRule::kCloneThreadOnly:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | kNamespaceFlags,
                                      CLONE_THREAD));
        break;
      case SyscallArgRule::kOpenReadOnly:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, kWritingOpenFlags, 0));
        break;
      case SyscallArgRule::kSignalSelfOnly:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, self));
        break;
      case SyscallArgRule::kGetLimitOnly:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, 0),
                              SCMP_A2(SCMP_CMP_EQ, 0));
        break;
      case SyscallArgRule::kArchXcompOnly:
        // ARCH_GET_XCOMP_SUPP, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM (asm/prctl.h).
        for (uint64_t code : {0x1021u, 0x1022u, 0x1023u}) {
          rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, code));
          if (rc != 0) break;
        }
        break;
      case SyscallArgRule::kFailWithEnosys:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        break;
    }
    if (rc != 0) return fail("rule for " + name, rc);
  }
  rc = seccomp_load(ctx);
  if (rc != 0) return fail("load", rc);
  seccomp_release(ctx);
  return Status::Ok();
}

// ---- the empty root -----------------------------------------------------------------------

Status RequireSingleThreaded() {
  std::ifstream status("/proc/self/status");
  if (!status) {
    return FailedPreconditionError("lockdown: cannot read /proc/self/status to check that the "
                                   "worker is single-threaded");
  }
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) {
      if (std::strtol(line.c_str() + 8, nullptr, 10) != 1) {
        return FailedPreconditionError(
            "lockdown: the worker already runs several threads; Landlock would confine only "
            "one of them (call Lockdown before anything starts a thread)");
      }
      return Status::Ok();
    }
  }
  return FailedPreconditionError("lockdown: no thread count in /proc/self/status");
}

Status CopyRecipe(int recipe_fd, uint64_t max_size, const std::string& path) {
  struct stat st;
  if (fstat(recipe_fd, &st) != 0) return ErrnoError("fstat of the recipe channel");
  if (st.st_size <= 0 || static_cast<uint64_t>(st.st_size) > max_size) {
    return FailedPreconditionError("lockdown: recipe channel holds " +
                                   std::to_string(st.st_size) + " bytes (limit " +
                                   std::to_string(max_size) + ")");
  }
  int out = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
  if (out < 0) return ErrnoError("create " + path);
  std::vector<char> buffer(1 << 20);
  off_t offset = 0;
  Status result = Status::Ok();
  while (offset < st.st_size) {
    ssize_t n = pread(recipe_fd, buffer.data(), buffer.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      result = ErrnoError("read the recipe channel");
      break;
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        result = ErrnoError("write " + path);
        break;
      }
      done += w;
    }
    if (!result.ok()) break;
    offset += n;
  }
  if (close(out) != 0 && result.ok()) result = ErrnoError("close " + path);
  return result;
}

Status EnterEmptyRoot(const LockdownOptions& options, std::string* recipe_path) {
  // Nothing we mount may propagate back to the host's mount namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoError("make mounts private");
  }
  struct stat st;
  if (fstat(options.recipe_fd, &st) != 0) return ErrnoError("fstat of the recipe channel");
  const uint64_t tmpfs_size = (static_cast<uint64_t>(st.st_size) + (1 << 20)) & ~0xfffull;
  const std::string mount_options =
      "size=" + std::to_string(tmpfs_size) + ",nr_inodes=8,mode=0700";
  // Any existing directory serves as the mount point: the new root replaces the whole view.
  const char* kBase = "/tmp";
  if (mount("tmpfs", kBase, "tmpfs", MS_NOSUID | MS_NODEV, mount_options.c_str()) != 0) {
    return ErrnoError("mount tmpfs on /tmp");
  }
  const std::string in_base = std::string(kBase) + std::string(kRecipePathInSandbox);
  CHIRON_RETURN_IF_ERROR(CopyRecipe(options.recipe_fd, options.max_recipe_size, in_base));
  if (close(options.recipe_fd) != 0) return ErrnoError("close the recipe channel");

  // pivot_root(".", "."): the old root ends up stacked on the new one and is detached at once
  // (pivot_root(2), "NOTES"). Nothing of the host stays reachable, not even through "..".
  if (chdir(kBase) != 0) return ErrnoError("chdir to the new root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoError("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return ErrnoError("detach the old root");
  if (chdir("/") != 0) return ErrnoError("chdir /");
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0) {
    return ErrnoError("remount the new root read-only");
  }
  *recipe_path = std::string(kRecipePathInSandbox);
  return Status::Ok();
}

Status DropCapabilities() {
  for (int cap = 0; cap < 64; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the last capability the kernel knows
      return ErrnoError("drop capability " + std::to_string(cap) + " from the bounding set");
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return ErrnoError("clear ambient capabilities");
  }
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return ErrnoError("capset to nothing");
  return Status::Ok();
}

}  // namespace

int LandlockAbiVersion() {
  long abi = LandlockCreateRuleset(nullptr, 0, kLandlockCreateRulesetVersion);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

bool IsLockedDown() { return g_locked_down; }

Result<LockdownReport> Lockdown(const LockdownOptions& options) {
  if (g_locked_down) return FailedPreconditionError("lockdown: already locked down");
  LockdownReport report;
  report.landlock_abi = LandlockAbiVersion();
  if (report.landlock_abi < options.min_landlock_abi) {
    return FailedPreconditionError("lockdown: kernel Landlock ABI " +
                                   std::to_string(report.landlock_abi) + ", need at least " +
                                   std::to_string(options.min_landlock_abi) +
                                   " (is Landlock enabled in the kernel's lsm= list?)");
  }
  CHIRON_RETURN_IF_ERROR(RequireSingleThreaded());
  if (syscall(SYS_close_range, kWorkerFirstFreeFd, ~0u, 0) != 0) {
    return ErrnoError("close stray descriptors");
  }
  CHIRON_RETURN_IF_ERROR(EnterEmptyRoot(options, &report.recipe_path));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError("no_new_privs");
  // execve resets dumpable to 1; 0 keeps ptrace and /proc/PID/mem of this process closed to
  // everything but a real root outside.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return ErrnoError("dumpable 0");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return ErrnoError("parent-death signal");
  CHIRON_RETURN_IF_ERROR(ApplyLandlock(report.recipe_path, report.landlock_abi));
  CHIRON_RETURN_IF_ERROR(DropCapabilities());
  CHIRON_RETURN_IF_ERROR(ApplySeccomp());
  g_locked_down = true;
  return report;
}

}  // namespace chiron
