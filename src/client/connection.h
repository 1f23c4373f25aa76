// An attested connection from a client (owner or provider CLI) to chirond.
//
// Connect() opens a mutual-TLS gRPC channel whose server certificate must carry evidence that
// verifies under the caller's policy, makes one call to force the handshake, and returns the
// verified claims. FreshAttestation() then asks the server for evidence over a new random nonce
// and both TLS keys of this very connection and verifies it too, so the answer cannot be a
// replay of an old certificate or of another connection's evidence.
//
// Thread safety: a Connection may be used from several threads (gRPC channels are thread safe).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "shared/attest/claims.h"
#include "shared/attest/verifier.h"
#include "shared/base/status.h"
#include "shared/ratls/grpc_credentials.h"
#include "shared/ratls/ratls.h"

namespace chiron::client {

struct ConnectOptions {
  std::string server;  // host:port
  std::shared_ptr<const attest::Verifier> verifier;
  // The client's TLS identity (its principal key). Required.
  std::shared_ptr<const ratls::TlsIdentity> identity;
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
};

// A transcript of one fresh attestation, enough to re-verify it later offline
// (`chiron attest --save FILE`, then `chiron evidence verify FILE --policy P`).
struct AttestationTranscript {
  Bytes evidence;
  Bytes nonce;
  Bytes server_spki_der;
  Bytes client_spki_der;

  Bytes ExpectedReportData() const;
  std::string ToJson() const;
  static Result<AttestationTranscript> FromJson(std::string_view text);
};

class Connection {
 public:
  // Errors: Unauthenticated when the server's evidence fails verification (the message names
  // the failed check); Unavailable when the server cannot be reached.
  static Result<std::unique_ptr<Connection>> Connect(const ConnectOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // Claims verified from the server's certificate in the handshake.
  const attest::Claims& certificate_claims() const { return certificate_claims_; }
  const Bytes& server_spki_der() const { return server_spki_der_; }
  bool server_insecure() const { return server_insecure_; }
  // The host:port this connection was opened to.
  const std::string& server_address() const { return options_.server; }

  // Fresh evidence over a random nonce and this connection's keys, verified.
  Result<attest::Claims> FreshAttestation(AttestationTranscript* transcript = nullptr);

  // A context with this connection's deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const;

 private:
  Connection() = default;
  ConnectOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<ratls::ServerAttestationRecord> record_;
  attest::Claims certificate_claims_;
  Bytes server_spki_der_;
  bool server_insecure_ = false;
};

// Maps a gRPC error to a Status whose message says what to do.
Status FromGrpc(const grpc::Status& status, std::string_view call);

}  // namespace chiron::client
