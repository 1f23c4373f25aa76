// Store: generic sealed blobs (recipes, models, jobs, checkpoints). See store.h.
//
// Each generation of a blob has its own random 32-byte item key (sealed in the catalog); the
// file is sealed under HKDF(item key, store blob key). Replacing a blob writes the new
// generation's file first, commits the catalog row, then removes the old file, so a crash at any
// point leaves exactly one committed generation readable.
#include <utility>

#include "runtime/store/store_impl.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/random.h"

namespace chiron::store {
namespace {

constexpr char kBlobColumns[] =
    "kind, id, owner_id, generation, size, sealed_item_key, sealed_metadata, file_digest, "
    "created, updated";

bool IsValidKind(BlobKind kind) {
  switch (kind) {
    case BlobKind::kRecipe:
    case BlobKind::kModel:
    case BlobKind::kJob:
    case BlobKind::kCheckpoint: return true;
  }
  return false;
}

std::string Describe(BlobKind kind, const std::string& id) {
  return std::string(BlobKindName(kind)) + " '" + id + "'";
}

std::string FileRowName(BlobKind kind, const std::string& id, const std::string& owner_id,
                        uint64_t generation) {
  return BlobRowName(kind, id, owner_id) + "/" + std::to_string(generation);
}

std::string FilePurpose(BlobKind kind) { return "blob." + std::string(BlobKindName(kind)); }

Status CheckKindAndId(BlobKind kind, const std::string& id) {
  if (!IsValidKind(kind)) {
    return InvalidArgumentError("unknown blob kind " + std::to_string(static_cast<int>(kind)));
  }
  if (!IsValidId(id)) {
    return InvalidArgumentError(std::string(BlobKindName(kind)) + " id must be 1.." +
                                std::to_string(kMaxIdSize) + " characters of [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

Status CheckMetadata(ByteSpan metadata) {
  if (metadata.size() > kMaxBlobMetadataSize) {
    return InvalidArgumentError("blob metadata is " + std::to_string(metadata.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(kMaxBlobMetadataSize));
  }
  return Status::Ok();
}

}  // namespace

struct StoreImpl::BlobRow {
  BlobInfo info;
  Bytes sealed_item_key;
  Bytes file_digest;
};

Result<StoreImpl::BlobRow> StoreImpl::LoadBlobRow(Statement& stmt) {
  BlobRow row;
  BlobInfo& info = row.info;
  info.kind = static_cast<BlobKind>(stmt.Int(0));
  info.id = stmt.Text(1);
  info.owner_id = stmt.Text(2);
  if (!IsValidKind(info.kind)) {
    return DataLossError("store: blob '" + info.id + "' has an unknown kind (altered)");
  }
  info.generation = static_cast<uint64_t>(stmt.Int(3));
  info.size = static_cast<uint64_t>(stmt.Int(4));
  row.sealed_item_key = stmt.Blob(5);
  CHIRON_ASSIGN_OR_RETURN(
      SecretBytes metadata,
      Unseal(keys_.catalog.span(), "blobs.metadata", BlobRowName(info.kind, info.id, info.owner_id),
             stmt.Blob(6)));
  info.metadata.assign(metadata.span().begin(), metadata.span().end());
  row.file_digest = stmt.Blob(7);
  info.created_unix = stmt.Int(8);
  info.updated_unix = stmt.Int(9);
  return row;
}

Result<std::optional<StoreImpl::BlobRow>> StoreImpl::LoadBlob(BlobKind kind,
                                                              const std::string& id) {
  CHIRON_ASSIGN_OR_RETURN(Statement stmt,
                          db_->Prepare(std::string("SELECT ") + kBlobColumns +
                                           " FROM blobs WHERE kind = ? AND id = ?",
                                       "read blob"));
  CHIRON_ASSIGN_OR_RETURN(bool found, stmt.Bind(1, static_cast<int64_t>(kind)).Bind(2, id).Step());
  if (!found) return std::optional<BlobRow>();
  CHIRON_ASSIGN_OR_RETURN(BlobRow row, LoadBlobRow(stmt));
  return std::optional<BlobRow>(std::move(row));
}

Result<BlobInfo> StoreImpl::PutBlob(BlobKind kind, const std::string& id,
                                    const std::string& owner_id, ByteSpan data, ByteSpan metadata,
                                    const std::optional<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckKindAndId(kind, id));
  CHIRON_RETURN_IF_ERROR(CheckMetadata(metadata));
  if (data.size() > limits_.max_blob_size) {
    return InvalidArgumentError(Describe(kind, id) + " is " + std::to_string(data.size()) +
                                " bytes, more than the store's limit of " +
                                std::to_string(limits_.max_blob_size));
  }
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_RETURN_IF_ERROR(GetPrincipalLocked(owner_id).status());
  CHIRON_ASSIGN_OR_RETURN(std::optional<BlobRow> existing, LoadBlob(kind, id));
  if (existing.has_value() && existing->info.owner_id != owner_id) {
    return AlreadyExistsError(Describe(kind, id) +
                              " already exists and belongs to another principal; choose "
                              "another name");
  }
  uint64_t old_size = existing.has_value() ? existing->info.size : 0;
  CHIRON_RETURN_IF_ERROR(CheckQuota(owner_id, data.size() > old_size ? data.size() - old_size : 0, 0));

  BlobInfo info;
  info.kind = kind;
  info.id = id;
  info.owner_id = owner_id;
  info.size = data.size();
  info.generation = existing.has_value() ? existing->info.generation + 1 : 1;
  info.metadata.assign(metadata.begin(), metadata.end());
  info.updated_unix = Now();
  info.created_unix = existing.has_value() ? existing->info.created_unix : info.updated_unix;

  const std::string row_name = BlobRowName(kind, id, owner_id);
  const std::string file_row = FileRowName(kind, id, owner_id, info.generation);
  CHIRON_ASSIGN_OR_RETURN(SecretBytes item_key, crypto::RandomSecret(crypto::kAes256KeySize));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes file_key, DeriveItemKey(keys_.blob.span(), item_key.span(),
                                                              BlobKindName(kind), id));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed, Seal(file_key.span(), FilePurpose(kind), file_row, data));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_item_key, Seal(keys_.catalog.span(), "blobs.item_key",
                                                      file_row, item_key.span()));
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_metadata,
                          Seal(keys_.catalog.span(), "blobs.metadata", row_name, metadata));
  const std::string file_name = BlobFileName(kind, id, info.generation);
  CHIRON_RETURN_IF_ERROR(WriteBlobFile(file_name, sealed, Describe(kind, id)));

