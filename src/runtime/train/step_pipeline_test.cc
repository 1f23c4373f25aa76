// StepPipeline on one rank: the states handed to the worker are exactly the ones the staleness
// schedule names, the exchange thread's tags increase strictly, and a failed exchange reaches the
// session's next call; then whole asynchronous TrainingSessions of one rank with the torch-free
// scripted worker, so that the session's and the pipeline's threads run under ThreadSanitizer
// too. (Several ranks over real PeerGroups: src/runtime/cluster's data_parallel_training_test.)
#include "runtime/train/step_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "runtime/train/training_session.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::train {
namespace {

// A group of one: nothing to send or receive. It checks what every rank's transport checks, that
// (step, phase) increases strictly from call to call, and can fail the exchange of one step (as a
// broken link would).
class SoloCollective final : public Collective {
 public:
  explicit SoloCollective(uint64_t fail_at_step = UINT64_MAX) : fail_at_step_(fail_at_step) {}
  uint32_t rank() const override { return 0; }
  uint32_t size() const override { return 1; }
  Status Exchange(uint64_t step, uint32_t phase, std::span<const std::span<const float>>,
                  std::span<const std::span<float>>) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (aborted_) return AbortedError("solo collective: aborted");
    if (calls_ > 0 && !(step > last_step_ || (step == last_step_ && phase > last_phase_))) {
      return FailedPreconditionError("solo collective: tags out of order");
    }
    last_step_ = step;
    last_phase_ = phase;
    ++calls_;
    if (step == fail_at_step_) return UnavailableError("solo collective: the link broke");
    return Status::Ok();
  }
  Status ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out,
                       std::vector<Bytes>& in) override {
    std::vector<std::span<const float>> none_out;
    std::vector<std::span<float>> none_in;
    CHIRON_RETURN_IF_ERROR(Exchange(step, phase, none_out, none_in));
    in.assign(1, Bytes(out.begin(), out.end()));
    return Status::Ok();
  }
  void Abort() override {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
  }
  uint64_t calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  const uint64_t fail_at_step_;
  mutable std::mutex mutex_;
  bool aborted_ = false;
  uint64_t calls_ = 0;
  uint64_t last_step_ = 0;
  uint32_t last_phase_ = 0;
};

OptimizerConfig PlainSgd() {
  OptimizerConfig config;
  config.kind = OptimizerKind::kSgd;
  config.learning_rate = 1.0;
  return config;
}

// Step k's gradient is (k + 1, 2(k + 1)) and its buffer k: with SGD at learning rate 1, the state
// after k steps is θ_k = (−k(k+1)/2, −k(k+1)), buffer k − 1 (5 before any step). Small integers:
// exact in float.
std::vector<float> Expected(uint64_t k) {
  const float sum = static_cast<float>(k * (k + 1) / 2);
  return {-sum, -2 * sum, k == 0 ? 5.0f : static_cast<float>(k - 1)};
}

TEST(StepPipelineTest, TheWorkerGetsTheStateTheStalenessScheduleNames) {
  for (uint32_t staleness : {1u, 2u, 4u}) {
    SoloCollective collective;
    auto data_parallel = DataParallel::Create(collective, PlainSgd(), 2, 1);
    ASSERT_TRUE(data_parallel.ok()) << data_parallel.status().ToString();
    TrainedModel model{{0, 0}, {5}};
    StepPipeline pipeline(collective, **data_parallel, model, staleness, 1, 0);
    ASSERT_TRUE(pipeline.Restart(0).ok());
    std::vector<float> arena(3);
    const uint64_t steps = 12;
    for (uint64_t t = 0; t < steps; ++t) {
      const uint64_t basis = t >= staleness ? t - staleness : 0;
      ASSERT_TRUE(pipeline.CopyState(basis, arena).ok());
      EXPECT_EQ(arena, Expected(basis)) << "staleness " << staleness << ", step " << t;
      StepPipeline::Slot& slot = pipeline.SlotFor(t);
      slot.gradients = {static_cast<float>(t + 1), static_cast<float>(2 * (t + 1))};
      slot.buffers = {static_cast<float>(t)};
      ASSERT_TRUE(pipeline.Push(t, 1.0, 1).ok());
    }
    ASSERT_TRUE(pipeline.Drain().ok());
    const std::vector<float> last = Expected(steps);
    EXPECT_EQ(model.parameters, std::vector<float>(last.begin(), last.begin() + 2));
    EXPECT_EQ(model.buffers, std::vector<float>{static_cast<float>(steps - 1)});
    // Drained, restarted at step 12: the next gradient is computed on θ_12, not on a stale one.
    ASSERT_TRUE(pipeline.Restart(steps).ok());
    ASSERT_TRUE(pipeline.CopyState(steps, arena).ok());
    EXPECT_EQ(arena, Expected(steps));
    // Two exchanges per step (reduce-scatter, all-gather), each accepted in order (none refused).
    EXPECT_EQ(collective.calls(), 2 * steps);
  }
}

