#include "runtime/jobs/model_access.h"

#include <algorithm>

#include "runtime/jobs/dataset_loader.h"

namespace chiron::jobs {

using store::BlobKind;

ModelAccess::ModelAccess(store::Store* store, ModelAccessOptions options)
    : store_(store),
      options_(std::move(options)),
      limiter_(options_.clock
                   ? options_.clock
                   : RateLimiter::Clock([] { return std::chrono::steady_clock::now(); })),
      workers_(store, options_.workers) {}

Result<ModelRecord> ModelAccess::LoadModel(const std::string& owner_id, const std::string& name) {
  CHIRON_RETURN_IF_ERROR(ValidateName("model name", name));
  auto info = store_->GetBlobInfo(BlobKind::kModel, ModelBlobId(owner_id, name));
  if (!info.ok() || info->owner_id != owner_id) {
    return NotFoundError("you have no model '" + name + "': see `chiron model list`");
  }
  return DecodeModelRecord(info->metadata);
}

Result<std::vector<ModelRecord>> ModelAccess::ListModels(const std::string& owner_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs,
                          store_->ListBlobs(BlobKind::kModel, owner_id));
  std::vector<ModelRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(ModelRecord record, DecodeModelRecord(info.metadata));
    out.push_back(std::move(record));
  }
  return out;
}

Status ModelAccess::DeleteModel(const std::string& owner_id, const std::string& name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  // Grants first: a crash in between leaves a model nobody else may query (fail closed). Then
  // the blob: from then on no request can start a worker for the model (PredictionWorkers checks
  // the blob before it starts one). Then the workers: the ones started before the deletion are
  // stopped, after the requests using them finish.
  CHIRON_RETURN_IF_ERROR(store_->DeleteGrants(model.id));
  CHIRON_RETURN_IF_ERROR(
      store_->DeleteBlob(BlobKind::kModel, model.id,
                         store::AuditEvent{owner_id, "model.delete", name}));
  workers_.Evict(model.id);
  limiter_.Forget(model.id + "/");
  return Status::Ok();
}

Result<ModelRecord> ModelAccess::SetModelLimits(const std::string& owner_id,
                                               const std::string& name,
                                               const ModelLimitsUpdate& update) {
  std::lock_guard<std::mutex> usage(usage_mutex_);
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  if (update.query_budget.has_value()) {
    if (*update.query_budget > options_.max_query_budget) {
      return InvalidArgumentError("a model's query budget can be at most " +
                                  std::to_string(options_.max_query_budget) +
                                  " on this chirond (its --query-budget)");
    }
    model.query_budget = *update.query_budget;
  }
  if (update.rate_per_minute.has_value()) model.rate_per_minute = *update.rate_per_minute;
  if (update.output.has_value()) {
    const train::OutputLimits& o = *update.output;
    if (o.decimals > static_cast<int32_t>(chiron::kMaxOutputDecimals) ||
        o.max_top_k > chiron::kMaxOutputTopK) {
      return InvalidArgumentError("output limits: decimals go up to " +
                                  std::to_string(chiron::kMaxOutputDecimals) + ", top-k up to " +
                                  std::to_string(chiron::kMaxOutputTopK));
    }
    model.owner_output = o;
  }
  std::string subject = name + " budget=" + std::to_string(model.query_budget) +
                        " per_minute=" + std::to_string(model.rate_per_minute) +
                        " label_only=" + (model.owner_output.label_only ? "1" : "0") +
                        " top_k=" + std::to_string(model.owner_output.max_top_k) +
                        " decimals=" + std::to_string(model.owner_output.decimals);
  CHIRON_RETURN_IF_ERROR(store_
                             ->UpdateBlobMetadata(BlobKind::kModel, model.id,
                                                  EncodeModelRecord(model),
                                                  store::AuditEvent{owner_id, "model.limit",
                                                                    subject})
                             .status());
  return model;
}

Result<store::ModelGrant> ModelAccess::GrantModel(const std::string& owner_id,
                                                 const std::string& name,
                                                 const std::string& grantee_id,
                                                 uint64_t budget) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  if (grantee_id == owner_id) {
    return InvalidArgumentError("you own model '" + name + "': you need no grant on it");
  }
  const std::string budget_text = budget == 0 ? "model" : std::to_string(budget);
  return store_->PutGrant(
      model.id, owner_id, grantee_id, budget,
      {store::AuditEvent{owner_id, "model.grant",
                         name + " to=" + grantee_id + " budget=" + budget_text},
       store::AuditEvent{grantee_id, "model.grant",
                         "model=" + model.id + " from=" + owner_id + " budget=" + budget_text}});
}

