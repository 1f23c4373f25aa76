// A job on several chirond nodes, end to end (issue 14): real chirond processes (sim platform)
// with the real sandboxed chiron-worker, each with its own state, sim root and loopback ports,
// joined with --node-listen / --peers / --cluster-policy. The owner trains with
// `chiron train --nodes 2`: only nodes whose certificates pass the owner's own policy receive a
// shard; the job's view and the owner's audit chain name every node that got one; the peer keeps
// no plaintext on disk. As an attacker or an unlucky operator would try it: an owner whose policy
// does not trust the peer (nothing leaves the node), and the peer SIGKILLed mid-job (the job is
// dispatched again when it returns and ends with a model).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_support.h"
#include "tests/integration/process.h"
#include "tests/integration/tcp_relay.h"
#include "tests/integration/test_files.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

class ClusterTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chiron-cluster-train-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    ASSERT_TRUE(fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
        << "install Debian's dataset-fashion-mnist";
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const char* name : {"a", "b"}) {
        std::cout << "chirond " << name << "'s log:\n"
                  << ReadText(dir_ + "/" + name + "/chirond.log");
      }
    }
    a_.reset();
    b_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<ChirondProcess> StartNode(const std::string& name, int node_port,
                                            const std::vector<int>& peers,
                                            const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--node-listen", Loopback(node_port),  "--cluster-policy",
                                     cluster_policy_, "--checkpoint-every", "20"};
    std::string list;
    for (int p : peers) list += (list.empty() ? "" : ",") + Loopback(p);
    if (!list.empty()) {
      args.push_back("--peers");
      args.push_back(list);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ChirondProcess>(dir_ + "/" + name, args, BinaryPath("chiron-worker"));
  }

  // Both nodes, a leading (the owner's server) with b as its peer; b lists a too.
  // With `relay`, a reaches b through a recording TCP relay (b's address in a's --peers is the
  // relay's): everything a sends b, the shard included, can be searched for plaintext.
  // `b_extra`: more arguments for b.
  void StartCluster(bool relay = false, const std::vector<std::string>& b_extra = {}) {
    const nlohmann::json a = InitialiseNode(dir_, "a", {}, BinaryPath("chiron-worker")),
                         b = InitialiseNode(dir_, "b", {}, BinaryPath("chiron-worker"));
    a_policy_ = WritePolicyTrusting(dir_, "owner-a.json", {a});
    ab_policy_ = WritePolicyTrusting(dir_, "owner-ab.json", {a, b});
    cluster_policy_ = WritePolicyTrusting(dir_, "cluster.json", {a, b});
    a_node_ = FreeLoopbackPort();
    b_node_ = FreeLoopbackPort();
    ASSERT_TRUE(a_node_ && b_node_);
    b_ = StartNode("b", b_node_, {a_node_}, b_extra);
    int b_seen_by_a = b_node_;
    if (relay) {
      relay_ = std::make_unique<TcpRelay>(b_node_, UINT64_MAX, /*record=*/true);
      b_seen_by_a = relay_->port();
    }
    b_address_ = Loopback(b_seen_by_a);
    a_ = StartNode("a", a_node_, {b_seen_by_a});
  }

  CommandResult Owner(const std::string& profile, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/" + profile,
                                     "--server", a_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // Waits until `path` contains `text` (a log line), at most `seconds`.
  static bool WaitForText(const std::string& path, const std::string& text, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (ReadText(path).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // True if any file under `root` contains `needle`.
  static bool AnyFileContains(const std::string& root, const std::string& needle) {
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file() && ReadText(entry.path()).find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  std::string dir_;
  std::string cluster_policy_, a_policy_, ab_policy_;
  int a_node_ = 0, b_node_ = 0;
  std::string b_address_;  // b's peer listener as a dials it
  std::unique_ptr<TcpRelay> relay_;
  std::unique_ptr<ChirondProcess> a_, b_;
};

TEST_F(ClusterTrainTest, TwoNodesTrainOneModelAndOnlyApprovedNodesGetAShard) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*relay=*/true));
  const std::string images = WriteFashionSubset(dir_, "train", "train", 2000);
  ASSERT_FALSE(images.empty());

  // An owner whose policy trusts only a: b is refused by the owner's own check, nothing starts.
  ASSERT_EQ(Owner("carol", {"init", "--name", "carol", "--policy", a_policy_}).exit_code, 0);
  ASSERT_EQ(Owner("carol", {"dataset", "upload", images, "--name", "fm"}).exit_code, 0);
  auto refused = Owner("carol", {"train", "--dataset", "fm", "--recipe", "mlp", "--model", "m",
                                 "--epochs", "1", "--nodes", "2"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("REFUSED by your policy"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("needs 1 other nodes that pass your policy, and 0 of the 1"),
            std::string::npos)
      << refused.err;
  auto carol_jobs = Owner("carol", {"job", "list", "--json"});
  ASSERT_EQ(carol_jobs.exit_code, 0) << carol_jobs.err;
  EXPECT_TRUE(nlohmann::json::parse(carol_jobs.out).empty()) << carol_jobs.out;
  EXPECT_EQ(ReadText(b_->log_path()).find("peer_job.accepted"), std::string::npos);

  // An owner who trusts both: the job trains on a and b.
  ASSERT_EQ(Owner("alice", {"init", "--name", "alice", "--policy", ab_policy_}).exit_code, 0);
  ASSERT_EQ(Owner("alice", {"dataset", "upload", images, "--name", "fm"}).exit_code, 0);
  auto train = Owner("alice", {"train", "--dataset", "fm", "--recipe", "mlp", "--model", "fm2",
                               "--epochs", "2", "--seed", "3", "--nodes", "2"});
  ASSERT_EQ(train.exit_code, 0) << train.out << train.err;
  EXPECT_NE(train.out.find("on 2 nodes"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("trained on 2 nodes"), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("rank 1  " + b_address_), std::string::npos) << train.out;
  EXPECT_NE(train.out.find("validation accuracy:"), std::string::npos) << train.out;

  auto jobs = Owner("alice", {"job", "list", "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  const nlohmann::json job = nlohmann::json::parse(jobs.out).at(0);
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(job["dispatches"], 1);
  ASSERT_EQ(job["nodes"].size(), 2u) << jobs.out;
  EXPECT_EQ(job["nodes"][0]["address"], Loopback(a_node_));
  EXPECT_EQ(job["nodes"][1]["address"], b_address_);
  // Each node received its shard, together the whole dataset, once.
  EXPECT_EQ(job["nodes"][0]["records"].get<uint64_t>() + job["nodes"][1]["records"].get<uint64_t>(),
            2000u);
  EXPECT_EQ(job["nodes"][1]["records"], 1000u);
  // The model learned (10 classes: chance is 0.1).
  EXPECT_GT(job["history"].back()["validation_accuracy"].get<double>(), 0.5) << jobs.out;

  // The owner's audit chain names the node that received a shard and its key.
  auto audit = Owner("alice", {"audit", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_NE(audit.out.find("dataset.shard_sent"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("node=" + b_address_), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("key=" + job["nodes"][1]["key_id"].get<std::string>()),
            std::string::npos)
      << audit.out;

  // The model answers on the node the owner talks to.
  auto predict =
      Owner("alice", {"predict", "--model", "fm2", "--idx", images, "--count", "5", "--json"});
  EXPECT_EQ(predict.exit_code, 0) << predict.err;

  // b trained its rank and kept nothing of the plaintext: no 64-byte run of b's shard (records
  // 1000..1999 of the file) is in any file of its state.
  EXPECT_TRUE(WaitForText(b_->log_path(), "peer_job.finished", 10));
  const std::string b_log = ReadText(b_->log_path());
  EXPECT_NE(b_log.find("failure=none detail=\"\""), std::string::npos) << b_log;
  const std::string pixels = ReadText(images).substr(16);
  // Nor did any of it cross the wire in clear: what a sent b (the offer with the shard, about
  // 785 KB) is TLS records from the first byte, and holds no 64-byte run of the shard.
  const std::string wire = relay_->recorded();
  EXPECT_GT(wire.size(), 1000u * 785u);
  ASSERT_GE(wire.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(wire[0]), 0x16) << "a TLS handshake record first";
  EXPECT_EQ(static_cast<uint8_t>(wire[1]), 0x03);
  for (uint32_t sample : {1000u, 1500u, 1999u}) {
    const std::string window = pixels.substr(sample * 784 + 300, 64);
    EXPECT_FALSE(AnyFileContains(dir_ + "/b", window)) << "sample " << sample;
    EXPECT_EQ(wire.find(window), std::string::npos) << "sample " << sample << " on the wire";
  }
}

TEST_F(ClusterTrainTest, APeerKilledMidJobRejoinsAndTheJobEndsWithAModel) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  const std::string images = WriteFashionSubset(dir_, "train", "train", 6000);
  ASSERT_FALSE(images.empty());
  ASSERT_EQ(Owner("alice", {"init", "--name", "alice", "--policy", ab_policy_}).exit_code, 0);
  ASSERT_EQ(Owner("alice", {"dataset", "upload", images, "--name", "fm"}).exit_code, 0);
  // Asynchronous (staleness 1): its drain points are where checkpoints are taken, so it resumes
  // like the synchronous mode.
  auto started =
      Owner("alice", {"train", "--dataset", "fm", "--recipe", "mlp", "--model", "k", "--epochs",
                      "6", "--nodes", "2", "--staleness", "1", "--detach", "--json"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string job_id = nlohmann::json::parse(started.out)["job_id"];

  // b is killed once the job has finished an epoch (checkpoints every 20 steps, an epoch is 85),
  // then comes back (same state, same ports).
  ASSERT_TRUE(WaitForText(b_->log_path(), "peer_job.accepted", 60));
  for (int i = 0; i < 600; ++i) {
    auto jobs = Owner("alice", {"job", "list", "--json"});
    if (jobs.exit_code == 0 && nlohmann::json::parse(jobs.out).at(0)["epochs_done"] >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(::kill(b_->pid(), SIGKILL), 0);
  b_.reset();
  fs::remove(dir_ + "/b/port");  // the restart writes its own
  b_ = StartNode("b", b_node_, {a_node_});

  auto watched = Owner("alice", {"job", "watch", job_id, "--json"});
  ASSERT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  const nlohmann::json job = nlohmann::json::parse(watched.out);
  EXPECT_EQ(job["state"], "succeeded") << watched.out;
  EXPECT_EQ(job["epochs_done"], 6);
  EXPECT_EQ(job["staleness"], 1);
  // The owner sees that the job was handed to its nodes more than once.
  EXPECT_GE(job["dispatches"].get<int>(), 2) << watched.out;
  const std::string a_log = ReadText(a_->log_path());
  EXPECT_NE(a_log.find("job.redispatch"), std::string::npos);
  // Whether the ranks resumed from a common checkpoint depends on how far the job was when b
  // died (checkpoints every 200 steps); either way the job ends with all its epochs.
  std::cout << "after the kill the job "
            << (a_log.find("event=job.restored") != std::string::npos
                    ? "resumed from its ranks' common checkpoint"
                    : "started afresh (no common checkpoint yet)")
            << "\n";
  // The audit chain shows the shard was sent again (two dispatches to b).
  auto audit = Owner("alice", {"audit", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  size_t sent = 0;
  for (size_t at = audit.out.find("dataset.shard_sent"); at != std::string::npos;
       at = audit.out.find("dataset.shard_sent", at + 1)) {
    ++sent;
  }
  EXPECT_GE(sent, 2u) << audit.out;
}

// b's operator allows jobs only 64 MiB, less than the worker needs: b's worker is killed for its
// memory. b tells the leader, which ends the job with that category at once instead of
// dispatching it again for minutes; the owner sees why.
TEST_F(ClusterTrainTest, APeerWhoseWorkerFailsEndsTheJobWithItsFailure) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(false, {"--max-job-memory", "64M"}));
  const std::string images = WriteFashionSubset(dir_, "train", "train", 1000);
  ASSERT_FALSE(images.empty());
  ASSERT_EQ(Owner("alice", {"init", "--name", "alice", "--policy", ab_policy_}).exit_code, 0);
  ASSERT_EQ(Owner("alice", {"dataset", "upload", images, "--name", "fm"}).exit_code, 0);
  const auto started = std::chrono::steady_clock::now();
  auto train = Owner("alice", {"train", "--dataset", "fm", "--recipe", "mlp", "--model", "m",
                               "--epochs", "1", "--nodes", "2", "--json"});
  EXPECT_EQ(train.exit_code, 6) << train.out << train.err;
  const nlohmann::json job = nlohmann::json::parse(train.out);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_EQ(job["failure"], "out-of-memory") << train.out;
  EXPECT_EQ(job["dispatches"], 1) << "no second dispatch";
  EXPECT_NE(ReadText(a_->log_path()).find("event=job.rank_failed"), std::string::npos);
  // Well within the first retry wait plus the second (2 s + 4 s); without the report the
  // leader would keep dispatching for about four minutes.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(120));
}

}  // namespace
}  // namespace chiron::testing
