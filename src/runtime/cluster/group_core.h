// Internal to chiron_cluster: the shared state of one PeerGroup (GroupCore), its per-peer links,
// and the listener's registry of groups by job id. Public API: peer_group.h, node_listener.h.
//
// Threads of a group of size N at rank r:
//  - per lower rank j < r: a dial thread (connects, says hello, then reads frames from j until
//    the stream ends) and a writer thread;
//  - per higher rank j > r: the gRPC handler thread of j's incoming stream (hello, then reads)
//    and a writer thread;
//  - the caller of Join / Exchange, which posts work and waits on cv_.
// Every reader drains its stream at all times except when it holds a frame of a message the
// caller has not asked for yet (a peer one exchange ahead); the caller posts every receive before
// any send, so no pair of writers can block each other through HTTP/2 flow control.
//
// Locking: one mutex (mu_) guards every field below; payload copies and gRPC reads and writes
// run outside it, announced by the `copying` / `sending` marks so that a failing Exchange can
// wait until no thread touches the caller's buffers before it returns.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "chiron/internal/node.grpc.pb.h"
#include "runtime/cluster/frame_checks.h"
#include "runtime/cluster/peer_group.h"

namespace chiron::cluster::internal {

// One bidirectional stream, client or server side. Read and Write may run concurrently (one
// reader, one writer); Cancel from any thread makes both return false promptly.
class FrameStream {
 public:
  virtual ~FrameStream() = default;
  virtual bool Read(chiron::internal::Frame* frame) = 0;
  virtual bool Write(const chiron::internal::Frame& frame) = 0;
  virtual void Cancel() = 0;
};

class GroupCore : public std::enable_shared_from_this<GroupCore> {
 public:
  explicit GroupCore(PeerGroupOptions options);
  ~GroupCore();

  const PeerGroupOptions& options() const { return options_; }

  // Dials every lower rank and waits until all peers are connected (or an error, or the connect
  // timeout). On error the core is shut down.
  Status Connect();

  // An incoming stream whose first frame was `hello` (job id already matched): validates it,
  // answers, then reads frames until the stream ends. Returns when the stream is no longer used
  // by any thread of the group (the handler may then return). Called on a gRPC handler thread.
  void ServeIncoming(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<chiron::internal::Frame,
                                              chiron::internal::Frame>* stream,
                     const chiron::internal::Frame& hello);

  Status ExchangeFloats(uint64_t step, uint32_t phase, std::span<const std::span<const float>> out,
                        std::span<const std::span<float>> in);
  Status ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out, std::vector<Bytes>& in);

  // Breaks the group with Aborted; blocked calls return at once.
  void Abort();
  // Breaks the group, cancels every stream, joins every thread the group started and waits for
  // every handler to leave. Idempotent.
  void Shutdown();

  uint64_t payload_bytes_sent() const { return payload_bytes_sent_.load(); }
  uint64_t wire_bytes_sent() const { return wire_bytes_sent_.load(); }

 private:
  // What the writer of one link sends for the current exchange.
  struct SendJob {
    MessageKind kind = MessageKind::kFloats;
    uint64_t step = 0;
    uint32_t phase = 0;
    ByteSpan data;  // the caller's buffer: valid while the Exchange that posted it runs
  };

  struct Link {
    uint32_t rank = 0;
    std::unique_ptr<FrameStream> stream;  // null when not (or no longer) connected
    bool incoming = false;                // served by a gRPC handler thread
    bool connected = false;
    bool closing = false;                 // set once: the writer exits, the stream is cancelled
    bool writer_running = false;
    std::thread writer;
    std::thread dialer;                   // outgoing links: dials, then reads
    // Receive side of the current exchange.
    bool recv_active = false;
    Expectation expect;
    uint8_t* recv_floats = nullptr;       // floats: the caller's in[rank] as bytes
    Bytes* recv_bytes = nullptr;          // bytes: the caller's in[rank]
    int copying = 0;
    // Send side of the current exchange.
    bool send_active = false;
    bool sending = false;
    SendJob job;
  };

  using Lock = std::unique_lock<std::mutex>;

  Status RunExchange(MessageKind kind, uint64_t step, uint32_t phase,
                     const std::vector<ByteSpan>& out, std::span<const std::span<float>> in_floats,
                     std::vector<Bytes>* in_bytes);
  void Dial(Link& link);
  void ReadLoop(Link& link);
  // Checks and stores one frame; false if the loop must stop.
  bool Deliver(Link& link, const chiron::internal::Frame& frame);
  void WriteLoop(Link& link);
  void StartWriterLocked(Link& link);
  void BreakLocked(Status status);
  Status DialFailure(const Link& link, const Status& status) const;

  const PeerGroupOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Link> links_;  // indexed by rank; links_[rank] unused
  bool broken_ = false;
  Status broken_status_;
  bool shut_down_ = false;
  bool in_exchange_ = false;
  bool any_exchange_ = false;
  uint64_t last_step_ = 0;
  uint32_t last_phase_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> payload_bytes_sent_{0};
  std::atomic<uint64_t> wire_bytes_sent_{0};
};

// The listener's groups by job id. Thread safe.
class JobRegistry {
 public:
  // AlreadyExists if the job has a group here; FailedPrecondition after Close.
  Status Register(const std::string& job_id, std::shared_ptr<GroupCore> group);
  void Unregister(const std::string& job_id, const GroupCore* group);
  // The job's group, waiting up to `wait` for it to register; null on timeout or after Close.
  std::shared_ptr<GroupCore> WaitFor(const std::string& job_id, std::chrono::milliseconds wait);
  // Wakes every waiter and aborts every registered group.
  void Close();
  bool closed();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::map<std::string, std::shared_ptr<GroupCore>> groups_;
};

// Checks a job id: 1..128 printable ASCII characters.
bool ValidJobId(const std::string& job_id);

}  // namespace chiron::cluster::internal