Status ModelAccess::RevokeModel(const std::string& owner_id, const std::string& name,
                               const std::string& grantee_id) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  Status deleted = store_->DeleteGrant(
      model.id, grantee_id,
      {store::AuditEvent{owner_id, "model.revoke", name + " from=" + grantee_id},
       store::AuditEvent{grantee_id, "model.revoke", "model=" + model.id + " by=" + owner_id}});
  if (deleted.code() == StatusCode::kNotFound) {
    return NotFoundError("principal " + grantee_id + " has no grant on model '" + name +
                         "': `chiron model show " + name + "` lists its grants");
  }
  CHIRON_RETURN_IF_ERROR(deleted);
  limiter_.Forget(model.id + "/" + grantee_id);
  return Status::Ok();
}

Result<std::vector<store::ModelGrant>> ModelAccess::ListModelGrants(const std::string& owner_id,
                                                                   const std::string& name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, name));
  return store_->ListGrants(model.id);
}

Result<std::vector<SharedModel>> ModelAccess::ListSharedModels(const std::string& grantee_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::ModelGrant> grants,
                          store_->ListGrantsTo(grantee_id));
  std::vector<SharedModel> out;
  for (store::ModelGrant& grant : grants) {
    auto info = store_->GetBlobInfo(BlobKind::kModel, grant.model_id);
    if (!info.ok() || info->owner_id != grant.owner_id) continue;  // deleted meanwhile
    CHIRON_ASSIGN_OR_RETURN(ModelRecord model, DecodeModelRecord(info->metadata));
    out.push_back(SharedModel{std::move(model), std::move(grant)});
  }
  return out;
}

Result<PredictOutput> ModelAccess::Predict(const std::string& caller_id,
                                          const std::string& owner_id,
                                          const std::string& model_name,
                                          const std::vector<std::string>& samples,
                                          uint32_t top_k, std::chrono::milliseconds* retry_after) {
  if (retry_after != nullptr) *retry_after = std::chrono::milliseconds(0);
  const std::string& owner = owner_id.empty() ? caller_id : owner_id;
  const bool grantee = owner != caller_id;
  auto found = LoadModel(owner, model_name);
  if (grantee) {
    // Without a grant, a model is indistinguishable from one that does not exist: a caller
    // probing other owners' model names learns nothing.
    const std::string not_shared = "no model '" + model_name + "' of principal " + owner +
                                   " is shared with you: `chiron model shared` lists those "
                                   "that are";
    if (!found.ok()) return NotFoundError(not_shared);
    auto grant = store_->GetGrant(found->id, caller_id);
    // A grant older than the model was made on another model of that name (deleting a model
    // deletes its grants; this holds even if a crash left one): it never carries over.
    if (!grant.ok() || grant->owner_id != owner || grant->created_unix < found->created_unix) {
      return NotFoundError(not_shared);
    }
  }
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, std::move(found));
  if (samples.empty() || samples.size() > options_.max_predict_batch) {
    return InvalidArgumentError("send 1.." + std::to_string(options_.max_predict_batch) +
                                " samples per request");
  }
  const uint64_t sample_size = model.schema.sample_size();
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].size() != sample_size) {
      return InvalidArgumentError("sample " + std::to_string(i) + " is " +
                                  std::to_string(samples[i].size()) + " bytes; model '" +
                                  model_name + "' takes " + model.schema.Describe() + " (" +
                                  std::to_string(sample_size) + " bytes)");
    }
  }
  // The owner's plaintext samples, in one buffer that wipes itself on every path out.
  SecretBytes inputs(samples.size() * sample_size);
  for (size_t i = 0; i < samples.size(); ++i) {
    std::copy(samples[i].begin(), samples[i].end(), inputs.data() + i * sample_size);
  }
  CHIRON_RETURN_IF_ERROR(limiter_.Take(model.id + "/" + caller_id, model.rate_per_minute,
                                       samples.size(), "model '" + model_name + "'",
                                       retry_after));
  PredictOutput output;
  {
    // Count the queries before answering (fail closed: a crash after the answer cannot refund).
    std::lock_guard<std::mutex> usage(usage_mutex_);
    CHIRON_ASSIGN_OR_RETURN(model, LoadModel(owner, model_name));  // fresh counters
    if (model.queries_used + samples.size() > model.query_budget) {
      const uint64_t left =
          model.query_budget > model.queries_used ? model.query_budget - model.queries_used : 0;
      if (left == 0) {
        return ResourceExhaustedError("model '" + model_name + "' has used all " +
                                      std::to_string(model.query_budget) +
                                      " queries of its budget: its owner can raise it with "
                                      "`chiron model limit " + model_name + " --budget N`");
      }
      return ResourceExhaustedError(
          "model '" + model_name + "' has " + std::to_string(left) + " of its " +
          std::to_string(model.query_budget) + " queries left and this request asks for " +
          std::to_string(samples.size()) + ": send at most " + std::to_string(left) +
          " samples, or have its owner raise the budget (`chiron model limit " + model_name +
          " --budget N`)");
    }
    const std::string count = std::to_string(samples.size());
    std::optional<store::AuditEvent> owner_audit =
        store::AuditEvent{owner, "model.predict", model_name + " samples=" + count};
    if (grantee) {
      // The grant is charged (with both audit records) before the model's counter: if the
      // grant was revoked meanwhile or its budget is spent, nothing is charged anywhere.
      auto charged = store_->ChargeGrant(
          model.id, caller_id, samples.size(),
          {store::AuditEvent{owner, "model.predict",
                             model_name + " samples=" + count + " by=" + caller_id},
           store::AuditEvent{caller_id, "model.predict",
                             "model=" + model.id + " samples=" + count}});
      if (charged.status().code() == StatusCode::kNotFound) {
        return NotFoundError("no model '" + model_name + "' of principal " + owner +
                             " is shared with you");
      }
      CHIRON_RETURN_IF_ERROR(charged.status());
      output.queries_used = charged->used;
      output.query_budget = charged->budget;
      owner_audit.reset();
    }
    model.queries_used += samples.size();
    CHIRON_RETURN_IF_ERROR(store_
                               ->UpdateBlobMetadata(BlobKind::kModel, model.id,
                                                    EncodeModelRecord(model), owner_audit)
                               .status());
    if (!grantee) {
      output.queries_used = model.queries_used;
      output.query_budget = model.query_budget;
    }
  }
  output.policy = train::EffectiveOutputPolicy(model.provider_output, model.owner_output, top_k,
                                               model.output_size);
  Status answered = workers_.Run(model, caller_id, [&](train::PredictionSession& session) {
    CHIRON_ASSIGN_OR_RETURN(std::vector<float> logits,
                            session.Predict(inputs.span(), samples.size()));
    const uint64_t width = session.output_size();
    for (size_t i = 0; i < samples.size(); ++i) {
      output.predictions.push_back(train::ApplyOutputPolicy(
          std::span<const float>(logits).subspan(i * width, width), output.policy));
    }
    return Status::Ok();
  });
  CHIRON_RETURN_IF_ERROR(answered);
  return output;
}

