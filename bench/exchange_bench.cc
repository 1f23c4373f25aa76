// Node-to-node exchange throughput (issue 14, docs/distributed.md "Transport"): two processes on
// 127.0.0.1, each a rank of a real PeerGroup (gRPC bidirectional stream over mutual RA-TLS, sim
// platform), exchanging P floats both ways per step, for P = 61,706 (LeNet-5), 431,080 (the
// built-in lenet recipe), 1M and 11M (about ResNet-18). Baseline in the same run: raw OpenSSL
// TLS 1.3 between the same two processes, the same bytes each way per step (one connection per
// direction, blocking SSL_write / SSL_read, no gRPC, no checks). Prints per P: step latency,
// MB/s per direction, the ratio to raw TLS, and bytes on the wire per step against the payload:
// counted on the TCP sockets themselves (TCP_INFO tcpi_bytes_sent: TLS records, HTTP/2 frames,
// gRPC messages, acknowledgements and window updates all included) and at the gRPC message
// level (PeerGroup::wire_bytes_sent).
//
//   build/bin/exchange_bench            (about a minute on 2 cores)
#include <dirent.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cluster/peer_group.h"
#include "runtime/tee/platform.h"
#include "shared/attest/evidence.h"
#include "shared/base/net.h"

namespace chiron {
namespace {

using Clock = std::chrono::steady_clock;

struct Size {
  const char* name;
  size_t floats;
  int steps;
};
constexpr Size kSizes[] = {{"LeNet-5", 61706, 200},
                           {"lenet recipe", 431080, 60},
                           {"1M", 1000000, 30},
                           {"11M", 11000000, 6}};
constexpr int kWarmup = 2;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "exchange_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> result, const char* what) {
  if (!result.ok()) Die(std::string(what) + ": " + result.status().ToString());
  return std::move(*result);
}

// Bytes this process sent on all its TCP sockets (the kernel's count of payload octets out).
uint64_t TcpBytesSent() {
  uint64_t total = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (dirent* entry = ::readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    tcp_info info{};
    socklen_t length = sizeof(info);
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0 &&
        length >= offsetof(tcp_info, tcpi_bytes_sent) + sizeof(info.tcpi_bytes_sent)) {
      total += info.tcpi_bytes_sent;
    }
  }
  ::closedir(dir);
  return total;
}

struct Figures {
  double median_ms = 0, mb_per_s = 0, tcp_ratio = 0, grpc_ratio = 0;
};

Figures Summarise(std::vector<double> step_ms, double seconds, size_t floats, uint64_t tcp_bytes,
                  uint64_t grpc_bytes) {
  std::sort(step_ms.begin(), step_ms.end());
  const double payload = static_cast<double>(floats) * 4 * step_ms.size();
  return {step_ms[step_ms.size() / 2], payload / seconds / 1e6, tcp_bytes / payload,
          grpc_bytes / payload};
}

// --- the PeerGroup ---------------------------------------------------------------------------

std::vector<Figures> RunGroup(cluster::PeerGroup& group) {
  std::vector<Figures> figures;
  uint64_t step = 0;
  for (const Size& size : kSizes) {
    std::vector<float> out(size.floats), in(size.floats);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(i % 1000) * 0.001f;
    const uint32_t peer = 1 - group.rank();
    std::vector<std::span<const float>> outs(2);
    std::vector<std::span<float>> ins(2);
    outs[peer] = out;
    ins[peer] = in;
    auto exchange = [&] {
      Status status = group.Exchange(++step, 0, outs, ins);
      if (!status.ok()) Die("Exchange: " + status.ToString());
    };
    for (int i = 0; i < kWarmup; ++i) exchange();
    const uint64_t tcp0 = TcpBytesSent(), grpc0 = group.wire_bytes_sent();
    std::vector<double> step_ms;
    const auto start = Clock::now();
    for (int i = 0; i < size.steps; ++i) {
      const auto t = Clock::now();
      exchange();
      step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    figures.push_back(Summarise(step_ms, seconds, size.floats, TcpBytesSent() - tcp0,
                                group.wire_bytes_sent() - grpc0));
  }
  return figures;
}

// --- raw OpenSSL TLS 1.3 baseline -------------------------------------------------------------

SSL_CTX* Context(bool server, const ratls::TlsIdentity& identity) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (server) {
    BIO* cert =
        BIO_new_mem_buf(identity.cert_pem.data(), static_cast<int>(identity.cert_pem.size()));
    BIO* key = BIO_new_mem_buf(identity.key_pem.data(), static_cast<int>(identity.key_pem.size()));
    X509* x509 = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
    if (!x509 || !pkey || SSL_CTX_use_certificate(ctx, x509) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
      Die("baseline TLS server key");
    }
    X509_free(x509);
    EVP_PKEY_free(pkey);
    BIO_free(cert);
    BIO_free(key);
  }
  return ctx;
}

