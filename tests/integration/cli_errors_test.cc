// The CLI's common mistakes against a real chirond: each exits with the documented code
// (docs/cli.md) and a message that names the next step. No profile, no policy, a policy file
// that does not exist, a server that is not running, a profile that is not registered, an
// owner's command with a provider's profile and the reverse, `init` over an existing profile;
// and the way out the messages give (`register --server --policy`) works and is remembered.
// Usage mistakes: a typo in a command or option ("did you mean"), the other tool's command,
// `--server HOST` without a port.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

class CliErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("chiron-cli-errors");
    server_ = std::make_unique<ChirondProcess>(dir_);
    ASSERT_GT(server_->port(), 0);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  CommandResult Run(const std::string& program, const std::string& profile,
                    std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath(program), "--profile", dir_ + "/" + profile};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  static void ExpectError(const CommandResult& result, int exit_code,
                          const std::vector<std::string>& parts) {
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    for (const auto& part : parts) {
      EXPECT_NE(result.err.find(part), std::string::npos)
          << "missing \"" << part << "\" in:\n" << result.err;
    }
  }

  std::string dir_;
  std::unique_ptr<ChirondProcess> server_;
};

TEST_F(CliErrorsTest, EachCommonMistakeNamesTheNextStep) {
  const std::string server = server_->address();
  const std::string policy = server_->policy_path();

  // No profile at all.
  ExpectError(Run("chiron", "nobody", {"dataset", "list", "--server", server}), 4,
              {"no profile in", "run `chiron init`"});

  // A profile created offline: no policy known yet.
  ASSERT_EQ(Run("chiron", "alice", {"init", "--name", "alice", "--offline"}).exit_code, 0);
  ExpectError(Run("chiron", "alice", {"dataset", "list", "--server", server}), 4,
              {"no attestation policy", "pass --policy FILE", "chiron register --policy FILE",
               "--write-sim-policy"});

  // A policy file that does not exist.
  ExpectError(
      Run("chiron", "alice",
          {"dataset", "list", "--server", server, "--policy", dir_ + "/missing-policy.json"}),
      4, {"missing-policy.json does not exist", "policy your server's operator published"});

  // Nothing listens there (chirond on another port).
  ExpectError(
      Run("chiron", "alice", {"dataset", "list", "--server", "127.0.0.1:1", "--policy", policy}),
      3, {"is chirond running at that address? check --server"});

  // Known key, but not registered with this server.
  ExpectError(Run("chiron", "alice", {"dataset", "list", "--server", server, "--policy", policy}),
              5, {"is not registered with this server", "run `chiron register`"});
  ExpectError(Run("chiron", "alice", {"whoami", "--server", server, "--policy", policy}), 4,
              {"is not registered with this server", "chiron register"});

  // `init` again does not silently replace the key: it says how to register the one there is.
  ExpectError(Run("chiron", "alice", {"init", "--server", server, "--policy", policy}), 4,
              {"already has a principal key", "register --server HOST:PORT --policy FILE",
               "--force to replace it"});

  // The way out: register, which also remembers the server and the policy.
  auto registered = Run("chiron", "alice", {"register", "--server", server, "--policy", policy});
  ASSERT_EQ(registered.exit_code, 0) << registered.err;
  EXPECT_NE(registered.out.find("saved server " + server), std::string::npos) << registered.out;
  auto listed = Run("chiron", "alice", {"dataset", "list"});  // no --server, no --policy
  EXPECT_EQ(listed.exit_code, 0) << listed.err;

  // Wrong role, both ways.
  ASSERT_EQ(Run("chiron-operator", "acme",
                {"init", "--name", "acme", "--server", server, "--policy", policy})
                .exit_code,
            0);
  ExpectError(Run("chiron", "acme", {"dataset", "list"}), 5,
              {"the owner role is required", "is registered as provider",
               "this command is for data owners"});
  ExpectError(Run("chiron-operator", "alice", {"job", "facts"}), 5,
              {"the provider role is required", "is registered as owner",
               "this command is for providers (`chiron-operator`"});

  // Usage errors are exit 1 and point at --help.
  auto usage = Run("chiron", "alice", {"dataset", "upload"});
  EXPECT_EQ(usage.exit_code, 1) << usage.err;
  EXPECT_NE(usage.err.find("--help"), std::string::npos) << usage.err;
}

