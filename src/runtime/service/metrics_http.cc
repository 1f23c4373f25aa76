#include "runtime/service/metrics_http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/base/log.h"
#include "shared/base/net.h"

namespace chiron::runtime {
namespace {

constexpr size_t kMaxMethod = 16;
constexpr size_t kMaxTarget = 2048;
constexpr size_t kMaxDrain = size_t{1} << 20;  // bytes discarded after answering
constexpr auto kWriteTimeout = std::chrono::seconds(5);
constexpr auto kDrainTimeout = std::chrono::seconds(1);

bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return IsTokenChar(static_cast<unsigned char>(c)); });
}

HttpParseResult Bad(std::string error) {
  HttpParseResult result;
  result.status = HttpParseStatus::kBadRequest;
  result.error = std::move(error);
  return result;
}

HttpParseResult TooLarge(std::string error) {
  HttpParseResult result;
  result.status = HttpParseStatus::kTooLarge;
  result.error = std::move(error);
  return result;
}

// Validates "METHOD SP target SP HTTP/1.x" into `request`; empty on success, else the error.
std::string ParseRequestLine(std::string_view line, HttpRequest& request) {
  size_t first = line.find(' ');
  if (first == std::string_view::npos) return "the request line has no target";
  size_t second = line.find(' ', first + 1);
  if (second == std::string_view::npos) return "the request line has no HTTP version";
  std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  std::string_view version = line.substr(second + 1);
  if (!IsToken(method) || method.size() > kMaxMethod) return "invalid method";
  if (target.empty() || target.size() > kMaxTarget || target[0] != '/') {
    return "the target must be an absolute path of at most 2048 characters";
  }
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return "invalid character in the target";
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return "unsupported HTTP version";
  request.method = std::string(method);
  request.target = std::string(target);
  request.path = std::string(target.substr(0, target.find('?')));
  request.version = std::string(version);
  return {};
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60000));
}

}  // namespace

HttpParseResult ParseHttpRequest(std::string_view buffer, size_t max_head) {
  HttpParseResult result;
  // A complete request line can be judged before the rest of the head arrives.
  size_t line_end = buffer.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (buffer.find('\n') != std::string_view::npos) return Bad("line ends must be CRLF");
    if (buffer.size() >= max_head) return TooLarge("the request line is too long");
    return result;  // incomplete
  }
  if (line_end > max_head) return TooLarge("the request line is too long");
  if (std::string error = ParseRequestLine(buffer.substr(0, line_end), result.request);
      !error.empty()) {
    return Bad(error);
  }
  size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string_view::npos || head_end + 4 > max_head) {
    if (buffer.size() >= max_head || head_end != std::string_view::npos) {
      return TooLarge("the request head exceeds " + std::to_string(max_head) + " bytes");
    }
    // Headers so far must be well formed too, so garbage is refused without waiting.
    std::string_view partial = buffer.substr(line_end + 2);
    for (char c : partial) {
      auto u = static_cast<unsigned char>(c);
      if (u == 0 || (u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7F) {
        return Bad("control character in a header");
      }
    }
    result.request = HttpRequest();
    return result;  // incomplete
  }
  // Headers: the lines between the request line and the blank line.
  std::string_view headers =
      head_end > line_end ? buffer.substr(line_end + 2, head_end - line_end) : std::string_view();
  while (!headers.empty()) {
    size_t end = headers.find("\r\n");
    if (end == std::string_view::npos) break;  // cannot happen: the head ends with CRLF
    std::string_view line = headers.substr(0, end);
    headers.remove_prefix(end + 2);
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') return Bad("obsolete header line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Bad("a header line has no colon");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Bad("invalid header name");
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) return Bad("control character in a header");
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (result.request.headers.size() >= kMaxHttpHeaders) {
      return TooLarge("more than " + std::to_string(kMaxHttpHeaders) + " headers");
    }
    result.request.headers.emplace_back(std::string(name), std::string(value));
  }
  result.status = HttpParseStatus::kComplete;
  return result;
}

