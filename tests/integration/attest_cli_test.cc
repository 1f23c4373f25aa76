// The attestation flow between two real processes over loopback TLS: chirond (sim platform) and
// the chiron CLI, including the hostile cases the owner's client must refuse.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

std::string MakeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "chiron-attest-cli-XXXXXX").string();
  return ::mkdtemp(pattern.data());
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void WriteJson(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

class AttestCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override { fs::remove_all(dir_); }

  CommandResult Chiron(std::vector<std::string> args) {
    args.insert(args.begin(), BinaryPath("chiron"));
    return RunCommand(args);
  }

  std::string dir_;
};

TEST_F(AttestCliTest, AttestsSaveAndReverifyOffline) {
  ChirondProcess server(dir_);
  ASSERT_GT(server.port(), 0);
  std::string saved = dir_ + "/transcript.json";
  auto attest = Chiron({"attest", "--server", server.address(), "--policy", server.policy_path(),
                        "--save", saved});
  ASSERT_EQ(attest.exit_code, 0) << attest.err;
  EXPECT_NE(attest.out.find("verified: yes"), std::string::npos) << attest.out;
  EXPECT_NE(attest.out.find("SIMULATED, INSECURE"), std::string::npos) << attest.out;
  EXPECT_NE(attest.err.find("sim platform"), std::string::npos) << attest.err;

  auto json = Chiron({"attest", "--server", server.address(), "--policy", server.policy_path(),
                      "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto claims = nlohmann::json::parse(json.out);
  EXPECT_EQ(claims["verified"], true);
  EXPECT_EQ(claims["platform"], "sim");
  EXPECT_EQ(claims["simulated"], true);
  EXPECT_EQ(claims["measurement"].get<std::string>().size(), 96u);

  auto offline = Chiron({"evidence", "verify", saved, "--policy", server.policy_path()});
  EXPECT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_NE(offline.out.find("verified: yes"), std::string::npos);

  // A tampered transcript: one hex digit of the evidence changed.
  auto transcript = ReadJson(saved);
  std::string evidence = transcript["evidence"];
  evidence[evidence.size() / 2] = evidence[evidence.size() / 2] == '0' ? '1' : '0';
  transcript["evidence"] = evidence;
  std::string tampered = dir_ + "/tampered.json";
  WriteJson(tampered, transcript);
  auto rejected = Chiron({"evidence", "verify", tampered, "--policy", server.policy_path()});
  EXPECT_EQ(rejected.exit_code, 2);
  EXPECT_NE(rejected.err.find("verification FAILED"), std::string::npos) << rejected.err;

  // The same evidence presented as fresh for another nonce: a replay, rejected.
  transcript = ReadJson(saved);
  transcript["nonce"] = std::string(64, 'a');
  std::string replay = dir_ + "/replay.json";
  WriteJson(replay, transcript);
  auto replayed = Chiron({"evidence", "verify", replay, "--policy", server.policy_path()});
  EXPECT_EQ(replayed.exit_code, 2);
  EXPECT_NE(replayed.err.find("report data mismatch"), std::string::npos) << replayed.err;

  EXPECT_EQ(server.Terminate(), 0);
  std::ifstream log(server.log_path());
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("INSECURE"), std::string::npos);
  EXPECT_NE(text.str().find("server.stopped"), std::string::npos);
}

TEST_F(AttestCliTest, PolicyViolationsExitTwoAndNameTheCheck) {
  ChirondProcess server(dir_);
  ASSERT_GT(server.port(), 0);
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* expected;
  } cases[] = {
      {"min_svn", 99, "security version"},
      {"allowed_measurements",
       nlohmann::json::object({{"sim", nlohmann::json::array({std::string(96, 'a')})}}),
       "measurement"},
      {"trusted_sim_roots", nlohmann::json::array({std::string(64, '1')}), "trusted_sim_roots"},
  };
  for (const auto& c : cases) {
    auto policy = ReadJson(server.policy_path());
    policy[c.field] = c.value;
    std::string path = dir_ + "/policy-" + c.field + ".json";
    WriteJson(path, policy);
    auto result = Chiron({"attest", "--server", server.address(), "--policy", path});
    EXPECT_EQ(result.exit_code, 2) << c.field << ": " << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << c.field << ": " << result.err;
  }
  // After every refused attempt the server still serves a correct client.
  auto ok = Chiron({"attest", "--server", server.address(), "--policy", server.policy_path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(AttestCliTest, DebugRuntimeRejectedByNoDebugPolicy) {
  ChirondProcess server(dir_, {"--sim-debug"});
  ASSERT_GT(server.port(), 0);
  auto policy = ReadJson(server.policy_path());
  EXPECT_EQ(policy["allow_debug"], true);
  auto accepted = Chiron({"attest", "--server", server.address(), "--policy", server.policy_path()});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  policy["allow_debug"] = false;
  std::string strict = dir_ + "/no-debug.json";
  WriteJson(strict, policy);
  auto rejected = Chiron({"attest", "--server", server.address(), "--policy", strict});
  EXPECT_EQ(rejected.exit_code, 2);
  EXPECT_NE(rejected.err.find("debug"), std::string::npos) << rejected.err;
}

TEST_F(AttestCliTest, UnreachableServerExitsThree) {
  ChirondProcess server(dir_);
  ASSERT_GT(server.port(), 0);
  std::string policy = server.policy_path();
  int port = server.port();
  ASSERT_EQ(server.Terminate(), 0);
  auto result = Chiron({"attest", "--server", "127.0.0.1:" + std::to_string(port), "--policy",
                        policy});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("--server"), std::string::npos) << result.err;
}

TEST_F(AttestCliTest, MalformedPolicyAndEvidenceFilesGetClearErrors) {
  std::string policy = dir_ + "/bad-policy.json";
  std::ofstream(policy) << "{\"allowed_platforms\": [\"sim\"], \"min_svm\": 1}";
  auto bad_policy = Chiron({"attest", "--server", "127.0.0.1:1", "--policy", policy});
  EXPECT_NE(bad_policy.exit_code, 0);
  EXPECT_NE(bad_policy.err.find("min_svm"), std::string::npos) << bad_policy.err;

  std::string good_policy = dir_ + "/policy.json";
  nlohmann::json valid = {{"version", 1},
                          {"allowed_platforms", {"sim"}},
                          {"allowed_measurements", {{"sim", {std::string(96, '0')}}}},
                          {"trusted_sim_roots", {std::string(64, '1')}}};
  WriteJson(good_policy, valid);
  std::string garbage = dir_ + "/garbage.bin";
  std::ofstream(garbage) << "not evidence at all";
  auto no_report_data = Chiron({"evidence", "verify", garbage, "--policy", good_policy});
  EXPECT_NE(no_report_data.exit_code, 0);
  EXPECT_NE(no_report_data.err.find("--report-data"), std::string::npos) << no_report_data.err;
  auto garbage_result = Chiron({"evidence", "verify", garbage, "--policy", good_policy,
                                "--report-data", std::string(128, '0')});
  EXPECT_EQ(garbage_result.exit_code, 2);
  EXPECT_NE(garbage_result.err.find("evidence"), std::string::npos) << garbage_result.err;
}

TEST_F(AttestCliTest, EveryCommandHasHelpWithAnExample) {
  for (std::vector<std::string> args : {std::vector<std::string>{"attest", "--help"},
                                        std::vector<std::string>{"evidence", "verify", "--help"}}) {
    auto result = Chiron(args);
    EXPECT_EQ(result.exit_code, 0) << args[0];
    EXPECT_NE(result.out.find("Example"), std::string::npos) << result.out;
  }
  auto daemon = RunCommand({BinaryPath("chirond"), "--help"});
  EXPECT_EQ(daemon.exit_code, 0);
  EXPECT_NE(daemon.out.find("Example"), std::string::npos);
}

}  // namespace
}  // namespace chiron::testing
