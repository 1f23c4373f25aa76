// chirond as an operator runs it: started from a config file (`--config`), whose settings take
// effect (listen address, state directory, port file, the owner quota) and lose to the command
// line; a bad config file stops it with exit 1 and the file and line; the shipped example
// (docs/examples/chirond.conf) is accepted; and SIGTERM in the middle of an upload makes it exit
// 0 promptly, leaving the store consistent (everything acknowledged is kept, the upload resumes,
// the audit chain verifies).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/process.h"
#include "tests/integration/test_files.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

class ChirondLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("chiron-lifecycle"); }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  CommandResult Chiron(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("chiron"), "--profile", dir_ + "/alice",
                                     "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  void InitOwner() {
    auto init = Chiron({"init", "--name", "alice", "--policy", server_->policy_path(), "--force"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(ChirondLifecycleTest, ConfigFileSettingsTakeEffectAndTheCommandLineWins) {
  // The measured components chirond needs: a placeholder worker and the real policy file.
  const std::string worker = dir_ + "/chiron-worker";
  std::ofstream(worker) << "worker under test";
  const std::string sandbox_policy = dir_ + "/sandbox-policy.txt";
  ASSERT_EQ(RunCommand({BinaryPath("chiron_sandbox_policy_gen"), sandbox_policy}).exit_code, 0);
  const std::string state = dir_ + "/state from config";  // blanks inside a value need no quotes
  // No built-in recipes: they would count against the tiny quota below (their owner is
  // chiron-builtin, whose store usage is limited like an owner's).
  const std::string recipes = dir_ + "/no-recipes";
  fs::create_directories(recipes);
  const std::string port_file = dir_ + "/port";
  const std::string policy = dir_ + "/sim-policy.json";
  const std::string config = dir_ + "/chirond.conf";
  std::ofstream(config) << "# written by the test\n"
                        << "platform = sim\n"
                        << "listen = 127.0.0.1:0          # any free port\n"
                        << "state = " << state << "\n"
                        << "recipes-dir = \"" << recipes << "\"  # quoting is optional\n"
                        << "worker = " << worker << "\n"
                        << "sandbox-policy = " << sandbox_policy << "\n"
                        << "port-file = " << port_file << "\n"
                        << "write-sim-policy = " << policy << "\n"
                        << "quota = 4K\n"
                        << "query-budget = 7\n";

  // --print-config: the file's values, the command line's over them.
  auto printed = RunCommand({BinaryPath("chirond"), "--config", config, "--print-config"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_NE(printed.out.find("quota = 4K\n"), std::string::npos) << printed.out;
  EXPECT_NE(printed.out.find("query-budget = 7\n"), std::string::npos) << printed.out;
  EXPECT_NE(printed.out.find("state = " + state + "\n"), std::string::npos) << printed.out;
  auto overridden = RunCommand(
      {BinaryPath("chirond"), "--config", config, "--quota", "1M", "--print-config"});
  ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
  EXPECT_NE(overridden.out.find("quota = 1M\n"), std::string::npos) << overridden.out;

  // Started from the file alone: it listens on the port it wrote, keeps its state where the
  // file says, and enforces the file's 4 KiB owner quota on a 20-image (15.7 kB) upload.
  server_ = std::make_unique<ChirondProcess>(ChirondProcess::ExactArgs{}, dir_,
                                             std::vector<std::string>{"--config", config},
                                             port_file, policy);
  ASSERT_GT(server_->port(), 0);
  EXPECT_TRUE(fs::is_directory(state + "/store")) << ReadText(server_->log_path());
  EXPECT_FALSE(fs::exists(dir_ + "/state"));
  InitOwner();
  const std::string images = WriteGeneratedIdx(dir_, "gen", 20, 1);
  auto refused = Chiron({"dataset", "upload", images, "--name", "small"});
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("of 4096 bytes"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("ask the operator to raise the quota"), std::string::npos);
  EXPECT_EQ(server_->Terminate(), 0);

  // The same file with --quota on the command line: the command line wins.
  fs::remove(port_file);
  server_ = std::make_unique<ChirondProcess>(
      ChirondProcess::ExactArgs{}, dir_,
      std::vector<std::string>{"--config", config, "--quota", "1M"}, port_file, policy);
  ASSERT_GT(server_->port(), 0);
  auto accepted = Chiron({"dataset", "upload", images, "--name", "small"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_EQ(server_->Terminate(), 0);
}

TEST_F(ChirondLifecycleTest, BadConfigFileStopsChirondWithFileLineAndWayOut) {
  const std::string config = dir_ + "/bad.conf";
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] = {
      {"state = /tmp/x\n# comment\nlissten = 127.0.0.1:0\n",
       ":3: unknown setting 'lissten' (did you mean 'listen'?)"},
      {"state = /tmp/x\nworker-threads = 0\n", ":2: bad value for 'worker-threads'"},
      {"state = /tmp/x\nstate = /tmp/y\n", ":2: 'state' is already set on line 1"},
      {"quota = lots\n", ":1: bad value for 'quota': --quota: 'lots' is not a size"},
  };
  for (const Case& c : cases) {
    std::ofstream(config) << c.text;
    auto result = RunCommand({BinaryPath("chirond"), "--config", config});
    EXPECT_EQ(result.exit_code, 1) << c.text;
    EXPECT_NE(result.err.find("chirond: " + config + c.expected), std::string::npos)
        << c.text << " -> " << result.err;
  }
  auto missing = RunCommand({BinaryPath("chirond"), "--config", dir_ + "/none.conf"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("none.conf"), std::string::npos) << missing.err;
  auto no_state = RunCommand({BinaryPath("chirond"), "--platform", "sim"});
  EXPECT_EQ(no_state.exit_code, 1);
  EXPECT_NE(no_state.err.find("pass --state DIR or set 'state = DIR'"), std::string::npos)
      << no_state.err;
}

TEST_F(ChirondLifecycleTest, ShippedExampleConfigIsAccepted) {
  const char* source = std::getenv("CHIRON_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  auto result = RunCommand({BinaryPath("chirond"), "--config",
                            std::string(source) + "/docs/examples/chirond.conf", "--print-config"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("state = /var/lib/chiron\n"), std::string::npos) << result.out;
}

TEST_F(ChirondLifecycleTest, SigtermDuringUploadExitsZeroPromptlyAndLosesNothing) {
  server_ = std::make_unique<ChirondProcess>(dir_);
  ASSERT_GT(server_->port(), 0);
  InitOwner();
  // ~1,160 chunks of 16 KiB, each an fsynced store write: the upload is still streaming when
  // the signal comes.
  const std::string images = WriteGeneratedIdx(dir_, "gen", 24000, 3);
  std::vector<std::string> upload_args = {BinaryPath("chiron"), "--profile", dir_ + "/alice",
                                          "--server", server_->address(), "dataset", "upload",
                                          images, "--name", "gen", "--chunk-size", "16384"};
  BackgroundCommand upload(upload_args, dir_);
  // Signal only once the server has stored chunks (a slow machine, or a sanitizer build, takes
  // a while to connect), so the signal really lands in the middle of the stream.
  bool streaming = false;
  for (int i = 0; i < 600 && !streaming; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto list = Chiron({"dataset", "list", "--json"});
    auto datasets = nlohmann::json::parse(list.out, nullptr, false);
    streaming = datasets.is_array() && !datasets.empty() &&
                datasets[0]["acknowledged_chunks"].get<uint64_t>() > 0;
  }
  ASSERT_TRUE(streaming) << "the upload never started";
  auto start = std::chrono::steady_clock::now();
  int exit_code = server_->Terminate();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string log = ReadText(server_->log_path());
  EXPECT_EQ(exit_code, 0) << log;
  // Calls get up to 5 seconds to finish (docs/operations.md); 15 leaves room for a slow machine.
  EXPECT_LT(seconds, 15.0) << log;
  std::printf("chirond exited %d, %.2f s after SIGTERM during an upload\n", exit_code, seconds);
  EXPECT_NE(log.find("event=server.stopping signal=SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("event=server.stopped"), std::string::npos) << log;

  CommandResult interrupted = upload.Wait();
  uint64_t acked_seen_by_client = 0;
  if (interrupted.exit_code != 0) {
    ASSERT_EQ(interrupted.exit_code, 3) << interrupted.err;
    std::smatch match;
    std::regex stored_re("after ([0-9]+) of ([0-9]+) chunks were stored");
    if (std::regex_search(interrupted.err, match, stored_re)) {
      acked_seen_by_client = std::stoull(match[1]);
    }
    EXPECT_NE(interrupted.err.find("run the same command again"), std::string::npos)
        << interrupted.err;
  }

  // Restart on the same state: every acknowledged chunk is there, the upload resumes and
  // completes, and the audit chain verifies.
  fs::remove(dir_ + "/port");
  server_ = std::make_unique<ChirondProcess>(dir_);
  ASSERT_GT(server_->port(), 0);
  auto list = Chiron({"dataset", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto datasets = nlohmann::json::parse(list.out);
  ASSERT_EQ(datasets.size(), 1u) << list.out;
  EXPECT_GE(datasets[0]["acknowledged_chunks"].get<uint64_t>(), acked_seen_by_client);
  if (interrupted.exit_code != 0) {
    auto resumed = Chiron({"dataset", "upload", images, "--name", "gen", "--chunk-size", "16384"});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("resumed"), std::string::npos) << resumed.out;
  }
  list = Chiron({"dataset", "list", "--json"});
  datasets = nlohmann::json::parse(list.out);
  EXPECT_EQ(datasets[0]["complete"], true);
  EXPECT_EQ(datasets[0]["sample_count"], 24000);
  auto audit = Chiron({"audit", "--verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_EQ(server_->Terminate(), 0);
}

}  // namespace
}  // namespace chiron::testing