HttpResponse RespondToHttp(const HttpParseResult& parsed,
                           const std::function<std::string()>& metrics) {
  HttpResponse response;
  switch (parsed.status) {
    case HttpParseStatus::kBadRequest:
      response.status = 400;
      response.body = "bad request: " + parsed.error + "\n";
      return response;
    case HttpParseStatus::kTooLarge:
      response.status = 431;
      response.body = "request too large: " + parsed.error + "\n";
      return response;
    case HttpParseStatus::kIncomplete:
      response.status = 400;
      response.body = "bad request: incomplete request\n";
      return response;
    case HttpParseStatus::kComplete: break;
  }
  if (parsed.request.method != "GET") {
    response.status = 405;
    response.body = "only GET is supported\n";
    response.extra_headers.emplace_back("Allow", "GET");
    return response;
  }
  if (parsed.request.path != "/metrics") {
    response.status = 404;
    response.body = "not found: the metrics are at /metrics\n";
    return response;
  }
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = metrics ? metrics() : std::string();
  return response;
}

std::string SerializeHttpResponse(const HttpResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    Reason(response.status) + "\r\n";
  out += "Content-Type: " + response.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  out += "Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [name, value] : response.extra_headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out += response.body;
  return out;
}

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> metrics) {
  CHIRON_ASSIGN_OR_RETURN(TcpListener listener, ListenTcp(listen, "metrics address"));
  int fd = listener.fd;
  int bound_port = listener.port;
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(fd);
    return InternalError(std::string("metrics wake pipe: ") + std::strerror(errno));
  }
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(fd, wake[0], wake[1], bound_port, std::move(metrics)));
  server->thread_ = std::thread([raw = server.get()] { raw->Serve(); });
  LogInfo("metrics.listening", {{"address", listen}, {"port", std::to_string(bound_port)}});
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  Stop();
  close(wake_read_);
  close(wake_write_);
}

void MetricsHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  char byte = 1;
  (void)!write(wake_write_, &byte, 1);
  if (thread_.joinable()) thread_.join();
  // Stop listening at once: new connections are refused, not queued.
  close(listen_fd_);
  listen_fd_ = -1;
}

void MetricsHttpServer::Serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      LogError("metrics.poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // e.g. the peer already went away
    HandleConnection(fd);
    close(fd);
  }
}

void MetricsHttpServer::HandleConnection(int fd) {
  // Wait for `events` on fd until the deadline; false on timeout, error or Stop().
  auto wait = [&](short events, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      pollfd fds[2] = {{fd, events, 0}, {wake_read_, POLLIN, 0}};
      int ready = poll(fds, 2, RemainingMs(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0 || fds[1].revents != 0) return false;
      return true;
    }
  };

  std::string buffer;
  HttpParseResult parsed;
  bool timed_out = false;
  auto read_deadline = std::chrono::steady_clock::now() + kReadTimeout;
  char chunk[4096];
  for (;;) {
    parsed = ParseHttpRequest(buffer);
    if (parsed.status != HttpParseStatus::kIncomplete) break;
    if (!wait(POLLIN, read_deadline)) {
      if (stopping_) return;
      timed_out = true;
      break;
    }
    size_t want = std::min(sizeof chunk, kMaxHttpRequestHead - buffer.size());
    ssize_t got = recv(fd, chunk, want, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) break;  // EOF or error: judge what arrived
    buffer.append(chunk, static_cast<size_t>(got));
  }

  HttpResponse response;
  if (timed_out) {
    response.status = 408;
    response.body = "request timeout\n";
  } else {
    response = RespondToHttp(parsed, metrics_);
  }
  std::string out = SerializeHttpResponse(response);
  auto write_deadline = std::chrono::steady_clock::now() + kWriteTimeout;
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT, write_deadline)) return;
    } else {
      return;
    }
  }
  // Half-close, then discard (a bounded amount of) what the client still sends, so closing
  // does not reset the connection before the client has read the answer.
  shutdown(fd, SHUT_WR);
  auto drain_deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  size_t drained = 0;
  while (drained < kMaxDrain && wait(POLLIN, drain_deadline)) {
    ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) break;
    drained += static_cast<size_t>(got);
  }
}

}  // namespace chiron::runtime
