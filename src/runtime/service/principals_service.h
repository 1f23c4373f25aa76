// The Principals service: a client registers its key once with a role, and asks who it is.
//
// Register and WhoAmI are the only calls (besides Attestation) an unregistered key may make.
// Register is idempotent for the same key and role; AlreadyExists if the key has the other role.
//
// Thread safety: gRPC calls handlers concurrently; the Store serialises.
#pragma once

#include "chiron/v1/principals.grpc.pb.h"
#include "runtime/service/authz.h"
#include "runtime/store/store.h"

namespace chiron::runtime {

class PrincipalsService final : public v1::Principals::Service {
 public:
  // `store` and `authorizer` must outlive the service.
  PrincipalsService(store::Store* store, const Authorizer* authorizer)
      : store_(store), authorizer_(authorizer) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterPrincipalRequest* request,
                        v1::Principal* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest* request,
                      v1::Principal* response) override;

 private:
  store::Store* store_;
  const Authorizer* authorizer_;
};

}  // namespace chiron::runtime
