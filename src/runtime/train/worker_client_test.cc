// CheckRange: the runtime's one-pass check of every number a worker hands back (gradients,
// buffers, outputs), against a scalar reference on every position of odd-sized arrays (so the
// vector loop's tail is exercised too).
#include "runtime/train/worker_client.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace chiron::train {
namespace {

TEST(CheckRangeTest, AcceptsFiniteValuesWithinTheBound) {
  std::vector<float> values = {0.0f, -0.0f, 1e6f, -1e6f, 1e-45f, -3.5f};
  EXPECT_TRUE(CheckRange(values, 1e6f, "gradient").ok());
  EXPECT_TRUE(CheckRange({}, 1e6f, "gradient").ok());
}

TEST(CheckRangeTest, RejectsEveryBadValueAtEveryPosition) {
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(),
                              -std::numeric_limits<float>::quiet_NaN(),
                              std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(),
                              std::nextafter(1e6f, 2e6f),
                              -1e30f,
                              std::numeric_limits<float>::max()};
  for (size_t size : {1u, 15u, 16u, 17u, 67u}) {
    for (float bad : bad_values) {
      for (size_t at = 0; at < size; ++at) {
        std::vector<float> values(size, 0.5f);
        values[at] = bad;
        Status status = CheckRange(values, 1e6f, "gradient");
        ASSERT_EQ(status.code(), StatusCode::kInvalidArgument) << size << " " << bad << " " << at;
        EXPECT_NE(status.message().find("gradient " + std::to_string(at) + " "),
                  std::string::npos)
            << status.message();
      }
    }
  }
}

TEST(CheckRangeTest, ANotANumberBoundFailsClosed) {
  std::vector<float> values = {1.0f};
  EXPECT_FALSE(CheckRange(values, std::numeric_limits<float>::quiet_NaN(), "output").ok());
}

}  // namespace
}  // namespace chiron::train
