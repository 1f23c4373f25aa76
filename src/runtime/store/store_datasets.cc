// Store: datasets and their chunks (upload, resume, read, crypto-shredding). See store.h.
#include <utility>

#include "runtime/store/store_impl.h"
#include "shared/base/aligned_buffer.h"
#include "shared/crypto/hash.h"

namespace chiron::store {
namespace {

constexpr char kDatasetColumns[] =
    "id, owner_id, sealed_name, sealed_header, sealed_data_key, chunk_count, "
    "acknowledged_through, stored_size, reserved_size, created";

std::string Describe(const std::string& dataset_id) { return "dataset " + dataset_id; }

}  // namespace

Result<Bytes> StoreImpl::NameTag(const std::string& owner_id, const std::string& name) {
  // A blind index: lets the catalog enforce "name unique per owner" and look names up without
  // storing them in plaintext.
  Bytes input = ToBytes("dataset-name");
  input.push_back(0);
  Append(input, AsBytes(owner_id));
  input.push_back(0);
  Append(input, AsBytes(name));
  return crypto::HmacSha256(keys_.index.span(), input);
}

Result<StoreImpl::DatasetRow> StoreImpl::LoadDataset(Statement& stmt) {
  DatasetRow row;
  DatasetRecord& r = row.record;
  r.id = stmt.Text(0);
  r.owner_id = stmt.Text(1);
  std::string row_name = DatasetRowName(r.owner_id, r.id);
  CHIRON_ASSIGN_OR_RETURN(SecretBytes name,
                          Unseal(keys_.catalog.span(), "datasets.name", row_name, stmt.Blob(2)));
  r.name = ToString(name.span());
  CHIRON_ASSIGN_OR_RETURN(SecretBytes header, Unseal(keys_.catalog.span(), "datasets.header",
                                                     row_name, stmt.Blob(3)));
  Result<dataset::ContainerHeader> parsed = dataset::ParseContainerHeader(header.span());
  if (!parsed.ok() || parsed->header_size() != header.size() ||
      dataset::DatasetIdHex(parsed->dataset_id) != r.id) {
    return DataLossError("store: " + Describe(r.id) +
                         ": the stored container header does not belong to this dataset");
  }
  r.header = std::move(*parsed);
  row.sealed_data_key = stmt.Blob(4);
  r.chunk_count = static_cast<uint64_t>(stmt.Int(5));
  r.acknowledged_through = static_cast<uint64_t>(stmt.Int(6));
  r.stored_size = static_cast<uint64_t>(stmt.Int(7));
  r.reserved_size = static_cast<uint64_t>(stmt.Int(8));
  r.created_unix = stmt.Int(9);
  if (r.chunk_count != r.header.chunk_count() || r.acknowledged_through > r.chunk_count) {
    return DataLossError("store: " + Describe(r.id) +
                         ": chunk counts in the catalog contradict its header (altered)");
  }
  r.complete = r.acknowledged_through == r.chunk_count;
  return row;
}

Result<std::optional<StoreImpl::DatasetRow>> StoreImpl::LoadDatasetById(
    const std::string& dataset_id) {
  CHIRON_ASSIGN_OR_RETURN(Statement stmt,
                          db_->Prepare(std::string("SELECT ") + kDatasetColumns +
                                           " FROM datasets WHERE id = ?",
                                       "read dataset"));
  CHIRON_ASSIGN_OR_RETURN(bool found, stmt.Bind(1, dataset_id).Step());
  if (!found) return std::optional<DatasetRow>();
  CHIRON_ASSIGN_OR_RETURN(DatasetRow row, LoadDataset(stmt));
  return std::optional<DatasetRow>(std::move(row));
}

Result<std::optional<StoreImpl::DatasetRow>> StoreImpl::LoadDatasetByName(
    const std::string& owner_id, const std::string& name) {
  CHIRON_ASSIGN_OR_RETURN(Bytes tag, NameTag(owner_id, name));
  CHIRON_ASSIGN_OR_RETURN(Statement stmt,
                          db_->Prepare(std::string("SELECT ") + kDatasetColumns +
                                           " FROM datasets WHERE owner_id = ? AND name_tag = ?",
                                       "find dataset by name"));
  CHIRON_ASSIGN_OR_RETURN(bool found, stmt.Bind(1, owner_id).Bind(2, tag).Step());
  if (!found) return std::optional<DatasetRow>();
  CHIRON_ASSIGN_OR_RETURN(DatasetRow row, LoadDataset(stmt));
  if (row.record.name != name) {
    return DataLossError("store: " + Describe(row.record.id) +
                         ": its name index does not match its sealed name (altered)");
  }
  return std::optional<DatasetRow>(std::move(row));
}

Result<SecretBytes> StoreImpl::UnsealDataKey(const DatasetRow& row) {
  CHIRON_ASSIGN_OR_RETURN(
      SecretBytes key,
      Unseal(keys_.catalog.span(), "datasets.data_key",
             DatasetRowName(row.record.owner_id, row.record.id), row.sealed_data_key));
  if (key.size() != dataset::kDatasetKeySize) {
    return DataLossError("store: " + Describe(row.record.id) + ": stored data key has " +
                         std::to_string(key.size()) + " bytes");
  }
  return key;
}

Result<DatasetRecord> StoreImpl::BeginDataset(const std::string& owner_id, const std::string& name,
                                              ByteSpan container_header, ByteSpan data_key) {
  CHIRON_RETURN_IF_ERROR(CheckPrintable(name, kMaxDatasetNameSize, "dataset name"));
  if (data_key.size() != dataset::kDatasetKeySize) {
    return InvalidArgumentError("data key must be " + std::to_string(dataset::kDatasetKeySize) +
                                " bytes, got " + std::to_string(data_key.size()));
  }
  // Copy, then check: the header bytes come from the network.
  Bytes header_bytes(container_header.begin(), container_header.end());
  CHIRON_ASSIGN_OR_RETURN(size_t declared_size, dataset::PeekHeaderSize(header_bytes));
  if (declared_size != header_bytes.size()) {
    return InvalidArgumentError("container header is " + std::to_string(header_bytes.size()) +
                                " bytes but declares " + std::to_string(declared_size) +
                                ": send exactly the header bytes");
  }
  // Authenticates the header with the key: a wrong key or an altered header stops here.
  Result<dataset::DatasetReader> reader = dataset::DatasetReader::Open(data_key, header_bytes);
  if (!reader.ok()) return reader.status().WithContext("dataset '" + name + "'");
  const dataset::ContainerHeader& header = reader->header();
  const std::string id = dataset::DatasetIdHex(header.dataset_id);

  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(Principal owner, GetPrincipalLocked(owner_id));
  if (owner.role != Role::kOwner) {
    return PermissionDeniedError("principal " + owner_id +
                                 " is a provider; only data owners keep datasets");
  }
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> existing, LoadDatasetByName(owner_id, name));
  if (existing.has_value()) {
    const DatasetRecord& r = existing->record;
    if (r.complete) {
      return AlreadyExistsError("dataset '" + name + "' (" + r.id +
                                ") is already stored and complete; delete it first (chiron "
                                "dataset delete " + name + ") or choose another name");
    }
    CHIRON_ASSIGN_OR_RETURN(SecretBytes stored_key, UnsealDataKey(*existing));
    if (r.id != id || r.header.encoded != header_bytes ||
        !ConstantTimeEqual(stored_key.span(), data_key)) {
      return AlreadyExistsError("an unfinished upload of dataset '" + name + "' (" + r.id +
                                ") holds a different container; resume it with the same "
                                "container file and key, or delete it (chiron dataset delete " +
                                name + ")");
    }
    return r;  // resume
  }
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> same_id, LoadDatasetById(id));
  if (same_id.has_value()) {
    return AlreadyExistsError("dataset id " + id +
                              " is already in the store under another name or owner; encrypt "
                              "the dataset again (every container gets a fresh id)");
  }
  CHIRON_RETURN_IF_ERROR(CheckQuota(owner_id, header.container_size(), 1));

  DatasetRecord record;
  record.id = id;
  record.owner_id = owner_id;
  record.name = name;
  record.header = header;
  record.chunk_count = header.chunk_count();
  record.acknowledged_through = 0;
  record.complete = false;
  record.stored_size = header.header_size();
  record.reserved_size = header.container_size();
  record.created_unix = Now();

  std::string row_name = DatasetRowName(owner_id, id);
  CHIRON_ASSIGN_OR_RETURN(Bytes tag, NameTag(owner_id, name));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_name,
                          Seal(keys_.catalog.span(), "datasets.name", row_name, AsBytes(name)));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_header, Seal(keys_.catalog.span(), "datasets.header",
                                                    row_name, header_bytes));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_key,
                          Seal(keys_.catalog.span(), "datasets.data_key", row_name, data_key));
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_ASSIGN_OR_RETURN(
      Statement insert,
      db_->Prepare("INSERT INTO datasets VALUES(?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                   "insert dataset"));
  CHIRON_RETURN_IF_ERROR(insert.Bind(1, id)
                             .Bind(2, owner_id)
                             .Bind(3, tag)
                             .Bind(4, sealed_name)
                             .Bind(5, sealed_header)
                             .Bind(6, sealed_key)
                             .Bind(7, static_cast<int64_t>(record.chunk_count))
                             .Bind(8, static_cast<int64_t>(record.stored_size))
                             .Bind(9, static_cast<int64_t>(record.reserved_size))
                             .Bind(10, record.created_unix)
                             .Run());
  CHIRON_RETURN_IF_ERROR(
      AppendAuditInTransaction({owner_id, "dataset.create", name + " (" + id + ")"}).status());
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return record;
}

Result<UploadProgress> StoreImpl::AppendChunks(const std::string& dataset_id,
                                               const std::vector<ChunkToStore>& chunks) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetById(dataset_id));
  if (!row.has_value()) {
    return NotFoundError("no dataset with id " + dataset_id + " (begin the upload first)");
  }
  const DatasetRecord& r = row->record;
  const std::string segment = SegmentFileName(dataset_id);
  // Unsealed (and the reader opened) only if some chunk needs authenticating.
  std::optional<dataset::DatasetReader> reader;
  auto open_reader = [&]() -> Status {
    if (reader.has_value()) return Status::Ok();
    CHIRON_ASSIGN_OR_RETURN(SecretBytes data_key, UnsealDataKey(*row));
    CHIRON_ASSIGN_OR_RETURN(dataset::DatasetReader opened,
                            dataset::DatasetReader::Open(data_key.span(), r.header.encoded));
    reader.emplace(std::move(opened));
    return Status::Ok();
  };

  // Check every chunk before anything is written: the call stores all of its new chunks or none.
  uint64_t next = r.acknowledged_through;  // the index the next new chunk must have
  std::vector<ByteSpan> fresh;             // new chunks, contiguous from acknowledged_through
  uint64_t fresh_size = 0;
  bool completes = false;
  for (const ChunkToStore& chunk : chunks) {
    const uint64_t index = chunk.index;
    const std::string what = Describe(dataset_id) + " chunk " + std::to_string(index);
    if (index >= r.chunk_count) {
      return OutOfRangeError(Describe(dataset_id) + " has " + std::to_string(r.chunk_count) +
                             " chunks (0.." + std::to_string(r.chunk_count - 1) +
                             "); there is no chunk " + std::to_string(index));
    }
    const bool is_last = index + 1 == r.chunk_count;
    if (chunk.last != is_last) {
      return InvalidArgumentError(what + (is_last ? " is the last chunk but was not marked last"
                                                  : " was marked last but the header declares " +
                                                        std::to_string(r.chunk_count) + " chunks"));
    }
    if (index < r.acknowledged_through) {
      // A re-send of a stored chunk (a resumed upload overlapping what was acknowledged): the
      // same bytes are a no-op, other bytes are refused.
      const uint64_t size = r.header.sealed_chunk_size(index);
      Result<Bytes> stored = fs_->ReadAt(BlobPath(segment), SegmentOffset(r.header, index), size);
      if (!stored.ok()) {
        return DataLossError("store: " + what + " is acknowledged but cannot be read back: " +
                             stored.status().message());
      }
      if (chunk.sealed.size() != size || !ConstantTimeEqual(*stored, chunk.sealed)) {
        return AlreadyExistsError(what +
                                  " is already stored with different contents; a resumed upload "
                                  "must send the same container");
      }
      continue;
    }
    if (index != next) {
      return FailedPreconditionError(Describe(dataset_id) + " expects chunk " +
                                     std::to_string(next) + " next, got chunk " +
                                     std::to_string(index) + "; resume from chunk " +
                                     std::to_string(next));
    }
    // Authenticate under the dataset key at this index before storing, so garbage, a chunk of
    // another dataset or a moved chunk is refused now, not at training. The bytes are already in
    // trusted memory (the caller's parsed request): they are stored exactly as checked here.
    if (chunk.sealed.size() != r.header.sealed_chunk_size(index)) {
      return DataLossError(what + " has " + std::to_string(chunk.sealed.size()) +
                           " bytes but must have " +
                           std::to_string(r.header.sealed_chunk_size(index)) +
                           "; nothing was stored: re-send the chunk from the original container");
    }
    if (!chunk.authenticated) {
      CHIRON_RETURN_IF_ERROR(open_reader());
      // Stored sealed: the tag and the labels are checked, nothing else is decrypted.
      Status opened = reader->AuthenticateChunk(index, chunk.sealed);
      if (!opened.ok()) {
        return Status(opened.code(),
                      what + ": " + opened.message() +
                          "; nothing was stored: re-send the chunk from the original container");
      }
    }
    // Each chunk fills its slot up to the next 4096 bytes (only the last chunk can be shorter
    // than a slot, and nothing follows it).
    const size_t padded_size = AlignedBuffer::RoundUp(chunk.sealed.size());
    if (chunk.padded.size() == padded_size && chunk.padded.data() == chunk.sealed.data()) {
      fresh.push_back(chunk.padded);
    } else {
      static const uint8_t kZeros[AlignedBuffer::kAlignment] = {};
      fresh.push_back(chunk.sealed);
      fresh.push_back(ByteSpan(kZeros, padded_size - chunk.sealed.size()));
    }
    fresh_size += chunk.sealed.size();
    completes = completes || is_last;
    ++next;
  }
  if (fresh.empty()) return UploadProgress{r.acknowledged_through, r.complete};

  // 1. The chunks go to their place in the dataset's segment file, past everything committed,
  //    and are made durable (one fdatasync for the whole group).
  const uint64_t first = r.acknowledged_through;
  Status written = fs_->WriteAtDurable(BlobPath(segment), SegmentOffset(r.header, first), fresh,
                                       0600);
  if (!written.ok()) {
    return Status(written.code(), "store: cannot write " + Describe(dataset_id) + " chunks " +
                                      std::to_string(first) + ".." + std::to_string(next - 1) +
                                      ": " + written.message() +
                                      "; nothing was changed (retry the upload)");
  }
  // 2. One transaction makes them visible: acknowledged_through moves past the group. Bytes
  //    written in step 1 stay invisible until it commits; a crash before that leaves them past
  //    the committed end, where the next write of the same chunks overwrites them.
  Status committed = [&]() -> Status {
    CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
    CHIRON_ASSIGN_OR_RETURN(
        Statement advance,
        db_->Prepare("UPDATE datasets SET acknowledged_through = ?, stored_size = stored_size + ? "
                     "WHERE id = ? AND acknowledged_through = ?",
                     "advance the upload"));
    CHIRON_RETURN_IF_ERROR(advance.Bind(1, static_cast<int64_t>(next))
                               .Bind(2, static_cast<int64_t>(fresh_size))
                               .Bind(3, dataset_id)
                               .Bind(4, static_cast<int64_t>(first))
                               .Run());
    if (db_->changes() != 1) return InternalError("store: upload state changed concurrently");
    if (completes) {
      CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction({r.owner_id, "dataset.upload",
                                                       r.name + " (" + dataset_id + ")"})
                                 .status());
    }
    return txn.Commit();
  }();
  if (!committed.ok()) {
    return Status(committed.code(), "store: " + Describe(dataset_id) + " chunks " +
                                        std::to_string(first) + ".." + std::to_string(next - 1) +
                                        " were not stored: " + committed.message());
  }
  return UploadProgress{next, next == r.chunk_count};
}

