#include "runtime/service/datasets_service.h"

#include <cstring>

#include "runtime/service/chunk_ingest.h"
#include "runtime/service/grpc_status.h"
#include "shared/base/log.h"
#include "shared/base/secret.h"
#include "shared/dataset/container.h"

namespace chiron::runtime {
namespace {

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

}  // namespace

grpc::Status DatasetsService::BeginUpload(grpc::ServerContext* context,
                                          const v1::BeginUploadRequest* request,
                                          v1::BeginUploadResponse* response) {
  // The key arrives inside the parsed request, a std::string gRPC frees without zeroing: it is
  // wiped when this call ends, on every path, after its one copy into memory that zeroes itself.
  // (gRPC owns the request and destroys it after the handler; writing its bytes is safe.)
  const std::string& request_key = request->data_key();
  ScopedWipe wipe_request_key(const_cast<char*>(request_key.data()), request_key.size());
  auto caller = authorizer_->RequireRole(*context, store::Role::kOwner, "Datasets.BeginUpload");
  if (!caller.ok()) return ToGrpc(caller.status());
  SecretBytes data_key(AsBytes(request_key));
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
  if (data_plane_ != nullptr && !record->complete) {
    auto ticket = data_plane_->IssueTicket(caller->id, record->id);
    if (!ticket.ok()) return ToGrpc(ticket.status().WithContext("Datasets.BeginUpload"));
    response->set_data_plane_port(static_cast<uint32_t>(data_plane_->port()));
    response->set_upload_ticket(reinterpret_cast<const char*>(ticket->data()), ticket->size());
  }
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

  // The receiver (this thread) reads and hands each chunk to the ingest, which refuses a bad
  // chunk at once (the stream ends with its error) and stores the good ones on its own thread.
  std::unique_ptr<ChunkIngest> ingest;
  Status refused;
  while (ingest == nullptr || ingest->WaitForRoom()) {
    v1::UploadChunk chunk;
    if (!stream->Read(&chunk)) break;
    if (ingest == nullptr) {
      // The stream's first chunk names the dataset; it must be the caller's.
      ChunkIngest::Callbacks callbacks;
      callbacks.on_ack = [stream](const store::UploadProgress& progress) {
        v1::UploadAck ack;
        ack.set_acknowledged_through(progress.acknowledged_through);
        ack.set_complete(progress.complete);
        return stream->Write(ack);
      };
      // Storing failed (disk full, I/O error): the receiver may be blocked in Read while a
      // client waits for an ack; cancelling ends both (the client sees the stream cancelled
      // and resumes later from acknowledged_through; the cause is in the log).
      callbacks.on_store_failure = [context](const Status&) { context->TryCancel(); };
      auto opened = ChunkIngest::Open(store_, caller->id, chunk.dataset_id(), callbacks);
      if (!opened.ok()) {
        refused = opened.status();
        break;
      }
      ingest = std::move(*opened);
    } else if (chunk.dataset_id() != ingest->dataset_id()) {
      refused = InvalidArgumentError("chunk " + std::to_string(chunk.index()) + " names dataset " +
                                     chunk.dataset_id() + " but this stream uploads " +
                                     ingest->dataset_id() + "; open one stream per dataset");
      break;
    }
    // Into an aligned buffer, which the store writes to disk without another copy.
    AlignedBuffer sealed = ingest->TakeBuffer();
    sealed.Resize(chunk.sealed().size());
    std::memcpy(sealed.data(), chunk.sealed().data(), chunk.sealed().size());
    refused = ingest->Accept(chunk.index(), chunk.last(), std::move(sealed));
    if (!refused.ok()) break;
  }
  // Chunks accepted before a refusal are still stored (they were checked and may be acked).
  Status stored = ingest ? ingest->Finish() : Status::Ok();
  if (!stored.ok()) return ToGrpc(stored.WithContext("Datasets.Upload"));
  if (!refused.ok()) return ToGrpc(refused.WithContext("Datasets.Upload"));
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
  if (training_ != nullptr) {
    // A job reading the dataset would train on data its owner deleted: refuse, or with force
    // cancel those jobs first (their workers are killed) and wait until none runs.
    auto dataset = store_->FindDataset(caller->id, request->name());
    if (!dataset.ok()) return ToGrpc(dataset.status().WithContext("Datasets.Delete"));
    auto readers = training_->UnfinishedJobsReading(caller->id, dataset->id);
    if (!readers.ok()) return ToGrpc(readers.status().WithContext("Datasets.Delete"));
    if (!readers->empty() && !request->force()) {
      std::string list;
      for (const std::string& job : *readers) list += (list.empty() ? "" : ", ") + job;
      return ToGrpc(FailedPreconditionError(
          "dataset '" + request->name() + "' is read by unfinished training job(s) " + list +
          ": wait for them to end, cancel them with `chiron job cancel JOB`, or delete with "
          "--force, which cancels them first"));
    }
    if (!readers->empty()) {
      Status cancelled = training_->CancelJobsReading(
          caller->id, dataset->id, std::chrono::steady_clock::now() + std::chrono::seconds(60));
      if (!cancelled.ok()) return ToGrpc(cancelled.WithContext("Datasets.Delete"));
      for (const std::string& job : *readers) response->add_cancelled_jobs(job);
    }
  }
  auto id = store_->DeleteDataset(caller->id, request->name());
  if (!id.ok()) return ToGrpc(id.status().WithContext("Datasets.Delete"));
  response->set_dataset_id(*id);
  LogInfo("dataset.deleted", {{"principal", caller->id}, {"dataset", *id}});
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
