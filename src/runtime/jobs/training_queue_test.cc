// TrainingQueue through real sandboxed workers (the torch-free scripted worker): name
// reservation, cancel and stop by killing the worker, wall-clock and memory budgets, the job's
// own peak memory, fair slots, and jobs reading a dataset. Each test names the defect it pins.
#include "runtime/jobs/training_queue.h"

#include <gtest/gtest.h>

#include <set>

#include "runtime/jobs/jobs_test_util.h"

namespace chiron::jobs {
namespace {

using testing::Eventually;
using testing::kOtherOwner;
using testing::kOwner;

class TrainingQueueTest : public testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    testing::UploadDataset(*store_, kOwner, "digits", 600);
    testing::UploadDataset(*store_, kOtherOwner, "digits", 600, 11);
    registry_ = std::make_unique<RecipeRegistry>(store_.get(), RecipeRegistryOptions{});
  }
  void TearDown() override {
    if (queue_) queue_->Stop();
  }

  void StartQueue(TrainingQueueOptions options = {}) {
    if (options.worker.worker_path.empty()) options.worker = testing::ScriptedWorkerSettings();
    options.checkpoint_every_steps = 4;
    options.progress_interval = std::chrono::milliseconds(0);
    queue_ = std::make_unique<TrainingQueue>(store_.get(), registry_.get(), options);
    ASSERT_TRUE(queue_->Start().ok());
  }

  Result<JobRecord> Train(const std::string& owner, const std::string& recipe,
                          const std::string& model) {
    StartTrainingArgs args;
    args.dataset_name = "digits";
    args.recipe = recipe;
    args.model_name = model;
    return queue_->StartTraining(owner, args);
  }

  JobRecord WaitFinished(const std::string& owner, const std::string& job_id,
                         std::chrono::seconds limit = std::chrono::seconds(120)) {
    JobRecord last;
    EXPECT_TRUE(Eventually(
        [&] {
          auto record = queue_->GetJob(owner, job_id);
          if (record.ok()) last = *record;
          return record.ok() && Finished(record->state);
        },
        limit))
        << "job " << job_id << " still in state " << static_cast<int>(last.state);
    return last;
  }

  // A queue whose requests may last half an hour, for a recipe that sleeps ten minutes per step.
  static TrainingQueueOptions StuckOptions() {
    TrainingQueueOptions options;
    options.worker = testing::ScriptedWorkerSettings();
    options.worker.request_timeout = std::chrono::minutes(30);
    return options;
  }
  // The owner's job on that recipe, once its worker is in its first step.
  Result<JobRecord> StartStuckJob() {
    std::string stuck = RegisterScripted(*registry_, "stuck", "sleep_per_step_ms 600000");
    auto job = Train(kOwner, stuck, "m");
    if (job.ok() && !WaitRunning(kOwner, job->id)) {
      return DeadlineExceededError("the stuck job never ran");
    }
    return job;
  }

  bool WaitRunning(const std::string& owner, const std::string& job_id) {
    return Eventually([&] {
      auto record = queue_->GetJob(owner, job_id);
      return record.ok() && record->state == JobState::kRunning && record->batches_total > 0;
    });
  }

  std::unique_ptr<RecipeRegistry> registry_;
  std::unique_ptr<TrainingQueue> queue_;
};

