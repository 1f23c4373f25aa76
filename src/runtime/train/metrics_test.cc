#include "runtime/train/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace chiron::train {
namespace {

TEST(MetricsTest, AccuracyConfusionAndLoss) {
  auto m = MetricsAccumulator::Create(3);
  ASSERT_TRUE(m.ok());
  std::vector<float> logits = {
      2, 0, 0,  // label 0, predicted 0
      0, 3, 1,  // label 1, predicted 1
      0, 0, 4,  // label 1, predicted 2
      1, 1, 0,  // label 2, tie 0/1 -> predicted 0 (lowest index, as torch.argmax)
  };
  std::vector<int64_t> labels = {0, 1, 1, 2};
  ASSERT_TRUE(m->Add(logits, labels).ok());
  ClassificationReport r = m->Report();
  EXPECT_EQ(r.example_count, 4u);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
  EXPECT_EQ(r.per_class_count, (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(r.per_class_accuracy, (std::vector<double>{1.0, 0.5, 0.0}));
  EXPECT_EQ(r.confusion, (std::vector<uint64_t>{1, 0, 0,  //
                                                0, 1, 1,  //
                                                1, 0, 0}));
  auto ce = [](std::vector<double> row, int label) {
    double sum = 0;
    for (double v : row) sum += std::exp(v);
    return std::log(sum) - row[label];
  };
  double expected = (ce({2, 0, 0}, 0) + ce({0, 3, 1}, 1) + ce({0, 0, 4}, 1) + ce({1, 1, 0}, 2)) / 4;
  EXPECT_NEAR(r.mean_loss, expected, 1e-12);
}

TEST(MetricsTest, LossIsStableForLargeLogits) {
  auto m = MetricsAccumulator::Create(2);
  ASSERT_TRUE(m.ok());
  std::vector<float> logits = {1000, 0};
  std::vector<int64_t> labels = {1};
  ASSERT_TRUE(m->Add(logits, labels).ok());
  EXPECT_NEAR(m->Report().mean_loss, 1000, 1e-9);
}

TEST(MetricsTest, RefusesBadInputWithoutCounting) {
  auto m = MetricsAccumulator::Create(2);
  ASSERT_TRUE(m.ok());
  std::vector<int64_t> labels = {0, 1};
  EXPECT_FALSE(m->Add(std::vector<float>{1, 2, 3}, labels).ok());
  EXPECT_FALSE(m->Add(std::vector<float>{1, 2, 3, 4}, std::vector<int64_t>{0, 2}).ok());
  EXPECT_FALSE(m->Add(std::vector<float>{1, 2, 3, 4}, std::vector<int64_t>{-1, 0}).ok());
  EXPECT_FALSE(
      m->Add(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN(), 3, 4}, labels).ok());
  EXPECT_EQ(m->Report().example_count, 0u);
  EXPECT_FALSE(MetricsAccumulator::Create(0).ok());
}

}  // namespace
}  // namespace chiron::train
