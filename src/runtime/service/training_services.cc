#include "runtime/service/training_services.h"

#include <algorithm>
#include <chrono>

#include "runtime/jobs/provider_facts.h"
#include "runtime/jobs/recipe_probe.h"
#include "runtime/service/grpc_status.h"

namespace chiron::runtime {
namespace {

void ToCard(const jobs::RecipeRecord& r, v1::RecipeCard* card) {
  card->set_recipe_id(r.id);
  card->set_name(r.name);
  card->set_version(r.version);
  card->set_built_in(r.built_in);
  card->set_description(r.description);
  if (r.accepted_schemas.empty()) return;  // stored before registration checked recipes
  auto accepted = jobs::DecodeAcceptedSchemas(r.accepted_schemas);
  if (!accepted.ok()) return;  // a damaged record shows no schemas rather than wrong ones
  jobs::FillAcceptances(*accepted, card->mutable_accepts());
  card->set_schemas_from_provider(r.schemas_from_provider);
  if (!accepted->empty()) {
    const ResourceBudget& budget = accepted->front().budget;
    card->set_memory_budget_bytes(budget.max_memory_size);
    card->set_time_budget_minutes(static_cast<uint32_t>(
        std::min<uint64_t>((budget.max_training_seconds + 59) / 60, UINT32_MAX)));
  }
}

// The provider's schemas of a RegisterRecipeRequest; InvalidArgument naming the bad one.
Result<std::vector<dataset::DatasetSchema>> SchemasOf(const v1::RegisterRecipeRequest& request) {
  std::vector<dataset::DatasetSchema> out;
  if (static_cast<size_t>(request.schemas_size()) > jobs::kMaxRegisteredSchemas) {
    return InvalidArgumentError("a recipe is registered with at most " +
                                std::to_string(jobs::kMaxRegisteredSchemas) + " schemas");
  }
  for (int i = 0; i < request.schemas_size(); ++i) {
    const v1::RecipeSchema& s = request.schemas(i);
    dataset::ElementType type;
    if (s.input_type() == "u8") {
      type = dataset::ElementType::kUint8;
    } else if (s.input_type() == "f32") {
      type = dataset::ElementType::kFloat32;
    } else {
      return InvalidArgumentError("schema " + std::to_string(i + 1) +
                                  ": input_type must be \"u8\" or \"f32\"");
    }
    auto schema = jobs::MakeProbeSchema(
        std::vector<uint32_t>(s.input_shape().begin(), s.input_shape().end()), type,
        s.class_count());
    if (!schema.ok()) return schema.status().WithContext("schema " + std::to_string(i + 1));
    out.push_back(std::move(*schema));
  }
  return out;
}

void ToModelInfo(const jobs::ModelRecord& m, v1::ModelInfo* info) {
  info->set_name(m.name);
  info->set_job_id(m.job_id);
  info->set_recipe_id(m.recipe_id);
  info->set_output_size(static_cast<uint32_t>(m.output_size));
  info->set_queries_used(m.queries_used);
  info->set_query_budget(m.query_budget);
  info->set_created_unix(m.created_unix);
  for (const std::string& name : m.schema.class_names) info->add_class_names(name);
  for (uint32_t d : m.schema.shape) info->add_input_shape(d);
  info->set_input_type(m.schema.element_type == dataset::ElementType::kUint8 ? "u8" : "f32");
  info->set_validation_accuracy(m.validation_accuracy);
}

void ToPolicy(const train::OutputPolicy& policy, v1::OutputPolicy* out) {
  out->set_label_only(policy.label_only);
  out->set_max_top_k(policy.label_only ? 1 : policy.top_k);
  out->set_decimals(policy.label_only ? 0 : static_cast<uint32_t>(std::max(policy.decimals, 0)));
}

// The policies of a model: what Predict returns at most (a request asking for every class), the
// provider's declaration and the owner's narrowing.
void ToModelPolicies(const jobs::ModelRecord& m, v1::ModelInfo* info) {
  ToPolicy(train::EffectiveOutputPolicy(m.provider_output, m.owner_output,
                                        chiron::kMaxOutputTopK, m.output_size),
           info->mutable_output_policy());
  ToPolicy(train::EffectiveOutputPolicy(m.provider_output, train::OutputLimits{},
                                        chiron::kMaxOutputTopK, m.output_size),
           info->mutable_provider_output_policy());
  v1::OutputLimits* limits = info->mutable_owner_output_limits();
  limits->set_label_only(m.owner_output.label_only);
  limits->set_max_top_k(m.owner_output.max_top_k);
  if (m.owner_output.decimals >= 0) {
    limits->set_decimals(static_cast<uint32_t>(m.owner_output.decimals));
  }
  info->set_rate_per_minute(m.rate_per_minute);
}

void ToGrant(const store::ModelGrant& g, v1::ModelGrant* out) {
  out->set_grantee_id(g.grantee_id);
  out->set_budget(g.budget);
  out->set_used(g.used);
  out->set_created_unix(g.created_unix);
}

}  // namespace

void ToOwnerJobView(const jobs::JobRecord& r, v1::OwnerJobView* view) {
  view->set_job_id(r.id);
  view->set_state(static_cast<v1::JobState>(r.state));
  view->set_failure(static_cast<v1::FailureCategory>(r.failure));
  view->set_epochs_done(r.epochs_done);
  view->set_epochs_total(r.epochs_total);
  view->set_samples_done(r.samples_done);
  view->set_samples_total(r.samples_total);
  for (const jobs::EpochRecord& e : r.history) {
    v1::EpochMetrics* m = view->add_history();
    m->set_epoch(e.epoch);
    m->set_train_loss(e.train_loss);
    m->set_validation_loss(e.validation_loss);
    m->set_validation_accuracy(e.validation_accuracy);
  }
  for (double a : r.per_class_accuracy) view->add_per_class_accuracy(a);
  for (uint64_t c : r.confusion) view->add_confusion_matrix(c);
  view->set_model_name(r.model_name);
  view->set_dataset_name(r.dataset_name);
  view->set_recipe_id(r.recipe_id);
  if (!r.history.empty()) view->set_train_loss(r.history.back().train_loss);
  view->set_elapsed_seconds(static_cast<uint32_t>(r.elapsed_seconds));
  view->set_batches_done(r.batches_done);
  view->set_batches_total(r.batches_total);
  view->set_batches_per_epoch(r.batches_per_epoch);
  view->set_samples_per_second(r.samples_per_second);
  view->set_budget_seconds(r.budget_seconds);
  view->set_budget_memory_bytes(r.budget_memory_size);
  view->set_provider_view(static_cast<v1::ProviderView>(r.provider_view));
  view->set_dispatches(r.dispatches);
  view->set_staleness(r.staleness);
  for (const jobs::JobNodeRecord& n : r.node_list) {
    v1::JobNode* node = view->add_nodes();
    node->set_rank(n.rank);
    node->set_address(n.address);
    node->set_key_id(n.key_id);
    node->set_records(n.records);
  }
}

void ToJobFacts(const jobs::JobRecord& r, int64_t now_unix, v1::JobFacts* facts) {
  const jobs::ProviderJobFacts view = jobs::ProviderFacts(r, now_unix);
  facts->set_job_id(r.id);
  facts->set_recipe_id(r.recipe_id);
  facts->set_state(static_cast<v1::JobState>(view.state));
  facts->set_failure(static_cast<v1::FailureCategory>(view.failure));
  facts->set_epochs_done(view.epochs_done);
  facts->set_elapsed_minutes(view.elapsed_minutes);
  facts->set_peak_memory_bucket_log2(view.peak_memory_bucket_log2);
}

// ---- Recipes -----------------------------------------------------------------------------------

grpc::Status RecipesService::Register(grpc::ServerContext* context,
                                      const v1::RegisterRecipeRequest* request,
                                      v1::RecipeCard* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kProvider, "Recipes.Register");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto schemas = SchemasOf(*request);
  if (!schemas.ok()) return ToGrpc(schemas.status());
  auto record = jobs_->recipes().Register(caller->id, request->name(), request->version(),
                                          request->description(),
                                          AsBytes(request->shared_object()), *schemas);
  if (!record.ok()) return ToGrpc(record.status());
  ToCard(*record, response);
  return grpc::Status::OK;
}