TEST_F(TrainingQueueTest, TrainsAModelThroughTheSandboxedWorker) {
  StartQueue();
  std::string recipe =
      RegisterScripted(*registry_, "plain", "epochs 2\nbatch_size 16\nlearning_rate 0.5");
  auto job = Train(kOwner, recipe, "m");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  JobRecord done = WaitFinished(kOwner, job->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << done.failure;
  EXPECT_EQ(done.epochs_done, 2u);
  ASSERT_EQ(done.history.size(), 2u);
  EXPECT_GT(done.history.back().validation_accuracy, 0.9);  // the rule is learnable
  EXPECT_GT(done.started_unix, 0);
  EXPECT_EQ(done.budget_seconds, TrainingQueueOptions{}.max_job_seconds);
  EXPECT_TRUE(store_->GetBlobInfo(store::BlobKind::kModel, ModelBlobId(kOwner, "m")).ok());
}

// Live progress (Jobs.Watch): a watcher sees several updates inside one epoch, each consistent,
// never going backwards. The recipe is slow by construction (40 ms per step, an update every
// two steps), so this holds on any machine.
TEST_F(TrainingQueueTest, WatchersSeeProgressInsideAnEpoch) {
  TrainingQueueOptions options;
  options.worker = testing::ScriptedWorkerSettings();
  options.progress_every_batches = 2;
  StartQueue(options);
  std::string recipe =
      RegisterScripted(*registry_, "slow", "epochs 2\nbatch_size 32\nsleep_per_step_ms 40");
  auto job = Train(kOwner, recipe, "m");
  ASSERT_TRUE(job.ok());
  std::set<uint64_t> inside_first_epoch;
  uint64_t version = 0, previous = 0;
  while (true) {
    auto view = queue_->WaitForJob(kOwner, job->id, &version,
                                   std::chrono::steady_clock::now() + std::chrono::seconds(30));
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_GE(view->batches_done, previous) << "progress went backwards";
    previous = view->batches_done;
    if (view->state == JobState::kRunning && view->batches_per_epoch > 0 &&
        view->batches_done > 0 && view->batches_done < view->batches_per_epoch) {
      inside_first_epoch.insert(view->batches_done);
    }
    if (Finished(view->state)) {
      EXPECT_EQ(view->state, JobState::kSucceeded);
      break;
    }
  }
  EXPECT_GT(inside_first_epoch.size(), 1u) << "no update inside the first epoch but one";
}

// Defect: two jobs queued with the same --model both started, and the second silently replaced
// the first model (limits reset, grants carried over to another recipe's model).
TEST_F(TrainingQueueTest, AModelNameIsReservedWhenTheJobIsAccepted) {
  StartQueue();
  std::string slow = RegisterScripted(*registry_, "slow", "sleep_per_step_ms 200\nepochs 1");
  std::string other = RegisterScripted(*registry_, "other", "epochs 1");
  auto first = Train(kOwner, slow, "shared-name");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = Train(kOwner, other, "shared-name");
  ASSERT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find(first->id), std::string::npos)
      << second.status().message();
  // Another owner's name space is its own.
  auto elsewhere = Train(kOtherOwner, other, "shared-name");
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status().ToString();
  ASSERT_TRUE(queue_->CancelJob(kOwner, first->id).ok());
  EXPECT_EQ(WaitFinished(kOwner, first->id).state, JobState::kCancelled);
  // Once the first job ended without a model, the name is free again.
  auto third = Train(kOwner, other, "shared-name");
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_EQ(WaitFinished(kOwner, third->id).state, JobState::kSucceeded);
  // And a model of that name now holds it.
  EXPECT_EQ(Train(kOwner, other, "shared-name").status().code(), StatusCode::kAlreadyExists);
  WaitFinished(kOtherOwner, elsewhere->id);
}

