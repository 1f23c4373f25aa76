// Services defined by the chiron.v1 API whose implementation has not landed yet. Each call
// answers UNIMPLEMENTED with a message naming the call and the tracking issue, so a client gets a
// clear answer instead of gRPC's bare "method not found". Each class is replaced by the real one
// when its issue lands (the data path: issue #3; training and predictions: issue #4).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <vector>

namespace chiron::runtime {

// The pending services, to be registered on a grpc::ServerBuilder (which does not take
// ownership: keep the vector alive as long as the server). The data path (Principals, Datasets,
// Audit) is implemented by chirond whenever it has a sealed store; `include_data_path` adds
// pending stand-ins for it, for a platform that cannot seal (no store, e.g. tsm today).
// `include_training` adds stand-ins for Recipes, Jobs and Models (chirond without a worker).
std::vector<std::unique_ptr<grpc::Service>> MakePendingServices(bool include_data_path,
                                                                bool include_training = true);

}  // namespace chiron::runtime
