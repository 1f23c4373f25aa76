// Store: opening, crash recovery, principals, audit and quotas. See store.h and docs/store.md.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <utility>

#include "runtime/store/store_impl.h"

#include "shared/base/aligned_buffer.h"
#include "shared/base/log.h"
#include "shared/crypto/hash.h"

namespace chiron::store {
namespace {

constexpr char kCatalogFile[] = "catalog.db";
constexpr char kLockFile[] = "LOCK";
constexpr char kBlobsDir[] = "blobs";
constexpr char kFormatVersion[] = "3";
constexpr char kKeyCheckLabel[] = "chiron-store key check v1";

// The catalog schema (docs/store.md, "Catalog"). Columns named sealed_* hold sealed values
// (docs/formats/sealed-blob.md); everything else is plaintext the host may see.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS principals(
  id TEXT PRIMARY KEY,
  role INTEGER NOT NULL,
  sealed_display_name BLOB NOT NULL,
  created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets(
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL REFERENCES principals(id),
  name_tag BLOB NOT NULL,
  sealed_name BLOB NOT NULL,
  sealed_header BLOB NOT NULL,
  sealed_data_key BLOB NOT NULL,
  chunk_count INTEGER NOT NULL,
  acknowledged_through INTEGER NOT NULL,
  stored_size INTEGER NOT NULL,
  reserved_size INTEGER NOT NULL,
  created INTEGER NOT NULL,
  UNIQUE(owner_id, name_tag));
CREATE TABLE IF NOT EXISTS blobs(
  kind INTEGER NOT NULL,
  id TEXT NOT NULL,
  owner_id TEXT NOT NULL REFERENCES principals(id),
  generation INTEGER NOT NULL,
  size INTEGER NOT NULL,
  sealed_item_key BLOB NOT NULL,
  sealed_metadata BLOB NOT NULL,
  file_digest BLOB NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  PRIMARY KEY(kind, id));
CREATE TABLE IF NOT EXISTS audit(
  principal_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  sealed_record BLOB NOT NULL,
  PRIMARY KEY(principal_id, sequence)) WITHOUT ROWID;
)sql";

bool IsPrintableAscii(char c) { return c >= 0x20 && c <= 0x7e; }

std::string AuditRowName(std::string_view principal_id, uint64_t sequence) {
  return std::string(principal_id) + "/" + std::to_string(sequence);
}

}  // namespace

// ---- names and validation ---------------------------------------------------------------------

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kOwner: return "owner";
    case Role::kProvider: return "provider";
  }
  return "unknown";
}

std::string_view BlobKindName(BlobKind kind) {
  switch (kind) {
    case BlobKind::kRecipe: return "recipe";
    case BlobKind::kModel: return "model";
    case BlobKind::kJob: return "job";
    case BlobKind::kCheckpoint: return "checkpoint";
  }
  return "unknown";
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdSize) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return id != "." && id != "..";
}

Status CheckPrintable(std::string_view value, size_t max_size, std::string_view what) {
  if (value.empty() || value.size() > max_size) {
    return InvalidArgumentError(std::string(what) + " must be 1.." + std::to_string(max_size) +
                                " characters, got " + std::to_string(value.size()));
  }
  for (char c : value) {
    if (!IsPrintableAscii(c)) {
      return InvalidArgumentError(std::string(what) +
                                  " may hold only printable ASCII characters");
    }
  }
  return Status::Ok();
}

std::string SegmentFileName(std::string_view dataset_id) {
  return "d-" + std::string(dataset_id) + ".seg";
}

uint64_t SegmentSlotSize(const dataset::ContainerHeader& header) {
  uint64_t count = header.chunk_count();
  if (count == 0) return 0;
  return AlignedBuffer::RoundUp(
      std::max(header.sealed_chunk_size(0), header.sealed_chunk_size(count - 1)));
}

uint64_t SegmentOffset(const dataset::ContainerHeader& header, uint64_t index) {
  return index * SegmentSlotSize(header);
}

std::string BlobFileName(BlobKind kind, std::string_view id, uint64_t generation) {
  return "b-" + std::string(BlobKindName(kind)) + "-" + std::string(id) + "-" +
         std::to_string(generation) + ".sb";
}

std::string DatasetRowName(std::string_view owner_id, std::string_view dataset_id) {
  return std::string(owner_id) + "/" + std::string(dataset_id);
}

