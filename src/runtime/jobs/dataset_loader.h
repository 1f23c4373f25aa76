// Decrypting an uploaded dataset inside the runtime for a job: every chunk is read from the
// sealed store, opened with the dataset's key (authenticating index, last flag and dataset id)
// and appended to one buffer of records (label || sample), ready for the sandbox's input arena.
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

// FailedPrecondition if the upload is not complete ("finish the upload first"); DataLoss if a
// chunk fails authentication.
Result<LoadedDataset> LoadDataset(store::Store& store, const std::string& dataset_id);

}  // namespace chiron::jobs