TEST(StepPipelineTest, OutOfScheduleCallsAreRefused) {
  SoloCollective collective;
  auto data_parallel = DataParallel::Create(collective, PlainSgd(), 2, 1);
  ASSERT_TRUE(data_parallel.ok());
  TrainedModel model{{0, 0}, {5}};
  StepPipeline pipeline(collective, **data_parallel, model, 1, 1, 0);
  ASSERT_TRUE(pipeline.Restart(0).ok());
  for (uint64_t t = 0; t < 3; ++t) {
    pipeline.SlotFor(t).gradients = {1, 1};
    pipeline.SlotFor(t).buffers = {0};
    ASSERT_TRUE(pipeline.Drain().ok());
    ASSERT_TRUE(pipeline.Push(t, 1.0, 1).ok());
  }
  std::vector<float> arena(3);
  // At staleness 1 only the last S + 1 = 2 states are kept: θ_0 is gone once 3 steps are pushed.
  EXPECT_EQ(pipeline.CopyState(0, arena).code(), StatusCode::kInternal);
  // A state beyond the pushed steps, a step out of order.
  EXPECT_EQ(pipeline.CopyState(4, arena).code(), StatusCode::kInternal);
  EXPECT_EQ(pipeline.Push(7, 1.0, 1).code(), StatusCode::kInternal);
  ASSERT_TRUE(pipeline.Drain().ok());
  ASSERT_TRUE(pipeline.CopyState(3, arena).ok());
  EXPECT_EQ(arena, (std::vector<float>{-3, -3, 0}));
}

TEST(StepPipelineTest, AFailedExchangeReachesTheSessionAndStopsThePipeline) {
  SoloCollective collective(/*fail_at_step=*/3);
  auto data_parallel = DataParallel::Create(collective, PlainSgd(), 2, 1);
  ASSERT_TRUE(data_parallel.ok());
  TrainedModel model{{0, 0}, {5}};
  Status first_error = Status::Ok();
  {
    StepPipeline pipeline(collective, **data_parallel, model, 1, 1, 0);
    ASSERT_TRUE(pipeline.Restart(0).ok());
    std::vector<float> arena(3);
    for (uint64_t t = 0; t < 10 && first_error.ok(); ++t) {
      const uint64_t basis = t >= 1 ? t - 1 : 0;
      Status s = pipeline.CopyState(basis, arena);
      if (s.ok()) {
        pipeline.SlotFor(t).gradients = {1, 1};
        pipeline.SlotFor(t).buffers = {0};
        s = pipeline.Push(t, 1.0, 1);
      }
      first_error = s;
    }
    EXPECT_EQ(first_error.code(), StatusCode::kUnavailable) << first_error.ToString();
    // Every later call returns the same failure; nothing more is exchanged.
    EXPECT_EQ(pipeline.Drain().code(), StatusCode::kUnavailable);
    EXPECT_EQ(pipeline.Restart(3).code(), StatusCode::kUnavailable);
  }  // the destructor joins the exchange thread
  // Steps 0-2 exchanged (2 tags each) and step 3's reduce-scatter failed.
  EXPECT_EQ(collective.calls(), 3u * 2 + 1);
}

