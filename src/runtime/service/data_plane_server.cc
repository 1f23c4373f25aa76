#include "runtime/service/data_plane_server.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/service/chunk_ingest.h"
#include "shared/base/log.h"
#include "shared/base/net.h"
#include "shared/crypto/random.h"

namespace chiron::runtime {
namespace {

// After a refusal the runtime stops reading frames, but the client may still be sending: closing
// with unread bytes would reset the connection, and a reset can destroy the error frame before
// the client reads it. So the rest is read and dropped (bounded in time and bytes) until the
// client, having read the error, closes.
void DrainAndClose(int fd) {
  shutdown(fd, SHUT_WR);
  SetSocketTimeouts(fd, std::chrono::seconds(2));
  static constexpr size_t kMaxDrain = size_t{64} << 20;
  char buffer[16384];
  size_t drained = 0;
  while (drained < kMaxDrain) {
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace

using dataplane::ServerFrame;
using dataplane::ServerFrameType;

Result<std::unique_ptr<DataPlaneServer>> DataPlaneServer::Start(const std::string& listen,
                                                                store::Store* store,
                                                                DataPlaneLimits limits) {
  CHIRON_ASSIGN_OR_RETURN(TcpListener listener, ListenTcp(listen, "data-plane address"));
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(listener.fd);
    return InternalError(std::string("data plane wake pipe: ") + std::strerror(errno));
  }
  std::unique_ptr<DataPlaneServer> server(
      new DataPlaneServer(listener.fd, listener.port, wake[0], wake[1], store, limits));
  server->accept_thread_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  LogInfo("data_plane.listening", {{"address", listen}, {"port", std::to_string(listener.port)}});
  return server;
}

DataPlaneServer::~DataPlaneServer() {
  Stop();
  close(wake_read_);
  close(wake_write_);
}

void DataPlaneServer::Stop() {
  if (stopping_.exchange(true)) return;
  char byte = 1;
  (void)!write(wake_write_, &byte, 1);
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  std::lock_guard<std::mutex> lock(connections_mu_);
  // Unblocks every connection thread in recv or send; their sockets stay open (and their
  // numbers unused) until they are joined below.
  for (auto& connection : connections_) shutdown(connection->fd, SHUT_RDWR);
  for (auto& connection : connections_) {
    if (connection->thread.joinable()) connection->thread.join();
    close(connection->fd);
  }
  connections_.clear();
}

Result<SecretBytes> DataPlaneServer::IssueTicket(const std::string& owner_id,
                                                 const std::string& dataset_id) {
  CHIRON_ASSIGN_OR_RETURN(SecretBytes ticket, crypto::RandomSecret(dataplane::kTicketSize));
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(tickets_mu_);
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    it = now - it->second.issued > limits_.ticket_lifetime ? tickets_.erase(it) : std::next(it);
  }
  while (tickets_.size() >= kMaxTickets) {
    auto oldest = tickets_.begin();
    for (auto it = tickets_.begin(); it != tickets_.end(); ++it) {
      if (it->second.issued < oldest->second.issued) oldest = it;
    }
    tickets_.erase(oldest);
  }
  CHIRON_ASSIGN_OR_RETURN(dataplane::TicketId id, dataplane::DeriveTicketId(ticket.span()));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes ack_key, dataplane::DeriveAckKey(ticket.span()));
  tickets_[id] = Ticket{owner_id, dataset_id, std::move(ack_key), now};
  return ticket;
}

std::optional<DataPlaneServer::Ticket> DataPlaneServer::Redeem(const dataplane::TicketId& id) {
  std::lock_guard<std::mutex> lock(tickets_mu_);
  auto it = tickets_.find(id);
  if (it == tickets_.end()) return std::nullopt;
  Ticket ticket = std::move(it->second);
  tickets_.erase(it);  // single use
  if (std::chrono::steady_clock::now() - ticket.issued > limits_.ticket_lifetime) {
    return std::nullopt;
  }
  return ticket;
}

void DataPlaneServer::ReapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      close((*it)->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void DataPlaneServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    int ready = poll(fds, 2, 1000);
    if (ready < 0 && errno != EINTR) {
      LogError("data_plane.poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0) return;
    std::lock_guard<std::mutex> lock(connections_mu_);
    ReapFinished();
    if (ready <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // e.g. the peer already went away
    if (connections_.size() >= kMaxConnections) {
      LogWarning("data_plane.busy", {{"connections", std::to_string(connections_.size())}});
      close(fd);  // the client falls back to the API port or retries
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    connection->thread = std::thread([this, raw] {
      pthread_setname_np(pthread_self(), "chiron-dplane");
      Serve(raw);
      raw->done = true;
    });
    connections_.push_back(std::move(connection));
  }
}

void DataPlaneServer::Serve(Connection* connection) {
  const int fd = connection->fd;
  // A connection that does not say its whole hello soon gives its slot back: kMaxConnections
  // silent (or trickling) connections must not keep uploads out for long.
  SetSocketTimeouts(fd, limits_.hello_timeout);
  Bytes hello_bytes(dataplane::kHelloSize);
  if (!ReadExactWithin(fd, hello_bytes, limits_.hello_timeout).ok()) {
    shutdown(fd, SHUT_RDWR);  // the peer sees the end now; the socket closes when reaped
    return;
  }
  SetSocketTimeouts(fd, limits_.idle_timeout);
  auto reject = [fd](const std::string& message) {
    ServerFrame frame;
    frame.type = ServerFrameType::kRejected;
    frame.message = message;
    WriteAll(fd, dataplane::EncodeServerFrame(frame, {}, {}, 0)).IgnoreError();
    DrainAndClose(fd);
  };
  auto hello = dataplane::ParseHello(hello_bytes);
  if (!hello.ok()) {
    reject(hello.status().message());
    return;
  }
  std::optional<Ticket> ticket = Redeem(hello->ticket_id);
  if (!ticket) {
    LogWarning("data_plane.unknown_ticket", {});
    reject("unknown, used or expired upload ticket; run the upload again (BeginUpload issues a "
           "new ticket)");
    return;
  }

  // Authenticated frames to the client, from this thread and the ingest's storer thread.
  std::mutex write_mu;
  uint64_t sequence = 0;
  bool failed_sent = false;
  auto send = [&](const ServerFrame& frame) {
    std::lock_guard<std::mutex> lock(write_mu);
    Bytes wire = dataplane::EncodeServerFrame(frame, ticket->ack_key.span(), hello->nonce,
                                              sequence++);
    return WriteAll(fd, wire).ok();
  };
  auto send_error = [&](const Status& status) {
    ServerFrame frame;
    frame.type = ServerFrameType::kError;
    frame.code = static_cast<uint32_t>(status.code());
    frame.message = status.message();
    send(frame);
  };

  ChunkIngest::Callbacks callbacks;
  callbacks.on_ack = [&](const store::UploadProgress& progress) {
    ServerFrame frame;
    frame.type = ServerFrameType::kAck;
    frame.value = progress.acknowledged_through;
    frame.complete = progress.complete;
    return send(frame);
  };
  // A store failure: tell the client now and stop reading (this thread may be blocked in recv).
  callbacks.on_store_failure = [&](const Status& error) {
    send_error(error);
    {
      std::lock_guard<std::mutex> lock(write_mu);
      failed_sent = true;
    }
    shutdown(fd, SHUT_RD);
  };
  // A chunk the verifier thread refused: the loop below stops at its next frame, and the client
  // hears of it after the acks of the chunks before it (Finish stores those first).
  callbacks.on_refused = [](const Status&) {};
  auto opened = ChunkIngest::Open(store_, ticket->owner_id, ticket->dataset_id, callbacks);
  if (!opened.ok()) {
    send_error(opened.status());
    DrainAndClose(fd);
    return;
  }
  ChunkIngest& ingest = **opened;
  ServerFrame welcome;
  welcome.type = ServerFrameType::kWelcome;
  welcome.value = ingest.resume_point();
  if (!send(welcome)) return;

  Status refused;
  uint8_t head_bytes[dataplane::kChunkHeadSize];
  while (ingest.WaitForRoom()) {
    Status read = ReadExact(fd, head_bytes);
    if (!read.ok()) {
      // The client went away (or stalled) without an End frame: what was accepted is stored.
      if (read.code() != StatusCode::kOutOfRange && !stopping_) {
        LogWarning("data_plane.read_failed",
                   {{"dataset", ingest.dataset_id()}, {"error", read.ToString()}});
      }
      break;
    }
    auto head = dataplane::ParseChunkHead(head_bytes);
    if (!head.ok()) {
      refused = head.status();
      break;
    }
    if (head->type == dataplane::ClientFrameType::kEnd) break;
    // The size is checked before the body is read, so a frame cannot make the runtime allocate
    // more than the container's chunk size.
    auto expected = ingest.ExpectedSize(head->index);
    if (!expected.ok()) {
      refused = expected.status();
      break;
    }
    if (head->size != *expected) {
      refused = InvalidArgumentError(
          "dataset " + ingest.dataset_id() + " chunk " + std::to_string(head->index) + " has " +
          std::to_string(head->size) + " bytes but the container's header says " +
          std::to_string(*expected) + "; re-send the chunk from the original container");
      break;
    }
    AlignedBuffer body = ingest.TakeBuffer();
    body.Resize(head->size);
    read = ReadExact(fd, body.mutable_span());
    if (!read.ok()) {
      if (!stopping_) {
        LogWarning("data_plane.read_failed",
                   {{"dataset", ingest.dataset_id()}, {"error", read.ToString()}});
      }
      break;
    }
    refused = ingest.Accept(head->index, head->last, std::move(body));
    if (!refused.ok()) break;
  }
  // Chunks accepted before a refusal are still stored and acknowledged; then the refusal.
  Status stored = ingest.Finish();
  bool already_told;
  {
    std::lock_guard<std::mutex> lock(write_mu);
    already_told = failed_sent;
  }
  if (!stored.ok() && !already_told) send_error(stored);
  if (stored.ok() && !refused.ok()) send_error(refused);
  DrainAndClose(fd);
}

}  // namespace chiron::runtime
