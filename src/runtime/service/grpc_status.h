// Conversion from Chiron's Status to grpc::Status (codes are numerically identical).
#pragma once

#include <grpcpp/grpcpp.h>

#include "shared/base/status.h"

namespace chiron::runtime {

inline grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

}  // namespace chiron::runtime
