// Operator metrics: the request parser and router of the HTTP responder, the Prometheus text, and
// a real RuntimeServer (sim platform) with --metrics-listen: attested gRPC calls move the
// counters seen over a real socket, and hostile requests (huge head, garbage, wrong method or
// path) get a 4xx while the endpoint keeps serving.
#include "runtime/service/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "chiron/v1/attestation.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "client/connection.h"
#include "runtime/service/metrics_http.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/crypto/keys.h"

namespace chiron::runtime {
namespace {

namespace fs = std::filesystem;

// ---- The parser and router ---------------------------------------------------------------------

TEST(ParseHttpRequestTest, WellFormedGet) {
  auto parsed = ParseHttpRequest(
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nAccept:  text/plain \r\n\r\nbody");
  ASSERT_EQ(parsed.status, HttpParseStatus::kComplete) << parsed.error;
  EXPECT_EQ(parsed.request.method, "GET");
  EXPECT_EQ(parsed.request.target, "/metrics?x=1");
  EXPECT_EQ(parsed.request.path, "/metrics");
  EXPECT_EQ(parsed.request.version, "HTTP/1.1");
  ASSERT_EQ(parsed.request.headers.size(), 2u);
  EXPECT_EQ(parsed.request.headers[1].first, "Accept");
  EXPECT_EQ(parsed.request.headers[1].second, "text/plain");
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\r\n\r\n").status, HttpParseStatus::kComplete);
}

TEST(ParseHttpRequestTest, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(ParseHttpRequest("").status, HttpParseStatus::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET /met").status, HttpParseStatus::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET /metrics HTTP/1.1\r\nHost: x\r\n").status,
            HttpParseStatus::kIncomplete);
}

TEST(ParseHttpRequestTest, RefusesMalformedRequests) {
  for (const char* bad : {"garbage\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n",
                          "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n",
                          "GET /metrics HTTP/1.1 extra\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                          "GET /a\x01 HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\nHost: x\n\n",
                          "GET / HTTP/1.1\r\nno colon\r\n\r\n",
                          "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n"}) {
    auto parsed = ParseHttpRequest(bad);
    EXPECT_EQ(parsed.status, HttpParseStatus::kBadRequest) << bad;
    EXPECT_FALSE(parsed.error.empty());
  }
  // Garbage is refused as soon as it is seen, without waiting for the end of the head.
  EXPECT_EQ(ParseHttpRequest(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", 13))
                .status,
            HttpParseStatus::kBadRequest);
  EXPECT_EQ(ParseHttpRequest(std::string("GET / HTTP/1.1\r\nX: \0", 21)).status,
            HttpParseStatus::kBadRequest);
}

TEST(ParseHttpRequestTest, LimitsTheHead) {
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(kMaxHttpRequestHead, 'a');
  EXPECT_EQ(ParseHttpRequest(huge).status, HttpParseStatus::kTooLarge);
  EXPECT_EQ(ParseHttpRequest(huge + "\r\n\r\n").status, HttpParseStatus::kTooLarge);
  EXPECT_EQ(ParseHttpRequest(std::string(kMaxHttpRequestHead, 'G')).status,
            HttpParseStatus::kTooLarge);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHttpHeaders; ++i) many += "X: y\r\n";
  EXPECT_EQ(ParseHttpRequest(many + "\r\n").status, HttpParseStatus::kTooLarge);
}

TEST(RespondToHttpTest, Routes) {
  auto metrics = [] { return std::string("m 1\n"); };
  auto ok = RespondToHttp(ParseHttpRequest("GET /metrics HTTP/1.1\r\n\r\n"), metrics);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "m 1\n");
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(RespondToHttp(ParseHttpRequest("GET / HTTP/1.1\r\n\r\n"), metrics).status, 404);
  EXPECT_EQ(RespondToHttp(ParseHttpRequest("GET /metricsx HTTP/1.1\r\n\r\n"), metrics).status,
            404);
  auto post = RespondToHttp(ParseHttpRequest("POST /metrics HTTP/1.1\r\n\r\n"), metrics);
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(SerializeHttpResponse(post).find("\r\nAllow: GET\r\n"), std::string::npos);
  EXPECT_EQ(RespondToHttp(ParseHttpRequest("nonsense\r\n\r\n"), metrics).status, 400);
  EXPECT_EQ(RespondToHttp(ParseHttpRequest("GET /metrics HTTP/1.1\r\n"), metrics).status, 400);
  EXPECT_EQ(RespondToHttp(ParseHttpRequest(std::string(kMaxHttpRequestHead, 'G')), metrics).status,
            431);
  EXPECT_EQ(SerializeHttpResponse(ok),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 4\r\nConnection: close\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n\r\nm 1\n");
}

// ---- The exposition ------------------------------------------------------------------------------

TEST(ServiceMetricsTest, MethodLabelsAreLimitedToCompiledMethods) {
  EXPECT_EQ(MethodLabel("/chiron.v1.Attestation/GetEvidence"),
            "/chiron.v1.Attestation/GetEvidence");
  EXPECT_EQ(MethodLabel("/chiron.v1.Jobs/Watch"), "/chiron.v1.Jobs/Watch");
  EXPECT_EQ(MethodLabel("/chiron.v1.Jobs/NoSuchMethod"), "unknown");
  EXPECT_EQ(MethodLabel("/owner-secret-dataset/x"), "unknown");
  EXPECT_EQ(MethodLabel("/chiron.v1.Jobs/Watch/extra"), "unknown");
  EXPECT_EQ(MethodLabel(""), "unknown");
}

TEST(ServiceMetricsTest, RendersCountersHistogramsJobsAndUptime) {
  ServiceMetrics metrics([]() -> Result<std::map<std::string, uint64_t>> {
    return std::map<std::string, uint64_t>{{"running", 2}, {"succeeded", 5}};
  });
  metrics.RecordRequest("/chiron.v1.Jobs/ListOwnerJobs", grpc::StatusCode::OK,
                        std::chrono::milliseconds(3));
  metrics.RecordRequest("/chiron.v1.Jobs/ListOwnerJobs", grpc::StatusCode::OK,
                        std::chrono::milliseconds(30));
  metrics.RecordRequest("/chiron.v1.Jobs/ListOwnerJobs", grpc::StatusCode::PERMISSION_DENIED,
                        std::chrono::seconds(2));
  metrics.RecordRequest("/hostile\"name\n", grpc::StatusCode::UNIMPLEMENTED,
                        std::chrono::milliseconds(1));
  std::string text = metrics.RenderPrometheus();
  const std::string m = "method=\"/chiron.v1.Jobs/ListOwnerJobs\"";
  EXPECT_NE(text.find("chiron_grpc_requests_total{" + m + ",code=\"OK\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("chiron_grpc_requests_total{" + m + ",code=\"PERMISSION_DENIED\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_requests_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.find("hostile"), std::string::npos);
  // Cumulative buckets.
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"0.001\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"0.005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"0.05\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"2.5\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_count{" + m + "} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("chiron_grpc_request_duration_seconds_sum{" + m + "} 2.033"),
            std::string::npos);
  for (const char* line : {"chiron_jobs{state=\"queued\"} 0\n", "chiron_jobs{state=\"running\"} 2\n",
                           "chiron_jobs{state=\"succeeded\"} 5\n", "chiron_jobs{state=\"failed\"} 0\n",
                           "chiron_jobs{state=\"cancelled\"} 0\n", "chiron_jobs_count_ok 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  EXPECT_NE(text.find("\nchiron_uptime_seconds "), std::string::npos);
}

// ---- A real server ---------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "chiron-metrics-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sends `request` (then half-closes) to 127.0.0.1:port and returns everything answered.
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    close(fd);
    return {};
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and stop reading early
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

int StatusOf(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12) return -1;
  return std::atoi(answer.substr(9, 3).c_str());
}

std::string BodyOf(const std::string& answer) {
  size_t end = answer.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : answer.substr(end + 4);
}

// Sample name{labels} → value, checking every line of the exposition as it goes.
std::map<std::string, double> ParseExposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? ([0-9.eE+-]+|\+Inf|NaN)$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch match;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, match, kType)) {
      typed.insert(match[1]);
      continue;
    }
    if (!std::regex_match(line, match, kSample)) {
      ADD_FAILURE() << "not a valid exposition line: '" << line << "'";
      continue;
    }
    std::string family = match[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (family.size() > s.size() && family.compare(family.size() - s.size(), s.size(), s) == 0 &&
          typed.count(family.substr(0, family.size() - s.size())) != 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_EQ(typed.count(family), 1u) << "no # TYPE before " << line;
    samples[match[1].str() + match[2].str()] = std::stod(match[4]);
  }
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  return samples;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& dir = dir_.path();
    std::ofstream(dir + "/worker") << "worker";
    std::ofstream(dir + "/policy.json") << "{}";
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.metrics_listen_address = "127.0.0.1:0";
    options.platform.name = "sim";
    options.platform.state_dir = dir + "/state";
    options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                            {"chiron-worker", dir + "/worker"},
                                            {"sandbox-policy", dir + "/policy.json"}};
    ASSERT_TRUE(FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok());
    auto server = RuntimeServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_GT(server_->metrics_port(), 0);
  }

