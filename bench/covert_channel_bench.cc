// covert_channel_bench: how many bits of the owner's data a hostile provider learns per job from
// what it may see of the job (Jobs.ListJobFacts, docs/provider-facts.md), measured, not estimated.
//
//   cmake --build build --target covert_channel_bench   (also builds chirond, chiron and the
//                                                         scripted worker it starts)
//   build/bin/covert_channel_bench [--runs N] [--poll-ms MS] [--epochs E] [--budget-seconds T]
//       [--budget-memory-mib M] [--memory-bucket-step S] [--provider-view coarse|done-only]
//       [--no-hang] [--bin-dir DIR] [--keep]
//
// What it does, as the two parties would, through the public API only (the `chiron` and
// `chiron-operator` command-line tools against a real chirond; nothing internal is read):
//   1. starts chirond (sim platform, its own state directory, 127.0.0.1) with
//      `--worker scripted_worker` (tests/workers/scripted_recipe.h: a real sandboxed worker whose
//      "recipe" is a script), from --bin-dir (default: this program's directory);
//   2. as a provider, registers one hostile recipe per channel (`leak time|memory|state|failure|
//      epochs`: the recipe reads one bit of the data and modulates that channel with it) and one
//      probe recipe per failure kind it can cause;
//   3. as an owner, uploads two datasets of 200 8x8 images that differ in one bit (bit 0 of the
//      first byte of the first sample) and trains every leak recipe on each, --runs times
//      (default 3), one job at a time, E epochs (default 3) of one full batch each, in the
//      provider view the owner picks (--provider-view, default coarse: `chiron train
//      --provider-view`);
//   4. as the provider, polls `chiron-operator job facts --json` every --poll-ms (default 1000)
//      while each job runs and timestamps every change it sees, from the moment the job first
//      appears (the provider does not know when the owner started it).
//
// Per job it records the end time (first poll showing a state other than queued or running),
// the times at which epochs_done changed, the final state, failure, epochs_done and memory
// bucket, and the memory bucket of the job observed next (before issue 12 the memory fact was
// the largest worker chirond had reaped so far, so one job's memory showed in the next job's
// fact). An
// observable distinguishes the datasets when the values of the bit-0 runs and the bit-1 runs do
// not overlap (times: separated by at least one poll interval; names: disjoint sets).
//
// Capacity, in bits per job, is log2 of the number of values a recipe could choose for an
// observable within the job's budget (T seconds, M bytes, E epochs) at the resolution observed,
// counted only for observables that some leak recipe measurably moved (0 otherwise):
//   end time          log2(T / r + 1), r = max(poll interval, largest spread of the end time
//                     among runs of one recipe on one dataset)
//   epoch times       log2(C(T / r + E - 1, E - 1)): the moments of the E - 1 epoch changes
//                     before the end, non-decreasing, at resolution r (an upper bound: it also
//                     counts orders the end time already fixes)
//   state             log2(final states seen)
//   failure           log2(1 + F) - log2(states), F = failure categories the probes reached
//   epochs_done       log2(1 + F × E) - log2(1 + F): a failing job chooses how many of its E
//                     epochs it finished
//   memory bucket     log2((budget bucket - lowest bucket seen) / S + 1), S = --memory-bucket-step
//                     (1 for the ⌈log2⌉ buckets before issue 12, 2 for its powers of four);
//                     counted if the job's own fact or the next job's fact distinguished
// The total is their sum. The same figures for a one-hour budget at the same resolution are
// printed beside them (the reference case). Before issue 12 the budget was declared, not
// enforced, so a recipe could run longer and use more memory than the capacity assumes.
//
// Wall clock: about 1.5 minutes on the code before issue 12; since then every job is shown as
// running until its time budget has run out, so each takes about T: about 5-7 minutes for
// --runs 2 and T = 10 s (--no-hang saves one job).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/covert_channel_harness.h"

