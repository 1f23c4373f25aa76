// Store: the trusted runtime's sealed, crash-safe state (docs/store.md).
//
// What it keeps, in a directory the untrusted host can read, copy and modify:
//   <dir>/catalog.db (+ -wal, -shm)  SQLite catalog: principals, datasets, generic blobs
//                                    (recipes, models, jobs, checkpoints), audit records
//   <dir>/blobs/                     one segment per dataset (its chunks, as uploaded) and one
//                                    sealed file per generic blob generation
//   <dir>/LOCK                       held (flock) while a Store is open: one process at a time
//
// Confidentiality and integrity. Every confidential column and every generic blob file is sealed
// (docs/formats/sealed-blob.md) with AES-256-GCM under keys derived (HKDF) from the platform
// sealing key given to Open; the associated data binds the table, column and row, so a sealed
// value moved to another row, column or table fails to open. Blob files are also pinned by a
// SHA-256 in their catalog row, so a swapped, altered or older file is detected. Plaintext are
// only what the host sees anyway: ids, sizes, counts, timestamps, roles and which principal owns
// what (principal ids are hashes of public keys). Dataset chunks are kept as the owner encrypted
// them (AES-256-GCM under the dataset's data key, which is stored only sealed; the tag binds
// dataset id and index) and are authenticated again whenever read. A sealed value or file that
// fails to open is
// DataLoss naming the row ("dataset 3fa1...: column 'name' failed authentication ...").
// What it cannot stop: the host rolling the whole directory back to an older copy (clients
// detect that for audit logs with a remembered chain head; see shared/audit/chain.h).
//
// Crash safety. Every mutation is durable when it returns OK and invisible if the process dies
// before that: blob files are written with FileSystem::WriteFileAtomic (write, fsync, rename,
// fsync dir), and groups of chunks with FileSystem::WriteAtDurable (past the segment's committed
// end, one fdatasync), before the catalog transaction (SQLite WAL, synchronous=FULL) that makes
// them visible commits; on Open, files no committed row refers to (left by a crash between the
// two steps) and temporaries are removed; segment bytes past acknowledged_through are never read.
//
// Crypto-shredding. Each dataset's chunks are encrypted under keys derived from its 32-byte data
// key; each generic blob has its own random key. Deleting destroys that key in the catalog
// (overwritten, deleted with secure_delete, WAL checkpointed and truncated) and removes the files;
// whatever bytes remain on the disk cannot be decrypted with anything the runtime still holds.
//
// Audit. Security-relevant mutations (principal registration, dataset creation, upload
// completion, dataset deletion, and generic-blob changes given an AuditEvent) append their audit
// record in the same SQLite transaction, so the event and its record commit together or not at
// all. Other events (training, prediction, policy changes) are appended with AppendAudit.
//
// Thread safety: a Store is safe for concurrent use; calls are serialised by one internal mutex
// (each mutation ends with an fsync, which dominates anyway; uploads batch their chunks into
// AppendChunks groups). The one exception is reading a whole dataset for a job: a
// StoredDatasetReader takes what it needs under the mutex when it is opened and then reads and
// decrypts without it, so a long load never holds up uploads or any other call. The FileSystem
// must outlive the Store and every reader it opened.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/audit/chain.h"
#include "shared/base/bytes.h"
#include "shared/base/file_system.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/dataset/container.h"

