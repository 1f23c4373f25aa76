#include "runtime/config/chirond_settings.h"

#include <algorithm>
#include <set>

#include "shared/base/edit_distance.h"
#include "shared/base/net.h"

namespace chiron::runtime {
namespace {

// Options that exist on the command line only.
const std::set<std::string, std::less<>>& CommandLineOnly() {
  static const std::set<std::string, std::less<>> keys = {"config", "print-config", "help",
                                                          "help-all", "version"};
  return keys;
}

// " (did you mean 'state'?)" for a near miss, else "".
std::string Suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = 3;  // at most two edits away
  for (const auto& candidate : known) {
    size_t distance = EditDistance(key, candidate);
    // "state-dir" for "state", "metrics" for "metrics-listen": one is a prefix of the other.
    bool prefix = key.rfind(candidate + "-", 0) == 0 || candidate.rfind(key + "-", 0) == 0;
    if (prefix) distance = std::min<size_t>(distance, 2);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

CLI::Option* FindOption(CLI::App& app, const std::string& key) {
  for (CLI::Option* option : app.get_options()) {
    const auto& names = option->get_lnames();
    if (std::find(names.begin(), names.end(), key) != names.end()) return option;
  }
  return nullptr;
}

bool IsFlag(const CLI::Option& option) { return option.get_expected_max() == 0; }

std::string ConfigLine(const std::string& key, const std::string& value) {
  return key + " = " + QuoteConfigValue(value) + "\n";
}

std::string OptionalLine(const std::string& key, const std::string& value,
                         const std::string& unset_note) {
  if (value.empty()) return "# " + key + " = (" + unset_note + ")\n";
  return ConfigLine(key, value);
}

}  // namespace

bool ParseByteSize(const std::string& text, uint64_t& out) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
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

namespace {

// A size option's check (ParseByteSize), whose message shows `example`.
CLI::Validator ByteSizeValidator(std::string example) {
  return CLI::Validator(
      [example](std::string& value) -> std::string {
        uint64_t bytes = 0;
        return ParseByteSize(value, bytes)
                   ? std::string()
                   : "'" + value +
                         "' is not a size: use bytes with an optional K, M, G or T suffix, e.g. " +
                         example;
      },
      "SIZE");
}

}  // namespace

void AddChirondOptions(CLI::App& app, ChirondSettings& s) {
  app.add_option("--platform", s.platform, "TEE platform: sim (insecure simulation) or tsm")
      ->check(CLI::IsMember({"sim", "tsm"}))
      ->capture_default_str();
  app.add_option("--listen", s.listen, "host:port to serve on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--state", s.state_dir,
                 "state directory (keys, sealed store); required, here or in the config file");
  app.add_option("--worker", s.worker, "the sandboxed worker executable (measured)")
      ->capture_default_str();
  app.add_option("--sandbox-policy", s.sandbox_policy,
                 "the sandbox policy file (measured; must equal the compiled-in policy, "
                 "as written by chiron_sandbox_policy_gen)")
      ->capture_default_str();
  app.add_option("--recipes-dir", s.recipes_dir,
                 "built-in recipes (chiron_recipe_NAME.so), registered at start")
      ->capture_default_str();
  app.add_option("--query-budget", s.query_budget, "predictions each model may answer")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return !value.empty() && value.front() >= '0' && value.front() <= '9'
                       ? std::string()
                       : "must be a non-negative whole number";
          },
          "N"))
      ->capture_default_str();
  app.add_option("--worker-threads", s.worker_threads, "libtorch threads per sandboxed worker")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--training-slots", s.training_slots,
                 "training jobs run at once (each a sandboxed worker with --worker-threads "
                 "threads); queued jobs take free slots fairly across owners")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--checkpoint-every", s.checkpoint_every,
                 "optimizer steps between a training job's sealed checkpoints (a job resumes "
                 "from its last one after a restart; on several nodes, from the last one every "
                 "node holds)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}))
      ->capture_default_str();
  app.add_option("--max-job-seconds", s.max_job_seconds,
                 "wall-clock limit of one training job over all its runs; a recipe's declared "
                 "budget may lower it, never raise it")
      ->check(CLI::Range(uint64_t{1}, uint64_t{30} * 24 * 3600))
      ->capture_default_str();
  app.add_option("--max-job-memory", s.max_job_memory,
                 "resident memory limit of a training job's worker; a recipe's declared budget "
                 "may lower it; suffix K, M, G or T")
      ->check(ByteSizeValidator("8G"))
      ->capture_default_str();
  app.add_option("--prediction-isolation", s.prediction_isolation,
                 "prediction workers: 'principal' (one per model and querying principal, kept "
                 "between its requests) or 'request' (a fresh worker for every request)")
      ->check(CLI::IsMember({"principal", "request"}))
      ->capture_default_str();
  app.add_option("--tsm-root", s.tsm_root, "configfs-tsm report directory (tsm platform)")
      ->capture_default_str();
  app.add_option("--port-file", s.port_file, "write the port actually bound to this file");
  app.add_option("--write-sim-policy", s.write_sim_policy,
                 "sim only: write the policy that accepts exactly this runtime to this file");
  app.add_flag("--sim-debug", s.sim_debug, "sim only: mark evidence as coming from a debug TEE");
  app.add_option("--sim-svn", s.sim_svn, "sim only: security version number in evidence")
      ->capture_default_str();
  app.add_option("--quota", s.quota,
                 "bytes each owner may store (datasets count at their full size from the start "
                 "of their upload); suffix K, M, G or T")
      ->check(ByteSizeValidator("16G"))
      ->capture_default_str();
  app.add_option("--max-datasets", s.max_datasets, "datasets each owner may keep")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--metrics-listen", s.metrics_listen,
                 "host:port for operator metrics (plain HTTP, GET /metrics, Prometheus text; "
                 "service-level figures only, docs/operations.md); off unless given");
  app.add_option("--data-listen", s.data_listen,
                 "host:port of the data plane, the TLS-free port upload chunks may take (they "
                 "are sealed under the dataset key; docs/formats/data-plane.md); 'auto' = the "
                 "--listen host and its port + 1, 'off' = uploads only through the API port")
      ->capture_default_str();
  app.add_option("--node-listen", s.node_listen,
                 "host:port of this node's peer listener for distributed training (mutual "
                 "RA-TLS with the other nodes; docs/distributed.md); off unless given");
  app.add_option("--peers", s.peers,
                 "the other nodes' peer listeners, host:port[,host:port...] (needs "
                 "--node-listen and --cluster-policy)");
  app.add_option("--cluster-policy", s.cluster_policy,
                 "the policy file every peer node's evidence must verify under (the format of "
                 "owners' policies, docs/formats/policy.md)");
  app.add_option("--node-advertise", s.node_advertise,
                 "host:port other nodes dial for this node's rank in a job (default: "
                 "--node-listen's; required when that is a wildcard such as 0.0.0.0)");
  app.add_option("--cluster-store-key", s.cluster_store_key,
                 "on a platform without sealing (tsm): take the store key from a peer that "
                 "holds it ('peers'), or from a peer and else a fresh one, for the cluster's "
                 "first node ('new')")
      ->check(CLI::IsMember({"peers", "new"}))
      ->capture_default_str();
  app.add_flag("--sim-no-sealing", s.sim_no_sealing,
               "sim only, for tests: no sealing key, as on tsm (the store key must come from "
               "the cluster)");
  app.add_flag("-v,--verbose", s.verbose, "log debug events");
}