namespace chiron::bench {
namespace {

struct Range {
  double low = 1e300, high = -1e300;
  bool complete = true;  // every job had a value
  void Add(double v) {
    if (v < 0) complete = false;
    low = std::min(low, v);
    high = std::max(high, v);
  }
};
// Separated by at least `gap` (times are sampled at poll instants: closer values are noise).
bool Disjoint(const Range& a, const Range& b, double gap) {
  return a.complete && b.complete && (a.high + gap <= b.low || b.high + gap <= a.low);
}
std::string Show(const Range& r) {
  char text[48];
  if (r.low == r.high) std::snprintf(text, sizeof text, "%.1f", r.low);
  else std::snprintf(text, sizeof text, "%.1f-%.1f", r.low, r.high);
  return text;
}
std::string Show(const std::set<std::string>& values) {
  std::string text;
  for (const std::string& v : values) text += (text.empty() ? "" : ",") + v;
  return text;
}
bool Disjoint(const std::set<std::string>& a, const std::set<std::string>& b) {
  for (const std::string& v : a) {
    if (b.count(v)) return false;
  }
  return true;
}

// The seconds at which epochs_done first reached `k` (-1: never).
double EpochTime(const JobRecord& job, uint32_t k) {
  for (const auto& [t, epochs] : job.epoch_changes) {
    if (epochs >= k) return t;
  }
  return -1;
}

double Log2Binomial(double n, double k) {
  return (std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1)) / std::log(2.0);
}

int Usage() {
  std::fprintf(stderr,
               "usage: covert_channel_bench [--runs N] [--poll-ms MS] [--epochs E] "
               "[--budget-seconds T] [--budget-memory-mib M] [--memory-bucket-step S] "
               "[--provider-view coarse|done-only] [--no-hang] [--bin-dir DIR] [--keep]\n");
  return 2;
}

struct Verdicts {
  bool end = false, epoch_times = false, state = false, failure = false, epochs = false,
       memory = false, next_memory = false;
};

// One row per leak recipe: each observable's values for the bit-0 and bit-1 runs, and whether
// they separate the datasets.
Verdicts PrintDistinguished(const HarnessOptions& options, const Observations& obs) {
  Verdicts any;
  std::printf("\n| leak recipe | end time (s) | epoch-change times (s) | state | failure | "
              "epochs_done | memory bucket (log2) | next job's memory bucket |\n"
              "|---|---|---|---|---|---|---|---|\n");
  auto cell = [](bool distinguished, const std::string& zero, const std::string& one) {
    return std::string(distinguished ? "**yes** " : "no ") + zero + " / " + one;
  };
  for (const std::string& channel : LeakChannels()) {
    Range end[2];
    std::vector<Range> epoch(options.epochs + 1);
    std::vector<Range> epoch_by_bit[2] = {epoch, epoch};
    std::set<std::string> state[2], failure[2], epochs[2], memory[2], next_memory[2];
    for (const JobRecord& job : obs.jobs) {
      if (job.recipe != "leak-" + channel || job.bit < 0 || job.after_memory) continue;
      end[job.bit].Add(job.end_seconds);
      for (uint32_t k = 1; k < options.epochs; ++k) epoch_by_bit[job.bit][k].Add(EpochTime(job, k));
      state[job.bit].insert(job.final.state);
      failure[job.bit].insert(job.final.failure);
      epochs[job.bit].insert(std::to_string(job.final.epochs_done));
      memory[job.bit].insert(std::to_string(job.final.memory_log2));
      next_memory[job.bit].insert(std::to_string(job.next_memory_log2));
    }
    const double gap = options.poll_ms / 1000.0;
    Verdicts v;
    v.end = Disjoint(end[0], end[1], gap);
    std::string epoch_text[2];
    for (uint32_t k = 1; k < options.epochs; ++k) {
      v.epoch_times |= Disjoint(epoch_by_bit[0][k], epoch_by_bit[1][k], gap);
      for (int b : {0, 1}) {
        epoch_text[b] += (k > 1 ? "; " : "") + (epoch_by_bit[b][k].complete
                                                    ? Show(epoch_by_bit[b][k])
                                                    : std::string("never"));
      }
    }
    v.state = Disjoint(state[0], state[1]);
    v.failure = Disjoint(failure[0], failure[1]);
    v.epochs = Disjoint(epochs[0], epochs[1]);
    v.memory = Disjoint(memory[0], memory[1]);
    v.next_memory = Disjoint(next_memory[0], next_memory[1]);
    std::printf("| leak %s | %s | %s | %s | %s | %s | %s | %s |\n", channel.c_str(),
                cell(v.end, Show(end[0]), Show(end[1])).c_str(),
                cell(v.epoch_times, epoch_text[0], epoch_text[1]).c_str(),
                cell(v.state, Show(state[0]), Show(state[1])).c_str(),
                cell(v.failure, Show(failure[0]), Show(failure[1])).c_str(),
                cell(v.epochs, Show(epochs[0]), Show(epochs[1])).c_str(),
                cell(v.memory, Show(memory[0]), Show(memory[1])).c_str(),
                cell(v.next_memory, Show(next_memory[0]), Show(next_memory[1])).c_str());
    any.end |= v.end;
    any.epoch_times |= v.epoch_times;
    any.state |= v.state;
    any.failure |= v.failure;
    any.epochs |= v.epochs;
    any.memory |= v.memory;
    any.next_memory |= v.next_memory;
  }
  std::printf("\n(cells: bit-0 runs / bit-1 runs; **yes**: the values do not overlap (times: by "
              "at least one poll interval), so the provider tells the datasets apart)\n");
  return any;
}

void PrintCapacity(const HarnessOptions& options, const Observations& obs, const Verdicts& any) {
  // Resolution: the poll interval, or the spread of one recipe's end time on one dataset.
  std::map<std::string, Range> groups;
  std::set<std::string> states, outcomes, failures;
  uint32_t lowest_memory = 64;
  for (const JobRecord& job : obs.jobs) {
    if (job.end_seconds >= 0 && !job.after_memory) {
      groups[job.recipe + "/" + std::to_string(job.bit)].Add(job.end_seconds);
    }
    states.insert(job.final.state);
    outcomes.insert(job.final.state + "/" + job.final.failure);
    if (job.final.failure != "none" && !job.final.failure.empty())
      failures.insert(job.final.failure);
    if (job.final.memory_log2 > 0) lowest_memory = std::min(lowest_memory, job.final.memory_log2);
  }
  double resolution = options.poll_ms / 1000.0;
  for (const auto& [name, range] : groups)
    resolution = std::max(resolution, range.high - range.low);
  const double epochs = options.epochs;
  const double outcome_values = static_cast<double>(outcomes.size());
  const int budget_log2 = static_cast<int>(
      std::ceil(std::log2(static_cast<double>(options.budget_memory_mib) * 1048576)));
  const int memory_values =
      lowest_memory < 64 && budget_log2 > static_cast<int>(lowest_memory)
          ? (budget_log2 - static_cast<int>(lowest_memory) + options.memory_bucket_step - 1) /
                    options.memory_bucket_step + 1
          : 1;
  struct Row {
    const char* channel;
    bool measured;
    std::function<double(double)> bits;  // of the time budget in seconds
    std::string how;
  };
  auto slots = [&](double budget) { return std::floor(budget / resolution) + 1; };
  const std::vector<Row> rows = {
      {"end time", any.end, [&](double t) { return std::log2(slots(t)); }, "log2(T/r + 1)"},
      {"epoch-change times", any.epoch_times,
       [&](double t) { return Log2Binomial(slots(t) + epochs - 2, epochs - 1); },
       "log2 C(T/r + E - 2, E - 1)"},
      {"state", any.state, [&](double) { return std::log2(static_cast<double>(states.size())); },
       std::to_string(states.size()) + " final states seen"},
      {"failure category", any.failure,
       [&](double) {
         return std::log2(outcome_values) - std::log2(static_cast<double>(states.size()));
       },
       failures.empty()
           ? std::string("no failure category shown")
           : std::to_string(failures.size()) + " categories reached: " + Show(failures)},
      {"epochs_done", any.epochs,
       [&](double) {
         return std::log2((outcome_values - 1) * epochs + 1) - std::log2(outcome_values);
       },
       "a failing job picks 0..E-1"},
      {"memory bucket", any.memory || any.next_memory,
       [&](double) { return std::log2(memory_values); },
       lowest_memory == 64
           ? std::string("no memory fact shown")
           : std::to_string(memory_values) + " buckets from 2^" + std::to_string(lowest_memory) +
                 " to the budget's 2^" +
                 std::to_string(lowest_memory + (memory_values - 1) * options.memory_bucket_step) +
                 (any.memory        ? ""
                  : any.next_memory ? " (seen in the next job's fact)"
                                    : "")},
  };
  const double budget = static_cast<double>(options.budget_seconds);
  std::printf("\nResolution r = %.2f s (poll interval %.1f s; largest spread of one recipe's end "
              "time on one dataset). E = %u epochs, T = %.0f s, memory budget %llu MiB.\n\n",
              resolution, options.poll_ms / 1000.0, options.epochs, budget,
              static_cast<unsigned long long>(options.budget_memory_mib));
  std::printf("| channel | distinguished | bits/job (T = %.0f s) | bits/job (T = 1 h) | how |\n"
              "|---|---|---|---|---|\n", budget);
  double total = 0, total_hour = 0;
  for (const Row& row : rows) {
    const double bits = row.measured ? row.bits(budget) : 0;
    const double hour = row.measured ? row.bits(3600) : 0;
    total += bits;
    total_hour += hour;
    std::printf("| %s | %s | %.1f | %.1f | %s |\n", row.channel, row.measured ? "yes" : "no",
                bits, hour, row.how.c_str());
  }
  std::printf("| **total** | | **%.1f** | **%.1f** | |\n", total, total_hour);
  for (const JobRecord& job : obs.jobs) {
    if (!job.after_memory) continue;
    if (job.final.memory_log2 == 0) continue;  // no memory fact shown (done-only view)
    std::printf("\nA bit-0 job run right after the memory leak's bit-1 jobs shows memory bucket "
                "2^%u (the bit-0 runs before them: see the table above).\n",
                job.final.memory_log2);
  }
  std::printf("\n%zu jobs, %.0f s of wall clock.\n", obs.jobs.size(), obs.wall_seconds);
}

}  // namespace
}  // namespace chiron::bench