namespace chiron::store {

inline constexpr size_t kSealingKeySize = 32;
inline constexpr size_t kMaxDisplayNameSize = 64;
inline constexpr size_t kMaxDatasetNameSize = 128;
// Generic blob ids and principal ids: 1..kMaxIdSize characters of [A-Za-z0-9._-].
inline constexpr size_t kMaxIdSize = 128;
inline constexpr size_t kMaxBlobMetadataSize = size_t{1} << 20;

struct StoreLimits {
  // Bytes an owner may keep: the declared size of each dataset's container (reserved in full when
  // the upload begins, so an upload never fails half-way on quota) plus the size of every generic
  // blob the principal owns.
  uint64_t max_bytes_per_owner = uint64_t{16} << 30;
  // Datasets (complete or not) an owner may keep.
  uint64_t max_datasets_per_owner = 64;
  // Largest generic blob (a recipe .so, a model, a checkpoint).
  uint64_t max_blob_size = uint64_t{1} << 30;
  // Principals the two quotas above do not apply to: chirond's own internal principal that owns
  // the built-in recipes (the operator ships those; they must not eat into a quota nor stop
  // chirond from starting when the quota is small). Never a client's principal.
  std::vector<std::string> unmetered_principals;
};

enum class Role { kOwner = 1, kProvider = 2 };
std::string_view RoleName(Role role);  // "owner", "provider"

struct Principal {
  std::string id;  // hex SHA-256 of the principal's SubjectPublicKeyInfo
  Role role = Role::kOwner;
  std::string display_name;  // sealed at rest
  int64_t created_unix = 0;
};

struct DatasetRecord {
  std::string id;        // hex of the container's dataset id (unique across the store)
  std::string owner_id;  // principal id
  std::string name;      // unique per owner; sealed at rest
  dataset::ContainerHeader header;  // parsed and authenticated with the data key at creation
  uint64_t chunk_count = 0;           // header.chunk_count()
  uint64_t acknowledged_through = 0;  // chunks [0, acknowledged_through) are durable
  bool complete = false;              // acknowledged_through == chunk_count
  uint64_t stored_size = 0;           // header + chunk bytes durably stored
  uint64_t reserved_size = 0;         // header.container_size(): what counts against the quota
  int64_t created_unix = 0;
};

struct UploadProgress {
  uint64_t acknowledged_through = 0;  // every chunk with index < this value is durable
  bool complete = false;
};

struct OwnerUsage {
  uint64_t bytes_used = 0;  // reserved dataset sizes + owned generic blob sizes
  uint64_t bytes_limit = 0;
  uint64_t datasets = 0;
  uint64_t datasets_limit = 0;
};

// Kinds of generic sealed records (other modules' state).
enum class BlobKind { kRecipe = 1, kModel = 2, kJob = 3, kCheckpoint = 4 };
std::string_view BlobKindName(BlobKind kind);  // "recipe", "model", "job", "checkpoint"

struct BlobInfo {
  BlobKind kind = BlobKind::kRecipe;
  std::string id;
  std::string owner_id;  // the principal it belongs to (counts against their quota)
  uint64_t size = 0;     // plaintext bytes of the data
  uint64_t generation = 0;  // 1 on creation, +1 on every PutBlob of the same (kind, id)
  Bytes metadata;        // small caller-defined record (sealed at rest), e.g. a job's state
  int64_t created_unix = 0;
  int64_t updated_unix = 0;
};

// An owner's grant of Predict on one of its models to another principal (store_grants.cc).
struct ModelGrant {
  std::string model_id;    // generic blob id of the model (BlobKind::kModel)
  std::string owner_id;    // the model's owner, who granted
  std::string grantee_id;  // a registered owner-role principal other than owner_id
  uint64_t budget = 0;     // queries the grantee may make; 0: only the model's budget bounds them
  uint64_t used = 0;       // queries charged so far
  int64_t created_unix = 0;
  int64_t updated_unix = 0;
};

// An audit record to append in the same transaction as a mutation.
struct AuditEvent {
  std::string principal_id;  // whose chain receives the record
  std::string event;         // see audit::ValidateAuditFields
  std::string subject;
};

// Reads a stored dataset's chunks for a job, from Store::OpenDatasetReader. Everything it needs
// from the catalog was taken under the store's mutex when it was opened: the record (header,
// chunk count, acknowledged_through), the segment file's path and slot layout, and the data key,
// unsealed once and kept in zeroing memory inside the reader's cipher context (never handed
// out). Reading then takes no lock of the store: each OpenChunkInto reads one chunk from the
// segment file and authenticates and decrypts it in one AES-256-GCM pass, straight into the
// caller's buffer.
//
// Deletion. DeleteDataset marks every open reader of the dataset before it removes the segment
// file. A reader checks the mark after reading each chunk and after decrypting it: from the
// first check after the deletion on, every OpenChunkInto fails with NotFound ("dataset X was
// deleted while it was being read"), zeroes the caller's buffer and destroys the reader's copy
// of the data key at once. So a reader never returns bytes read after the deletion (nor from a
// segment re-created later under the same id), and once it has noticed (within one chunk),
// nothing the runtime holds opens the shredded chunks. A chunk returned before the deletion
// stays the caller's to wipe (jobs::LoadDataset keeps them in SecretBytes).
//
// Thread safety: not thread safe (one reused buffer and cipher context): one thread at a time
// per reader. Any number of readers, of the same or different datasets, may run concurrently
// with each other and with every Store call. May outlive the Store (it only needs the
// FileSystem, which must outlive it).
class StoredDatasetReader {
 public:
  virtual ~StoredDatasetReader() = default;

