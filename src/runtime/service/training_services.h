// The Recipes, Jobs and Models services: thin gRPC layers over jobs::JobManager that check the
// caller's role and turn records into what that role may see.
//
//   Recipes.Register     provider        Recipes.List      any registered principal (cards)
//   Jobs.StartTraining, Watch, Cancel, ListOwnerJobs       owner (its own jobs)
//   Jobs.ListJobFacts    provider (jobs running its own recipes; JobFacts only)
//   Models.Predict       owner, or a principal the owner granted the model to
//   Models.ListShared    any owner-role principal (models granted to it)
//   Models.*             owner (its own models: List, Delete, Evaluate, SetLimits, Grant, Revoke)
//
// What each side sees is fixed here: owners get OwnerJobView (metrics included) and never a
// recipe's code or a model's parameters; providers get RecipeCard and JobFacts (docs/
// provider-facts.md) and never metrics, predictions or data.
#pragma once

#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "chiron/v1/recipes.grpc.pb.h"
#include "runtime/jobs/job_manager.h"
#include "runtime/service/authz.h"

namespace chiron::runtime {

class RecipesService final : public v1::Recipes::Service {
 public:
  RecipesService(jobs::JobManager* jobs, Authorizer* authz) : jobs_(jobs), authz_(authz) {}
  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRecipeRequest* request,
                        v1::RecipeCard* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListRecipesRequest* request,
                    v1::ListRecipesResponse* response) override;

 private:
  jobs::JobManager* jobs_;
  Authorizer* authz_;
};

class JobsService final : public v1::Jobs::Service {
 public:
  JobsService(jobs::JobManager* jobs, Authorizer* authz) : jobs_(jobs), authz_(authz) {}
  grpc::Status StartTraining(grpc::ServerContext* context,
                             const v1::StartTrainingRequest* request,
                             v1::OwnerJobView* response) override;
  grpc::Status Watch(grpc::ServerContext* context, const v1::JobRef* request,
                     grpc::ServerWriter<v1::OwnerJobView>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::JobRef* request,
                      v1::OwnerJobView* response) override;
  grpc::Status ListOwnerJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                             v1::ListOwnerJobsResponse* response) override;
  grpc::Status ListJobFacts(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                            v1::ListJobFactsResponse* response) override;

 private:
  jobs::JobManager* jobs_;
  Authorizer* authz_;
};

class ModelsService final : public v1::Models::Service {
 public:
  ModelsService(jobs::JobManager* jobs, Authorizer* authz) : jobs_(jobs), authz_(authz) {}
  grpc::Status Predict(grpc::ServerContext* context, const v1::PredictRequest* request,
                       v1::PredictResponse* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                    v1::ListModelsResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteModelRequest* request,
                      v1::DeleteModelResponse* response) override;
  grpc::Status Evaluate(grpc::ServerContext* context, const v1::EvaluateRequest* request,
                        v1::EvaluationReport* response) override;
  grpc::Status SetLimits(grpc::ServerContext* context, const v1::SetModelLimitsRequest* request,
                         v1::ModelInfo* response) override;
  grpc::Status Grant(grpc::ServerContext* context, const v1::GrantModelRequest* request,
                     v1::ModelInfo* response) override;
  grpc::Status Revoke(grpc::ServerContext* context, const v1::RevokeModelRequest* request,
                      v1::ModelInfo* response) override;
  grpc::Status ListShared(grpc::ServerContext* context,
                          const v1::ListSharedModelsRequest* request,
                          v1::ListSharedModelsResponse* response) override;

 private:
  // The owner's view of its model `name`, grants included.
  grpc::Status OwnerView(const std::string& owner_id, const std::string& name,
                         v1::ModelInfo* info);

  jobs::JobManager* jobs_;
  Authorizer* authz_;
};

// The owner's view and the provider's facts of a job record (exposed for tests).
void ToOwnerJobView(const jobs::JobRecord& record, v1::OwnerJobView* view);
void ToJobFacts(const jobs::JobRecord& record, int64_t now_unix, v1::JobFacts* facts);

}  // namespace chiron::runtime