int main(int argc, char** argv) {
  using namespace chiron::bench;
  HarnessOptions options;
  options.bin_dir = std::filesystem::canonical("/proc/self/exe").parent_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(Usage());
      return argv[++i];
    };
    if (a == "--runs") options.runs = std::stoi(next());
    else if (a == "--poll-ms") options.poll_ms = std::stoi(next());
    else if (a == "--epochs") options.epochs = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--budget-seconds") options.budget_seconds = std::stoull(next());
    else if (a == "--budget-memory-mib") options.budget_memory_mib = std::stoull(next());
    else if (a == "--memory-bucket-step") options.memory_bucket_step = std::stoi(next());
    else if (a == "--provider-view") options.provider_view = next();
    else if (a == "--no-hang") options.probe_hang = false;
    else if (a == "--bin-dir") options.bin_dir = next();
    else if (a == "--keep") options.keep = true;
    else return Usage();
  }
  if (options.runs < 1 || options.poll_ms < 10 || options.epochs < 3 ||
      options.memory_bucket_step < 1 || options.budget_seconds < 1 ||
      options.budget_memory_mib < 1 ||
      (options.provider_view != "coarse" && options.provider_view != "done-only")) {
    std::fprintf(stderr, "covert_channel_bench: --runs >= 1, --poll-ms >= 10, --epochs >= 3 "
                         "(the epochs leak fails after epoch 1 or 2), --memory-bucket-step >= 1, "
                         "budgets >= 1, --provider-view coarse or done-only\n");
    return 2;
  }
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  std::printf("covert_channel_bench: %s\n", command.c_str());
  std::fflush(stdout);
  Observations observations;
  if (!Observe(options, &observations)) return 1;
  const Verdicts any = PrintDistinguished(options, observations);
  PrintCapacity(options, observations, any);
  return 0;
}
