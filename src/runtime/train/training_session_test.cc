// TrainingSession and PredictionSession with the real chiron-worker, the real MLP and LeNet
// recipes and real Fashion-MNIST data, plus a malicious recipe attacking from inside a training
// step (tests/redteam/malicious_training_recipe.cc).
#include "runtime/train/training_session.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "runtime/train/prediction_session.h"
#include "shared/testing/fashion_mnist.h"

namespace chiron::train {
namespace {

using worker::testing::LabelledImages;
using worker::testing::ReadFashionMnist;

Bytes ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return ToBytes(s.str());
}

const LabelledImages& Train() {
  static const LabelledImages* const kData = [] {
    auto data = ReadFashionMnist("train", 8000);
    if (!data.ok()) std::abort();
    return new LabelledImages(std::move(*data));
  }();
  return *kData;
}

// The first `count` training images as dataset records (u8 label || 784 pixels).
struct Records {
  dataset::DatasetSchema schema;
  Bytes bytes;
  TrainingData data() const { return {schema, bytes}; }
};
Records MakeRecords(size_t count) {
  Records r;
  r.schema.element_type = dataset::ElementType::kUint8;
  r.schema.shape = {1, 28, 28};
  r.schema.label_type = dataset::LabelType::kUint8;
  r.schema.class_names = {"tshirt", "trouser", "pullover", "dress", "coat",
                          "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  r.schema.sample_count = count;
  for (size_t i = 0; i < count; ++i) {
    r.bytes.push_back(static_cast<uint8_t>(Train().labels[i]));
    r.bytes.insert(r.bytes.end(), Train().pixels.begin() + i * 784,
                   Train().pixels.begin() + (i + 1) * 784);
  }
  return r;
}

WorkerSettings Settings() {
  WorkerSettings settings;
  settings.worker_path = CHIRON_WORKER_PATH;
  settings.threads = 2;
  settings.request_timeout = std::chrono::seconds(60);
  return settings;
}

TrainingOptions OptionsFor(const char* recipe_path, const Records& records, uint32_t epochs) {
  auto description = DescribeRecipe(ReadFile(recipe_path), records.schema, Settings());
  EXPECT_TRUE(description.ok()) << description.status().ToString();
  TrainingOptions options;
  options.config = description.ok() ? description->training : TrainingConfig{};
  options.config.epochs = epochs;
  options.validation_fraction = 0.2;
  options.seed = 42;
  options.worker = Settings();
  return options;
}

TEST(TrainingSessionTest, MlpLearnsAndTheRuntimeScoresTheHeldOutSplit) {
  const Records records = MakeRecords(6000);
  const Bytes recipe = ReadFile(CHIRON_RECIPE_MLP);
  TrainingOptions options = OptionsFor(CHIRON_RECIPE_MLP, records, 2);
  auto session = TrainingSession::Create(records.data(), recipe, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ((*session)->validation_sample_count(), 1200u);
  EXPECT_EQ((*session)->training_sample_count(), 4800u);
  std::vector<EpochMetrics> seen;
  auto result = (*session)->Run([&](const EpochMetrics& m) { seen.push_back(m); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].epoch, 2u);
  EXPECT_EQ(seen[1].samples_seen, 9600u);
  EXPECT_EQ(seen[1].step, 2u * 75);
  // Chance is 0.1 and ln(10) = 2.30 is the loss of a uniform guess.
  EXPECT_LT(seen[1].train_loss, seen[0].train_loss);
  EXPECT_LT(seen[0].train_loss, 1.5);
  ASSERT_TRUE(seen[1].has_validation);
  const ClassificationReport& v = seen[1].validation;
  EXPECT_GT(v.accuracy, 0.7);
  EXPECT_LT(v.mean_loss, 1.0);
  EXPECT_EQ(v.per_class_accuracy.size(), 10u);
  uint64_t total = 0;
  for (uint64_t c : v.confusion) total += c;
  EXPECT_EQ(total, 1200u);
  EXPECT_EQ(result->model.parameters.size(), (*session)->parameter_count());
  EXPECT_EQ((*session)->failure(), FailureCategory::kNone);
}

TEST(TrainingSessionTest, ResumeFromACheckpointIsBitExact) {
  const Records records = MakeRecords(2000);
  const Bytes recipe = ReadFile(CHIRON_RECIPE_MLP);
  TrainingOptions options = OptionsFor(CHIRON_RECIPE_MLP, records, 2);
  options.checkpoint_every_steps = 10;
  std::vector<Bytes> checkpoints;
  std::vector<uint64_t> steps;
  auto full = TrainingSession::Create(records.data(), recipe, options);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  auto uninterrupted = (*full)->Run({}, [&](ByteSpan bytes, const EpochMetrics& m) {
    checkpoints.emplace_back(bytes.begin(), bytes.end());
    steps.push_back(m.step);
    return Status::Ok();
  });
  ASSERT_TRUE(uninterrupted.ok()) << uninterrupted.status().ToString();
  ASSERT_GE(checkpoints.size(), 4u);

  // Mid-epoch (step 20) and end of the first epoch (25 batches of 64 from 1600 samples).
  for (size_t which : {size_t{1}, size_t{2}}) {
    SCOPED_TRACE("checkpoint at step " + std::to_string(steps[which]));
    auto resumed = TrainingSession::Create(records.data(), recipe, options);
    ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
    ASSERT_TRUE((*resumed)->Restore(checkpoints[which]).ok());
    auto result = (*resumed)->Run();
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_TRUE(result->model == uninterrupted->model) << "parameters differ after resuming";
    EXPECT_EQ(result->epochs.back().validation.confusion,
              uninterrupted->epochs.back().validation.confusion);
  }
  // Checkpoints of other data or a tampered one are refused.
  const Records other = MakeRecords(1999);
  auto different = TrainingSession::Create(other.data(), recipe, options);
  ASSERT_TRUE(different.ok());
  EXPECT_EQ((*different)->Restore(checkpoints[1]).code(), StatusCode::kInvalidArgument);
  auto fresh = TrainingSession::Create(records.data(), recipe, options);
  ASSERT_TRUE(fresh.ok());
  Bytes cut(checkpoints[1].begin(), checkpoints[1].end() - 3);
  EXPECT_FALSE((*fresh)->Restore(cut).ok());
}

TEST(TrainingSessionTest, LeNetTrainsThenServesPredictions) {
  const Records records = MakeRecords(3000);
  const Bytes recipe = ReadFile(CHIRON_RECIPE_LENET);
  TrainingOptions options = OptionsFor(CHIRON_RECIPE_LENET, records, 1);
  options.validation_fraction = 0.1;
  options.config.optimizer.learning_rate = 0.05;  // ~85 steps: a short epoch
  auto session = TrainingSession::Create(records.data(), recipe, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto result = (*session)->Run();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_GT(result->epochs.back().validation.accuracy, 0.4);  // chance: 0.1

  PredictionOptions prediction;
  prediction.worker = Settings();
  prediction.max_batch = 100;
  auto predictor = PredictionSession::Start(recipe, records.schema, result->model, prediction);
  ASSERT_TRUE(predictor.ok()) << predictor.status().ToString();
  ASSERT_EQ((*predictor)->output_size(), 10u);
  // Images the training never saw.
  const size_t first = 7000, count = 100;
  auto logits = (*predictor)->Predict(
      ByteSpan(Train().pixels.data() + first * 784, count * 784), count);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  ASSERT_EQ(logits->size(), count * 10);
  size_t correct = 0;
  for (size_t i = 0; i < count; ++i) {
    auto top = ApplyOutputPolicy(std::span<const float>(*logits).subspan(i * 10, 10), {1, 3});
    ASSERT_EQ(top.size(), 1u);
    correct += top[0].class_index == static_cast<uint32_t>(Train().labels[first + i]);
  }
  EXPECT_GT(correct, 40u);
  EXPECT_FALSE((*predictor)->Predict(ByteSpan(Train().pixels.data(), 783), 1).ok());
  // A model of another layout is refused.
  TrainedModel wrong = result->model;
  wrong.parameters.pop_back();
  EXPECT_FALSE(PredictionSession::Start(recipe, records.schema, wrong, prediction).ok());
}

struct Attack {
  const char* mode;
  FailureCategory expected;
};

TEST(TrainingSessionTest, MaliciousRecipesFailWithACategoryAndNoText) {
  const Records records = MakeRecords(256);
  const Bytes malicious = ReadFile(CHIRON_RECIPE_MALICIOUS);
  const Bytes mlp = ReadFile(CHIRON_RECIPE_MLP);
  for (const Attack& attack : {Attack{"nan-gradients", FailureCategory::kNumericalError},
                               Attack{"nan-loss", FailureCategory::kNumericalError},
                               Attack{"garbage-frame", FailureCategory::kInvalidOutput},
                               Attack{"open-passwd", FailureCategory::kCrashed},
                               Attack{"socket", FailureCategory::kSandboxViolation},
                               Attack{"oom", FailureCategory::kOutOfMemory},
                               Attack{"spin", FailureCategory::kTimeLimit}}) {
    SCOPED_TRACE(attack.mode);
    TrainingOptions options;
    options.config.epochs = 1;
    options.config.batch_size = 32;
    options.config.optimizer.learning_rate = 0.05;
    options.seed = 7;
    options.worker = Settings();
    options.worker.extra_environment = {std::string("MALICIOUS_MODE=") + attack.mode};
    options.worker.request_timeout = std::chrono::seconds(3);
    options.worker.limits.address_space_size = 6ull << 30;
    FailureCategory failure = FailureCategory::kNone;
    auto session = TrainingSession::Create(records.data(), malicious, options, &failure);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    auto result = (*session)->Run();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ((*session)->failure(), attack.expected)
        << FailureCategoryName((*session)->failure()) << ": " << result.status().ToString();
    // Nothing the recipe wrote reaches the runtime's error.
    EXPECT_EQ(result.status().message().find("LEAKED"), std::string::npos);
    EXPECT_EQ(result.status().message().find("SECRET"), std::string::npos);

    // A fresh session with an honest recipe still works.
    TrainingOptions honest = options;
    honest.worker = Settings();
    auto fresh = TrainingSession::Create(records.data(), mlp, honest);
    ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    auto ok = (*fresh)->Run();
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  }
}

// Options for the malicious recipe in `mode`, with a request timeout far beyond the test's
// waits: whatever ends the run early is the mechanism under test, not the per-request limit.
TrainingOptions MaliciousOptions(const char* mode) {
  TrainingOptions options;
  options.config.epochs = 1;
  options.config.batch_size = 32;
  options.config.optimizer.learning_rate = 0.05;
  options.seed = 7;
  options.worker = Settings();
  options.worker.extra_environment = {std::string("MALICIOUS_MODE=") + mode};
  options.worker.request_timeout = std::chrono::seconds(120);
  options.worker.limits.address_space_size = 8ull << 30;
  return options;
}

using Clock = std::chrono::steady_clock;

TEST(TrainingSessionTest, AbortFromAnotherThreadStopsARunBlockedInASlowStep) {
  const Records records = MakeRecords(256);
  const Bytes malicious = ReadFile(CHIRON_RECIPE_MALICIOUS);
  auto session = TrainingSession::Create(records.data(), malicious, MaliciousOptions("sleep"));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  TrainingSession* training = session->get();
  auto run = std::async(std::launch::async, [training] { return training->Run(); });
  // The first step sleeps forever; give Run() time to be inside it.
  ASSERT_EQ(run.wait_for(std::chrono::seconds(2)), std::future_status::timeout);
  const auto abort_time = Clock::now();
  training->Abort();
  training->Abort();  // idempotent
  ASSERT_EQ(run.wait_for(std::chrono::seconds(30)), std::future_status::ready);  // liveness only
  const auto returned_after = Clock::now() - abort_time;
  Result<TrainingResult> result = run.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ(training->failure(), FailureCategory::kStopped);
  EXPECT_GT(training->peak_resident_size(), 0u);
  std::printf("Run() returned %.1f ms after Abort()\n",
              std::chrono::duration<double, std::milli>(returned_after).count());
  // Every later call fails the same way; a fresh session is unaffected.
  EXPECT_EQ(training->Run().status().code(), StatusCode::kAborted);
  auto fresh = TrainingSession::Create(records.data(), malicious, MaliciousOptions("none"));
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_TRUE((*fresh)->Run().ok());
  EXPECT_EQ((*fresh)->failure(), FailureCategory::kNone);
}

TEST(TrainingSessionTest, AStopperStopsACreateWhoseRecipeHangsWhileLoading) {
  const Records records = MakeRecords(256);
  const Bytes malicious = ReadFile(CHIRON_RECIPE_MALICIOUS);
  TrainingOptions options = MaliciousOptions("sleep-at-load");
  options.worker.start_timeout = std::chrono::seconds(300);  // without Stop(): five minutes
  options.worker.stopper = std::make_shared<WorkerStopper>();
  FailureCategory failure = FailureCategory::kNone;
  auto create = std::async(std::launch::async, [&] {
    return TrainingSession::Create(records.data(), malicious, options, &failure);
  });
  ASSERT_EQ(create.wait_for(std::chrono::seconds(3)), std::future_status::timeout);
  options.worker.stopper->Stop();
  ASSERT_EQ(create.wait_for(std::chrono::seconds(30)), std::future_status::ready);  // liveness
  auto session = create.get();
  EXPECT_EQ(session.status().code(), StatusCode::kAborted) << session.status().ToString();
  EXPECT_EQ(failure, FailureCategory::kStopped);
}

TEST(TrainingSessionTest, TheJobDeadlineEndsARunMidStepAsATimeLimit) {
  const Records records = MakeRecords(256);
  const Bytes malicious = ReadFile(CHIRON_RECIPE_MALICIOUS);
  TrainingOptions options = MaliciousOptions("sleep");
  // Ample for the worker start (0.4-1.3 s, more under load); then the first step sleeps.
  options.deadline = Clock::now() + std::chrono::seconds(15);
  auto session = TrainingSession::Create(records.data(), malicious, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  const auto start = Clock::now();
  Result<TrainingResult> result = (*session)->Run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded) << result.status().ToString();
  EXPECT_EQ((*session)->failure(), FailureCategory::kTimeLimit);
  // The job's limit acted, not the 120 s request timeout (liveness bound, not a timing claim).
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  // A job already past its deadline does not start a worker at all.
  options.deadline = Clock::now() - std::chrono::seconds(1);
  FailureCategory failure = FailureCategory::kNone;
  auto late = TrainingSession::Create(records.data(), malicious, options, &failure);
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(failure, FailureCategory::kTimeLimit);
}

TEST(TrainingSessionTest, ResidentMemoryPastTheJobLimitIsOutOfMemoryAndThePeakIsTheWorkers) {
  const Records records = MakeRecords(256);
  const Bytes malicious = ReadFile(CHIRON_RECIPE_MALICIOUS);
  constexpr uint64_t kLimit = 1ull << 30;
  TrainingOptions options = MaliciousOptions("grow-resident");
  options.max_resident_size = kLimit;
  auto session = TrainingSession::Create(records.data(), malicious, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Result<TrainingResult> result = (*session)->Run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ((*session)->failure(), FailureCategory::kOutOfMemory) << result.status().ToString();
  const uint64_t peak = (*session)->peak_resident_size();
  EXPECT_GT(peak, kLimit);
  EXPECT_LT(peak, kLimit + (1ull << 30));  // one poll interval of overshoot, generously
  std::printf("job limit 1024 MiB, worker peak %llu MiB\n",
              static_cast<unsigned long long>(peak >> 20));

  // The next job's figure is its own worker's, far below the first one's.
  auto honest = TrainingSession::Create(records.data(), malicious, MaliciousOptions("none"));
  ASSERT_TRUE(honest.ok()) << honest.status().ToString();
  ASSERT_TRUE((*honest)->Run().ok());
  EXPECT_GT((*honest)->peak_resident_size(), 16ull << 20);
  EXPECT_LT((*honest)->peak_resident_size(), kLimit);
  auto description = DescribeRecipe(malicious, records.schema, Settings());
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  EXPECT_GT(description->peak_resident_size, 16ull << 20);
  EXPECT_LT(description->peak_resident_size, kLimit);
}

TEST(TrainingSessionTest, AnAbortedPredictionSessionRefusesEveryPrediction) {
  const Records records = MakeRecords(16);
  const Bytes mlp = ReadFile(CHIRON_RECIPE_MLP);
  auto description = DescribeRecipe(mlp, records.schema, Settings());
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  TrainedModel model;
  model.parameters.assign(description->parameter_count, 0.01f);
  model.buffers.assign(description->buffer_count, 0.0f);
  PredictionOptions prediction;
  prediction.worker = Settings();
  prediction.max_batch = 4;
  auto predictor = PredictionSession::Start(mlp, records.schema, model, prediction);
  ASSERT_TRUE(predictor.ok()) << predictor.status().ToString();
  const ByteSpan one(Train().pixels.data(), 784);
  ASSERT_TRUE((*predictor)->Predict(one, 1).ok());
  EXPECT_GT((*predictor)->peak_resident_size(), 16ull << 20);
  std::thread([&predictor] { (*predictor)->Abort(); }).join();
  auto refused = (*predictor)->Predict(one, 1);
  EXPECT_EQ(refused.status().code(), StatusCode::kAborted) << refused.status().ToString();
  EXPECT_EQ((*predictor)->failure(), FailureCategory::kStopped);
  EXPECT_GT((*predictor)->peak_resident_size(), 16ull << 20);
}

TEST(TrainingSessionTest, RejectsBadDataAndOptions) {
  Records records = MakeRecords(100);
  const Bytes recipe = ReadFile(CHIRON_RECIPE_MLP);
  TrainingOptions options;
  options.worker = Settings();
  options.validation_fraction = 0.9;
  EXPECT_EQ(TrainingSession::Create(records.data(), recipe, options).status().code(),
            StatusCode::kInvalidArgument);
  options.validation_fraction = 0.1;
  Records short_records = records;
  short_records.bytes.pop_back();
  EXPECT_EQ(TrainingSession::Create(short_records.data(), recipe, options).status().code(),
            StatusCode::kInvalidArgument);
  Records bad_label = records;
  bad_label.bytes[0] = 10;
  EXPECT_EQ(TrainingSession::Create(bad_label.data(), recipe, options).status().code(),
            StatusCode::kInvalidArgument);
  options.config.optimizer.learning_rate = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(TrainingSession::Create(records.data(), recipe, options).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace chiron::train