Result<UploadProgress> StoreImpl::AppendChunk(const std::string& dataset_id, uint64_t index,
                                              bool last, ByteSpan chunk) {
  return AppendChunks(dataset_id, {ChunkToStore{index, last, chunk}});
}

Result<Bytes> StoreImpl::ReadChunk(const std::string& dataset_id, uint64_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetById(dataset_id));
  if (!row.has_value()) return NotFoundError("no dataset with id " + dataset_id);
  const DatasetRecord& r = row->record;
  if (index >= r.acknowledged_through) {
    return OutOfRangeError(Describe(dataset_id) + " has " +
                           std::to_string(r.acknowledged_through) + " chunks stored; chunk " +
                           std::to_string(index) + " is not one of them");
  }
  const std::string what = Describe(dataset_id) + " chunk " + std::to_string(index);
  const std::string path = BlobPath(SegmentFileName(dataset_id));
  Result<Bytes> chunk =
      fs_->ReadAt(path, SegmentOffset(r.header, index), r.header.sealed_chunk_size(index));
  if (!chunk.ok()) {
    if (chunk.status().code() == StatusCode::kNotFound ||
        chunk.status().code() == StatusCode::kOutOfRange) {
      return DataLossError("store: the segment file of " + what + " ('" + path +
                           "') is missing or shorter than the catalog says (deleted or truncated "
                           "by the host?)");
    }
    return chunk.status();
  }
  // The stored bytes are the owner's AES-256-GCM chunk: authenticating it under the data key at
  // this index detects an altered, moved or swapped chunk (DataLoss naming it).
  CHIRON_ASSIGN_OR_RETURN(SecretBytes data_key, UnsealDataKey(*row));
  CHIRON_ASSIGN_OR_RETURN(dataset::DatasetReader reader,
                          dataset::DatasetReader::Open(data_key.span(), r.header.encoded));
  Status opened = reader.AuthenticateChunk(index, *chunk);
  if (!opened.ok()) {
    return DataLossError("store: the segment file of " + what + " ('" + path +
                         "') does not hold the chunk that was acknowledged (altered, swapped "
                         "with another file, or replaced): " +
                         opened.message());
  }
  return chunk;
}

