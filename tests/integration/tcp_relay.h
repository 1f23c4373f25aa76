// A TCP relay on loopback for the integration tests (cut connections, recorded traffic).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chiron::testing {

// A TCP relay on loopback in front of a server port. It cuts every connection for good once
// `cut_after` bytes went from clients to the server, and refuses connections from then on: an
// upload interrupted at a point the test chooses (a byte count into the stream), whatever the
// machine's speed. With `record` it keeps what clients sent, for a test to look for plaintext on
// the wire. The bytes are relayed untouched (a TLS session through it is end to end).
class TcpRelay {
 public:
  TcpRelay(int server_port, uint64_t cut_after = UINT64_MAX, bool record = false)
      : server_port_(server_port), cut_after_(cut_after), record_(record) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "relay: cannot listen on loopback";
      return;
    }
    port_ = ntohs(address.sin_port);
    ::pipe2(wake_, O_CLOEXEC);
    thread_ = std::thread([this] { Run(); });
  }
  ~TcpRelay() {
    if (thread_.joinable()) {
      char byte = 0;
      (void)!::write(wake_[1], &byte, 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // With `record`: every byte that went from clients to the server so far, connections one
  // after the other in the order their bytes arrived (any thread).
  std::string recorded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return recorded_;
  }

 private:
  struct Pair {
    int client = -1, server = -1;
  };

  void Run() {
    std::vector<Pair> pairs;
    uint64_t forwarded = 0;  // client to server, all connections
    char buffer[16384];
    for (;;) {
      std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (const Pair& p : pairs) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) break;
      if (fds[1].revents & POLLIN) {
        int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0 && forwarded >= cut_after_) {
          ::close(client);  // cut for good: no new connection either
        } else if (client >= 0) {
          int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          to.sin_port = htons(static_cast<uint16_t>(server_port_));
          if (::connect(server, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
            ::close(server);
            ::close(client);
          } else {
            pairs.push_back({client, server});
          }
        }
      }
      bool cut = false;
      std::vector<bool> closed(pairs.size(), false);
      const size_t polled_pairs = (fds.size() - 2) / 2;  // not one accepted just now
      for (size_t i = 0; i < polled_pairs; ++i) {
        for (int side = 0; side < 2; ++side) {
          const pollfd& polled = fds[2 + 2 * i + side];
          if (polled.revents == 0 || closed[i]) continue;
          const int from = side == 0 ? pairs[i].client : pairs[i].server;
          const int to = side == 0 ? pairs[i].server : pairs[i].client;
          size_t want = sizeof buffer;
          if (side == 0) want = std::min<uint64_t>(want, cut_after_ - forwarded);
          ssize_t got = ::read(from, buffer, want);
          if (got <= 0 || !WriteAll(to, buffer, static_cast<size_t>(got))) {
            closed[i] = true;
            continue;
          }
          if (side == 0) {
            if (record_) {
              std::lock_guard<std::mutex> lock(mutex_);
              recorded_.append(buffer, static_cast<size_t>(got));
            }
            forwarded += static_cast<uint64_t>(got);
            if (forwarded >= cut_after_) cut = true;
          }
        }
      }
      for (size_t i = pairs.size(); i-- > 0;) {
        if (cut || closed[i]) {
          ::close(pairs[i].client);
          ::close(pairs[i].server);
          pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
    }
    for (const Pair& p : pairs) {
      ::close(p.client);
      ::close(p.server);
    }
  }

  static bool WriteAll(int fd, const char* data, size_t size) {
    while (size > 0) {
      ssize_t wrote = ::write(fd, data, size);
      if (wrote <= 0) return false;
      data += wrote;
      size -= static_cast<size_t>(wrote);
    }
    return true;
  }

  int server_port_;
  uint64_t cut_after_;
  bool record_;
  mutable std::mutex mutex_;
  std::string recorded_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace chiron::testing
