// gRPC credentials for attested TLS, both directions.
//
// Client: AttestedChannelCredentials presents the client's own key (mutual TLS: the server names
// the caller by it) and accepts a server only if its certificate's evidence verifies under the
// client's policy (ratls.h); CA roots and host names play no part. What the check learned is kept
// in a ServerAttestationRecord so the caller can show the claims and run GetEvidence against the
// very key it verified.
//
// Server: AttestedServerCredentials serves the runtime's attested certificate and requires a
// client certificate. With a peer verifier (node-to-node, mutual attestation) the client's
// certificate must carry evidence that verifies too; without one, any well-formed self-signed
// client certificate is accepted and identifies a principal (authorisation happens per call).
//
// TLS 1.3 only: gRPC 1.51 has no public setting for the minimum TLS version, so Chiron restricts
// the TLS 1.2 cipher list to PSK suites, which a server without PSKs never negotiates: a TLS 1.2
// handshake fails with "no shared cipher" (tested in grpc_credentials_test.cc).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "shared/attest/claims.h"
#include "shared/attest/verifier.h"
#include "shared/base/status.h"
#include "shared/ratls/ratls.h"

namespace chiron::ratls {

// What the client verified about the server in the most recent handshake. Thread safe.
class ServerAttestationRecord {
 public:
  struct Entry {
    attest::Claims claims;
    Bytes server_spki_der;
    std::string server_cert_pem;
  };

  void RecordSuccess(Entry entry);
  void RecordFailure(std::string message);
  // The last verified server, if any handshake succeeded.
  std::optional<Entry> last_verified() const;
  // The message of the last rejected handshake ("" if none).
  std::string last_failure() const;

 private:
  mutable std::mutex mutex_;
  std::optional<Entry> verified_;
  std::string failure_;
};

// Makes TLS 1.2 unnegotiable for every gRPC TLS credential of this process. Idempotent; the
// factories below call it, and it must run before gRPC creates its first TLS context.
void RequireTls13();

std::shared_ptr<grpc::ChannelCredentials> AttestedChannelCredentials(
    const TlsIdentity& client_identity, std::shared_ptr<const attest::Verifier> server_verifier,
    std::shared_ptr<ServerAttestationRecord> record);

// Channel arguments Chiron clients use (no proxies, bounded message sizes).
grpc::ChannelArguments AttestedChannelArguments();

std::shared_ptr<grpc::ServerCredentials> AttestedServerCredentials(
    const TlsIdentity& server_identity, std::shared_ptr<const attest::Verifier> peer_verifier);

// The caller's TLS public key (SPKI DER) as seen by a server handler. Unauthenticated if the
// connection carries no client certificate.
Result<Bytes> PeerSpki(const grpc::ServerContext& context);

}  // namespace chiron::ratls
