// StoreImpl: the Store behind store.h (internal to chiron_store; include store.h instead).
//
// Split by responsibility: store.cc opens the catalog, recovers after a crash and holds the
// principal, audit and quota code; store_datasets.cc the datasets and their chunks;
// store_dataset_reader.cc reading a whole dataset for a job without the mutex;
// store_blobs.cc the generic sealed blobs; store_grants.cc the owners' grants on models. The catalog schema and sealing rules are in
// docs/store.md.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/store/sealed.h"
#include "runtime/store/sqlite.h"
#include "runtime/store/store.h"

namespace chiron::store {

class StoreImpl final : public Store {
 public:
  StoreImpl(std::string dir, FileSystem* fs, StoreLimits limits, SealingKeys keys,
            std::unique_ptr<Database> db, int lock_fd);
  ~StoreImpl() override;

  // Creates the schema or checks the existing one and the sealing key, then removes files that
  // no committed row refers to.
  Status Initialise();

  Result<Principal> RegisterPrincipal(const std::string& id, Role role,
                                      const std::string& display_name) override;
  Result<Principal> GetPrincipal(const std::string& id) override;

  Result<DatasetRecord> BeginDataset(const std::string& owner_id, const std::string& name,
                                     ByteSpan container_header, ByteSpan data_key) override;
  Result<UploadProgress> AppendChunks(const std::string& dataset_id,
                                      const std::vector<ChunkToStore>& chunks) override;
  Result<UploadProgress> AppendChunk(const std::string& dataset_id, uint64_t index, bool last,
                                     ByteSpan chunk) override;
  Result<Bytes> ReadChunk(const std::string& dataset_id, uint64_t index) override;
  Result<SecretBytes> GetDataKey(const std::string& dataset_id) override;
  Result<std::unique_ptr<StoredDatasetReader>> OpenDatasetReader(
      const std::string& dataset_id) override;
  Result<DatasetRecord> GetDataset(const std::string& dataset_id) override;
  Result<DatasetRecord> FindDataset(const std::string& owner_id, const std::string& name) override;
  Result<std::vector<DatasetRecord>> ListDatasets(const std::string& owner_id) override;
  Result<std::string> DeleteDataset(const std::string& owner_id, const std::string& name) override;
  Result<OwnerUsage> GetUsage(const std::string& owner_id) override;

  Result<BlobInfo> PutBlob(BlobKind kind, const std::string& id, const std::string& owner_id,
                           ByteSpan data, ByteSpan metadata,
                           const std::optional<AuditEvent>& audit) override;
  Result<BlobInfo> UpdateBlobMetadata(BlobKind kind, const std::string& id, ByteSpan metadata,
                                      const std::optional<AuditEvent>& audit) override;
  Result<SecretBytes> GetBlob(BlobKind kind, const std::string& id) override;
  Result<BlobInfo> GetBlobInfo(BlobKind kind, const std::string& id) override;
  Result<std::vector<BlobInfo>> ListBlobs(BlobKind kind,
                                          const std::optional<std::string>& owner_id) override;
  Status DeleteBlob(BlobKind kind, const std::string& id,
                    const std::optional<AuditEvent>& audit) override;

  Result<ModelGrant> PutGrant(const std::string& model_id, const std::string& owner_id,
                              const std::string& grantee_id, uint64_t budget,
                              const std::vector<AuditEvent>& audit) override;
  Result<ModelGrant> GetGrant(const std::string& model_id, const std::string& grantee_id) override;
  Result<std::vector<ModelGrant>> ListGrants(const std::string& model_id) override;
  Result<std::vector<ModelGrant>> ListGrantsTo(const std::string& grantee_id) override;
  Status DeleteGrant(const std::string& model_id, const std::string& grantee_id,
                     const std::vector<AuditEvent>& audit) override;
  Status DeleteGrants(const std::string& model_id) override;
  Result<ModelGrant> ChargeGrant(const std::string& model_id, const std::string& grantee_id,
                                 uint64_t count, const std::vector<AuditEvent>& audit) override;

  Result<audit::AuditRecord> AppendAudit(const AuditEvent& event) override;
  Result<std::vector<audit::AuditRecord>> ListAudit(const std::string& principal_id,
                                                    uint64_t from_sequence) override;

