#include "client/upload.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>

#include "chiron/v1/datasets.grpc.pb.h"
#include "client/data_plane_client.h"
#include "client/importers/encrypt.h"
#include "shared/base/net.h"
#include "shared/base/file_system.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/random.h"

namespace chiron::client {
namespace {

constexpr char kStateFormat[] = "chiron-upload-state-v1";

// What a resumed run needs to re-create the interrupted container exactly.
struct ResumeState {
  std::string name;
  dataset::DatasetId dataset_id{};
  SecretBytes key;
  Bytes header;
  std::string fingerprint;
  uint64_t target_chunk_size = 0;
};

Status SaveState(const std::string& path, const ResumeState& state) {
  nlohmann::json j;
  j["format"] = kStateFormat;
  j["name"] = state.name;
  j["dataset_id"] = dataset::DatasetIdHex(state.dataset_id);
  j["data_key"] = HexEncode(state.key.span());
  j["header"] = HexEncode(state.header);
  j["fingerprint"] = state.fingerprint;
  j["target_chunk_size"] = state.target_chunk_size;
  std::string text = j.dump(2) + "\n";
  Status status = FileSystem::Default()->WriteFileAtomic(path, AsBytes(text), 0600);
  SecureZero(text.data(), text.size());
  return status;
}

Result<std::optional<ResumeState>> LoadState(const std::string& path) {
  if (path.empty()) return std::optional<ResumeState>();
  CHIRON_ASSIGN_OR_RETURN(bool exists, FileSystem::Default()->Exists(path));
  if (!exists) return std::optional<ResumeState>();
  CHIRON_ASSIGN_OR_RETURN(Bytes text, FileSystem::Default()->ReadFile(path, 4 << 20));
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  SecureZero(text.data(), text.size());
  auto malformed = [&](const std::string& what) {
    return InvalidArgumentError("upload resume state " + path + ": " + what +
                                "; remove the file to start the upload afresh");
  };
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != kStateFormat) {
    return malformed("not a " + std::string(kStateFormat) + " file");
  }
  ResumeState state;
  state.name = j.value("name", "");
  state.fingerprint = j.value("fingerprint", "");
  state.target_chunk_size = j.value("target_chunk_size", uint64_t{0});
  auto id = HexDecode(j.value("dataset_id", ""));
  auto key = HexDecode(j.value("data_key", ""));
  auto header = HexDecode(j.value("header", ""));
  if (!id.ok() || id->size() != dataset::kDatasetIdSize) return malformed("bad dataset_id");
  if (!key.ok() || key->size() != dataset::kDatasetKeySize) return malformed("bad data_key");
  if (!header.ok() || header->empty()) return malformed("bad header");
  std::copy(id->begin(), id->end(), state.dataset_id.begin());
  state.key = SecretBytes(*key);
  SecureZero(key->data(), key->size());
  state.header = std::move(*header);
  return std::optional<ResumeState>(std::move(state));
}

void RemoveState(const std::string& path) {
  if (!path.empty()) FileSystem::Default()->RemoveFile(path).IgnoreError();
}

// Serialises progress callbacks from the writing thread and the ack-reading thread.
class ProgressReporter {
 public:
  explicit ProgressReporter(std::function<void(const UploadProgress&)> callback)
      : callback_(std::move(callback)) {}

  template <typename F>
  void Update(F&& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    change(progress_);
    if (callback_) callback_(progress_);
  }
  UploadProgress Snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    return progress_;
  }

 private:
  std::mutex mutex_;
  UploadProgress progress_;
  std::function<void(const UploadProgress&)> callback_;
};

// One upload run: the writer's sink drives BeginUpload and the chunk stream.
class UploadRun {
 public:
  UploadRun(Connection& connection, const UploadRequest& request, ResumeState state, bool resuming)
      : connection_(connection),
        request_(request),
        state_(std::move(state)),
        resuming_(resuming),
        stub_(v1::Datasets::NewStub(connection.channel())),
        progress_(request.on_progress) {}

  ~UploadRun() { CloseStream().IgnoreError(); }

  // Where the writer seals the next chunk: straight into the data-plane sender's buffer when
  // there is one (no copy on the way to the socket), else in place.
  MutableByteSpan SealInto(uint64_t index, size_t size) {
    if (!data_plane_ || index < next_chunk_) return {};
    return data_plane_->AcquireBuffer(size);
  }