Result<std::vector<std::string>> ResolvePeers(const ChirondSettings& s) {
  std::vector<std::string> peers;
  if (s.node_listen.empty()) {
    if (!s.peers.empty() || !s.cluster_policy.empty()) {
      return InvalidArgumentError(
          "--peers and --cluster-policy need --node-listen HOST:PORT (this node's peer "
          "listener): give it, or drop them to run alone");
    }
    return peers;
  }
  CHIRON_RETURN_IF_ERROR(SplitHostPort(s.node_listen, "--node-listen").status());
  if (s.cluster_policy.empty()) {
    return InvalidArgumentError(
        "--node-listen needs --cluster-policy FILE: the policy every peer node's evidence must "
        "verify under (docs/distributed.md)");
  }
  size_t at = 0;
  while (at < s.peers.size()) {
    size_t comma = s.peers.find(',', at);
    if (comma == std::string::npos) comma = s.peers.size();
    std::string peer = s.peers.substr(at, comma - at);
    if (peer.empty()) {
      return InvalidArgumentError("--peers: an empty entry; give host:port[,host:port...]");
    }
    CHIRON_RETURN_IF_ERROR(SplitHostPort(peer, "--peers").status());
    peers.push_back(std::move(peer));
    at = comma + 1;
  }
  return peers;
}

Result<std::string> ResolveNodeAdvertise(const ChirondSettings& s) {
  if (s.node_listen.empty()) {
    if (!s.node_advertise.empty()) {
      return InvalidArgumentError(
          "--node-advertise needs --node-listen HOST:PORT (this node's "
          "peer listener): give it, or drop --node-advertise");
    }
    return std::string();
  }
  if (!s.node_advertise.empty()) {
    CHIRON_ASSIGN_OR_RETURN(HostPort advertised,
                            SplitHostPort(s.node_advertise, "--node-advertise"));
    if (advertised.port == 0) {
      return InvalidArgumentError("--node-advertise needs the port other nodes dial, not 0");
    }
    return s.node_advertise;
  }
  CHIRON_ASSIGN_OR_RETURN(HostPort listen, SplitHostPort(s.node_listen, "--node-listen"));
  if (!s.peers.empty() &&
      (listen.host.empty() || listen.host == "0.0.0.0" || listen.host == "::")) {
    return InvalidArgumentError(
        "--node-listen " + s.node_listen +
        " listens on every address, so other nodes cannot be told which one to dial: give "
        "--node-advertise HOST:PORT, the address they reach this node at");
  }
  return std::string();
}

