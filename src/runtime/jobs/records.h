// The runtime's records of recipes, jobs and models, kept as sealed metadata of the store's
// generic blobs (store::BlobKind kRecipe, kJob, kModel), encoded as JSON. The store seals and
// authenticates them; Decode* still checks every field, so a record written by an older or
// broken runtime fails with DataLoss naming the field instead of being half-read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chiron/recipe_types.h"
#include "runtime/jobs/node_dispatch.h"
#include "runtime/train/prediction_session.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::jobs {

// The principal that owns the recipes shipped with chirond (no key hashes to it: real principal
// ids are 64 hex digits).
inline constexpr char kBuiltinPrincipal[] = "chiron-builtin";

struct RecipeRecord {
  // Hex SHA-256 over "chiron-recipe-v1", provider id, name, version and the shared object:
  // the public commitment owners see.
  std::string id;
  std::string name;
  std::string version;
  std::string description;
  std::string provider_id;
  bool built_in = false;
  uint64_t size = 0;
  int64_t created_unix = 0;
  // What the runtime saw the recipe accept at registration (recipe_probe.h's
  // EncodeAcceptedSchemas, JSON); empty for a record stored before registration checked recipes.
  std::string accepted_schemas;
  bool schemas_from_provider = false;
};

// Values of chiron.v1.JobState / chiron.v1.FailureCategory.
enum class JobState : int { kQueued = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };
bool Finished(JobState state);

// What the job's provider may see of it (docs/provider-facts.md), chosen by the owner at
// StartTraining. Values of chiron.v1.ProviderView.
enum class ProviderView : int {
  kCoarse = 0,    // state, failure category, epochs and a coarse memory bucket, revealed only when
                  // the job's time budget has run out
  kDoneOnly = 1,  // queued, running, ended: nothing else, revealed likewise
};

struct EpochRecord {
  uint32_t epoch = 0;
  double train_loss = 0;
  double validation_loss = 0;
  double validation_accuracy = 0;
};

struct JobRecord {
  std::string id;
  std::string owner_id;
  std::string provider_id;  // the recipe's owner: the only provider who may see JobFacts
  std::string recipe_id;
  std::string dataset_id;
  std::string dataset_name;
  std::string model_name;
  JobState state = JobState::kQueued;
  int failure = 0;  // chiron.v1.FailureCategory
  uint32_t epochs_done = 0;
  uint32_t epochs_total = 0;
  uint64_t samples_done = 0;
  uint64_t samples_total = 0;  // training samples × epochs
  // Owner-only live progress: refreshed in memory every few batches while the job runs
  // (JobManager overlays it on the stored record), stored with the record at every save.
  uint64_t batches_done = 0;       // optimizer steps done in the whole job
  uint64_t batches_total = 0;      // batches per epoch × epochs
  uint64_t batches_per_epoch = 0;
  double samples_per_second = 0;   // training rate of the current run
  std::vector<EpochRecord> history;
  std::vector<double> per_class_accuracy;  // last validation
  std::vector<uint64_t> confusion;         // last validation, row-major true × predicted
  uint64_t seed = 0;
  double validation_fraction = 0.1;
  uint32_t epochs_requested = 0;  // 0: the recipe's own
  bool cancel_requested = false;
  int64_t created_unix = 0;
  int64_t finished_unix = 0;
  uint64_t elapsed_seconds = 0;     // running time over all attempts
  // ⌈log2(peak resident bytes)⌉ of the job's own workers, 0 if unknown.
  uint32_t peak_memory_log2 = 0;
  uint32_t attempts = 0;            // runs started (a restart of chirond adds one)
  // Added with the job's limits (records written before: 0 / coarse).
  int64_t started_unix = 0;           // when its first run started; 0 while queued
  uint64_t budget_seconds = 0;        // wall-clock limit of the whole job (the recipe's budget,
                                      // at most the operator's); 0 until the first run reads it
  uint64_t budget_memory_size = 0;    // resident bytes its worker may use, likewise
  ProviderView provider_view = ProviderView::kCoarse;
  // Distributed training (records written before: one node). `nodes` ranks in all; only peers
  // whose evidence verifies under node_policy (the owner's policy, JSON) receive a shard;
  // node_list: who trains it (set at every dispatch, rank 0 first).
  uint32_t nodes = 1;
  std::string node_policy;
  std::vector<JobNodeRecord> node_list;
  uint32_t dispatches = 0;
  uint32_t staleness = 0;  // asynchronous mode's bound (0: synchronous); fixed for the job  //
                           // times the job was handed to its nodes (successful dispatches)
};

struct ModelRecord {
  std::string id;  // store blob id: owner_id + "." + name
  std::string name;
  std::string owner_id;
  std::string job_id;
  std::string recipe_id;
  std::string dataset_id;
  dataset::DatasetSchema schema;  // of the training data (sample_count is informative)
  uint64_t output_size = 0;
  uint64_t queries_used = 0;  // by everyone: the owner and its grantees
  uint64_t query_budget = 0;
  double validation_accuracy = 0;
  int64_t created_unix = 0;
  // The recipe's output policy, read through the worker when the model was trained (records of
  // older builds: the default policy).
  chiron::OutputPolicy provider_output;
  // The owner's narrowing of it and its rate limit (`chiron model limit`).
  train::OutputLimits owner_output;
  uint32_t rate_per_minute = 0;  // queries (samples) per minute per querying principal; 0: none
};

Bytes EncodeRecipeRecord(const RecipeRecord& record);
Result<RecipeRecord> DecodeRecipeRecord(ByteSpan bytes);
Bytes EncodeJobRecord(const JobRecord& record);
Result<JobRecord> DecodeJobRecord(ByteSpan bytes);
Bytes EncodeModelRecord(const ModelRecord& record);
Result<ModelRecord> DecodeModelRecord(ByteSpan bytes);

// Model and recipe names: 1..60 characters of [A-Za-z0-9._-]. InvalidArgument saying so.
Status ValidateName(std::string_view what, std::string_view name);

// Seconds since the epoch (the records' clock).
int64_t NowUnix();

// Store blob id of an owner's model.
std::string ModelBlobId(const std::string& owner_id, const std::string& name);

}  // namespace chiron::jobs
