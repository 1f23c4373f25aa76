#include "runtime/service/datasets_service.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/service/grpc_status.h"
#include "shared/base/log.h"
#include "shared/base/secret.h"
#include "shared/dataset/container.h"

namespace chiron::runtime {
namespace {

// Received chunks waiting to be stored, per stream: bounds memory and, through HTTP/2 flow
// control, how far the client runs ahead of what is durable.
constexpr uint64_t kMaxQueuedBytes = uint64_t{32} << 20;

void ToProto(const store::DatasetRecord& record, v1::DatasetInfo* out) {
  out->set_dataset_id(record.id);
  out->set_name(record.name);
  const dataset::DatasetSchema& schema = record.header.schema;
  out->set_sample_count(schema.sample_count);
  for (uint32_t dimension : schema.shape) out->add_sample_shape(dimension);
  out->set_class_count(static_cast<uint32_t>(schema.class_count()));
  out->set_stored_size(record.stored_size);
  out->set_complete(record.complete);
  out->set_created_unix(record.created_unix);
  out->set_chunk_count(record.chunk_count);
  out->set_acknowledged_chunks(record.acknowledged_through);
}

// The caller's dataset with this id. Another owner's dataset is reported exactly like a missing
// one, so ids cannot be probed across owners.
Result<store::DatasetRecord> OwnDataset(store::Store& store, const std::string& owner_id,
                                        const std::string& dataset_id) {
  auto record = store.GetDataset(dataset_id);
  if (!record.ok() && record.status().code() != StatusCode::kNotFound) return record.status();
  if (!record.ok() || record->owner_id != owner_id) {
    return NotFoundError("you have no dataset with id " + dataset_id +
                         ": call BeginUpload first (`chiron dataset upload` does)");
  }
  return record;
}

}  // namespace

grpc::Status DatasetsService::BeginUpload(grpc::ServerContext* context,
                                          const v1::BeginUploadRequest* request,
                                          v1::BeginUploadResponse* response) {
  auto caller = authorizer_->RequireRole(*context, store::Role::kOwner, "Datasets.BeginUpload");
  if (!caller.ok()) return ToGrpc(caller.status());
  // Copy the key into memory that is zeroed when this call ends.
  SecretBytes data_key(AsBytes(request->data_key()));
  if (data_key.size() != dataset::kDatasetKeySize) {
    return ToGrpc(InvalidArgumentError("Datasets.BeginUpload: the data key must be " +
                                       std::to_string(dataset::kDatasetKeySize) + " bytes, got " +
                                       std::to_string(data_key.size())));
  }
  auto record = store_->BeginDataset(caller->id, request->name(),
                                     AsBytes(request->container_header()), data_key.span());
  if (!record.ok()) return ToGrpc(record.status().WithContext("Datasets.BeginUpload"));
  response->set_dataset_id(record->id);
  response->set_next_chunk_index(record->acknowledged_through);
  LogInfo("dataset.upload_begin", {{"principal", caller->id},
                                   {"dataset", record->id},
                                   {"chunks", std::to_string(record->chunk_count)},
                                   {"next_chunk", std::to_string(record->acknowledged_through)}});
  return grpc::Status::OK;
}

grpc::Status DatasetsService::Upload(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::UploadAck, v1::UploadChunk>* stream) {
  auto caller = authorizer_->RequireRole(*context, store::Role::kOwner, "Datasets.Upload");
  if (!caller.ok()) return ToGrpc(caller.status());

  // Chunks received and checked for the stream's dataset, not yet stored. Guarded by `mu`.
  std::mutex mu;
  std::condition_variable changed;
  std::deque<v1::UploadChunk> queue;
  uint64_t queued_bytes = 0;
  bool input_done = false;   // the receiver stopped (end of stream or a refusal)
  bool writer_done = false;  // the storer stopped (a store error or the client went away)
  Status store_error;
  std::string dataset_id;  // set by the receiver before the first chunk is queued
  uint64_t chunks_stored = 0;

  // The storer: everything that queued up while the previous group was stored is one group.
  std::thread storer([&] {
    std::vector<v1::UploadChunk> group;
    std::vector<store::Store::ChunkToStore> views;
    while (true) {
      group.clear();
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return !queue.empty() || input_done; });
        if (queue.empty()) break;
        while (!queue.empty()) {
          queued_bytes -= queue.front().sealed().size();
          group.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      changed.notify_all();  // the receiver may queue more while this group is stored
      views.clear();
      for (const v1::UploadChunk& chunk : group) {
        // Authenticated by the receiver under the data key at this index (or a re-send it
        // compared with the stored chunk): the store does not open it again.
        views.push_back({chunk.index(), chunk.last(), AsBytes(chunk.sealed()), true});
      }
      // The store checks indexes and sizes, writes the group to the dataset's segment, syncs
      // once and commits once; all of it or none.
      auto progress = store_->AppendChunks(dataset_id, views);
      if (!progress.ok()) {
        LogWarning("dataset.store_failed",
                   {{"principal", caller->id},
                    {"dataset", dataset_id},
                    {"chunks", std::to_string(group.front().index()) + ".." +
                                   std::to_string(group.back().index())},
                    {"error", progress.status().ToString()}});
        {
          std::lock_guard<std::mutex> lock(mu);
          store_error = progress.status().WithContext(
              "Datasets.Upload: dataset " + dataset_id + " chunks " +
              std::to_string(group.front().index()) + ".." + std::to_string(group.back().index()));
        }
        // The chunks were checked by the receiver, so this is the disk or the catalog failing
        // (e.g. disk full). The receiver may be blocked in Read while a client waits for an ack:
        // cancelling ends both (the client sees the stream cancelled and resumes later from
        // acknowledged_through; the cause is in the log above).
        context->TryCancel();
        break;
      }
      chunks_stored += group.size();
      v1::UploadAck ack;
      ack.set_acknowledged_through(progress->acknowledged_through);
      ack.set_complete(progress->complete);
      if (progress->complete) {
        LogInfo("dataset.upload_complete", {{"principal", caller->id},
                                            {"dataset", dataset_id},
                                            {"chunks_this_stream", std::to_string(chunks_stored)}});
      }
      if (!stream->Write(ack)) break;  // the client went away; what is stored stays stored
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      writer_done = true;
      // Chunks never stored are dropped: they were not acknowledged.
      queue.clear();
      queued_bytes = 0;
    }
    changed.notify_all();
  });

