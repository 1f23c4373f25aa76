#include "runtime/train/trained_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/train/prediction_session.h"
#include "runtime/train/worker_settings.h"

namespace chiron::train {
namespace {

TEST(TrainedModelTest, EncodingRoundTripsAndRejectsTampering) {
  TrainedModel model{{1.5f, -2.0f, 0.0f}, {7.0f}};
  Bytes bytes;
  EncodeTrainedModel(model, bytes);
  EXPECT_EQ(bytes.size(), 8u + 16 + 16);
  auto back = DecodeTrainedModel(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, model);
  Bytes truncated(bytes.begin(), bytes.end() - 1);
  EXPECT_FALSE(DecodeTrainedModel(truncated).ok());
  Bytes longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(DecodeTrainedModel(longer).ok());
  Bytes huge = bytes;
  huge[8 + 7] = 0x7f;  // parameter count ~2^62
  EXPECT_FALSE(DecodeTrainedModel(huge).ok());
  model.parameters[1] = std::numeric_limits<float>::quiet_NaN();
  Bytes nan;
  EncodeTrainedModel(model, nan);
  EXPECT_FALSE(DecodeTrainedModel(nan).ok());
}

TEST(OutputPolicyTest, SoftmaxTopKAndRounding) {
  const float logits[4] = {0.0f, 2.0f, 1.0f, 2.0f};
  auto all = ApplyOutputPolicy(logits, OutputPolicy{0, -1});
  ASSERT_EQ(all.size(), 4u);
  double sum = 0;
  for (const ClassScore& s : all) sum += s.probability;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_EQ(all[0].class_index, 1u);  // ties keep the lower index first
  EXPECT_EQ(all[1].class_index, 3u);
  EXPECT_EQ(all[2].class_index, 2u);
  auto top2 = ApplyOutputPolicy(logits, OutputPolicy{2, 2});
  ASSERT_EQ(top2.size(), 2u);
  EXPECT_EQ(top2[0].probability, std::round(all[0].probability * 100) / 100);
}

TEST(OutputPolicyTest, LabelOnlyReturnsOneClassAndNoScore) {
  const float logits[4] = {0.5f, 3.0f, -1.0f, 3.0f};
  OutputPolicy policy{4, -1, /*label_only=*/true};
  auto label = ApplyOutputPolicy(logits, policy);
  ASSERT_EQ(label.size(), 1u);
  EXPECT_EQ(label[0].class_index, 1u);  // ties: the lower index
  EXPECT_EQ(label[0].probability, 0.0);
}

TEST(OutputPolicyTest, EffectivePolicyOnlyNarrows) {
  chiron::OutputPolicy provider;  // scores, every class, 4 decimals
  OutputPolicy p = EffectiveOutputPolicy(provider, OutputLimits{}, 0, 10);
  EXPECT_FALSE(p.label_only);
  EXPECT_EQ(p.top_k, kDefaultTopK);
  EXPECT_EQ(p.decimals, 4);
  EXPECT_EQ(EffectiveOutputPolicy(provider, OutputLimits{}, 50, 10).top_k, 10u);

  provider.max_top_k = 3;
  provider.decimals = 2;
  // The request cannot widen the provider's cap; the owner cannot widen the provider's decimals.
  p = EffectiveOutputPolicy(provider, OutputLimits{false, 0, 6}, 9, 10);
  EXPECT_EQ(p.top_k, 3u);
  EXPECT_EQ(p.decimals, 2);
  // The owner narrows further.
  p = EffectiveOutputPolicy(provider, OutputLimits{false, 2, 1}, 9, 10);
  EXPECT_EQ(p.top_k, 2u);
  EXPECT_EQ(p.decimals, 1);
  EXPECT_TRUE(EffectiveOutputPolicy(provider, OutputLimits{true, 0, -1}, 9, 10).label_only);

  // A label-only provider stays label only whatever the owner or the request ask.
  chiron::OutputPolicy label_only{.kind = chiron::OutputKind::kLabelOnly};
  p = EffectiveOutputPolicy(label_only, OutputLimits{false, 10, 6}, 10, 10);
  EXPECT_TRUE(p.label_only);
  EXPECT_EQ(p.top_k, 1u);

  // Hostile declarations are clamped, never trusted.
  chiron::OutputPolicy hostile{.kind = chiron::OutputKind::kScores, .max_top_k = 0,
                               .decimals = 1000};
  EXPECT_EQ(EffectiveOutputPolicy(hostile, OutputLimits{}, 0, 10).decimals,
            static_cast<int>(chiron::kMaxOutputDecimals));
  chiron::OutputPolicy unknown_kind{.kind = static_cast<chiron::OutputKind>(9)};
  EXPECT_TRUE(EffectiveOutputPolicy(unknown_kind, OutputLimits{}, 0, 10).label_only);
}

TEST(SanitizeTrainingConfigTest, ClampsAndRefuses) {
  TrainingConfig declared;
  declared.epochs = 1u << 30;
  declared.batch_size = 0;
  declared.optimizer.learning_rate = 1e9;
  auto config = SanitizeTrainingConfig(declared);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->epochs, kMaxEpochs);
  EXPECT_EQ(config->batch_size, 1u);
  EXPECT_EQ(config->optimizer.learning_rate, kMaxLearningRate);
  declared = TrainingConfig{};
  declared.optimizer.learning_rate = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(SanitizeTrainingConfig(declared).ok());
  declared = TrainingConfig{};
  declared.optimizer.momentum = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(SanitizeTrainingConfig(declared).ok());
  declared = TrainingConfig{};
  declared.optimizer.learning_rate = -1;
  EXPECT_FALSE(SanitizeTrainingConfig(declared).ok());
  declared = TrainingConfig{};
  declared.optimizer.kind = static_cast<OptimizerKind>(42);
  EXPECT_FALSE(SanitizeTrainingConfig(declared).ok());
}

}  // namespace
}  // namespace chiron::train