  Status Sink(const dataset::ContainerPiece& piece) {
    if (piece.kind == dataset::ContainerPiece::Kind::kHeader) return OnHeader(piece.bytes);
    return OnChunk(piece);
  }

  // Ends the stream after the last chunk and reports how it went.
  Status Finish() {
    const bool via_data_plane = data_plane_ != nullptr;
    Status closed = CloseStream(/*finished=*/true);
    if (!closed.ok()) return Explain(closed);
    UploadProgress final = progress_.Snapshot();
    if (final.chunks_acknowledged != header_.chunk_count() && via_data_plane) {
      // A plain TCP connection also ends cleanly when the runtime dies (the kernel closes it):
      // an interruption like any other, resumable.
      return Explain(UnavailableError("the runtime closed the data-plane connection before it "
                                      "acknowledged every chunk"));
    }
    if (final.chunks_acknowledged != header_.chunk_count()) {
      return InternalError("the server acknowledged " + std::to_string(final.chunks_acknowledged) +
                           " of " + std::to_string(header_.chunk_count()) +
                           " chunks and closed the stream without an error");
    }
    return Status::Ok();
  }

  const dataset::ContainerHeader& header() const { return header_; }
  const std::string& dataset_id() const { return dataset_id_; }
  uint64_t next_chunk() const { return next_chunk_; }
  bool already_complete() const { return already_complete_; }
  uint64_t acknowledged() { return progress_.Snapshot().chunks_acknowledged; }

