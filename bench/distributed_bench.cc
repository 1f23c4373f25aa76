// Synchronous data-parallel training across nodes against one node and against PyTorch DDP over
// Gloo, and the asynchronous mode (bounded staleness) against both, in one run on this machine
// (docs/distributed.md, "Measured" and "Asynchronous mode"):
//
//   build/bin/distributed_bench [--nodes N] [--threads T] [--epochs E] [--train-limit N]
//                               [--staleness S] [--no-pytorch]
//
// Chiron, N nodes: N processes (forked from this one), each a node: a sim-platform attested TLS
// identity, a NodeListener on 127.0.0.1, a PeerGroup joined over mutual RA-TLS, and a
// TrainingSession driving its own sandboxed chiron-worker (LeNet recipe, T threads) on its
// contiguous shard of Fashion-MNIST's training set; the global batch is the recipe's (64) split
// over the nodes; gradients reduce-scattered and parameters all-gathered every step (the sharded
// parameter server). Chiron, 1 node: the same job in one TrainingSession. PyTorch: the same LeNet
// with DDP over Gloo (bench/ddp_baseline.py, /usr/bin/python3, PyTorch's defaults, clear text),
// N processes and 1. No validation split (as the DDP script); test accuracy on t10k.
// Chiron, N nodes, asynchronous: the same N-node job with TrainingOptions::staleness S (default
// 1; 0 skips it), the exchange of earlier steps overlapping the worker's next gradients.
//
// Printed ratios and goals: N nodes / 1 node img/s (>= 1.5 at N = 2), N nodes / DDP (>= 0.9),
// bytes per node per step / 2·P·4·(N−1)/N (<= 1.1; the gRPC messages and the TCP payload, i.e.
// the TLS records on the wire), test accuracy difference (<= 0.5 points).
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/cluster/group_collective.h"
#include "runtime/cluster/node_listener.h"
#include "runtime/cluster/peer_group.h"
#include "runtime/tee/platform.h"
#include "runtime/train/metrics.h"
#include "runtime/train/prediction_session.h"
#include "runtime/train/training_session.h"
#include "shared/attest/evidence.h"
#include "shared/attest/verifier.h"
#include "shared/ratls/ratls.h"
#include "shared/testing/fashion_mnist.h"

namespace chiron {
namespace {

using Clock = std::chrono::steady_clock;
using worker::testing::LabelledImages;

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "distributed_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

struct Flags {
  uint32_t nodes = 2;
  int threads = 1;
  uint32_t epochs = 1;
  size_t train_limit = 60000;
  uint32_t staleness = 1;  // the asynchronous run's; 0: no asynchronous run
  bool pytorch = true;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "distributed_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--nodes") f.nodes = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--threads") f.threads = std::stoi(next());
    else if (a == "--epochs") f.epochs = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--train-limit") f.train_limit = std::stoul(next());
    else if (a == "--staleness")
      f.staleness = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--no-pytorch") f.pytorch = false;
    else {
      std::fprintf(a == "--help" ? stdout : stderr,
                   "usage: distributed_bench [--nodes N] [--threads T] [--epochs E] "
                   "[--train-limit N] [--staleness S] [--no-pytorch]\n"
                   "  --staleness S  the asynchronous run's staleness (default 1; 0: no "
                   "asynchronous run)\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  if (f.nodes < 2 || f.nodes > 16) {
    std::fprintf(stderr, "distributed_bench: --nodes must be 2 to 16\n");
    std::exit(2);
  }
  return f;
}

dataset::DatasetSchema Schema(uint64_t count) {
  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kUint8;
  schema.shape = {1, 28, 28};
  schema.label_type = dataset::LabelType::kUint8;
  for (int c = 0; c < 10; ++c) schema.class_names.push_back("class" + std::to_string(c));
  schema.sample_count = count;
  return schema;
}

// Records (label, then 784 pixels) of images [begin, end).
Bytes Records(const LabelledImages& images, size_t begin, size_t end) {
  Bytes out;
  out.reserve((end - begin) * 785);
  for (size_t i = begin; i < end; ++i) {
    out.push_back(static_cast<uint8_t>(images.labels[i]));
    out.insert(out.end(), images.pixels.begin() + static_cast<ptrdiff_t>(i * 784),
               images.pixels.begin() + static_cast<ptrdiff_t>((i + 1) * 784));
  }
  return out;
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in) Die(path, InternalError("cannot read"));
  return ToBytes(s.str());
}

train::TrainingOptions Options(const Flags& flags) {
  train::TrainingOptions options;
  options.config.epochs = flags.epochs;
  options.config.batch_size = 64;
  options.config.optimizer.kind = OptimizerKind::kSgd;
  options.config.optimizer.learning_rate = 0.01;
  options.config.optimizer.momentum = 0.9;
  options.validation_fraction = 0;
  options.seed = 1;
  options.worker.worker_path = CHIRON_WORKER_PATH;
  options.worker.threads = flags.threads;
  options.worker.request_timeout = std::chrono::seconds(300);
  if (const char* path = std::getenv("LD_LIBRARY_PATH")) {
    options.worker.extra_environment.push_back(std::string("LD_LIBRARY_PATH=") + path);
  }
  return options;
}

// Bytes this process's TCP sockets have sent (TCP payload: TLS records with HTTP/2 and gRPC
// framing inside; no IP or TCP headers), from TCP_INFO of every socket it has open.
uint64_t TcpBytesSent() {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    struct tcp_info info;
    socklen_t size = sizeof(info);
    std::memset(&info, 0, sizeof(info));
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
        size >= offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(info.tcpi_bytes_sent)) {
      total += info.tcpi_bytes_sent;
    }
  }
  return total;
}

