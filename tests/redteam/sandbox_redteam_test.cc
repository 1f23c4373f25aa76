// Red-team tests of the worker sandbox: the real SandboxLauncher starts the real lockdown path
// (hostile_worker.cc) with a hostile recipe (hostile_recipe.cc), which attacks; every test
// checks that the attack fails, how the runtime sees the failure, and (TearDown) that the
// runtime still runs a benign worker afterwards. Controls run the same attack with
// --no-lockdown (the launcher's cage only) where that shows the test can fail.
//
// Real processes, real kernel; runs as root (CI) and as an unprivileged user.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/sandbox/sandbox.h"
#include "tests/redteam/redteam_abi.h"

namespace chiron::sandbox {
namespace {

using redteam::kBlocked;
using redteam::kNotRun;
using redteam::kReportFloats;
using redteam::kSucceeded;

constexpr uint64_t kParameterCount = 256;
constexpr uint64_t kOutputCount = 128;
constexpr uint64_t kInputSize = 4096;
static_assert(kOutputCount >= kReportFloats);

Deadline In(int milliseconds) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(milliseconds);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const Bytes& RecipeBytes() {
  static const Bytes* const kBytes = new Bytes(ToBytes(ReadText(CHIRON_REDTEAM_RECIPE)));
  return *kBytes;
}

const Bytes& Dataset() {
  static const Bytes* const kBytes = [] {
    auto* bytes = new Bytes;
    for (int i = 0; i < 100; ++i) Append(*bytes, AsBytes("SECRET-ROW-" + std::to_string(i) + ";"));
    return bytes;
  }();
  return *kBytes;
}

struct Attack {
  std::string name = "none";
  std::string arg;
  bool lockdown = true;
  std::vector<std::string> environment;
};

SandboxConfig ConfigFor(const Attack& attack) {
  SandboxConfig config;
  config.worker_path = CHIRON_REDTEAM_WORKER;
  config.arguments = {"--attack=" + attack.name, "--arg=" + attack.arg};
  if (!attack.lockdown) config.arguments.push_back("--no-lockdown");
  config.environment = attack.environment;
  config.input_size = kInputSize;
  config.recipe = RecipeBytes();
  config.parameter_count = kParameterCount;
  config.output_count = kOutputCount;
  config.limits.address_space_size = 1ull << 30;
  config.limits.cpu_seconds = 20;
  config.limits.max_threads = 16;
  return config;
}

// Starts a worker and writes the secret rows into its input arena (the batch it will see).
std::unique_ptr<SandboxedProcess> MustStart(const SandboxConfig& config) {
  auto process = SandboxLauncher::Start(config);
  if (!process.ok()) {
    ADD_FAILURE() << "Start failed: " << process.status().ToString();
    return nullptr;
  }
  std::span<uint8_t> inputs = (*process)->inputs();
  std::memcpy(inputs.data(), Dataset().data(), std::min(inputs.size(), Dataset().size()));
  return std::move(process).value();
}

WorkerFrame Request(WorkerFrameType type, uint64_t sequence, uint64_t samples, uint64_t count) {
  WorkerFrame frame;
  frame.type = type;
  frame.sequence = sequence;
  frame.fields = {samples, count, 0, 0, 0, 0};
  return frame;
}

// What the attack reported through the output arena.
struct Seen {
  int outcome = 0;
  int error = 0;
  std::string leaked;
};

Result<Seen> AskForReport(SandboxedProcess& process) {
  CHIRON_RETURN_IF_ERROR(
      process.SendFrame(Request(WorkerFrameType::kPredict, 1, 1, kOutputCount), In(5000)));
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kOutputReady;
  expect.sequence = 1;
  expect.count = kOutputCount;
  CHIRON_ASSIGN_OR_RETURN(WorkerFrame frame, process.ReceiveFrame(expect, In(10000)));
  if (frame.type != WorkerFrameType::kOutputReady) return UnknownError("worker failed");
  CHIRON_ASSIGN_OR_RETURN(std::vector<float> out, process.ReadOutput(kOutputCount, 1e6f));
  Seen seen;
  seen.outcome = static_cast<int>(out[0]);
  seen.error = static_cast<int>(out[1]);
  for (int i = 0; i < static_cast<int>(out[2]); ++i) seen.leaked.push_back(static_cast<char>(out[3 + i]));
  return seen;
}

ExitInfo Shutdown(SandboxedProcess& process) {
  process.SendFrame(Request(WorkerFrameType::kShutdown, 2, 0, 0), In(2000)).IgnoreError();
  Result<ExitInfo> info = process.Wait(In(10000));
  if (!info.ok()) {
    ADD_FAILURE() << info.status().ToString();
    process.Kill();
    return *process.Wait(In(10000));
  }
  return *info;
}

ExitInfo WaitForEnd(SandboxedProcess& process, int milliseconds = 10000) {
  Result<ExitInfo> info = process.Wait(In(milliseconds));
  if (!info.ok()) {
    ADD_FAILURE() << "worker still running: " << info.status().ToString();
    process.Kill();
    return *process.Wait(In(10000));
  }
  return *info;
}

// Runs an attack that reports through the output arena; returns what it saw and how it ended.
struct Reported {
  Result<Seen> seen = UnknownError("not run");
  ExitInfo exit;
};
Reported RunReporting(const Attack& attack) {
  Reported result;
  auto process = MustStart(ConfigFor(attack));
  if (process == nullptr) return result;
  result.seen = AskForReport(*process);
  result.exit = result.seen.ok() ? Shutdown(*process) : WaitForEnd(*process);
  return result;
}

// Runs an attack that should kill the worker before it can answer.
ExitInfo RunFatal(const Attack& attack) {
  auto process = MustStart(ConfigFor(attack));
  if (process == nullptr) return ExitInfo{};
  Result<Seen> seen = AskForReport(*process);
  EXPECT_FALSE(seen.ok()) << attack.name << " answered with outcome " << seen->outcome;
  if (seen.ok()) process->Kill();
  return WaitForEnd(*process);
}

// A temporary directory visible to the worker's outside uid (65534 when run as root), so that
// only the sandbox (not file permissions) stands between the worker and the files in it.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/chiron-redteam-XXXXXX";
    path_ = mkdtemp(pattern);
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << contents;
    chmod(file.c_str(), 0644);
    return file;
  }

