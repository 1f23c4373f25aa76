#include "runtime/service/audit_service.h"

#include <algorithm>

#include "runtime/service/grpc_status.h"

namespace chiron::runtime {

grpc::Status AuditService::List(grpc::ServerContext* context, const v1::ListAuditRequest* request,
                                v1::ListAuditResponse* response) {
  auto caller = authorizer_->RequireRegistered(*context, "Audit.List");
  if (!caller.ok()) return ToGrpc(caller.status());
  uint64_t from = request->from_sequence() == 0 ? 1 : request->from_sequence();
  auto records = store_->ListAudit(caller->id, from);
  if (!records.ok()) return ToGrpc(records.status().WithContext("Audit.List"));
  size_t count = std::min(records->size(), kMaxAuditRecordsPerList);
  for (size_t i = 0; i < count; ++i) {
    const audit::AuditRecord& record = (*records)[i];
    v1::AuditRecord* out = response->add_records();
    out->set_sequence(record.sequence);
    out->set_time_unix(record.time_unix);
    out->set_principal_id(record.principal_id);
    out->set_event(record.event);
    out->set_subject(record.subject);
    out->set_previous_hash(ToString(record.previous_hash));
    out->set_hash(ToString(record.hash));
  }
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
