// Closed-form checks of the trusted optimizers (the bit-level comparison against torch::optim is
// src/worker/optimizer_reference_test.cc) and of their checkpoint format.
#include "runtime/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace chiron::train {
namespace {

OptimizerConfig Sgd(double lr, double momentum = 0, bool nesterov = false, double wd = 0,
                    double dampening = 0) {
  OptimizerConfig c;
  c.kind = OptimizerKind::kSgd;
  c.learning_rate = lr;
  c.momentum = momentum;
  c.nesterov = nesterov;
  c.weight_decay = wd;
  c.dampening = dampening;
  return c;
}

TEST(OptimizerTest, PlainSgdIsGradientDescent) {
  auto opt = Optimizer::Create(Sgd(0.5), 2);
  ASSERT_TRUE(opt.ok());
  std::vector<float> p = {1.0f, -2.0f};
  std::vector<float> g = {0.25f, 1.0f};
  ASSERT_TRUE((*opt)->Step(p, g, 0.5).ok());
  EXPECT_FLOAT_EQ(p[0], 0.875f);
  EXPECT_FLOAT_EQ(p[1], -2.5f);
  EXPECT_EQ((*opt)->step_count(), 1u);
}

// StepAndCopy (the training step's update straight into the worker's parameter arena) gives the
// same parameters as Step, bit for bit, and the copy equals them; sizes that are not block
// multiples exercise the last block.
TEST(OptimizerTest, StepAndCopyMatchesStepAndCopiesEveryParameter) {
  OptimizerConfig adam;
  adam.kind = OptimizerKind::kAdamW;
  adam.learning_rate = 1e-3;
  adam.weight_decay = 0.01;
  for (const OptimizerConfig& config : {Sgd(0.05, 0.9, true, 1e-4), adam}) {
    const size_t count = 5000;
    auto plain = Optimizer::Create(config, count);
    auto copying = Optimizer::Create(config, count);
    ASSERT_TRUE(plain.ok() && copying.ok());
    std::vector<float> p(count), q(count), copy(count, -7.0f), g(count);
    for (size_t i = 0; i < count; ++i) p[i] = q[i] = std::sin(static_cast<float>(i));
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < count; ++i) g[i] = std::cos(static_cast<float>(i * (step + 1)));
      ASSERT_TRUE((*plain)->Step(p, g, 0.05).ok());
      ASSERT_TRUE((*copying)->StepAndCopy(q, g, 0.05, copy).ok());
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(std::memcmp(&p[i], &q[i], sizeof(float)), 0) << i;
        ASSERT_EQ(std::memcmp(&q[i], &copy[i], sizeof(float)), 0) << i;
      }
    }
    std::vector<float> short_copy(count - 1);
    EXPECT_EQ((*copying)->StepAndCopy(q, g, 0.05, short_copy).code(),
              StatusCode::kInvalidArgument);
  }
}

TEST(OptimizerTest, MomentumWeightDecayAndNesterovFollowPyTorch) {
  // Hand-computed with PyTorch's formulas, two steps, momentum 0.9, wd 0.1, lr 0.1.
  for (bool nesterov : {false, true}) {
    auto opt = Optimizer::Create(Sgd(0.1, 0.9, nesterov, 0.1), 1);
    ASSERT_TRUE(opt.ok());
    std::vector<float> p = {1.0f};
    double pd = 1.0, buf = 0;
    for (int step = 0; step < 2; ++step) {
      std::vector<float> g = {0.5f};
      ASSERT_TRUE((*opt)->Step(p, g, 0.1).ok());
      double d = 0.5 + 0.1 * pd;
      buf = step == 0 ? d : buf * 0.9 + d;
      double update = nesterov ? d + 0.9 * buf : buf;
      pd -= 0.1 * update;
      EXPECT_NEAR(p[0], pd, 1e-6) << "nesterov=" << nesterov << " step " << step;
    }
  }
}

TEST(OptimizerTest, AdamFirstStepMovesByLearningRate) {
  // With bias correction, Adam's first step is -lr * sign(g) (up to epsilon).
  for (OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
    OptimizerConfig c;
    c.kind = kind;
    c.learning_rate = 0.01;
    auto opt = Optimizer::Create(c, 3);
    ASSERT_TRUE(opt.ok());
    std::vector<float> p = {1.0f, 1.0f, 1.0f};
    std::vector<float> g = {3.0f, -0.001f, 0.0f};
    ASSERT_TRUE((*opt)->Step(p, g, 0.01).ok());
    EXPECT_NEAR(p[0], 0.99f, 1e-6);
    EXPECT_NEAR(p[1], 1.01f, 1e-5);
    EXPECT_FLOAT_EQ(p[2], 1.0f);
  }
}

TEST(OptimizerTest, AdamWDecaysWeightsIndependentlyOfTheGradient) {
  OptimizerConfig c;
  c.kind = OptimizerKind::kAdamW;
  c.learning_rate = 0.1;
  c.weight_decay = 0.5;
  auto opt = Optimizer::Create(c, 1);
  ASSERT_TRUE(opt.ok());
  std::vector<float> p = {2.0f};
  std::vector<float> g = {0.0f};
  ASSERT_TRUE((*opt)->Step(p, g, 0.1).ok());
  EXPECT_FLOAT_EQ(p[0], 2.0f * (1 - 0.1f * 0.5f));
}

