// DataPlaneServer: chirond's TLS-free TCP port for upload chunks (chirond --data-listen; wire
// format in shared/dataplane/wire.h and docs/formats/data-plane.md, the argument for leaving out
// TLS there too).
//
// Datasets.BeginUpload, over attested mutual TLS, issues a ticket: 32 random bytes bound to the
// calling owner and the dataset, handed only to that caller. The client connects here, presents
// the ticket's id, and streams the dataset's sealed chunks; each connection feeds a ChunkIngest,
// the same check -> authenticate -> group-commit pipeline as the gRPC Upload stream, so a chunk
// is acknowledged only once it is authenticated under the data key and durable. Acks and errors
// go back authenticated with the ticket's ack key.
//
// Tickets are single use (the connection that presents one consumes it), expire
// DataPlaneLimits::ticket_lifetime after they were issued if unused, and at most kMaxTickets are
// outstanding (the oldest goes first). At most kMaxConnections connections are served at once; a
// connection that has not sent its whole hello within hello_timeout, or is idle for idle_timeout
// later, is closed.
//
// Thread safety: IssueTicket from any thread; Stop from one. Connections run on their own
// threads, joined by Stop.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/store/store.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/dataplane/wire.h"

namespace chiron::runtime {

// The data plane's time limits. The defaults are chirond's; tests shorten them to see them act.
struct DataPlaneLimits {
  std::chrono::milliseconds ticket_lifetime = std::chrono::minutes(10);
  std::chrono::milliseconds hello_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(120);
};

class DataPlaneServer {
 public:
  static constexpr size_t kMaxTickets = 1024;
  static constexpr size_t kMaxConnections = 16;

  // `listen` is host:port (port 0 picks a free one). `store` must outlive the server.
  static Result<std::unique_ptr<DataPlaneServer>> Start(const std::string& listen,
                                                        store::Store* store,
                                                        DataPlaneLimits limits = {});
  ~DataPlaneServer();  // Stop()
  DataPlaneServer(const DataPlaneServer&) = delete;
  DataPlaneServer& operator=(const DataPlaneServer&) = delete;

  int port() const { return port_; }

  // A fresh ticket for `owner_id` to upload `dataset_id` here (the caller has checked both).
  Result<SecretBytes> IssueTicket(const std::string& owner_id, const std::string& dataset_id);

  // Stops accepting, ends every connection (chunks already accepted are still stored) and joins
  // their threads. Idempotent.
  void Stop();

 private:
  struct Ticket {
    std::string owner_id;
    std::string dataset_id;
    SecretBytes ack_key;
    std::chrono::steady_clock::time_point issued;
  };
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  DataPlaneServer(int listen_fd, int port, int wake_read, int wake_write, store::Store* store,
                  DataPlaneLimits limits)
      : listen_fd_(listen_fd), port_(port), wake_read_(wake_read), wake_write_(wake_write),
        store_(store), limits_(limits) {}
  void AcceptLoop();
  void ReapFinished();  // joins connections whose threads ended; caller holds connections_mu_
  void Serve(Connection* connection);
  std::optional<Ticket> Redeem(const dataplane::TicketId& id);

  int listen_fd_;
  const int port_;
  int wake_read_;
  int wake_write_;
  store::Store* store_;
  const DataPlaneLimits limits_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;

  std::mutex tickets_mu_;
  std::map<dataplane::TicketId, Ticket> tickets_;  // guarded by tickets_mu_

  std::mutex connections_mu_;
  std::vector<std::unique_ptr<Connection>> connections_;  // guarded by connections_mu_
};

}  // namespace chiron::runtime