// Defect: cancel was checked only at checkpoints, so a recipe sleeping in every step held its
// slot for minutes after `chiron job cancel`.
TEST_F(TrainingQueueTest, CancelKillsARunningWorkerAtOnce) {
  TrainingQueueOptions options = StuckOptions();
  StartQueue(options);
  auto job = StartStuckJob();
  ASSERT_TRUE(job.ok());
  const auto asked = std::chrono::steady_clock::now();
  auto cancelled = queue_->CancelJob(kOwner, job->id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_TRUE(cancelled->cancel_requested);
  JobRecord done = WaitFinished(kOwner, job->id, std::chrono::seconds(60));
  EXPECT_EQ(done.state, JobState::kCancelled);
  // The step sleeps ten minutes: ending within the liveness bound means the worker was killed.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::minutes(1));
  EXPECT_TRUE(Eventually([&] { return queue_->running_count() == 0; }));
}

// Defect: a job cancelled just as a runner picked it up showed "running" for a while.
TEST_F(TrainingQueueTest, AJobCancelledAsItIsPickedUpNeverRunsOn) {
  StartQueue();
  std::string recipe = RegisterScripted(*registry_, "plain", "epochs 3\nsleep_per_step_ms 20");
  for (int i = 0; i < 6; ++i) {
    auto job = Train(kOwner, recipe, "m" + std::to_string(i));
    ASSERT_TRUE(job.ok());
    auto cancelled = queue_->CancelJob(kOwner, job->id);
    ASSERT_TRUE(cancelled.ok());
    // Cancelled while queued: cancelled at once. Caught by a runner: cancel requested, and the
    // runner stops before the next step of its run (its worker killed if it has one).
    if (cancelled->state != JobState::kCancelled) {
      EXPECT_TRUE(cancelled->cancel_requested);
    }
    EXPECT_EQ(WaitFinished(kOwner, job->id, std::chrono::seconds(60)).state,
              JobState::kCancelled);
    EXPECT_FALSE(store_->GetBlobInfo(store::BlobKind::kModel,
                                     ModelBlobId(kOwner, "m" + std::to_string(i)))
                     .ok());
  }
}

// Defect: SIGTERM to chirond joined a training thread stuck in a recipe's step.
TEST_F(TrainingQueueTest, StopIsBoundedAndTheJobResumesAtTheNextStart) {
  TrainingQueueOptions options = StuckOptions();
  StartQueue(options);
  auto job = StartStuckJob();
  ASSERT_TRUE(job.ok());
  const auto asked = std::chrono::steady_clock::now();
  queue_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::minutes(1));
  auto stored = queue_->GetJob(kOwner, job->id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, JobState::kRunning);  // suspended, not failed
  EXPECT_EQ(stored->failure, 0);

  StartQueue(options);
  EXPECT_TRUE(Eventually([&] {
    auto record = queue_->GetJob(kOwner, job->id);
    return record.ok() && record->attempts == 2 && record->batches_total > 0;
  }));
  ASSERT_TRUE(queue_->CancelJob(kOwner, job->id).ok());
  EXPECT_EQ(WaitFinished(kOwner, job->id, std::chrono::seconds(60)).state, JobState::kCancelled);
}

// Defect: the declared budget was decoration (a recipe declaring 5 s ran for as long as it liked).
TEST_F(TrainingQueueTest, TheDeclaredTimeBudgetKillsTheWorker) {
  StartQueue();
  std::string slow = RegisterScripted(*registry_, "slow",
                                      "budget_seconds 2\nsleep_per_step_ms 500\nepochs 50");
  auto job = Train(kOwner, slow, "m");
  ASSERT_TRUE(job.ok());
  JobRecord done = WaitFinished(kOwner, job->id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.failure, 3);  // FAILURE_TIME_LIMIT
  EXPECT_EQ(done.budget_seconds, 2u);
  EXPECT_LE(done.elapsed_seconds, 10u);
}

// Defect: a recipe declaring 64 MiB used 1 GiB and succeeded.
TEST_F(TrainingQueueTest, TheDeclaredMemoryBudgetKillsTheWorker) {
  StartQueue();
  std::string greedy = RegisterScripted(*registry_, "greedy",
                                        "budget_memory 67108864\nallocate_mb 512 1\nepochs 2");
  auto job = Train(kOwner, greedy, "m");
  ASSERT_TRUE(job.ok());
  JobRecord done = WaitFinished(kOwner, job->id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.failure, 2);  // FAILURE_OUT_OF_MEMORY
  EXPECT_EQ(done.budget_memory_size, 64u << 20);
}

TEST_F(TrainingQueueTest, ABudgetAboveTheOperatorsLimitsIsRefusedBeforeAnyData) {
  TrainingQueueOptions options;
  options.max_job_seconds = 3600;
  StartQueue(options);
  std::string greedy = RegisterScripted(*registry_, "greedy", "budget_seconds 7200");
  auto job = Train(kOwner, greedy, "m");
  ASSERT_TRUE(job.ok());
  JobRecord done = WaitFinished(kOwner, job->id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.failure, 6);  // FAILURE_RECIPE_REJECTED
  EXPECT_EQ(done.batches_total, 0u);  // no training session was created
}