Result<std::string> ResolveDataListen(const ChirondSettings& s) {
  if (s.data_listen == "off") return std::string();
  if (s.data_listen != "auto") {
    CHIRON_RETURN_IF_ERROR(SplitHostPort(s.data_listen, "--data-listen").status());
    return s.data_listen;
  }
  CHIRON_ASSIGN_OR_RETURN(HostPort api, SplitHostPort(s.listen, "--listen"));
  std::string host = api.host.find(':') != std::string::npos ? "[" + api.host + "]" : api.host;
  if (api.port == 65535) {
    return InvalidArgumentError("--data-listen auto would use port 65536 (the --listen port + "
                                "1); give --data-listen HOST:PORT or off");
  }
  return host + ":" + std::to_string(api.port == 0 ? 0 : api.port + 1);
}

std::vector<std::string> ConfigurableKeys(const CLI::App& app) {
  std::vector<std::string> keys;
  for (const CLI::Option* option : app.get_options()) {
    for (const auto& name : option->get_lnames()) {
      if (CommandLineOnly().count(name) == 0) keys.push_back(name);
    }
  }
  return keys;
}

Status ApplyConfigEntries(CLI::App& app, const std::vector<ConfigEntry>& entries,
                          const std::string& path) {
  const std::vector<std::string> known = ConfigurableKeys(app);
  for (const ConfigEntry& entry : entries) {
    const std::string where = path + ":" + std::to_string(entry.line) + ": ";
    if (CommandLineOnly().count(entry.key) != 0) {
      return InvalidArgumentError(where + "'" + entry.key +
                                  "' can only be given on the command line; remove the line");
    }
    CLI::Option* option =
        std::find(known.begin(), known.end(), entry.key) == known.end()
            ? nullptr
            : FindOption(app, entry.key);
    if (option == nullptr) {
      return InvalidArgumentError(where + "unknown setting '" + entry.key + "'" +
                                  Suggestion(entry.key, known) +
                                  "; the settings are chirond's long options without the dashes "
                                  "(chirond --help, docs/operations.md)");
    }
    if (option->count() > 0) continue;  // the command line wins
    if (IsFlag(*option) && entry.value != "true" && entry.value != "false") {
      return InvalidArgumentError(where + "'" + entry.key + "' is true or false, not '" +
                                  entry.value + "'");
    }
    try {
      option->add_result(entry.value);
      option->run_callback();
    } catch (const CLI::Error& error) {
      return InvalidArgumentError(where + "bad value for '" + entry.key + "': " + error.what() +
                                  "; see chirond --help");
    }
  }
  return Status::Ok();
}

std::string FormatSettings(const ChirondSettings& s) {
  std::string out =
      "# chirond's effective settings (config file format: docs/operations.md)\n";
  out += ConfigLine("platform", s.platform);
  out += ConfigLine("listen", s.listen);
  out += OptionalLine("state", s.state_dir, "not set: required");
  out += ConfigLine("worker", s.worker);
  out += ConfigLine("sandbox-policy", s.sandbox_policy);
  out += ConfigLine("recipes-dir", s.recipes_dir);
  out += ConfigLine("query-budget", std::to_string(s.query_budget));
  out += ConfigLine("worker-threads", std::to_string(s.worker_threads));
  out += ConfigLine("training-slots", std::to_string(s.training_slots));
  out += ConfigLine("checkpoint-every", std::to_string(s.checkpoint_every));
  out += ConfigLine("max-job-seconds", std::to_string(s.max_job_seconds));
  out += ConfigLine("max-job-memory", s.max_job_memory);
  out += ConfigLine("prediction-isolation", s.prediction_isolation);
  out += ConfigLine("tsm-root", s.tsm_root);
  out += OptionalLine("port-file", s.port_file, "not set");
  out += OptionalLine("write-sim-policy", s.write_sim_policy, "not set");
  out += ConfigLine("sim-debug", s.sim_debug ? "true" : "false");
  out += ConfigLine("sim-svn", std::to_string(s.sim_svn));
  out += ConfigLine("sim-no-sealing", s.sim_no_sealing ? "true" : "false");
  out += ConfigLine("quota", s.quota);
  out += ConfigLine("max-datasets", std::to_string(s.max_datasets));
  out += OptionalLine("metrics-listen", s.metrics_listen, "not set: no metrics endpoint");
  out += ConfigLine("data-listen", s.data_listen);
  out += OptionalLine("node-listen", s.node_listen, "not set: not in a cluster");
  out += OptionalLine("peers", s.peers, "not set");
  out += OptionalLine("cluster-policy", s.cluster_policy, "not set");
  out += OptionalLine("node-advertise", s.node_advertise, "not set: --node-listen's address");
  out += ConfigLine("cluster-store-key", s.cluster_store_key);
  out += ConfigLine("verbose", s.verbose ? "true" : "false");
  return out;
}

}  // namespace chiron::runtime
