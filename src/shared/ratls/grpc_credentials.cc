#include "shared/ratls/grpc_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <stdlib.h>

#include <string>

namespace chiron::ratls {
namespace {

using grpc::experimental::ExternalCertificateVerifier;
using grpc::experimental::TlsCustomVerificationCheckRequest;

// TLS 1.2 suites that need a pre-shared key; Chiron configures none, so no TLS 1.2 handshake
// can agree on a suite. TLS 1.3 suites are configured separately by OpenSSL and stay enabled.
constexpr char kTls12Unusable[] = "PSK-AES256-GCM-SHA384";

// Verifies a server's attested certificate on the client side.
class ServerEvidenceVerifier final : public ExternalCertificateVerifier {
 public:
  ServerEvidenceVerifier(std::shared_ptr<const attest::Verifier> verifier,
                         std::shared_ptr<ServerAttestationRecord> record)
      : verifier_(std::move(verifier)), record_(std::move(record)) {}

  bool Verify(TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    Status status = Check(std::string(request->peer_cert().data(), request->peer_cert().size()));
    if (status.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      record_->RecordFailure(status.message());
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, status.message());
    }
    return true;  // synchronous
  }

  void Cancel(TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  Status Check(const std::string& pem) {
    if (pem.empty()) return UnauthenticatedError("the server presented no certificate");
    CHIRON_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::Certificate::FromPem(pem));
    CHIRON_ASSIGN_OR_RETURN(attest::Claims claims, VerifyAttestedCertificate(cert, *verifier_));
    CHIRON_ASSIGN_OR_RETURN(crypto::PublicKey key, cert.public_key());
    CHIRON_ASSIGN_OR_RETURN(Bytes spki, key.ToSpkiDer());
    record_->RecordSuccess({std::move(claims), std::move(spki), pem});
    return Status::Ok();
  }

  std::shared_ptr<const attest::Verifier> verifier_;
  std::shared_ptr<ServerAttestationRecord> record_;
};

// Verifies a client's certificate on the server side: attested (peer_verifier set) or merely a
// well-formed self-signed certificate whose key the handshake proved the client holds.
class ClientCertificateVerifier final : public ExternalCertificateVerifier {
 public:
  explicit ClientCertificateVerifier(std::shared_ptr<const attest::Verifier> peer_verifier)
      : peer_verifier_(std::move(peer_verifier)) {}

  bool Verify(TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    Status status = Check(std::string(request->peer_cert().data(), request->peer_cert().size()));
    *sync_status = status.ok()
                       ? grpc::Status::OK
                       : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, status.message());
    return true;
  }

  void Cancel(TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  Status Check(const std::string& pem) {
    if (pem.empty()) return UnauthenticatedError("client certificate required");
    CHIRON_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::Certificate::FromPem(pem));
    if (peer_verifier_) {
      auto claims = VerifyAttestedCertificate(cert, *peer_verifier_);
      if (!claims.ok()) return claims.status().WithContext("peer node");
      return Status::Ok();
    }
    CHIRON_ASSIGN_OR_RETURN(crypto::PublicKey key, cert.public_key());
    return cert.VerifySignature(key).WithContext("client certificate is not self-signed");
  }

  std::shared_ptr<const attest::Verifier> peer_verifier_;
};

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> IdentityProvider(
    const TlsIdentity& identity) {
  std::string key_pem(reinterpret_cast<const char*>(identity.key_pem.data()),
                      identity.key_pem.size());
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs = {{key_pem, identity.cert_pem}};
  SecureZero(key_pem.data(), key_pem.size());
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(pairs);
}

}  // namespace

void ServerAttestationRecord::RecordSuccess(Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  verified_ = std::move(entry);
  failure_.clear();
}

void ServerAttestationRecord::RecordFailure(std::string message) {
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = std::move(message);
}

std::optional<ServerAttestationRecord::Entry> ServerAttestationRecord::last_verified() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return verified_;
}

std::string ServerAttestationRecord::last_failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

void RequireTls13() {
  static std::once_flag once;
  std::call_once(once, [] { ::setenv("GRPC_SSL_CIPHER_SUITES", kTls12Unusable, 1); });
}

std::shared_ptr<grpc::ChannelCredentials> AttestedChannelCredentials(
    const TlsIdentity& client_identity, std::shared_ptr<const attest::Verifier> server_verifier,
    std::shared_ptr<ServerAttestationRecord> record) {
  RequireTls13();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(IdentityProvider(client_identity));
  options.watch_identity_key_cert_pairs();
  // Trust comes from the evidence, not from CA roots or host names.
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      ExternalCertificateVerifier::Create<ServerEvidenceVerifier>(std::move(server_verifier),
                                                                  std::move(record)));
  return grpc::experimental::TlsCredentials(options);
}

grpc::ChannelArguments AttestedChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetMaxReceiveMessageSize(80 * 1024 * 1024);
  args.SetMaxSendMessageSize(80 * 1024 * 1024);
  // One TLS connection per channel: the attestation record describes exactly it.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetSslTargetNameOverride(kServerName);
  return args;
}

std::shared_ptr<grpc::ServerCredentials> AttestedServerCredentials(
    const TlsIdentity& server_identity, std::shared_ptr<const attest::Verifier> peer_verifier) {
  RequireTls13();
  grpc::experimental::TlsServerCredentialsOptions options(IdentityProvider(server_identity));
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      ExternalCertificateVerifier::Create<ClientCertificateVerifier>(std::move(peer_verifier)));
  return grpc::experimental::TlsServerCredentials(options);
}

Result<Bytes> PeerSpki(const grpc::ServerContext& context) {
  auto auth = context.auth_context();
  if (!auth) return UnauthenticatedError("connection carries no authentication context");
  auto values = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (values.empty()) {
    return UnauthenticatedError("no client certificate: connect with a Chiron identity");
  }
  std::string pem(values.front().data(), values.front().size());
  CHIRON_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::Certificate::FromPem(pem));
  CHIRON_ASSIGN_OR_RETURN(crypto::PublicKey key, cert.public_key());
  return key.ToSpkiDer();
}

}  // namespace chiron::ratls
