// Uploading a dataset: import, encrypt and stream to chirond in one pass, resumable.
//
// UploadDataset pulls samples from an importer, seals them chunk by chunk (DatasetWriter) and
// sends each chunk as soon as it is sealed, so no more than one chunk of plaintext is ever in
// memory. The data key is generated here, sent only inside the attested channel (BeginUpload),
// and kept on disk only in the resume state file while the upload is incomplete.
//
// Resume. Before BeginUpload the client writes a resume state file (0600): dataset id, data key,
// container header and a fingerprint of the input. If the upload is interrupted (network, server
// crash, Ctrl-C), running it again finds the state, checks that the input is unchanged (same
// fingerprint, and the re-created header is byte-identical), re-creates the very same container
// (same key, id and nonce prefix; with identical input every chunk is byte-identical, so no
// nonce is ever used for different plaintext) and sends only the chunks from the server's
// next_chunk_index on. A changed input is refused: delete the partial dataset and upload again.
//
// Thread safety: one call at a time per state file; `on_progress` is called from the calling
// thread and from an internal ack-reading thread, never concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/importers/sample_source.h"
#include "shared/base/status.h"
#include "shared/dataset/container.h"

namespace chiron::client {

struct UploadProgress {
  uint64_t chunks_total = 0;
  uint64_t chunks_acknowledged = 0;  // durable on the server
  uint64_t chunks_sent = 0;          // sent in this run (excludes those skipped on resume)
  uint64_t resumed_from = 0;         // first chunk sent in this run
  uint64_t bytes_total = 0;          // container size
  uint64_t bytes_acknowledged = 0;   // header + acknowledged chunks
};

struct UploadRequest {
  std::string name;
  // Opens the input afresh (called once per run).
  std::function<Result<std::unique_ptr<importers::SampleSource>>()> open_source;
  // Identifies the input (FingerprintInputs); a resume with another fingerprint is refused.
  std::string source_fingerprint;
  // Where the resume state lives (Profile::UploadStatePath); empty: no resume support.
  std::string state_path;
  uint64_t target_chunk_size = dataset::kDefaultChunkTargetSize;
  std::function<void(const UploadProgress&)> on_progress;
  // Stream the chunks over the runtime's data plane when it offers one (docs/formats/
  // data-plane.md): no TLS on the bulk bytes, which are sealed under the data key anyway. False:
  // always through the Datasets.Upload stream on the attested TLS channel.
  bool use_data_plane = true;
};

struct UploadOutcome {
  std::string dataset_id;
  uint64_t chunks = 0;
  uint64_t container_size = 0;
  uint64_t samples = 0;
  bool resumed = false;
  uint64_t resumed_from = 0;      // first chunk sent in this run
  bool already_complete = false;  // a previous run had finished; nothing was sent
  bool via_data_plane = false;    // the chunks went over the data plane
  // Set when the runtime offered a data plane that could not be used (why, e.g. "connection
  // refused"); the chunks then went through the Upload stream.
  std::string data_plane_fallback;
};

// Errors: the importer's (file and record), the server's (PermissionDenied for a wrong role,
// AlreadyExists for a name taken by another dataset, ResourceExhausted for the quota, DataLoss
// or InvalidArgument if it refused a chunk), FailedPrecondition if a resume finds the input
// changed, Unavailable "interrupted after K of N chunks were stored" if the connection broke.
// Whenever the server had accepted the dataset, the message goes on to say that the dataset is
// partial on the server (K of N chunks) and how to go on: "run the same command again to resume
// from chunk K, or delete it with `chiron dataset delete NAME`" (for a refusal, delete first).
Result<UploadOutcome> UploadDataset(Connection& connection, const UploadRequest& request);

// A SHA-256 (hex) over each path's kind, size and modification time; directories recursively,
// in name order. NotFound for a missing path. Cheap (no file contents are read).
Result<std::string> FingerprintInputs(const std::vector<std::string>& paths);

}  // namespace chiron::client
