#include "runtime/service/authz.h"

#include "shared/ratls/grpc_credentials.h"
#include "shared/ratls/ratls.h"

namespace chiron::runtime {
namespace {

// Principal ids are 64 hex characters; logs and messages show a prefix.
std::string ShortId(const std::string& id) {
  return id.substr(0, 16);
}

}  // namespace

Result<std::string> Authorizer::CallerId(const grpc::ServerContext& context) const {
  auto spki = ratls::PeerSpki(context);
  if (!spki.ok()) {
    return UnauthenticatedError(
        "the call carries no client certificate: connect with your principal key (mutual TLS) "
        "as the chiron client does");
  }
  return ratls::PrincipalId(*spki);
}

Result<store::Principal> Authorizer::RequireRegistered(const grpc::ServerContext& context,
                                                       std::string_view call) const {
  CHIRON_ASSIGN_OR_RETURN(std::string id, CallerId(context));
  auto principal = store_->GetPrincipal(id);
  if (principal.ok()) return principal;
  if (principal.status().code() == StatusCode::kNotFound) {
    return PermissionDeniedError(
        "a registered principal is required (" + std::string(call) + "); key " + ShortId(id) +
        "... is not registered with this server: run `chiron register` (or `chiron-operator "
        "register`) with this profile, or `chiron init` / `chiron-operator init` to create one");
  }
  return principal.status().WithContext("looking up the caller");
}

Result<store::Principal> Authorizer::RequireRole(const grpc::ServerContext& context,
                                                 store::Role role, std::string_view call) const {
  CHIRON_ASSIGN_OR_RETURN(std::string id, CallerId(context));
  auto principal = store_->GetPrincipal(id);
  std::string needed(store::RoleName(role));
  if (!principal.ok()) {
    if (principal.status().code() != StatusCode::kNotFound) {
      return principal.status().WithContext("looking up the caller");
    }
    return PermissionDeniedError("the " + needed + " role is required (" + std::string(call) +
                                 "); key " + ShortId(id) +
                                 "... is not registered with this server: run `" +
                                 (role == store::Role::kOwner ? "chiron" : "chiron-operator") +
                                 " register` with this profile, or `" +
                                 (role == store::Role::kOwner ? "chiron" : "chiron-operator") +
                                 " init` to create one");
  }
  if (principal->role != role) {
    return PermissionDeniedError("the " + needed + " role is required (" + std::string(call) +
                                 "); key " + ShortId(id) + "... is registered as " +
                                 std::string(store::RoleName(principal->role)) +
                                 ": this command is for " + (role == store::Role::kOwner ? "data owners (`chiron`, "
                                 "with an owner profile)" : "providers (`chiron-operator`, with "
                                 "a provider profile)") + "; pass --profile DIR of a profile "
                                 "with the " + needed + " role");
  }
  return principal;
}

}  // namespace chiron::runtime