// What a node reports to the parent through its pipe.
struct NodeReport {
  double seconds = 0;          // Run(): the training loop
  uint64_t steps = 0;
  uint64_t payload_bytes = 0;  // values (floats × 4) and control bytes sent to peers
  uint64_t message_bytes = 0;  // serialized gRPC messages sent
  uint64_t tcp_bytes = 0;      // TCP payload sent during Run() (TLS records)
  uint64_t parameters = 0;
  uint64_t buffers = 0;
  char error[256] = {};
};

struct Cluster {
  std::string state_dir;
  std::string measured;  // the file every node measures as its chirond
  std::shared_ptr<const attest::Verifier> verifier;
};

std::unique_ptr<tee::Platform> Platform(const Cluster& cluster) {
  tee::PlatformOptions options;
  options.name = "sim";
  options.state_dir = cluster.state_dir;
  options.measured_components = {{"chirond", cluster.measured}};
  auto platform = tee::CreatePlatform(options);
  if (!platform.ok()) Die("sim platform", platform.status());
  return std::move(*platform);
}

// One node: rank `rank` of `size`. Writes its report and, for rank 0, the model to `out`.
[[noreturn]] void RunNode(const Flags& flags, const Cluster& cluster, uint32_t rank,
                          uint32_t staleness, const LabelledImages& train_set, const Bytes& recipe,
                          int port_out, int ports_in, int out) {
  NodeReport report;
  auto fail = [&](const std::string& what, const Status& status) {
    std::snprintf(report.error, sizeof(report.error), "node %u: %s: %s", rank, what.c_str(),
                  status.ToString().c_str());
    (void)!::write(out, &report, sizeof(report));
    ::_exit(1);
  };
  std::unique_ptr<tee::Platform> platform = Platform(cluster);
  auto identity = ratls::CreateAttestedIdentity(
      [&](ByteSpan report_data) { return platform->GetEvidence(report_data); }, "chirond-node");
  if (!identity.ok()) fail("identity", identity.status());
  auto shared_identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
  auto listener = cluster::NodeListener::Start("127.0.0.1:0", shared_identity, cluster.verifier);
  if (!listener.ok()) fail("listener", listener.status());
  const int port = (*listener)->port();
  (void)!::write(port_out, &port, sizeof(port));
  std::vector<int> ports(flags.nodes);
  if (::read(ports_in, ports.data(), ports.size() * sizeof(int)) !=
      static_cast<ssize_t>(ports.size() * sizeof(int))) {
    fail("ports", InternalError("the parent sent no port list"));
  }
  cluster::PeerGroupOptions group_options;
  group_options.job_id = "distributed-bench-" + std::to_string(staleness);
  group_options.rank = rank;
  group_options.size = flags.nodes;
  for (int p : ports) group_options.addresses.push_back("127.0.0.1:" + std::to_string(p));
  group_options.identity = shared_identity;
  group_options.peer_verifier = cluster.verifier;
  auto group = cluster::PeerGroup::Join(**listener, group_options);
  if (!group.ok()) fail("join", group.status());
  cluster::GroupCollective collective(**group);

  const size_t begin = train_set.count * rank / flags.nodes;
  const size_t end = train_set.count * (rank + 1) / flags.nodes;
  const Bytes records = Records(train_set, begin, end);
  train::TrainingOptions options = Options(flags);
  options.collective = &collective;
  options.staleness = staleness;
  auto session = train::TrainingSession::Create({Schema(end - begin), records}, recipe, options);
  if (!session.ok()) fail("session", session.status());
  // Per-step figures count Run() only (not the start's shard sizes and initial all-gather).
  const uint64_t tcp_before = TcpBytesSent();
  const uint64_t payload_before = (*group)->payload_bytes_sent();
  const uint64_t messages_before = (*group)->wire_bytes_sent();
  const auto start = Clock::now();
  auto result = (*session)->Run();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.tcp_bytes = TcpBytesSent() - tcp_before;
  if (!result.ok()) fail("training", result.status());
  report.steps = result->epochs.back().step;
  report.payload_bytes = (*group)->payload_bytes_sent() - payload_before;
  report.message_bytes = (*group)->wire_bytes_sent() - messages_before;
  report.parameters = result->model.parameters.size();
  report.buffers = result->model.buffers.size();
  (void)!::write(out, &report, sizeof(report));
  if (rank == 0) {
    Bytes model;
    train::EncodeTrainedModel(result->model, model);
    const uint64_t size = model.size();
    (void)!::write(out, &size, sizeof(size));
    for (size_t at = 0; at < model.size();) {
      ssize_t n = ::write(out, model.data() + at, model.size() - at);
      if (n <= 0) ::_exit(1);
      at += static_cast<size_t>(n);
    }
  }
  ::_exit(0);
}