 private:
  // ---- shared helpers (store.cc); callers hold mu_ ----
  static int64_t Now();
  Result<Principal> GetPrincipalLocked(const std::string& id);
  // Appends to the event's chain; the caller's open transaction commits it.
  Result<audit::AuditRecord> AppendAuditInTransaction(const AuditEvent& event);
  Result<OwnerUsage> UsageLocked(const std::string& owner_id);
  // ResourceExhausted with the quota message if adding `extra_bytes` (and `extra_datasets`)
  // would exceed the owner's limits.
  Status CheckQuota(const std::string& owner_id, uint64_t extra_bytes, uint64_t extra_datasets);
  std::string BlobPath(const std::string& file_name) const;
  Status WriteBlobFile(const std::string& file_name, ByteSpan sealed, std::string_view what);
  // Reads a blob file and checks it against the SHA-256 pinned in its catalog row.
  Result<Bytes> ReadBlobFile(const std::string& file_name, uint64_t max_size,
                             ByteSpan expected_digest, std::string_view what);
  // Best effort: removes files after a committed delete (the next Open retries what fails).
  void RemoveBlobFiles(const std::vector<std::string>& file_names);
  // Removes files in blobs/ that no committed row refers to.
  Status CollectGarbage();
  // Checkpoints and truncates the WAL after a shredding delete.
  void ScrubWal();

  // ---- datasets (store_datasets.cc) ----
  struct DatasetRow {
    DatasetRecord record;
    Bytes sealed_data_key;
  };
  Result<Bytes> NameTag(const std::string& owner_id, const std::string& name);
  Result<DatasetRow> LoadDataset(Statement& stmt);
  Result<std::optional<DatasetRow>> LoadDatasetById(const std::string& dataset_id);
  Result<std::optional<DatasetRow>> LoadDatasetByName(const std::string& owner_id,
                                                      const std::string& name);
  Result<SecretBytes> UnsealDataKey(const DatasetRow& row);
  // ---- dataset readers (store_dataset_reader.cc); callers hold mu_ ----
  // Raises the deletion mark that open readers of `dataset_id` share, before its files go.
  void MarkReadersDeleted(const std::string& dataset_id);

  // ---- grants (store_grants.cc) ----
  // Creates the grants table if missing (stores created before grants existed gain it).
  Status CreateGrantsSchema();
  Result<std::optional<ModelGrant>> LoadGrant(const std::string& model_id,
                                              const std::string& grantee_id);
  Result<std::vector<ModelGrant>> LoadGrants(std::string_view where, const std::string& value);
  Status StoreGrant(const ModelGrant& grant);

  // ---- blobs (store_blobs.cc) ----
  struct BlobRow;
  Result<std::optional<BlobRow>> LoadBlob(BlobKind kind, const std::string& id);
  Result<BlobRow> LoadBlobRow(Statement& stmt);

  const std::string dir_;
  const std::string blobs_dir_;
  FileSystem* const fs_;
  const StoreLimits limits_;
  const SealingKeys keys_;
  std::mutex mu_;
  std::unique_ptr<Database> db_;
  // Guarded by mu_: per dataset, the deletion mark its open StoredDatasetReaders share (held
  // weakly: an entry whose readers are all gone expires and is pruned when the next is opened).
  std::map<std::string, std::weak_ptr<std::atomic<bool>>> reader_marks_;
  int lock_fd_;
};

// File names inside blobs/ (docs/store.md, "Files").
std::string SegmentFileName(std::string_view dataset_id);
// Where chunk `index` lives in its dataset's segment file: slot `index`, each slot the largest
// sealed chunk rounded up to 4096 bytes (zeros after the chunk), so that every chunk starts at an
// aligned offset and a group of received chunks goes to disk with O_DIRECT, uncopied.
uint64_t SegmentSlotSize(const dataset::ContainerHeader& header);
uint64_t SegmentOffset(const dataset::ContainerHeader& header, uint64_t index);
std::string BlobFileName(BlobKind kind, std::string_view id, uint64_t generation);
// 1..kMaxIdSize characters of [A-Za-z0-9._-].
bool IsValidId(std::string_view id);
// InvalidArgument unless printable ASCII of 1..max_size bytes.
Status CheckPrintable(std::string_view value, size_t max_size, std::string_view what);
// Row names bound into the AAD of sealed values.
std::string DatasetRowName(std::string_view owner_id, std::string_view dataset_id);
std::string BlobRowName(BlobKind kind, std::string_view id, std::string_view owner_id);

}  // namespace chiron::store