 private:
  Status OnHeader(ByteSpan header_bytes) {
    CHIRON_ASSIGN_OR_RETURN(header_, dataset::ParseContainerHeader(header_bytes));
    if (resuming_) {
      // Identical input re-creates an identical header (schema, counts, chunking, nonce prefix).
      if (!ConstantTimeEqual(header_bytes, state_.header)) {
        return FailedPreconditionError(
            "the input of the interrupted upload '" + request_.name +
            "' no longer produces the same dataset (schema, sample count or chunking changed); "
            "run `chiron dataset delete " +
            request_.name + "` and upload it again");
      }
    } else {
      state_.header.assign(header_bytes.begin(), header_bytes.end());
      // Saved before the server hears of the dataset, so any interruption from here on resumes.
      if (!request_.state_path.empty()) {
        CHIRON_RETURN_IF_ERROR(SaveState(request_.state_path, state_));
        wrote_state_ = true;
      }
    }
    progress_.Update([&](UploadProgress& p) {
      p.chunks_total = header_.chunk_count();
      p.bytes_total = header_.container_size();
    });

    v1::BeginUploadRequest begin;
    begin.set_name(request_.name);
    begin.set_container_header(ToString(header_bytes));
    begin.mutable_data_key()->assign(reinterpret_cast<const char*>(state_.key.data()),
                                     state_.key.size());
    v1::BeginUploadResponse response;
    auto context = connection_.NewContext();
    grpc::Status status = stub_->BeginUpload(context.get(), begin, &response);
    // The request held the key: wipe it.
    std::string* key_field = begin.mutable_data_key();
    SecureZero(key_field->data(), key_field->size());
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS && resuming_ &&
          CompletedEarlier()) {
        already_complete_ = true;
        return Status(StatusCode::kCancelled, "already complete");
      }
      return FromGrpc(status, "BeginUpload");
    }
    if (response.dataset_id() != dataset::DatasetIdHex(header_.dataset_id)) {
      return DataLossError("the server answered dataset id " + response.dataset_id() +
                           " for a container with id " + dataset::DatasetIdHex(header_.dataset_id) +
                           "; it is not behaving as a Chiron runtime must");
    }
    dataset_id_ = response.dataset_id();
    next_chunk_ = response.next_chunk_index();
    if (next_chunk_ >= header_.chunk_count()) {
      return DataLossError("the server asks to resume at chunk " + std::to_string(next_chunk_) +
                           " of a dataset with " + std::to_string(header_.chunk_count()) +
                           " chunks");
    }
    std::string* ticket = response.mutable_upload_ticket();
    if (request_.use_data_plane && response.data_plane_port() != 0) {
      OpenDataPlane(static_cast<int>(response.data_plane_port()), AsBytes(*ticket));
    }
    SecureZero(ticket->data(), ticket->size());
    progress_.Update([&](UploadProgress& p) {
      p.chunks_acknowledged = next_chunk_;
      p.resumed_from = next_chunk_;
      p.bytes_acknowledged = header_.chunk_offset(next_chunk_);
    });
    if (data_plane_) {
      data_plane_->StartReading([this](uint64_t through, bool) { OnAck(through); });
      return Status::Ok();
    }
    // A stream has no deadline: it lasts as long as the upload.
    stream_context_ = std::make_unique<grpc::ClientContext>();
    stream_ = stub_->Upload(stream_context_.get());
    reader_ = std::thread([this] { ReadAcks(); });
    return Status::Ok();
  }

  // Connects to the data plane on the API server's host. If that fails (a firewall, an old
  // runtime, a refused ticket), the upload goes through the Upload stream instead and the
  // outcome says why.
  void OpenDataPlane(int port, ByteSpan ticket) {
    auto host = SplitHostPort(connection_.server_address(), "server address");
    if (!host.ok()) {
      data_plane_fallback_ = host.status().message();
      return;
    }
    auto opened = DataPlaneUpload::Open(host->host, port, ticket, std::chrono::seconds(10));
    if (!opened.ok()) {
      data_plane_fallback_ = "data plane at port " + std::to_string(port) + ": " +
                             opened.status().message();
      return;
    }
    data_plane_ = std::move(*opened);
    used_data_plane_ = true;
    // Only a concurrent upload of the same dataset could have moved the resume point on.
    uint64_t resume = data_plane_->resume_point();
    if (resume > next_chunk_ && resume < header_.chunk_count()) next_chunk_ = resume;
  }

  // An earlier run may have completed the upload and died before removing its state.
  bool CompletedEarlier() {
    v1::ListDatasetsRequest request;
    v1::ListDatasetsResponse response;
    auto context = connection_.NewContext();
    if (!stub_->List(context.get(), request, &response).ok()) return false;
    for (const v1::DatasetInfo& info : response.datasets()) {
      if (info.name() == request_.name && info.complete() &&
          info.dataset_id() == dataset::DatasetIdHex(state_.dataset_id)) {
        dataset_id_ = info.dataset_id();
        return true;
      }
    }
    return false;
  }

  Status OnChunk(const dataset::ContainerPiece& piece) {
    if (piece.chunk_index < next_chunk_) return Status::Ok();  // durable from an earlier run
    if (data_plane_) {
      // The chunk goes out as the writer sealed it, straight from its buffer. Counted as sent
      // first, so an ack that races ahead of the count is not dropped.
      progress_.Update([&](UploadProgress& p) { ++p.chunks_sent; });
      if (!data_plane_->Send(piece.chunk_index, piece.last, piece.bytes).ok()) {
        return Interrupted();
      }
      return Status::Ok();
    }
    v1::UploadChunk chunk;
    chunk.set_dataset_id(dataset_id_);
    chunk.set_index(piece.chunk_index);
    chunk.set_last(piece.last);
    // One memcpy into the message (ToString would copy byte by byte).
    chunk.mutable_sealed()->assign(reinterpret_cast<const char*>(piece.bytes.data()),
                                   piece.bytes.size());
    if (!stream_->Write(chunk)) return Interrupted();
    progress_.Update([&](UploadProgress& p) { ++p.chunks_sent; });
    return Status::Ok();
  }

  void ReadAcks() {
    v1::UploadAck ack;
    while (stream_->Read(&ack)) OnAck(ack.acknowledged_through());
  }

  void OnAck(uint64_t through) {
    progress_.Update([&](UploadProgress& p) {
      // A server can only move forward, and only over chunks it was sent.
      if (through > p.chunks_acknowledged && through <= p.resumed_from + p.chunks_sent) {
        p.chunks_acknowledged = through;
        p.bytes_acknowledged = through == header_.chunk_count() ? header_.container_size()
                                                                : header_.chunk_offset(through);
      }
    });
  }

  Status Interrupted() { return Explain(CloseStream()); }

  // The stream's end status, told as the user needs it: a refusal as the server said it, a
  // broken connection with how far the upload got and how to resume.
  Status Explain(const Status& closed) {
    if (!closed.ok() && closed.code() != StatusCode::kUnavailable &&
        closed.code() != StatusCode::kCancelled && closed.code() != StatusCode::kDeadlineExceeded) {
      return closed;  // the server refused a chunk: its message says why
    }
    return UnavailableError("upload of '" + request_.name + "' was interrupted after " +
                            std::to_string(acknowledged()) + " of " +
                            std::to_string(header_.chunk_count()) + " chunks were stored (" +
                            closed.message() + ")");
  }

  Status CloseStream(bool finished = false) {
    if (data_plane_) {
      closed_status_ = data_plane_->Close(/*end=*/finished);
      data_plane_.reset();
      return closed_status_;
    }
    if (!stream_) return closed_status_;
    stream_->WritesDone();
    if (reader_.joinable()) reader_.join();
    closed_status_ = FromGrpc(stream_->Finish(), "Upload");
    stream_.reset();
    return closed_status_;
  }

 public:
  bool wrote_state() const { return wrote_state_; }
  // Why the data plane was not used (empty if it was, or if the runtime offered none).
  const std::string& data_plane_fallback() const { return data_plane_fallback_; }
  bool used_data_plane() const { return used_data_plane_; }

 private:
  Connection& connection_;
  const UploadRequest& request_;
  ResumeState state_;
  bool resuming_;
  std::unique_ptr<v1::Datasets::Stub> stub_;
  ProgressReporter progress_;
  dataset::ContainerHeader header_;
  std::string dataset_id_;
  uint64_t next_chunk_ = 0;
  bool already_complete_ = false;
  bool wrote_state_ = false;
  std::unique_ptr<grpc::ClientContext> stream_context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::UploadChunk, v1::UploadAck>> stream_;
  std::thread reader_;
  std::unique_ptr<DataPlaneUpload> data_plane_;  // set: chunks go there instead of stream_
  bool used_data_plane_ = false;
  std::string data_plane_fallback_;
  Status closed_status_;
};

