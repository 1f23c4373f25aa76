// "One recipe stalls everyone", attacked end to end through the real binaries: a real chirond
// (sim platform) running the torch-free scripted worker (tests/workers), a provider's recipe that
// sleeps ten minutes in every step, and two owners.
//
// Before: one training thread, cancel checked only at checkpoints, SIGTERM joined the training
// thread: the stuck recipe held every owner's queue, `chiron job cancel` did nothing for minutes
// and chirond would not stop. Now: another owner's job trains beside it (slots); the dataset it
// reads cannot be deleted from under it (unless --force, which cancels it first); cancel takes
// effect at once; SIGTERM stops chirond at once and the job resumes at the next start.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/test_files.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class StallingRecipeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-stalling-recipe"); }
  void TearDown() override {
    if (HasFailure() && server_) std::cout << "chirond's log:\n" << ReadText(server_->log_path());
    server_.reset();
    fs::remove_all(dir_);
  }

  void StartServer() {
    // A restart writes a new port file: the old one must not be read as the new server's.
    server_.reset();
    fs::remove(dir_ + "/port");
    server_ = std::make_unique<ChirondProcess>(
        dir_, std::vector<std::string>{"--training-slots", "2"}, BinaryPath("scripted_worker"));
    ASSERT_GT(server_->port(), 0);
  }

  CommandResult Run(const std::string& program, const std::string& profile,
                    std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir_ + "/" + profile,
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // The owner's view of one job (chiron job list --json).
  nlohmann::json Job(const std::string& owner, const std::string& job_id) {
    auto list = Run("chiron", owner, {"job", "list", "--json"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    if (list.exit_code != 0) {
      ADD_FAILURE() << "chirond's log:\n" << ReadText(server_->log_path());
      return nlohmann::json::object();
    }
    auto jobs = nlohmann::json::parse(list.out, nullptr, false);
    if (jobs.is_array()) {
      for (const auto& job : jobs) {
        if (job.value("job_id", "") == job_id) return job;
      }
    }
    return nlohmann::json::object();
  }

  // Polls until the job is in `state` (a liveness bound, not a timing assertion).
  bool WaitState(const std::string& owner, const std::string& job_id, const std::string& state,
                 std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until && !HasFailure()) {
      if (Job(owner, job_id).value("state", "") == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  std::string StartStuckJob(const std::string& owner, const std::string& model) {
    auto train = Run("chiron", owner, {"train", "--dataset", "digits", "--recipe", "stuck",
                                       "--model", model, "--detach", "--json"});
    EXPECT_EQ(train.exit_code, 0) << train.err;
    auto view = nlohmann::json::parse(train.out, nullptr, false);
    std::string job_id = view.is_object() ? view.value("job_id", "") : "";
    EXPECT_FALSE(job_id.empty()) << train.out;
    // Running, with the worker in its first (ten-minute) step.
    EXPECT_TRUE(WaitState(owner, job_id, "running")) << job_id;
    return job_id;
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(StallingRecipeTest, AStuckRecipeHoldsNoOneElseAndStopsAtOnce) {
  StartServer();
  for (auto [program, profile] :
       {std::pair<const char*, const char*>{"chiron", "alice"}, {"chiron", "bob"},
        {"chiron-operator", "acme"}}) {
    auto init = Run(program, profile, {"init", "--name", profile, "--policy",
                                       server_->policy_path()});
    ASSERT_EQ(init.exit_code, 0) << init.err;
  }
  std::string images = WriteGeneratedIdx(dir_, "digits", 300, 3);
  for (const char* owner : {"alice", "bob"}) {
    auto upload = Run("chiron", owner, {"dataset", "upload", images, "--name", "digits"});
    ASSERT_EQ(upload.exit_code, 0) << upload.err;
  }
  for (auto [name, script] :
       {std::pair<const char*, const char*>{"stuck", "sleep_per_step_ms 600000"},
        {"quick", "epochs 1\nbatch_size 32"}}) {
    std::string path = dir_ + "/" + name + ".so";
    std::ofstream(path, std::ios::binary) << ScriptedRecipe(script);
    auto registered = Run("chiron-operator", "acme",
                          {"recipe", "register", path, "--name", name, "--version", "1"});
    ASSERT_EQ(registered.exit_code, 0) << registered.err;
  }

  // Alice's job is stuck in a ten-minute step. Bob's job trains beside it and finishes.
  std::string stuck = StartStuckJob("alice", "a1");
  auto bob = Run("chiron", "bob", {"train", "--dataset", "digits", "--recipe", "quick",
                                   "--model", "b1", "--json"});
  EXPECT_EQ(bob.exit_code, 0) << bob.err;
  EXPECT_EQ(Job("bob", nlohmann::json::parse(bob.out, nullptr, false).value("job_id", ""))
                .value("state", ""),
            "succeeded");

  // The dataset the stuck job reads cannot be deleted from under it...
  auto refused = Run("chiron", "alice", {"dataset", "delete", "digits"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find(stuck), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(Job("alice", stuck).value("state", ""), "running");
  // ...unless --force, which cancels the job first (killing its worker in mid-step).
  const auto forced_at = Clock::now();
  auto forced = Run("chiron", "alice", {"dataset", "delete", "digits", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("cancelled job " + stuck), std::string::npos) << forced.out;
  EXPECT_EQ(Job("alice", stuck).value("state", ""), "cancelled");
  EXPECT_LT(Clock::now() - forced_at, std::chrono::minutes(1));  // the step sleeps ten

  // `chiron job cancel` of a stuck job takes effect at once.
  auto again = Run("chiron", "alice", {"dataset", "upload", images, "--name", "digits"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::string second = StartStuckJob("alice", "a2");
  auto cancel = Run("chiron", "alice", {"job", "cancel", second});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_TRUE(WaitState("alice", second, "cancelled", std::chrono::seconds(30)));

  // SIGTERM with a stuck job: chirond stops at once, exit 0; the job resumes at the next start.
  std::string third = StartStuckJob("alice", "a3");
  const auto term_at = Clock::now();
  EXPECT_EQ(server_->Terminate(), 0);
  EXPECT_LT(Clock::now() - term_at, std::chrono::seconds(30));
  EXPECT_NE(ReadText(server_->log_path()).find("job.suspended"), std::string::npos);
  StartServer();
  EXPECT_TRUE(WaitState("alice", third, "running"));
  EXPECT_TRUE([&] {
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until) {
      if (Job("alice", third).value("batches_total", 0) > 0) return true;  // a new run started
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }());
  EXPECT_EQ(Run("chiron", "alice", {"job", "cancel", third}).exit_code, 0);
  EXPECT_TRUE(WaitState("alice", third, "cancelled", std::chrono::seconds(30)));
}

}  // namespace
}  // namespace chiron::testing
