#include "runtime/service/attestation_service.h"

#include "runtime/service/grpc_status.h"
#include "shared/base/log.h"
#include "shared/ratls/grpc_credentials.h"
#include "shared/ratls/ratls.h"

namespace chiron::runtime {

#ifndef CHIRON_VERSION
#define CHIRON_VERSION "0.1.0"
#endif

grpc::Status AttestationService::GetEvidence(grpc::ServerContext* context,
                                             const v1::GetEvidenceRequest* request,
                                             v1::GetEvidenceResponse* response) {
  const std::string& nonce = request->nonce();
  if (nonce.size() < ratls::kMinNonceSize || nonce.size() > ratls::kMaxNonceSize) {
    return ToGrpc(InvalidArgumentError(
        "nonce must be " + std::to_string(ratls::kMinNonceSize) + ".." +
        std::to_string(ratls::kMaxNonceSize) + " random bytes, got " +
        std::to_string(nonce.size())));
  }
  auto client_spki = ratls::PeerSpki(*context);
  if (!client_spki.ok()) return ToGrpc(client_spki.status());
  Bytes report_data = ratls::FreshReportData(AsBytes(nonce), server_spki_der_, *client_spki);
  auto evidence = platform_->GetEvidence(report_data);
  if (!evidence.ok()) {
    LogError("attestation.evidence_failed", {{"error", evidence.status().ToString()}});
    return ToGrpc(evidence.status().WithContext("cannot produce evidence"));
  }
  response->set_evidence(ToString(*evidence));
  response->set_platform(std::string(platform_->name()));
  return grpc::Status::OK;
}

grpc::Status AttestationService::GetServerInfo(grpc::ServerContext* /*context*/,
                                               const v1::GetServerInfoRequest* /*request*/,
                                               v1::GetServerInfoResponse* response) {
  response->set_version(CHIRON_VERSION);
  response->set_platform(std::string(platform_->name()));
  response->set_insecure(platform_->insecure());
  for (const std::string& name : implemented_) response->add_api_implemented(name);
  return grpc::Status::OK;
}

grpc::Status AttestationService::ListNodes(grpc::ServerContext* /*context*/,
                                           const v1::ListNodesRequest* /*request*/,
                                           v1::ListNodesResponse* response) {
  response->set_node_address(node_address_);
  if (peers_ == nullptr) return grpc::Status::OK;
  for (const cluster::PeerView& view : peers_->Probe(kProbeTimeout)) {
    v1::ClusterNode* node = response->add_peers();
    node->set_address(view.address);
    node->set_verified(view.verified);
    node->set_certificate_pem(view.certificate_pem);
    node->set_problem(view.problem);
    if (!view.verified) {
      LogWarning("cluster.peer_not_verified", {{"peer", view.address}, {"problem", view.problem}});
    }
  }
  return grpc::Status::OK;
}

}  // namespace chiron::runtime