grpc::Status RecipesService::List(grpc::ServerContext* context,
                                  const v1::ListRecipesRequest* /*request*/,
                                  v1::ListRecipesResponse* response) {
  auto caller = authz_->RequireRegistered(*context, "Recipes.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto recipes = jobs_->recipes().List();
  if (!recipes.ok()) return ToGrpc(recipes.status());
  for (const auto& r : *recipes) ToCard(r, response->add_recipes());
  return grpc::Status::OK;
}

// ---- Jobs --------------------------------------------------------------------------------------

grpc::Status JobsService::StartTraining(grpc::ServerContext* context,
                                        const v1::StartTrainingRequest* request,
                                        v1::OwnerJobView* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Jobs.StartTraining");
  if (!caller.ok()) return ToGrpc(caller.status());
  jobs::StartTrainingArgs args;
  args.dataset_name = request->dataset_name();
  args.recipe = request->recipe_id();
  args.model_name = request->model_name();
  args.validation_fraction =
      request->validation_fraction() == 0 ? 0.1 : request->validation_fraction();
  args.epochs = request->epochs();
  args.seed = request->seed();
  args.nodes = request->nodes();
  if (request->node_policy().size() > (size_t{1} << 20)) {
    return ToGrpc(InvalidArgumentError("node_policy: at most 1 MiB"));
  }
  args.node_policy = request->node_policy();
  args.staleness = request->staleness();
  switch (request->provider_view()) {
    case v1::PROVIDER_VIEW_COARSE: args.provider_view = jobs::ProviderView::kCoarse; break;
    case v1::PROVIDER_VIEW_DONE_ONLY: args.provider_view = jobs::ProviderView::kDoneOnly; break;
    default:
      return ToGrpc(InvalidArgumentError("unknown provider view: use coarse or done-only"));
  }
  auto record = jobs_->training().StartTraining(caller->id, args);
  if (!record.ok()) return ToGrpc(record.status());
  ToOwnerJobView(*record, response);
  return grpc::Status::OK;
}

grpc::Status JobsService::Watch(grpc::ServerContext* context, const v1::JobRef* request,
                                grpc::ServerWriter<v1::OwnerJobView>* writer) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Jobs.Watch");
  if (!caller.ok()) return ToGrpc(caller.status());
  uint64_t version = 0;
  while (!context->IsCancelled()) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    uint64_t before = version;
    auto record = jobs_->training().WaitForJob(caller->id, request->job_id(), &version, deadline);
    if (!record.ok()) return ToGrpc(record.status());
    if (version != before) {
      v1::OwnerJobView view;
      ToOwnerJobView(*record, &view);
      if (!writer->Write(view)) return grpc::Status::OK;  // the client went away
    }
    if (record->state == jobs::JobState::kSucceeded || record->state == jobs::JobState::kFailed ||
        record->state == jobs::JobState::kCancelled) {
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled by the client");
}

grpc::Status JobsService::Cancel(grpc::ServerContext* context, const v1::JobRef* request,
                                 v1::OwnerJobView* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Jobs.Cancel");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto record = jobs_->training().CancelJob(caller->id, request->job_id());
  if (!record.ok()) return ToGrpc(record.status());
  ToOwnerJobView(*record, response);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListOwnerJobs(grpc::ServerContext* context,
                                        const v1::ListJobsRequest* /*request*/,
                                        v1::ListOwnerJobsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Jobs.ListOwnerJobs");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto records = jobs_->training().ListOwnerJobs(caller->id);
  if (!records.ok()) return ToGrpc(records.status());
  for (const auto& r : *records) ToOwnerJobView(r, response->add_jobs());
  return grpc::Status::OK;
}

grpc::Status JobsService::ListJobFacts(grpc::ServerContext* context,
                                       const v1::ListJobsRequest* /*request*/,
                                       v1::ListJobFactsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kProvider, "Jobs.ListJobFacts");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto records = jobs_->training().ListProviderJobs(caller->id);
  if (!records.ok()) return ToGrpc(records.status());
  const int64_t now = jobs::NowUnix();
  for (const auto& r : *records) ToJobFacts(r, now, response->add_jobs());
  return grpc::Status::OK;
}

// ---- Models ------------------------------------------------------------------------------------

grpc::Status ModelsService::Predict(grpc::ServerContext* context,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) {
  // Providers never get predictions; an owner-role caller gets its own models or, with
  // owner_id set, a model whose owner granted it (the manager checks the grant).
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Predict");
  if (!caller.ok()) return ToGrpc(caller.status());
  // The owner's plaintext samples: the copy and the parsed request are wiped on every path out
  // (what gRPC's own transport buffers held is out of reach: docs/threat-model.md).
  std::vector<std::string> samples(request->samples().begin(), request->samples().end());
  struct WipeSamples {
    std::vector<std::string>& copy;
    const v1::PredictRequest& request;
    ~WipeSamples() {
      for (std::string& s : copy) SecureZero(s.data(), s.size());
      // The request is this handler's to dispose of; gRPC frees it after the handler returns.
      auto& parsed = const_cast<v1::PredictRequest&>(request);
      for (std::string& s : *parsed.mutable_samples()) SecureZero(s.data(), s.size());
    }
  } wipe{samples, *request};
  std::chrono::milliseconds retry_after(0);
  auto output = jobs_->models().Predict(caller->id, request->owner_id(), request->model_name(),
                                        samples, request->top_k(), &retry_after);
  if (!output.ok()) {
    // Refused by the rate limit: the wait, machine-readable (docs/predictions.md), so clients
    // pace instead of parsing the message. The runtime's own number, not the caller's.
    if (retry_after.count() > 0) {
      context->AddTrailingMetadata("retry-after-ms", std::to_string(retry_after.count()));
    }
    return ToGrpc(output.status());
  }
  const bool label_only = output->policy.label_only;
  for (const auto& scores : output->predictions) {
    v1::Prediction* p = response->add_predictions();
    for (const train::ClassScore& s : scores) {
      p->add_classes(s.class_index);
      // Label only: the worker's numbers stop here; not even the rounded score is sent.
      if (!label_only) p->add_probabilities(static_cast<float>(s.probability));
    }
  }
  response->set_label_only(label_only);
  response->set_queries_used(output->queries_used);
  response->set_query_budget(output->query_budget);
  return grpc::Status::OK;
}

grpc::Status ModelsService::OwnerView(const std::string& owner_id, const std::string& name,
                                      v1::ModelInfo* info) {
  auto models = jobs_->models().ListModels(owner_id);
  if (!models.ok()) return ToGrpc(models.status());
  for (const jobs::ModelRecord& m : *models) {
    if (m.name != name) continue;
    ToModelInfo(m, info);
    ToModelPolicies(m, info);
    info->set_max_batch(jobs_->models().max_predict_batch());
    auto grants = jobs_->models().ListModelGrants(owner_id, name);
    if (!grants.ok()) return ToGrpc(grants.status());
    for (const store::ModelGrant& g : *grants) ToGrant(g, info->add_grants());
    return grpc::Status::OK;
  }
  return ToGrpc(NotFoundError("you have no model '" + name + "': see `chiron model list`"));
}

grpc::Status ModelsService::List(grpc::ServerContext* context,
                                 const v1::ListModelsRequest* /*request*/,
                                 v1::ListModelsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto models = jobs_->models().ListModels(caller->id);
  if (!models.ok()) return ToGrpc(models.status());
  for (const auto& m : *models) {
    v1::ModelInfo* info = response->add_models();
    ToModelInfo(m, info);
    ToModelPolicies(m, info);
    info->set_max_batch(jobs_->models().max_predict_batch());
    auto grants = jobs_->models().ListModelGrants(caller->id, m.name);
    if (!grants.ok()) return ToGrpc(grants.status());
    for (const store::ModelGrant& g : *grants) ToGrant(g, info->add_grants());
  }
  return grpc::Status::OK;
}

grpc::Status ModelsService::Delete(grpc::ServerContext* context,
                                   const v1::DeleteModelRequest* request,
                                   v1::DeleteModelResponse* /*response*/) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Delete");
  if (!caller.ok()) return ToGrpc(caller.status());
  return ToGrpc(jobs_->models().DeleteModel(caller->id, request->name()));
}

