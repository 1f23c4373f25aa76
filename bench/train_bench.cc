// Training and prediction throughput of Chiron against PyTorch as a user runs it, on
// Fashion-MNIST with the LeNet recipe (build/recipes/chiron_recipe_lenet.so): same batches, same
// hyper-parameters, same initial parameters, same thread count, measured in the same run.
//
//   build/bin/train_bench [--epochs N] [--threads N] [--train-limit N] [--seed N] [--hogs N]
//                         [--python PATH] [--worker-threads N] [--worker-env NAME=VALUE]...
//                         [--no-prediction]
// (--worker-threads: the sandboxed workers' threads when they differ from --threads, which the
// in-process path and PyTorch use: to see what a thread count does to the parameters.)
//
// Three training paths advance together over the same batch list, segment by segment (kSegment
// batches each, so a change in machine load hits all three alike):
//   sandboxed   the real thing: train::TrainingSession drives a sandboxed chiron-worker (separate
//               process, namespaces, seccomp, Landlock); the runtime side (this process) owns the
//               parameters, the optimizer and the batch order, copies each batch into the input
//               arena and the parameters into the parameter arena, and validates the gradients;
//   in-process  the same engine, optimizer and shuffler in this process (no sandbox, no IPC);
//   PyTorch     the baseline: bench/torch_baseline.py in Debian's python3-torch with its
//               defaults (the environment's OMP_WAIT_POLICY and GOMP_SPINCOUNT removed), the
//               recipe's model written in Python, torch.optim.SGD, driven over a pipe.
// The segments are cut by TrainingSession's checkpoint callback (every kSegment steps): inside
// it, the other two paths run the batches the worker just ran. The sandboxed time therefore
// includes the session's checkpoint serialisation (measured and printed).
//
// Prediction: one image, p50 latency of a train::PredictionSession (sandboxed worker) against
// PyTorch's forward of its own trained model (blocks of calls alternated); batched throughput
// over the test set, 500 images a call. Goals (issue 15): sandboxed / PyTorch training img/s
// >= 0.95; one-image latency within 50 us of PyTorch's; batched prediction ratio >= 0.95.
// --hogs N starts N busy loops (each in a session of its own, like another user's process) for
// the whole run: the loaded-machine figures.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chiron/recipe.h"
#include "runtime/train/metrics.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/prediction_session.h"
#include "runtime/train/shuffler.h"
#include "runtime/train/trained_model.h"
#include "runtime/train/training_session.h"
#include "shared/testing/fashion_mnist.h"
#include "worker/engine.h"

namespace chiron {
namespace {

using Clock = std::chrono::steady_clock;
using worker::testing::LabelledImages;

struct Flags {
  int epochs = 1;
  int threads = 2;
  size_t train_limit = 60000;
  uint64_t seed = 1;
  int worker_threads = 0;  // 0: --threads
  int hogs = 0;            // busy loops running beside the bench
  bool prediction = true;  // --no-prediction: training figures only
  std::string python = "/usr/bin/python3";
  std::vector<std::string> worker_env;  // extra NAME=VALUE for the sandboxed workers
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--epochs")
      f.epochs = std::atoi(next());
    else if (a == "--threads")
      f.threads = std::atoi(next());
    else if (a == "--train-limit")
      f.train_limit = std::strtoull(next(), nullptr, 10);
    else if (a == "--seed")
      f.seed = std::strtoull(next(), nullptr, 10);
    else if (a == "--worker-threads")
      f.worker_threads = std::atoi(next());
    else if (a == "--no-prediction")
      f.prediction = false;
    else if (a == "--hogs")
      f.hogs = std::atoi(next());
    else if (a == "--python")
      f.python = next();
    else if (a == "--worker-env")
      f.worker_env.push_back(next());
    else {
      std::fprintf(stderr,
                   "usage: train_bench [--epochs N] [--threads N] [--train-limit N] [--seed N] "
                   "[--worker-threads N] [--hogs N] [--python PATH] [--no-prediction] "
                   "[--worker-env NAME=VALUE]...\n");
      std::exit(2);
    }
  }
  if (f.epochs < 1 || f.threads < 1 || f.hogs < 0 || f.hogs > 64) {
    std::fprintf(stderr, "--epochs and --threads must be >= 1, --hogs in [0, 64]\n");
    std::exit(2);
  }
  if (f.worker_threads <= 0) f.worker_threads = f.threads;
  return f;
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "train_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr size_t kImageSize = 784;

void Gather(const LabelledImages& data, const std::vector<uint32_t>& batch,
            std::vector<uint8_t>& pixels, std::vector<int64_t>& labels) {
  pixels.resize(batch.size() * kImageSize);
  labels.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    std::memcpy(pixels.data() + i * kImageSize, data.pixels.data() + batch[i] * kImageSize,
                kImageSize);
    labels[i] = data.labels[batch[i]];
  }
}

// The trainers advance over the same batch list; the driver alternates them segment by segment
// (kSegment batches each) so a change in machine load hits all equally.
constexpr size_t kSegment = 25;

// ---- (a) Chiron's shape: engine gradients, trusted optimizer, flat parameters -------------------
class ChironTrainer {
 public:
  ChironTrainer(worker::Engine& engine, const LabelledImages& train, const OptimizerConfig& config,
                const worker::AlignedFloats& params, const worker::AlignedFloats& buffers)
      : engine_(engine),
        train_(train),
        config_(config),
        params_(params),
        buffers_(buffers),
        grads_(params.size()) {
    auto optimizer = train::Optimizer::Create(config, params.size());
    if (!optimizer.ok()) Die("optimizer", optimizer.status());
    optimizer_ = std::move(*optimizer);
  }

