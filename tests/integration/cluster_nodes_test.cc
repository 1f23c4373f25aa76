// The nodes an owner sees before any data moves (issue 14): real chirond processes (sim
// platform), each with its own state and sim root, joined with --node-listen / --peers /
// --cluster-policy, and the owner's `chiron attest` listing every other node of the cluster with
// each certificate verified under the owner's own policy. As an attacker would set it up: a node
// whose root the cluster policy does not trust, a node that does not accept the asking node, an
// address where nothing listens.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/cluster_support.h"
#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

class ClusterNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chiron-cluster-nodes-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ChirondProcess> StartNode(const std::string& name, int node_port,
                                            const std::string& cluster_policy,
                                            const std::vector<int>& peers = {}) {
    std::vector<std::string> args = {"--node-listen", Loopback(node_port), "--cluster-policy",
                                     cluster_policy};
    if (!peers.empty()) {
      std::string list;
      for (int p : peers) list += (list.empty() ? "" : ",") + Loopback(p);
      args.push_back("--peers");
      args.push_back(list);
    }
    return std::make_unique<ChirondProcess>(dir_ + "/" + name, args);
  }

  CommandResult Attest(const ChirondProcess& server, const std::string& policy) {
    return RunCommand({BinaryPath("chiron"), "attest", "--server", server.address(), "--policy",
                       policy});
  }

  // The line of `out` that names `address`.
  static std::string LineOf(const std::string& out, int port) {
    const std::string needle = "  " + Loopback(port) + "  ";
    const size_t at = out.find(needle);
    if (at == std::string::npos) return "";
    return out.substr(at, out.find('\n', at) - at);
  }

  std::string dir_;
};

TEST_F(ClusterNodesTest, TheOwnerSeesEveryNodeVerifiedUnderItsOwnPolicy) {
  const nlohmann::json a = InitialiseNode(dir_, "a"), b = InitialiseNode(dir_, "b"),
                       c = InitialiseNode(dir_, "c"), d = InitialiseNode(dir_, "d");
  // The operator's cluster: a, b and d; d's own policy trusts only itself and b, not a. c is not
  // trusted.
  const std::string cluster = WritePolicyTrusting(dir_, "cluster.json", {a, b, d});
  const std::string d_policy = WritePolicyTrusting(dir_, "d-cluster.json", {b, d});
  const int a_port = FreeLoopbackPort(), b_port = FreeLoopbackPort(), c_port = FreeLoopbackPort(),
            d_port = FreeLoopbackPort(), nothing = FreeLoopbackPort();
  ASSERT_TRUE(a_port && b_port && c_port && d_port && nothing);
  auto node_b = StartNode("b", b_port, cluster);
  auto node_c = StartNode("c", c_port, cluster);
  auto node_d = StartNode("d", d_port, d_policy);
  auto node_a = StartNode("a", a_port, cluster, {b_port, c_port, d_port, nothing});

  // An owner who trusts a and b.
  const std::string owner_ab = WritePolicyTrusting(dir_, "owner-ab.json", {a, b});
  CommandResult attest = Attest(*node_a, owner_ab);
  ASSERT_EQ(attest.exit_code, 0) << attest.err;
  EXPECT_NE(attest.out.find("cluster: this server's peer listener is " + Loopback(a_port)),
            std::string::npos)
      << attest.out;
  EXPECT_NE(attest.out.find("4 other node(s)"), std::string::npos) << attest.out;
  const std::string line_b = LineOf(attest.out, b_port);
  EXPECT_NE(line_b.find("verified: sim (INSECURE sim)"), std::string::npos) << attest.out;
  // c: its evidence is signed by a root the cluster policy does not trust.
  const std::string line_c = LineOf(attest.out, c_port);
  EXPECT_NE(line_c.find("NOT USABLE: its evidence does not verify under the cluster policy"),
            std::string::npos)
      << attest.out;
  // d: a attests d fine, but d's cluster policy does not accept a.
  const std::string line_d = LineOf(attest.out, d_port);
  EXPECT_NE(line_d.find("NOT USABLE: it refused this node"), std::string::npos) << attest.out;
  const std::string line_nothing = LineOf(attest.out, nothing);
  EXPECT_NE(line_nothing.find("NOT USABLE: unreachable"), std::string::npos) << attest.out;

  // An owner who trusts only a: b passes the operator's cluster policy but not the owner's.
  const std::string owner_a = WritePolicyTrusting(dir_, "owner-a.json", {a});
  attest = Attest(*node_a, owner_a);
  ASSERT_EQ(attest.exit_code, 0) << attest.err;
  EXPECT_NE(LineOf(attest.out, b_port).find("REFUSED by your policy"), std::string::npos)
      << attest.out;
}

TEST_F(ClusterNodesTest, ANodeAloneListsNoNodesAndClusterFlagsNeedEachOther) {
  ChirondProcess alone(dir_);
  CommandResult attest = Attest(alone, alone.policy_path());
  ASSERT_EQ(attest.exit_code, 0) << attest.err;
  EXPECT_EQ(attest.out.find("cluster:"), std::string::npos) << attest.out;

  CommandResult refused = RunCommand({BinaryPath("chirond"), "--state", dir_ + "/other",
                                      "--peers", "127.0.0.1:7600"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("need --node-listen"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace chiron::testing