 private:
  std::string path_;
};

class RedTeamTest : public ::testing::Test {
 protected:
  // Whatever the attack did, the runtime must still run a benign worker end to end.
  void TearDown() override {
    auto process = MustStart(ConfigFor(Attack{}));
    ASSERT_NE(process, nullptr);
    ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kComputeGradients, 1, 4,
                                           kParameterCount), In(5000)).ok());
    WorkerFrameExpectation expect;
    expect.type = WorkerFrameType::kGradientsReady;
    expect.sequence = 1;
    expect.count = kParameterCount;
    expect.sample_count = 4;
    auto frame = process->ReceiveFrame(expect, In(10000));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_EQ(Shutdown(*process).category, ExitCategory::kExitedCleanly);
  }
};

TEST_F(RedTeamTest, BenignWorkerUsesEveryChannelAndNothingElse) {
  auto process = MustStart(ConfigFor(Attack{}));
  ASSERT_NE(process, nullptr);
  EXPECT_GE(process->landlock_abi(), 1);
  std::span<float> parameters = process->parameters();
  ASSERT_EQ(parameters.size(), kParameterCount);
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i] = 0.25f * static_cast<float>(i);
  ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kComputeGradients, 1, 32,
                                         kParameterCount), In(5000)).ok());
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kGradientsReady;
  expect.sequence = 1;
  expect.count = kParameterCount;
  expect.sample_count = 32;
  auto frame = process->ReceiveFrame(expect, In(10000));
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  auto gradients = process->ReadGradients(kParameterCount, 1e6f);
  ASSERT_TRUE(gradients.ok()) << gradients.status().ToString();
  for (size_t i = 0; i < kParameterCount; ++i) {
    const float expected = 2.0f * (0.25f * static_cast<float>(i)) +
                           Dataset()[i % Dataset().size()] / 255.0f;
    ASSERT_EQ((*gradients)[i], expected) << i;
  }
  ExitInfo exit = Shutdown(*process);
  EXPECT_EQ(exit.category, ExitCategory::kExitedCleanly) << exit.ToString();
}

TEST_F(RedTeamTest, OnlyTheChannelsAreOpenAndStdioIsDevNull) {
  Reported r = RunReporting({"probe-fds"});
  ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString();
  EXPECT_EQ(r.seen->outcome, kBlocked) << "unexpected descriptors (100+n = stdio n not /dev/null): "
                                       << testing::PrintToString(r.seen->leaked);
}