  void Run(const std::vector<uint32_t>& batch) {
    const auto start = Clock::now();
    Gather(train_, batch, pixels_, labels_);
    worker::BatchView view{
        pixels_,
        {reinterpret_cast<const uint8_t*>(labels_.data()), labels_.size() * sizeof(int64_t)},
        worker::LabelType::kI64,
        labels_.size()};
    float loss = 0;
    Status s = engine_.ComputeGradients(params_, buffers_, view, grads_, buffers_, &loss);
    if (!s.ok()) Die("ComputeGradients", s);
    s = optimizer_->Step(params_, grads_, config_.learning_rate);
    if (!s.ok()) Die("optimizer step", s);
    seconds += Seconds(start);
    images += batch.size();
  }

  double Accuracy(const LabelledImages& test) {
    auto metrics = train::MetricsAccumulator::Create(10);
    const size_t chunk = 500;
    worker::AlignedFloats logits(chunk * 10);
    for (size_t at = 0; at < test.count; at += chunk) {
      const size_t n = std::min(chunk, test.count - at);
      Status s = engine_.Predict(
          params_, buffers_,
          std::span<const uint8_t>(test.pixels).subspan(at * kImageSize, n * kImageSize), n,
          std::span<float>(logits).first(n * 10));
      if (!s.ok()) Die("Predict", s);
      s = metrics->Add(std::span<const float>(logits).first(n * 10),
                       std::span<const int64_t>(test.labels).subspan(at, n));
      if (!s.ok()) Die("metrics", s);
    }
    return metrics->Report().accuracy;
  }

  const worker::AlignedFloats& params() const { return params_; }

  double seconds = 0;
  size_t images = 0;

