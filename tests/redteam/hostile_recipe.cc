// A hostile "recipe" shared object: every way out of the sandbox we could think of, run either
// from its static initialiser (REDTEAM_INIT_ATTACK / REDTEAM_INIT_ARG in the environment) or on
// request of the red-team worker (chiron_redteam_run). Tests only; never built into a product.
//
// Each attack reports kBlocked with errno when the kernel refuses it, or kSucceeded (with what it
// read) when it got through. An attack on a forbidden system call usually never reports: seccomp
// kills the process first, and the runtime sees SIGSYS.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/netlink.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "tests/redteam/redteam_abi.h"

namespace chiron::redteam {
namespace {

AttackReport Blocked() {
  AttackReport report;
  report.outcome = kBlocked;
  report.error = errno;
  return report;
}

AttackReport Succeeded(const void* data = nullptr, size_t size = 0) {
  AttackReport report;
  report.outcome = kSucceeded;
  report.leaked_size = static_cast<int>(std::min<size_t>(size, sizeof(report.leaked)));
  if (data != nullptr) std::memcpy(report.leaked, data, report.leaked_size);
  return report;
}

AttackReport ReadFile(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Blocked();
  char buffer[64];
  ssize_t n = read(fd, buffer, sizeof(buffer));
  if (n < 0) return Blocked();
  close(fd);
  return Succeeded(buffer, static_cast<size_t>(n));
}

AttackReport ListDirectory(const char* path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Blocked();
  char buffer[256];
  long n = syscall(SYS_getdents64, fd, buffer, sizeof(buffer));
  if (n < 0) return Blocked();
  return Succeeded(buffer, static_cast<size_t>(n));
}

AttackReport CreateFile(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Blocked();
  ssize_t ignored = write(fd, "LEAK", 4);
  (void)ignored;
  close(fd);
  return Succeeded();
}

AttackReport ConnectInet(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Blocked();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Blocked();
  }
  ssize_t ignored = write(fd, "LEAK", 4);
  (void)ignored;
  return Succeeded();
}

AttackReport ConnectUnix(const char* path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Blocked();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Blocked();
  }
  ssize_t ignored = write(fd, "LEAK", 4);
  (void)ignored;
  return Succeeded();
}

AttackReport OpenNetlink() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Blocked();
  return Succeeded();
}

// A 32-bit system call through int 0x80 (getpid is 20 on i386): other architectures must kill.
AttackReport Int80() {
  long result;
  asm volatile("int $0x80" : "=a"(result) : "a"(20L) : "memory");
  if (result < 0) {
    errno = static_cast<int>(-result);
    return Blocked();
  }
  return Succeeded();
}

// The x32 ABI: getpid with __X32_SYSCALL_BIT.
AttackReport X32() {
  long result = syscall(0x40000000L | SYS_getpid);
  if (result < 0) return Blocked();
  return Succeeded();
}

AttackReport MapParametersWritable(const AttackContext* context) {
  void* p = mmap(nullptr, context->parameter_arena_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 kWorkerParameterFd, 0);
  if (p == MAP_FAILED) return Blocked();
  static_cast<float*>(p)[0] = 4242.0f;
  return Succeeded();
}

AttackReport MprotectParameters(const AttackContext* context) {
  void* p = mmap(nullptr, context->parameter_arena_size, PROT_READ, MAP_SHARED,
                 kWorkerParameterFd, 0);
  if (p == MAP_FAILED) return Blocked();
  if (mprotect(p, context->parameter_arena_size, PROT_READ | PROT_WRITE) != 0) return Blocked();
  static_cast<float*>(p)[0] = 4242.0f;
  return Succeeded();
}

AttackReport WriteParameterDescriptor() {
  float value = 4242.0f;
  if (write(kWorkerParameterFd, &value, sizeof(value)) < 0) return Blocked();
  return Succeeded();
}

AttackReport MapDatasetWritable(const AttackContext* context) {
  void* p = mmap(nullptr, std::max<size_t>(context->dataset_size, 1), PROT_READ | PROT_WRITE,
                 MAP_SHARED, kWorkerInputFd, 0);
  if (p == MAP_FAILED) return Blocked();
  static_cast<uint8_t*>(p)[0] ^= 0xff;
  return Succeeded();
}

AttackReport TruncateArena() {
  if (ftruncate(kWorkerGradientFd, 0) != 0) return Blocked();
  return Succeeded();
}