// Defect: peak_memory_log2 came from getrusage(RUSAGE_CHILDREN), the largest worker chirond ever
// reaped: a job's fact showed an earlier job's (another provider's, another owner's) memory.
TEST_F(TrainingQueueTest, PeakMemoryIsTheJobsOwn) {
  TrainingQueueOptions options;
  options.slots = 1;
  StartQueue(options);
  std::string big = RegisterScripted(*registry_, "big", "allocate_mb 768 1\nepochs 1");
  std::string small = RegisterScripted(*registry_, "small", "epochs 1");
  auto first = Train(kOwner, big, "big");
  ASSERT_TRUE(first.ok());
  JobRecord big_done = WaitFinished(kOwner, first->id);
  ASSERT_EQ(big_done.state, JobState::kSucceeded);
  EXPECT_GE(big_done.peak_memory_log2, 30u);  // 768 MiB touched: at least 2^30 rounded up
  auto second = Train(kOtherOwner, small, "small");
  ASSERT_TRUE(second.ok());
  JobRecord small_done = WaitFinished(kOtherOwner, second->id);
  ASSERT_EQ(small_done.state, JobState::kSucceeded);
  EXPECT_GT(small_done.peak_memory_log2, 0u);
  EXPECT_LT(small_done.peak_memory_log2, big_done.peak_memory_log2);
}

// Defect: one training thread; a slow recipe held every owner's queue. With slots, one owner's
// backlog does not keep another owner's job waiting behind all of it.
TEST_F(TrainingQueueTest, SlotsAreSharedFairlyAcrossOwners) {
  TrainingQueueOptions options;
  options.slots = 1;
  StartQueue(options);
  std::string recipe = RegisterScripted(*registry_, "plain", "epochs 1\nsleep_per_step_ms 30");
  std::vector<std::string> backlog;
  for (int i = 0; i < 3; ++i) {
    auto job = Train(kOwner, recipe, "m" + std::to_string(i));
    ASSERT_TRUE(job.ok());
    backlog.push_back(job->id);
  }
  auto other = Train(kOtherOwner, recipe, "m");
  ASSERT_TRUE(other.ok());
  JobRecord other_done = WaitFinished(kOtherOwner, other->id);
  EXPECT_EQ(other_done.state, JobState::kSucceeded);
  // The other owner's job ran second: the first owner's last job had not started yet.
  auto last = queue_->GetJob(kOwner, backlog.back());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->state, JobState::kQueued);
  for (const std::string& id : backlog) WaitFinished(kOwner, id);
}

// Defect: a dataset could be deleted under a running job, which carried on and succeeded.
TEST_F(TrainingQueueTest, JobsReadingADatasetAreListedAndCancelledOnRequest) {
  TrainingQueueOptions options = StuckOptions();
  StartQueue(options);
  auto job = StartStuckJob();
  ASSERT_TRUE(job.ok());
  auto readers = queue_->UnfinishedJobsReading(kOwner, job->dataset_id);
  ASSERT_TRUE(readers.ok());
  EXPECT_EQ(*readers, std::vector<std::string>{job->id});
  auto others = queue_->UnfinishedJobsReading(kOtherOwner, job->dataset_id);
  ASSERT_TRUE(others.ok());
  EXPECT_TRUE(others->empty());
  ASSERT_TRUE(queue_
                  ->CancelJobsReading(kOwner, job->dataset_id,
                                      std::chrono::steady_clock::now() + std::chrono::minutes(1))
                  .ok());
  EXPECT_EQ(queue_->running_count(), 0u);
  EXPECT_EQ(WaitFinished(kOwner, job->id).state, JobState::kCancelled);
}

}  // namespace
}  // namespace chiron::jobs