  std::unique_ptr<client::Connection> Connect() {
    auto policy = SimReferencePolicy(server_->platform());
    EXPECT_TRUE(policy.ok());
    auto verifier = attest::Verifier::Create(*policy);
    EXPECT_TRUE(verifier.ok());
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    auto identity = ratls::CreateClientIdentity(*key, "metrics-test");
    EXPECT_TRUE(identity.ok());
    client::ConnectOptions options;
    options.server = "127.0.0.1:" + std::to_string(server_->port());
    options.verifier = std::make_shared<const attest::Verifier>(std::move(*verifier));
    options.identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    return connection.ok() ? std::move(*connection) : nullptr;
  }

  std::map<std::string, double> Scrape() {
    std::string answer =
        Exchange(server_->metrics_port(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 300);
    EXPECT_NE(answer.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos);
    return ParseExposition(BodyOf(answer));
  }

  TempDir dir_;
  std::unique_ptr<RuntimeServer> server_;
};

constexpr char kEvidenceOk[] =
    "chiron_grpc_requests_total{method=\"/chiron.v1.Attestation/GetEvidence\",code=\"OK\"}";
constexpr char kEvidenceCount[] =
    "chiron_grpc_request_duration_seconds_count{method=\"/chiron.v1.Attestation/GetEvidence\"}";
constexpr char kWhoAmIDenied[] =
    "chiron_grpc_requests_total{method=\"/chiron.v1.Principals/WhoAmI\",code=";

TEST_F(MetricsServerTest, CallsMoveTheCounters) {
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->FreshAttestation().ok());
  auto before = Scrape();
  EXPECT_EQ(before[kEvidenceOk], 1);
  EXPECT_EQ(before[kEvidenceCount], 1);
  EXPECT_GE(before["chiron_grpc_requests_total{method=\"/chiron.v1.Attestation/GetServerInfo\","
                   "code=\"OK\"}"],
            1);
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"}) {
    EXPECT_EQ(before.count("chiron_jobs{state=\"" + std::string(state) + "\"}"), 1u) << state;
  }
  EXPECT_EQ(before["chiron_jobs_count_ok"], 1);
  ASSERT_EQ(before.count("chiron_uptime_seconds"), 1u);
  EXPECT_GE(before["chiron_uptime_seconds"], 0);

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(connection->FreshAttestation().ok());
  // An unregistered principal's WhoAmI fails: counted under its status code.
  v1::Principal principal;
  auto context = connection->NewContext();
  grpc::Status who = v1::Principals::NewStub(connection->channel())
                         ->WhoAmI(context.get(), v1::WhoAmIRequest(), &principal);
  ASSERT_FALSE(who.ok());
  auto after = Scrape();
  EXPECT_EQ(after[kEvidenceOk], 4);
  EXPECT_EQ(after[kEvidenceCount], 4);
  EXPECT_EQ(after["chiron_grpc_request_duration_seconds_bucket{method=\"/chiron.v1.Attestation/"
                  "GetEvidence\",le=\"+Inf\"}"],
            4);
  std::string code(GrpcCodeName(who.error_code()));
  EXPECT_EQ(after[std::string(kWhoAmIDenied) + "\"" + code + "\"}"], 1) << code;