  // The receiver (this thread): reads, checks, queues. Every refusal of a chunk happens here,
  // so the stream ends with its error at once (the storer, blocked on nothing the client does,
  // would otherwise leave a client that waits for an ack waiting forever).
  Status refused;
  std::optional<dataset::DatasetReader> reader;  // authenticates chunks under the data key
  uint64_t stored_before = 0;                    // acknowledged_through when the stream began
  uint64_t next_index = 0;                       // index the next new chunk must have
  uint64_t chunk_count = 0;
  auto check = [&](const v1::UploadChunk& chunk) -> Status {
    const uint64_t index = chunk.index();
    const std::string what = "dataset " + dataset_id + " chunk " + std::to_string(index);
    if (index >= chunk_count) {
      return OutOfRangeError("dataset " + dataset_id + " has " + std::to_string(chunk_count) +
                             " chunks; there is no chunk " + std::to_string(index));
    }
    if (chunk.last() != (index + 1 == chunk_count)) {
      return InvalidArgumentError(what + (chunk.last() ? " was marked last but the header declares " +
                                                             std::to_string(chunk_count) + " chunks"
                                                       : " is the last chunk but was not marked last"));
    }
    if (index < stored_before) {
      // A re-send of a stored chunk: the same bytes are a no-op, other bytes are refused.
      auto stored = store_->ReadChunk(dataset_id, index);
      if (!stored.ok()) return stored.status();
      if (!ConstantTimeEqual(*stored, AsBytes(chunk.sealed()))) {
        return AlreadyExistsError(what +
                                  " is already stored with different contents; a resumed upload "
                                  "must send the same container");
      }
      return Status::Ok();
    }
    if (index != next_index) {
      return FailedPreconditionError("dataset " + dataset_id + " expects chunk " +
                                     std::to_string(next_index) + " next, got chunk " +
                                     std::to_string(index) + "; resume from chunk " +
                                     std::to_string(next_index));
    }
    Result<SecretBytes> opened = reader->OpenChunk(index, AsBytes(chunk.sealed()));
    if (!opened.ok()) {
      return Status(opened.status().code(),
                    what + ": " + opened.status().message() +
                        "; nothing was stored: re-send the chunk from the original container");
    }
    ++next_index;
    return Status::Ok();
  };
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      changed.wait(lock, [&] { return writer_done || queued_bytes < kMaxQueuedBytes; });
      if (writer_done) break;
    }
    v1::UploadChunk chunk;
    if (!stream->Read(&chunk)) break;
    if (dataset_id.empty()) {
      // The stream's first chunk names the dataset; it must be the caller's.
      auto record = OwnDataset(*store_, caller->id, chunk.dataset_id());
      if (!record.ok()) {
        refused = record.status().WithContext("Datasets.Upload");
        break;
      }
      auto key = store_->GetDataKey(record->id);
      if (!key.ok()) {
        refused = key.status().WithContext("Datasets.Upload");
        break;
      }
      auto opened = dataset::DatasetReader::Open(key->span(), record->header.encoded);
      if (!opened.ok()) {
        refused = opened.status().WithContext("Datasets.Upload");
        break;
      }
      reader.emplace(std::move(*opened));
      stored_before = next_index = record->acknowledged_through;
      chunk_count = record->chunk_count;
      std::lock_guard<std::mutex> lock(mu);
      dataset_id = record->id;
    } else if (chunk.dataset_id() != dataset_id) {
      refused = InvalidArgumentError("Datasets.Upload: chunk " + std::to_string(chunk.index()) +
                                     " names dataset " + chunk.dataset_id() +
                                     " but this stream uploads " + dataset_id +
                                     "; open one stream per dataset");
      break;
    }
    Status checked = check(chunk);
    if (!checked.ok()) {
      LogWarning("dataset.chunk_refused", {{"principal", caller->id},
                                           {"dataset", dataset_id},
                                           {"chunk", std::to_string(chunk.index())},
                                           {"error", checked.ToString()}});
      refused = checked.WithContext("Datasets.Upload");
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (writer_done) break;
      queued_bytes += chunk.sealed().size();
      queue.push_back(std::move(chunk));
    }
    changed.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    input_done = true;
    // A refusal here ends the stream before anything queued after the refused chunk is stored;
    // what is queued before it still is (it was checked and may be acknowledged).
  }
  changed.notify_all();
  storer.join();
  if (!store_error.ok()) return ToGrpc(store_error);
  if (!refused.ok()) return ToGrpc(refused);
  return grpc::Status::OK;
}

grpc::Status DatasetsService::List(grpc::ServerContext* context,
                                   const v1::ListDatasetsRequest* /*request*/,
                                   v1::ListDatasetsResponse* response) {
  auto caller = authorizer_->RequireRole(*context, store::Role::kOwner, "Datasets.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto records = store_->ListDatasets(caller->id);
  if (!records.ok()) return ToGrpc(records.status().WithContext("Datasets.List"));
  for (const store::DatasetRecord& record : *records) ToProto(record, response->add_datasets());
  return grpc::Status::OK;
}

grpc::Status DatasetsService::Delete(grpc::ServerContext* context,
                                     const v1::DeleteDatasetRequest* request,
                                     v1::DeleteDatasetResponse* response) {
  auto caller = authorizer_->RequireRole(*context, store::Role::kOwner, "Datasets.Delete");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto id = store_->DeleteDataset(caller->id, request->name());
  if (!id.ok()) return ToGrpc(id.status().WithContext("Datasets.Delete"));
  response->set_dataset_id(*id);
  LogInfo("dataset.deleted", {{"principal", caller->id}, {"dataset", *id}});
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
