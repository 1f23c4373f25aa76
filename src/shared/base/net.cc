#include "shared/base/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace chiron {

Result<HostPort> SplitHostPort(std::string_view address, std::string_view what) {
  std::string_view host, port;
  auto bad = [&] {
    return InvalidArgumentError(std::string(what) + " '" + std::string(address) +
                                "' needs a host and a port number, e.g. 127.0.0.1:7444 or "
                                "[::1]:7444");
  };
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return bad();
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad();
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  HostPort out{std::string(host), std::stoi(std::string(port))};
  if (out.port > 65535) return bad();
  return out;
}

Result<TcpListener> ListenTcp(std::string_view address, std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(HostPort where, SplitHostPort(address, what));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(where.port);
  int resolved = getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found);
  if (resolved != 0 || found == nullptr) {
    return InvalidArgumentError(std::string(what) + " '" + std::string(address) +
                                "': cannot resolve host: " + gai_strerror(resolved));
  }
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return InternalError(std::string(what) + " socket: " + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    int error = errno;
    freeaddrinfo(found);
    close(fd);
    return UnavailableError("cannot listen for " + std::string(what) + " on " +
                            std::string(address) + ": " + std::strerror(error) +
                            " (address in use or not local? pick another address)");
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  TcpListener listener;
  listener.fd = fd;
  listener.port = bound.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return listener;
}

Result<int> ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
  std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                      std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port_text = std::to_string(port);
  int resolved = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found);
  if (resolved != 0 || found == nullptr) {
    return UnavailableError("cannot resolve " + where + ": " + gai_strerror(resolved));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, static_cast<int>(timeout.count())) == 1 ? 0 : -1;
      int error = rc == 0 ? 0 : ETIMEDOUT;
      socklen_t size = sizeof error;
      if (rc == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0) {
        errno = error;
        rc = -1;
      }
    }
    if (rc != 0) {
      last_error = std::strerror(errno);
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(found);
    return fd;
  }
  freeaddrinfo(found);
  return UnavailableError("cannot connect to " + where + ": " + last_error);
}

void SetSocketTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Status ReadExact(int fd, MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    // MSG_WAITALL: one wake-up per buffer rather than one per arriving segment.
    ssize_t got = recv(fd, out.data() + done, out.size() - done, MSG_WAITALL);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got == 0 && done == 0) return OutOfRangeError("end of stream");
    if (got == 0) {
      return UnavailableError("the peer closed the connection after " + std::to_string(done) +
                              " of " + std::to_string(out.size()) + " bytes");
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return UnavailableError("the peer sent nothing for too long (timed out)");
    }
    return UnavailableError(std::string("receive failed: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Status ReadExactWithin(int fd, MutableByteSpan out, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t done = 0;
  while (done < out.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return UnavailableError("the peer sent " + std::to_string(done) + " of " +
                              std::to_string(out.size()) + " bytes in " +
                              std::to_string(timeout.count()) + " ms (timed out)");
    }
    pollfd wait{fd, POLLIN, 0};
    int ready = poll(&wait, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      return UnavailableError(std::string("poll failed: ") + std::strerror(errno));
    }
    if (ready <= 0) continue;  // EINTR or the time is up: the loop decides
    ssize_t got = recv(fd, out.data() + done, out.size() - done, MSG_DONTWAIT);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (got == 0 && done == 0) return OutOfRangeError("end of stream");
    if (got == 0) {
      return UnavailableError("the peer closed the connection after " + std::to_string(done) +
                              " of " + std::to_string(out.size()) + " bytes");
    }
    return UnavailableError(std::string("receive failed: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Status WriteAll(int fd, iovec* parts, int count) {
  while (count > 0) {
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<size_t>(count);
    ssize_t sent = sendmsg(fd, &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return UnavailableError("the peer accepted nothing for too long (timed out)");
      }
      return UnavailableError(std::string("send failed: ") + std::strerror(errno));
    }
    size_t left = static_cast<size_t>(sent);
    while (count > 0 && left >= parts->iov_len) {
      left -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + left;
      parts->iov_len -= left;
    }
  }
  return Status::Ok();
}

Status WriteAll(int fd, ByteSpan data) {
  iovec part{const_cast<uint8_t*>(data.data()), data.size()};
  return WriteAll(fd, &part, 1);
}

}  // namespace chiron
