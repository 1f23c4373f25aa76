// The CLI's common mistakes against a real chirond: each exits with the documented code
// (docs/cli.md) and a message that names the next step. No profile, no policy, a policy file
// that does not exist, a server that is not running, a profile that is not registered, an
// owner's command with a provider's profile and the reverse, `init` over an existing profile;
// and the way out the messages give (`register --server --policy`) works and is remembered.
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

}  // namespace
}  // namespace chiron::testing