  // The catalog's record of the dataset when the reader was opened.
  virtual const DatasetRecord& record() const = 0;

  // Reads chunk `index` and authenticates and decrypts it (under the data key at this index, so
  // an altered, moved or swapped chunk fails) into `plaintext`, which must have exactly
  // record().header.plaintext_chunk_size(index) bytes. On any error `plaintext` holds zeros.
  // OutOfRange if index >= record().acknowledged_through; InvalidArgument for a wrong buffer
  // size, or a record whose label is not below the class count (the owner's data, checked here
  // so no consumer indexes past the class table); DataLoss naming the chunk index and the file if
  // the segment is missing or shorter than the catalog says, or the chunk fails authentication;
  // NotFound once the dataset has been deleted (see above); file errors name the path.
  virtual Status OpenChunkInto(uint64_t index, MutableByteSpan plaintext) = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens or creates the store in `dir` (created 0700). `sealing_key` must be 32 bytes (from
  // tee::Platform::DeriveSealingKey("store")); a store created under another key does not open
  // (DataLoss "sealed with a different key: was the runtime or platform changed?"). `fs` carries
  // every blob-file operation (tests inject faults through it; nullptr means the real one) and
  // must outlive the Store. Removes files left by an interrupted write.
  // FailedPrecondition if another process has the store open; InvalidArgument for a bad key size;
  // DataLoss if the catalog is corrupt; file errors name the path.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, SecretBytes sealing_key,
                                             FileSystem* fs, StoreLimits limits = {});

  // ---- Principals ----------------------------------------------------------------------------

  // Registers `id` with a role. Idempotent for the same id and role (returns the existing
  // principal, keeping its first display name); AlreadyExists if the id is registered with the
  // other role. InvalidArgument for a malformed id or a display name that is longer than
  // kMaxDisplayNameSize or not printable ASCII. Audited ("principal.register").
  virtual Result<Principal> RegisterPrincipal(const std::string& id, Role role,
                                              const std::string& display_name) = 0;
  // NotFound if not registered.
  virtual Result<Principal> GetPrincipal(const std::string& id) = 0;

  // ---- Datasets ------------------------------------------------------------------------------

  // Begins (or resumes) the upload of a dataset named `name` for `owner_id` (a registered owner).
  // `container_header` is exactly the container's header bytes; `data_key` the 32-byte dataset
  // key, which must open the header (DataLoss "wrong key" / header altered otherwise).
  //  - If the owner has no dataset of that name: creates it (audited "dataset.create"), after the
  //    quota check: ResourceExhausted "owner X uses N of M bytes; ..." or "... N of M datasets".
  //  - If an incomplete dataset of that name has the same header and key: returns it unchanged,
  //    so the client resumes from acknowledged_through.
  //  - Otherwise AlreadyExists naming the dataset and what to do (delete it, or pick a name).
  // AlreadyExists too if another dataset anywhere already has this dataset id.
  // InvalidArgument for an empty or over-long name or a malformed header; NotFound /
  // PermissionDenied if owner_id is not a registered owner.
  virtual Result<DatasetRecord> BeginDataset(const std::string& owner_id, const std::string& name,
                                             ByteSpan container_header, ByteSpan data_key) = 0;

