// chirond: the trusted Chiron runtime.
//
//   chirond --platform sim --listen 127.0.0.1:7443 --state DIR
//   chirond --config /etc/chiron/chirond.conf     (settings: runtime/config/chirond_settings.h)
//
// Measures the components it trusts (itself, the worker, the sandbox policy), creates a fresh
// attested TLS identity and serves the chiron.v1 API until SIGTERM or SIGINT.
//
// The measured sandbox policy file (default: bin/sandbox-policy.txt beside chirond, written at
// build time by chiron_sandbox_policy_gen) must be byte for byte the policy compiled into chirond
// (SandboxPolicyBytes(), the one it and chiron-worker enforce); chirond refuses to start otherwise,
// so the measurement covers exactly the policy that is enforced (docs/sandbox.md).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "runtime/config/chirond_settings.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/base/file_system.h"
#include "shared/base/log.h"
#include "shared/worker_abi/sandbox_policy.h"

namespace {

// OK if the file at `path` holds exactly the compiled-in policy; otherwise a message saying which
// file, how it differs and how to regenerate it.
chiron::Status CheckSandboxPolicyFile(const std::string& path) {
  const std::string_view expected = chiron::SandboxPolicyBytes();
  const std::string regenerate =
      "regenerate it from this build with `chiron_sandbox_policy_gen " + path +
      "` (the build writes build/bin/sandbox-policy.txt; `ninja -C build "
      "chiron_sandbox_policy_file`), or pass --sandbox-policy with the file generated beside "
      "this chirond";
  // The policy is a few KiB; a file beyond 1 MiB is refused unread (and differs anyway).
  auto bytes = chiron::FileSystem::Default()->ReadFile(path, size_t{1} << 20);
  if (!bytes.ok()) {
    return chiron::FailedPreconditionError("cannot read the sandbox policy file " + path + ": " +
                                           bytes.status().message() + "; " + regenerate);
  }
  const std::string_view actual(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  if (actual == expected) return chiron::Status::Ok();
  size_t first = 0;
  while (first < actual.size() && first < expected.size() && actual[first] == expected[first]) {
    ++first;
  }
  return chiron::FailedPreconditionError(
      "the sandbox policy file " + path + " differs from the policy compiled into chirond (" +
      std::to_string(actual.size()) + " bytes, expected " + std::to_string(expected.size()) +
      "; first difference at byte " + std::to_string(first) +
      "); chirond measures this file as the policy it enforces, so it must be exactly "
      "SandboxPolicyBytes(): " +
      regenerate);
}

std::string SelfDirectory() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chiron;
  const std::string bin_dir = SelfDirectory();
  runtime::ChirondSettings settings;
  settings.worker = bin_dir + "/chiron-worker";
  settings.sandbox_policy = bin_dir + "/sandbox-policy.txt";
  settings.recipes_dir = bin_dir + "/../recipes";
  settings.tsm_root = tee::kDefaultTsmReportRoot;
  settings.max_datasets = store::StoreLimits{}.max_datasets_per_owner;
  std::string config_path;
  bool print_config = false;

  CLI::App app{
      "chirond: the trusted Chiron runtime. Serves the chiron.v1 API over attested, mutual TLS 1.3.",
      "chirond"};
  app.footer(
      "Every option except --config and --print-config can also be set in the config file as "
      "'key = value' (the long option name without dashes, e.g. 'query-budget = 500'); the "
      "command line wins over the file. No config file is read unless --config is given. "
      "Format and example: docs/operations.md, docs/examples/chirond.conf.\n\n"
      "Example:\n"
      "  chirond --platform sim --listen 127.0.0.1:7443 --state /var/lib/chiron\n"
      "  chirond --config /etc/chiron/chirond.conf\n"
      "  chirond --config /etc/chiron/chirond.conf --listen 127.0.0.1:8443 --print-config\n\n"
      "The sim platform is INSECURE: a software simulation for development and tests.");
  app.add_option("--config", config_path,
                 "read settings from this file (key = value lines); command-line options win");
  app.add_flag("--print-config", print_config,
               "print the effective settings (defaults, file, command line) as a config file "
               "and exit without starting");
  runtime::AddChirondOptions(app, settings);
  CLI11_PARSE(app, argc, argv);
  if (!config_path.empty()) {
    auto entries = runtime::ReadConfigFile(config_path);
    Status applied = entries.ok() ? runtime::ApplyConfigEntries(app, *entries, config_path)
                                  : entries.status();
    if (!applied.ok()) {
      std::fprintf(stderr, "chirond: %s\n", applied.message().c_str());
      return 1;
    }
  }
  if (print_config) {
    std::fputs(runtime::FormatSettings(settings).c_str(), stdout);
    return 0;
  }
  if (settings.state_dir.empty()) {
    std::fprintf(stderr,
                 "chirond: no state directory: pass --state DIR or set 'state = DIR' in the "
                 "config file (--config FILE); see chirond --help\n");
    return 1;
  }
  auto peers = runtime::ResolvePeers(settings);
  if (!peers.ok()) {
    std::fprintf(stderr, "chirond: %s\n", peers.status().message().c_str());
    return 1;
  }
  auto node_advertise = runtime::ResolveNodeAdvertise(settings);
  if (!node_advertise.ok()) {
    std::fprintf(stderr, "chirond: %s\n", node_advertise.status().message().c_str());
    return 1;
  }
  if (settings.verbose) SetMinLogLevel(LogLevel::kDebug);
  const std::string& worker = settings.worker;
  const std::string& sandbox_policy = settings.sandbox_policy;
  const std::string& state_dir = settings.state_dir;

  // Signals are handled by one thread through sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  runtime::ServerOptions options;
  if (!runtime::ParseByteSize(settings.quota, options.store_limits.max_bytes_per_owner)) {
    std::fprintf(stderr, "chirond: quota '%s' is not a size: use e.g. 16G\n",
                 settings.quota.c_str());
    return 1;  // unreachable: the option's validator refused it already
  }
  options.store_limits.max_datasets_per_owner = settings.max_datasets;
  options.listen_address = settings.listen;
  options.metrics_listen_address = settings.metrics_listen;
  auto data_listen = runtime::ResolveDataListen(settings);
  if (!data_listen.ok()) {
    std::fprintf(stderr, "chirond: %s\n", data_listen.status().message().c_str());
    return 1;
  }
  options.data_plane_listen_address = *data_listen;
  jobs::JobManagerOptions jobs;
  std::error_code ec;
  auto absolute_worker = std::filesystem::absolute(worker, ec);
  jobs.worker.worker_path = ec ? worker : absolute_worker.string();
  jobs.worker.threads = settings.worker_threads;
  jobs.recipes_dir = settings.recipes_dir;
  jobs.query_budget = settings.query_budget;
  jobs.training_slots = settings.training_slots;
  jobs.checkpoint_every_steps = settings.checkpoint_every;
  jobs.max_job_seconds = settings.max_job_seconds;
  if (!runtime::ParseByteSize(settings.max_job_memory, jobs.max_job_memory_size)) {
    std::fprintf(stderr, "chirond: --max-job-memory: '%s' is not a size (e.g. 8G)\n",
                 settings.max_job_memory.c_str());
    return 1;
  }
  auto isolation = jobs::ParsePredictionIsolation(settings.prediction_isolation);
  if (!isolation.ok()) {
    std::fprintf(stderr, "chirond: --prediction-isolation: %s\n",
                 isolation.status().message().c_str());
    return 1;
  }
  jobs.prediction_isolation = *isolation;
  options.jobs = jobs;
  if (!settings.node_listen.empty()) {
    options.cluster =
        runtime::ServerOptions::Cluster{settings.node_listen, *peers, settings.cluster_policy,
                                        settings.cluster_store_key == "new", *node_advertise};
  }
  options.platform.name = settings.platform;
  options.platform.state_dir = state_dir;
  options.platform.tsm_root = settings.tsm_root;
  options.platform.sim_debug = settings.sim_debug;
  options.platform.sim_svn = settings.sim_svn;
  options.platform.sim_no_sealing = settings.sim_no_sealing;
  options.platform.measured_components = {
      {"chirond", "/proc/self/exe"},
      {"chiron-worker", worker},
      {"sandbox-policy", sandbox_policy},
  };
  if (Status policy = CheckSandboxPolicyFile(sandbox_policy); !policy.ok()) {
    std::fprintf(stderr, "chirond: refusing to start: %s\n", policy.message().c_str());
    return 1;
  }
  Status dir = FileSystem::Default()->CreateDirectories(state_dir, 0700);
  if (!dir.ok()) {
    std::fprintf(stderr, "chirond: cannot use state directory: %s\n", dir.message().c_str());
    return 1;
  }

  auto server = runtime::RuntimeServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "chirond: cannot start: %s\n", server.status().message().c_str());
    return 1;
  }
  if (!settings.write_sim_policy.empty()) {
    auto policy = runtime::SimReferencePolicy((*server)->platform());
    Status written =
        policy.ok() ? FileSystem::Default()->WriteFileAtomic(settings.write_sim_policy,
                                                             AsBytes(policy->ToJson()), 0644)
                    : policy.status();
    if (!written.ok()) {
      std::fprintf(stderr, "chirond: --write-sim-policy: %s\n", written.message().c_str());
      return 1;
    }
  }

  if (!settings.port_file.empty()) {
    std::string port = std::to_string((*server)->port()) + "\n";
    Status written = FileSystem::Default()->WriteFileAtomic(settings.port_file, AsBytes(port), 0644);
    if (!written.ok()) {
      std::fprintf(stderr, "chirond: %s\n", written.message().c_str());
      return 1;
    }
  }

  runtime::RuntimeServer* raw = server->get();
  std::thread signal_thread([raw, signals] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    LogInfo("server.stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
    raw->Shutdown();
  });
  raw->Wait();
  signal_thread.join();
  LogInfo("server.stopped");
  return 0;
}
