#include "runtime/service/chunk_ingest.h"

#include <pthread.h>

#include "shared/base/log.h"
#include "shared/crypto/aead_stream.h"

namespace chiron::runtime {
namespace {

// The process-wide pool behind TakeBuffer: buffers of stored chunks, at most kMaxPooledBytes.
class BufferPool {
 public:
  static BufferPool& Get() {
    static BufferPool* const pool = new BufferPool();  // never destroyed: used until exit
    return *pool;
  }

  AlignedBuffer Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffers_.empty()) return {};
    AlignedBuffer buffer = std::move(buffers_.back());
    buffers_.pop_back();
    bytes_ -= buffer.capacity();
    return buffer;
  }

  // Keeps what fits under the cap; the rest is freed with `returned`.
  void Give(std::vector<AlignedBuffer>& returned) {
    std::lock_guard<std::mutex> lock(mu_);
    for (AlignedBuffer& buffer : returned) {
      if (bytes_ + buffer.capacity() > ChunkIngest::kMaxPooledBytes) break;
      bytes_ += buffer.capacity();
      buffers_.push_back(std::move(buffer));
    }
  }

 private:
  std::mutex mu_;
  std::vector<AlignedBuffer> buffers_;  // guarded by mu_
  uint64_t bytes_ = 0;                  // guarded by mu_: their capacities
};

}  // namespace

Result<std::unique_ptr<ChunkIngest>> ChunkIngest::Open(store::Store* store,
                                                       const std::string& owner_id,
                                                       const std::string& dataset_id,
                                                       Callbacks callbacks) {
  auto record = store->GetDataset(dataset_id);
  if (!record.ok() && record.status().code() != StatusCode::kNotFound) return record.status();
  // Another owner's dataset is reported exactly like a missing one, so ids cannot be probed.
  if (!record.ok() || record->owner_id != owner_id) {
    return NotFoundError("you have no dataset with id " + dataset_id +
                         ": call BeginUpload first (`chiron dataset upload` does)");
  }
  CHIRON_ASSIGN_OR_RETURN(SecretBytes key, store->GetDataKey(record->id));
  CHIRON_ASSIGN_OR_RETURN(dataset::DatasetReader reader,
                          dataset::DatasetReader::Open(key.span(), record->header.encoded));
  return std::unique_ptr<ChunkIngest>(new ChunkIngest(store, owner_id, std::move(*record),
                                                      std::move(reader), std::move(callbacks)));
}

ChunkIngest::ChunkIngest(store::Store* store, std::string owner_id, store::DatasetRecord record,
                         dataset::DatasetReader reader, Callbacks callbacks)
    : store_(store),
      owner_id_(std::move(owner_id)),
      dataset_id_(record.id),
      chunk_count_(record.chunk_count),
      stored_before_(record.acknowledged_through),
      reader_(std::move(reader)),
      callbacks_(std::move(callbacks)),
      next_index_(record.acknowledged_through) {
  storer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chiron-storer");
    StoreLoop();
  });
  if (callbacks_.on_refused) {
    verifier_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "chiron-verify");
      VerifyLoop();
    });
  }
}

ChunkIngest::~ChunkIngest() { Finish().IgnoreError(); }

Result<uint64_t> ChunkIngest::ExpectedSize(uint64_t index) const {
  if (index >= chunk_count_) {
    return OutOfRangeError("dataset " + dataset_id_ + " has " + std::to_string(chunk_count_) +
                           " chunks; there is no chunk " + std::to_string(index));
  }
  return reader_.header().sealed_chunk_size(index);
}

bool ChunkIngest::WaitForRoom() {
  std::unique_lock<std::mutex> lock(mu_);
  auto stopped = [&] { return storer_done_ || !refused_.ok(); };
  changed_.wait(lock, [&] { return stopped() || queued_bytes_ < kMaxQueuedBytes; });
  return !stopped();
}