TEST_F(RedTeamTest, HostFilesAreOutOfReach) {
  TempDir dir;
  const std::string state_file = dir.Write("catalog.db", "STATE-DIR-SECRET");
  const std::string dataset_file = dir.Write("dataset.bin", "PLAINTEXT-DATASET");
  for (const std::string& path : {std::string("/etc/passwd"), std::string("/proc/self/status"),
                                  std::string("/proc/1/environ"), std::string("/dev/null"),
                                  state_file, dataset_file, std::string(CHIRON_REDTEAM_WORKER)}) {
    SCOPED_TRACE(path);
    Reported r = RunReporting({"read-file", path});
    ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString();
    EXPECT_EQ(r.seen->outcome, kBlocked) << "leaked: " << r.seen->leaked;
    EXPECT_TRUE(r.seen->error == ENOENT || r.seen->error == EACCES) << r.seen->error;
    EXPECT_EQ(r.exit.category, ExitCategory::kExitedCleanly) << r.exit.ToString();
  }
  // Control: without the worker's lockdown the very same code reads them, so the checks above
  // can fail.
  for (const std::string& path : {std::string("/etc/passwd"), state_file, dataset_file}) {
    SCOPED_TRACE(path);
    Reported r = RunReporting({"read-file", path, /*lockdown=*/false});
    ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString();
    EXPECT_EQ(r.seen->outcome, kSucceeded);
    EXPECT_EQ(r.seen->leaked.substr(0, 4), ReadText(path).substr(0, 4));
  }
}

TEST_F(RedTeamTest, TheRootIsEmptyAndUnlistable) {
  for (const char* path : {"/", "/proc", "/tmp", "/dev"}) {
    SCOPED_TRACE(path);
    Reported r = RunReporting({"list-directory", path});
    ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString() << " " << r.exit.ToString();
    EXPECT_EQ(r.seen->outcome, kBlocked);
    // "/" exists (it is the empty tmpfs): EACCES there proves Landlock, not just emptiness.
    if (std::string(path) == "/") {
      EXPECT_EQ(r.seen->error, EACCES);
    }
  }
  // The one file Landlock allows: the recipe, readable (dlopen needs it) but nothing more.
  Reported recipe = RunReporting({"read-file", "/recipe.so"});
  ASSERT_TRUE(recipe.seen.ok()) << recipe.seen.status().ToString();
  EXPECT_EQ(recipe.seen->outcome, kSucceeded);
  EXPECT_EQ(recipe.seen->leaked.substr(0, 4), "\x7f" "ELF");
}

TEST_F(RedTeamTest, CreatingFilesKillsTheWorker) {
  TempDir dir;
  for (const Attack& attack : {Attack{"create-file", "/evil"}, Attack{"create-file",
                               dir.path() + "/evil"}, Attack{"mkdir", "/evil"}}) {
    SCOPED_TRACE(attack.name + " " + attack.arg);
    ExitInfo exit = RunFatal(attack);
    EXPECT_EQ(exit.category, ExitCategory::kInvalidSyscall) << exit.ToString();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/evil"));
}

// A listener the attacks try to reach; reports whether anyone connected.
class TcpListener {
 public:
  TcpListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    socklen_t size = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
  }
  ~TcpListener() { close(fd_); }
  int port() const { return port_; }
  bool SomeoneConnected() const {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 200) > 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(RedTeamTest, NoSocketOfAnyFamily) {
  TcpListener tcp;
  TempDir dir;
  const std::string unix_path = dir.path() + "/listener.sock";
  int unix_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, unix_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(unix_listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(unix_listener, 8), 0);
  chmod(unix_path.c_str(), 0777);

  for (const Attack& attack : {Attack{"connect-inet", std::to_string(tcp.port())},
                               Attack{"connect-unix", unix_path}, Attack{"netlink"}}) {
    SCOPED_TRACE(attack.name);
    ExitInfo exit = RunFatal(attack);
    EXPECT_EQ(exit.category, ExitCategory::kInvalidSyscall) << exit.ToString();
  }
  // Control: with sockets allowed (no lockdown), the network namespace alone still has no route
  // to the host's loopback.
  Reported control = RunReporting({"connect-inet", std::to_string(tcp.port()), false});
  ASSERT_TRUE(control.seen.ok()) << control.seen.status().ToString();
  EXPECT_EQ(control.seen->outcome, kBlocked);
  EXPECT_FALSE(tcp.SomeoneConnected());
  pollfd p{unix_listener, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 100), 0) << "someone reached the unix listener";
  close(unix_listener);
}

