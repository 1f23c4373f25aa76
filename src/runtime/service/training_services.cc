#include "runtime/service/training_services.h"

#include <chrono>

#include "runtime/service/grpc_status.h"

namespace chiron::runtime {
namespace {

void ToCard(const jobs::RecipeRecord& r, v1::RecipeCard* card) {
  card->set_recipe_id(r.id);
  card->set_name(r.name);
  card->set_version(r.version);
  card->set_built_in(r.built_in);
  card->set_description(r.description);
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
}

void ToJobFacts(const jobs::JobRecord& r, v1::JobFacts* facts) {
  facts->set_job_id(r.id);
  facts->set_recipe_id(r.recipe_id);
  facts->set_state(static_cast<v1::JobState>(r.state));
  facts->set_failure(static_cast<v1::FailureCategory>(r.failure));
  facts->set_epochs_done(r.epochs_done);
  facts->set_elapsed_minutes(static_cast<uint32_t>(r.elapsed_seconds / 60));
  facts->set_peak_memory_bucket_log2(r.peak_memory_log2);
}

// ---- Recipes -----------------------------------------------------------------------------------

grpc::Status RecipesService::Register(grpc::ServerContext* context,
                                      const v1::RegisterRecipeRequest* request,
                                      v1::RecipeCard* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kProvider, "Recipes.Register");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto record = jobs_->RegisterRecipe(caller->id, request->name(), request->version(),
                                      request->description(), AsBytes(request->shared_object()));
  if (!record.ok()) return ToGrpc(record.status());
  ToCard(*record, response);
  return grpc::Status::OK;
}

grpc::Status RecipesService::List(grpc::ServerContext* context,
                                  const v1::ListRecipesRequest* /*request*/,
                                  v1::ListRecipesResponse* response) {
  auto caller = authz_->RequireRegistered(*context, "Recipes.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto recipes = jobs_->ListRecipes();
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
  auto record = jobs_->StartTraining(caller->id, args);
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
    auto record = jobs_->WaitForJob(caller->id, request->job_id(), &version, deadline);
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
  auto record = jobs_->CancelJob(caller->id, request->job_id());
  if (!record.ok()) return ToGrpc(record.status());
  ToOwnerJobView(*record, response);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListOwnerJobs(grpc::ServerContext* context,
                                        const v1::ListJobsRequest* /*request*/,
                                        v1::ListOwnerJobsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Jobs.ListOwnerJobs");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto records = jobs_->ListOwnerJobs(caller->id);
  if (!records.ok()) return ToGrpc(records.status());
  for (const auto& r : *records) ToOwnerJobView(r, response->add_jobs());
  return grpc::Status::OK;
}

grpc::Status JobsService::ListJobFacts(grpc::ServerContext* context,
                                       const v1::ListJobsRequest* /*request*/,
                                       v1::ListJobFactsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kProvider, "Jobs.ListJobFacts");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto records = jobs_->ListProviderJobs(caller->id);
  if (!records.ok()) return ToGrpc(records.status());
  for (const auto& r : *records) ToJobFacts(r, response->add_jobs());
  return grpc::Status::OK;
}

// ---- Models ------------------------------------------------------------------------------------

grpc::Status ModelsService::Predict(grpc::ServerContext* context,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Predict");
  if (!caller.ok()) return ToGrpc(caller.status());
  std::vector<std::string> samples(request->samples().begin(), request->samples().end());
  auto output = jobs_->Predict(caller->id, request->model_name(), samples, request->top_k());
  if (!output.ok()) return ToGrpc(output.status());
  for (const auto& scores : output->predictions) {
    v1::Prediction* p = response->add_predictions();
    for (const train::ClassScore& s : scores) {
      p->add_classes(s.class_index);
      p->add_probabilities(static_cast<float>(s.probability));
    }
  }
  response->set_queries_used(output->queries_used);
  response->set_query_budget(output->query_budget);
  return grpc::Status::OK;
}

grpc::Status ModelsService::List(grpc::ServerContext* context,
                                 const v1::ListModelsRequest* /*request*/,
                                 v1::ListModelsResponse* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto models = jobs_->ListModels(caller->id);
  if (!models.ok()) return ToGrpc(models.status());
  for (const auto& m : *models) ToModelInfo(m, response->add_models());
  return grpc::Status::OK;
}

grpc::Status ModelsService::Delete(grpc::ServerContext* context,
                                   const v1::DeleteModelRequest* request,
                                   v1::DeleteModelResponse* /*response*/) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Delete");
  if (!caller.ok()) return ToGrpc(caller.status());
  return ToGrpc(jobs_->DeleteModel(caller->id, request->name()));
}

grpc::Status ModelsService::Evaluate(grpc::ServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluationReport* response) {
  auto caller = authz_->RequireRole(*context, store::Role::kOwner, "Models.Evaluate");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto report = jobs_->Evaluate(caller->id, request->model_name(), request->dataset_name());
  if (!report.ok()) return ToGrpc(report.status());
  response->set_sample_count(report->example_count);
  response->set_loss(report->mean_loss);
  response->set_accuracy(report->accuracy);
  for (double a : report->per_class_accuracy) response->add_per_class_accuracy(a);
  for (uint64_t c : report->confusion) response->add_confusion_matrix(c);
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