grpc::Status ModelsService::Evaluate(grpc::ServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluationReport* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Evaluate");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto report =
      jobs_->models().Evaluate(caller->id, request->model_name(), request->dataset_name());
  if (!report.ok()) return ToGrpc(report.status());
  response->set_sample_count(report->example_count);
  response->set_loss(report->mean_loss);
  response->set_accuracy(report->accuracy);
  for (double a : report->per_class_accuracy) response->add_per_class_accuracy(a);
  for (uint64_t c : report->confusion) response->add_confusion_matrix(c);
  return grpc::Status::OK;
}

grpc::Status ModelsService::SetLimits(grpc::ServerContext* context,
                                      const v1::SetModelLimitsRequest* request,
                                      v1::ModelInfo* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.SetLimits");
  if (!caller.ok()) return ToGrpc(caller.status());
  jobs::ModelLimitsUpdate update;
  if (request->has_query_budget()) update.query_budget = request->query_budget();
  if (request->has_rate_per_minute()) update.rate_per_minute = request->rate_per_minute();
  if (request->has_output_limits()) {
    const v1::OutputLimits& o = request->output_limits();
    train::OutputLimits limits;
    limits.label_only = o.label_only();
    limits.max_top_k = o.max_top_k();
    if (o.has_decimals()) {
      if (o.decimals() > chiron::kMaxOutputDecimals) {
        return ToGrpc(InvalidArgumentError("output limits: decimals go up to " +
                                           std::to_string(chiron::kMaxOutputDecimals)));
      }
      limits.decimals = static_cast<int32_t>(o.decimals());
    }
    update.output = limits;
  }
  auto model = jobs_->models().SetModelLimits(caller->id, request->name(), update);
  if (!model.ok()) return ToGrpc(model.status());
  return OwnerView(caller->id, request->name(), response);
}

