// scripted_worker driven by the runtime's real TrainingSession and PredictionSession (sandbox,
// frames, arenas, optimizer): it learns, predicts, and each scripted failure ends with its
// FailureCategory. Torch-free: runs in the sanitizer tree too.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "runtime/train/prediction_session.h"
#include "runtime/train/training_session.h"
#include "shared/testing/fashion_mnist.h"
#include "tests/workers/scripted_recipe.h"
#include "tests/workers/scripted_script.h"

namespace chiron::train {
namespace {

using chiron::testing::ScriptedRecipe;

constexpr uint32_t kSide = 8;
constexpr uint32_t kClasses = 4;

// `count` samples of 8x8 u8: noise in 0..99, the quadrant named by the label brightened by 120.
// Byte 0 of every sample has bit 0 clear (the leak tests set it in one sample).
struct Records {
  dataset::DatasetSchema schema;
  Bytes bytes;
  TrainingData data() const { return {schema, bytes}; }
  uint8_t* sample(size_t i) { return bytes.data() + i * schema.record_size() + 1; }
};
Records Synthetic(size_t count, uint64_t seed) {
  Records r;
  r.schema.element_type = dataset::ElementType::kUint8;
  r.schema.shape = {1, kSide, kSide};
  r.schema.label_type = dataset::LabelType::kUint8;
  r.schema.class_names = {"top-left", "top-right", "bottom-left", "bottom-right"};
  r.schema.sample_count = count;
  std::mt19937_64 random(seed);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t label = static_cast<uint32_t>(random() % kClasses);
    r.bytes.push_back(static_cast<uint8_t>(label));
    for (uint32_t y = 0; y < kSide; ++y) {
      for (uint32_t x = 0; x < kSide; ++x) {
        const uint32_t quadrant = (y >= kSide / 2) * 2 + (x >= kSide / 2);
        r.bytes.push_back(static_cast<uint8_t>(random() % 100 + (quadrant == label ? 120 : 0)));
      }
    }
    r.bytes[i * r.schema.record_size() + 1] &= 0xfe;
  }
  return r;
}

WorkerSettings Settings() {
  WorkerSettings settings;
  settings.worker_path = CHIRON_SCRIPTED_WORKER;
  settings.threads = 1;
  settings.request_timeout = std::chrono::seconds(30);
  settings.limits.address_space_size = 1ull << 30;
  return settings;
}

TrainingOptions Options(const std::string& recipe, const Records& records) {
  auto description = DescribeRecipe(ToBytes(recipe), records.schema, Settings());
  EXPECT_TRUE(description.ok()) << description.status().ToString();
  TrainingOptions options;
  if (description.ok()) options.config = description->training;
  options.validation_fraction = 0.2;
  options.seed = 7;
  options.worker = Settings();
  return options;
}

TEST(ScriptedScriptTest, ParsesKeysAndRefusesUnknownOnes) {
  auto script = scripted::ParseScript(ScriptedRecipe(
      {"# a comment", "epochs 3", "batch_size 32", "learning_rate 0.05", "momentum 0",
       "budget_memory 67108864", "budget_seconds 5", "output top_k 2", "decimals 2",
       "sleep_per_step_ms 1", "allocate_mb 4 2", "fail_at_step 9 exit 3", "leak epochs",
       "leak_at_step 2", "secret_in_fields 0123456789abcdef reserved", "secret_at_step 4"}));
  ASSERT_TRUE(script.ok()) << script.status().ToString();
  EXPECT_EQ(script->training.epochs, 3u);
  EXPECT_EQ(script->training.batch_size, 32u);
  EXPECT_EQ(script->training.optimizer.learning_rate, 0.05);
  EXPECT_EQ(script->budget.max_memory_size, 64u << 20);
  EXPECT_EQ(script->output.max_top_k, 2u);
  EXPECT_EQ(script->allocate_at_step, 2u);
  EXPECT_EQ(script->fail_kind, scripted::FailKind::kExit);
  EXPECT_EQ(script->fail_code, 3);
  EXPECT_EQ(script->leak, scripted::LeakChannel::kEpochs);
  EXPECT_EQ(script->secret, 0x0123456789abcdefull);
  EXPECT_EQ(script->secret_place, scripted::SecretPlace::kReserved);
  for (const char* bad : {"colour blue", "epochs", "epochs x", "fail_at_step 1 explode",
                          "leak colour", "secret_in_fields 1 nowhere", "learning_rate nan",
                          "secret_in_fields 00112233445566778"}) {
    EXPECT_FALSE(scripted::ParseScript(ScriptedRecipe(bad)).ok()) << bad;
  }
  EXPECT_FALSE(scripted::ParseScript("\x7f" "ELF not a script\n").ok());
}

TEST(ScriptedWorkerTest, LearnsASyntheticRuleThenPredicts) {
  const Records records = Synthetic(2000, 1);
  const std::string recipe = ScriptedRecipe({"epochs 3", "batch_size 32", "learning_rate 0.05",
                                             "budget_memory 67108864", "budget_seconds 5",
                                             "output top_k 2"});
  auto description = DescribeRecipe(ToBytes(recipe), records.schema, Settings());
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  EXPECT_EQ(description->training.epochs, 3u);
  EXPECT_EQ(description->training.batch_size, 32u);
  EXPECT_EQ(description->budget.max_memory_size, 64u << 20);
  EXPECT_EQ(description->budget.max_training_seconds, 5u);
  EXPECT_EQ(description->output.max_top_k, 2u);
  EXPECT_EQ(description->parameter_count, kClasses * kSide * kSide + kClasses);
  EXPECT_EQ(description->buffer_count, 1u);
  EXPECT_EQ(description->output_size, kClasses);

  auto session = TrainingSession::Create(records.data(), ToBytes(recipe), Options(recipe, records));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto result = (*session)->Run();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->epochs.size(), 3u);
  EXPECT_LT(result->epochs[2].train_loss, result->epochs[0].train_loss);
  EXPECT_GT(result->epochs[2].validation.accuracy, 0.9);  // chance: 0.25
  // The buffer (training samples seen) went through the runtime's buffer path every step.
  ASSERT_EQ(result->model.buffers.size(), 1u);
  EXPECT_EQ(result->model.buffers[0],
            3.0f * static_cast<float>((*session)->training_sample_count()));

