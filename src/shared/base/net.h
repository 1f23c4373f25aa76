// Plain TCP plumbing shared by chirond's non-gRPC listeners (metrics endpoint, data plane) and
// the client's data-plane connection: address parsing, listen, connect, exact reads and writes.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <string>
#include <string_view>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron {

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;
};

// "127.0.0.1:7443", "[::1]:0", "localhost:9464". InvalidArgument naming `what` (e.g. "metrics
// address") and the expected form.
Result<HostPort> SplitHostPort(std::string_view address, std::string_view what);

struct TcpListener {
  int fd = -1;   // listening, close-on-exec; the caller owns it
  int port = 0;  // the bound port (the chosen one when the address asked for port 0)
};
// Binds and listens. Unavailable "cannot listen for <what> on <address>: <reason>".
Result<TcpListener> ListenTcp(std::string_view address, std::string_view what);

// Connects (TCP_NODELAY, close-on-exec) within `timeout`. Unavailable naming the address.
Result<int> ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout);

// Sets SO_RCVTIMEO and SO_SNDTIMEO, so a peer that stalls cannot block a thread for ever.
void SetSocketTimeouts(int fd, std::chrono::milliseconds timeout);

// Reads exactly out.size() bytes. OK; OutOfRange "end of stream" if the peer closed cleanly
// before the first byte; Unavailable for a close in the middle, a timeout or an error.
Status ReadExact(int fd, MutableByteSpan out);
// The same within `timeout` for the whole read, not per receive as SO_RCVTIMEO counts it: a
// peer that trickles one byte at a time cannot stretch it. Unavailable "... (timed out)" when
// the time is up.
Status ReadExactWithin(int fd, MutableByteSpan out, std::chrono::milliseconds timeout);
// Writes every byte of the iovecs (modified as it goes), MSG_NOSIGNAL. Unavailable on error.
Status WriteAll(int fd, iovec* parts, int count);
Status WriteAll(int fd, ByteSpan data);

}  // namespace chiron