Status ChunkIngest::CheckPlace(uint64_t index, bool last, ByteSpan sealed,
                               bool& needs_authentication) {
  needs_authentication = false;
  const std::string what = "dataset " + dataset_id_ + " chunk " + std::to_string(index);
  CHIRON_ASSIGN_OR_RETURN(uint64_t expected_size, ExpectedSize(index));
  if (last != (index + 1 == chunk_count_)) {
    return InvalidArgumentError(what + (last ? " was marked last but the header declares " +
                                                   std::to_string(chunk_count_) + " chunks"
                                             : " is the last chunk but was not marked last"));
  }
  if (index < stored_before_) {
    // A re-send of a stored chunk: the same bytes are a no-op, other bytes are refused.
    CHIRON_ASSIGN_OR_RETURN(Bytes stored, store_->ReadChunk(dataset_id_, index));
    if (!ConstantTimeEqual(stored, sealed)) {
      return AlreadyExistsError(what +
                                " is already stored with different contents; a resumed upload "
                                "must send the same container");
    }
    return Status::Ok();
  }
  if (index != next_index_) {
    return FailedPreconditionError("dataset " + dataset_id_ + " expects chunk " +
                                   std::to_string(next_index_) + " next, got chunk " +
                                   std::to_string(index) + "; resume from chunk " +
                                   std::to_string(next_index_));
  }
  if (sealed.size() != expected_size) {
    return DataLossError(what + " has " + std::to_string(sealed.size()) + " bytes but must have " +
                         std::to_string(expected_size) +
                         "; it was truncated, extended or taken from elsewhere; nothing was "
                         "stored: re-send the chunk from the original container");
  }
  ++next_index_;
  needs_authentication = true;
  return Status::Ok();
}

Status ChunkIngest::Authenticate(uint64_t index, ByteSpan sealed) {
  // The chunk is stored sealed: check its tag and its labels, decrypt nothing else.
  Status opened = reader_.AuthenticateChunk(index, sealed);
  if (!opened.ok()) {
    return Status(opened.code(), "dataset " + dataset_id_ + " chunk " + std::to_string(index) +
                                     ": " + opened.message() +
                                     "; nothing was stored: re-send the chunk from the original "
                                     "container");
  }
  return Status::Ok();
}

void ChunkIngest::LogRefusal(uint64_t index, const Status& status) const {
  LogWarning("dataset.chunk_refused", {{"principal", owner_id_},
                                       {"dataset", dataset_id_},
                                       {"chunk", std::to_string(index)},
                                       {"error", status.ToString()}});
}

Status ChunkIngest::Accept(uint64_t index, bool last, AlignedBuffer sealed) {
  bool needs_authentication = false;
  Status checked = CheckPlace(index, last, sealed.span(), needs_authentication);
  const bool on_verifier = static_cast<bool>(callbacks_.on_refused);
  if (checked.ok() && needs_authentication && !on_verifier) {
    checked = Authenticate(index, sealed.span());
  }
  if (!checked.ok()) {
    LogRefusal(index, checked);
    return checked;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (storer_done_) {
      return store_error_.ok() ? UnavailableError("the upload stream is closing") : store_error_;
    }
    if (!refused_.ok()) return refused_;
    queued_bytes_ += sealed.size();
    if (on_verifier) {
      pending_.push_back({index, last, std::move(sealed), needs_authentication});
    } else {
      queue_.push_back({index, last, std::move(sealed)});
    }
  }
  changed_.notify_all();
  return Status::Ok();
}

void ChunkIngest::VerifyLoop() {
  while (true) {
    Queued chunk;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return !pending_.empty() || input_done_ || storer_done_; });
      if (pending_.empty() || storer_done_) break;
      chunk = std::move(pending_.front());
      pending_.pop_front();
    }
    Status authenticated = chunk.needs_authentication
                               ? Authenticate(chunk.index, chunk.sealed.span())
                               : Status::Ok();
    if (!authenticated.ok()) {
      LogRefusal(chunk.index, authenticated);
      {
        std::lock_guard<std::mutex> lock(mu_);
        refused_ = authenticated;
        // Chunks behind the refused one are dropped: they were not acknowledged.
        queued_bytes_ -= chunk.sealed.size();
        for (const Queued& dropped : pending_) queued_bytes_ -= dropped.sealed.size();
        pending_.clear();
      }
      changed_.notify_all();
      callbacks_.on_refused(authenticated);
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(chunk));
    }
    changed_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    verified_done_ = true;
  }
  changed_.notify_all();
}