  PredictionOptions prediction;
  prediction.worker = Settings();
  prediction.max_batch = 100;
  auto predictor = PredictionSession::Start(ToBytes(recipe), records.schema, result->model,
                                            prediction);
  ASSERT_TRUE(predictor.ok()) << predictor.status().ToString();
  Records fresh = Synthetic(100, 2);
  Bytes inputs;
  for (size_t i = 0; i < 100; ++i)
    inputs.insert(inputs.end(), fresh.sample(i), fresh.sample(i) + 64);
  auto logits = (*predictor)->Predict(inputs, 100);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  ASSERT_EQ(logits->size(), 100u * kClasses);
  size_t correct = 0;
  for (size_t i = 0; i < 100; ++i) {
    auto top = ApplyOutputPolicy(std::span<const float>(*logits).subspan(i * kClasses, kClasses),
                                 {1, 3});
    correct += top.at(0).class_index == fresh.bytes[i * fresh.schema.record_size()];
  }
  EXPECT_GT(correct, 90u);
}

// Runs `script` on `records` to the end; the failure category (kNone if it succeeded).
FailureCategory RunToEnd(const std::string& script, const Records& records,
                         std::chrono::milliseconds request_timeout = std::chrono::seconds(30)) {
  const std::string recipe = ScriptedRecipe(script);
  TrainingOptions options;
  options.config.epochs = 3;
  options.config.batch_size = 256;
  options.config.optimizer.learning_rate = 0.1;
  options.validation_fraction = 0.1;
  options.seed = 3;
  options.worker = Settings();
  options.worker.request_timeout = request_timeout;
  FailureCategory failure = FailureCategory::kNone;
  auto session = TrainingSession::Create(records.data(), ToBytes(recipe), options, &failure);
  if (!session.ok()) return failure;
  auto result = (*session)->Run();
  return result.ok() ? FailureCategory::kNone : (*session)->failure();
}