std::string BlobRowName(BlobKind kind, std::string_view id, std::string_view owner_id) {
  return std::string(BlobKindName(kind)) + "/" + std::string(id) + "/" + std::string(owner_id);
}

// ---- opening ----------------------------------------------------------------------------------

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, SecretBytes sealing_key,
                                           FileSystem* fs, StoreLimits limits) {
  if (fs == nullptr) fs = FileSystem::Default();
  if (dir.empty()) return InvalidArgumentError("store directory must not be empty");
  CHIRON_ASSIGN_OR_RETURN(SealingKeys keys, SealingKeys::Derive(sealing_key.span()));
  sealing_key = SecretBytes();  // only the derived keys are kept
  CHIRON_RETURN_IF_ERROR(fs->CreateDirectories(dir, 0700));
  CHIRON_RETURN_IF_ERROR(fs->CreateDirectories(JoinPath(dir, kBlobsDir), 0700));

  // One process at a time: a second chirond on the same directory would interleave writes.
  std::string lock_path = JoinPath(dir, kLockFile);
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return PermissionDeniedError("store: cannot open lock file '" + lock_path +
                                 "': " + std::strerror(errno));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) {
      return FailedPreconditionError("store '" + dir +
                                     "' is in use by another process (is another chirond "
                                     "running with this state directory?)");
    }
    return InternalError("store: cannot lock '" + lock_path + "': " + std::strerror(err));
  }
  Result<std::unique_ptr<Database>> db = Database::Open(JoinPath(dir, kCatalogFile));
  if (!db.ok()) {
    ::close(lock_fd);
    return db.status();
  }
  auto store = std::make_unique<StoreImpl>(dir, fs, limits, std::move(keys), std::move(*db),
                                           lock_fd);
  CHIRON_RETURN_IF_ERROR(store->Initialise());
  return std::unique_ptr<Store>(std::move(store));
}

StoreImpl::StoreImpl(std::string dir, FileSystem* fs, StoreLimits limits, SealingKeys keys,
                     std::unique_ptr<Database> db, int lock_fd)
    : dir_(std::move(dir)),
      blobs_dir_(JoinPath(dir_, kBlobsDir)),
      fs_(fs),
      limits_(limits),
      keys_(std::move(keys)),
      db_(std::move(db)),
      lock_fd_(lock_fd) {}

StoreImpl::~StoreImpl() {
  db_.reset();  // close the catalog before releasing the lock
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status StoreImpl::Initialise() {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(Bytes key_check,
                          crypto::HmacSha256(keys_.check.span(), AsBytes(kKeyCheckLabel)));
  {
    CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
    CHIRON_RETURN_IF_ERROR(db_->Exec(kSchema, "create the catalog schema"));
    CHIRON_RETURN_IF_ERROR(CreateGrantsSchema());
    CHIRON_ASSIGN_OR_RETURN(Statement read,
                            db_->Prepare("SELECT key, value FROM meta", "read catalog metadata"));
    bool has_format = false;
    bool has_check = false;
    while (true) {
      CHIRON_ASSIGN_OR_RETURN(bool row, read.Step());
      if (!row) break;
      std::string key = read.Text(0);
      Bytes value = read.Blob(1);
      if (key == "format") {
        has_format = true;
        if (ToString(value) != kFormatVersion) {
          return FailedPreconditionError(
              "store '" + dir_ + "' has catalog format " + ToString(value) +
              "; this build reads format " + kFormatVersion +
              " only and does not migrate older stores (docs/store.md): move the directory "
              "away and start with an empty one");
        }
      } else if (key == "key_check") {
        has_check = true;
        if (!ConstantTimeEqual(value, key_check)) {
          return DataLossError("store '" + dir_ +
                               "' was sealed with a different key: was the runtime or platform "
                               "changed? (its data cannot be opened by this build)");
        }
      }
    }
    if (!has_format) {
      CHIRON_ASSIGN_OR_RETURN(Statement put, db_->Prepare("INSERT INTO meta VALUES(?, ?)",
                                                          "record catalog format"));
      CHIRON_RETURN_IF_ERROR(put.Bind(1, "format").Bind(2, AsBytes(kFormatVersion)).Run());
    }
    if (!has_check) {
      CHIRON_ASSIGN_OR_RETURN(Statement put, db_->Prepare("INSERT INTO meta VALUES(?, ?)",
                                                          "record key check"));
      CHIRON_RETURN_IF_ERROR(put.Bind(1, "key_check").Bind(2, key_check).Run());
    }
    CHIRON_RETURN_IF_ERROR(txn.Commit());
  }
  return CollectGarbage();
}

int64_t StoreImpl::Now() { return static_cast<int64_t>(std::time(nullptr)); }

// ---- files ------------------------------------------------------------------------------------

std::string StoreImpl::BlobPath(const std::string& file_name) const {
  return JoinPath(blobs_dir_, file_name);
}

Status StoreImpl::WriteBlobFile(const std::string& file_name, ByteSpan sealed,
                                std::string_view what) {
  Status status = fs_->WriteFileAtomic(BlobPath(file_name), sealed, 0600);
  if (!status.ok()) {
    return Status(status.code(), "store: cannot write " + std::string(what) + ": " +
                                     status.message() + "; nothing was changed");
  }
  return Status::Ok();
}

Result<Bytes> StoreImpl::ReadBlobFile(const std::string& file_name, uint64_t max_size,
                                      ByteSpan expected_digest, std::string_view what) {
  std::string path = BlobPath(file_name);
  Result<Bytes> bytes = fs_->ReadFile(path, max_size);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return DataLossError("store: the file of " + std::string(what) + " ('" + path +
                           "') is missing although the catalog lists it (deleted by the host?)");
    }
    if (bytes.status().code() == StatusCode::kResourceExhausted) {
      return DataLossError("store: the file of " + std::string(what) + " ('" + path +
                           "') is larger than its catalog entry allows (altered)");
    }
    return bytes.status();
  }
  if (!ConstantTimeEqual(crypto::Sha256(*bytes), expected_digest)) {
    return DataLossError("store: the file of " + std::string(what) + " ('" + path +
                         "') does not match the catalog (altered, swapped with another file, or "
                         "replaced by an older copy)");
  }
  return bytes;
}

