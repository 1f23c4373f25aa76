// Store: reading a whole dataset for a job without the store's mutex (StoredDatasetReader in
// store.h; docs/store.md, "Reading a dataset for a job").
#include <utility>

#include "runtime/store/store_impl.h"

namespace chiron::store {
namespace {

class StoredDatasetReaderImpl final : public StoredDatasetReader {
 public:
  StoredDatasetReaderImpl(FileSystem* fs, std::string segment_path, DatasetRecord record,
                          dataset::DatasetReader reader, std::shared_ptr<std::atomic<bool>> deleted)
      : fs_(fs),
        path_(std::move(segment_path)),
        record_(std::move(record)),
        reader_(std::move(reader)),
        deleted_(std::move(deleted)) {}

  const DatasetRecord& record() const override { return record_; }

  Status OpenChunkInto(uint64_t index, MutableByteSpan plaintext) override {
    Status status = Open(index, plaintext);
    if (!status.ok()) SecureZero(plaintext.data(), plaintext.size());
    return status;
  }

 private:
  std::string What(uint64_t index) const {
    return "dataset " + record_.id + " chunk " + std::to_string(index);
  }

  // NotFound once the dataset is deleted; destroys the key (the reader's cipher context) then.
  Status CheckNotDeleted() {
    if (reader_.has_value() && !deleted_->load()) return Status::Ok();
    reader_.reset();
    return NotFoundError("dataset " + record_.id +
                         " was deleted while it was being read; nothing read from it is kept");
  }

  Status Open(uint64_t index, MutableByteSpan plaintext) {
    CHIRON_RETURN_IF_ERROR(CheckNotDeleted());
    const dataset::ContainerHeader& header = record_.header;
    if (index >= record_.acknowledged_through) {
      return OutOfRangeError(
          "dataset " + record_.id + " has " + std::to_string(record_.acknowledged_through) +
          " chunks stored; chunk " + std::to_string(index) + " is not one of them");
    }
    if (plaintext.size() != header.plaintext_chunk_size(index)) {
      return InvalidArgumentError(What(index) + ": the plaintext buffer has " +
                                  std::to_string(plaintext.size()) + " bytes, not " +
                                  std::to_string(header.plaintext_chunk_size(index)));
    }
    sealed_.resize(header.sealed_chunk_size(index));  // one slot at most: allocated once
    Status read = fs_->ReadAtInto(path_, SegmentOffset(header, index), sealed_);
    // Checked before the read's verdict: a segment that vanished (or was re-created under the
    // same id) after a deletion is the deletion, not damage.
    CHIRON_RETURN_IF_ERROR(CheckNotDeleted());
    if (!read.ok()) {
      if (read.code() == StatusCode::kNotFound || read.code() == StatusCode::kOutOfRange) {
        return DataLossError("store: the segment file of " + What(index) + " ('" + path_ +
                             "') is missing or shorter than the catalog says (deleted or "
                             "truncated by the host?)");
      }
      return read;
    }
    // One AES-256-GCM pass authenticates the chunk (its tag binds dataset id, index and last
    // flag) and decrypts it into the caller's buffer; on failure the buffer holds zeros.
    Status opened = reader_->OpenChunkInto(index, sealed_, plaintext);
    if (!opened.ok()) {
      if (opened.code() == StatusCode::kDataLoss) {
        return DataLossError("store: the segment file of " + What(index) + " ('" + path_ +
                             "') does not hold the chunk that was acknowledged (altered, "
                             "swapped with another file, or replaced): " +
                             opened.message());
      }
      return opened;
    }
    // A deletion during the decryption: the plaintext is not handed out (the caller's buffer is
    // zeroed by OpenChunkInto).
    return CheckNotDeleted();
  }

  FileSystem* const fs_;
  const std::string path_;
  const DatasetRecord record_;
  std::optional<dataset::DatasetReader> reader_;  // holds the data key; reset once deleted
  const std::shared_ptr<std::atomic<bool>> deleted_;
  Bytes sealed_;  // the chunk being opened (ciphertext: nothing to wipe)
};

}  // namespace

Result<std::unique_ptr<StoredDatasetReader>> StoreImpl::OpenDatasetReader(
    const std::string& dataset_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<DatasetRow> row, LoadDatasetById(dataset_id));
  if (!row.has_value()) return NotFoundError("no dataset with id " + dataset_id);
  // The key is unsealed once, here; the reader's cipher context keeps the only copy.
  CHIRON_ASSIGN_OR_RETURN(SecretBytes data_key, UnsealDataKey(*row));
  CHIRON_ASSIGN_OR_RETURN(
      dataset::DatasetReader reader,
      dataset::DatasetReader::Open(data_key.span(), row->record.header.encoded));
  // The deletion mark, shared with the other open readers of this dataset.
  for (auto it = reader_marks_.begin(); it != reader_marks_.end();) {
    it = it->second.expired() ? reader_marks_.erase(it) : std::next(it);
  }
  std::shared_ptr<std::atomic<bool>> mark = reader_marks_[dataset_id].lock();
  if (mark == nullptr) {
    mark = std::make_shared<std::atomic<bool>>(false);
    reader_marks_[dataset_id] = mark;
  }
  return std::unique_ptr<StoredDatasetReader>(
      new StoredDatasetReaderImpl(fs_, BlobPath(SegmentFileName(dataset_id)),
                                  std::move(row->record), std::move(reader), std::move(mark)));
}

void StoreImpl::MarkReadersDeleted(const std::string& dataset_id) {
  auto it = reader_marks_.find(dataset_id);
  if (it == reader_marks_.end()) return;
  if (std::shared_ptr<std::atomic<bool>> mark = it->second.lock()) mark->store(true);
  reader_marks_.erase(it);
}

}  // namespace chiron::store
