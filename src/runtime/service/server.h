// RuntimeServer: chirond's service. Creates the TEE platform, a fresh attested TLS identity, opens
// the sealed store in the state directory, and serves the chiron.v1 API over gRPC with mutual TLS
// 1.3, authorising every call by the caller's principal and role (authz.h).
//
// Thread safety: Start, then Wait from one thread and Shutdown from another (e.g. a signal
// watcher) is the intended use.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/cluster/job_dispatch.h"
#include "runtime/cluster/node_listener.h"
#include "runtime/cluster/peer_directory.h"
#include "runtime/jobs/job_manager.h"
#include "runtime/service/authz.h"
#include "runtime/service/data_plane_server.h"
#include "runtime/service/metrics.h"
#include "runtime/service/metrics_http.h"
#include "runtime/store/store.h"
#include "runtime/tee/platform.h"
#include "shared/base/status.h"
#include "shared/ratls/ratls.h"

namespace chiron::runtime {

struct ServerOptions {
  // host:port; port 0 picks a free port (see RuntimeServer::port()).
  std::string listen_address = "127.0.0.1:7443";
  tee::PlatformOptions platform;
  // The sealed store lives in <platform.state_dir>/store, sealed with the platform's "store"
  // sealing key. Quotas per owner come from here (chirond --quota, --max-datasets).
  store::StoreLimits store_limits;
  // Confined training and predictions (Recipes, Jobs, Models). Unset: those services answer
  // UNIMPLEMENTED (e.g. a build without chiron-worker). Needs the store.
  std::optional<jobs::JobManagerOptions> jobs;
  // host:port for the operator metrics endpoint (plain HTTP, GET /metrics, Prometheus text;
  // metrics.h); empty: none. Port 0 picks a free port (see RuntimeServer::metrics_port()).
  std::string metrics_listen_address;
  // host:port of the data plane (data_plane_server.h, docs/formats/data-plane.md): the TLS-free
  // port for upload chunks. Empty: none (clients then upload through Datasets.Upload). Port 0
  // picks a free port (see RuntimeServer::data_plane_port()). Needs the store.
  std::string data_plane_listen_address;
  // Its ticket lifetime and connection timeouts (tests shorten them).
  DataPlaneLimits data_plane_limits;
  // Distributed training (docs/distributed.md). Unset: this node is alone.
  struct Cluster {
    std::string node_listen;         // host:port of this node's peer listener (port 0: any)
    std::vector<std::string> peers;  // the other nodes' peer listeners
    std::string policy_path;         // the cluster policy every peer must verify under
    // A platform without sealing: a fresh store key when no peer holds one (else start fails).
    bool new_store_key_if_alone = false;
    std::string advertise;  // the address peers dial for this node; "": node_listen's host and port
  };
  std::optional<Cluster> cluster;
};

class RuntimeServer {
 public:
  ~RuntimeServer();

  // Fails with a message naming the step (platform, identity, bind) that failed.
  static Result<std::unique_ptr<RuntimeServer>> Start(const ServerOptions& options);

  int port() const { return port_; }
  // The metrics endpoint's port; 0 when it is off.
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  // The peer listener's port; 0 when this node is not in a cluster.
  int node_port() const { return node_listener_ ? node_listener_->port() : 0; }
  // The data plane's port; 0 when it is off.
  int data_plane_port() const { return data_plane_ ? data_plane_->port() : 0; }
  // Closes the data-plane port while BeginUpload keeps naming it: what a client behind a firewall
  // that blocks the port sees. Tests only.
  void StopDataPlaneForTesting() {
    if (data_plane_) data_plane_->Stop();
  }
  ServiceMetrics& metrics() { return *metrics_; }
  tee::Platform& platform() { return *platform_; }
  const ratls::TlsIdentity& identity() const { return *identity_; }
  // The sealed store; null on a platform that cannot derive a sealing key (the data-path
  // services then answer UNIMPLEMENTED).
  store::Store* store() { return store_.get(); }

  // Stops accepting calls and waits up to `grace` for running ones.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void Wait();

 private:
  RuntimeServer(std::unique_ptr<tee::Platform> platform, ratls::TlsIdentity identity)
      : platform_(std::move(platform)),
        identity_(std::make_shared<const ratls::TlsIdentity>(std::move(identity))) {}

  std::unique_ptr<tee::Platform> platform_;
  std::shared_ptr<const ratls::TlsIdentity> identity_;  // shared with the peer listener
  std::unique_ptr<ServiceMetrics> metrics_;  // outlives the gRPC server and the endpoint
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<jobs::JobManager> jobs_;  // destroyed before the store it uses
  std::unique_ptr<DataPlaneServer> data_plane_;  // destroyed before the store it uses
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<MetricsHttpServer> metrics_http_;  // destroyed first
  std::unique_ptr<cluster::NodeListener> node_listener_;
  std::unique_ptr<cluster::PeerJobs> peer_jobs_;  // destroyed before the listener and store
  // On a platform without sealing: the cluster's store key, released to attested peers.
  SecretBytes cluster_store_key_;
};

}  // namespace chiron::runtime
