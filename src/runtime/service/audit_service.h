// The Audit service: a principal reads its own hash-chained audit records, and only its own
// (the chain is selected by the caller's key, never by a request field), so it can verify them
// end to end (shared/audit/chain.h).
//
// Thread safety: gRPC calls handlers concurrently; the Store serialises.
#pragma once

#include "chiron/v1/audit.grpc.pb.h"
#include "runtime/service/authz.h"
#include "runtime/store/store.h"

namespace chiron::runtime {

// Most records one List answer carries; the client pages with from_sequence.
inline constexpr size_t kMaxAuditRecordsPerList = 1000;

class AuditService final : public v1::Audit::Service {
 public:
  // `store` and `authorizer` must outlive the service.
  AuditService(store::Store* store, const Authorizer* authorizer)
      : store_(store), authorizer_(authorizer) {}

  // The caller's records with sequence >= from_sequence (0 means 1), at most
  // kMaxAuditRecordsPerList of them. Any registered principal; PermissionDenied otherwise.
  grpc::Status List(grpc::ServerContext* context, const v1::ListAuditRequest* request,
                    v1::ListAuditResponse* response) override;

 private:
  store::Store* store_;
  const Authorizer* authorizer_;
};

}  // namespace chiron::runtime
