// Helpers for integration tests that drive Chiron's real executables: start chirond as a child
// process, run CLI commands and capture their output and exit code.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace chiron::testing {

// build/bin, from the CHIRON_BUILD_DIR environment variable that chiron_test sets.
std::string BinaryPath(const std::string& name);

// A fresh directory /tmp/PREFIX-XXXXXX (mkdtemp); fails the current test if it cannot.
std::string MakeTempDir(const std::string& prefix);

// The whole file as text; empty if it cannot be read.
std::string ReadText(const std::string& path);

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv to completion (no shell), with stdin closed.
CommandResult RunCommand(const std::vector<std::string>& argv);

// A command running in the background, stdin closed, stdout and stderr to files in `dir`.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const std::string& dir);
  ~BackgroundCommand();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  // Waits for the exit; the output written so far.
  CommandResult Wait();

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
};

// A chirond child process on the sim platform, listening on a free loopback port.
class ChirondProcess {
 public:
  // Starts chirond with a state dir under `dir`, a placeholder worker file and the real sandbox
  // policy file (written by chiron_sandbox_policy_gen) it creates there,
  // and `extra_args`; waits until it listens (port file) or fails the current test.
  // `worker` empty: a placeholder worker file (enough for attestation and the data path);
  // otherwise the real chiron-worker to measure and run (training tests), with chirond's
  // default built-in recipes (build/recipes).
  ChirondProcess(const std::string& dir, const std::vector<std::string>& extra_args = {},
                 const std::string& worker = "");
  // Starts chirond with exactly `args` after the executable (nothing added: e.g. `--config
  // FILE`), logging to dir/chirond.log; waits until it writes `port_file` (which the arguments
  // or the config file must name) or fails the current test. `policy_path`: where the
  // arguments make it write its sim policy (--write-sim-policy), for policy_path().
  struct ExactArgs {};
  ChirondProcess(ExactArgs, const std::string& dir, const std::vector<std::string>& args,
                 const std::string& port_file, const std::string& policy_path);
  ~ChirondProcess();  // SIGKILL if still running

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The reference policy chirond wrote (--write-sim-policy).
  const std::string& policy_path() const { return policy_path_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then waits; returns the exit code (or -1 if it did not exit cleanly in time).
  int Terminate();

 private:
  void Start(const std::vector<std::string>& argv, const std::string& port_file);

  pid_t pid_ = -1;
  int port_ = 0;
  std::string policy_path_;
  std::string log_path_;
};

}  // namespace chiron::testing