Result<SecretBytes> StoreImpl::GetDataKey(const std::string& dataset_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetById(dataset_id));
  if (!row.has_value()) return NotFoundError("no dataset with id " + dataset_id);
  return UnsealDataKey(*row);
}

Result<DatasetRecord> StoreImpl::GetDataset(const std::string& dataset_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetById(dataset_id));
  if (!row.has_value()) return NotFoundError("no dataset with id " + dataset_id);
  return std::move(row->record);
}

Result<DatasetRecord> StoreImpl::FindDataset(const std::string& owner_id,
                                             const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetByName(owner_id, name));
  if (!row.has_value()) {
    return NotFoundError("owner " + owner_id + " has no dataset named '" + name +
                         "' (chiron dataset list shows them)");
  }
  return std::move(row->record);
}

Result<std::vector<DatasetRecord>> StoreImpl::ListDatasets(const std::string& owner_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(Statement stmt,
                          db_->Prepare(std::string("SELECT ") + kDatasetColumns +
                                           " FROM datasets WHERE owner_id = ? ORDER BY rowid",
                                       "list datasets"));
  stmt.Bind(1, owner_id);
  std::vector<DatasetRecord> out;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) break;
    CHIRON_ASSIGN_OR_RETURN(DatasetRow row, LoadDataset(stmt));
    out.push_back(std::move(row.record));
  }
  return out;
}

