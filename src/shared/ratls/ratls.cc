#include "shared/ratls/ratls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "shared/crypto/hash.h"

namespace chiron::ratls {
namespace {

void AppendSized(Bytes& out, ByteSpan data) {
  AppendU32Le(out, static_cast<uint32_t>(data.size()));
  Append(out, data);
}

Result<SecretBytes> PrivateKeyPem(const crypto::PrivateKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_secmem()), BIO_free);
  if (!bio) return InternalError("cannot allocate an OpenSSL memory BIO");
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key.native(), nullptr, nullptr, 0, nullptr,
                                    nullptr) != 1) {
    return InternalError("cannot encode the TLS private key as PEM");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr) return InternalError("empty PEM private key");
  return SecretBytes(ByteSpan(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size)));
}

Result<TlsIdentity> MakeIdentity(const crypto::PrivateKey& key, crypto::CertificateRequest request) {
  CHIRON_ASSIGN_OR_RETURN(crypto::Certificate cert,
                          crypto::Certificate::CreateSelfSigned(key, request));
  CHIRON_ASSIGN_OR_RETURN(Bytes spki, key.public_key().ToSpkiDer());
  CHIRON_ASSIGN_OR_RETURN(SecretBytes key_pem, PrivateKeyPem(key));
  std::string cert_pem = cert.ToPem();
  return TlsIdentity{key, std::move(cert), std::move(spki), std::move(key_pem),
                     std::move(cert_pem)};
}

}  // namespace

Bytes CertificateReportData(ByteSpan spki_der) {
  Bytes input = ToBytes("chiron-ratls-cert-v1");
  input.push_back(0);
  Append(input, spki_der);
  return crypto::Sha512(input);
}

Bytes FreshReportData(ByteSpan nonce, ByteSpan server_spki_der, ByteSpan client_spki_der) {
  Bytes input = ToBytes("chiron-ratls-fresh-v1");
  input.push_back(0);
  AppendSized(input, nonce);
  AppendSized(input, server_spki_der);
  AppendSized(input, client_spki_der);
  return crypto::Sha512(input);
}

Result<TlsIdentity> CreateAttestedIdentity(const EvidenceProducer& produce_evidence,
                                           std::string_view common_name) {
  CHIRON_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                          crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256));
  CHIRON_ASSIGN_OR_RETURN(Bytes spki, key.public_key().ToSpkiDer());
  CHIRON_ASSIGN_OR_RETURN(Bytes evidence, produce_evidence(CertificateReportData(spki)));
  auto extension = EncodeEvidenceExtension(evidence);
  if (!extension.ok()) return InternalError("platform evidence: " + extension.status().message());
  crypto::CertificateRequest request;
  request.common_name = std::string(common_name);
  request.lifetime = std::chrono::hours(24 * 30);
  request.extensions.push_back({kEvidenceExtensionOid, false, std::move(*extension)});
  request.dns_names.push_back(kServerName);
  return MakeIdentity(key, std::move(request));
}

Result<TlsIdentity> CreateClientIdentity(const crypto::PrivateKey& key,
                                         std::string_view common_name) {
  crypto::CertificateRequest request;
  request.common_name = std::string(common_name);
  request.lifetime = std::chrono::hours(24 * 365 * 10);
  return MakeIdentity(key, std::move(request));
}

Result<attest::Claims> VerifyAttestedCertificate(const crypto::Certificate& certificate,
                                                 const attest::Verifier& verifier) {
  CHIRON_ASSIGN_OR_RETURN(Bytes evidence, CertificateEvidence(certificate));
  CHIRON_ASSIGN_OR_RETURN(crypto::PublicKey public_key, certificate.public_key());
  CHIRON_ASSIGN_OR_RETURN(Bytes spki, public_key.ToSpkiDer());
  auto claims = verifier.Verify(evidence, CertificateReportData(spki));
  if (!claims.ok()) return claims.status().WithContext("server certificate evidence");
  return claims;
}

std::string PrincipalId(ByteSpan spki_der) { return HexEncode(crypto::Sha256(spki_der)); }

}  // namespace chiron::ratls
