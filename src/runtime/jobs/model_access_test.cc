// ModelAccess through real sandboxed prediction workers (the torch-free scripted worker): request
// isolation between principals (and between requests), deletion that leaves no worker holding
// the model, and budget messages. Models are trained by a real TrainingQueue.
#include "runtime/jobs/model_access.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "runtime/jobs/jobs_test_util.h"
#include "runtime/jobs/training_queue.h"

namespace chiron::jobs {
namespace {

using testing::kOtherOwner;
using testing::kOwner;

class ModelAccessTest : public testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    testing::UploadDataset(*store_, kOwner, "digits", 150);
    registry_ = std::make_unique<RecipeRegistry>(store_.get(), RecipeRegistryOptions{});
    TrainingQueueOptions options;
    options.worker = testing::ScriptedWorkerSettings();
    options.initial_query_budget = 1000;
    queue_ = std::make_unique<TrainingQueue>(store_.get(), registry_.get(), options);
    ASSERT_TRUE(queue_->Start().ok());
  }
  void TearDown() override {
    if (models_) models_->Stop();
    queue_->Stop();
  }

  void StartModels(PredictionIsolation isolation) {
    ModelAccessOptions options;
    options.workers.worker = testing::ScriptedWorkerSettings();
    options.workers.isolation = isolation;
    options.max_query_budget = 1000;
    models_ = std::make_unique<ModelAccess>(store_.get(), options);
    models_->Start();
  }

  // Trains `name` with a scripted recipe and waits for the model.
  void TrainModel(const std::string& name, const std::string& script) {
    std::string recipe = RegisterScripted(*registry_, "r-" + name, script);
    StartTrainingArgs args;
    args.dataset_name = "digits";
    args.recipe = recipe;
    args.model_name = name;
    auto job = queue_->StartTraining(kOwner, args);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    ASSERT_TRUE(testing::Eventually([&] {
      auto record = queue_->GetJob(kOwner, job->id);
      return record.ok() && Finished(record->state);
    }));
    auto record = queue_->GetJob(kOwner, job->id);
    ASSERT_EQ(record->state, JobState::kSucceeded) << record->failure;
  }

  // One 8x8 sample whose first byte is `first`.
  static std::string Sample(uint8_t first) {
    std::string s(64, '\x10');
    s[0] = static_cast<char>(first);
    return s;
  }

  // The top class of a one-sample prediction.
  uint32_t TopClass(const std::string& caller, const std::string& owner, const std::string& name,
                    uint8_t first) {
    auto out = models_->Predict(caller, owner, name, {Sample(first)}, 1);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok() || out->predictions.empty() || out->predictions[0].empty()) return 99;
    return out->predictions[0][0].class_index;
  }

  std::unique_ptr<RecipeRegistry> registry_;
  std::unique_ptr<TrainingQueue> queue_;
  std::unique_ptr<ModelAccess> models_;
};

// Defect: one long-lived worker per model served the owner and every grantee, so a recipe could
// keep the owner's query inputs and encode them into a grantee's answers.
TEST_F(ModelAccessTest, AGranteeNeverSharesAWorkerWithTheOwner) {
  StartModels(PredictionIsolation::kPerPrincipal);
  TrainModel("m", "remember_inputs");
  ASSERT_TRUE(models_->GrantModel(kOwner, "m", kOtherOwner, 0).ok());
  // The owner's first query: its first byte (2) is what the hostile recipe remembers.
  EXPECT_EQ(TopClass(kOwner, "", "m", 2), 2u);
  // The grantee's answers carry its own first input (0), never the owner's.
  EXPECT_EQ(TopClass(kOtherOwner, kOwner, "m", 0), 0u);
  EXPECT_EQ(TopClass(kOtherOwner, kOwner, "m", 1), 0u);
  // Per principal, a worker does keep its own caller's state between requests (documented).
  EXPECT_EQ(TopClass(kOwner, "", "m", 1), 2u);
  EXPECT_EQ(models_->workers().live_workers(ModelBlobId(kOwner, "m")), 2u);
}

TEST_F(ModelAccessTest, PerRequestIsolationStartsAFreshWorkerEveryTime) {
  StartModels(PredictionIsolation::kPerRequest);
  TrainModel("m", "remember_inputs");
  EXPECT_EQ(TopClass(kOwner, "", "m", 2), 2u);
  EXPECT_EQ(TopClass(kOwner, "", "m", 1), 1u);  // nothing of the first request survived
  EXPECT_EQ(TopClass(kOwner, "", "m", 0), 0u);
  EXPECT_EQ(models_->workers().live_workers(ModelBlobId(kOwner, "m")), 0u);
}

// Defect: DeleteModel dropped the cached worker before deleting the blob, so a Predict in
// between rebuilt it: the deleted model's parameters stayed in a live worker.
TEST_F(ModelAccessTest, DeleteLeavesNoWorkerHoldingTheModelWhilePredictsRace) {
  StartModels(PredictionIsolation::kPerPrincipal);
  TrainModel("m", "epochs 1");
  const std::string id = ModelBlobId(kOwner, "m");
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::thread hammer([&] {
    while (!stop) {
      auto out = models_->Predict(kOwner, "", "m", {Sample(1)}, 1);
      if (out.ok()) ++answered;
    }
  });
  ASSERT_TRUE(testing::Eventually([&] { return answered > 3; }));
  ASSERT_TRUE(models_->DeleteModel(kOwner, "m").ok());
  EXPECT_EQ(models_->workers().live_workers(id), 0u);
  // Requests still racing in fail; none of them starts a worker for the deleted model.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  hammer.join();
  EXPECT_EQ(models_->workers().live_workers(id), 0u);
  EXPECT_EQ(models_->Predict(kOwner, "", "m", {Sample(1)}, 1).status().code(),
            StatusCode::kNotFound);
}

// Defect: a request larger than what remained read as "its query budget is spent".
TEST_F(ModelAccessTest, ABudgetTooSmallForTheRequestSaysWhatRemains) {
  StartModels(PredictionIsolation::kPerPrincipal);
  TrainModel("m", "epochs 1");
  ModelLimitsUpdate limit;
  limit.query_budget = 5;
  ASSERT_TRUE(models_->SetModelLimits(kOwner, "m", limit).ok());
  std::vector<std::string> eight(8, Sample(1));
  auto refused = models_->Predict(kOwner, "", "m", eight, 0);
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("has 5 of its 5 queries left"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("asks for 8"), std::string::npos);
  EXPECT_EQ(refused.status().message().find("is spent"), std::string::npos);
  // Nothing was charged: five still pass, then the budget is used up.
  std::vector<std::string> five(5, Sample(1));
  ASSERT_TRUE(models_->Predict(kOwner, "", "m", five, 0).ok());
  auto spent = models_->Predict(kOwner, "", "m", {Sample(1)}, 0);
  ASSERT_EQ(spent.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(spent.status().message().find("used all 5"), std::string::npos)
      << spent.status().message();
}

}  // namespace
}  // namespace chiron::jobs