AlignedBuffer ChunkIngest::TakeBuffer() { return BufferPool::Get().Take(); }

void ChunkIngest::StoreLoop() {
  std::vector<Queued> group;
  std::vector<store::Store::ChunkToStore> views;
  std::vector<AlignedBuffer> stored;
  while (true) {
    group.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return !queue_.empty() || verified_done_; });
      if (queue_.empty()) break;
      // Everything that queued up while the previous group was stored is one group.
      while (!queue_.empty()) {
        queued_bytes_ -= queue_.front().sealed.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    changed_.notify_all();  // the transport may queue more while this group is stored
    views.clear();
    for (const Queued& chunk : group) {
      // Authenticated under the data key at this index (Authenticate), or a re-send compared
      // byte for byte with the stored chunk (CheckPlace): the store does not check it again.
      views.push_back({chunk.index, chunk.last, chunk.sealed.span(), true, chunk.sealed.padded()});
    }
    // The store checks indexes and sizes, writes the group to the dataset's segment, syncs once
    // and commits once; all of it or none.
    const auto store_start = std::chrono::steady_clock::now();
    auto progress = store_->AppendChunks(dataset_id_, views);
    store_time_ += std::chrono::steady_clock::now() - store_start;
    if (!progress.ok()) {
      std::string range =
          std::to_string(group.front().index) + ".." + std::to_string(group.back().index);
      LogWarning("dataset.store_failed", {{"principal", owner_id_},
                                          {"dataset", dataset_id_},
                                          {"chunks", range},
                                          {"error", progress.status().ToString()}});
      Status error = progress.status().WithContext("storing dataset " + dataset_id_ +
                                                   " chunks " + range);
      {
        std::lock_guard<std::mutex> lock(mu_);
        store_error_ = error;
      }
      if (callbacks_.on_store_failure) callbacks_.on_store_failure(error);
      break;
    }
    chunks_stored_ += group.size();
    ++groups_stored_;
    if (progress->complete) {
      // groups and store_ms (the time spent writing, syncing and committing them) tell whether
      // the disk bounded the upload: store_ms close to the upload's duration means it did.
      const auto store_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(store_time_).count();
      LogInfo("dataset.upload_complete", {{"principal", owner_id_},
                                          {"dataset", dataset_id_},
                                          {"chunks_this_stream", std::to_string(chunks_stored_)},
                                          {"groups", std::to_string(groups_stored_)},
                                          {"store_ms", std::to_string(store_ms)}});
    }
    // Kept for the transports to receive into: a fresh buffer per chunk would cost its
    // zero-fill and page faults (upload_bench showed both).
    stored.clear();
    for (Queued& chunk : group) stored.push_back(std::move(chunk.sealed));
    BufferPool::Get().Give(stored);
    if (callbacks_.on_ack && !callbacks_.on_ack(*progress)) break;  // what is stored stays
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    storer_done_ = true;
    // Chunks never stored are dropped: they were not acknowledged.
    queue_.clear();
    pending_.clear();
    queued_bytes_ = 0;
  }
  changed_.notify_all();
}

Status ChunkIngest::Finish() {
  if (!finished_) {
    finished_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      input_done_ = true;
      if (!verifier_.joinable()) verified_done_ = true;
    }
    changed_.notify_all();
    if (verifier_.joinable()) verifier_.join();
    if (storer_.joinable()) storer_.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return store_error_.ok() ? refused_ : store_error_;
}

}  // namespace chiron::runtime