// A well-formed 64-byte answer with a descriptor attached, so that only the ancillary data is
// wrong.
AttackReport SendDescriptor(const AttackContext* context) {
  WorkerFrame reply;
  reply.type = WorkerFrameType::kGradientsReady;
  if (context != nullptr) {
    reply.sequence = context->request.sequence;
    reply.fields[0] = context->request.fields[1];
    reply.fields[2] = context->request.fields[0];
  }
  const double loss = 1.0;
  std::memcpy(&reply.fields[1], &loss, sizeof(loss));
  auto bytes = EncodeWorkerFrame(reply);
  iovec iov{bytes.data(), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  int fd = kWorkerInputFd;
  std::memcpy(CMSG_DATA(header), &fd, sizeof(fd));
  if (sendmsg(kWorkerControlFd, &message, 0) < 0) return Blocked();
  AttackReport report = Succeeded();
  report.answered = true;
  return report;
}

void* ThreadBody(void* arg) {
  *static_cast<int*>(arg) = 7;
  return nullptr;
}

AttackReport StartThread() {
  pthread_t thread;
  int value = 0;
  int rc = pthread_create(&thread, nullptr, ThreadBody, &value);
  if (rc != 0) {
    errno = rc;
    return Blocked();
  }
  pthread_join(thread, nullptr);
  return value == 7 ? Succeeded() : Blocked();
}

void* SleepForever(void*) {
  for (;;) sleep(1000);
  return nullptr;
}

// Threads until refused: RLIMIT_NPROC (per user namespace) must stop it well before 1000.
AttackReport ThreadBomb() {
  for (int i = 0; i < 1000; ++i) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 64 << 10);
    int rc = pthread_create(&thread, &attributes, SleepForever, nullptr);
    pthread_attr_destroy(&attributes);
    if (rc != 0) {
      errno = rc;
      AttackReport report = Blocked();
      report.leaked_size = 1;
      report.leaked[0] = static_cast<uint8_t>(std::min(i, 255));
      return report;
    }
  }
  return Succeeded();
}

AttackReport ExhaustMemory() {
  std::vector<char*> blocks;
  try {
    for (;;) {
      char* block = new char[64 << 20];
      std::memset(block, 1, 64 << 20);
      blocks.push_back(block);
    }
  } catch (const std::bad_alloc&) {
    for (char* block : blocks) delete[] block;
    AttackReport report = Blocked();
    report.out_of_memory = true;
    return report;
  }
}

// Touches `mebibytes` MiB in 4 MiB blocks and keeps them: resident memory, not just address
// space. The runtime's max_resident_size must kill the worker before it is done.
AttackReport GrowResident(int mebibytes) {
  static std::vector<char*> hoard;
  for (int i = 0; i < mebibytes / 4; ++i) {
    char* block = static_cast<char*>(std::malloc(4 << 20));
    if (block == nullptr) return Blocked();
    std::memset(block, 1, 4 << 20);
    hoard.push_back(block);
  }
  return Succeeded();
}

void WriteFrame(const void* data, size_t size) {
  ssize_t ignored = write(kWorkerControlFd, data, size);
  (void)ignored;
}

// Frame attacks answer the runtime's request themselves, wrongly.
AttackReport Answer(const AttackContext* context, const std::string& attack) {
  const WorkerFrame& request = context->request;
  WorkerFrame reply;
  reply.sequence = request.sequence;
  if (request.type == WorkerFrameType::kComputeGradients) {
    reply.type = WorkerFrameType::kGradientsReady;
    double loss = 1.0;
    if (attack == "nan-loss") loss = std::numeric_limits<double>::quiet_NaN();
    std::memcpy(&reply.fields[1], &loss, sizeof(loss));
    reply.fields[0] = request.fields[1];
    reply.fields[2] = request.fields[0];
    reply.fields[3] = request.fields[2];
  } else {
    reply.type = WorkerFrameType::kOutputReady;
    reply.fields[0] = request.fields[1];
  }
  if (attack == "wrong-sequence") reply.sequence += 1;
  if (attack == "nonzero-padding") reply.fields[5] = 0x5345435245543132ULL;  // "SECRET12"
  if (attack == "nan-gradients") context->gradients[0] = std::numeric_limits<float>::quiet_NaN();
  if (attack == "inf-gradients") context->gradients[0] = std::numeric_limits<float>::infinity();
  if (attack == "huge-gradients") context->gradients[1] = 1e30f;
  auto bytes = EncodeWorkerFrame(reply);
  if (attack == "bad-magic") bytes[0] ^= 0xff;
  if (attack == "oversize-frame") {
    std::vector<uint8_t> big(4096, 'S');
    std::memcpy(big.data(), bytes.data(), bytes.size());
    WriteFrame(big.data(), big.size());
  } else if (attack == "short-frame") {
    WriteFrame(bytes.data(), 10);
  } else {
    WriteFrame(bytes.data(), bytes.size());
  }
  AttackReport report = Succeeded();
  report.answered = true;
  return report;
}

