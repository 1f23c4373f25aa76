// chirond's settings: one definition of every option, shared by the command line and the config
// file (`chirond --config FILE`, format in config_file.h and docs/operations.md).
//
// Every option AddChirondOptions registers (except --config, --print-config and --help) is a
// config key of the same name without the dashes. The command line wins over the file: chirond
// parses its arguments first, then ApplyConfigEntries sets only the options the command line
// did not give. Values from the file go through the same CLI11 validators as the command line,
// so `worker-threads = 100` fails exactly as `--worker-threads 100` does, with the file and
// line in the message.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/config/config_file.h"
#include "shared/base/status.h"

namespace chiron::runtime {

struct ChirondSettings {
  std::string platform = "sim";
  std::string listen = "127.0.0.1:7443";
  std::string state_dir;  // required (command line or file)
  std::string worker;
  std::string sandbox_policy;
  std::string recipes_dir;
  uint64_t query_budget = 100000;
  int worker_threads = 2;
  // Training jobs at once and the operator's limits on each (docs/operations.md).
  uint32_t training_slots = 2;
  uint64_t checkpoint_every = 200;  // optimizer steps between a job's sealed checkpoints
  uint64_t max_job_seconds = 6 * 3600;
  std::string max_job_memory = "8G";  // ParseByteSize
  // Prediction workers: "principal" (one per model and querying principal) or "request".
  std::string prediction_isolation = "principal";
  std::string tsm_root;
  std::string port_file;
  std::string metrics_listen;  // empty: no metrics endpoint
  // The data plane (docs/formats/data-plane.md): "auto" = the --listen host, its port + 1 (0 if
  // that port is 0); "off"; or host:port.
  std::string data_listen = "auto";
  std::string write_sim_policy;
  bool sim_debug = false;
  uint32_t sim_svn = 1;
  bool verbose = false;
  std::string quota = "16G";  // ParseByteSize
  uint64_t max_datasets = 64;
  // Distributed training (docs/distributed.md): this node's peer listener (empty: not in a
  // cluster), the other nodes' listeners (comma-separated host:port) and the cluster policy file
  // every peer's evidence must verify under.
  std::string node_listen;
  std::string peers;
  std::string cluster_policy;
  std::string node_advertise;  // the address other nodes dial for this node (default: node_listen)
  // A platform without sealing (tsm): where the store key comes from. "peers": from a peer that
  // holds it (start fails if none does); "new": from a peer, or a fresh key if none holds one
  // (the cluster's first node). docs/distributed.md, "Store keys without sealing".
  std::string cluster_store_key = "peers";
  bool sim_no_sealing = false;  // sim only, tests: no sealing key, as on tsm
};

// Adds every chirond option to `app`, bound to the fields of `settings` (which must outlive the
// app); the current field values are the defaults shown by --help.
void AddChirondOptions(CLI::App& app, ChirondSettings& settings);

// The keys a config file may set: the long names of the options AddChirondOptions added, in
// the order of --help.
std::vector<std::string> ConfigurableKeys(const CLI::App& app);

// Applies `entries` (from `path`) to the options of `app` that the command line did not set
// (Option::count() == 0). Errors name "PATH:LINE" and say what to do: an unknown key (with the
// closest known key), a key that cannot be set in a file (config, print-config, help), a
// boolean other than true/false, or a value the option's validator refuses.
Status ApplyConfigEntries(CLI::App& app, const std::vector<ConfigEntry>& entries,
                          const std::string& path);

// The effective settings as a config file that ApplyConfigEntries reads back to the same
// settings (`chirond --print-config`). Unset optional values are written as comments.
std::string FormatSettings(const ChirondSettings& settings);

// The data plane's host:port for `settings` ("auto" resolved against --listen), or "" for
// "off". InvalidArgument naming the option for an address that is not host:port.
Result<std::string> ResolveDataListen(const ChirondSettings& settings);

// The cluster settings checked together: --peers and --cluster-policy need --node-listen and
// each other; every address is host:port. The peers' addresses, or InvalidArgument naming the
// option and what to do.
Result<std::vector<std::string>> ResolvePeers(const ChirondSettings& settings);

// The address other nodes dial for this node's rank in a job: --node-advertise, or "" to take
// --node-listen's host with the bound port. InvalidArgument when --node-listen's host is a
// wildcard (0.0.0.0, ::) in a cluster with peers and no --node-advertise is given, or when
// --node-advertise is malformed, has port 0, or comes without --node-listen.
Result<std::string> ResolveNodeAdvertise(const ChirondSettings& settings);

// "16G", "512M", "1048576": bytes with an optional K/M/G/T (or KiB...) suffix, powers of 1024.
// False for anything else, zero, or an overflow.
bool ParseByteSize(const std::string& text, uint64_t& out);

}  // namespace chiron::runtime