grpc::Status ModelsService::Grant(grpc::ServerContext* context,
                                  const v1::GrantModelRequest* request,
                                  v1::ModelInfo* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Grant");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto grant = jobs_->models().GrantModel(caller->id, request->name(), request->grantee_id(),
                                 request->budget());
  if (!grant.ok()) return ToGrpc(grant.status());
  return OwnerView(caller->id, request->name(), response);
}

grpc::Status ModelsService::Revoke(grpc::ServerContext* context,
                                   const v1::RevokeModelRequest* request,
                                   v1::ModelInfo* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Revoke");
  if (!caller.ok()) return ToGrpc(caller.status());
  Status revoked =
      jobs_->models().RevokeModel(caller->id, request->name(), request->grantee_id());
  if (!revoked.ok()) return ToGrpc(revoked);
  return OwnerView(caller->id, request->name(), response);
}

grpc::Status ModelsService::ListShared(grpc::ServerContext* context,
                                       const v1::ListSharedModelsRequest* /*request*/,
                                       v1::ListSharedModelsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.ListShared");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto shared = jobs_->models().ListSharedModels(caller->id);
  if (!shared.ok()) return ToGrpc(shared.status());
  for (const jobs::SharedModel& s : *shared) {
    const jobs::ModelRecord& m = s.model;
    v1::SharedModel* out = response->add_models();
    out->set_owner_id(m.owner_id);
    out->set_name(m.name);
    out->set_output_size(static_cast<uint32_t>(m.output_size));
    for (const std::string& name : m.schema.class_names) out->add_class_names(name);
    for (uint32_t d : m.schema.shape) out->add_input_shape(d);
    out->set_input_type(m.schema.element_type == dataset::ElementType::kUint8 ? "u8" : "f32");
    ToPolicy(train::EffectiveOutputPolicy(m.provider_output, m.owner_output,
                                          chiron::kMaxOutputTopK, m.output_size),
             out->mutable_output_policy());
    out->set_rate_per_minute(m.rate_per_minute);
    out->set_queries_used(s.grant.used);
    out->set_query_budget(s.grant.budget);
    out->set_max_batch(jobs_->models().max_predict_batch());
  }
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