void StoreImpl::RemoveBlobFiles(const std::vector<std::string>& file_names) {
  for (const std::string& name : file_names) {
    Status status = fs_->RemoveFile(BlobPath(name));
    if (!status.ok()) {
      LogWarning("store.remove_failed",
                 {{"file", name}, {"error", status.message()}, {"retry", "next open"}});
    }
  }
  fs_->SyncDirectory(blobs_dir_).IgnoreError();
}

Status StoreImpl::CollectGarbage() {
  std::set<std::string> expected;
  {
    CHIRON_ASSIGN_OR_RETURN(Statement datasets,
                            db_->Prepare("SELECT id FROM datasets", "list datasets"));
    while (true) {
      CHIRON_ASSIGN_OR_RETURN(bool row, datasets.Step());
      if (!row) break;
      expected.insert(SegmentFileName(datasets.Text(0)));
    }
    CHIRON_ASSIGN_OR_RETURN(Statement blobs, db_->Prepare("SELECT kind, id, generation FROM blobs",
                                                          "list blobs"));
    while (true) {
      CHIRON_ASSIGN_OR_RETURN(bool row, blobs.Step());
      if (!row) break;
      expected.insert(BlobFileName(static_cast<BlobKind>(blobs.Int(0)), blobs.Text(1),
                                   static_cast<uint64_t>(blobs.Int(2))));
    }
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> present, fs_->ListDirectory(blobs_dir_));
  std::vector<std::string> stale;
  for (const std::string& name : present) {
    if (expected.count(name) == 0) stale.push_back(name);
  }
  if (!stale.empty()) {
    // Left by a crash between a file write and its catalog commit, by a delete whose file
    // removal failed, or by an interrupted atomic write (temporaries). None is visible.
    LogInfo("store.recovered", {{"stale_files_removed", std::to_string(stale.size())}});
    RemoveBlobFiles(stale);
  }
  return Status::Ok();
}

void StoreImpl::ScrubWal() {
  Status status = db_->CheckpointTruncate();
  if (!status.ok()) {
    LogWarning("store.checkpoint_failed", {{"error", status.message()}});
  }
}

// ---- principals -------------------------------------------------------------------------------