Result<train::ClassificationReport> ModelAccess::Evaluate(const std::string& owner_id,
                                                         const std::string& model_name,
                                                         const std::string& dataset_name) {
  CHIRON_ASSIGN_OR_RETURN(ModelRecord model, LoadModel(owner_id, model_name));
  CHIRON_ASSIGN_OR_RETURN(store::DatasetRecord dataset,
                          store_->FindDataset(owner_id, dataset_name));
  CHIRON_ASSIGN_OR_RETURN(LoadedDataset data, LoadDataset(*store_, dataset.id));
  if (data.schema.shape != model.schema.shape ||
      data.schema.element_type != model.schema.element_type ||
      data.schema.class_count() != model.schema.class_count()) {
    return InvalidArgumentError("dataset '" + dataset_name + "' (" + data.schema.Describe() +
                                ") does not match model '" + model_name + "' (" +
                                model.schema.Describe() + ")");
  }
  CHIRON_ASSIGN_OR_RETURN(train::MetricsAccumulator metrics,
                          train::MetricsAccumulator::Create(
                              static_cast<int64_t>(model.schema.class_count())));
  const uint64_t record_size = data.schema.record_size();
  const uint64_t label_size = dataset::LabelSize(data.schema.label_type);
  const uint64_t count = data.schema.sample_count;
  CHIRON_RETURN_IF_ERROR(workers_.Run(model, owner_id, [&](train::PredictionSession& session) {
    const uint64_t sample_size = record_size - label_size;
    const uint64_t batch = options_.max_predict_batch;
    SecretBytes inputs(batch * sample_size);  // plaintext samples: wiped on every path out
    SecretVector<int64_t> labels;  // the owner's labels: wiped like the samples
    for (uint64_t first = 0; first < count; first += batch) {
      const uint64_t n = std::min<uint64_t>(batch, count - first);
      labels.clear();
      for (uint64_t i = 0; i < n; ++i) {
        const uint8_t* rec = data.records.data() + (first + i) * record_size;
        labels.push_back(label_size == 1 ? rec[0] : (rec[0] | (rec[1] << 8)));
        std::copy(rec + label_size, rec + record_size, inputs.data() + i * sample_size);
      }
      CHIRON_ASSIGN_OR_RETURN(std::vector<float> logits,
                              session.Predict(inputs.span().subspan(0, n * sample_size), n));
      CHIRON_RETURN_IF_ERROR(metrics.Add(logits, labels));
    }
    return Status::Ok();
  }));
  CHIRON_RETURN_IF_ERROR(store_
                             ->AppendAudit(store::AuditEvent{owner_id, "model.evaluate",
                                                             model_name + " dataset=" +
                                                                 dataset.id})
                             .status());
  return metrics.Report();
}

}  // namespace chiron::jobs
