// ChunkIngest: the receiving half of an upload, shared by the gRPC stream (Datasets.Upload) and
// the data plane (data_plane_server.h). One instance per stream or connection.
//
// The transport's thread calls Accept for every chunk it receives, in order. Accept checks the
// chunk against the container header (index == the next expected one, exact sealed size, last
// flag only on the final chunk) and authenticates it under the data key (so a tampered,
// reordered or spliced chunk is refused now, not at training time); a chunk below the resume
// point must equal the stored one byte for byte (an idempotent re-send). Accepted chunks queue
// (at most kMaxQueuedBytes; WaitForRoom blocks the transport, and so the client through TCP or
// HTTP/2 flow control) while a storer thread writes everything that queued up as one group
// (Store::AppendChunks: one pwritev, one fdatasync, one transaction) and then calls `on_ack`
// with the new acknowledged_through. Nothing is acknowledged before it is authenticated and
// durable. If storing fails (disk full, I/O error), `on_store_failure` is called once, from the
// storer thread, so the transport can end its stream; Finish then returns the error.
//
// Authentication on its own thread: with Callbacks::on_refused set, Accept makes only the cheap
// checks (place, size, flag, a re-send's bytes) and a verifier thread authenticates the chunks in
// order before they reach the storer, so that decrypting one chunk overlaps with receiving the
// next (the data plane does this). A chunk that fails then is reported through on_refused, once,
// from the verifier thread: nothing after it is stored, everything before it still is, and
// Finish returns the refusal. Without on_refused, Accept authenticates before it returns (the
// gRPC stream, whose handler must answer a refusal as the stream's status).
//
// Thread safety: Accept, WaitForRoom, TakeBuffer and Finish from one thread (the transport's);
// the callbacks run on the storer or verifier thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/store/store.h"
#include "shared/base/aligned_buffer.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/dataset/container.h"

namespace chiron::runtime {

class ChunkIngest {
 public:
  // Chunks received and not yet stored, per stream. 16 MiB measured as well as 32
  // (upload_bench, within noise) and halves the memory a connection can hold; 64 MiB was slower.
  static constexpr uint64_t kMaxQueuedBytes = uint64_t{16} << 20;
  // Buffers of stored chunks kept for receiving the next ones, process-wide (shared by all
  // streams, so kept across uploads): a fresh buffer costs its page faults and zero-fill, which
  // upload_bench showed in every upload's first 32 MiB.
  static constexpr uint64_t kMaxPooledBytes = uint64_t{32} << 20;

  struct Callbacks {
    // After each durable group. Returns false if the transport can no longer deliver acks (the
    // client went away): the storer then stops taking new groups.
    std::function<bool(const store::UploadProgress&)> on_ack;
    std::function<void(const Status&)> on_store_failure;
    // Set: authenticate on a verifier thread, and report a chunk that fails here.
    std::function<void(const Status&)> on_refused;
  };

  // Opens `dataset_id` of `owner_id` for appending. NotFound (worded so it cannot tell another
  // owner's dataset from a missing one) if the owner has no such dataset; the store's error if
  // its key or header cannot be opened.
  static Result<std::unique_ptr<ChunkIngest>> Open(store::Store* store,
                                                   const std::string& owner_id,
                                                   const std::string& dataset_id,
                                                   Callbacks callbacks);
  ~ChunkIngest();  // Finish()
  ChunkIngest(const ChunkIngest&) = delete;
  ChunkIngest& operator=(const ChunkIngest&) = delete;

  const std::string& dataset_id() const { return dataset_id_; }
  uint64_t chunk_count() const { return chunk_count_; }
  // acknowledged_through when this ingest was opened: where the client should resume.
  uint64_t resume_point() const { return stored_before_; }

  // The size chunk `index` must have (ciphertext and tag). OutOfRange if the container has no
  // such chunk. Lets a transport refuse a frame before reading its body.
  Result<uint64_t> ExpectedSize(uint64_t index) const;

  // Blocks until the queue has room. False once the storer stopped (a store failure, or acks
  // could not be delivered) or the verifier refused a chunk: the transport should stop reading
  // and call Finish.
  bool WaitForRoom();

  // Checks, authenticates and queues one chunk (its bytes are moved in). An error is a refusal
  // with a message for the client (what was wrong and what to do); nothing of the refused chunk
  // is stored. Chunks accepted before it are still stored. The buffer goes to the store as it
  // is (its zero padding included), which writes it to disk without copying it again.
  Status Accept(uint64_t index, bool last, AlignedBuffer sealed);

  // A buffer whose chunk was stored (by this or an earlier stream), for the transport to
  // receive the next chunk into: saves an allocation and the page faults of a fresh 1 MiB
  // buffer per chunk. May be empty.
  AlignedBuffer TakeBuffer();

  // No more chunks: waits until everything queued is stored and acknowledged, stops the storer.
  // Returns the store's error if storing failed, else the verifier's refusal, else OK.
  // Idempotent.
  Status Finish();

 private:
  ChunkIngest(store::Store* store, std::string owner_id, store::DatasetRecord record,
              dataset::DatasetReader reader, Callbacks callbacks);
  void StoreLoop();
  void VerifyLoop();
  // Place, size, flag and a re-send's bytes; sets `needs_authentication` for a new chunk.
  Status CheckPlace(uint64_t index, bool last, ByteSpan sealed, bool& needs_authentication);
  Status Authenticate(uint64_t index, ByteSpan sealed);
  void LogRefusal(uint64_t index, const Status& status) const;

  store::Store* store_;
  const std::string owner_id_;
  const std::string dataset_id_;
  const uint64_t chunk_count_;
  const uint64_t stored_before_;
  dataset::DatasetReader reader_;
  Callbacks callbacks_;
  uint64_t next_index_;

  struct Queued {
    uint64_t index;
    bool last;
    AlignedBuffer sealed;
    bool needs_authentication = false;  // pending_ only
  };
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Queued> pending_;        // guarded by mu_: accepted, not yet authenticated
  std::deque<Queued> queue_;          // guarded by mu_: authenticated, to be stored
  uint64_t queued_bytes_ = 0;         // guarded by mu_: in pending_ and queue_
  bool input_done_ = false;           // guarded by mu_
  bool verified_done_ = false;        // guarded by mu_: nothing more will reach queue_
  Status refused_;                    // guarded by mu_: the verifier's refusal
  bool storer_done_ = false;          // guarded by mu_
  Status store_error_;                // guarded by mu_
  uint64_t chunks_stored_ = 0;        // storer thread only
  uint64_t groups_stored_ = 0;        // storer thread only
  std::chrono::steady_clock::duration store_time_{};  // storer thread only: in AppendChunks
  std::thread storer_;
  std::thread verifier_;
  bool finished_ = false;
};

}  // namespace chiron::runtime