Result<Principal> StoreImpl::GetPrincipalLocked(const std::string& id) {
  CHIRON_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("SELECT role, sealed_display_name, created FROM principals WHERE id = ?",
                   "read principal"));
  CHIRON_ASSIGN_OR_RETURN(bool row, stmt.Bind(1, id).Step());
  if (!row) {
    return NotFoundError("principal " + id + " is not registered (register first: chiron register)");
  }
  Principal principal;
  principal.id = id;
  int64_t role = stmt.Int(0);
  if (role != static_cast<int64_t>(Role::kOwner) && role != static_cast<int64_t>(Role::kProvider)) {
    return DataLossError("principal " + id + ": unknown role " + std::to_string(role) +
                         " in the catalog (altered)");
  }
  principal.role = static_cast<Role>(role);
  CHIRON_ASSIGN_OR_RETURN(SecretBytes name, Unseal(keys_.catalog.span(),
                                                   "principals.display_name", id, stmt.Blob(1)));
  principal.display_name = ToString(name.span());
  principal.created_unix = stmt.Int(2);
  return principal;
}

Result<Principal> StoreImpl::GetPrincipal(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetPrincipalLocked(id);
}

Result<Principal> StoreImpl::RegisterPrincipal(const std::string& id, Role role,
                                               const std::string& display_name) {
  if (!IsValidId(id)) {
    return InvalidArgumentError("principal id must be 1.." + std::to_string(kMaxIdSize) +
                                " characters of [A-Za-z0-9._-] (the hex SHA-256 of the SPKI)");
  }
  if (role != Role::kOwner && role != Role::kProvider) {
    return InvalidArgumentError("principal role must be owner or provider");
  }
  CHIRON_RETURN_IF_ERROR(CheckPrintable(display_name, kMaxDisplayNameSize, "display name"));
  std::lock_guard<std::mutex> lock(mu_);
  Result<Principal> existing = GetPrincipalLocked(id);
  if (existing.ok()) {
    if (existing->role != role) {
      return AlreadyExistsError("principal " + id + " is already registered as " +
                                std::string(RoleName(existing->role)) + "; a key has one role: "
                                "use another key to act as " + std::string(RoleName(role)));
    }
    return existing;
  }
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();

  Principal principal{id, role, display_name, Now()};
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed_name, Seal(keys_.catalog.span(), "principals.display_name",
                                                  id, AsBytes(display_name)));
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_ASSIGN_OR_RETURN(Statement insert,
                          db_->Prepare("INSERT INTO principals VALUES(?, ?, ?, ?)",
                                       "insert principal"));
  CHIRON_RETURN_IF_ERROR(insert.Bind(1, id)
                             .Bind(2, static_cast<int64_t>(role))
                             .Bind(3, sealed_name)
                             .Bind(4, principal.created_unix)
                             .Run());
  CHIRON_RETURN_IF_ERROR(
      AppendAuditInTransaction({id, "principal.register", std::string(RoleName(role))}).status());
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return principal;
}

// ---- quotas -----------------------------------------------------------------------------------

Result<OwnerUsage> StoreImpl::UsageLocked(const std::string& owner_id) {
  OwnerUsage usage;
  usage.bytes_limit = limits_.max_bytes_per_owner;
  usage.datasets_limit = limits_.max_datasets_per_owner;
  CHIRON_ASSIGN_OR_RETURN(
      Statement datasets,
      db_->Prepare("SELECT COUNT(*), COALESCE(SUM(reserved_size), 0) FROM datasets "
                   "WHERE owner_id = ?",
                   "sum dataset usage"));
  CHIRON_ASSIGN_OR_RETURN(bool row, datasets.Bind(1, owner_id).Step());
  if (row) {
    usage.datasets = static_cast<uint64_t>(datasets.Int(0));
    usage.bytes_used = static_cast<uint64_t>(datasets.Int(1));
  }
  CHIRON_ASSIGN_OR_RETURN(
      Statement blobs,
      db_->Prepare("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE owner_id = ?",
                   "sum blob usage"));
  CHIRON_ASSIGN_OR_RETURN(row, blobs.Bind(1, owner_id).Step());
  if (row) usage.bytes_used += static_cast<uint64_t>(blobs.Int(0));
  return usage;
}

Result<OwnerUsage> StoreImpl::GetUsage(const std::string& owner_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return UsageLocked(owner_id);
}

