// Authorisation of chiron.v1 calls by principal and role.
//
// Every client authenticates with its own key in mutual TLS; the caller's principal id is the hex
// SHA-256 of its certificate's SubjectPublicKeyInfo (ratls::PrincipalId). A principal registers
// once with a role (Principals.Register) and from then on every call is checked against the
// role it needs:
//
//   anyone with a client certificate   Attestation.*, Principals.Register, Principals.WhoAmI
//   any registered principal            Recipes.List (public cards), Audit.List (its own chain)
//   owner                               Datasets.*, Jobs (its own jobs), Models.* (its own
//                                       models); Models.Predict also on models it was granted
//   provider                            Recipes.Register, Jobs.ListJobFacts (its own recipes'
//                                       jobs)
// docs/api.md lists every call with its role (api_doc_test keeps it true).
//
// Objects are always looked up within the caller's own namespace (an owner's datasets by
// (owner, name) or checked against their owner), so one owner can never name, list, read,
// extend or delete another's; such a lookup fails exactly as for an object that does not exist,
// which also keeps ids of other owners' objects from being probed.
//
// Thread safety: safe for concurrent use (the Store is).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "runtime/store/store.h"
#include "shared/base/status.h"

namespace chiron::runtime {

class Authorizer {
 public:
  // `store` must outlive the Authorizer.
  explicit Authorizer(store::Store* store) : store_(store) {}

  // The caller's principal id. Unauthenticated if the connection carries no client certificate.
  Result<std::string> CallerId(const grpc::ServerContext& context) const;

  // The registered caller, whatever its role. PermissionDenied naming `call` and telling the
  // caller to register (`chiron init`) if its key is not registered.
  Result<store::Principal> RequireRegistered(const grpc::ServerContext& context,
                                             std::string_view call) const;

  // The registered caller if it has `role`. PermissionDenied saying which role `call` needs and
  // which role (or none) the caller's key has.
  Result<store::Principal> RequireRole(const grpc::ServerContext& context, store::Role role,
                                       std::string_view call) const;

 private:
  store::Store* store_;
};

}  // namespace chiron::runtime