Result<std::string> StoreImpl::DeleteDataset(const std::string& owner_id,
                                             const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetByName(owner_id, name));
  if (!row.has_value()) {
    return NotFoundError("owner " + owner_id + " has no dataset named '" + name +
                         "' (chiron dataset list shows them)");
  }
  const std::string id = row->record.id;
  {
    CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
    // Overwrite the sealed columns in place first, then delete the row: with secure_delete the
    // freed cells are zeroed too, and the checkpoint below carries both into the database file.
    CHIRON_RETURN_IF_ERROR(db_->Run(
        "UPDATE datasets SET sealed_data_key = zeroblob(length(sealed_data_key)), "
        "sealed_name = zeroblob(length(sealed_name)), "
        "sealed_header = zeroblob(length(sealed_header)), "
        "name_tag = zeroblob(length(name_tag)) WHERE id = ?",
        "overwrite dataset keys", id));
    CHIRON_RETURN_IF_ERROR(db_->Run("DELETE FROM datasets WHERE id = ?", "delete dataset", id));
    CHIRON_RETURN_IF_ERROR(
        AppendAuditInTransaction({owner_id, "dataset.delete", name + " (" + id + ")"}).status());
    CHIRON_RETURN_IF_ERROR(txn.Commit());
  }
  // Readers in progress stop at their next chunk; marked before the file goes, so a reader that
  // sees the file missing (or a new segment under the same id) also sees the mark.
  MarkReadersDeleted(id);
  // The chunks are the owner's ciphertext under the key just destroyed; the file goes too.
  RemoveBlobFiles({SegmentFileName(id)});
  ScrubWal();
  return id;
}

}  // namespace chiron::store
