// The Datasets service: an owner's encrypted datasets (docs/formats/dataset.md), uploaded chunk
// by chunk and resumable, listed, and crypto-shredded.
//
// Upload protocol (docs/cli.md, "Upload and resume"):
//   1. BeginUpload(name, container header, data key). The runtime checks the key against the
//      header's key check and the header's MAC (a wrong key or altered header is refused before
//      anything is stored), reserves the container's size against the owner's quota and answers
//      the dataset id and next_chunk_index: 0 for a new dataset, the resume point for an
//      interrupted upload of the same name, header and key.
//   2. Upload stream: the client sends chunks in order starting at next_chunk_index, without
//      waiting for acks (HTTP/2 flow control and a bounded queue here limit what is in flight).
//      The runtime checks each against the header (index == acknowledged_through, exact sealed
//      size, last flag only on the final chunk) and opens it with the data key (so a tampered,
//      reordered or spliced chunk is refused now, not at training time), stores it durably and
//      only then acks. Storing is pipelined with receiving: the handler thread receives and
//      checks each chunk (so a refusal ends the stream with its error at once) and queues it (at
//      most ChunkIngest::kMaxQueuedBytes), while a second thread stores everything that queued up as one group
//      (Store::AppendChunks, told the chunks are authenticated: one fdatasync, one transaction) and
//      sends one ack whose acknowledged_through covers the whole group. Nothing is acknowledged
//      before it is authenticated and durable. A refused chunk ends the stream with its error;
//      chunks checked before it are still stored; everything acknowledged stays stored. If
//      storing fails (disk full, I/O error) the stream is cancelled (logged as
//      dataset.store_failed) and the client resumes later from acknowledged_through.
//   2'. Or the data plane: BeginUpload also answers a data-plane port and a single-use ticket
//      for this caller and dataset (data_plane_server.h); the client streams the same chunks
//      there, through the same checks, without TLS (docs/formats/data-plane.md says why that
//      is safe), and falls back to the Upload stream if it cannot connect.
//   3. After an interruption the client calls BeginUpload again and continues from
//      next_chunk_index.
//
// Every call needs the owner role. An owner reaches only its own datasets: names are looked up
// in the caller's namespace and a dataset id of another owner is answered exactly like an
// unknown one (NotFound).
//
// Thread safety: gRPC calls handlers concurrently; the Store serialises.
#pragma once

#include "chiron/v1/datasets.grpc.pb.h"
#include "runtime/service/authz.h"
#include "runtime/jobs/training_queue.h"
#include "runtime/service/data_plane_server.h"
#include "runtime/store/store.h"

namespace chiron::runtime {

class DatasetsService final : public v1::Datasets::Service {
 public:
  // `store` and `authorizer` must outlive the service.
  // `data_plane` may be null (no data plane: BeginUpload issues no ticket).
  // `training` may be null (no training jobs: nothing can read a dataset).
  DatasetsService(store::Store* store, const Authorizer* authorizer,
                  DataPlaneServer* data_plane = nullptr, jobs::TrainingQueue* training = nullptr)
      : store_(store), authorizer_(authorizer), data_plane_(data_plane), training_(training) {}

  grpc::Status BeginUpload(grpc::ServerContext* context, const v1::BeginUploadRequest* request,
                           v1::BeginUploadResponse* response) override;
  grpc::Status Upload(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<v1::UploadAck, v1::UploadChunk>* stream) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListDatasetsRequest* request,
                    v1::ListDatasetsResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteDatasetRequest* request,
                      v1::DeleteDatasetResponse* response) override;

 private:
  store::Store* store_;
  const Authorizer* authorizer_;
  DataPlaneServer* data_plane_;
  jobs::TrainingQueue* training_;
};

}  // namespace chiron::runtime
