// Store keys for nodes whose platform has no sealing key (issue 14, "Keys on real TEEs"): TDX
// guests (platform tsm) get none, so a node's store key comes from the cluster, released over
// mutual RA-TLS to attested peers only. Real chirond processes on the sim platform started with
// --sim-no-sealing, which makes DeriveSealingKey answer as tsm does (the fake configfs tree of
// tsm_platform_test yields no evidence a peer could verify, so the nodes here are sim nodes
// without sealing). What is tried: the cluster's first node makes the key, a second node takes it
// and keeps a store that survives its SIGKILL and restart, a node alone and an untrusted node get
// no key and say why, and a cluster whose every node stopped cannot open its stores again.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/cluster_support.h"
#include "tests/integration/process.h"
#include "tests/integration/test_files.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

class ClusterStoreKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chiron-store-key-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> ClusterArgs(int node_port, int peer_port, const std::string& mode) {
    return {"--sim-no-sealing", "--node-listen",       Loopback(node_port),
            "--peers",          Loopback(peer_port),   "--cluster-policy",
            cluster_policy_,    "--cluster-store-key", mode};
  }

  // chirond for `name` expected to refuse to start: its exit code and stderr.
  CommandResult StartRefused(const std::string& name, std::vector<std::string> extra) {
    const std::string dir = dir_ + "/" + name;
    std::vector<std::string> argv = {BinaryPath("chirond"),
                                     "--platform",
                                     "sim",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--state",
                                     dir + "/state",
                                     "--worker",
                                     dir + "/chiron-worker",
                                     "--sandbox-policy",
                                     dir + "/sandbox-policy.txt",
                                     "--recipes-dir",
                                     dir + "/no-recipes"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  CommandResult Owner(const ChirondProcess& server, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/alice", "--server",
                                     server.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::string dir_;
  std::string cluster_policy_;
};

TEST_F(ClusterStoreKeyTest, TheClusterKeepsTheStoreKeyForNodesWithoutSealing) {
  // First starts alone: no sealing, so no store yet.
  const nlohmann::json a = InitialiseNode(dir_, "a", {"--sim-no-sealing"}),
                       b = InitialiseNode(dir_, "b", {"--sim-no-sealing"}),
                       c = InitialiseNode(dir_, "c", {"--sim-no-sealing"});
  EXPECT_NE(ReadText(dir_ + "/a/chirond.log").find("store.unavailable"), std::string::npos);
  cluster_policy_ = WritePolicyTrusting(dir_, "cluster.json", {a, b});  // c is not trusted
  const std::string owner_policy = WritePolicyTrusting(dir_, "owner.json", {b});
  const int a_port = FreeLoopbackPort(), b_port = FreeLoopbackPort(), c_port = FreeLoopbackPort();
  ASSERT_TRUE(a_port && b_port && c_port);

  // b first, with 'peers' and nobody holding a key: it refuses to start, and says what to do.
  CommandResult alone = StartRefused("b", ClusterArgs(b_port, a_port, "peers"));
  EXPECT_EQ(alone.exit_code, 1);
  EXPECT_NE(alone.err.find("no peer released the cluster store key"), std::string::npos)
      << alone.err;
  EXPECT_NE(alone.err.find("--cluster-store-key new"), std::string::npos) << alone.err;

  // a is the cluster's first node: no peer holds a key, it makes one.
  auto node_a = std::make_unique<ChirondProcess>(dir_ + "/a", ClusterArgs(a_port, b_port, "new"));
  EXPECT_NE(ReadText(node_a->log_path()).find("event=cluster.store_key source=new"),
            std::string::npos);
  // b takes it from a and keeps a store under it.
  auto node_b = std::make_unique<ChirondProcess>(dir_ + "/b", ClusterArgs(b_port, a_port, "peers"));
  EXPECT_NE(ReadText(node_b->log_path()).find("event=cluster.store_key source=peer"),
            std::string::npos);
  ASSERT_EQ(Owner(*node_b, {"init", "--name", "alice", "--policy", owner_policy}).exit_code, 0);
  const std::string images = WriteGeneratedIdx(dir_, "gen", 200, 5);
  auto upload = Owner(*node_b, {"dataset", "upload", images, "--name", "kept"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;

  // b is killed and restarts: the key comes from a again, and its store opens with the dataset.
  ASSERT_EQ(::kill(node_b->pid(), SIGKILL), 0);
  node_b.reset();
  fs::remove(dir_ + "/b/port");  // the restart writes its own
  node_b = std::make_unique<ChirondProcess>(dir_ + "/b", ClusterArgs(b_port, a_port, "peers"));
  auto list = Owner(*node_b, {"dataset", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("\"kept\""), std::string::npos) << list.out;

  // c's root is not in the cluster policy: a refuses it the handshake, so it gets no key.
  const std::string c_policy = WritePolicyTrusting(dir_, "c-cluster.json", {a, c});
  CommandResult untrusted =
      StartRefused("c", {"--sim-no-sealing", "--node-listen", Loopback(c_port), "--peers",
                         Loopback(a_port), "--cluster-policy", c_policy});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.err.find("no peer released the cluster store key"), std::string::npos)
      << untrusted.err;

  // Every node stops: the key existed only in their memory. a, started again as the first node,
  // makes a new key, and its store (sealed under the old one) does not open: stated, not hidden.
  node_b.reset();
  EXPECT_EQ(node_a->Terminate(), 0);
  node_a.reset();
  CommandResult lost = StartRefused("a", ClusterArgs(a_port, b_port, "new"));
  EXPECT_EQ(lost.exit_code, 1);
  EXPECT_NE(lost.err.find("sealed with a different key"), std::string::npos) << lost.err;
}

}  // namespace
}  // namespace chiron::testing
