// Decrypting an uploaded dataset inside the runtime for a job, in one pass: the store's
// StoredDatasetReader (store.h) unseals the dataset's key once and, without holding the store's
// lock, reads every chunk from the segment file and authenticates and decrypts it (one
// AES-256-GCM pass) straight into one buffer of records (label || sample), ready for the
// sandbox's input arena. Nothing else holds the plaintext: a failed load leaves nothing behind.
#pragma once

#include <string>

#include "runtime/store/store.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::jobs {

struct LoadedDataset {
  dataset::DatasetSchema schema;
  SecretBytes records;  // schema.sample_count × schema.record_size() bytes; zeroed on release
};

// Loads the whole of a complete dataset. Errors: FailedPrecondition if the upload is not complete
// ("resume the upload"); NotFound if the dataset does not exist or is deleted during the load;
// DataLoss naming the chunk index and the segment file if a chunk is missing, short or fails
// authentication; InvalidArgument if a record's label is outside the schema's classes.
// Thread safety: any number of loads may run at once, with each other and with uploads.
Result<LoadedDataset> LoadDataset(store::Store& store, const std::string& dataset_id);

}  // namespace chiron::jobs