  Status committed = [&]() -> Status {
    CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
    CHIRON_RETURN_IF_ERROR(db_->Run(
        "INSERT INTO blobs VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE "
        "SET generation = excluded.generation, size = excluded.size, "
        "sealed_item_key = excluded.sealed_item_key, sealed_metadata = excluded.sealed_metadata, "
        "file_digest = excluded.file_digest, updated = excluded.updated",
        "write blob row", static_cast<int64_t>(kind), id, owner_id,
        static_cast<int64_t>(info.generation), static_cast<int64_t>(info.size), sealed_item_key,
        sealed_metadata, crypto::Sha256(sealed), info.created_unix, info.updated_unix));
    if (audit.has_value()) CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(*audit).status());
    return txn.Commit();
  }();
  if (!committed.ok()) {
    RemoveBlobFiles({file_name});
    return Status(committed.code(), "store: " + Describe(kind, id) +
                                        " was not stored: " + committed.message());
  }
  if (existing.has_value()) {
    RemoveBlobFiles({BlobFileName(kind, id, existing->info.generation)});
  }
  return info;
}

Result<BlobInfo> StoreImpl::UpdateBlobMetadata(BlobKind kind, const std::string& id,
                                               ByteSpan metadata,
                                               const std::optional<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckKindAndId(kind, id));
  CHIRON_RETURN_IF_ERROR(CheckMetadata(metadata));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<BlobRow> existing, LoadBlob(kind, id));
  if (!existing.has_value()) return NotFoundError("no " + Describe(kind, id) + " in the store");
  BlobInfo info = std::move(existing->info);
  info.metadata.assign(metadata.begin(), metadata.end());
  info.updated_unix = Now();
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_metadata,
                          Seal(keys_.catalog.span(), "blobs.metadata",
                               BlobRowName(kind, id, info.owner_id), metadata));
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_RETURN_IF_ERROR(
      db_->Run("UPDATE blobs SET sealed_metadata = ?, updated = ? WHERE kind = ? AND id = ?",
               "update blob metadata", sealed_metadata, info.updated_unix,
               static_cast<int64_t>(kind), id));
  if (audit.has_value()) CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(*audit).status());
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return info;
}