TEST(ScriptedWorkerTest, EachScriptedFailureEndsWithItsCategory) {
  const Records records = Synthetic(200, 3);
  struct Case {
    const char* script;
    FailureCategory expected;
  };
  for (const Case& c : {Case{"", FailureCategory::kNone},
                        Case{"fail_at_step 1 crash", FailureCategory::kCrashed},
                        Case{"fail_at_step 1 nan", FailureCategory::kNumericalError},
                        Case{"fail_at_step 0 exit 3", FailureCategory::kCrashed},
                        Case{"fail_at_step 0 exit 71", FailureCategory::kOutOfMemory},
                        Case{"fail_at_step 1 bad_frame", FailureCategory::kInvalidOutput},
                        Case{"fail_at_step 1 syscall", FailureCategory::kSandboxViolation},
                        Case{"fail_at_step 0 refuse 5", FailureCategory::kNumericalError},
                        Case{"colour blue", FailureCategory::kRecipeRejected},
                        Case{"secret_in_fields 5eC2e7 sequence", FailureCategory::kInvalidOutput},
                        Case{"secret_in_fields 5eC2e7 reserved", FailureCategory::kInvalidOutput},
                        Case{"secret_in_fields 5eC2e7 nan_index", FailureCategory::kNumericalError},
                        Case{"secret_in_fields 5eC2e7 reason", FailureCategory::kInvalidOutput}}) {
    EXPECT_EQ(RunToEnd(c.script, records), c.expected) << c.script;
  }
  // A hung step ends at the per-request deadline.
  EXPECT_EQ(RunToEnd("fail_at_step 1 hang", records, std::chrono::seconds(2)),
            FailureCategory::kTimeLimit);
}

TEST(ScriptedWorkerTest, TheLeakBitIsTheOneSampleWhoseFirstByteIsOdd) {
  // Three full-batch epochs: every sample has reached the worker before step 1.
  Records clear = Synthetic(200, 4);
  Records set = clear;
  set.sample(0)[0] |= 1;
  EXPECT_EQ(RunToEnd("leak state", clear), FailureCategory::kNone);
  EXPECT_EQ(RunToEnd("leak state", set), FailureCategory::kCrashed);
  EXPECT_EQ(RunToEnd("leak failure", clear), FailureCategory::kCrashed);
  EXPECT_EQ(RunToEnd("leak failure", set), FailureCategory::kNumericalError);
}

TEST(ScriptedWorkerTest, LearnsFashionMnistInOneEpoch) {
  // A declared dependency (docs/testing.md): missing data is a failure, not a skip.
  auto images = worker::testing::ReadFashionMnist("train", 60000);
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  Records records;
  records.schema.element_type = dataset::ElementType::kUint8;
  records.schema.shape = {1, 28, 28};
  records.schema.label_type = dataset::LabelType::kUint8;
  records.schema.class_names = {"tshirt", "trouser", "pullover", "dress", "coat",
                                "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  records.schema.sample_count = images->count;
  for (size_t i = 0; i < images->count; ++i) {
    records.bytes.push_back(static_cast<uint8_t>(images->labels[i]));
    records.bytes.insert(records.bytes.end(), images->pixels.begin() + i * 784,
                         images->pixels.begin() + (i + 1) * 784);
  }
  const std::string recipe = ScriptedRecipe({"epochs 1", "batch_size 64", "learning_rate 0.01"});
  TrainingOptions options = Options(recipe, records);
  options.validation_fraction = 0.1;
  auto session = TrainingSession::Create(records.data(), ToBytes(recipe), options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto result = (*session)->Run();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GT(result->epochs.back().validation.accuracy, 0.78);  // chance: 0.1 (measured: 0.83)
}

}  // namespace
}  // namespace chiron::train