Status StoreImpl::CheckQuota(const std::string& owner_id, uint64_t extra_bytes,
                             uint64_t extra_datasets) {
  const auto& unmetered = limits_.unmetered_principals;
  if (std::find(unmetered.begin(), unmetered.end(), owner_id) != unmetered.end()) {
    return Status::Ok();
  }
  CHIRON_ASSIGN_OR_RETURN(OwnerUsage usage, UsageLocked(owner_id));
  if (extra_datasets > 0 && usage.datasets + extra_datasets > usage.datasets_limit) {
    return ResourceExhaustedError(
        "owner " + owner_id + " has " + std::to_string(usage.datasets) + " of " +
        std::to_string(usage.datasets_limit) +
        " datasets; delete a dataset (chiron dataset delete NAME) or ask the operator to raise "
        "the quota");
  }
  if (usage.bytes_used + extra_bytes > usage.bytes_limit || extra_bytes > usage.bytes_limit) {
    return ResourceExhaustedError(
        "owner " + owner_id + " uses " + std::to_string(usage.bytes_used) + " of " +
        std::to_string(usage.bytes_limit) + " bytes and this needs " +
        std::to_string(extra_bytes) +
        " more; delete a dataset (chiron dataset delete NAME) or ask the operator to raise the "
        "quota");
  }
  return Status::Ok();
}

// ---- audit ------------------------------------------------------------------------------------

Result<audit::AuditRecord> StoreImpl::AppendAuditInTransaction(const AuditEvent& event) {
  CHIRON_RETURN_IF_ERROR(audit::ValidateAuditFields(event.principal_id, event.event, event.subject));
  CHIRON_ASSIGN_OR_RETURN(
      Statement last,
      db_->Prepare("SELECT sequence, sealed_record FROM audit WHERE principal_id = ? "
                   "ORDER BY sequence DESC LIMIT 1",
                   "read the audit chain head"));
  CHIRON_ASSIGN_OR_RETURN(bool has_previous, last.Bind(1, event.principal_id).Step());
  std::optional<audit::AuditRecord> previous;
  if (has_previous) {
    uint64_t sequence = static_cast<uint64_t>(last.Int(0));
    std::string row = AuditRowName(event.principal_id, sequence);
    CHIRON_ASSIGN_OR_RETURN(SecretBytes plain,
                            Unseal(keys_.audit.span(), "audit.record", row, last.Blob(1)));
    Result<audit::AuditRecord> decoded = audit::DecodeAuditRecord(plain.span());
    if (!decoded.ok() || decoded->sequence != sequence ||
        decoded->principal_id != event.principal_id) {
      return DataLossError("store: audit record " + row + " is malformed (altered)");
    }
    previous = std::move(*decoded);
  }
  CHIRON_ASSIGN_OR_RETURN(audit::AuditRecord record,
                          audit::MakeNextAuditRecord(previous, Now(), event.principal_id,
                                                     event.event, event.subject));
  std::string row = AuditRowName(record.principal_id, record.sequence);
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed, Seal(keys_.audit.span(), "audit.record", row,
                                             audit::EncodeAuditRecord(record)));
  CHIRON_ASSIGN_OR_RETURN(Statement insert, db_->Prepare("INSERT INTO audit VALUES(?, ?, ?)",
                                                         "append audit record"));
  CHIRON_RETURN_IF_ERROR(insert.Bind(1, record.principal_id)
                             .Bind(2, static_cast<int64_t>(record.sequence))
                             .Bind(3, sealed)
                             .Run());
  return record;
}

Result<audit::AuditRecord> StoreImpl::AppendAudit(const AuditEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_ASSIGN_OR_RETURN(audit::AuditRecord record, AppendAuditInTransaction(event));
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return record;
}

Result<std::vector<audit::AuditRecord>> StoreImpl::ListAudit(const std::string& principal_id,
                                                             uint64_t from_sequence) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("SELECT sequence, sealed_record FROM audit WHERE principal_id = ? AND "
                   "sequence >= ? ORDER BY sequence",
                   "list audit records"));
  stmt.Bind(1, principal_id)
      .Bind(2, static_cast<int64_t>(std::min<uint64_t>(from_sequence, INT64_MAX)));
  std::vector<audit::AuditRecord> records;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    uint64_t sequence = static_cast<uint64_t>(stmt.Int(0));
    std::string row_name = AuditRowName(principal_id, sequence);
    CHIRON_ASSIGN_OR_RETURN(SecretBytes plain,
                            Unseal(keys_.audit.span(), "audit.record", row_name, stmt.Blob(1)));
    Result<audit::AuditRecord> decoded = audit::DecodeAuditRecord(plain.span());
    if (!decoded.ok()) {
      return DataLossError("store: audit record " + row_name +
                           " is malformed: " + decoded.status().message());
    }
    records.push_back(std::move(*decoded));
  }
  return records;
}

}  // namespace chiron::store
