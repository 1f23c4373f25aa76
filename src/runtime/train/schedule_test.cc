#include "runtime/train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace chiron::train {
namespace {

TEST(ScheduleTest, ConstantWithWarmup) {
  ScheduleConfig c;
  c.warmup_steps = 4;
  auto s = LearningRateSchedule::Create(c, 0.1, 10, 100);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->LearningRate(0), 0.025);
  EXPECT_DOUBLE_EQ(s->LearningRate(3), 0.1);
  EXPECT_DOUBLE_EQ(s->LearningRate(50), 0.1);
}

TEST(ScheduleTest, StepDecaysPerEpochs) {
  ScheduleConfig c;
  c.kind = ScheduleKind::kStep;
  c.step_epochs = 2;
  c.gamma = 0.5;
  auto s = LearningRateSchedule::Create(c, 1.0, 10, 60);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->LearningRate(0), 1.0);
  EXPECT_DOUBLE_EQ(s->LearningRate(19), 1.0);
  EXPECT_DOUBLE_EQ(s->LearningRate(20), 0.5);
  EXPECT_DOUBLE_EQ(s->LearningRate(45), 0.25);
  EXPECT_DOUBLE_EQ(s->LearningRate(1000), 0.25);  // past the end: the final value
}

TEST(ScheduleTest, CosineMatchesClosedFormAfterWarmup) {
  ScheduleConfig c;
  c.kind = ScheduleKind::kCosine;
  c.warmup_steps = 10;
  c.min_learning_rate = 0.001;
  auto s = LearningRateSchedule::Create(c, 0.1, 50, 110);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->LearningRate(4), 0.05);
  EXPECT_DOUBLE_EQ(s->LearningRate(10), 0.1);
  EXPECT_NEAR(s->LearningRate(60), 0.001 + 0.099 * 0.5, 1e-15);
  EXPECT_NEAR(s->LearningRate(35), 0.001 + 0.099 * (1 + std::cos(std::numbers::pi / 4)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(s->LearningRate(110), 0.001);
  EXPECT_DOUBLE_EQ(s->LearningRate(5000), 0.001);
}

TEST(ScheduleTest, RefusesBadConfigs) {
  ScheduleConfig c;
  c.kind = ScheduleKind::kStep;
  c.gamma = 0;
  EXPECT_FALSE(LearningRateSchedule::Create(c, 0.1, 10, 100).ok());
  c.gamma = 0.5;
  c.step_epochs = 0;
  EXPECT_FALSE(LearningRateSchedule::Create(c, 0.1, 10, 100).ok());
  ScheduleConfig cosine;
  cosine.kind = ScheduleKind::kCosine;
  cosine.min_learning_rate = 1.0;
  EXPECT_FALSE(LearningRateSchedule::Create(cosine, 0.1, 10, 100).ok());
  ScheduleConfig warm;
  warm.warmup_steps = 100;
  EXPECT_FALSE(LearningRateSchedule::Create(warm, 0.1, 10, 100).ok());
  EXPECT_FALSE(LearningRateSchedule::Create(ScheduleConfig{}, 0.1, 0, 100).ok());
  EXPECT_FALSE(LearningRateSchedule::Create(ScheduleConfig{}, std::nan(""), 10, 100).ok());
}

}  // namespace
}  // namespace chiron::train
