// Attested TLS (RA-TLS): TLS certificates that carry TEE evidence binding their own key.
//
// The runtime creates a fresh ECDSA P-256 key pair at start, asks its TEE platform for evidence
// whose 64-byte report data is CertificateReportData(SPKI of that key), and puts the serialized
// evidence into a non-critical X.509 extension (kEvidenceExtensionOid, a CMW record, see
// evidence_extension.h) of a self-signed certificate. A client trusts the certificate because the evidence verifies under its policy
// and binds the very key the TLS handshake proved possession of; no certificate authority is
// involved. Freshness comes from GetEvidence (FreshReportData over a client nonce and both
// endpoints' keys). The byte-level details are in docs/attested-tls.md.
//
// Thread safety: free functions are thread safe; TlsIdentity is an immutable value.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "shared/attest/claims.h"
#include "shared/attest/verifier.h"
#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"
#include "shared/ratls/evidence_extension.h"

namespace chiron::ratls {

// The DNS name in every runtime certificate. Clients connect by address but check this name (the
// gRPC target name override), which keeps TLS host-name checking quiet; trust still comes only
// from the evidence.
inline constexpr char kServerName[] = "chirond.chiron.invalid";

// Nonce limits for GetEvidence.
inline constexpr size_t kMinNonceSize = 16;
inline constexpr size_t kMaxNonceSize = 64;

// SHA-512("chiron-ratls-cert-v1" 0x00 || spki_der): the report data a certificate's evidence binds.
Bytes CertificateReportData(ByteSpan spki_der);

// SHA-512("chiron-ratls-fresh-v1" 0x00 || u32le(len) nonce || u32le(len) server_spki ||
// u32le(len) client_spki): the report data of GetEvidence, binding the client's nonce and the
// TLS keys of both ends of this connection.
Bytes FreshReportData(ByteSpan nonce, ByteSpan server_spki_der, ByteSpan client_spki_der);

// A key and certificate for one end of a TLS connection, with PEM forms for gRPC.
struct TlsIdentity {
  crypto::PrivateKey key;
  crypto::Certificate certificate;
  Bytes spki_der;            // the certificate's SubjectPublicKeyInfo
  SecretBytes key_pem;       // PKCS#8 PEM of `key`
  std::string cert_pem;
};

// Produces serialized evidence over 64 bytes of report data (the TEE platform).
using EvidenceProducer = std::function<Result<Bytes>(ByteSpan report_data)>;

// A fresh P-256 key and a self-signed certificate carrying evidence over its SPKI.
Result<TlsIdentity> CreateAttestedIdentity(const EvidenceProducer& produce_evidence,
                                           std::string_view common_name);

// A self-signed certificate for an existing key, without evidence: clients identify themselves
// by their key (the principal id is the hash of its SPKI).
Result<TlsIdentity> CreateClientIdentity(const crypto::PrivateKey& key,
                                         std::string_view common_name);

// Extracts the evidence extension (CertificateEvidence) and verifies it under `verifier`,
// requiring report data equal to CertificateReportData(certificate SPKI). Errors say which step
// failed ("certificate has no Chiron evidence extension", "runs an older Chiron release", or the
// verifier's message).
Result<attest::Claims> VerifyAttestedCertificate(const crypto::Certificate& certificate,
                                                 const attest::Verifier& verifier);

// The hex SHA-256 of an SPKI: how Chiron names a principal.
std::string PrincipalId(ByteSpan spki_der);

}  // namespace chiron::ratls
