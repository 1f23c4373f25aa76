#include "runtime/service/server.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "runtime/service/attestation_service.h"
#include "runtime/service/audit_service.h"
#include "runtime/service/datasets_service.h"
#include "runtime/service/pending_services.h"
#include "runtime/service/principals_service.h"
#include "runtime/service/training_services.h"
#include "shared/attest/policy.h"
#include "shared/attest/verifier.h"
#include "shared/base/file_system.h"
#include "shared/base/log.h"
#include "shared/crypto/random.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::runtime {

RuntimeServer::~RuntimeServer() { Shutdown(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<RuntimeServer>> RuntimeServer::Start(const ServerOptions& options) {
  auto platform = tee::CreatePlatform(options.platform);
  if (!platform.ok()) return platform.status().WithContext("TEE platform");
  tee::Platform* raw_platform = platform->get();
  if (raw_platform->insecure()) {
    LogWarning("tee.insecure",
               {{"platform", std::string(raw_platform->name())},
                {"message",
                 "INSECURE: the sim platform is a software simulation; it protects nothing and "
                 "its evidence proves nothing. Use it only for development and tests."}});
  }
  LogInfo("tee.ready", {{"platform", raw_platform->Describe()}});

  auto identity = ratls::CreateAttestedIdentity(
      [raw_platform](ByteSpan report_data) { return raw_platform->GetEvidence(report_data); },
      "chirond");
  if (!identity.ok()) return identity.status().WithContext("attested TLS identity");

  std::unique_ptr<RuntimeServer> server(
      new RuntimeServer(std::move(*platform), std::move(*identity)));

  std::vector<std::string> implemented = {"chiron.v1.Attestation"};

  // Distributed training: this node's peer listener and its directory of the other nodes, both
  // under the cluster policy.
  std::shared_ptr<const cluster::PeerDirectory> peers;
  std::shared_ptr<const attest::Verifier> cluster_verifier;
  std::string node_address;
  if (options.cluster) {
    auto policy = attest::Policy::LoadFile(options.cluster->policy_path);
    if (!policy.ok()) return policy.status().WithContext("cluster policy");
    auto verifier = attest::Verifier::Create(*policy);
    if (!verifier.ok()) return verifier.status().WithContext("cluster policy");
    cluster_verifier = std::make_shared<const attest::Verifier>(std::move(*verifier));
    auto listener = cluster::NodeListener::Start(options.cluster->node_listen, server->identity_,
                                                 cluster_verifier);
    if (!listener.ok()) return listener.status().WithContext("peer listener (--node-listen)");
    server->node_listener_ = std::move(*listener);
    node_address =
        !options.cluster->advertise.empty()
            ? options.cluster->advertise
            : options.cluster->node_listen.substr(0, options.cluster->node_listen.rfind(':')) +
                  ":" + std::to_string(server->node_listener_->port());
    peers = std::make_shared<const cluster::PeerDirectory>(options.cluster->peers,
                                                           server->identity_, cluster_verifier);
    LogInfo("cluster.listening",
            {{"address", node_address}, {"peers", std::to_string(options.cluster->peers.size())}});
  }
  // The sealed store, under a key only this measured runtime on this platform can derive; on a
  // platform without sealing (tsm), in a cluster, the cluster's store key from an attested peer.
  auto sealing_key = raw_platform->DeriveSealingKey("store");
  if (!sealing_key.ok() && sealing_key.status().code() == StatusCode::kUnimplemented && peers) {
    auto fetched = peers->FetchStoreKey(std::chrono::seconds(10));
    if (fetched.ok()) {
      LogInfo("cluster.store_key", {{"source", "peer"}});
    } else if (options.cluster->new_store_key_if_alone &&
               fetched.status().code() == StatusCode::kNotFound) {
      fetched = crypto::RandomSecret(32);
      LogWarning("cluster.store_key",
                 {{"source", "new"},
                  {"message",
                   "no peer holds the cluster store key: a fresh one, kept only in "
                   "this cluster's memory (if every node stops, the stores cannot "
                   "be opened again)"}});
    }
    if (!fetched.ok()) {
      return FailedPreconditionError(
          "this platform gives no sealing key, and " + std::string(fetched.status().message()) +
          ": start a node that holds the cluster's store key first, or start the cluster's "
          "first node with --cluster-store-key new");
    }
    server->cluster_store_key_ = fetched->Clone();
    RuntimeServer* raw_server = server.get();
    server->node_listener_->SetStoreKeyHandler(
        [raw_server]() -> Result<SecretBytes> { return raw_server->cluster_store_key_.Clone(); });
    sealing_key = std::move(fetched);
  }
  if (sealing_key.ok()) {
    std::string store_dir = JoinPath(options.platform.state_dir, "store");
    store::StoreLimits limits = options.store_limits;
    limits.unmetered_principals.push_back(jobs::kBuiltinPrincipal);  // the built-in recipes
    auto store = store::Store::Open(store_dir, std::move(*sealing_key), FileSystem::Default(),
                                    limits);
    if (!store.ok()) return store.status().WithContext("sealed store " + store_dir);
    server->store_ = std::move(*store);
    server->authorizer_ = std::make_unique<Authorizer>(server->store_.get());
    server->services_.push_back(
        std::make_unique<PrincipalsService>(server->store_.get(), server->authorizer_.get()));
    if (!options.data_plane_listen_address.empty()) {
      auto data_plane =
          DataPlaneServer::Start(options.data_plane_listen_address, server->store_.get(),
                                 options.data_plane_limits);
      if (!data_plane.ok()) return data_plane.status().WithContext("data plane");
      server->data_plane_ = std::move(*data_plane);
    }
    if (options.jobs) {
      jobs::JobManagerOptions jobs_options = *options.jobs;
      if (peers) {
        // Jobs on several nodes: this node leads them (ClusterDispatcher) and trains other
        // leaders' ranks (PeerJobs).
        auto dispatcher = std::make_shared<cluster::ClusterDispatcher>(
            server->node_listener_.get(), peers, cluster::ClusterDispatcherOptions{node_address});
        jobs_options.dispatcher = dispatcher;
        std::weak_ptr<cluster::ClusterDispatcher> weak = dispatcher;
        server->node_listener_->SetRankFailureHandler(
            [weak](ByteSpan caller, const std::string& job_id, uint32_t rank,
                   uint32_t failure) -> Status {
              auto alive = weak.lock();
              if (!alive) return UnavailableError("this node is shutting down");
              return alive->HearRankFailure(caller, job_id, rank, failure);
            });
        cluster::PeerJobsOptions peer_options;
        peer_options.worker = options.jobs->worker;
        // The operator's memory limit on a job applies to the ranks this node trains for others.
        peer_options.worker.limits.max_resident_size = options.jobs->max_job_memory_size;
        server->peer_jobs_ =
            std::make_unique<cluster::PeerJobs>(server->store_.get(), server->node_listener_.get(),
                                                server->identity_, cluster_verifier, peer_options);
        cluster::PeerJobs* peer_jobs = server->peer_jobs_.get();
        server->node_listener_->SetOfferHandler([peer_jobs](cluster::ReceivedOffer offer) {
          return peer_jobs->HandleOffer(std::move(offer));
        });
      }
      server->jobs_ = std::make_unique<jobs::JobManager>(server->store_.get(), jobs_options);
    }
    server->services_.push_back(std::make_unique<DatasetsService>(
        server->store_.get(), server->authorizer_.get(), server->data_plane_.get(),
        server->jobs_ ? &server->jobs_->training() : nullptr));
    server->services_.push_back(
        std::make_unique<AuditService>(server->store_.get(), server->authorizer_.get()));
    LogInfo("store.open", {{"dir", store_dir}});
    if (server->jobs_) {
      CHIRON_RETURN_IF_ERROR(server->jobs_->Start().WithContext("training jobs"));
      server->services_.push_back(
          std::make_unique<RecipesService>(server->jobs_.get(), server->authorizer_.get()));
      server->services_.push_back(
          std::make_unique<JobsService>(server->jobs_.get(), server->authorizer_.get()));
      server->services_.push_back(
          std::make_unique<ModelsService>(server->jobs_.get(), server->authorizer_.get()));
    }
  } else if (sealing_key.status().code() == StatusCode::kUnimplemented) {
    LogWarning("store.unavailable",
               {{"reason", sealing_key.status().message()},
                {"message", "no sealing key on this platform: datasets, principals and audit "
                            "answer UNIMPLEMENTED"}});
  } else {
    return sealing_key.status().WithContext("store sealing key");
  }
  if (server->store_) {
    for (const char* name : {"chiron.v1.Principals", "chiron.v1.Datasets", "chiron.v1.Audit"}) {
      implemented.push_back(name);
    }
  }
  if (server->jobs_) {
    for (const char* name : {"chiron.v1.Recipes", "chiron.v1.Jobs", "chiron.v1.Models"}) {
      implemented.push_back(name);
    }
  }
  server->services_.push_back(std::make_unique<AttestationService>(
      server->platform_.get(), server->identity_->spki_der, std::move(implemented), peers,
      node_address));
  for (auto& service : MakePendingServices(/*include_data_path=*/server->store_ == nullptr,
                                           /*include_training=*/server->jobs_ == nullptr)) {
    server->services_.push_back(std::move(service));
  }

  // Service-level metrics: every call counted by an interceptor; jobs by state from the store.
  server->metrics_ = std::make_unique<ServiceMetrics>(
      server->store_ ? StoreJobCounter(server->store_.get()) : ServiceMetrics::JobCounter());

  grpc::ServerBuilder builder;
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(server->metrics_->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.AddListeningPort(options.listen_address,
                           ratls::AttestedServerCredentials(*server->identity_, nullptr),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(80 * 1024 * 1024);
  for (auto& service : server->services_) builder.RegisterService(service.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return UnavailableError("cannot listen on " + options.listen_address +
                            " (address in use or not local? pick another --listen)");
  }
  if (!options.metrics_listen_address.empty()) {
    ServiceMetrics* metrics = server->metrics_.get();
    auto http = MetricsHttpServer::Start(options.metrics_listen_address,
                                         [metrics] { return metrics->RenderPrometheus(); });
    if (!http.ok()) return http.status().WithContext("metrics endpoint");
    server->metrics_http_ = std::move(*http);
  }
  LogInfo("server.listening",
          {{"address", options.listen_address}, {"port", std::to_string(server->port_)},
           {"tls_key", ratls::PrincipalId(server->identity_->spki_der)},
           {"data_plane_port", std::to_string(server->data_plane_port())}});
  return server;
}

void RuntimeServer::Shutdown(std::chrono::milliseconds grace) {
  if (metrics_http_) metrics_http_->Stop();
  // Training first: every running job's worker is killed now (the jobs resume at the next start)
  // and Watch streams end, so no RPC waits on training.
  if (jobs_) jobs_->training().Stop();
  // In-flight predictions get the grace period to finish; a worker still busy after it (a
  // recipe that hangs) is killed, so the server's shutdown never waits on recipe code.
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mutex);
    if (!done_cv.wait_for(lock, grace + std::chrono::seconds(1), [&] { return done; }) && jobs_) {
      jobs_->models().workers().AbortInFlight();
    }
  });
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + grace);
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  done_cv.notify_all();
  watchdog.join();
  // Ends data-plane uploads at once; chunks they had accepted are still stored.
  if (data_plane_) data_plane_->Stop();
  if (node_listener_) node_listener_->Shutdown();
  if (peer_jobs_) peer_jobs_->Stop();
  if (jobs_) jobs_->Stop();
}

void RuntimeServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace chiron::runtime
