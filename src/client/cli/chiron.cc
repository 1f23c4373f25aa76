// chiron: the data owner's command-line tool; as chiron-operator (a link to the same program),
// the provider's.
//
// Each noun registers its own subcommands (cli_common.h); this file only wires the global
// options and runs the chosen action. Exit codes (docs/cli.md): 0 success; 1 usage error;
// 2 verification failed (attestation, evidence, audit chain, tampering); 3 the server could not
// be reached or the connection broke; 4 any other error; 5 refused by the server (role);
// 6 a training job failed or was cancelled.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "client/cli/cli_common.h"

namespace {

using namespace chiron::client;

// The command tree of the tool `global` describes (the owner's chiron or the provider's
// chiron-operator); subcommand callbacks set `action`.
std::unique_ptr<CLI::App> MakeApp(GlobalOptions& global, CommandAction& action) {
  auto app = std::make_unique<CLI::App>(
      global.operator_mode
          ? "chiron-operator: the provider's tool for a Chiron runtime (register, attest, "
            "register recipes, job facts, audit)."
          : "chiron: train models on your data inside an attested Chiron runtime, without "
            "anyone else seeing the data.",
      global.program);
  app->require_subcommand(1);
  // Global options may also follow the subcommand (`chiron dataset list --server ...`).
  app->fallthrough();
  app->footer(
      "Exit codes: 0 ok, 1 usage, 2 verification failed, 3 server unreachable, 4 error, "
      "5 refused by the server, 6 training job failed or cancelled, 7 partial (predict: some "
      "samples answered and printed, the rest not).\n\nExample:\n  " +
      global.program + " init --name alice --server 127.0.0.1:7443 --policy policy.json\n  " +
      global.program + " attest");
  app->add_option("--profile", global.profile_dir,
                  global.operator_mode
                      ? "profile directory (default $CHIRON_OPERATOR_HOME or "
                        "~/.config/chiron-operator)"
                      : "profile directory (default $CHIRON_HOME or ~/.config/chiron)");
  app->add_option("--server", global.server,
                  "chirond address host:port (default: the profile's, else 127.0.0.1:7443)");
  app->add_option("--policy", global.policy, "attestation policy JSON (default: the profile's)");

  AddInitCommands(*app, global, action);
  AddAttestCommands(*app, global, action);
  if (!global.operator_mode) AddDatasetCommands(*app, global, action);
  AddRecipeCommands(*app, global, action);
  if (!global.operator_mode) {
    AddTrainCommands(*app, global, action);
    AddModelCommands(*app, global, action);
    AddPredictCommands(*app, global, action);
  }
  AddJobCommands(*app, global, action);  // owners: list/watch/cancel; providers: facts
  AddAuditCommands(*app, global, action);
  if (!global.operator_mode) AddReportCommands(*app, global, action);  // owners: HTML job report
  return app;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chiron::client;
  GlobalOptions global;
  std::string invoked = argc > 0 ? argv[0] : "chiron";
  invoked = invoked.substr(invoked.find_last_of('/') + 1);
  global.operator_mode = invoked == "chiron-operator";
  global.program = global.operator_mode ? "chiron-operator" : "chiron";
  SetProgramName(global.program);

  CommandAction action;
  std::unique_ptr<CLI::App> app = MakeApp(global, action);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error is exit 1 (docs/cli.md), whatever
    // CLI11's own error number. An unknown command or option gets "did you mean", and the
    // other tool's command says which tool and profile to use.
    if (e.get_exit_code() != 0) {
      GlobalOptions other_global;
      other_global.operator_mode = !global.operator_mode;
      other_global.program = other_global.operator_mode ? "chiron-operator" : "chiron";
      CommandAction unused;
      std::unique_ptr<CLI::App> other = MakeApp(other_global, unused);
      std::string hint =
          ExplainUsageError(*app, *other, global, std::vector<std::string>(argv + 1, argv + argc));
      if (!hint.empty()) {
        std::fprintf(stderr, "%s: %s\n", global.program.c_str(), hint.c_str());
        return kExitUsage;
      }
    }
    return app->exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (!action) {
    std::fprintf(stderr, "%s: no command given; see --help\n", global.program.c_str());
    return kExitUsage;
  }
  if (!global.server.empty()) {
    chiron::Status address = CheckServerAddress(global.server, "--server");
    if (!address.ok()) {
      std::fprintf(stderr, "%s: %s\n", global.program.c_str(), address.message().c_str());
      return kExitUsage;
    }
  }
  return action();
}