TEST(OptimizerTest, RefusesNonFiniteGradientsAndLeavesParametersUnchanged) {
  auto opt = Optimizer::Create(Sgd(0.1, 0.9), 4);
  ASSERT_TRUE(opt.ok());
  std::vector<float> p = {1, 2, 3, 4};
  for (float poison :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    std::vector<float> g = {0.1f, 0.1f, poison, 0.1f};
    Status s = (*opt)->Step(p, g, 0.1);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("NaN or infinite"), std::string::npos);
  }
  EXPECT_EQ(p, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ((*opt)->step_count(), 0u);
}

TEST(OptimizerTest, RefusesWrongSizesAndBadConfigs) {
  auto opt = Optimizer::Create(Sgd(0.1), 3);
  ASSERT_TRUE(opt.ok());
  std::vector<float> p(3), g(2);
  EXPECT_EQ((*opt)->Step(p, g, 0.1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*opt)->Step(p, std::vector<float>(3), std::nan("")).code(),
            StatusCode::kInvalidArgument);

  EXPECT_FALSE(Optimizer::Create(Sgd(-1), 3).ok());
  EXPECT_FALSE(Optimizer::Create(Sgd(std::nan("")), 3).ok());
  EXPECT_FALSE(Optimizer::Create(Sgd(0.1, 0.0, /*nesterov=*/true), 3).ok());
  EXPECT_FALSE(Optimizer::Create(Sgd(0.1, 0.9, true, 0, /*dampening=*/0.1), 3).ok());
  EXPECT_FALSE(Optimizer::Create(Sgd(0.1, 1.5), 3).ok());
  EXPECT_FALSE(Optimizer::Create(Sgd(0.1), 0).ok());
  OptimizerConfig adam;
  adam.kind = OptimizerKind::kAdam;
  adam.beta2 = 1.0;
  EXPECT_FALSE(Optimizer::Create(adam, 3).ok());
  adam.beta2 = 0.999;
  adam.epsilon = 0;
  EXPECT_FALSE(Optimizer::Create(adam, 3).ok());
  OptimizerConfig unknown;
  unknown.kind = static_cast<OptimizerKind>(9);
  EXPECT_NE(Optimizer::Create(unknown, 3).status().message().find("unknown kind"),
            std::string::npos);

  TrainingConfig training;
  EXPECT_TRUE(ValidateTrainingConfig(training).ok());
  training.batch_size = 0;
  EXPECT_FALSE(ValidateTrainingConfig(training).ok());
  training.batch_size = 64;
  training.epochs = 0;
  EXPECT_FALSE(ValidateTrainingConfig(training).ok());
}

// Runs `steps` updates with deterministic pseudo-random gradients.
void RunSteps(Optimizer& opt, std::vector<float>& p, int first, int steps) {
  for (int s = first; s < first + steps; ++s) {
    std::vector<float> g(p.size());
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(static_cast<float>(s * 31 + i));
    ASSERT_TRUE(opt.Step(p, g, 0.05).ok());
  }
}

TEST(OptimizerTest, CheckpointResumesExactly) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
    OptimizerConfig c = Sgd(0.05, 0.9, true, 0.01);
    c.kind = kind;
    auto straight = Optimizer::Create(c, 17);
    auto first = Optimizer::Create(c, 17);
    auto resumed = Optimizer::Create(c, 17);
    ASSERT_TRUE(straight.ok() && first.ok() && resumed.ok());
    std::vector<float> p1(17, 0.5f), p2(17, 0.5f);
    RunSteps(**straight, p1, 0, 6);
    RunSteps(**first, p2, 0, 3);
    Bytes state = (*first)->SaveState();
    ASSERT_TRUE((*resumed)->LoadState(state).ok());
    EXPECT_EQ((*resumed)->step_count(), 3u);
    RunSteps(**resumed, p2, 3, 3);
    EXPECT_EQ(p1, p2) << "kind " << static_cast<int>(kind);
  }
}

TEST(OptimizerTest, CheckpointRejectsTamperingAndMismatch) {
  OptimizerConfig c = Sgd(0.05, 0.9);
  auto opt = Optimizer::Create(c, 8);
  ASSERT_TRUE(opt.ok());
  std::vector<float> p(8, 1.0f);
  RunSteps(**opt, p, 0, 2);
  Bytes state = (*opt)->SaveState();
  Bytes before = (*opt)->SaveState();

  auto fresh = Optimizer::Create(c, 8);
  ASSERT_TRUE(fresh.ok());
  // Every truncation is refused.
  for (size_t n = 0; n < state.size(); ++n) {
    Status s = (*fresh)->LoadState(ByteSpan(state.data(), n));
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << "length " << n << ": " << s.ToString();
  }
  Bytes trailing = state;
  trailing.push_back(0);
  EXPECT_EQ((*fresh)->LoadState(trailing).code(), StatusCode::kDataLoss);
  Bytes magic = state;
  magic[0] ^= 1;
  EXPECT_EQ((*fresh)->LoadState(magic).code(), StatusCode::kDataLoss);
  Bytes version = state;
  version[8] = 2;
  EXPECT_EQ((*fresh)->LoadState(version).code(), StatusCode::kFailedPrecondition);

  auto other_size = Optimizer::Create(c, 9);
  EXPECT_EQ((*other_size)->LoadState(state).code(), StatusCode::kFailedPrecondition);
  auto other_config = Optimizer::Create(Sgd(0.05, 0.8), 8);
  EXPECT_EQ((*other_config)->LoadState(state).code(), StatusCode::kFailedPrecondition);
  // A failed load leaves the optimizer as it was.
  EXPECT_EQ((*fresh)->step_count(), 0u);
  EXPECT_EQ((*opt)->SaveState(), before);
}

}  // namespace
}  // namespace chiron::train
