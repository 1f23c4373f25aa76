#include "runtime/service/datasets_service.h"

#include "runtime/service/grpc_status.h"
#include "shared/base/log.h"
#include "shared/base/secret.h"

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
  std::string dataset_id;
  uint64_t chunks_stored = 0;
  v1::UploadChunk chunk;
  while (stream->Read(&chunk)) {
    if (dataset_id.empty()) {
      // The stream's first chunk names the dataset; it must be the caller's.
      auto record = OwnDataset(*store_, caller->id, chunk.dataset_id());
      if (!record.ok()) return ToGrpc(record.status().WithContext("Datasets.Upload"));
      dataset_id = record->id;
    } else if (chunk.dataset_id() != dataset_id) {
      return ToGrpc(InvalidArgumentError("Datasets.Upload: chunk " + std::to_string(chunk.index()) +
                                         " names dataset " + chunk.dataset_id() +
                                         " but this stream uploads " + dataset_id +
                                         "; open one stream per dataset"));
    }
    // The store checks the index against acknowledged_through, the size against the header and
    // the tag under the data key, and refuses the chunk (storing nothing) otherwise.
    auto progress =
        store_->AppendChunk(dataset_id, chunk.index(), chunk.last(), AsBytes(chunk.sealed()));
    if (!progress.ok()) {
      LogWarning("dataset.chunk_refused", {{"principal", caller->id},
                                           {"dataset", dataset_id},
                                           {"chunk", std::to_string(chunk.index())},
                                           {"error", progress.status().ToString()}});
      return ToGrpc(progress.status().WithContext("Datasets.Upload: dataset " + dataset_id +
                                                  " chunk " + std::to_string(chunk.index())));
    }
    ++chunks_stored;
    v1::UploadAck ack;
    ack.set_acknowledged_through(progress->acknowledged_through);
    ack.set_complete(progress->complete);
    if (!stream->Write(ack)) break;  // the client went away; what is stored stays stored
    if (progress->complete) {
      LogInfo("dataset.upload_complete", {{"principal", caller->id},
                                          {"dataset", dataset_id},
                                          {"chunks_this_stream", std::to_string(chunks_stored)}});
    }
  }
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