TEST_F(RedTeamTest, NoProcessesNamespacesOrOtherSyscallDoors) {
  const std::string self = std::to_string(getpid());
  for (const Attack& attack :
       {Attack{"fork"}, Attack{"exec"}, Attack{"ptrace", self}, Attack{"kill", self},
        Attack{"kill", "-1"}, Attack{"unshare"}, Attack{"mount"}, Attack{"chroot"},
        Attack{"io-uring"}, Attack{"memfd"}, Attack{"int80"}, Attack{"x32"},
        Attack{"send-fd"}, Attack{"truncate-arena"}}) {
    SCOPED_TRACE(attack.name + " " + attack.arg);
    ExitInfo exit = RunFatal(attack);
    EXPECT_EQ(exit.category, ExitCategory::kInvalidSyscall) << exit.ToString();
  }
  // We are alive (kill) and nobody traces us (ptrace).
  EXPECT_NE(ReadText("/proc/self/status").find("TracerPid:\t0\n"), std::string::npos);
}

TEST_F(RedTeamTest, WritesToStdioReachNothing) {
  const std::string marker = "REDTEAM-STDIO-MARKER-7f3a";
  TempDir dir;
  const std::string capture = dir.path() + "/captured";
  int file = open(capture.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  dup2(file, 1);
  dup2(file, 2);
  Reported r = RunReporting({"write-stdio", marker});
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  close(file);
  ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString();
  EXPECT_EQ(r.seen->outcome, kSucceeded);  // the writes "worked": into /dev/null
  EXPECT_EQ(ReadText(capture).find(marker), std::string::npos);
}

TEST_F(RedTeamTest, ParameterArenaAndDatasetCannotBeWritten) {
  for (bool lockdown : {true, false}) {
    for (const char* name : {"map-parameters-writable", "mprotect-parameters",
                             "write-parameter-fd", "map-dataset-writable"}) {
      SCOPED_TRACE(std::string(name) + (lockdown ? "" : " (no lockdown)"));
      auto process = MustStart(ConfigFor({name, "", lockdown}));
      ASSERT_NE(process, nullptr);
      process->parameters()[0] = 1.0f;
      Result<Seen> seen = AskForReport(*process);
      ASSERT_TRUE(seen.ok()) << seen.status().ToString();
      EXPECT_EQ(seen->outcome, kBlocked);
      EXPECT_TRUE(seen->error == EACCES || seen->error == EPERM || seen->error == EBADF)
          << seen->error;
      EXPECT_EQ(process->parameters()[0], 1.0f);
      EXPECT_EQ(Shutdown(*process).category, ExitCategory::kExitedCleanly);
    }
  }
  // Truncating an arena is stopped by its seals even where seccomp would allow ftruncate, and
  // the runtime's mapping stays readable (no SIGBUS).
  auto process = MustStart(ConfigFor({"truncate-arena", "", false}));
  ASSERT_NE(process, nullptr);
  Result<Seen> seen = AskForReport(*process);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->outcome, kBlocked);
  EXPECT_EQ(seen->error, EPERM);
  EXPECT_TRUE(process->ReadGradients(kParameterCount, 1e6f).ok());
  EXPECT_EQ(Shutdown(*process).category, ExitCategory::kExitedCleanly);
}

