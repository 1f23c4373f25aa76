// What every `chiron` command shares: exit codes, error reporting, the global options (profile,
// server, policy), connecting with the profile's key, and the progress bar.
//
// Commands are registered per noun (init_command.cc, attest_command.cc, dataset_command.cc,
// audit_command.cc): each Add*Commands function adds its subcommands to the app and, in their
// callbacks, sets the one action main() runs after parsing. New nouns follow the same shape.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/profile.h"
#include "shared/attest/verifier.h"
#include "shared/audit/chain.h"
#include "shared/base/status.h"

namespace chiron::client {

// Exit codes (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitVerificationFailed = 2;  // attestation, evidence, audit chain, tamper
inline constexpr int kExitUnreachable = 3;         // server unreachable or connection lost
inline constexpr int kExitError = 4;               // anything else
inline constexpr int kExitRefused = 5;             // the server refused: wrong role, unregistered
inline constexpr int kExitJobFailed = 6;           // a training job ended failed or cancelled
inline constexpr int kExitPartial = 7;  // some of the work done and printed, the rest not (predict)

struct GlobalOptions {
  bool operator_mode = false;  // invoked as chiron-operator: provider defaults
  std::string program = "chiron";
  std::string profile_dir;     // --profile; empty: Profile::DefaultDirectory
  std::string server;          // --server; overrides the profile's
  std::string policy;          // --policy; overrides the profile's

  std::string ProfileDir() const;
};

// The action main() runs once parsing succeeded (set by a subcommand's callback).
using CommandAction = std::function<int()>;

// The name the tool's own messages on stderr start with: "chiron", or "chiron-operator" when
// invoked as that. main() sets it.
const char* ProgramName();
void SetProgramName(const std::string& name);

// Prints "<program>: <message>" to stderr and maps the code to an exit code.
int Fail(const Status& status);
// Verification failures are exit 2 whatever their code.
int FailVerification(const Status& status);

Result<std::shared_ptr<const attest::Verifier>> LoadVerifier(const std::string& policy_path);

// The profile plus the server and policy to use (global options override the profile).
struct Session {
  Profile profile;
  std::string server;
  std::string policy_path;
};
// InvalidArgument if no policy is known ("pass --policy or `chiron init --policy`").
Result<Session> OpenSession(const GlobalOptions& global);

// Connects to the session's server with the profile's key, verifying its attestation.
// Unauthenticated if the server fails attestation (exit 2); Unavailable if unreachable (exit 3).
// Prints the sim platform warning to stderr when the server is simulated.
Result<std::unique_ptr<Connection>> ConnectSession(const Session& session,
                                                   std::chrono::milliseconds timeout =
                                                       std::chrono::seconds(30));

// Maps a connect failure to its exit code (attestation failure: 2).
int FailConnect(const Status& status);

// Prints, at most once per process, the warning that `server` runs on the sim platform (every
// command that connects calls it; a command that connects twice warns once).
void WarnSimulatedServer(const std::string& server);

// OK when `address` is HOST:PORT (`[v6]:PORT` too). InvalidArgument naming `source` ("--server"
// or the profile) and the fix otherwise: a host without a port would reach port 443.
Status CheckServerAddress(const std::string& address, const std::string& source);

// After CLI11 refused `args` (argv without the program): a message naming the mistake and its
// fix, or "" when CLI11's own message says it better. An unknown command or option gets the
// closest known one ("did you mean"); a command that exists only in `other_role_app` (the
// command tree of the other tool: chiron-operator's for chiron, and the reverse) names the tool
// and profile to use. `app` and `other_role_app` are only read.
std::string ExplainUsageError(const CLI::App& app, const CLI::App& other_role_app,
                              const GlobalOptions& global, const std::vector<std::string>& args);

// "1.5 MB", "47.0 MB" (decimal units).
std::string FormatBytes(uint64_t bytes);

// A one-line progress bar on stderr with rate and ETA, drawn only when stderr is a terminal
// (isatty) and at most 10 times a second. Thread safe (callers serialise Update anyway).
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // ends the line if anything was drawn
  bool enabled() const { return enabled_; }
  // `done` of `total` units of `unit_bytes`-sized work; `base` units were done before this run.
  void Update(uint64_t done_bytes, uint64_t total_bytes, uint64_t base_bytes);

 private:
  std::string label_;
  bool enabled_ = false;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Every record of the caller's audit chain, paging through Audit.List, with bounds on what a
// hostile server can make the client hold (audit/chain.h limits). Defined in audit_command.cc.
Result<std::vector<audit::AuditRecord>> FetchAuditRecords(Connection& connection);

// Noun registrations.
void AddInitCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddAttestCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddDatasetCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddAuditCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddRecipeCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddTrainCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddJobCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddModelCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddPredictCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);
void AddReportCommands(CLI::App& app, GlobalOptions& global, CommandAction& action);

}  // namespace chiron::client
