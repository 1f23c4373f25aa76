#include "bench/covert_channel_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "tests/workers/scripted_recipe.h"

extern char** environ;

namespace chiron::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kSamples = 200;
constexpr uint32_t kSide = 8;
constexpr uint32_t kClasses = 4;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv (no shell) to completion, stdin closed, output captured through files in `dir`.
CommandResult Run(const std::vector<std::string>& argv, const std::string& dir) {
  const std::string out_path = dir + "/cmd.out", err_path = dir + "/cmd.err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  CommandResult result;
  pid_t pid;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  result.out = ReadText(out_path);
  result.err = ReadText(err_path);
  return result;
}

// chirond as a child process; SIGTERM (then SIGKILL) when destroyed.
class Chirond {
 public:
  Chirond(const HarnessOptions& options, const std::string& dir) {
    const std::string policy = dir + "/sandbox-policy.txt";
    if (Run({options.bin_dir + "/chiron_sandbox_policy_gen", policy}, dir).exit_code != 0) return;
    const std::string port_file = dir + "/port";
    sim_policy_ = dir + "/sim-policy.json";
    log_ = dir + "/chirond.log";
    std::vector<std::string> argv = {options.bin_dir + "/chirond", "--platform", "sim",
                                     "--listen", "127.0.0.1:0", "--state", dir + "/state",
                                     "--worker", options.bin_dir + "/scripted_worker",
                                     "--sandbox-policy", policy, "--port-file", port_file,
                                     "--write-sim-policy", sim_policy_};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (pid_ > 0 && Clock::now() < deadline) {
      const std::string text = ReadText(port_file);
      if (!text.empty() && text.back() == '\n') {
        address_ = "127.0.0.1:" + std::to_string(std::stoi(text));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Chirond() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return !address_.empty(); }
  const std::string& address() const { return address_; }
  const std::string& sim_policy() const { return sim_policy_; }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  std::string address_, sim_policy_, log_;
};

void AppendU32Be(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// Writes DIR/STEM-images-idx3-ubyte and its labels: 200 8x8 images, 4 classes (the brightest
// quadrant), bit 0 of every sample's first byte clear except, if `bit`, the first sample's.
// The same seed for both datasets: they differ in that one bit only.
std::string WriteDataset(const std::string& dir, const std::string& stem, int bit) {
  std::string images, labels;
  AppendU32Be(images, 0x803);
  AppendU32Be(images, kSamples);
  AppendU32Be(images, kSide);
  AppendU32Be(images, kSide);
  AppendU32Be(labels, 0x801);
  AppendU32Be(labels, kSamples);
  std::mt19937_64 random(12345);
  for (uint32_t i = 0; i < kSamples; ++i) {
    const uint32_t label = i % kClasses;
    labels.push_back(static_cast<char>(label));
    for (uint32_t p = 0; p < kSide * kSide; ++p) {
      const uint32_t y = p / kSide, x = p % kSide;
      const uint32_t quadrant = (y >= kSide / 2) * 2 + (x >= kSide / 2);
      uint8_t value = static_cast<uint8_t>(random() % 100 + (quadrant == label ? 120 : 0));
      if (p == 0) value = static_cast<uint8_t>((value & 0xfe) | (i == 0 && bit ? 1 : 0));
      images.push_back(static_cast<char>(value));
    }
  }
  const std::string path = dir + "/" + stem + "-images-idx3-ubyte";
  std::ofstream(path, std::ios::binary) << images;
  std::ofstream(dir + "/" + stem + "-labels-idx1-ubyte", std::ios::binary) << labels;
  return path;
}

bool Terminal(const std::string& state) { return state != "queued" && state != "running"; }

class Session {
 public:
  Session(const HarnessOptions& options, const std::string& dir, const Chirond& chirond)
      : options_(options), dir_(dir), chirond_(chirond) {}

  CommandResult Cli(const std::string& program, const std::string& profile,
                    std::vector<std::string> args) {
    std::vector<std::string> argv = {options_.bin_dir + "/" + program, "--profile",
                                     dir_ + "/" + profile, "--server", chirond_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv, dir_);
  }
  bool Check(const CommandResult& result, const std::string& what) {
    if (result.exit_code == 0) return true;
    std::fprintf(stderr, "covert_channel_bench: %s failed (exit %d):\n%s%s\nchirond's log: %s\n",
                 what.c_str(), result.exit_code, result.out.c_str(), result.err.c_str(),
                 chirond_.log().c_str());
    return false;
  }
  bool Register(const std::string& name, const std::string& script) {
    const std::string path = dir_ + "/" + name + ".recipe";
    std::ofstream(path, std::ios::binary) << chiron::testing::ScriptedRecipe(script);
    return Check(Cli("chiron-operator", "provider",
                     {"recipe", "register", path, "--name", name, "--version", "1"}),
                 "registering " + name);
  }

  // The provider's current view of `job_id`; false if the job is not listed (yet).
  bool Poll(const std::string& job_id, Facts* facts) {
    const CommandResult result = Cli("chiron-operator", "provider", {"job", "facts", "--json"});
    if (result.exit_code != 0) return false;
    const auto list = nlohmann::json::parse(result.out, nullptr, false);
    if (!list.is_array()) return false;
    for (const auto& item : list) {
      if (item.value("job_id", "") != job_id) continue;
      facts->state = item.value("state", "");
      facts->failure = item.value("failure", "");
      facts->epochs_done = item.value("epochs_done", 0u);
      facts->elapsed_minutes = item.value("elapsed_minutes", 0u);
      facts->memory_log2 = item.value("peak_memory_bucket_log2", 0u);
      return true;
    }
    return false;
  }

  // The owner starts a job; the provider watches it to its end.
  bool RunJob(JobRecord& job, const std::string& dataset, uint64_t seed) {
    static int counter = 0;
    const CommandResult started = Cli(
        "chiron", "owner",
        {"train", "--dataset", dataset, "--recipe", job.recipe, "--model",
         "m" + std::to_string(++counter), "--epochs", std::to_string(options_.epochs), "--seed",
         std::to_string(seed), "--provider-view", options_.provider_view, "--detach", "--json"});
    if (!Check(started, "starting " + job.recipe)) return false;
    const auto view = nlohmann::json::parse(started.out, nullptr, false);
    if (!view.is_object() || !view.contains("job_id")) {
      std::fprintf(stderr, "covert_channel_bench: no job id in: %s\n", started.out.c_str());
      return false;
    }
    job.job_id = view["job_id"];
    const auto poll = std::chrono::milliseconds(options_.poll_ms);
    const auto give_up = Clock::now() + std::chrono::seconds(4 * options_.budget_seconds + 180);
    bool seen = false;
    Clock::time_point first;
    Facts last;
    for (auto tick = Clock::now(); Clock::now() < give_up; tick += poll) {
      std::this_thread::sleep_until(tick);
      Facts facts;
      if (!Poll(job.job_id, &facts)) continue;
      const auto now = Clock::now();
      if (!seen) {
        seen = true;
        first = now;
      }
      const double t = std::chrono::duration<double>(now - first).count();
      if (job.changes.empty() || !(facts == last)) job.changes.emplace_back(t, facts);
      if (facts.epochs_done != last.epochs_done)
        job.epoch_changes.emplace_back(t, facts.epochs_done);
      last = facts;
      if (Terminal(facts.state)) {
        job.end_seconds = t;
        break;
      }
    }
    job.final = last;
    if (job.end_seconds < 0) {
      Cli("chiron", "owner", {"job", "cancel", job.job_id});
      std::fprintf(stderr, "covert_channel_bench: job %s did not end in time\n",
                   job.job_id.c_str());
    }
    std::fprintf(stderr, "  %-14s bit %2d run %d: end %5.1f s  %-9s %-17s epochs %u  mem 2^%u%s\n",
                 job.recipe.c_str(), job.bit, job.run, job.end_seconds, job.final.state.c_str(),
                 job.final.failure.c_str(), job.final.epochs_done, job.final.memory_log2,
                 job.after_memory ? "  (after the memory leak's bit-1 jobs)" : "");
    return true;
  }

 private:
  const HarnessOptions& options_;
  std::string dir_;
  const Chirond& chirond_;
};

}  // namespace

bool Observe(const HarnessOptions& options, Observations* out) {
  const auto started = Clock::now();
  char pattern[] = "/tmp/covert-channel-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return false;
  const std::string dir = pattern;
  bool ok = false;
  {
    Chirond chirond(options, dir);
    if (!chirond.ok()) {
      std::fprintf(stderr, "covert_channel_bench: chirond did not start; its log:\n%s\n",
                   ReadText(dir + "/chirond.log").c_str());
    } else {
      ok = [&] {
        Session s(options, dir, chirond);
        for (const auto& [program, profile] :
             {std::pair{"chiron", "owner"}, std::pair{"chiron-operator", "provider"}}) {
          if (!s.Check(s.Cli(program, profile,
                             {"init", "--name", profile, "--policy", chirond.sim_policy()}),
                       std::string(program) + " init")) {
            return false;
          }
        }
        for (int bit : {0, 1}) {
          const std::string images = WriteDataset(dir, "leak" + std::to_string(bit), bit);
          if (!s.Check(s.Cli("chiron", "owner",
                             {"dataset", "upload", images, "--name", "bit" + std::to_string(bit)}),
                       "uploading a dataset")) {
            return false;
          }
        }
        const std::string common =
            "epochs " + std::to_string(options.epochs) + "\nbatch_size 256\nlearning_rate 0.1\n" +
            "budget_seconds " + std::to_string(options.budget_seconds) + "\nbudget_memory " +
            std::to_string(options.budget_memory_mib << 20) + "\n";
        for (const std::string& channel : LeakChannels()) {
          if (!s.Register("leak-" + channel, common + "leak " + channel +
                                                 "\nleak_at_step 1\nleak_sleep_ms 3000\n"
                                                 "leak_mb 256\n")) {
            return false;
          }
        }
        std::vector<std::pair<std::string, std::string>> probes = {
            {"probe-crash", "fail_at_step 1 crash"}, {"probe-nan", "fail_at_step 1 nan"},
            {"probe-oom", "fail_at_step 1 exit 71"}, {"probe-frame", "fail_at_step 1 bad_frame"},
            {"probe-syscall", "fail_at_step 1 syscall"}};
        if (options.probe_hang) probes.emplace_back("probe-hang", "fail_at_step 1 hang");
        for (const auto& [name, script] : probes) {
          if (!s.Register(name, common + script)) return false;
        }
        uint64_t seed = 1;
        for (const std::string& channel : LeakChannels()) {
          for (int bit : {0, 1}) {
            for (int run = 0; run < options.runs; ++run) {
              JobRecord job;
              job.recipe = "leak-" + channel;
              job.bit = bit;
              job.run = run;
              if (!s.RunJob(job, "bit" + std::to_string(bit), seed++)) return false;
              out->jobs.push_back(job);
            }
          }
          if (channel == "memory") {  // does a later job's fact show an earlier job's memory?
            JobRecord job;
            job.recipe = "leak-memory";
            job.bit = 0;
            job.run = options.runs;
            job.after_memory = true;
            if (!s.RunJob(job, "bit0", seed++)) return false;
            out->jobs.push_back(job);
          }
        }
        for (const auto& [name, script] : probes) {
          JobRecord job;
          job.recipe = name;
          if (!s.RunJob(job, "bit0", seed++)) return false;
          out->jobs.push_back(job);
        }
        for (size_t i = 0; i + 1 < out->jobs.size(); ++i) {
          out->jobs[i].next_memory_log2 = out->jobs[i + 1].final.memory_log2;
        }
        return true;
      }();
    }
  }
  if (!options.keep) fs::remove_all(dir);
  else std::fprintf(stderr, "covert_channel_bench: kept %s\n", dir.c_str());
  out->wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return ok;
}

}  // namespace chiron::bench