 private:
  worker::Engine& engine_;
  const LabelledImages& train_;
  OptimizerConfig config_;
  worker::AlignedFloats params_, buffers_, grads_;
  std::unique_ptr<train::Optimizer> optimizer_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
};

// ---- (b) PyTorch as a user runs it: bench/torch_baseline.py, driven over a pipe ----------------
// A child process (in this process's session) that answers one line per command (see the script's
// docstring). Its environment is this process's without OMP_WAIT_POLICY and GOMP_SPINCOUNT: the
// defaults a user gets.
class PythonBaseline {
 public:
  PythonBaseline(const Flags& flags, const std::string& batch_file) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
      Die("pipe", InternalError(std::strerror(errno)));
    }
    const std::string threads = std::to_string(flags.threads);
    const std::string limit = std::to_string(flags.train_limit);
    std::vector<std::string> args = {flags.python, CHIRON_TORCH_BASELINE, "serve", "--threads",
                                     threads,      "--train-limit",       limit,   "--batches",
                                     batch_file};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) Die("fork", InternalError(std::strerror(errno)));
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      unsetenv("OMP_WAIT_POLICY");
      unsetenv("GOMP_SPINCOUNT");
      execv(flags.python.c_str(), argv.data());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
    if (Call("") != "ready") Die("PyTorch baseline", InternalError("did not start"));
  }
  ~PythonBaseline() {
    std::fputs("quit\n", in_);
    std::fclose(in_);
    std::fclose(out_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  // Sends `command` (none if empty) and returns the reply line without its newline.
  std::string Call(const std::string& command) {
    if (!command.empty()) {
      std::fprintf(in_, "%s\n", command.c_str());
      std::fflush(in_);
    }
    char* line = nullptr;
    size_t capacity = 0;
    const ssize_t n = getline(&line, &capacity, out_);
    std::string reply = n > 0 ? std::string(line, static_cast<size_t>(n)) : "";
    std::free(line);
    while (!reply.empty() && reply.back() == '\n') reply.pop_back();
    if (reply.empty() || reply.rfind("error", 0) == 0) {
      Die("PyTorch baseline (" + command + ")",
          InternalError(reply.empty() ? "no reply (is python3-torch installed?)" : reply));
    }
    return reply;
  }
  // The number after a one-word prefix ("seconds 1.5" -> 1.5).
  double CallNumber(const std::string& command) {
    const std::string reply = Call(command);
    return std::strtod(reply.c_str() + reply.find(' ') + 1, nullptr);
  }
  std::vector<double> CallNumbers(const std::string& command) {
    std::istringstream reply(Call(command));
    std::string word;
    reply >> word;
    std::vector<double> values;
    double v;
    while (reply >> v) values.push_back(v);
    return values;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

// The batch list for the Python baseline: u64 count B, u64 offsets[B + 1], u32 indices.
void WriteBatchFile(const std::string& path, const std::vector<std::vector<uint32_t>>& batches) {
  std::ofstream out(path, std::ios::binary);
  uint64_t count = batches.size(), offset = 0;
  out.write(reinterpret_cast<const char*>(&count), 8);
  out.write(reinterpret_cast<const char*>(&offset), 8);
  for (const auto& b : batches) {
    offset += b.size();
    out.write(reinterpret_cast<const char*>(&offset), 8);
  }
  for (const auto& b : batches) {
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(4 * b.size()));
  }
  if (!out) Die(path, InternalError("cannot write"));
}

// The parameters for the Python baseline: each tensor's floats in registration order, unpadded.
void WriteParameterFile(const std::string& path, const worker::ParameterLayout& layout,
                        const worker::AlignedFloats& params) {
  std::ofstream out(path, std::ios::binary);
  for (const worker::TensorSlot& slot : layout.parameters) {
    out.write(reinterpret_cast<const char*>(params.data() + slot.offset),
              static_cast<std::streamsize>(slot.count * sizeof(float)));
  }
  if (!out) Die(path, InternalError("cannot write"));
}

// N busy loops, each in a session (hence an autogroup) of its own, killed on destruction or when
// the bench exits.
class Hogs {
 public:
  explicit Hogs(int count) {
    for (int i = 0; i < count; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        // Dies with the bench, also when it exits through Die() (no destructor runs then).
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) _exit(0);
        setsid();
        volatile uint64_t spins = 0;
        for (;;) spins = spins + 1;
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~Hogs() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  const std::vector<pid_t>& pids() const { return pids_; }

 private:
  std::vector<pid_t> pids_;
};

// One-image latencies: the paths alternate in blocks of kLatencyBlock calls (not call by call:
// a process's OpenMP threads spin for a while after a parallel region, and would steal the cores
// from another process called right after). The first call of each block is dropped.
constexpr int kLatencyBlock = 50;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU seconds (user, system) and page faults so far of this process's child processes (the
// sandboxed workers: direct children of the runtime) except g_not_workers (the Python baseline,
// the hogs), from /proc/PID/stat.
struct ChildUsage {
  double user = 0, system = 0, faults = 0;  // CPU seconds; page faults
};
std::vector<pid_t> g_not_workers;
ChildUsage ChildrenCpuSeconds() {
  std::vector<std::string> pids;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    pid_t pid;
    while (children >> pid) {
      if (std::find(g_not_workers.begin(), g_not_workers.end(), pid) == g_not_workers.end()) {
        pids.push_back(std::to_string(pid));
      }
    }
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double user = 0, system = 0, faults = 0;
  for (const std::string& pid : pids) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t end = text.rfind(')');  // the command name may contain spaces
    if (end == std::string::npos) continue;
    std::istringstream fields(text.substr(end + 2));
    std::string field;
    for (int i = 3; i <= 9 && fields >> field; ++i) {
    }
    double minflt = 0, cminflt = 0, majflt = 0, cmajflt = 0, utime = 0, stime = 0;
    fields >> minflt >> cminflt >> majflt >> cmajflt >> utime >> stime;  // fields 10 to 15
    user += utime / tick;
    system += stime / tick;
    faults += minflt + majflt;
  }
  return {user, system, faults};
}

// This thread's (user, system) CPU seconds.
std::pair<double, double> ThreadUsage() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return {seconds(usage.ru_utime), seconds(usage.ru_stime)};
}

// Page faults of this whole process so far.
double ProcessFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_minflt + usage.ru_majflt);
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

