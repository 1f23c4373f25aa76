#include "runtime/jobs/dataset_loader.h"

#include <cstring>

#include "shared/dataset/container.h"

namespace chiron::jobs {

Result<LoadedDataset> LoadDataset(store::Store& store, const std::string& dataset_id) {
  CHIRON_ASSIGN_OR_RETURN(store::DatasetRecord record, store.GetDataset(dataset_id));
  if (!record.complete) {
    return FailedPreconditionError("dataset '" + record.name + "' is not completely uploaded (" +
                                   std::to_string(record.acknowledged_through) + " of " +
                                   std::to_string(record.chunk_count) +
                                   " chunks); resume the upload with `chiron dataset upload`");
  }
  CHIRON_ASSIGN_OR_RETURN(SecretBytes key, store.GetDataKey(dataset_id));
  CHIRON_ASSIGN_OR_RETURN(dataset::DatasetReader reader,
                          dataset::DatasetReader::Open(key.span(), record.header.encoded));
  const dataset::DatasetSchema& schema = reader.schema();
  LoadedDataset out;
  out.schema = schema;
  out.records = SecretBytes(schema.sample_count * schema.record_size());
  size_t offset = 0;
  for (uint64_t i = 0; i < record.chunk_count; ++i) {
    CHIRON_ASSIGN_OR_RETURN(Bytes sealed, store.ReadChunk(dataset_id, i));
    CHIRON_ASSIGN_OR_RETURN(SecretBytes plain, reader.OpenNextChunk(sealed));
    if (offset + plain.size() > out.records.size()) {
      return DataLossError("dataset " + dataset_id + ": chunk " + std::to_string(i) +
                           " holds more records than the header declares");
    }
    std::memcpy(out.records.data() + offset, plain.data(), plain.size());
    offset += plain.size();
  }
  CHIRON_RETURN_IF_ERROR(reader.Finish());
  if (offset != out.records.size()) {
    return DataLossError("dataset " + dataset_id + ": chunks hold " + std::to_string(offset) +
                         " bytes of records, the header declares " +
                         std::to_string(out.records.size()));
  }
  return out;
}

}  // namespace chiron::jobs
