// Stopping and bounding sessions: Abort() from another thread, the job's wall-clock deadline, the
// worker's resident-memory limit and its own peak, through the real TrainingSession and
// PredictionSession with the torch-free scripted worker (tests/workers/scripted_recipe.h), so
// these run in the sanitizer tree too. training_session_test repeats the first three with the
// real chiron-worker and libtorch.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>
#include <string>
#include <thread>

#include "runtime/train/prediction_session.h"
#include "runtime/train/training_session.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::train {
namespace {

using chiron::testing::ScriptedRecipe;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1ull << 20;

// 256 samples of 8x8 u8 noise, 4 classes: the content does not matter here.
struct Records {
  dataset::DatasetSchema schema;
  Bytes bytes;
  TrainingData data() const { return {schema, bytes}; }
};
Records Noise() {
  Records r;
  r.schema.element_type = dataset::ElementType::kUint8;
  r.schema.shape = {1, 8, 8};
  r.schema.label_type = dataset::LabelType::kUint8;
  r.schema.class_names = {"a", "b", "c", "d"};
  r.schema.sample_count = 256;
  std::mt19937 random(3);
  for (uint64_t i = 0; i < r.schema.sample_count; ++i) {
    r.bytes.push_back(static_cast<uint8_t>(random() % 4));
    for (int j = 0; j < 64; ++j) r.bytes.push_back(static_cast<uint8_t>(random()));
  }
  return r;
}

// A request timeout far beyond every wait below: what ends a run early is the mechanism under
// test, never the per-request limit.
TrainingOptions OptionsFor() {
  TrainingOptions options;
  options.config.epochs = 2;
  options.config.batch_size = 16;
  options.config.optimizer.learning_rate = 0.1;
  options.seed = 11;
  options.worker.worker_path = CHIRON_SCRIPTED_WORKER;
  options.worker.threads = 1;
  options.worker.request_timeout = std::chrono::seconds(300);
  options.worker.limits.address_space_size = 2ull << 30;
  return options;
}

Result<std::unique_ptr<TrainingSession>> Create(const Records& records, const std::string& recipe,
                                                const TrainingOptions& options,
                                                FailureCategory* failure = nullptr) {
  return TrainingSession::Create(records.data(), ToBytes(recipe), options, failure);
}

TEST(SessionLimitsTest, AbortFromAnotherThreadEndsARunBlockedInAHangingStep) {
  const Records records = Noise();
  auto session = Create(records, ScriptedRecipe({"fail_at_step 3 hang"}), OptionsFor());
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  TrainingSession* training = session->get();
  auto run = std::async(std::launch::async, [training] { return training->Run(); });
  // Step 3 never answers: Run() blocks in it (for the 300 s request timeout, without Abort).
  ASSERT_EQ(run.wait_for(std::chrono::seconds(1)), std::future_status::timeout);
  EXPECT_GT(training->peak_resident_size(), 0u);  // readable while Run() blocks
  const auto aborted_at = Clock::now();
  std::thread([training] { training->Abort(); }).join();
  training->Abort();  // idempotent
  ASSERT_EQ(run.wait_for(std::chrono::seconds(30)), std::future_status::ready);  // liveness
  const double returned_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - aborted_at).count();
  Result<TrainingResult> result = run.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ(training->failure(), FailureCategory::kStopped);
  EXPECT_STREQ(std::string(FailureCategoryName(training->failure())).c_str(),
               "stopped by the runtime");
  std::printf("Run() returned %.1f ms after Abort()\n", returned_ms);
  // Dead for good: a later Run() fails the same way without a worker.
  EXPECT_EQ(training->Run().status().code(), StatusCode::kAborted);
  EXPECT_GT(training->peak_resident_size(), 0u);
}

TEST(SessionLimitsTest, AbortBeforeRunStopsItAtTheFirstRequest) {
  const Records records = Noise();
  auto session = Create(records, ScriptedRecipe(), OptionsFor());
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  (*session)->Abort();
  Result<TrainingResult> result = (*session)->Run();
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ((*session)->failure(), FailureCategory::kStopped);
}

TEST(SessionLimitsTest, AStopperStopsARunningSessionAndEveryLaterStart) {
  const Records records = Noise();
  TrainingOptions options = OptionsFor();
  options.worker.stopper = std::make_shared<WorkerStopper>();
  auto session = Create(records, ScriptedRecipe({"fail_at_step 3 hang"}), options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  TrainingSession* training = session->get();
  auto run = std::async(std::launch::async, [training] { return training->Run(); });
  ASSERT_EQ(run.wait_for(std::chrono::seconds(1)), std::future_status::timeout);
  options.worker.stopper->Stop();
  ASSERT_EQ(run.wait_for(std::chrono::seconds(30)), std::future_status::ready);  // liveness
  EXPECT_EQ(run.get().status().code(), StatusCode::kAborted);
  EXPECT_EQ(training->failure(), FailureCategory::kStopped);
  // Sticky: nothing starts with a stopped stopper (no worker is launched).
  FailureCategory failure = FailureCategory::kNone;
  auto later = Create(records, ScriptedRecipe(), options, &failure);
  EXPECT_EQ(later.status().code(), StatusCode::kAborted) << later.status().ToString();
  EXPECT_EQ(failure, FailureCategory::kStopped);
  EXPECT_TRUE(options.worker.stopper->stopped());
  // A session destroyed before the Stop() has detached itself: no use after free.
  auto other = std::make_shared<WorkerStopper>();
  TrainingOptions short_lived = OptionsFor();
  short_lived.worker.stopper = other;
  {
    auto gone = Create(records, ScriptedRecipe(), short_lived);
    ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  }
  other->Stop();
}

TEST(SessionLimitsTest, TheJobDeadlineEndsARunMidStepAsATimeLimit) {
  const Records records = Noise();
  TrainingOptions options = OptionsFor();
  // Ample for the start (milliseconds on a quiet machine) and two steps: the hang ends the run.
  options.deadline = Clock::now() + std::chrono::seconds(5);
  auto session = Create(records, ScriptedRecipe({"fail_at_step 2 hang"}), options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  const auto start = Clock::now();
  Result<TrainingResult> result = (*session)->Run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded) << result.status().ToString();
  EXPECT_NE(result.status().message().find("job's wall-clock limit"), std::string::npos)
      << result.status().message();
  EXPECT_EQ((*session)->failure(), FailureCategory::kTimeLimit);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));  // not the 300 s request timeout
}

