// Operator metrics for chirond, in the Prometheus text exposition format (version 0.0.4).
//
// Only service-level figures, never anything derived from owners' data: gRPC calls by method
// and status code, call latency histograms by method, the number of jobs in each state, uptime.
// Method labels are limited to methods compiled into this binary (others count as "unknown"),
// so clients cannot grow the label set.
//
// Requests are counted by a gRPC server interceptor (InterceptorFactory) at the moment the
// status is about to be sent, so a client that has received a call's status sees it counted.
//
// Thread safety: all methods are safe to call concurrently.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "runtime/store/store.h"
#include "shared/base/status.h"

namespace chiron::runtime {

// Upper bounds (seconds) of the latency histogram's buckets; +Inf is implicit.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600};

// "OK", "NOT_FOUND", ...: the gRPC names of status codes ("UNKNOWN" for anything else).
std::string_view GrpcCodeName(grpc::StatusCode code);
// The label for a gRPC method path: the path itself ("/chiron.v1.Jobs/Watch") if the method is
// compiled into this binary, else "unknown".
std::string MethodLabel(std::string_view path);

class ServiceMetrics {
 public:
  // Counts of jobs by state name ("queued", "running", "succeeded", "failed", "cancelled").
  using JobCounter = std::function<Result<std::map<std::string, uint64_t>>()>;

  // `job_counter` may be empty (no job gauge: a server without the store).
  explicit ServiceMetrics(JobCounter job_counter = nullptr);

  void RecordRequest(std::string_view method_path, grpc::StatusCode code,
                     std::chrono::nanoseconds latency);

  // The whole exposition, every family with # HELP and # TYPE lines.
  std::string RenderPrometheus() const;

  // A factory for grpc::ServerBuilder::experimental().SetInterceptorCreators; the metrics must
  // outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  struct MethodStats {
    std::map<std::string, uint64_t> by_code;
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  JobCounter job_counter_;
  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mutex_;
  std::map<std::string, MethodStats> methods_;
};

// Counts the jobs in `store` by state (a JobCounter).
ServiceMetrics::JobCounter StoreJobCounter(store::Store* store);

}  // namespace chiron::runtime
