// ModelAccess: who may use a trained model, and how (docs/predictions.md).
//
// A model (sealed parameters and buffers, store::BlobKind::kModel, left by a training job) can
// be queried by its owner and by the principals the owner grants access (store grants), through
// Predict: the provider's output policy narrowed by the owner's limits (top-k, rounding, label
// only), the model's query budget (and a grant's), and a per-principal rate limit
// (RateLimiter). The owner alone may Evaluate (aggregate metrics on one of its labelled
// datasets), change limits, grant, revoke and delete. Nobody can download a model's parameters:
// no method returns them. Predictions run in sandboxed workers that each serve one principal
// (PredictionWorkers: request isolation).
//
// Every lookup is scoped to the calling principal: another owner's model is reported as not
// found, exactly like a model that does not exist.
//
// Thread safety: all methods are safe to call concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/jobs/prediction_workers.h"
#include "runtime/jobs/rate_limiter.h"
#include "runtime/jobs/records.h"
#include "runtime/store/store.h"
#include "runtime/train/metrics.h"

namespace chiron::jobs {

struct ModelAccessOptions {
  PredictionWorkersOptions workers;
  uint64_t max_query_budget = 100000;  // the most a model's query budget may be set to
  uint32_t max_predict_batch = 256;
  // The rate limiter's clock (tests inject one); null: std::chrono::steady_clock.
  RateLimiter::Clock clock;
};

// What `chiron model limit` changes; unset fields stay as they are.
struct ModelLimitsUpdate {
  std::optional<uint64_t> query_budget;     // at most ModelAccessOptions::max_query_budget
  std::optional<uint32_t> rate_per_minute;  // 0: no rate limit
  std::optional<train::OutputLimits> output;
};

// A model shared with a grantee: what the grantee may know of it, and its grant.
struct SharedModel {
  ModelRecord model;
  store::ModelGrant grant;
};

struct PredictOutput {
  std::vector<std::vector<train::ClassScore>> predictions;
  train::OutputPolicy policy;  // what was applied (label_only: no probabilities may be sent)
  // The owner: the model's use and budget. A grantee: its grant's (budget 0: no grant budget).
  uint64_t queries_used = 0;
  uint64_t query_budget = 0;
};

class ModelAccess {
 public:
  ModelAccess(store::Store* store, ModelAccessOptions options);
  void Start() { workers_.Start(); }
  void Stop() { workers_.Stop(); }

  Result<std::vector<ModelRecord>> ListModels(const std::string& owner_id);
  // Deletes the model's grants, then its sealed blob, then stops every worker that holds it:
  // when it returns, no Predict can be answered by the model and no worker holds its parameters.
  Status DeleteModel(const std::string& owner_id, const std::string& name);
  // Predictions from `owner_id`'s model (empty owner_id: the caller's own). A caller other than
  // the owner needs a grant; without one the model is reported NotFound, exactly as a model
  // that does not exist. ResourceExhausted for a budget (model or grant) too small for the
  // request, or the rate limit (the message says when to retry, and `*retry_after`, when given,
  // is set to the rate limiter's wait: RateLimiter::Take; 0 for every other outcome). Every
  // accepted query is audited in the owner's chain, and a grantee's also in its own.
  Result<PredictOutput> Predict(const std::string& caller_id, const std::string& owner_id,
                                const std::string& model_name,
                                const std::vector<std::string>& samples, uint32_t top_k,
                                std::chrono::milliseconds* retry_after = nullptr);
  // Owner only (the model is looked up among the caller's own).
  Result<ModelRecord> SetModelLimits(const std::string& owner_id, const std::string& name,
                                     const ModelLimitsUpdate& update);
  Result<store::ModelGrant> GrantModel(const std::string& owner_id, const std::string& name,
                                       const std::string& grantee_id, uint64_t budget);
  Status RevokeModel(const std::string& owner_id, const std::string& name,
                     const std::string& grantee_id);
  Result<std::vector<store::ModelGrant>> ListModelGrants(const std::string& owner_id,
                                                         const std::string& name);
  // Models other owners granted to `grantee_id` (grants whose model is gone are skipped).
  Result<std::vector<SharedModel>> ListSharedModels(const std::string& grantee_id);
  Result<train::ClassificationReport> Evaluate(const std::string& owner_id,
                                               const std::string& model_name,
                                               const std::string& dataset_name);

  uint32_t max_predict_batch() const { return options_.max_predict_batch; }
  PredictionWorkers& workers() { return workers_; }  // tests

 private:
  Result<ModelRecord> LoadModel(const std::string& owner_id, const std::string& name);

  store::Store* store_;
  ModelAccessOptions options_;
  RateLimiter limiter_;
  // Serialises the read-check-update of models' query counters (and grants' charges).
  std::mutex usage_mutex_;
  PredictionWorkers workers_;
};

}  // namespace chiron::jobs