  // Stores chunks of dataset `dataset_id`: each the owner's AES-256-GCM chunk exactly as in the
  // container, stored as it is (it is already confidential and authenticated under the data key,
  // which only the runtime holds, sealed). The bytes must stay unchanged during the call (they
  // are checked, then written: pass memory the runtime owns, e.g. a parsed request).
  // Each chunk must have the size the header dictates, authenticate under the dataset key at its
  // index, and `last` must be true exactly for the final chunk (InvalidArgument / DataLoss
  // otherwise). In order, per chunk:
  //  - index <  acknowledged_through and the same bytes: nothing to do (an idempotent re-send);
  //    different bytes: AlreadyExists "chunk i is already stored with different contents".
  //  - index == the next index (acknowledged_through, then one more per new chunk of this call):
  //    new; the last chunk completes the dataset (audited "dataset.upload").
  //  - otherwise FailedPrecondition "dataset X expects chunk N next, got M; resume from chunk N".
  // All or nothing: if any chunk is refused, none of this call's chunks is stored. Durable when it
  // returns OK: the new chunks are written to the dataset's segment file and synced once, then
  // one catalog transaction moves acknowledged_through past them (group commit: the service
  // passes every chunk that arrived while the previous group was being synced).
  // ResourceExhausted on disk full (from the FileSystem), with nothing changed: retry later.
  // OutOfRange if an index is not below the header's chunk count; NotFound for an unknown dataset.
  struct ChunkToStore {
    uint64_t index = 0;
    bool last = false;
    ByteSpan sealed;  // ciphertext || 16-byte tag
    // True only if the caller (trusted runtime code) has itself authenticated exactly these
    // bytes under this dataset's data key at this index (dataset::DatasetReader::OpenChunk), as
    // Datasets.Upload does while receiving: the store then does not open the chunk a second
    // time. Every other check still applies.
    bool authenticated = false;
    // Optional: `sealed` followed by zeros up to AlignedBuffer::RoundUp(sealed.size()), at a
    // 4096-aligned address (AlignedBuffer::padded()). Given, the store writes it as it is,
    // O_DIRECT without a copy; otherwise it writes `sealed` and the zeros itself.
    ByteSpan padded;
  };
  virtual Result<UploadProgress> AppendChunks(const std::string& dataset_id,
                                              const std::vector<ChunkToStore>& chunks) = 0;
  // AppendChunks with one chunk.
  virtual Result<UploadProgress> AppendChunk(const std::string& dataset_id, uint64_t index,
                                             bool last, ByteSpan chunk) = 0;

  // Returns the owner's sealed chunk bytes as uploaded (open them with the data key), after
  // authenticating them under the data key at this index. NotFound if the dataset does not exist;
  // OutOfRange if index >= acknowledged_through; DataLoss naming the file if the segment is
  // missing, truncated, or holds other bytes than the acknowledged chunk (altered, swapped).
  // Each call takes the mutex and unseals the key: to read a whole dataset, OpenDatasetReader.
  virtual Result<Bytes> ReadChunk(const std::string& dataset_id, uint64_t index) = 0;
  // The dataset's 32-byte data key. NotFound; DataLoss if its sealed column fails to open.
  virtual Result<SecretBytes> GetDataKey(const std::string& dataset_id) = 0;
  // Opens `dataset_id` for reading its acknowledged chunks without the store's mutex (above): a
  // job's one pass over its data (jobs::LoadDataset). Takes the mutex only for this call: loads
  // the row and unseals the data key once. NotFound for an unknown dataset; DataLoss if its row
  // or key fails to open. An incomplete dataset opens too (record().complete says so); only its
  // acknowledged chunks can be read.
  virtual Result<std::unique_ptr<StoredDatasetReader>> OpenDatasetReader(
      const std::string& dataset_id) = 0;

  virtual Result<DatasetRecord> GetDataset(const std::string& dataset_id) = 0;
  // NotFound "owner X has no dataset named N".
  virtual Result<DatasetRecord> FindDataset(const std::string& owner_id,
                                            const std::string& name) = 0;
  // The owner's datasets, oldest first.
  virtual Result<std::vector<DatasetRecord>> ListDatasets(const std::string& owner_id) = 0;

  // Crypto-shreds the owner's dataset `name` (complete or not): the data key and sealed columns
  // are overwritten and deleted in one transaction with its audit record ("dataset.delete"),
  // then its blob files are removed and the WAL checkpointed and truncated. Returns the dataset
  // id. NotFound if the owner has no such dataset. If removing a file fails after the commit,
  // the dataset is still gone (and unreadable); the file is retried on the next Open. Open
  // StoredDatasetReaders of the dataset are marked (after the commit, before the files go) and
  // fail from their next chunk on with NotFound; the deletion does not wait for them.
  virtual Result<std::string> DeleteDataset(const std::string& owner_id,
                                            const std::string& name) = 0;

  virtual Result<OwnerUsage> GetUsage(const std::string& owner_id) = 0;

  // ---- Generic sealed blobs (recipes, models, jobs, checkpoints) -----------------------------

