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

}  // namespace
}  // namespace chiron::train