bool Transient(const Status& status) {
  return status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kDeadlineExceeded || status.code() == StatusCode::kCancelled;
}

// A failed upload's error, with what it left on the server and the two ways on: resume (the
// same command) or delete. `stored`: the chunks the server acknowledged, when it accepted the
// dataset (BeginUpload answered); unset if it never answered or refused.
Status SayPartial(const Status& failed, const std::string& name, std::optional<uint64_t> stored,
                  uint64_t chunk_count, bool wrote_state) {
  const std::string remove = "`chiron dataset delete " + name + "`";
  if (stored.has_value()) {
    const std::string partial = "; dataset '" + name + "' is partial on the server (" +
                                std::to_string(*stored) + " of " + std::to_string(chunk_count) +
                                " chunks stored): ";
    if (Transient(failed)) {
      return Status(failed.code(), failed.message() + partial +
                                       "run the same command again to resume from chunk " +
                                       std::to_string(*stored) + ", or delete it with " + remove);
    }
    return Status(failed.code(), failed.message() + partial + "delete it with " + remove +
                                     " and upload again, or, once the cause is gone and the "
                                     "input unchanged, run the same command again to resume");
  }
  if (Transient(failed) && wrote_state) {
    // The server may have created the dataset before the connection broke.
    return Status(failed.code(),
                  failed.message() + "; run the same command again to resume (`chiron dataset "
                                     "list` shows whether the server kept a partial dataset '" +
                      name + "'; " + remove + " deletes it)");
  }
  return failed;
}

}  // namespace

