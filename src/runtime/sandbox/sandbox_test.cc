// SandboxedProcess's limits and stop, with the red-team worker and recipe (tests/redteam): the
// resident-memory limit (max_resident_size), each worker's own peak, Kill() from another thread.
// Real processes, real kernel; torch-free, so it also runs in the ASan tree.
#include "runtime/sandbox/sandbox.h"

#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/redteam/redteam_abi.h"

namespace chiron::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kParameterCount = 256;
constexpr uint64_t kOutputCount = 128;
constexpr uint64_t kMiB = 1ull << 20;
static_assert(kOutputCount >= redteam::kReportFloats);

Deadline In(int milliseconds) { return Clock::now() + std::chrono::milliseconds(milliseconds); }

const Bytes& RecipeBytes() {
  static const Bytes* const kBytes = [] {
    std::ifstream in(CHIRON_REDTEAM_RECIPE, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return new Bytes(ToBytes(s.str()));
  }();
  return *kBytes;
}

SandboxConfig ConfigFor(const std::string& attack, const std::string& arg = "") {
  SandboxConfig config;
  config.worker_path = CHIRON_REDTEAM_WORKER;
  config.arguments = {"--attack=" + attack, "--arg=" + arg};
  config.input_size = 4096;
  config.recipe = RecipeBytes();
  config.parameter_count = kParameterCount;
  config.output_count = kOutputCount;
  config.limits.address_space_size = 4ull << 30;  // far above the resident limits below
  config.limits.cpu_seconds = 30;
  config.limits.max_threads = 16;
  return config;
}

std::unique_ptr<SandboxedProcess> MustStart(const SandboxConfig& config) {
  auto process = SandboxLauncher::Start(config);
  if (!process.ok()) {
    ADD_FAILURE() << "Start failed: " << process.status().ToString();
    return nullptr;
  }
  return std::move(process).value();
}

// Sends the request that runs the attack; the reply (if any) is the attack's report.
Result<WorkerFrame> RunAttack(SandboxedProcess& process, int timeout_milliseconds) {
  WorkerFrame request;
  request.type = WorkerFrameType::kPredict;
  request.sequence = 1;
  request.fields = {1, kOutputCount, 0, 0, 0, 0};
  CHIRON_RETURN_IF_ERROR(process.SendFrame(request, In(5000)));
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kOutputReady;
  expect.sequence = 1;
  expect.count = kOutputCount;
  return process.ReceiveFrame(expect, In(timeout_milliseconds));
}

ExitInfo MustEnd(SandboxedProcess& process) {
  Result<ExitInfo> exit = process.Wait(In(20000));
  if (!exit.ok()) {
    ADD_FAILURE() << "worker still running: " << exit.status().ToString();
    process.Kill();
    return *process.Wait(In(10000));
  }
  return *exit;
}

TEST(SandboxLimitsTest, ResidentMemoryPastTheLimitKillsTheWorkerAsOutOfMemory) {
  constexpr uint64_t kLimit = 96 * kMiB;
  SandboxConfig config = ConfigFor("grow-resident", "1024");  // 1 GiB, in 4 MiB blocks
  config.limits.max_resident_size = kLimit;
  auto process = MustStart(config);
  ASSERT_NE(process, nullptr);
  const uint64_t peak_at_start = process->peak_resident_size();
  EXPECT_GT(peak_at_start, 0u);  // VmHWM of the live worker
  EXPECT_LT(peak_at_start, kLimit);
  Result<WorkerFrame> reply = RunAttack(*process, 30000);
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable) << reply.status().ToString();
  ExitInfo exit = MustEnd(*process);
  EXPECT_EQ(exit.category, ExitCategory::kOutOfMemory) << exit.ToString();
  EXPECT_EQ(exit.signal, SIGKILL);
  // Its own peak: past the limit, short of the 1 GiB it wanted (the overshoot is what it can
  // fault in during one poll interval; generous bound for a loaded machine).
  const uint64_t peak = process->peak_resident_size();
  EXPECT_GT(peak, kLimit);
  EXPECT_LT(peak, 768 * kMiB);
  EXPECT_GE(peak, exit.max_resident_size);
  std::printf("resident limit %llu MiB, peak at the kill %llu MiB\n",
              static_cast<unsigned long long>(kLimit / kMiB),
              static_cast<unsigned long long>(peak / kMiB));

  // The next worker's peak is its own, not the largest worker ever reaped.
  SandboxConfig small = ConfigFor("grow-resident", "24");
  small.limits.max_resident_size = kLimit;
  auto second = MustStart(small);
  ASSERT_NE(second, nullptr);
  Result<WorkerFrame> answered = RunAttack(*second, 30000);
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  const uint64_t live_peak = second->peak_resident_size();
  EXPECT_GE(live_peak, 24 * kMiB);
  EXPECT_LT(live_peak, kLimit);
  second->Kill();
  ExitInfo second_exit = MustEnd(*second);
  EXPECT_EQ(second_exit.category, ExitCategory::kKilledByRuntime) << second_exit.ToString();
  EXPECT_GE(second->peak_resident_size(), live_peak);
  EXPECT_LT(second->peak_resident_size(), kLimit);
  EXPECT_LT(second_exit.max_resident_size, kLimit);
}

TEST(SandboxLimitsTest, WithoutALimitTheSameWorkerRunsAndItsPeakIsStillReported) {
  auto process = MustStart(ConfigFor("grow-resident", "128"));
  ASSERT_NE(process, nullptr);
  Result<WorkerFrame> reply = RunAttack(*process, 30000);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_GE(process->peak_resident_size(), 128 * kMiB);
  process->Kill();
  ExitInfo exit = MustEnd(*process);
  EXPECT_EQ(exit.category, ExitCategory::kKilledByRuntime);
  EXPECT_GE(exit.max_resident_size, 128 * kMiB);
  // The largest reading: ru_maxrss, or an earlier VmHWM a little above it (the kernel's RSS
  // counters are summed per CPU, approximately).
  EXPECT_GE(process->peak_resident_size(), exit.max_resident_size);
  EXPECT_LT(process->peak_resident_size(), exit.max_resident_size + 8 * kMiB);
}

TEST(SandboxLimitsTest, ATinyResidentLimitIsRefused) {
  SandboxConfig config = ConfigFor("none");
  config.limits.max_resident_size = kMinResidentLimit - 1;
  EXPECT_EQ(SandboxLauncher::Start(config).status().code(), StatusCode::kInvalidArgument);
}

TEST(SandboxStopTest, KillFromAnotherThreadEndsABlockedReceiveAndWait) {
  auto process = MustStart(ConfigFor("sleep"));  // never answers
  ASSERT_NE(process, nullptr);
  std::thread killer([&process] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    process->Kill();
  });
  const auto start = Clock::now();
  Result<WorkerFrame> reply = RunAttack(*process, 60000);
  const auto blocked = Clock::now() - start;
  killer.join();
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable) << reply.status().ToString();
  EXPECT_LT(blocked, std::chrono::seconds(10));  // liveness only: it returns near 0.2 s

  // Wait blocked in this thread, Kill from another (and again: idempotent).
  auto second = MustStart(ConfigFor("sleep"));
  ASSERT_NE(second, nullptr);
  std::thread second_killer([&second] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    second->Kill();
    second->Kill();
  });
  Result<ExitInfo> exit = second->Wait(In(60000));
  second_killer.join();
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  EXPECT_EQ(exit->category, ExitCategory::kKilledByRuntime);
  second->Kill();  // after the reap: a no-op
}

}  // namespace
}  // namespace chiron::sandbox