  // Only the documented families, never anything else.
  for (const auto& [sample, value] : after) {
    std::string name = sample.substr(0, sample.find('{'));
    EXPECT_TRUE(name == "chiron_grpc_requests_total" ||
                name == "chiron_grpc_request_duration_seconds_bucket" ||
                name == "chiron_grpc_request_duration_seconds_sum" ||
                name == "chiron_grpc_request_duration_seconds_count" || name == "chiron_jobs" ||
                name == "chiron_jobs_count_ok" || name == "chiron_uptime_seconds")
        << sample;
  }
}

TEST_F(MetricsServerTest, HostileRequestsGet4xxAndTheEndpointKeepsServing) {
  int port = server_->metrics_port();
  std::string huge_header = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Huge: " +
                            std::string(256 * 1024, 'A') + "\r\n\r\n";
  EXPECT_EQ(StatusOf(Exchange(port, huge_header)), 431);
  EXPECT_EQ(StatusOf(Exchange(port, std::string(64 * 1024, 'G'))), 431);
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xFF));
  EXPECT_EQ(StatusOf(Exchange(port, garbage)), 400);
  EXPECT_EQ(StatusOf(Exchange(port, "\r\n\r\n")), 400);
  EXPECT_EQ(StatusOf(Exchange(port, "GET /metrics HTTP/1.1\r\nHost: x")), 400);  // cut short
  EXPECT_EQ(StatusOf(Exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")),
            405);
  EXPECT_EQ(StatusOf(Exchange(port, "GET /../../etc/passwd HTTP/1.1\r\n\r\n")), 404);
  EXPECT_EQ(StatusOf(Exchange(port, "GET / HTTP/1.1\r\n\r\n")), 404);
  // A TLS ClientHello (someone pointed https at it).
  EXPECT_EQ(StatusOf(Exchange(port, std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) +
                                        std::string(160, '\x01'))),
            400);
  // Still serving, with the right answers.
  auto samples = Scrape();
  EXPECT_EQ(samples.count("chiron_uptime_seconds"), 1u);
  // And gRPC is unaffected.
  auto connection = Connect();
  ASSERT_NE(connection, nullptr);
  EXPECT_TRUE(connection->FreshAttestation().ok());
}

TEST_F(MetricsServerTest, ShutdownStopsTheEndpoint) {
  int port = server_->metrics_port();
  server_->Shutdown();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  close(fd);
}

TEST(MetricsHttpServerTest, RefusesBadAddresses) {
  auto metrics = [] { return std::string(); };
  EXPECT_FALSE(MetricsHttpServer::Start("127.0.0.1", metrics).ok());
  EXPECT_FALSE(MetricsHttpServer::Start("127.0.0.1:99999", metrics).ok());
  EXPECT_FALSE(MetricsHttpServer::Start(":9464", metrics).ok());
  EXPECT_FALSE(MetricsHttpServer::Start("[::1:9464", metrics).ok());
  auto first = MetricsHttpServer::Start("127.0.0.1:0", metrics);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto taken = MetricsHttpServer::Start("127.0.0.1:" + std::to_string((*first)->port()), metrics);
  EXPECT_FALSE(taken.ok());
}

}  // namespace
}  // namespace chiron::runtime