TEST(SessionLimitsTest, TheJobDeadlineAlsoStopsSlowStepsThatEachFitTheRequestTimeout) {
  const Records records = Noise();
  TrainingOptions options = OptionsFor();
  options.worker.request_timeout = std::chrono::seconds(3);  // each 500 ms step fits easily
  options.deadline = Clock::now() + std::chrono::seconds(5);
  // 2 epochs × 13 steps × 500 ms: at least 13 s without the job's limit.
  auto session = Create(records, ScriptedRecipe({"sleep_per_step_ms 500"}), options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Result<TrainingResult> result = (*session)->Run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded) << result.status().ToString();
  EXPECT_EQ((*session)->failure(), FailureCategory::kTimeLimit);
}

TEST(SessionLimitsTest, AJobPastItsDeadlineStartsNoWorker) {
  const Records records = Noise();
  TrainingOptions options = OptionsFor();
  options.deadline = Clock::now() - std::chrono::milliseconds(1);
  FailureCategory failure = FailureCategory::kNone;
  auto session = Create(records, ScriptedRecipe(), options, &failure);
  EXPECT_EQ(session.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(failure, FailureCategory::kTimeLimit);
}

TEST(SessionLimitsTest, ResidentMemoryPastTheJobLimitIsOutOfMemoryAndEachPeakIsItsOwn) {
  const Records records = Noise();
  constexpr uint64_t kLimit = 128 * kMiB;
  TrainingOptions options = OptionsFor();
  options.max_resident_size = kLimit;
  auto greedy = Create(records, ScriptedRecipe({"allocate_mb 1024 1"}), options);
  ASSERT_TRUE(greedy.ok()) << greedy.status().ToString();
  Result<TrainingResult> result = (*greedy)->Run();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ((*greedy)->failure(), FailureCategory::kOutOfMemory) << result.status().ToString();
  const uint64_t peak = (*greedy)->peak_resident_size();
  EXPECT_GT(peak, kLimit);
  EXPECT_LT(peak, 768 * kMiB);  // killed long before its 1 GiB
  std::printf("job limit %llu MiB, worker peak at the kill %llu MiB\n",
              static_cast<unsigned long long>(kLimit / kMiB),
              static_cast<unsigned long long>(peak / kMiB));

  // The job's limit is the smaller of the job's and the worker settings'.
  TrainingOptions settings_limit = OptionsFor();
  settings_limit.worker.limits.max_resident_size = kLimit;
  settings_limit.max_resident_size = 4 * kLimit;
  auto also_greedy = Create(records, ScriptedRecipe({"allocate_mb 1024 1"}), settings_limit);
  ASSERT_TRUE(also_greedy.ok()) << also_greedy.status().ToString();
  EXPECT_FALSE((*also_greedy)->Run().ok());
  EXPECT_EQ((*also_greedy)->failure(), FailureCategory::kOutOfMemory);

  // Under the limit it trains; its figure is its own worker's, not the greedy one's.
  auto modest = Create(records, ScriptedRecipe({"allocate_mb 32 1"}), options);
  ASSERT_TRUE(modest.ok()) << modest.status().ToString();
  ASSERT_TRUE((*modest)->Run().ok());
  EXPECT_GE((*modest)->peak_resident_size(), 32 * kMiB);
  EXPECT_LT((*modest)->peak_resident_size(), kLimit);

  // DescribeRecipe reports its worker's peak too.
  WorkerSettings settings = OptionsFor().worker;
  auto description = DescribeRecipe(ToBytes(ScriptedRecipe()), records.schema, settings);
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  EXPECT_GT(description->peak_resident_size, 0u);
  EXPECT_LT(description->peak_resident_size, kLimit);
}

TEST(SessionLimitsTest, AnAbortedPredictionSessionRefusesEveryPrediction) {
  const Records records = Noise();
  const Bytes recipe = ToBytes(ScriptedRecipe());
  WorkerSettings settings = OptionsFor().worker;
  auto description = DescribeRecipe(recipe, records.schema, settings);
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  TrainedModel model;
  model.parameters.assign(description->parameter_count, 0.01f);
  model.buffers.assign(description->buffer_count, 0.0f);
  PredictionOptions options;
  options.worker = settings;
  options.max_batch = 4;
  auto predictor = PredictionSession::Start(recipe, records.schema, model, options);
  ASSERT_TRUE(predictor.ok()) << predictor.status().ToString();
  const ByteSpan one(records.bytes.data() + 1, 64);
  ASSERT_TRUE((*predictor)->Predict(one, 1).ok());
  EXPECT_GT((*predictor)->peak_resident_size(), 0u);
  std::thread([&predictor] { (*predictor)->Abort(); }).join();
  auto refused = (*predictor)->Predict(one, 1);
  EXPECT_EQ(refused.status().code(), StatusCode::kAborted) << refused.status().ToString();
  EXPECT_EQ((*predictor)->failure(), FailureCategory::kStopped);
  EXPECT_GT((*predictor)->peak_resident_size(), 0u);
}

}  // namespace
}  // namespace chiron::train
