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

// Nodes of a data-parallel job score their validation splits apart and merge the counts: the
// merged report equals the report of one accumulator that saw every example.
TEST(MetricsTest, MergedAccumulatorsReportAsOne) {
  const std::vector<float> logits_a = {2, 0, 0, 0, 3, 1};
  const std::vector<int64_t> labels_a = {0, 1};
  const std::vector<float> logits_b = {0, 0, 4, 1, 1, 0};
  const std::vector<int64_t> labels_b = {1, 2};
  auto whole = MetricsAccumulator::Create(3);
  auto a = MetricsAccumulator::Create(3);
  auto b = MetricsAccumulator::Create(3);
  ASSERT_TRUE(whole.ok() && a.ok() && b.ok());
  ASSERT_TRUE(whole->Add(logits_a, labels_a).ok());
  ASSERT_TRUE(whole->Add(logits_b, labels_b).ok());
  ASSERT_TRUE(a->Add(logits_a, labels_a).ok());
  ASSERT_TRUE(b->Add(logits_b, labels_b).ok());
  auto merged = MetricsAccumulator::Create(3);
  ASSERT_TRUE(merged->Merge(a->Serialize()).ok());
  ASSERT_TRUE(merged->Merge(b->Serialize()).ok());
  const ClassificationReport expected = whole->Report();
  const ClassificationReport got = merged->Report();
  EXPECT_EQ(got.example_count, 4u);
  EXPECT_EQ(got.confusion, expected.confusion);
  EXPECT_DOUBLE_EQ(got.accuracy, expected.accuracy);
  EXPECT_NEAR(got.mean_loss, expected.mean_loss, 1e-12);
}

TEST(MetricsTest, MergeRefusesForeignOrBrokenCountsAndAddsNothing) {
  auto a = MetricsAccumulator::Create(2);
  ASSERT_TRUE(a->Add(std::vector<float>{1, 0}, std::vector<int64_t>{0}).ok());
  Bytes good = a->Serialize();
  auto three = MetricsAccumulator::Create(3);
  EXPECT_FALSE(three->Merge(good).ok()) << "another class count";
  auto target = MetricsAccumulator::Create(2);
  Bytes truncated(good.begin(), good.end() - 1);
  EXPECT_FALSE(target->Merge(truncated).ok());
  Bytes lying = good;
  lying[8] = 7;  // example count 7, confusion matrix adds up to 1
  EXPECT_FALSE(target->Merge(lying).ok());
  Bytes nan_loss = good;
  for (int i = 16; i < 24; ++i) nan_loss[i] = 0xff;
  EXPECT_FALSE(target->Merge(nan_loss).ok());
  EXPECT_EQ(target->Report().example_count, 0u);
}

}  // namespace
}  // namespace chiron::train