// Which descriptors exist beyond the channels (fstat is allowed; anything open is a finding).
AttackReport ProbeDescriptors() {
  uint8_t found[64];
  size_t count = 0;
  for (int fd = kWorkerFirstFreeFd; fd < 1024 && count < sizeof(found); ++fd) {
    struct stat st;
    if (fstat(fd, &st) == 0) found[count++] = static_cast<uint8_t>(fd);
  }
  // 0-2 must be /dev/null (character device 1:3), never a terminal, pipe or log file.
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
      found[count++] = static_cast<uint8_t>(100 + fd);
    }
  }
  if (count == 0) {
    errno = 0;
    return Blocked();
  }
  return Succeeded(found, count);
}

AttackReport g_init_report;

AttackReport Run(const AttackContext* context, const std::string& attack, const char* arg) {
  if (attack == "none") return AttackReport{};
  if (attack == "init-report") return g_init_report;
  if (attack == "read-file") return ReadFile(arg);
  if (attack == "list-directory") return ListDirectory(arg);
  if (attack == "create-file") return CreateFile(arg);
  if (attack == "mkdir") return mkdir(arg, 0755) == 0 ? Succeeded() : Blocked();
  if (attack == "connect-inet") return ConnectInet(std::atoi(arg));
  if (attack == "connect-unix") return ConnectUnix(arg);
  if (attack == "netlink") return OpenNetlink();
  if (attack == "fork") {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    return pid < 0 ? Blocked() : Succeeded();
  }
  if (attack == "exec") {
    char* const argv[] = {const_cast<char*>("/bin/sh"), nullptr};
    execve("/bin/sh", argv, nullptr);
    return Blocked();
  }
  if (attack == "ptrace") {
    return ptrace(PTRACE_ATTACH, std::atoi(arg), nullptr, nullptr) == 0 ? Succeeded() : Blocked();
  }
  if (attack == "kill") return kill(std::atoi(arg), SIGKILL) == 0 ? Succeeded() : Blocked();
  if (attack == "write-stdio") {
    ssize_t a = write(1, arg, std::strlen(arg));
    ssize_t b = write(2, arg, std::strlen(arg));
    return a > 0 && b > 0 ? Succeeded() : Blocked();
  }
  if (attack == "unshare") return unshare(CLONE_NEWUSER) == 0 ? Succeeded() : Blocked();
  if (attack == "mount") {
    return mount("none", "/", "tmpfs", 0, nullptr) == 0 ? Succeeded() : Blocked();
  }
  if (attack == "chroot") return chroot("..") == 0 ? Succeeded() : Blocked();
  if (attack == "io-uring") {
    uint8_t params[120] = {};
    return syscall(SYS_io_uring_setup, 1, params) >= 0 ? Succeeded() : Blocked();
  }
  if (attack == "memfd") return memfd_create("leak", 0) >= 0 ? Succeeded() : Blocked();
  if (attack == "int80") return Int80();
  if (attack == "x32") return X32();
  if (attack == "map-parameters-writable") return MapParametersWritable(context);
  if (attack == "mprotect-parameters") return MprotectParameters(context);
  if (attack == "write-parameter-fd") return WriteParameterDescriptor();
  if (attack == "map-dataset-writable") return MapDatasetWritable(context);
  if (attack == "truncate-arena") return TruncateArena();
  if (attack == "send-fd") return SendDescriptor(context);
  if (attack == "thread") return StartThread();
  if (attack == "probe-fds") return ProbeDescriptors();
  if (attack == "thread-bomb") return ThreadBomb();
  if (attack == "exhaust-memory") return ExhaustMemory();
  if (attack == "grow-resident") return GrowResident(std::atoi(arg));
  if (attack == "spin") {
    volatile uint64_t counter = 0;
    for (;;) counter = counter + 1;
  }
  if (attack == "sleep") {
    for (;;) sleep(1000);
  }
  if (attack == "abort") std::abort();
  if (attack == "oversize-frame" || attack == "short-frame" || attack == "bad-magic" ||
      attack == "wrong-sequence" || attack == "nonzero-padding" || attack == "nan-loss" ||
      attack == "nan-gradients" || attack == "inf-gradients" || attack == "huge-gradients") {
    if (context == nullptr) return AttackReport{};
    return Answer(context, attack);
  }
  errno = EINVAL;
  return Blocked();
}

// The static initialiser: runs inside dlopen, i.e. only after the lockdown.
struct InitialiserAttack {
  InitialiserAttack() {
    const char* attack = std::getenv("REDTEAM_INIT_ATTACK");
    const char* arg = std::getenv("REDTEAM_INIT_ARG");
    if (attack != nullptr) g_init_report = Run(nullptr, attack, arg != nullptr ? arg : "");
  }
};
InitialiserAttack g_initialiser_attack;

}  // namespace
}  // namespace chiron::redteam

extern "C" __attribute__((visibility("default"))) void chiron_redteam_run(
    const chiron::redteam::AttackContext* context, chiron::redteam::AttackReport* report) {
  *report = chiron::redteam::Run(context, context->attack, context->arg);
}
