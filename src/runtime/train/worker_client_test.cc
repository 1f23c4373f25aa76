// CheckRange: the runtime's one-pass check of every number a worker hands back (gradients,
// buffers, outputs), against a scalar reference on every position of odd-sized arrays (so the
// vector loop's tail is exercised too). A refusal names the reason (not finite, out of range),
// never the position of the bad value: the worker chooses where it puts a NaN, so an index in a
// message would be a channel for bits of the owner's data.
#include "runtime/train/worker_client.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace chiron::train {
namespace {

TEST(CheckRangeTest, AcceptsFiniteValuesWithinTheBound) {
  std::vector<float> values = {0.0f, -0.0f, 1e6f, -1e6f, 1e-45f, -3.5f};
  EXPECT_TRUE(CheckRange(values, 1e6f).ok());
  EXPECT_TRUE(CheckRange({}, 1e6f).ok());
}

TEST(CheckRangeTest, RejectsEveryBadValueAtEveryPositionWithoutNamingIt) {
  struct Bad {
    float value;
    WorkerRefusal reason;
  };
  const Bad bad_values[] = {{std::numeric_limits<float>::quiet_NaN(), WorkerRefusal::kNotFinite},
                            {-std::numeric_limits<float>::quiet_NaN(), WorkerRefusal::kNotFinite},
                            {std::numeric_limits<float>::infinity(), WorkerRefusal::kNotFinite},
                            {-std::numeric_limits<float>::infinity(), WorkerRefusal::kNotFinite},
                            {std::nextafter(1e6f, 2e6f), WorkerRefusal::kOutOfRange},
                            {-1e30f, WorkerRefusal::kOutOfRange},
                            {std::numeric_limits<float>::max(), WorkerRefusal::kOutOfRange}};
  for (size_t size : {1u, 15u, 16u, 17u, 67u, 1000u}) {
    for (const Bad& bad : bad_values) {
      for (size_t at = 0; at < size; ++at) {
        std::vector<float> values(size, 0.5f);
        values[at] = bad.value;
        WorkerCheck check = CheckRange(values, 1e6f);
        ASSERT_FALSE(check.ok()) << size << " " << bad.value << " " << at;
        EXPECT_EQ(check.refusal(), bad.reason) << size << " " << bad.value << " " << at;
        const Status status = check.status();
        ASSERT_EQ(status.code(), StatusCode::kInvalidArgument);
        // The reason is present; the index is absent (no digit at all in the text).
        EXPECT_EQ(status.message(), WorkerRefusalMessage(bad.reason));
        EXPECT_EQ(status.message().find(std::to_string(at)), std::string::npos)
            << status.message();
        EXPECT_EQ(status.message().find_first_of("0123456789"), std::string::npos)
            << status.message();
      }
    }
  }
}

// A NaN anywhere wins over a value out of range elsewhere: the reason does not depend on which
// comes first.
TEST(CheckRangeTest, NotFiniteWinsWhereverItIs) {
  std::vector<float> values(33, 0.5f);
  values[3] = 1e30f;
  values[30] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(CheckRange(values, 1e6f).refusal(), WorkerRefusal::kNotFinite);
}

TEST(CheckRangeTest, ANotANumberBoundFailsClosed) {
  std::vector<float> values = {1.0f};
  EXPECT_FALSE(CheckRange(values, std::numeric_limits<float>::quiet_NaN()).ok());
  EXPECT_FALSE(CheckRange({}, std::numeric_limits<float>::quiet_NaN()).ok());
}

// ---- The worker's environment (worker_settings.h) ----------------------------------------------

std::vector<std::string> EntriesNamed(const std::vector<std::string>& environment,
                                      const std::string& name) {
  std::vector<std::string> found;
  for (const std::string& e : environment) {
    if (e.starts_with(name + "=")) found.push_back(e);
  }
  return found;
}

TEST(WorkerEnvironmentTest, SpinPolicyChoosesGompSpinCount) {
  WorkerSettings settings;
  settings.spin = WorkerSpinPolicy::kSpin;
  EXPECT_EQ(EntriesNamed(WorkerEnvironment(settings), "GOMP_SPINCOUNT"),
            std::vector<std::string>{"GOMP_SPINCOUNT=300000"});
  settings.spin = WorkerSpinPolicy::kPassive;
  EXPECT_EQ(EntriesNamed(WorkerEnvironment(settings), "GOMP_SPINCOUNT"),
            std::vector<std::string>{"GOMP_SPINCOUNT=0"});
  // No wait policy of its own: GOMP_SPINCOUNT alone decides (libgomp lets it override the
  // policy's spin count).
  EXPECT_TRUE(EntriesNamed(WorkerEnvironment(settings), "OMP_WAIT_POLICY").empty());
  // kAuto picks one of the two, whatever the machine is doing.
  settings.spin = WorkerSpinPolicy::kAuto;
  const auto chosen = EntriesNamed(WorkerEnvironment(settings), "GOMP_SPINCOUNT");
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_TRUE(chosen[0] == "GOMP_SPINCOUNT=300000" || chosen[0] == "GOMP_SPINCOUNT=0") << chosen[0];
}

// getenv returns the first entry of a name: an extra setting appended after a fixed one of the
// same name would be silently ignored. It replaces it.
TEST(WorkerEnvironmentTest, ExtraEntriesReplaceFixedOnesOfTheSameName) {
  WorkerSettings settings;
  settings.spin = WorkerSpinPolicy::kPassive;
  settings.extra_environment = {"GOMP_SPINCOUNT=5", "LD_LIBRARY_PATH=/x", "DNNL_JIT_PROFILE=1"};
  const std::vector<std::string> environment = WorkerEnvironment(settings);
  EXPECT_EQ(EntriesNamed(environment, "GOMP_SPINCOUNT"),
            std::vector<std::string>{"GOMP_SPINCOUNT=5"});
  EXPECT_EQ(EntriesNamed(environment, "DNNL_JIT_PROFILE"),
            std::vector<std::string>{"DNNL_JIT_PROFILE=1"});
  EXPECT_EQ(EntriesNamed(environment, "LD_LIBRARY_PATH"),
            std::vector<std::string>{"LD_LIBRARY_PATH=/x"});
  EXPECT_EQ(EntriesNamed(environment, "GLIBC_TUNABLES").size(), 1u);
}

TEST(MachineHasIdleCpusTest, CountsRunnableTasksOtherThanTheReader) {
  const std::string idle = "0.10 0.20 0.30 1/400 999";     // only the reader runs
  const std::string one_hog = "1.00 1.00 1.00 2/400 999";  // the reader and one busy task
  const std::string two_hogs = "2.00 2.00 2.00 3/400 999";
  EXPECT_TRUE(MachineHasIdleCpus({idle, idle}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({one_hog, one_hog}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({two_hogs}, 2, 2));
  EXPECT_TRUE(MachineHasIdleCpus({one_hog}, 2, 1));
  EXPECT_TRUE(MachineHasIdleCpus({two_hogs}, 8, 2));
  // A brief task in one sample of ten does not make the machine busy; one in every sample does.
  std::vector<std::string> mostly_idle(9, idle);
  mostly_idle.push_back(one_hog);
  EXPECT_TRUE(MachineHasIdleCpus(mostly_idle, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus(std::vector<std::string>(10, one_hog), 2, 2));
}

TEST(MachineHasIdleCpusTest, UnreadableSamplesMeanBusy) {
  EXPECT_FALSE(MachineHasIdleCpus({}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({""}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({"0.1 0.2 0.3"}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({"0.1 0.2 0.3 x/400 9"}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({"0.1 0.2 0.3 0/400 9"}, 2, 2));
  EXPECT_FALSE(MachineHasIdleCpus({"0.10 0.20 0.30 1/400 999"}, 0, 2));
}

}  // namespace
}  // namespace chiron::train