SSL* Handshake(SSL_CTX* ctx, int fd, bool server) {
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) Die("baseline TLS handshake");
  return ssl;
}

void SendAll(SSL* ssl, const uint8_t* data, size_t size) {
  for (size_t sent = 0; sent < size;) {
    const int n =
        SSL_write(ssl, data + sent, static_cast<int>(std::min<size_t>(size - sent, 1 << 20)));
    if (n <= 0) Die("baseline SSL_write");
    sent += n;
  }
}

void ReceiveAll(SSL* ssl, uint8_t* data, size_t size) {
  for (size_t got = 0; got < size;) {
    const int n =
        SSL_read(ssl, data + got, static_cast<int>(std::min<size_t>(size - got, 1 << 20)));
    if (n <= 0) Die("baseline SSL_read");
    got += n;
  }
}

// Rank 0 accepts two connections (0→1 then 1→0), rank 1 dials them; each carries one direction.
std::vector<Figures> RunRawTls(uint32_t rank, const TcpListener* listener, int port,
                               const ratls::TlsIdentity& identity) {
  SSL_CTX* ctx = Context(rank == 0, identity);
  int fds[2];
  for (int& fd : fds) {
    if (rank == 0) {
      fd = ::accept(listener->fd, nullptr, nullptr);
      if (fd < 0) Die("baseline accept");
    } else {
      fd = Must(ConnectTcp("127.0.0.1", port, std::chrono::seconds(10)), "baseline connect");
    }
  }
  SSL* ssl[2] = {Handshake(ctx, fds[0], rank == 0), Handshake(ctx, fds[1], rank == 0)};
  SSL* send = ssl[rank == 0 ? 0 : 1];
  SSL* receive = ssl[rank == 0 ? 1 : 0];
  std::vector<Figures> figures;
  for (const Size& size : kSizes) {
    std::vector<uint8_t> out(size.floats * 4, 0x5a), in(size.floats * 4);
    auto step = [&] {
      std::thread writer([&] { SendAll(send, out.data(), out.size()); });
      ReceiveAll(receive, in.data(), in.size());
      writer.join();
    };
    for (int i = 0; i < kWarmup; ++i) step();
    const uint64_t tcp0 = TcpBytesSent();
    std::vector<double> step_ms;
    const auto start = Clock::now();
    for (int i = 0; i < size.steps; ++i) {
      const auto t = Clock::now();
      step();
      step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    figures.push_back(Summarise(step_ms, seconds, size.floats, TcpBytesSent() - tcp0, 0));
  }
  for (int i = 0; i < 2; ++i) {
    SSL_free(ssl[i]);
    ::close(fds[i]);
  }
  SSL_CTX_free(ctx);
  return figures;
}

// --- the two processes ------------------------------------------------------------------------

int RunRank(uint32_t rank, tee::Platform& platform, const attest::Policy& policy, int pipe_fd) {
  auto identity = std::make_shared<const ratls::TlsIdentity>(Must(
      ratls::CreateAttestedIdentity(
          [&](ByteSpan report_data) { return platform.GetEvidence(report_data); }, "bench-node"),
      "identity"));
  auto verifier =
      std::make_shared<const attest::Verifier>(Must(attest::Verifier::Create(policy), "policy"));
  auto listener = Must(cluster::NodeListener::Start("127.0.0.1:0", identity, verifier), "listen");
  int ports[2] = {listener->port(), 0};  // rank 0's node port, rank 0's baseline TLS port
  TcpListener tls_listener;
  if (rank == 0) {
    tls_listener = Must(ListenTcp("127.0.0.1:0", "baseline TLS"), "baseline listen");
    ports[1] = tls_listener.port;
    if (::write(pipe_fd, ports, sizeof(ports)) != sizeof(ports)) Die("pipe write");
  } else if (::read(pipe_fd, ports, sizeof(ports)) != sizeof(ports)) {
    Die("pipe read");
  }
  cluster::PeerGroupOptions options;
  options.job_id = "exchange-bench";
  options.rank = rank;
  options.size = 2;
  options.addresses = {"127.0.0.1:" + std::to_string(ports[0]),
                       "127.0.0.1:" + std::to_string(listener->port())};
  options.identity = identity;
  options.peer_verifier = verifier;
  auto group = Must(cluster::PeerGroup::Join(*listener, options), "join");
  const std::vector<Figures> grpc = RunGroup(*group);
  group.reset();
  listener.reset();
  const std::vector<Figures> raw = RunRawTls(rank, &tls_listener, ports[1], *identity);
  if (rank != 0) return 0;
  std::printf("exchange_bench: 2 processes on 127.0.0.1, P floats sent and P received per step "
              "by each\n");
  std::printf("%-13s %10s %6s | %9s %9s %8s %8s | %9s %9s %8s | %6s\n", "model", "P", "steps",
              "step ms", "MB/s", "tcp/pay", "grpc/pay", "raw ms", "raw MB/s", "tcp/pay",
              "ratio");
  for (size_t i = 0; i < std::size(kSizes); ++i) {
    std::printf("%-13s %10zu %6d | %9.2f %9.1f %8.4f %8.4f | %9.2f %9.1f %8.4f | %6.2f\n",
                kSizes[i].name, kSizes[i].floats, kSizes[i].steps, grpc[i].median_ms,
                grpc[i].mb_per_s, grpc[i].tcp_ratio, grpc[i].grpc_ratio, raw[i].median_ms,
                raw[i].mb_per_s, raw[i].tcp_ratio, grpc[i].mb_per_s / raw[i].mb_per_s);
  }
  std::printf("step ms: median step; MB/s: payload per direction (10^6 bytes/s); tcp/pay: bytes "
              "this node sent on TCP per payload byte; grpc/pay: gRPC messages (with their 5-byte "
              "prefix) per payload byte; ratio: PeerGroup MB/s / raw TLS MB/s\n");
  return 0;
}

int Main() {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("chiron-exchange-bench-" + std::to_string(::getpid())));
  std::filesystem::create_directories(dir);
  tee::PlatformOptions platform_options;
  platform_options.name = "sim";
  platform_options.state_dir = dir + "/state";
  platform_options.measured_components = {{"chirond", "/proc/self/exe"}};
  auto platform = Must(tee::CreatePlatform(platform_options), "sim platform");
  attest::Policy policy;
  policy.allowed_platforms = {attest::PlatformId::kSim};
  policy.allowed_measurements["sim"] = {platform->measurement()};
  Bytes evidence = Must(platform->GetEvidence(Bytes(64, 0)), "evidence");
  policy.trusted_sim_roots = {
      Must(attest::ParseSimBody(Must(attest::ParseEvidence(evidence), "evidence").payload),
           "sim body")
          .root_public_key};
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) Die("pipe");
  // Fork before gRPC or OpenSSL start any thread.
  const pid_t child = ::fork();
  if (child < 0) Die("fork");
  if (child == 0) {
    ::close(pipe_fds[1]);
    ::_exit(RunRank(1, *platform, policy, pipe_fds[0]));
  }
  ::close(pipe_fds[0]);
  const int rc = RunRank(0, *platform, policy, pipe_fds[1]);
  int child_status = 0;
  ::waitpid(child, &child_status, 0);
  std::filesystem::remove_all(dir);
  if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0) Die("rank 1 failed");
  return rc;
}

}  // namespace
}  // namespace chiron

int main() { return chiron::Main(); }
