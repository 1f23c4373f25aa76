// The client end of the data plane (docs/formats/data-plane.md): streams an upload's sealed
// chunks to chirond's data-plane port, admitted by the single-use ticket BeginUpload returned
// over attested TLS, and believes only acknowledgements authenticated with the ticket's ack key.
//
// Thread safety: Send and Close from one thread; the ack callback runs on an internal reader
// thread (started by StartReading).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/dataplane/wire.h"

namespace chiron::client {

class DataPlaneUpload {
 public:
  // A connection that stalls this long in either direction is given up (Unavailable).
  static constexpr std::chrono::seconds kStallTimeout{300};
  static constexpr size_t kMaxQueued = 4;

  // Connects, presents the ticket and waits for the runtime's authenticated welcome.
  // Unavailable if the port cannot be reached or the runtime refused the ticket (the caller may
  // then upload through the API port instead); DataLoss if the welcome is not authenticated.
  static Result<std::unique_ptr<DataPlaneUpload>> Open(const std::string& host, int port,
                                                       ByteSpan ticket,
                                                       std::chrono::milliseconds connect_timeout);
  ~DataPlaneUpload();
  DataPlaneUpload(const DataPlaneUpload&) = delete;
  DataPlaneUpload& operator=(const DataPlaneUpload&) = delete;

  // The runtime's acknowledged_through when the connection was accepted.
  uint64_t resume_point() const { return resume_point_; }

  // Starts the reader: `on_ack(acknowledged_through, complete)` for every authenticated ack.
  void StartReading(std::function<void(uint64_t, bool)> on_ack);

  // Queues one chunk frame for the sender thread, so that sealing the next chunk overlaps with
  // sending this one. Blocks while kMaxQueued chunks wait. `sealed` is copied unless it is the
  // buffer AcquireBuffer handed out last (then it is sent from there). Unavailable once the
  // connection broke or the runtime ended the upload with an error (Close then returns it).
  Status Send(uint64_t index, bool last, ByteSpan sealed);
  // A buffer of `size` bytes to seal the next chunk into (DatasetWriterOptions::seal_into), so
  // Send need not copy it. Blocks while kMaxQueued chunks wait; empty once sending failed.
  MutableByteSpan AcquireBuffer(size_t size);

  // Sends what is queued, ends the upload (an End frame if `end`), waits for the runtime to
  // finish storing and close.
  // Returns the runtime's error if it sent one (its code and message), DataLoss for a reply
  // that failed authentication, Unavailable if the connection broke, else OK.
  Status Close(bool end);

 private:
  DataPlaneUpload(int fd, SecretBytes ack_key, dataplane::Nonce nonce)
      : fd_(fd), ack_key_(std::move(ack_key)), nonce_(nonce) {}
  Result<dataplane::ServerFrame> ReadFrame();
  void ReadLoop(const std::function<void(uint64_t, bool)>& on_ack);
  void SendLoop();
  // Stops the sender once what is queued went out, joins it; its error if any.
  Status StopSender();

  struct Outgoing {
    uint64_t index = 0;
    bool last = false;
    Bytes bytes;
  };

  int fd_;
  SecretBytes ack_key_;
  dataplane::Nonce nonce_;
  uint64_t sequence_ = 0;  // of the next server frame; reader thread only after Open
  uint64_t resume_point_ = 0;
  std::thread reader_;
  std::atomic<bool> ended_{false};  // the reader stopped: the runtime closed or failed
  std::mutex mu_;
  Status outcome_;  // guarded by mu_: the runtime's error or the reader's failure
  bool closed_ = false;

  std::thread sender_;
  std::mutex send_mu_;
  std::condition_variable send_changed_;
  std::deque<Outgoing> outgoing_;  // guarded by send_mu_
  std::vector<Bytes> spare_;       // guarded by send_mu_: buffers of sent chunks
  Bytes acquired_;                 // the caller's thread only: handed out by AcquireBuffer
  bool sender_stop_ = false;       // guarded by send_mu_
  Status send_status_;             // guarded by send_mu_: the first send failure
};

}  // namespace chiron::client