bool ReadAll(int fd, void* data, size_t size) {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

struct ClusterRun {
  std::vector<NodeReport> nodes;
  train::TrainedModel model;
};

ClusterRun TrainOnNodes(const Flags& flags, const Cluster& cluster, uint32_t staleness,
                        const LabelledImages& train_set, const Bytes& recipe) {
  const uint32_t n = flags.nodes;
  std::vector<std::array<int, 2>> port_pipes(n), list_pipes(n), out_pipes(n);
  std::vector<pid_t> children;
  for (uint32_t r = 0; r < n; ++r) {
    if (::pipe(port_pipes[r].data()) != 0 || ::pipe(list_pipes[r].data()) != 0 ||
        ::pipe(out_pipes[r].data()) != 0) {
      Die("pipe", InternalError(std::strerror(errno)));
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      RunNode(flags, cluster, r, staleness, train_set, recipe, port_pipes[r][1], list_pipes[r][0],
              out_pipes[r][1]);
    }
    children.push_back(pid);
    ::close(port_pipes[r][1]);
    ::close(list_pipes[r][0]);
    ::close(out_pipes[r][1]);
  }
  std::vector<int> ports(n);
  for (uint32_t r = 0; r < n; ++r) {
    if (!ReadAll(port_pipes[r][0], &ports[r], sizeof(int))) {
      NodeReport report;
      ReadAll(out_pipes[r][0], &report, sizeof(report));
      Die("node " + std::to_string(r), InternalError(report.error));
    }
  }
  for (uint32_t r = 0; r < n; ++r) {
    (void)!::write(list_pipes[r][1], ports.data(), ports.size() * sizeof(int));
  }
  ClusterRun run;
  run.nodes.resize(n);
  for (uint32_t r = 0; r < n; ++r) {
    if (!ReadAll(out_pipes[r][0], &run.nodes[r], sizeof(NodeReport)) || run.nodes[r].error[0]) {
      Die("node " + std::to_string(r), InternalError(run.nodes[r].error));
    }
  }
  uint64_t size = 0;
  if (!ReadAll(out_pipes[0][0], &size, sizeof(size))) Die("node 0", InternalError("no model"));
  Bytes model(size);
  if (!ReadAll(out_pipes[0][0], model.data(), size)) Die("node 0", InternalError("no model"));
  auto decoded = train::DecodeTrainedModel(ByteSpan(model));
  if (!decoded.ok()) Die("model", decoded.status());
  run.model = std::move(*decoded);
  for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
  return run;
}

double TestAccuracy(const Flags& flags, const Bytes& recipe, const train::TrainedModel& model,
                    const LabelledImages& test_set) {
  train::PredictionOptions options;
  options.worker = Options(flags).worker;
  options.max_batch = 1000;
  auto session = train::PredictionSession::Start(recipe, Schema(test_set.count), model, options);
  if (!session.ok()) Die("prediction session", session.status());
  auto metrics = train::MetricsAccumulator::Create(10);
  for (size_t at = 0; at < test_set.count; at += 1000) {
    const size_t count = std::min<size_t>(1000, test_set.count - at);
    auto logits = (*session)->Predict(
        ByteSpan(test_set.pixels.data() + at * 784, count * 784), count);
    if (!logits.ok()) Die("predict", logits.status());
    std::vector<int64_t> labels(test_set.labels.begin() + static_cast<ptrdiff_t>(at),
                                test_set.labels.begin() + static_cast<ptrdiff_t>(at + count));
    if (Status s = metrics->Add(*logits, labels); !s.ok()) Die("metrics", s);
  }
  return metrics->Report().accuracy;
}

struct Baseline {
  double images_per_second = 0;
  double test_accuracy = 0;
};

Baseline RunDdp(const Flags& flags, uint32_t nodes) {
  const std::string command = "/usr/bin/python3 " CHIRON_SOURCE_DIR "/bench/ddp_baseline.py" +
                              std::string(" --nodes ") + std::to_string(nodes) + " --threads " +
                              std::to_string(flags.threads) + " --epochs " +
                              std::to_string(flags.epochs) + " --train-limit " +
                              std::to_string(flags.train_limit);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) Die("ddp_baseline", InternalError("popen failed"));
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  if (::pclose(pipe) != 0) Die("ddp_baseline", InternalError("failed: " + output));
  Baseline b;
  auto field = [&](const std::string& key) {
    const size_t at = output.find("\"" + key + "\": ");
    if (at == std::string::npos) Die("ddp_baseline", InternalError("no " + key + " in " + output));
    return std::stod(output.substr(at + key.size() + 4));
  };
  b.images_per_second = field("images_per_second");
  b.test_accuracy = field("test_accuracy");
  return b;
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  auto train_set = worker::testing::ReadFashionMnist("train", flags.train_limit);
  if (!train_set.ok()) Die("Fashion-MNIST train", train_set.status());
  auto test_set = worker::testing::ReadFashionMnist("t10k", 10000);
  if (!test_set.ok()) Die("Fashion-MNIST t10k", test_set.status());
  const Bytes recipe = ReadFile(CHIRON_RECIPE_LENET);

  // The cluster: one sim root (created here, before any node forks) and one measurement.
  std::string pattern = (std::filesystem::temp_directory_path() / "chiron-dbench-XXXXXX");
  Cluster cluster;
  const std::string dir = ::mkdtemp(pattern.data());
  cluster.state_dir = dir + "/state";
  cluster.measured = "/proc/self/exe";
  {
    std::unique_ptr<tee::Platform> platform = Platform(cluster);
    attest::Policy policy;
    policy.allowed_platforms = {attest::PlatformId::kSim};
    policy.allowed_measurements["sim"] = {platform->measurement()};
    auto evidence = platform->GetEvidence(Bytes(64, 0));
    if (!evidence.ok()) Die("evidence", evidence.status());
    policy.trusted_sim_roots = {
        attest::ParseSimBody(attest::ParseEvidence(*evidence)->payload)->root_public_key};
    auto verifier = attest::Verifier::Create(policy);
    if (!verifier.ok()) Die("verifier", verifier.status());
    cluster.verifier = std::make_shared<const attest::Verifier>(std::move(*verifier));
  }
  std::printf("distributed_bench: LeNet, Fashion-MNIST %zu training images, global batch 64, "
              "%u epoch(s), %d thread(s) per node, %u nodes on %ld cores; sim TEE (INSECURE, "
              "for measurement only)\n",
              train_set->count, flags.epochs, flags.threads, flags.nodes,
              ::sysconf(_SC_NPROCESSORS_ONLN));

  // Chiron, N nodes: img/s over the slowest node's training loop.
  auto rate_of = [](const ClusterRun& run) {
    double slowest = 0;
    for (const NodeReport& r : run.nodes) slowest = std::max(slowest, r.seconds);
    return static_cast<double>(run.nodes[0].steps * 64) / slowest;
  };
  ClusterRun multi = TrainOnNodes(flags, cluster, 0, *train_set, recipe);
  const uint64_t steps = multi.nodes[0].steps;
  const double multi_rate = rate_of(multi);
  const double multi_accuracy = TestAccuracy(flags, recipe, multi.model, *test_set);

  // Chiron, N nodes, asynchronous.
  double async_rate = 0, async_accuracy = 0;
  if (flags.staleness != 0) {
    ClusterRun async = TrainOnNodes(flags, cluster, flags.staleness, *train_set, recipe);
    async_rate = rate_of(async);
    async_accuracy = TestAccuracy(flags, recipe, async.model, *test_set);
  }

  // Chiron, 1 node.
  const Bytes all = Records(*train_set, 0, train_set->count);
  auto single = train::TrainingSession::Create({Schema(train_set->count), all}, recipe,
                                               Options(flags));
  if (!single.ok()) Die("1-node session", single.status());
  const auto start = Clock::now();
  auto single_result = (*single)->Run();
  const double single_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!single_result.ok()) Die("1-node training", single_result.status());
  const double single_rate =
      static_cast<double>(single_result->epochs.back().samples_seen) / single_seconds;
  const double single_accuracy = TestAccuracy(flags, recipe, single_result->model, *test_set);

  const uint64_t values = multi.nodes[0].parameters + multi.nodes[0].buffers;
  const double ideal = 2.0 * static_cast<double>(values) * 4 *
                       static_cast<double>(flags.nodes - 1) / flags.nodes;
  std::printf("\n%-34s %10s %10s\n", "", "img/s", "test acc");
  std::printf("%-34s %10.0f %10.4f\n", "Chiron, 1 node", single_rate, single_accuracy);
  char label[64];
  std::snprintf(label, sizeof label, "Chiron, %u nodes (sync, sharded PS)", flags.nodes);
  std::printf("%-34s %10.0f %10.4f\n", label, multi_rate, multi_accuracy);
  if (flags.staleness != 0) {
    std::snprintf(label, sizeof label, "Chiron, %u nodes (async, S = %u)", flags.nodes,
                  flags.staleness);
    std::printf("%-34s %10.0f %10.4f\n", label, async_rate, async_accuracy);
  }
  Baseline ddp, ddp_single;
  if (flags.pytorch) {
    ddp = RunDdp(flags, flags.nodes);
    ddp_single = RunDdp(flags, 1);
    std::printf("%-34s %10.0f %10.4f\n", "PyTorch, 1 process", ddp_single.images_per_second,
                ddp_single.test_accuracy);
    std::snprintf(label, sizeof label, "PyTorch DDP/Gloo, %u processes", flags.nodes);
    std::printf("%-34s %10.0f %10.4f\n", label, ddp.images_per_second, ddp.test_accuracy);
  }
  std::printf("\nper node per step (P+B = %lu values, %lu steps):\n",
              static_cast<unsigned long>(values), static_cast<unsigned long>(steps));
  for (size_t r = 0; r < multi.nodes.size(); ++r) {
    const NodeReport& n = multi.nodes[r];
    std::printf("  node %zu: values %.0f B, gRPC messages %.0f B, on the wire %.0f B (TCP "
                "payload: TLS records), %.2f s\n",
                r, static_cast<double>(n.payload_bytes) / steps,
                static_cast<double>(n.message_bytes) / steps,
                static_cast<double>(n.tcp_bytes) / steps, n.seconds);
  }
  std::printf("  ideal 2·P·4·(N−1)/N = %.0f B\n", ideal);

  std::printf("\nratios (goal):\n");
  std::printf("  %u nodes / 1 node img/s:           %.2f (>= 1.5 at 2 nodes)\n", flags.nodes,
              multi_rate / single_rate);
  if (flags.pytorch) {
    std::printf("  Chiron %u nodes / DDP %u processes: %.2f (>= 0.9)\n", flags.nodes, flags.nodes,
                multi_rate / ddp.images_per_second);
    std::printf("  DDP %u processes / DDP 1 process:   %.2f (for scale)\n", flags.nodes,
                ddp.images_per_second / ddp_single.images_per_second);
  }
  std::printf("  gRPC message bytes / ideal:        %.3f (<= 1.1)\n",
              static_cast<double>(multi.nodes[0].message_bytes) / steps / ideal);
  std::printf("  on the wire (TLS) / ideal:         %.3f (<= 1.1)\n",
              static_cast<double>(multi.nodes[0].tcp_bytes) / steps / ideal);
  std::printf("  test accuracy, %u nodes - 1 node:  %+.2f points (within 0.5)\n", flags.nodes,
              100 * (multi_accuracy - single_accuracy));
  if (flags.staleness != 0) {
    std::printf(
        "  async S = %u: %u nodes / 1 node img/s %.2f, / %u nodes sync %.2f; test "
        "accuracy async - sync %+.2f points (%u epoch(s))\n",
        flags.staleness, flags.nodes, async_rate / single_rate, flags.nodes,
        async_rate / multi_rate, 100 * (async_accuracy - multi_accuracy), flags.epochs);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace chiron

int main(int argc, char** argv) { return chiron::Main(argc, argv); }
