// X.509 certificates: creating self-signed certificates with custom extensions (attested TLS),
// parsing, and verifying chains to pinned roots at an explicit time with optional CRLs
// (TDX PCK and SEV-SNP VCEK chains).
//
// Certificate shares its OpenSSL X509 (reference counted); immutable; thread safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/crypto/keys.h"

typedef struct x509_st X509;

namespace chiron::crypto {

struct CertificateExtension {
  std::string oid;  // dotted form, e.g. "1.3.6.1.4.1.99999.1"
  bool critical = false;
  Bytes value;  // the extnValue OCTET STRING's contents
};

struct CertificateRequest {
  std::string common_name;
  // Validity window; not_before defaults to "now minus one hour" when unset.
  std::optional<std::chrono::system_clock::time_point> not_before;
  std::chrono::seconds lifetime = std::chrono::hours(24 * 365);
  std::vector<CertificateExtension> extensions;
  std::vector<std::string> dns_names;  // subjectAltName
  // basicConstraints: CA:TRUE (with keyUsage keyCertSign + cRLSign) when set, else CA:FALSE
  // (with keyUsage digitalSignature). Both extensions are marked critical.
  bool is_ca = false;
  // For CAs: the pathLenConstraint; unset means no limit.
  std::optional<int> path_length;
};

class Certificate {
 public:
  static Result<Certificate> FromDer(ByteSpan der);
  // Parses the first certificate of a PEM text.
  static Result<Certificate> FromPem(std::string_view pem);
  // Parses every certificate of a PEM text in order; InvalidArgument if there is none.
  static Result<std::vector<Certificate>> ChainFromPem(std::string_view pem);

  // Self-signed by `key` (SHA-256 for P-256/Ed25519 is implied by the scheme; SHA-384 for P-384).
  static Result<Certificate> CreateSelfSigned(const PrivateKey& key,
                                              const CertificateRequest& request);

  // Signed by `issuer_key`, whose certificate is `issuer_cert` (its subject becomes the issuer
  // name and its subjectKeyIdentifier the authorityKeyIdentifier). Used to build CA chains
  // (set request.is_ca for intermediates). InvalidArgument if issuer_key does not match
  // issuer_cert's public key.
  static Result<Certificate> CreateSigned(const PrivateKey& issuer_key,
                                          const Certificate& issuer_cert,
                                          const PublicKey& subject_public_key,
                                          const CertificateRequest& request);

  Result<Bytes> ToDer() const;
  std::string ToPem() const;

  Result<PublicKey> public_key() const;
  std::string subject() const;  // one-line RFC 2253 form
  std::string issuer() const;
  std::chrono::system_clock::time_point not_before() const;
  std::chrono::system_clock::time_point not_after() const;
  // The serial number as a minimal big-endian unsigned integer (what CRLs list).
  Bytes serial_number() const;

  // The extension with this dotted OID, or NotFound. InvalidArgument if it appears twice.
  Result<CertificateExtension> FindExtension(std::string_view oid) const;
  // Checks this certificate's signature with `issuer_key` (no other checks).
  Status VerifySignature(const PublicKey& issuer_key) const;

  X509* native() const { return cert_.get(); }

 private:
  explicit Certificate(std::shared_ptr<X509> cert) : cert_(std::move(cert)) {}
  std::shared_ptr<X509> cert_;
};

struct ChainVerifyOptions {
  // The time at which validity periods (and CRLs) are judged; tests pin it for reproducibility.
  std::chrono::system_clock::time_point verification_time = std::chrono::system_clock::now();
  // DER CRLs; when non-empty, every certificate in the chain must be covered by a CRL of its
  // issuer, and revoked certificates are rejected.
  std::vector<Bytes> crls_der;
};

// Verifies that `leaf` chains through `intermediates` to one of `roots`, using OpenSSL's path
// validation (signatures, validity at verification_time, CA constraints, CRLs). Errors name the
// failing certificate and OpenSSL's reason, e.g. "certificate has expired".
// Any failure is Unauthenticated; InvalidArgument if a CRL cannot be parsed.
// Each of `roots` is a pinned trust anchor, even if it is not self-signed (a chain may stop at
// any of them). OpenSSL rejects certificates carrying a critical extension it does not know
// ("unhandled critical extension"): mark custom extensions non-critical if such certificates
// must pass this function.
Status VerifyCertificateChain(const Certificate& leaf,
                              const std::vector<Certificate>& intermediates,
                              const std::vector<Certificate>& roots,
                              const ChainVerifyOptions& options);

struct CrlRequest {
  std::chrono::system_clock::time_point this_update = std::chrono::system_clock::now();
  std::chrono::seconds lifetime = std::chrono::hours(24 * 30);  // nextUpdate - thisUpdate
  std::vector<Bytes> revoked_serials;  // as returned by Certificate::serial_number()
};

// A DER X.509 v2 CRL signed by `issuer_key` for the certificates issued by `issuer_cert`.
// Chiron verifies CRLs rather than issuing them; this exists for tests and tools.
Result<Bytes> CreateCrl(const PrivateKey& issuer_key, const Certificate& issuer_cert,
                        const CrlRequest& request);

}  // namespace chiron::crypto
