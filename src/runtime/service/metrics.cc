#include "runtime/service/metrics.h"

#include <google/protobuf/descriptor.h>

#include <cstdio>

#include "runtime/jobs/records.h"

namespace chiron::runtime {
namespace {

std::string FormatDouble(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// Label values per the exposition format: backslash, double quote and newline escaped.
std::string LabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(ServiceMetrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}

  ~MetricsInterceptor() override {
    // A call that ended without the server sending a status (e.g. the client went away).
    if (!recorded_) {
      metrics_->RecordRequest(method_, grpc::StatusCode::CANCELLED,
                              std::chrono::steady_clock::now() - start_);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!recorded_ && methods->QueryInterceptionHookPoint(
                          grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      recorded_ = true;
      metrics_->RecordRequest(method_, methods->GetSendStatus().error_code(),
                              std::chrono::steady_clock::now() - start_);
    }
    methods->Proceed();
  }

 private:
  ServiceMetrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(ServiceMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, MethodLabel(info->method() ? info->method() : ""));
  }

 private:
  ServiceMetrics* metrics_;
};

constexpr const char* kJobStates[] = {"queued", "running", "succeeded", "failed", "cancelled"};

}  // namespace

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

std::string MethodLabel(std::string_view path) {
  // "/package.Service/Method" → "package.Service.Method" in the generated descriptor pool.
  if (path.size() < 4 || path.size() > 256 || path[0] != '/') return "unknown";
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash + 1 >= path.size() ||
      path.find('/', slash + 1) != std::string_view::npos) {
    return "unknown";
  }
  std::string full(path.substr(1, slash - 1));
  full += '.';
  full += path.substr(slash + 1);
  if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full) == nullptr) {
    return "unknown";
  }
  return std::string(path);
}

ServiceMetrics::ServiceMetrics(JobCounter job_counter)
    : job_counter_(std::move(job_counter)), start_(std::chrono::steady_clock::now()) {}

void ServiceMetrics::RecordRequest(std::string_view method_path, grpc::StatusCode code,
                                   std::chrono::nanoseconds latency) {
  std::string method = MethodLabel(method_path);
  double seconds = std::chrono::duration<double>(latency).count();
  if (!(seconds >= 0)) seconds = 0;
  std::lock_guard lock(mutex_);
  MethodStats& stats = methods_[method];
  ++stats.by_code[std::string(GrpcCodeName(code))];
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++stats.buckets[i];
      break;
    }
  }
  ++stats.count;
  stats.sum_seconds += seconds;
}

std::string ServiceMetrics::RenderPrometheus() const {
  std::string out;
  // Read the job states before taking the lock (the store has its own).
  std::optional<Result<std::map<std::string, uint64_t>>> jobs;
  if (job_counter_) jobs = job_counter_();
  double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();

  out += "# HELP chiron_grpc_requests_total gRPC calls handled, by method and status code.\n";
  out += "# TYPE chiron_grpc_requests_total counter\n";
  std::string histogram;
  histogram +=
      "# HELP chiron_grpc_request_duration_seconds Time from the start of a gRPC call to its "
      "status, by method.\n";
  histogram += "# TYPE chiron_grpc_request_duration_seconds histogram\n";
  {
    std::lock_guard lock(mutex_);
    for (const auto& [method, stats] : methods_) {
      std::string m = "method=\"" + LabelValue(method) + "\"";
      for (const auto& [code, count] : stats.by_code) {
        out += "chiron_grpc_requests_total{" + m + ",code=\"" + LabelValue(code) + "\"} " +
               std::to_string(count) + "\n";
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += stats.buckets[i];
        histogram += "chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"" +
                     FormatDouble(kLatencyBuckets[i]) + "\"} " + std::to_string(cumulative) +
                     "\n";
      }
      histogram += "chiron_grpc_request_duration_seconds_bucket{" + m + ",le=\"+Inf\"} " +
                   std::to_string(stats.count) + "\n";
      histogram += "chiron_grpc_request_duration_seconds_sum{" + m + "} " +
                   FormatDouble(stats.sum_seconds) + "\n";
      histogram += "chiron_grpc_request_duration_seconds_count{" + m + "} " +
                   std::to_string(stats.count) + "\n";
    }
  }
  out += histogram;

  if (jobs) {
    out += "# HELP chiron_jobs Training jobs in the store, by state.\n";
    out += "# TYPE chiron_jobs gauge\n";
    if (jobs->ok()) {
      for (const char* state : kJobStates) {
        auto it = (*jobs)->find(state);
        out += "chiron_jobs{state=\"" + std::string(state) + "\"} " +
               std::to_string(it == (*jobs)->end() ? 0 : it->second) + "\n";
      }
    }
    out += "# HELP chiron_jobs_count_ok 1 if the job gauge could be read from the store.\n";
    out += "# TYPE chiron_jobs_count_ok gauge\n";
    out += std::string("chiron_jobs_count_ok ") + (jobs->ok() ? "1" : "0") + "\n";
  }
  out += "# HELP chiron_uptime_seconds Seconds since this chirond started serving.\n";
  out += "# TYPE chiron_uptime_seconds gauge\n";
  out += "chiron_uptime_seconds " + FormatDouble(uptime) + "\n";
  return out;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServiceMetrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

ServiceMetrics::JobCounter StoreJobCounter(store::Store* store) {
  return [store]() -> Result<std::map<std::string, uint64_t>> {
    CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs,
                            store->ListBlobs(store::BlobKind::kJob));
    std::map<std::string, uint64_t> counts;
    for (const store::BlobInfo& info : blobs) {
      CHIRON_ASSIGN_OR_RETURN(jobs::JobRecord record, jobs::DecodeJobRecord(info.metadata));
      int state = static_cast<int>(record.state);
      if (state >= 1 && state <= 5) ++counts[kJobStates[state - 1]];
    }
    return counts;
  };
}

}  // namespace chiron::runtime
