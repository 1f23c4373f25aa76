#include "runtime/jobs/dataset_loader.h"

#include <memory>

namespace chiron::jobs {

Result<LoadedDataset> LoadDataset(store::Store& store, const std::string& dataset_id) {
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<store::StoredDatasetReader> reader,
                          store.OpenDatasetReader(dataset_id));
  const store::DatasetRecord& record = reader->record();
  if (!record.complete) {
    return FailedPreconditionError("dataset '" + record.name + "' is not completely uploaded (" +
                                   std::to_string(record.acknowledged_through) + " of " +
                                   std::to_string(record.chunk_count) +
                                   " chunks); resume the upload with `chiron dataset upload`");
  }
  const dataset::ContainerHeader& header = record.header;
  LoadedDataset out;
  out.schema = header.schema;
  out.records = SecretBytes(out.schema.sample_count * out.schema.record_size());
  // Each chunk is decrypted in place into its records: no other copy of the plaintext exists.
  uint64_t offset = 0;
  for (uint64_t i = 0; i < record.chunk_count; ++i) {
    const uint64_t size = header.plaintext_chunk_size(i);
    if (size > out.records.size() - offset) {
      return DataLossError("dataset " + dataset_id + ": chunk " + std::to_string(i) +
                           " holds more records than the header declares");
    }
    CHIRON_RETURN_IF_ERROR(
        reader->OpenChunkInto(i, out.records.mutable_span().subspan(offset, size)));
    offset += size;
  }
  if (offset != out.records.size()) {
    return DataLossError("dataset " + dataset_id + ": chunks hold " + std::to_string(offset) +
                         " bytes of records, the header declares " +
                         std::to_string(out.records.size()));
  }
  return out;
}

}  // namespace chiron::jobs
