#include "runtime/service/principals_service.h"

#include "runtime/service/grpc_status.h"
#include "shared/base/log.h"

namespace chiron::runtime {
namespace {

void ToProto(const store::Principal& principal, v1::Principal* out) {
  out->set_id(principal.id);
  out->set_role(principal.role == store::Role::kOwner ? v1::ROLE_OWNER : v1::ROLE_PROVIDER);
  out->set_display_name(principal.display_name);
  out->set_created_unix(principal.created_unix);
}

}  // namespace

grpc::Status PrincipalsService::Register(grpc::ServerContext* context,
                                         const v1::RegisterPrincipalRequest* request,
                                         v1::Principal* response) {
  auto id = authorizer_->CallerId(*context);
  if (!id.ok()) return ToGrpc(id.status());
  store::Role role;
  switch (request->role()) {
    case v1::ROLE_OWNER: role = store::Role::kOwner; break;
    case v1::ROLE_PROVIDER: role = store::Role::kProvider; break;
    default:
      return ToGrpc(InvalidArgumentError(
          "Principals.Register: role must be ROLE_OWNER or ROLE_PROVIDER, got " +
          std::to_string(static_cast<int>(request->role()))));
  }
  auto principal = store_->RegisterPrincipal(*id, role, request->display_name());
  if (!principal.ok()) {
    return ToGrpc(principal.status().WithContext("Principals.Register"));
  }
  LogInfo("principal.registered",
          {{"principal", *id}, {"role", std::string(store::RoleName(principal->role))}});
  ToProto(*principal, response);
  return grpc::Status::OK;
}

grpc::Status PrincipalsService::WhoAmI(grpc::ServerContext* context,
                                       const v1::WhoAmIRequest* /*request*/,
                                       v1::Principal* response) {
  auto id = authorizer_->CallerId(*context);
  if (!id.ok()) return ToGrpc(id.status());
  auto principal = store_->GetPrincipal(*id);
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      return ToGrpc(NotFoundError("key " + *id +
                                  " is not registered with this server: run `chiron register` "
                                  "(or `chiron-operator register`) with this profile, or "
                                  "`chiron init` to create one"));
    }
    return ToGrpc(principal.status().WithContext("Principals.WhoAmI"));
  }
  ToProto(*principal, response);
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