Result<UploadOutcome> UploadDataset(Connection& connection, const UploadRequest& request) {
  if (!request.open_source) return InvalidArgumentError("UploadDataset needs an input");
  CHIRON_ASSIGN_OR_RETURN(std::optional<ResumeState> saved, LoadState(request.state_path));
  bool resuming = saved.has_value();
  ResumeState state;
  if (resuming) {
    state = std::move(*saved);
    if (state.name != request.name) {
      return FailedPreconditionError("resume state " + request.state_path + " belongs to '" +
                                     state.name + "', not '" + request.name + "'; remove the file");
    }
    if (state.fingerprint != request.source_fingerprint) {
      return FailedPreconditionError(
          "the input of the interrupted upload '" + request.name +
          "' changed since it began (files differ in size or modification time), so it cannot "
          "be resumed; run `chiron dataset delete " +
          request.name + "` and upload again");
    }
  } else {
    CHIRON_ASSIGN_OR_RETURN(state.dataset_id, dataset::NewDatasetId());
    CHIRON_ASSIGN_OR_RETURN(state.key, crypto::RandomSecret(dataset::kDatasetKeySize));
    state.name = request.name;
    state.fingerprint = request.source_fingerprint;
    state.target_chunk_size = request.target_chunk_size;
  }

  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<importers::SampleSource> source, request.open_source());
  dataset::DatasetWriterOptions options;
  options.target_chunk_size = resuming ? state.target_chunk_size : request.target_chunk_size;
  SecretBytes key = state.key.Clone();
  dataset::DatasetId dataset_id = state.dataset_id;
  if (resuming) {
    // The saved key must open the saved header: a resume state altered on disk (or mixed up with
    // another upload's) is refused here, before anything is sealed under it.
    auto reader = dataset::DatasetReader::Open(state.key.span(), state.header);
    if (!reader.ok()) {
      return Status(reader.status().code(), "resume state " + request.state_path +
                                                " is inconsistent: " + reader.status().message() +
                                                "; remove it and run `chiron dataset delete " +
                                                request.name + "`, then upload again");
    }
    options.reseal_nonce_prefix = reader->header().nonce_prefix;
  }

  UploadRun run(connection, request, std::move(state), resuming);
  options.seal_into = [&run](uint64_t index, size_t size) { return run.SealInto(index, size); };
  auto stats = importers::EncryptSource(
      *source, key.span(), dataset_id,
      [&run](const dataset::ContainerPiece& piece) { return run.Sink(piece); }, options);
  if (run.already_complete()) {
    RemoveState(request.state_path);
    UploadOutcome outcome;
    outcome.dataset_id = run.dataset_id();
    outcome.already_complete = true;
    outcome.resumed = true;
    outcome.chunks = run.header().chunk_count();
    outcome.container_size = run.header().container_size();
    return outcome;
  }
  Status finished = stats.ok() ? run.Finish() : stats.status();
  if (!finished.ok()) {
    // Keep the state for a transient failure (resume later) and whenever the server already
    // stored chunks; a refusal before anything was stored leaves nothing to resume.
    if (!Transient(finished) && run.wrote_state() && run.dataset_id().empty()) {
      RemoveState(request.state_path);
    }
    std::optional<uint64_t> stored;
    if (!run.dataset_id().empty()) stored = run.acknowledged();
    return SayPartial(finished, request.name, stored, run.header().chunk_count(),
                      run.wrote_state());
  }
  RemoveState(request.state_path);
  UploadOutcome outcome;
  outcome.dataset_id = run.dataset_id();
  outcome.chunks = run.header().chunk_count();
  outcome.container_size = run.header().container_size();
  outcome.samples = stats->samples;
  outcome.resumed = resuming;
  outcome.resumed_from = run.next_chunk();
  outcome.via_data_plane = run.used_data_plane();
  outcome.data_plane_fallback = run.data_plane_fallback();
  return outcome;
}

Result<std::string> FingerprintInputs(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::string listing;
  auto describe = [&listing](const fs::path& path, const std::string& label) -> Status {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return NotFoundError("input " + path.string() + " does not exist");
    }
    listing += label + "\t" + (S_ISDIR(st.st_mode) ? "d" : "f") + "\t" +
               std::to_string(S_ISDIR(st.st_mode) ? 0 : st.st_size) + "\t" +
               std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "\n";
    return Status::Ok();
  };
  for (const std::string& path : paths) {
    CHIRON_RETURN_IF_ERROR(describe(path, path));
    std::error_code ec;
    if (!fs::is_directory(path, ec)) continue;
    std::vector<fs::path> entries;
    for (auto it = fs::recursive_directory_iterator(path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      entries.push_back(it->path());
    }
    if (ec) return InvalidArgumentError("cannot list " + path + ": " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (const fs::path& entry : entries) {
      CHIRON_RETURN_IF_ERROR(describe(entry, fs::relative(entry, path).string()));
    }
  }
  return HexEncode(crypto::Sha256(AsBytes(listing)));
}

}  // namespace chiron::client
