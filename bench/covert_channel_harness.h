// The observing half of covert_channel_bench (see covert_channel_bench.cc for what is measured and
// how capacities are computed): a real chirond with the scripted worker, an owner and a provider
// driven through the public command-line tools, and the provider's timestamped view of each job.
// Benchmark support only; single-threaded.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace chiron::bench {

struct HarnessOptions {
  int runs = 3;                  // jobs per leak recipe and dataset
  int poll_ms = 1000;            // the provider's polling interval
  uint32_t epochs = 3;           // epochs per job (one full batch each)
  uint64_t budget_seconds = 10;  // declared by every recipe
  uint64_t budget_memory_mib = 512;
  int memory_bucket_step = 1;    // exponent step of the memory fact's buckets
  bool probe_hang = true;        // also run the probe whose step hangs until a deadline kills it
  // The view the owner chooses for every job (`chiron train --provider-view`): "coarse" or
  // "done-only".
  std::string provider_view = "coarse";
  std::string bin_dir;           // chirond, chiron, chiron-operator, scripted_worker, policy gen
  bool keep = false;             // keep the scratch directory
};

// What the provider sees of a job at one poll (`chiron-operator job facts --json`).
struct Facts {
  std::string state;
  std::string failure;
  uint32_t epochs_done = 0;
  uint32_t elapsed_minutes = 0;
  uint32_t memory_log2 = 0;
  friend bool operator==(const Facts&, const Facts&) = default;
};

struct JobRecord {
  std::string recipe;  // "leak-time", "probe-crash", ...
  int bit = -1;        // the dataset's differing bit (-1: probes, bit-0 data)
  int run = 0;
  bool after_memory = false;  // the bit-0 job run right after the memory leak's bit-1 jobs
  std::string job_id;
  double end_seconds = -1;  // first poll showing the job ended, from its first sighting; -1: never
  std::vector<std::pair<double, uint32_t>> epoch_changes;  // (seconds, new epochs_done)
  std::vector<std::pair<double, Facts>> changes;           // every change seen
  Facts final;
  // The memory fact of the job observed right after this one (0: none). Before issue 12 the fact
  // was the largest worker chirond had reaped so far, so a job's memory showed up in the next
  // job's fact; kept to check that it no longer does.
  uint32_t next_memory_log2 = 0;
};

struct Observations {
  std::vector<JobRecord> jobs;
  double wall_seconds = 0;
};

// The leak channels measured, each the recipe `leak-NAME` (`leak NAME` in its script).
inline const std::vector<std::string>& LeakChannels() {
  static const std::vector<std::string> kChannels = {"memory", "time", "state", "failure",
                                                     "epochs"};
  return kChannels;
}

// Starts chirond, registers the recipes, uploads the datasets, runs and observes every job, stops
// chirond. False (with the reason on stderr) if a step of the set-up failed.
bool Observe(const HarnessOptions& options, Observations* out);

}  // namespace chiron::bench
