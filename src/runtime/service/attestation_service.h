// The Attestation service: fresh evidence bound to the caller's nonce and to both TLS keys of the
// connection, and the server's public facts.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "chiron/v1/attestation.grpc.pb.h"
#include "runtime/cluster/peer_directory.h"
#include "runtime/tee/platform.h"
#include "shared/base/bytes.h"

namespace chiron::runtime {

class AttestationService final : public v1::Attestation::Service {
 public:
  // `platform` must outlive the service. `server_spki_der` is the SPKI of the TLS certificate the
  // server presents (the one whose evidence clients verified in the handshake).
  // `implemented` names the services whose calls this server implements (GetServerInfo).
  // `peers` (may be null: not in a cluster) and `node_address` (this node's peer listener) are
  // what ListNodes reports.
  AttestationService(tee::Platform* platform, Bytes server_spki_der,
                     std::vector<std::string> implemented,
                     std::shared_ptr<const cluster::PeerDirectory> peers = nullptr,
                     std::string node_address = {})
      : platform_(platform),
        server_spki_der_(std::move(server_spki_der)),
        implemented_(std::move(implemented)),
        peers_(std::move(peers)),
        node_address_(std::move(node_address)) {}

  grpc::Status GetEvidence(grpc::ServerContext* context, const v1::GetEvidenceRequest* request,
                           v1::GetEvidenceResponse* response) override;
  grpc::Status GetServerInfo(grpc::ServerContext* context,
                             const v1::GetServerInfoRequest* request,
                             v1::GetServerInfoResponse* response) override;
  // Any caller: dials every peer now (at most kProbeTimeout) and reports what it found.
  grpc::Status ListNodes(grpc::ServerContext* context, const v1::ListNodesRequest* request,
                         v1::ListNodesResponse* response) override;

  static constexpr std::chrono::milliseconds kProbeTimeout{5000};

 private:
  tee::Platform* platform_;
  Bytes server_spki_der_;
  std::vector<std::string> implemented_;
  std::shared_ptr<const cluster::PeerDirectory> peers_;
  std::string node_address_;
};

}  // namespace chiron::runtime