Bytes ReadFileBytes(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in) Die(path, InternalError("cannot read"));
  return ToBytes(s.str());
}

train::WorkerSettings SandboxSettings(int threads, const std::vector<std::string>& extra) {
  train::WorkerSettings settings;
  settings.worker_path = CHIRON_WORKER_PATH;
  settings.threads = threads;
  settings.request_timeout = std::chrono::seconds(120);
  // The worker's environment is fixed; hand it the same library path as this process so that
  // both sides use the same BLAS (NOTES.md: OpenBLAS, OpenMP variant).
  if (const char* path = std::getenv("LD_LIBRARY_PATH")) {
    settings.extra_environment.push_back(std::string("LD_LIBRARY_PATH=") + path);
  }
  settings.extra_environment.insert(settings.extra_environment.end(), extra.begin(), extra.end());
  // What WorkerSpinPolicy::kAuto does inside the session, done here so that it can be printed.
  settings.spin = train::MachineHasIdleCpusNow(threads) ? train::WorkerSpinPolicy::kSpin
                                                        : train::WorkerSpinPolicy::kPassive;
  const bool overridden = std::any_of(extra.begin(), extra.end(), [](const std::string& e) {
    return e.starts_with("GOMP_SPINCOUNT=");
  });
  std::printf("worker: WorkerSpinPolicy::kAuto chose %s (GOMP_SPINCOUNT=%s)%s\n",
              settings.spin == train::WorkerSpinPolicy::kSpin ? "spinning" : "passive",
              settings.spin == train::WorkerSpinPolicy::kSpin ? "300000" : "0",
              overridden ? ", replaced by --worker-env" : "");
  return settings;
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  const std::string load_before = LoadAverage();
  auto train_set = worker::testing::ReadFashionMnist("train", flags.train_limit);
  if (!train_set.ok()) Die("Fashion-MNIST train", train_set.status());
  auto test_set = worker::testing::ReadFashionMnist("t10k", 10000);
  if (!test_set.ok()) Die("Fashion-MNIST test", test_set.status());

  DatasetSchema schema;
  schema.input_shape = {1, 28, 28};
  schema.element_type = ElementType::kU8;
  schema.class_count = 10;
  worker::EngineOptions options;
  options.threads = flags.threads;
  options.seed = flags.seed;
  auto engine = worker::Engine::Load(CHIRON_RECIPE_LENET, schema, options);
  if (!engine.ok()) Die("Engine::Load", engine.status());
  worker::Engine& e = **engine;
  at::set_num_threads(flags.threads);

  TrainingConfig config = e.training_config();
  config.epochs = static_cast<uint32_t>(flags.epochs);
  if (Status s = train::ValidateTrainingConfig(config); !s.ok()) Die("recipe config", s);
  if (config.schedule.kind != ScheduleKind::kConstant || config.schedule.warmup_steps != 0 ||
      config.optimizer.kind != OptimizerKind::kSgd || config.optimizer.learning_rate != 0.01 ||
      config.optimizer.momentum != 0.9 || config.optimizer.nesterov ||
      config.optimizer.weight_decay != 0 || config.optimizer.dampening != 0 ||
      config.batch_size != 64) {
    Die("recipe config", InternalError("bench/torch_baseline.py trains with constant SGD lr 0.01 "
                                       "momentum 0.9, batch 64: keep it in step with the recipe"));
  }
  auto shuffler = train::Shuffler::Create(flags.seed, train_set->count, config.batch_size, false);
  if (!shuffler.ok()) Die("shuffler", shuffler.status());
  worker::AlignedFloats params(e.layout().parameter_count), buffers(e.layout().buffer_count);
  if (Status s = e.InitialParameters(params, buffers); !s.ok()) Die("InitialParameters", s);

  // The owner's data as the runtime holds it after decryption: u8 label || 784 pixels.
  dataset::DatasetSchema records_schema;
  records_schema.element_type = dataset::ElementType::kUint8;
  records_schema.shape = {1, 28, 28};
  records_schema.label_type = dataset::LabelType::kUint8;
  records_schema.class_names = {"tshirt", "trouser", "pullover", "dress", "coat",
                                "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  records_schema.sample_count = train_set->count;
  Bytes records;
  records.reserve(train_set->count * (kImageSize + 1));
  for (size_t i = 0; i < train_set->count; ++i) {
    records.push_back(static_cast<uint8_t>(train_set->labels[i]));
    records.insert(records.end(), train_set->pixels.begin() + i * kImageSize,
                   train_set->pixels.begin() + (i + 1) * kImageSize);
  }
  const Bytes recipe = ReadFileBytes(CHIRON_RECIPE_LENET);

  std::printf(
      "train_bench: LeNet (conv20-conv50-fc500, %zu parameters) on Fashion-MNIST, "
      "%zu train / %zu test images, %d epoch(s), batch %u, SGD lr %g momentum %g, "
      "%d thread(s) in each process, OpenMP BLAS\n",
      params.size(), train_set->count, test_set->count, flags.epochs, config.batch_size,
      config.optimizer.learning_rate, config.optimizer.momentum, flags.threads);
  std::printf("load average at start: %s (%u cores); %d busy loop(s) beside the bench\n",
              load_before.c_str(), std::thread::hardware_concurrency(), flags.hogs);
  // The kernel set this process's libtorch picked by CPU features (ATen's CPU capability, from
  // cpuinfo). The worker's must be the same, with the same threads, for the sandboxed and
  // in-process parameters to be bit-identical (docs/performance.md, "Bit-identical?").
  {
    std::istringstream config(at::show_config());
    for (std::string line; std::getline(config, line);) {
      if (line.find("CPU capability") == std::string::npos) continue;
      const size_t text = line.find_first_not_of(" -");
      std::printf("libtorch in this process: %s; worker threads %d, in-process threads %d\n",
                  line.c_str() + (text == std::string::npos ? 0 : text), flags.worker_threads,
                  flags.threads);
    }
  }
  std::printf(
      "paths: sandboxed = TrainingSession + chiron-worker (separate sandboxed process); "
      "in-process = same engine and optimizer, no sandbox; PyTorch = %s %s (its defaults). "
      "They alternate every %zu batches.\n",
      flags.python.c_str(), CHIRON_TORCH_BASELINE, kSegment);

  std::vector<std::vector<uint32_t>> all_batches;
  for (int epoch = 0; epoch < flags.epochs; ++epoch) {
    auto batches = shuffler->EpochBatches(static_cast<uint64_t>(epoch));
    all_batches.insert(all_batches.end(), batches.begin(), batches.end());
  }
  char directory_template[] = "/tmp/train_bench.XXXXXX";
  if (mkdtemp(directory_template) == nullptr) Die("mkdtemp", InternalError(std::strerror(errno)));
  const std::string directory = directory_template;
  WriteBatchFile(directory + "/batches", all_batches);
  WriteParameterFile(directory + "/parameters", e.layout(), params);
  PythonBaseline python(flags, directory + "/batches");
  g_not_workers.push_back(python.pid());
  python.Call("params " + directory + "/parameters");
  std::filesystem::remove_all(directory);
  Hogs hogs(flags.hogs);
  g_not_workers.insert(g_not_workers.end(), hogs.pids().begin(), hogs.pids().end());

  // The sandboxed session: no validation split (the same training set and batches as the
  // others), the same seed (the worker builds the same initial parameters), a checkpoint callback
  // every kSegment steps to interleave the other paths.
  train::TrainingOptions session_options;
  session_options.config = config;
  session_options.validation_fraction = 0;
  session_options.seed = flags.seed;
  session_options.checkpoint_every_steps = kSegment;
  session_options.worker = SandboxSettings(flags.worker_threads, flags.worker_env);
  auto start = Clock::now();
  auto session = train::TrainingSession::Create({records_schema, records}, recipe, session_options);
  if (!session.ok()) Die("TrainingSession::Create", session.status());
  const double session_start_seconds = Seconds(start);
  if ((*session)->parameter_count() != params.size()) {
    Die("layout", InternalError("the worker's parameter count differs from the engine's"));
  }

  // Warm-up of the in-process path (oneDNN JIT, allocator) on a few batches with throwaway
  // state. The worker and PyTorch warm up inside their first segment, which the median absorbs.
  {
    ChironTrainer warm_chiron(e, *train_set, config.optimizer, params, buffers);
    auto batches = shuffler->EpochBatches(1000);
    for (size_t b = 0; b < 10; ++b) warm_chiron.Run(batches[b]);
  }

  ChironTrainer chiron(e, *train_set, config.optimizer, params, buffers);
  double sandbox_seconds = 0, torch_seconds = 0;
  size_t sandbox_images = 0, done = 0, checkpoints = 0;
  std::vector<double> sandbox_ratios, inproc_ratios;  // PyTorch time / path time, per segment
  auto segment_start = Clock::now();
  // Where the sandboxed time goes: the worker's CPU time and the runtime thread's (copies,
  // validation, optimizer), summed over the sandboxed segments only.
  ChildUsage worker_cpu_start, worker_cpu;
  double runtime_cpu_start = 0, runtime_cpu = 0;
  std::pair<double, double> inproc_cpu{};  // main thread only: all of it at --threads 1
  double inproc_faults = 0;
  auto on_checkpoint = [&](ByteSpan, const train::EpochMetrics& metrics) -> Status {
    const double sandbox_segment = Seconds(segment_start);
    const auto worker_now = ChildrenCpuSeconds();
    worker_cpu.user += worker_now.user - worker_cpu_start.user;
    worker_cpu.system += worker_now.system - worker_cpu_start.system;
    worker_cpu.faults += worker_now.faults - worker_cpu_start.faults;
    runtime_cpu += ThreadCpuSeconds() - runtime_cpu_start;
    ++checkpoints;
    const size_t upto = std::min<size_t>(metrics.step, all_batches.size());
    if (upto > done) {
      const double inproc_before = chiron.seconds;
      const auto inproc_usage_before = ThreadUsage();
      const double inproc_faults_before = ProcessFaults();
      for (size_t b = done; b < upto; ++b) chiron.Run(all_batches[b]);
      const auto inproc_usage_after = ThreadUsage();
      inproc_faults += ProcessFaults() - inproc_faults_before;
      inproc_cpu.first += inproc_usage_after.first - inproc_usage_before.first;
      inproc_cpu.second += inproc_usage_after.second - inproc_usage_before.second;
      const double torch_segment =
          python.CallNumber("train " + std::to_string(done) + " " + std::to_string(upto));
      torch_seconds += torch_segment;
      for (size_t b = done; b < upto; ++b) sandbox_images += all_batches[b].size();
      sandbox_ratios.push_back(torch_segment / sandbox_segment);
      inproc_ratios.push_back(torch_segment / (chiron.seconds - inproc_before));
      sandbox_seconds += sandbox_segment;
      done = upto;
    }
    worker_cpu_start = ChildrenCpuSeconds();
    runtime_cpu_start = ThreadCpuSeconds();
    segment_start = Clock::now();
    return Status::Ok();
  };
  worker_cpu_start = ChildrenCpuSeconds();
  runtime_cpu_start = ThreadCpuSeconds();
  segment_start = Clock::now();
  auto trained = (*session)->Run({}, on_checkpoint);
  if (!trained.ok()) Die("TrainingSession::Run", trained.status());
  if (done != all_batches.size()) Die("segments", InternalError("batches left unmatched"));

  // What the session's checkpoints cost inside the sandboxed time (a real job checkpoints once
  // per epoch; here every kSegment steps): the same serialisation, timed on its own.
  double checkpoint_ms = 0;
  {
    auto optimizer = train::Optimizer::Create(config.optimizer, params.size());
    if (!optimizer.ok()) Die("optimizer", optimizer.status());
    worker::AlignedFloats zero_grads(params.size()), scratch = params;
    if (Status s = (*optimizer)->Step(scratch, zero_grads, config.optimizer.learning_rate); !s.ok())
      Die("step", s);
    std::vector<double> times;
    for (int i = 0; i < 9; ++i) {
      const auto t = Clock::now();
      Bytes bytes(64);
      train::EncodeTrainedModel(trained->model, bytes);
      Bytes state = (*optimizer)->SaveState();
      bytes.insert(bytes.end(), state.begin(), state.end());
      times.push_back(Seconds(t) * 1e3);
    }
    checkpoint_ms = Median(times);
  }

  // Test accuracy of the sandboxed model: predicted by a PredictionSession (sandboxed worker),
  // scored here.
  const size_t chunk = 500;
  train::PredictionOptions prediction_options;
  prediction_options.worker = SandboxSettings(flags.worker_threads, flags.worker_env);
  prediction_options.max_batch = chunk;
  prediction_options.seed = flags.seed;
  auto predictor =
      train::PredictionSession::Start(recipe, records_schema, trained->model, prediction_options);
  if (!predictor.ok()) Die("PredictionSession::Start", predictor.status());
  train::PredictionSession& p = **predictor;
  auto session_accuracy = [&] {
    auto metrics = train::MetricsAccumulator::Create(10);
    for (size_t at = 0; at < test_set->count; at += chunk) {
      const size_t n = std::min(chunk, test_set->count - at);
      auto logits =
          p.Predict(ByteSpan(test_set->pixels).subspan(at * kImageSize, n * kImageSize), n);
      if (!logits.ok()) Die("Predict", logits.status());
      Status s = metrics->Add(*logits, std::span<const int64_t>(test_set->labels).subspan(at, n));
      if (!s.ok()) Die("metrics", s);
    }
    return metrics->Report().accuracy;
  };
  const double sandbox_accuracy = session_accuracy();
  const double chiron_accuracy = chiron.Accuracy(*test_set);
  const double torch_accuracy = python.CallNumber("accuracy");
  float max_difference = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    max_difference =
        std::max(max_difference, std::abs(trained->model.parameters[i] - chiron.params()[i]));
  }

  const double sandbox_rate = static_cast<double>(sandbox_images) / sandbox_seconds;
  const double chiron_rate = static_cast<double>(chiron.images) / chiron.seconds;
  const double torch_rate = static_cast<double>(sandbox_images) / torch_seconds;
  std::printf("\nsandboxed worker start (launch, lockdown, recipe load): %.0f ms\n",
              session_start_seconds * 1e3);
  std::printf("\ntraining           img/s     test accuracy   seconds\n");
  std::printf("  sandboxed     %9.0f     %.4f          %.2f\n", sandbox_rate, sandbox_accuracy,
              sandbox_seconds);
  std::printf("  in-process    %9.0f     %.4f          %.2f\n", chiron_rate, chiron_accuracy,
              chiron.seconds);
  std::printf("  PyTorch       %9.0f     %.4f          %.2f\n", torch_rate, torch_accuracy,
              torch_seconds);
  std::printf(
      "  ratio sandboxed/PyTorch: %.3f overall, %.3f median over %zu segments (goal >= 0.95)\n",
      sandbox_rate / torch_rate, Median(sandbox_ratios), sandbox_ratios.size());
  std::printf("  ratio in-process/PyTorch: %.3f overall, %.3f median\n", chiron_rate / torch_rate,
              Median(inproc_ratios));
  std::printf(
      "  test accuracy sandboxed - PyTorch: %+.2f points (goal: within 0.5); sandboxed and "
      "in-process parameters differ by at most %g\n",
      100 * (sandbox_accuracy - torch_accuracy), static_cast<double>(max_difference));
  std::printf(
      "  sandboxed segments: %.2f s wall; worker CPU %.2f s user + %.2f s system, %.0f page "
      "faults; runtime thread CPU %.2f s (copies, checks, optimizer)\n"
      "  in-process segments: %.2f s wall; main thread CPU %.2f s user + %.2f s system, %.0f "
      "page faults (process)\n",
      sandbox_seconds, worker_cpu.user, worker_cpu.system, worker_cpu.faults, runtime_cpu,
      chiron.seconds, inproc_cpu.first, inproc_cpu.second, inproc_faults);
  std::printf(
      "  the sandboxed time includes %zu checkpoint serialisations of %.1f ms each (%.1f%% of it; "
      "a job checkpoints once per epoch)\n",
      checkpoints, checkpoint_ms,
      100 * checkpoint_ms * 1e-3 * static_cast<double>(checkpoints) / sandbox_seconds);

  if (!flags.prediction) {
    std::printf("\nload average at end: %s\n", LoadAverage().c_str());
    return 0;
  }
  // Prediction with the sandboxed model: one image (p50) and batched throughput, against the
  // in-process engine (same parameters) and PyTorch's forward of its own trained model.
  worker::AlignedFloats trained_params(trained->model.parameters.begin(),
                                       trained->model.parameters.end());
  worker::AlignedFloats trained_buffers(trained->model.buffers.begin(),
                                        trained->model.buffers.end());
  worker::AlignedFloats one(10);
  const ByteSpan first_image(test_set->pixels.data(), kImageSize);
  auto session_one = [&] {
    auto logits = p.Predict(first_image, 1);
    if (!logits.ok()) Die("Predict", logits.status());
  };
  auto engine_one = [&] {
    Status s = e.Predict(trained_params, trained_buffers, first_image, 1, one);
    if (!s.ok()) Die("Predict", s);
  };
  // Blocks of kLatencyBlock + 1 calls per path, alternated, the first call of a block dropped.
  std::vector<double> session_times, engine_times, torch_times;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i <= kLatencyBlock; ++i) {
      const auto t = Clock::now();
      session_one();
      if (i > 0) session_times.push_back(Seconds(t) * 1e6);
    }
    for (int i = 0; i <= kLatencyBlock; ++i) {
      const auto t = Clock::now();
      engine_one();
      if (i > 0) engine_times.push_back(Seconds(t) * 1e6);
    }
    const std::vector<double> block =
        python.CallNumbers("predict1 " + std::to_string(kLatencyBlock + 1));
    torch_times.insert(torch_times.end(), block.begin(), block.end());
  }
  const double session_p50 = Median(session_times), engine_p50 = Median(engine_times),
               torch_p50 = Median(torch_times);

  worker::AlignedFloats logits(chunk * 10);
  const size_t batched_images = test_set->count / chunk * chunk;
  auto session_all = [&] {
    for (size_t at = 0; at + chunk <= test_set->count; at += chunk) {
      auto out =
          p.Predict(ByteSpan(test_set->pixels).subspan(at * kImageSize, chunk * kImageSize), chunk);
      if (!out.ok()) Die("Predict", out.status());
    }
  };
  auto engine_all = [&] {
    for (size_t at = 0; at + chunk <= test_set->count; at += chunk) {
      Status s = e.Predict(trained_params, trained_buffers,
                           ByteSpan(test_set->pixels).subspan(at * kImageSize, chunk * kImageSize),
                           chunk, logits);
      if (!s.ok()) Die("Predict", s);
    }
  };
  std::vector<double> session_rates, engine_rates, torch_rates, session_ratios;
  for (int round = 0; round < 5; ++round) {  // interleaved
    start = Clock::now();
    session_all();
    session_rates.push_back(static_cast<double>(batched_images) / Seconds(start));
    start = Clock::now();
    engine_all();
    engine_rates.push_back(static_cast<double>(batched_images) / Seconds(start));
    torch_rates.push_back(python.CallNumber("batched " + std::to_string(chunk)));
    session_ratios.push_back(session_rates.back() / torch_rates.back());
  }
  std::printf("\nprediction (the sandboxed model; PyTorch: its own trained model)\n");
  std::printf(
      "  1 image p50: PredictionSession %.0f us, in-process engine %.0f us, PyTorch forward "
      "%.0f us\n",
      session_p50, engine_p50, torch_p50);
  std::printf("  PredictionSession - PyTorch: %+.0f us (goal <= 50 us)\n", session_p50 - torch_p50);
  std::printf(
      "  batched (%zu images per call, median of 5 interleaved rounds): PredictionSession %.0f "
      "img/s, in-process engine %.0f img/s, PyTorch %.0f img/s\n",
      chunk, Median(session_rates), Median(engine_rates), Median(torch_rates));
  std::printf("  ratio PredictionSession/PyTorch: %.3f median per round (goal >= 0.95)\n",
              Median(session_ratios));
  std::printf("\nload average at end: %s\n", LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace chiron

int main(int argc, char** argv) {
  // Run in a session of our own, like the worker (the sandbox calls setsid): with the kernel's
  // autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) each session competes for the
  // CPU as one group, so a bench sharing its session with a busy shell (a build started from the
  // same terminal) would give the in-process paths a share the sandboxed worker, alone in its
  // group, does not get. setsid needs a process that leads no process group: fork once.
  if (getsid(0) != getpid()) {
    const pid_t child = fork();
    if (child < 0) {
      std::perror("train_bench: fork");
      return 1;
    }
    if (child > 0) {
      int status = 0;
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (setsid() < 0) {
      std::perror("train_bench: setsid");
      return 1;
    }
  }
  return chiron::Main(argc, argv);
}
