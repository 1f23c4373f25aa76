// A small, bounded HTTP/1.1 responder for chirond's operator metrics (chirond
// --metrics-listen): GET /metrics answers the Prometheus text; any other path is 404, any other
// method 405, a malformed request 400, a request head over kMaxHttpRequestHead bytes 431.
//
// One connection at a time, each with a deadline for reading the request (kReadTimeout) and for
// writing the answer; every answer closes the connection. The parser is a pure function
// (fuzz/fuzz_http_request.cc); the server only ever reads at most kMaxHttpRequestHead bytes of a
// request and discards a bounded amount of what follows.
//
// Thread safety: Start/Stop from one thread; the server runs on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "shared/base/status.h"

namespace chiron::runtime {

inline constexpr size_t kMaxHttpRequestHead = 8192;
inline constexpr size_t kMaxHttpHeaders = 64;

struct HttpRequest {
  std::string method;   // "GET"
  std::string target;   // "/metrics?x=1"
  std::string path;     // "/metrics"
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers;
};

enum class HttpParseStatus {
  kComplete,    // a whole, well-formed request head
  kIncomplete,  // no blank line yet and still under the limit: read more
  kBadRequest,  // malformed (400)
  kTooLarge,    // the head exceeds the limit (431)
};

struct HttpParseResult {
  HttpParseStatus status = HttpParseStatus::kIncomplete;
  HttpRequest request;  // when kComplete
  std::string error;    // when kBadRequest / kTooLarge
};

// Parses the request head at the start of `buffer` (request line and headers up to the first
// empty line, CRLF line ends). Anything after the head (a body) is ignored.
HttpParseResult ParseHttpRequest(std::string_view buffer, size_t max_head = kMaxHttpRequestHead);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

// The answer to a parsed request: routing for GET /metrics (body from `metrics`).
HttpResponse RespondToHttp(const HttpParseResult& parsed,
                           const std::function<std::string()>& metrics);

// Status line, headers (Content-Type, Content-Length, Connection: close, ...) and body.
std::string SerializeHttpResponse(const HttpResponse& response);

class MetricsHttpServer {
 public:
  static constexpr std::chrono::seconds kReadTimeout{5};

  // `listen` is host:port ("127.0.0.1:9464", "[::1]:0"; port 0 picks a free port).
  static Result<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                          std::function<std::string()> metrics);
  ~MetricsHttpServer();  // Stop()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  void Stop();

 private:
  MetricsHttpServer(int listen_fd, int wake_read, int wake_write, int port,
                    std::function<std::string()> metrics)
      : listen_fd_(listen_fd),
        wake_read_(wake_read),
        wake_write_(wake_write),
        port_(port),
        metrics_(std::move(metrics)) {}
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_;
  int wake_read_;
  int wake_write_;
  int port_;
  std::function<std::string()> metrics_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace chiron::runtime
