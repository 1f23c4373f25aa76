// The Attestation service: fresh evidence bound to the caller's nonce and to both TLS keys of the
// connection, and the server's public facts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chiron/v1/attestation.grpc.pb.h"
#include "runtime/tee/platform.h"
#include "shared/base/bytes.h"

namespace chiron::runtime {

class AttestationService final : public v1::Attestation::Service {
 public:
  // `platform` must outlive the service. `server_spki_der` is the SPKI of the TLS certificate the
  // server presents (the one whose evidence clients verified in the handshake).
  // `implemented` names the services whose calls this server implements (GetServerInfo).
  AttestationService(tee::Platform* platform, Bytes server_spki_der,
                     std::vector<std::string> implemented)
      : platform_(platform),
        server_spki_der_(std::move(server_spki_der)),
        implemented_(std::move(implemented)) {}

  grpc::Status GetEvidence(grpc::ServerContext* context, const v1::GetEvidenceRequest* request,
                           v1::GetEvidenceResponse* response) override;
  grpc::Status GetServerInfo(grpc::ServerContext* context,
                             const v1::GetServerInfoRequest* request,
                             v1::GetServerInfoResponse* response) override;

 private:
  tee::Platform* platform_;
  Bytes server_spki_der_;
  std::vector<std::string> implemented_;
};

}  // namespace chiron::runtime
