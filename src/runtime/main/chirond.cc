// chirond: the trusted Chiron runtime.
//
//   chirond --platform sim --listen 127.0.0.1:7443 --state DIR
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

#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/base/file_system.h"
#include "shared/base/log.h"
#include "worker/sandbox_policy.h"

namespace {

// "16G", "512M", "1048576": bytes with an optional K/M/G/T suffix (powers of 1024).
bool ParseByteSize(const std::string& text, uint64_t& out) {
  if (text.empty()) return false;
  size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (...) {
    return false;
  }
  std::string suffix = text.substr(used);
  int shift = 0;
  if (suffix == "K" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (suffix == "T" || suffix == "TiB") shift = 40;
  else if (!suffix.empty()) return false;
  if (value > (~0ULL >> shift)) return false;
  out = static_cast<uint64_t>(value) << shift;
  return out > 0;
}

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
  std::string platform = "sim";
  std::string listen = "127.0.0.1:7443";
  std::string state_dir;
  std::string bin_dir = SelfDirectory();
  std::string worker = bin_dir + "/chiron-worker";
  std::string sandbox_policy = bin_dir + "/sandbox-policy.txt";
  std::string recipes_dir = bin_dir + "/../recipes";
  uint64_t query_budget = 100000;
  int worker_threads = 2;
  std::string tsm_root = tee::kDefaultTsmReportRoot;
  std::string port_file;
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string sim_policy_file;
  bool sim_debug = false;
  uint32_t sim_svn = 1;
  bool verbose = false;
  std::string quota = "16G";
  uint64_t max_datasets = chiron::store::StoreLimits{}.max_datasets_per_owner;

  CLI::App app{
      "chirond: the trusted Chiron runtime. Serves the chiron.v1 API over attested, mutual TLS 1.3.",
      "chirond"};
  app.footer(
      "Example:\n  chirond --platform sim --listen 127.0.0.1:7443 --state /var/lib/chiron\n\n"
      "The sim platform is INSECURE: a software simulation for development and tests.");
  app.add_option("--platform", platform, "TEE platform: sim (insecure simulation) or tsm")
      ->check(CLI::IsMember({"sim", "tsm"}))
      ->capture_default_str();
  app.add_option("--listen", listen, "host:port to serve on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--state", state_dir, "state directory (keys, sealed store)")->required();
  app.add_option("--worker", worker, "the sandboxed worker executable (measured)")
      ->capture_default_str();
  app.add_option("--sandbox-policy", sandbox_policy,
                 "the sandbox policy file (measured; must equal the compiled-in policy, "
                 "as written by chiron_sandbox_policy_gen)")
      ->capture_default_str();
  app.add_option("--recipes-dir", recipes_dir,
                 "built-in recipes (chiron_recipe_NAME.so), registered at start")
      ->capture_default_str();
  app.add_option("--query-budget", query_budget, "predictions each model may answer")
      ->capture_default_str();
  app.add_option("--worker-threads", worker_threads, "libtorch threads per sandboxed worker")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--tsm-root", tsm_root, "configfs-tsm report directory (tsm platform)")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the port actually bound to this file");
  app.add_option("--write-sim-policy", sim_policy_file,
                 "sim only: write the policy that accepts exactly this runtime to this file");
  app.add_flag("--sim-debug", sim_debug, "sim only: mark evidence as coming from a debug TEE");
  app.add_option("--sim-svn", sim_svn, "sim only: security version number in evidence")
      ->capture_default_str();
  app.add_option("--quota", quota,
                 "bytes each owner may store (datasets count at their full size from the start "
                 "of their upload); suffix K, M, G or T")
      ->capture_default_str();
  app.add_option("--max-datasets", max_datasets, "datasets each owner may keep")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port for operator metrics (plain HTTP, GET /metrics, Prometheus text; "
                 "service-level figures only, docs/operations.md); off unless given");
  app.add_flag("-v,--verbose", verbose, "log debug events");
  CLI11_PARSE(app, argc, argv);
  if (verbose) SetMinLogLevel(LogLevel::kDebug);

  // Signals are handled by one thread through sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  runtime::ServerOptions options;
  if (!ParseByteSize(quota, options.store_limits.max_bytes_per_owner)) {
    std::fprintf(stderr,
                 "chirond: --quota '%s' is not a size: use bytes with an optional K, M, G or T "
                 "suffix, e.g. --quota 16G\n",
                 quota.c_str());
    return 1;
  }
  options.store_limits.max_datasets_per_owner = max_datasets;
  options.listen_address = listen;
  options.metrics_listen_address = metrics_listen;
  jobs::JobManagerOptions jobs;
  std::error_code ec;
  auto absolute_worker = std::filesystem::absolute(worker, ec);
  jobs.worker.worker_path = ec ? worker : absolute_worker.string();
  jobs.worker.threads = worker_threads;
  jobs.recipes_dir = recipes_dir;
  jobs.query_budget = query_budget;
  options.jobs = jobs;
  options.platform.name = platform;
  options.platform.state_dir = state_dir;
  options.platform.tsm_root = tsm_root;
  options.platform.sim_debug = sim_debug;
  options.platform.sim_svn = sim_svn;
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
  if (!sim_policy_file.empty()) {
    auto policy = runtime::SimReferencePolicy((*server)->platform());
    Status written =
        policy.ok() ? FileSystem::Default()->WriteFileAtomic(sim_policy_file,
                                                             AsBytes(policy->ToJson()), 0644)
                    : policy.status();
    if (!written.ok()) {
      std::fprintf(stderr, "chirond: --write-sim-policy: %s\n", written.message().c_str());
      return 1;
    }
  }

  if (!port_file.empty()) {
    std::string port = std::to_string((*server)->port()) + "\n";
    Status written = FileSystem::Default()->WriteFileAtomic(port_file, AsBytes(port), 0644);
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
