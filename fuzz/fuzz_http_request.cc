// Fuzzes the metrics endpoint's HTTP request parser and router (src/runtime/service/
// metrics_http.h) with the bytes any local process could send to chirond --metrics-listen.
// Checks: no crash; a complete parse consumed only well-formed pieces (method a token, target an
// absolute path, version HTTP/1.0 or 1.1, at most kMaxHttpHeaders headers); anything the limit
// cuts off is kTooLarge, never kIncomplete; the answer is always a 2xx or 4xx with a correct
// Content-Length, and 200 only for GET /metrics.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "runtime/service/metrics_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron::runtime;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Also with a small limit, to exercise the size checks on short inputs.
  for (size_t limit : {kMaxHttpRequestHead, size_t{64}}) {
    HttpParseResult parsed = ParseHttpRequest(input, limit);
    if (parsed.status == HttpParseStatus::kIncomplete && input.size() >= limit) __builtin_trap();
    if (parsed.status == HttpParseStatus::kComplete) {
      const HttpRequest& r = parsed.request;
      if (r.method.empty() || r.target.empty() || r.target[0] != '/') __builtin_trap();
      if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") __builtin_trap();
      if (r.headers.size() > kMaxHttpHeaders) __builtin_trap();
      if (input.find("\r\n\r\n") == std::string_view::npos) __builtin_trap();
      if (input.find("\r\n\r\n") + 4 > limit) __builtin_trap();
      for (const auto& [name, value] : r.headers) {
        if (name.empty() || name.find(':') != std::string::npos) __builtin_trap();
        if (value.find('\r') != std::string::npos || value.find('\n') != std::string::npos) {
          __builtin_trap();
        }
      }
    }
    HttpResponse response = RespondToHttp(parsed, [] { return std::string("m 1\n"); });
    if (response.status != 200 && (response.status < 400 || response.status > 499)) {
      __builtin_trap();
    }
    if (response.status == 200 &&
        (parsed.status != HttpParseStatus::kComplete || parsed.request.method != "GET" ||
         parsed.request.path != "/metrics")) {
      __builtin_trap();
    }
    std::string wire = SerializeHttpResponse(response);
    std::string length = "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    if (wire.find(length) == std::string::npos) __builtin_trap();
    if (wire.size() < response.body.size() ||
        wire.compare(wire.size() - response.body.size(), response.body.size(), response.body) !=
            0) {
      __builtin_trap();
    }
  }
  return 0;
}
