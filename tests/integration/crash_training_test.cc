// DESIGN.md: "Crash at any point (kill -9) loses no acknowledged upload, model or audit record."
// The upload half is dataset_cli_test's; this is the training half, through the real binaries
// (chirond + the sandboxed chiron-worker + the built-in LeNet) on real Fashion-MNIST:
//   1. chirond is SIGKILLed while a job trains. Its sandboxed workers must die with it (a worker
//      outliving its runtime would keep the decrypted dataset alive in its memfd, unsupervised).
//   2. chirond restarted on the same state directory resumes the job from its last sealed
//      checkpoint and finishes it.
//   3. chirond is SIGKILLed again the moment the owner has seen the job succeed. After a restart
//      the model is there and answers predictions, the job still shows its metrics, and the
//      owner's audit chain verifies end to end (nothing acknowledged was lost or reordered).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kImages[] = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
constexpr char kLabels[] = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

// All descendants of `pid` (from /proc/PID/task/*/children, recursively).
std::set<pid_t> Descendants(pid_t pid) {
  std::set<pid_t> found;
  std::vector<pid_t> pending = {pid};
  while (!pending.empty()) {
    pid_t parent = pending.back();
    pending.pop_back();
    std::error_code ec;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(parent) + "/task", ec)) {
      std::ifstream children(task.path() / "children");
      pid_t child = 0;
      while (children >> child) {
        if (found.insert(child).second) pending.push_back(child);
      }
    }
  }
  return found;
}

// Whether `pid` is a live process (not gone, not a zombie waiting for its reaper).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

class CrashTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-crash-train"); }
  void TearDown() override {
    if (HasFailure() && server_) {
      std::cout << "chirond's log (" << server_->log_path() << "):\n"
                << ReadText(server_->log_path());
    }
    server_.reset();
    fs::remove_all(dir_);
  }

  // (Re)starts chirond with the real worker on the same state directory.
  void StartServer() {
    server_.reset();
    fs::remove(dir_ + "/port");  // so the new process's port is read, not the old one
    server_ = std::make_unique<ChirondProcess>(dir_, std::vector<std::string>{},
                                               BinaryPath("chiron-worker"));
    ASSERT_GT(server_->port(), 0);
  }

  CommandResult Alice(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/alice",
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  nlohmann::json Json(const CommandResult& result) {
    EXPECT_EQ(result.exit_code, 0) << result.err;
    auto j = nlohmann::json::parse(result.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << result.out;
    return j;
  }

  // The job `id` from `chiron job list --json`.
  nlohmann::json Job(const std::string& id) {
    auto list = Json(Alice({"job", "list", "--json"}));
    for (const auto& job : list) {
      if (job["job_id"] == id) return job;
    }
    ADD_FAILURE() << "job " << id << " not listed";
    return {};
  }

  // SIGKILLs chirond; its workers must be gone within a few seconds.
  void KillServer() {
    std::set<pid_t> workers = Descendants(server_->pid());
    ::kill(server_->pid(), SIGKILL);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (pid_t worker : workers) {
      while (Alive(worker) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      EXPECT_FALSE(Alive(worker)) << "process " << worker
                                  << " of the SIGKILLed chirond is still running";
    }
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(CrashTrainingTest, SigkillDuringAndAfterTrainingLosesNoModelOrAuditRecord) {
  ASSERT_TRUE(fs::exists(kImages)) << "install Debian's dataset-fashion-mnist";
  StartServer();
  auto init = Alice({"init", "--name", "alice", "--policy", server_->policy_path()});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  auto upload = Alice({"dataset", "upload", kImages, "--name", "fm"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;

  auto started = Json(Alice({"train", "--dataset", "fm", "--recipe", "lenet", "--model", "m1",
                             "--epochs", "3", "--seed", "5", "--detach", "--json"}));
  std::string job_id = started["job_id"];
  ASSERT_FALSE(job_id.empty()) << started.dump();

  // 1. Kill once the job has checkpointed at least one epoch and while its worker runs.
  std::set<pid_t> workers;
  auto deadline = Clock::now() + std::chrono::minutes(3);
  for (;;) {
    auto job = Job(job_id);
    ASSERT_NE(job["state"], "succeeded") << "the job finished before the kill: " << job.dump();
    ASSERT_NE(job["state"], "failed") << job.dump();
    workers = Descendants(server_->pid());
    if (job["epochs_done"].get<int>() >= 1 && !workers.empty()) break;
    ASSERT_LT(Clock::now(), deadline) << "no epoch finished in 3 minutes: " << job.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  KillServer();

  // 2. The restarted runtime resumes the job and finishes it.
  StartServer();
  auto watched = Alice({"job", "watch", job_id, "--json"});
  ASSERT_EQ(watched.exit_code, 0) << watched.err;
  auto finished = Json(watched);
  EXPECT_EQ(finished["state"], "succeeded") << finished.dump();
  EXPECT_EQ(finished["epochs_done"], 3);
  EXPECT_EQ(finished["history"].size(), 3u) << "an epoch's metrics were lost: " << finished.dump();
  double accuracy = finished["validation_accuracy"];
  EXPECT_GT(accuracy, 0.6) << "LeNet after 3 epochs on 9,000 images";

  // 3. Killed right after the owner saw the success: the model and the records survive.
  KillServer();
  StartServer();
  auto job = Job(job_id);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_DOUBLE_EQ(job["validation_accuracy"].get<double>(), accuracy);
  auto models = Json(Alice({"model", "list", "--json"}));
  ASSERT_EQ(models.size(), 1u) << models.dump();
  EXPECT_EQ(models[0]["name"], "m1");
  auto predicted = Json(Alice({"predict", "m1", "--idx", kImages, "--labels", kLabels, "--count",
                               "64", "--json"}));
  ASSERT_FALSE(predicted.is_discarded());
  EXPECT_NE(predicted.dump().find("label"), std::string::npos) << predicted.dump();
  auto audit = Alice({"audit", "--verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  for (const char* event : {"dataset.upload", "train", "predict"}) {
    EXPECT_NE(audit.out.find(event), std::string::npos) << event << " missing in\n" << audit.out;
  }
}

}  // namespace
}  // namespace chiron::testing