Result<SecretBytes> StoreImpl::GetBlob(BlobKind kind, const std::string& id) {
  CHIRON_RETURN_IF_ERROR(CheckKindAndId(kind, id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<BlobRow> row, LoadBlob(kind, id));
  if (!row.has_value()) return NotFoundError("no " + Describe(kind, id) + " in the store");
  const BlobInfo& info = row->info;
  const std::string what = Describe(kind, id);
  CHIRON_ASSIGN_OR_RETURN(Bytes file,
                          ReadBlobFile(BlobFileName(kind, id, info.generation),
                                       info.size + kSealedOverhead, row->file_digest, what));
  const std::string file_row = FileRowName(kind, id, info.owner_id, info.generation);
  CHIRON_ASSIGN_OR_RETURN(SecretBytes item_key, Unseal(keys_.catalog.span(), "blobs.item_key",
                                                       file_row, row->sealed_item_key));
  CHIRON_ASSIGN_OR_RETURN(SecretBytes file_key, DeriveItemKey(keys_.blob.span(), item_key.span(),
                                                              BlobKindName(kind), id));
  Result<SecretBytes> data = Unseal(file_key.span(), FilePurpose(kind), file_row, file);
  if (!data.ok()) return data.status().WithContext("store: " + what);
  if (data->size() != info.size) {
    return DataLossError("store: " + what + " has " + std::to_string(data->size()) +
                         " bytes but the catalog says " + std::to_string(info.size));
  }
  return std::move(*data);
}

Result<BlobInfo> StoreImpl::GetBlobInfo(BlobKind kind, const std::string& id) {
  CHIRON_RETURN_IF_ERROR(CheckKindAndId(kind, id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<BlobRow> row, LoadBlob(kind, id));
  if (!row.has_value()) return NotFoundError("no " + Describe(kind, id) + " in the store");
  return std::move(row->info);
}

Result<std::vector<BlobInfo>> StoreImpl::ListBlobs(BlobKind kind,
                                                   const std::optional<std::string>& owner_id) {
  if (!IsValidKind(kind)) {
    return InvalidArgumentError("unknown blob kind " + std::to_string(static_cast<int>(kind)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kBlobColumns + " FROM blobs WHERE kind = ?";
  if (owner_id.has_value()) sql += " AND owner_id = ?";
  sql += " ORDER BY rowid";
  CHIRON_ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(sql, "list blobs"));
  stmt.Bind(1, static_cast<int64_t>(kind));
  if (owner_id.has_value()) stmt.Bind(2, *owner_id);
  std::vector<BlobInfo> out;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) break;
    CHIRON_ASSIGN_OR_RETURN(BlobRow row, LoadBlobRow(stmt));
    out.push_back(std::move(row.info));
  }
  return out;
}

Status StoreImpl::DeleteBlob(BlobKind kind, const std::string& id,
                             const std::optional<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckKindAndId(kind, id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<BlobRow> row, LoadBlob(kind, id));
  if (!row.has_value()) return NotFoundError("no " + Describe(kind, id) + " in the store");
  {
    CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
    CHIRON_RETURN_IF_ERROR(db_->Run(
        "UPDATE blobs SET sealed_item_key = zeroblob(length(sealed_item_key)), "
        "sealed_metadata = zeroblob(length(sealed_metadata)) WHERE kind = ? AND id = ?",
        "overwrite blob key", static_cast<int64_t>(kind), id));
    CHIRON_RETURN_IF_ERROR(db_->Run("DELETE FROM blobs WHERE kind = ? AND id = ?", "delete blob",
                                    static_cast<int64_t>(kind), id));
    if (audit.has_value()) CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(*audit).status());
    CHIRON_RETURN_IF_ERROR(txn.Commit());
  }
  RemoveBlobFiles({BlobFileName(kind, id, row->info.generation)});
  ScrubWal();
  return Status::Ok();
}

}  // namespace chiron::store