// A typo in a command or an option gets the closest known one; exit 1 (usage).
TEST(CliUsageTest, UnknownCommandsAndOptionsGetTheClosestOne) {
  struct Case {
    std::string program;
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"chiron",
       {"datset", "list"},
       "chiron: 'datset' is not a command of `chiron` (did you mean 'dataset'?); see `chiron "
       "--help`"},
      {"chiron",
       {"dataset", "lst"},
       "'lst' is not a command of `chiron dataset` (did you mean 'list'?); see `chiron dataset "
       "--help`"},
      {"chiron", {"modl", "list"}, "(did you mean 'model'?)"},
      {"chiron",
       {"dataset", "list", "--sever", "127.0.0.1:7443"},
       "unknown option '--sever' for `chiron dataset list` (did you mean '--server'?); see "
       "`chiron dataset list --help`"},
      {"chiron",
       {"--profile", "/nonexistent", "predict", "--model", "m", "--tpo-k", "3", "x"},
       "unknown option '--tpo-k' for `chiron predict` (did you mean '--top-k'?)"},
      {"chiron-operator",
       {"recipe", "regster", "x.so"},
       "chiron-operator: 'regster' is not a command of `chiron-operator recipe` (did you mean "
       "'register'?)"},
      {"chiron", {"xyzzyq"}, "chiron: 'xyzzyq' is not a command of `chiron`; see `chiron --help`"},
      // A command that groups others, given alone, names them.
      {"chiron", {"dataset"}, "chiron: `chiron dataset` needs one of its commands: "},
      {"chiron-operator", {"--profile", "/nonexistent", "job"},
       "chiron-operator: `chiron-operator job` needs one of its commands: facts (see "
       "`chiron-operator job --help`)"},
      {"chiron", {}, "chiron: `chiron` needs one of its commands: init, "},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {BinaryPath(c.program)};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    CommandResult result = RunCommand(argv);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos)
        << "missing \"" << c.expected << "\" in:\n"
        << result.err;
    EXPECT_EQ(result.err.find("A subcommand is required"), std::string::npos) << result.err;
  }
  // A nonsense word far from every command gets no guess.
  EXPECT_EQ(RunCommand({BinaryPath("chiron"), "xyzzyq"}).err.find("did you mean"),
            std::string::npos);
}

// An owner's command run with chiron-operator (and the reverse) names the tool and the profile to
// use instead of "a subcommand is required".
TEST(CliUsageTest, TheOtherRolesCommandNamesItsToolAndProfile) {
  auto owner_command = RunCommand({BinaryPath("chiron-operator"), "train", "--dataset", "d"});
  EXPECT_EQ(owner_command.exit_code, 1);
  EXPECT_NE(owner_command.err.find("chiron-operator: 'train' is a data owner's command: run it "
                                   "with chiron and your owner profile (`chiron --profile DIR "
                                   "train ...`; default $CHIRON_HOME or ~/.config/chiron)"),
            std::string::npos)
      << owner_command.err;
  auto owner_subcommand = RunCommand({BinaryPath("chiron-operator"), "job", "list"});
  EXPECT_EQ(owner_subcommand.exit_code, 1);
  EXPECT_NE(owner_subcommand.err.find("'job list' is a data owner's command"), std::string::npos)
      << owner_subcommand.err;
  EXPECT_NE(RunCommand({BinaryPath("chiron-operator"), "dataset", "list"})
                .err.find("'dataset' is a data owner's command"),
            std::string::npos);

  auto provider_command = RunCommand({BinaryPath("chiron"), "recipe", "register", "x.so"});
  EXPECT_EQ(provider_command.exit_code, 1);
  EXPECT_NE(provider_command.err.find(
                "chiron: 'recipe register' is a provider's command: run it with chiron-operator "
                "and your provider profile (`chiron-operator --profile DIR recipe register ...`; "
                "default $CHIRON_OPERATOR_HOME or ~/.config/chiron-operator)"),
            std::string::npos)
      << provider_command.err;
  EXPECT_NE(RunCommand({BinaryPath("chiron"), "job", "facts"})
                .err.find("'job facts' is a provider's command"),
            std::string::npos);
}

// `--server HOST` without a port is a usage error that says so (gRPC would try port 443 and
// report the server unreachable); a profile whose saved server has no port says the same.
TEST_F(CliErrorsTest, ServerWithoutAPortSaysSoAndTheSimWarningComesOnce) {
  const std::string policy = server_->policy_path();
  for (const std::string& address : {std::string("127.0.0.1"), std::string("localhost:"),
                                     std::string("[::1]"), std::string("127.0.0.1:http")}) {
    auto result = Run("chiron", "alice",
                      {"init", "--name", "alice", "--server", address, "--policy", policy});
    ExpectError(result, 1, {"--server '" + address + "' has no port: give HOST:PORT, e.g. "});
  }
  ExpectError(Run("chiron", "alice", {"dataset", "list", "--server", "127.0.0.1"}), 1,
              {"--server '127.0.0.1' has no port", "127.0.0.1:7443"});

  ASSERT_EQ(Run("chiron", "alice",
                {"init", "--name", "alice", "--server", server_->address(), "--policy", policy})
                .exit_code,
            0);
  // Each command that talks to a sim server warns once, however many connections it opens.
  for (std::vector<std::string> command :
       {std::vector<std::string>{"dataset", "list"}, std::vector<std::string>{"whoami"},
        std::vector<std::string>{"audit", "--verify"}, std::vector<std::string>{"attest"}}) {
    auto result = Run("chiron", "alice", command);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    size_t count = 0;
    for (size_t at = result.err.find("runs on the sim platform"); at != std::string::npos;
         at = result.err.find("runs on the sim platform", at + 1)) {
      ++count;
    }
    EXPECT_EQ(count, 1u) << command[0] << ":\n" << result.err;
  }
}

}  // namespace
}  // namespace chiron::testing
