#include "runtime/service/pending_services.h"

#include <string>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/datasets.grpc.pb.h"
#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "chiron/v1/recipes.grpc.pb.h"

namespace chiron::runtime {
namespace {

grpc::Status Pending(const char* call, const char* issue) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      std::string("chiron.v1.") + call +
                          " is part of the API but not implemented by this chirond release "
                          "(tracked in " + issue + "); upgrade the server to use it");
}

#define CHIRON_PENDING_UNARY(service, method, request, response, issue)                  \
  grpc::Status method(grpc::ServerContext*, const v1::request*, v1::response*) override { \
    return Pending(#service "." #method, issue);                                          \
  }

class PendingPrincipals final : public v1::Principals::Service {
  CHIRON_PENDING_UNARY(Principals, Register, RegisterPrincipalRequest, Principal, "issue #3")
  CHIRON_PENDING_UNARY(Principals, WhoAmI, WhoAmIRequest, Principal, "issue #3")
};

class PendingDatasets final : public v1::Datasets::Service {
  CHIRON_PENDING_UNARY(Datasets, BeginUpload, BeginUploadRequest, BeginUploadResponse, "issue #3")
  CHIRON_PENDING_UNARY(Datasets, List, ListDatasetsRequest, ListDatasetsResponse, "issue #3")
  CHIRON_PENDING_UNARY(Datasets, Delete, DeleteDatasetRequest, DeleteDatasetResponse, "issue #3")
  grpc::Status Upload(grpc::ServerContext*,
                      grpc::ServerReaderWriter<v1::UploadAck, v1::UploadChunk>*) override {
    return Pending("Datasets.Upload", "issue #3");
  }
};

class PendingRecipes final : public v1::Recipes::Service {
  CHIRON_PENDING_UNARY(Recipes, Register, RegisterRecipeRequest, RecipeCard, "issue #4")
  CHIRON_PENDING_UNARY(Recipes, List, ListRecipesRequest, ListRecipesResponse, "issue #4")
};

class PendingJobs final : public v1::Jobs::Service {
  CHIRON_PENDING_UNARY(Jobs, StartTraining, StartTrainingRequest, OwnerJobView, "issue #4")
  CHIRON_PENDING_UNARY(Jobs, Cancel, JobRef, OwnerJobView, "issue #4")
  CHIRON_PENDING_UNARY(Jobs, ListOwnerJobs, ListJobsRequest, ListOwnerJobsResponse, "issue #4")
  CHIRON_PENDING_UNARY(Jobs, ListJobFacts, ListJobsRequest, ListJobFactsResponse, "issue #4")
  grpc::Status Watch(grpc::ServerContext*, const v1::JobRef*,
                     grpc::ServerWriter<v1::OwnerJobView>*) override {
    return Pending("Jobs.Watch", "issue #4");
  }
};

class PendingModels final : public v1::Models::Service {
  CHIRON_PENDING_UNARY(Models, Predict, PredictRequest, PredictResponse, "issue #4")
  CHIRON_PENDING_UNARY(Models, List, ListModelsRequest, ListModelsResponse, "issue #4")
  CHIRON_PENDING_UNARY(Models, Delete, DeleteModelRequest, DeleteModelResponse, "issue #4")
};

class PendingAudit final : public v1::Audit::Service {
  CHIRON_PENDING_UNARY(Audit, List, ListAuditRequest, ListAuditResponse, "issue #3")
};

#undef CHIRON_PENDING_UNARY

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> MakePendingServices(bool include_data_path,
                                                                bool include_training) {
  std::vector<std::unique_ptr<grpc::Service>> services;
  if (include_data_path) {
    services.push_back(std::make_unique<PendingPrincipals>());
    services.push_back(std::make_unique<PendingDatasets>());
    services.push_back(std::make_unique<PendingAudit>());
  }
  if (include_training) {
    services.push_back(std::make_unique<PendingRecipes>());
    services.push_back(std::make_unique<PendingJobs>());
    services.push_back(std::make_unique<PendingModels>());
  }
  return services;
}

}  // namespace chiron::runtime