  // Creates or replaces (kind, id) with `data` and `metadata`, owned by `owner_id` (a registered
  // principal). Durable when it returns; a crash leaves the previous generation intact. If
  // `audit` is given, its record commits in the same transaction. InvalidArgument for a bad id
  // or oversized data/metadata; AlreadyExists if (kind, id) belongs to another principal;
  // ResourceExhausted for the owner's quota (clear message) or a full disk.
  virtual Result<BlobInfo> PutBlob(BlobKind kind, const std::string& id,
                                   const std::string& owner_id, ByteSpan data, ByteSpan metadata,
                                   const std::optional<AuditEvent>& audit = std::nullopt) = 0;
  // Replaces only the metadata (cheap: no blob file is written), e.g. a job's progress.
  virtual Result<BlobInfo> UpdateBlobMetadata(BlobKind kind, const std::string& id,
                                              ByteSpan metadata,
                                              const std::optional<AuditEvent>& audit =
                                                  std::nullopt) = 0;
  // NotFound "no model named X"; DataLoss if the blob file is missing, altered or swapped.
  virtual Result<SecretBytes> GetBlob(BlobKind kind, const std::string& id) = 0;
  virtual Result<BlobInfo> GetBlobInfo(BlobKind kind, const std::string& id) = 0;
  // Blobs of one kind, oldest first; only `owner_id`'s if given.
  virtual Result<std::vector<BlobInfo>> ListBlobs(
      BlobKind kind, const std::optional<std::string>& owner_id = std::nullopt) = 0;
  // Crypto-shreds (kind, id) as DeleteDataset does. NotFound if absent.
  virtual Status DeleteBlob(BlobKind kind, const std::string& id,
                            const std::optional<AuditEvent>& audit = std::nullopt) = 0;

  // ---- Model grants (store_grants.cc) --------------------------------------------------------
  // One row per (model, grantee). The row's ids are plaintext (the host sees who may query what,
  // as it sees who owns what); budget, usage and times are sealed and bound to the row, so a
  // grant the host inserts, copies to another row or edits fails to open (DataLoss) and gives no
  // access. The host can still delete a grant (denial only) or roll the directory back.

  // Creates the grant, or updates its budget (keeping `used`). The model must be a stored model
  // blob owned by owner_id (NotFound otherwise); the grantee must be a registered owner-role
  // principal other than the owner (NotFound / InvalidArgument / PermissionDenied). Every record
  // in `audit` commits in the same transaction.
  virtual Result<ModelGrant> PutGrant(const std::string& model_id, const std::string& owner_id,
                                      const std::string& grantee_id, uint64_t budget,
                                      const std::vector<AuditEvent>& audit) = 0;
  // NotFound if the grantee has no grant on the model.
  virtual Result<ModelGrant> GetGrant(const std::string& model_id,
                                      const std::string& grantee_id) = 0;
  // Grants on one model, oldest first.
  virtual Result<std::vector<ModelGrant>> ListGrants(const std::string& model_id) = 0;
  // Grants held by one grantee, oldest first.
  virtual Result<std::vector<ModelGrant>> ListGrantsTo(const std::string& grantee_id) = 0;
  // Removes one grant (NotFound if absent), with its audit records in the same transaction.
  virtual Status DeleteGrant(const std::string& model_id, const std::string& grantee_id,
                             const std::vector<AuditEvent>& audit) = 0;
  // Removes every grant on a model (before the model itself is deleted). OK if there were none.
  virtual Status DeleteGrants(const std::string& model_id) = 0;
  // Charges `count` queries to the grant: ResourceExhausted (nothing charged) if its budget
  // would be exceeded; NotFound if the grant is gone (revoked). The audit records commit with
  // the charge.
  virtual Result<ModelGrant> ChargeGrant(const std::string& model_id,
                                         const std::string& grantee_id, uint64_t count,
                                         const std::vector<AuditEvent>& audit) = 0;

  // ---- Audit ---------------------------------------------------------------------------------

  // Appends a record to `principal_id`'s chain (durable when it returns). InvalidArgument from
  // audit::ValidateAuditFields.
  virtual Result<audit::AuditRecord> AppendAudit(const AuditEvent& event) = 0;
  // The principal's records with sequence >= from_sequence, in order (empty if none). DataLoss
  // naming the sequence number if a stored record fails to open.
  virtual Result<std::vector<audit::AuditRecord>> ListAudit(const std::string& principal_id,
                                                            uint64_t from_sequence = 1) = 0;
};

}  // namespace chiron::store