// Records (label byte, then 8×8 u8) of a learnable 4-class set: class c lights quadrant c.
TrainingData Learnable(uint64_t count, Bytes& bytes) {
  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kUint8;
  schema.shape = {1, 8, 8};
  schema.label_type = dataset::LabelType::kUint8;
  schema.class_names = {"a", "b", "c", "d"};
  schema.sample_count = count;
  std::mt19937 random(17);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t label = random() % 4;
    bytes.push_back(static_cast<uint8_t>(label));
    for (uint32_t y = 0; y < 8; ++y) {
      for (uint32_t x = 0; x < 8; ++x) {
        const uint32_t base = (y / 4) * 2 + x / 4 == label ? 150 : 40;
        bytes.push_back(static_cast<uint8_t>(base + random() % 100));
      }
    }
  }
  return {schema, bytes};
}

TrainingOptions SessionOptions(Collective& collective, uint32_t staleness) {
  TrainingOptions options;
  options.config.epochs = 2;
  options.config.batch_size = 16;
  options.config.optimizer.learning_rate = 0.1;
  options.config.optimizer.momentum = 0.9;
  options.seed = 5;
  options.worker.worker_path = CHIRON_SCRIPTED_WORKER;
  options.worker.threads = 1;
  options.worker.request_timeout = std::chrono::seconds(300);
  options.worker.limits.address_space_size = 2ull << 30;
  options.collective = &collective;
  options.staleness = staleness;
  return options;
}

Result<TrainingResult> TrainAlone(const TrainingData& data, const TrainingOptions& options) {
  CHIRON_ASSIGN_OR_RETURN(
      std::unique_ptr<TrainingSession> session,
      TrainingSession::Create(data, ToBytes(testing::ScriptedRecipe({})), options));
  return session->Run();
}

TEST(AsynchronousSessionTest, OneRankLearnsRepeatsAndIsSynchronousWhenDrainedEveryStep) {
  Bytes bytes;
  const TrainingData data = Learnable(512, bytes);
  SoloCollective c1, c2, c3, c4;
  auto async = TrainAlone(data, SessionOptions(c1, 1));
  auto again = TrainAlone(data, SessionOptions(c2, 1));
  ASSERT_TRUE(async.ok()) << async.status().ToString();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(async->model, again->model);
  EXPECT_GT(async->epochs.back().validation.accuracy, 0.9) << "4 classes: chance is 0.25";
  TrainingOptions drained = SessionOptions(c3, 1);
  drained.checkpoint_every_steps = 1;
  TrainingOptions synchronous = SessionOptions(c4, 0);
  synchronous.checkpoint_every_steps = 1;
  auto drained_run = TrainAlone(data, drained);
  auto sync_run = TrainAlone(data, synchronous);
  ASSERT_TRUE(drained_run.ok()) << drained_run.status().ToString();
  ASSERT_TRUE(sync_run.ok()) << sync_run.status().ToString();
  EXPECT_EQ(drained_run->model, sync_run->model);
  EXPECT_NE(async->model, sync_run->model);
}

TEST(AsynchronousSessionTest, AbortFromAnotherThreadStopsAnAsynchronousRun) {
  Bytes bytes;
  const TrainingData data = Learnable(512, bytes);
  SoloCollective collective;
  auto session =
      TrainingSession::Create(data, ToBytes(testing::ScriptedRecipe({"sleep_per_step_ms 20"})),
                              SessionOptions(collective, 2));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*session)->Abort();
  });
  Result<TrainingResult> result = (*session)->Run();  // 2 epochs × 29 steps × 20 ms otherwise
  stopper.join();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ((*session)->failure(), FailureCategory::kStopped);
}

}  // namespace
}  // namespace chiron::train