TEST_F(RedTeamTest, StaticInitialisersRunInsideTheCage) {
  Attack read_passwd{"init-report", "", true,
                     {"REDTEAM_INIT_ATTACK=read-file", "REDTEAM_INIT_ARG=/etc/passwd"}};
  Reported r = RunReporting(read_passwd);
  ASSERT_TRUE(r.seen.ok()) << r.seen.status().ToString();
  EXPECT_EQ(r.seen->outcome, kBlocked) << r.seen->leaked;
  // Control: the initialiser really runs and reports (it reads the file without the lockdown).
  read_passwd.lockdown = false;
  Reported control = RunReporting(read_passwd);
  ASSERT_TRUE(control.seen.ok()) << control.seen.status().ToString();
  EXPECT_EQ(control.seen->outcome, kSucceeded);
  EXPECT_EQ(control.seen->leaked.substr(0, 5), "root:");
  // An initialiser that opens a socket dies inside dlopen, after the hello.
  TcpListener tcp;
  ExitInfo exit = RunFatal({"none", "", true,
                            {"REDTEAM_INIT_ATTACK=connect-inet",
                             "REDTEAM_INIT_ARG=" + std::to_string(tcp.port())}});
  EXPECT_EQ(exit.category, ExitCategory::kInvalidSyscall) << exit.ToString();
  EXPECT_FALSE(tcp.SomeoneConnected());
}

struct FrameAttack {
  const char* name;
  WorkerRefusal reason;  // the fixed reason the runtime gives (never the value it saw)
};

TEST_F(RedTeamTest, MalformedFramesAreRejected) {
  for (const FrameAttack& attack :
       {FrameAttack{"oversize-frame", WorkerRefusal::kFrameSize},
        FrameAttack{"short-frame", WorkerRefusal::kFrameSize},
        FrameAttack{"bad-magic", WorkerRefusal::kFrameMagic},
        FrameAttack{"wrong-sequence", WorkerRefusal::kSequence},
        FrameAttack{"nonzero-padding", WorkerRefusal::kUnusedField},
        FrameAttack{"nan-loss", WorkerRefusal::kLoss}}) {
    SCOPED_TRACE(attack.name);
    auto process = MustStart(ConfigFor({attack.name}));
    ASSERT_NE(process, nullptr);
    ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kComputeGradients, 1, 8,
                                           kParameterCount), In(5000)).ok());
    WorkerFrameExpectation expect;
    expect.type = WorkerFrameType::kGradientsReady;
    expect.sequence = 1;
    expect.count = kParameterCount;
    expect.sample_count = 8;
    auto frame = process->ReceiveFrame(expect, In(10000));
    ASSERT_FALSE(frame.ok());
    EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(frame.status().message(), WorkerRefusalMessage(attack.reason));
    process->Kill();
    EXPECT_EQ(WaitForEnd(*process).category, ExitCategory::kKilledByRuntime);
  }
  // Descriptor passing (only possible without the lockdown: sendmsg is not allowed) is refused.
  auto process = MustStart(ConfigFor({"send-fd", "", false}));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kComputeGradients, 1, 8,
                                         kParameterCount), In(5000)).ok());
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kGradientsReady;
  expect.sequence = 1;
  auto frame = process->ReceiveFrame(expect, In(10000));
  EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(frame.status().message(), WorkerRefusalMessage(WorkerRefusal::kAncillaryData));
}

TEST_F(RedTeamTest, PoisonedGradientsAreRejected) {
  for (const FrameAttack& attack :
       {FrameAttack{"nan-gradients", WorkerRefusal::kNotFinite},
        FrameAttack{"inf-gradients", WorkerRefusal::kNotFinite},
        FrameAttack{"huge-gradients", WorkerRefusal::kOutOfRange}}) {
    SCOPED_TRACE(attack.name);
    auto process = MustStart(ConfigFor({attack.name}));
    ASSERT_NE(process, nullptr);
    ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kComputeGradients, 1, 8,
                                           kParameterCount), In(5000)).ok());
    WorkerFrameExpectation expect;
    expect.type = WorkerFrameType::kGradientsReady;
    expect.sequence = 1;
    expect.count = kParameterCount;
    expect.sample_count = 8;
    auto frame = process->ReceiveFrame(expect, In(10000));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    auto gradients = process->ReadGradients(kParameterCount, 1e6f);
    ASSERT_FALSE(gradients.ok());
    EXPECT_EQ(gradients.status().message(), WorkerRefusalMessage(attack.reason));
    EXPECT_EQ(Shutdown(*process).category, ExitCategory::kExitedCleanly);
  }
}

TEST_F(RedTeamTest, MemoryExhaustionIsContained) {
  SandboxConfig config = ConfigFor({"exhaust-memory"});
  config.limits.address_space_size = 256ull << 20;
  auto process = MustStart(config);
  ASSERT_NE(process, nullptr);
  EXPECT_FALSE(AskForReport(*process).ok());
  ExitInfo exit = WaitForEnd(*process, 30000);
  EXPECT_EQ(exit.category, ExitCategory::kOutOfMemory) << exit.ToString();
  EXPECT_LT(exit.max_resident_size, 256ull << 20);
}

TEST_F(RedTeamTest, SpinningHitsTheCpuLimit) {
  SandboxConfig config = ConfigFor({"spin"});
  config.limits.cpu_seconds = 1;
  auto process = MustStart(config);
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kPredict, 1, 1, kOutputCount),
                                 In(5000)).ok());
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kOutputReady;
  expect.sequence = 1;
  expect.count = kOutputCount;
  auto frame = process->ReceiveFrame(expect, In(30000));
  EXPECT_EQ(frame.status().code(), StatusCode::kUnavailable) << frame.status().ToString();
  ExitInfo exit = WaitForEnd(*process, 30000);
  EXPECT_EQ(exit.category, ExitCategory::kCpuTimeLimit) << exit.ToString();
  EXPECT_GE(exit.cpu_seconds, 0.5);  // see the sampling note in SandboxedProcess::Wait
}

TEST_F(RedTeamTest, HangingWorkerIsKilledAtTheDeadline) {
  auto process = MustStart(ConfigFor({"sleep"}));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(process->SendFrame(Request(WorkerFrameType::kPredict, 1, 1, kOutputCount),
                                 In(5000)).ok());
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kOutputReady;
  expect.sequence = 1;
  expect.count = kOutputCount;
  auto frame = process->ReceiveFrame(expect, In(300));
  EXPECT_EQ(frame.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(process->Wait(In(50)).status().code(), StatusCode::kDeadlineExceeded);
  process->Kill();
  EXPECT_EQ(WaitForEnd(*process).category, ExitCategory::kKilledByRuntime);
}

TEST_F(RedTeamTest, ThreadsStillWorkAndAbortIsACrash) {
  Reported threads = RunReporting({"thread"});
  ASSERT_TRUE(threads.seen.ok()) << threads.seen.status().ToString();
  EXPECT_EQ(threads.seen->outcome, kSucceeded);
  EXPECT_EQ(threads.exit.category, ExitCategory::kExitedCleanly);
  // A thread bomb stops at RLIMIT_NPROC (max_threads 16 here, the main thread included).
  Reported bomb = RunReporting({"thread-bomb"});
  ASSERT_TRUE(bomb.seen.ok()) << bomb.seen.status().ToString();
  EXPECT_EQ(bomb.seen->outcome, kBlocked);
  EXPECT_EQ(bomb.seen->error, EAGAIN);
  ASSERT_EQ(bomb.seen->leaked.size(), 1u);
  EXPECT_LE(static_cast<uint8_t>(bomb.seen->leaked[0]), 16);
  EXPECT_EQ(bomb.exit.category, ExitCategory::kExitedCleanly);
  ExitInfo exit = RunFatal({"abort"});
  EXPECT_EQ(exit.category, ExitCategory::kCrashed) << exit.ToString();
}

TEST_F(RedTeamTest, LaunchFailuresAreCleanErrors) {
  SandboxConfig config = ConfigFor(Attack{});
  config.worker_path = "/nonexistent/chiron-worker";
  EXPECT_EQ(SandboxLauncher::Start(config).status().code(), StatusCode::kInvalidArgument);
  config = ConfigFor(Attack{});
  config.arguments = {"--unknown-flag"};  // the worker exits before its hello
  auto result = SandboxLauncher::Start(config);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  // How it ended, as a category: never the exit code (72), which code in the worker chooses.
  EXPECT_NE(result.status().message().find("(worker failed)"), std::string::npos)
      << result.status().message();
  EXPECT_EQ(result.status().message().find("72"), std::string::npos) << result.status().message();
  // A worker that is already multi-threaded must refuse to lock down (Landlock would confine one
  // thread only) and never load the recipe.
  config = ConfigFor(Attack{});
  config.arguments.push_back("--thread-before-lockdown");
  result = SandboxLauncher::Start(config);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("(worker failed)"), std::string::npos)
      << result.status().message();
  EXPECT_EQ(result.status().message().find("70"), std::string::npos) << result.status().message();
  config = ConfigFor(Attack{});
  config.recipe = ByteSpan();
  EXPECT_EQ(SandboxLauncher::Start(config).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace chiron::sandbox
