#include "shared/crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <set>
#include <string>

#include "shared/crypto/openssl_util.h"
#include "shared/crypto/random.h"

namespace chiron::crypto {
namespace {

using internal::OpensslStatus;
using internal::X509Ptr;
using TimePoint = std::chrono::system_clock::time_point;

template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, internal::Deleter<T, Free>>;

using Asn1ObjectPtr = Owned<ASN1_OBJECT, ASN1_OBJECT_free>;
using Asn1OctetStringPtr = Owned<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using X509ExtensionPtr = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using X509StorePtr = Owned<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = Owned<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509CrlPtr = Owned<X509_CRL, X509_CRL_free>;
using BignumPtr = Owned<BIGNUM, BN_free>;
using GeneralNamesPtr = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;

void FreeX509Stack(STACK_OF(X509) * stack) {
  sk_X509_free(stack);
}  // does not free elements
using X509StackPtr = Owned<STACK_OF(X509), FreeX509Stack>;

std::shared_ptr<X509> ShareX509(X509* cert) {
  return std::shared_ptr<X509>(cert, X509_free);
}

// A digest for signing with `key`: none for Ed25519, SHA-384 for P-384, SHA-256 for P-256.
const EVP_MD* SigningMd(const PrivateKey& key) {
  switch (key.scheme()) {
    case SignatureScheme::kEd25519: return nullptr;
    case SignatureScheme::kEcdsaP256Sha256: return EVP_sha256();
    case SignatureScheme::kEcdsaP384Sha384: return EVP_sha384();
  }
  return nullptr;
}

TimePoint FromAsn1Time(const ASN1_TIME* time) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string NameToString(const X509_NAME* name) {
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

Status AddConfExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpensslStatus(StatusCode::kInternal,
                         std::string("cannot add certificate extension ") + OBJ_nid2sn(nid));
  }
  return Status::Ok();
}

Status SetRandomSerial(ASN1_INTEGER* serial) {
  uint8_t bytes[16];
  CHIRON_RETURN_IF_ERROR(RandomFill(bytes));
  bytes[0] = (bytes[0] & 0x7f) | 0x40;  // positive, and exactly 16 bytes long
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), serial) == nullptr) {
    return OpensslStatus(StatusCode::kInternal, "cannot set serial number");
  }
  return Status::Ok();
}

Status CheckRequest(const CertificateRequest& request) {
  if (request.common_name.empty()) {
    return InvalidArgumentError("certificate request needs a common name");
  }
  if (request.lifetime.count() <= 0) {
    return InvalidArgumentError("certificate lifetime must be positive, got " +
                                std::to_string(request.lifetime.count()) + " s");
  }
  if (request.path_length && (*request.path_length < 0 || !request.is_ca)) {
    return InvalidArgumentError("path_length needs is_ca and must be >= 0");
  }
  return Status::Ok();
}

// Builds and signs a certificate. `issuer` is null for a self-signed certificate.
Result<Certificate> Build(const PrivateKey& signing_key, X509* issuer, EVP_PKEY* subject_key,
                          const CertificateRequest& request, Result<Certificate> (*wrap)(X509*)) {
  CHIRON_RETURN_IF_ERROR(CheckRequest(request));
  X509Ptr cert(X509_new());
  if (!cert) return OpensslStatus(StatusCode::kInternal, "X509_new");
  X509* x = cert.get();
  if (X509_set_version(x, X509_VERSION_3) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X509_set_version");
  }
  CHIRON_RETURN_IF_ERROR(SetRandomSerial(X509_get_serialNumber(x)));

  X509_NAME* subject = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(request.common_name.data()),
                                 static_cast<int>(request.common_name.size()), -1, 0) != 1) {
    return OpensslStatus(StatusCode::kInvalidArgument,
                         "common name '" + request.common_name + "' is not acceptable");
  }
  X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : subject;
  if (X509_set_issuer_name(x, issuer_name) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X509_set_issuer_name");
  }

  TimePoint not_before =
      request.not_before.value_or(std::chrono::system_clock::now() - std::chrono::hours(1));
  time_t start = std::chrono::system_clock::to_time_t(not_before);
  time_t end = start + static_cast<time_t>(request.lifetime.count());
  if (ASN1_TIME_set(X509_getm_notBefore(x), start) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), end) == nullptr) {
    return OpensslStatus(StatusCode::kInvalidArgument, "validity period cannot be encoded");
  }
  if (X509_set_pubkey(x, subject_key) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X509_set_pubkey");
  }

  X509* issuer_for_ext = issuer ? issuer : x;
  std::string basic = request.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (request.path_length) basic += ",pathlen:" + std::to_string(*request.path_length);
  CHIRON_RETURN_IF_ERROR(AddConfExtension(x, issuer_for_ext, NID_basic_constraints, basic.c_str()));
  CHIRON_RETURN_IF_ERROR(AddConfExtension(
      x, issuer_for_ext, NID_key_usage,
      request.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"));
  CHIRON_RETURN_IF_ERROR(AddConfExtension(x, issuer_for_ext, NID_subject_key_identifier, "hash"));
  if (issuer != nullptr) {
    CHIRON_RETURN_IF_ERROR(
        AddConfExtension(x, issuer_for_ext, NID_authority_key_identifier, "keyid:always"));
  }

  if (!request.dns_names.empty()) {
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    if (!names) return OpensslStatus(StatusCode::kInternal, "subjectAltName allocation");
    for (const std::string& dns : request.dns_names) {
      if (dns.empty() || dns.find('\0') != std::string::npos) {
        return InvalidArgumentError("DNS name '" + dns + "' is empty or contains a NUL");
      }
      GENERAL_NAME* name = GENERAL_NAME_new();
      ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
      if (name == nullptr || ia5 == nullptr ||
          ASN1_STRING_set(ia5, dns.data(), static_cast<int>(dns.size())) != 1) {
        GENERAL_NAME_free(name);
        ASN1_IA5STRING_free(ia5);
        return OpensslStatus(StatusCode::kInternal, "subjectAltName entry");
      }
      GENERAL_NAME_set0_value(name, GEN_DNS, ia5);
      if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
        GENERAL_NAME_free(name);
        return OpensslStatus(StatusCode::kInternal, "subjectAltName entry");
      }
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
      return OpensslStatus(StatusCode::kInternal, "cannot add subjectAltName");
    }
  }

  for (const CertificateExtension& extension : request.extensions) {
    Asn1ObjectPtr oid(OBJ_txt2obj(extension.oid.c_str(), /*no_name=*/1));
    if (!oid || extension.oid.find('\0') != std::string::npos) {
      ERR_clear_error();
      return InvalidArgumentError("extension OID '" + extension.oid +
                                  "' is not a dotted numeric OID");
    }
    if (X509_get_ext_by_OBJ(x, oid.get(), -1) >= 0) {
      return InvalidArgumentError("extension " + extension.oid +
                                  " appears twice in the certificate request");
    }
    if (!internal::FitsInt(extension.value.size())) {
      return InvalidArgumentError("extension " + extension.oid + " value is too large");
    }
    Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
    if (!value || ASN1_OCTET_STRING_set(value.get(), extension.value.data(),
                                        static_cast<int>(extension.value.size())) != 1) {
      return OpensslStatus(StatusCode::kInternal, "extension value");
    }
    X509ExtensionPtr ext(
        X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), extension.critical ? 1 : 0, value.get()));
    if (!ext || X509_add_ext(x, ext.get(), -1) != 1) {
      return OpensslStatus(StatusCode::kInternal, "cannot add extension " + extension.oid);
    }
  }

  if (X509_sign(x, signing_key.native(), SigningMd(signing_key)) <= 0) {
    return OpensslStatus(StatusCode::kInternal, "certificate signing failed");
  }
  return wrap(cert.release());
}

}  // namespace

// ---- Parsing ------------------------------------------------------------------------------

Result<Certificate> Certificate::FromDer(ByteSpan der) {
  if (der.empty()) return InvalidArgumentError("certificate DER is empty");
  if (!internal::FitsInt(der.size())) {
    return InvalidArgumentError("certificate DER of " + std::to_string(der.size()) +
                                " bytes is too large");
  }
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return OpensslStatus(StatusCode::kInvalidArgument, "malformed certificate DER");
  if (p != der.data() + der.size()) {
    return InvalidArgumentError("certificate DER has " +
                                std::to_string(der.data() + der.size() - p) + " trailing byte(s)");
  }
  return Certificate(ShareX509(cert.release()));
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  if (!internal::FitsInt(pem.size())) return InvalidArgumentError("PEM text is too large");
  internal::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslStatus(StatusCode::kInternal, "BIO_new_mem_buf");
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) {
    return OpensslStatus(StatusCode::kInvalidArgument,
                         "no valid PEM certificate (-----BEGIN CERTIFICATE-----) found");
  }
  ERR_clear_error();
  return Certificate(ShareX509(cert));
}

Result<std::vector<Certificate>> Certificate::ChainFromPem(std::string_view pem) {
  if (!internal::FitsInt(pem.size())) return InvalidArgumentError("PEM text is too large");
  internal::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslStatus(StatusCode::kInternal, "BIO_new_mem_buf");
  std::vector<Certificate> chain;
  ERR_clear_error();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    chain.push_back(Certificate(ShareX509(cert)));
  }
  // The loop ends at the end of the text (no further BEGIN line) or on a malformed block.
  unsigned long error = ERR_peek_last_error();  // NOLINT(runtime/int)
  bool clean_end =
      ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (!clean_end && error != 0) {
    return OpensslStatus(StatusCode::kInvalidArgument,
                         "PEM certificate " + std::to_string(chain.size() + 1) + " is malformed");
  }
  ERR_clear_error();
  if (chain.empty()) return InvalidArgumentError("no PEM certificate found");
  return chain;
}

// ---- Creation -----------------------------------------------------------------------------

Result<Certificate> Certificate::CreateSelfSigned(const PrivateKey& key,
                                                  const CertificateRequest& request) {
  return Build(key, nullptr, key.public_key().native(), request,
               [](X509* cert) -> Result<Certificate> { return Certificate(ShareX509(cert)); });
}

Result<Certificate> Certificate::CreateSigned(const PrivateKey& issuer_key,
                                              const Certificate& issuer_cert,
                                              const PublicKey& subject_public_key,
                                              const CertificateRequest& request) {
  if (X509_check_private_key(issuer_cert.native(), issuer_key.native()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("issuer key does not match the issuer certificate '" +
                                issuer_cert.subject() + "'");
  }
  return Build(issuer_key, issuer_cert.native(), subject_public_key.native(), request,
               [](X509* cert) -> Result<Certificate> { return Certificate(ShareX509(cert)); });
}

// ---- Accessors ----------------------------------------------------------------------------

Result<Bytes> Certificate::ToDer() const {
  unsigned char* der = nullptr;
  int size = i2d_X509(cert_.get(), &der);
  if (size <= 0) return OpensslStatus(StatusCode::kInternal, "cannot encode certificate");
  Bytes out(der, der + size);
  OPENSSL_free(der);
  return out;
}

std::string Certificate::ToPem() const {
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert_.get()) != 1) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

Result<PublicKey> Certificate::public_key() const {
  EVP_PKEY* key = X509_get0_pubkey(cert_.get());
  if (key == nullptr) {
    return OpensslStatus(StatusCode::kInvalidArgument, "certificate public key cannot be decoded");
  }
  return PublicKey::FromNative(key);
}

std::string Certificate::subject() const {
  return NameToString(X509_get_subject_name(cert_.get()));
}
std::string Certificate::issuer() const {
  return NameToString(X509_get_issuer_name(cert_.get()));
}
TimePoint Certificate::not_before() const {
  return FromAsn1Time(X509_get0_notBefore(cert_.get()));
}
TimePoint Certificate::not_after() const {
  return FromAsn1Time(X509_get0_notAfter(cert_.get()));
}

Bytes Certificate::serial_number() const {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert_.get()), nullptr));
  if (!bn) {
    ERR_clear_error();
    return {};
  }
  Bytes out(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

Result<CertificateExtension> Certificate::FindExtension(std::string_view oid) const {
  std::optional<CertificateExtension> found;
  int count = X509_get_ext_count(cert_.get());
  for (int i = 0; i < count; ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert_.get(), i);
    if (ext == nullptr) continue;
    char text[128];
    int size = OBJ_obj2txt(text, sizeof(text), X509_EXTENSION_get_object(ext), /*no_name=*/1);
    if (size <= 0 || static_cast<size_t>(size) >= sizeof(text)) continue;  // not ours: too long
    if (std::string_view(text, static_cast<size_t>(size)) != oid) continue;
    if (found) {
      return InvalidArgumentError("certificate has extension " + std::string(oid) + " twice");
    }
    const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
    CertificateExtension extension;
    extension.oid = std::string(oid);
    extension.critical = X509_EXTENSION_get_critical(ext) == 1;
    if (data != nullptr) {
      const unsigned char* bytes = ASN1_STRING_get0_data(data);
      extension.value.assign(bytes, bytes + ASN1_STRING_length(data));
    }
    found = std::move(extension);
  }
  if (!found) return NotFoundError("certificate has no extension " + std::string(oid));
  return *std::move(found);
}

Status Certificate::VerifySignature(const PublicKey& issuer_key) const {
  if (X509_verify(cert_.get(), issuer_key.native()) != 1) {
    ERR_clear_error();
    return UnauthenticatedError("certificate '" + subject() + "': signature verification failed");
  }
  return Status::Ok();
}

// ---- Chains and CRLs ----------------------------------------------------------------------

Status VerifyCertificateChain(const Certificate& leaf,
                              const std::vector<Certificate>& intermediates,
                              const std::vector<Certificate>& roots,
                              const ChainVerifyOptions& options) {
  if (roots.empty()) return InvalidArgumentError("chain verification needs at least one root");
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return OpensslStatus(StatusCode::kInternal, "X509 store");
  for (const Certificate& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.native()) != 1) {
      return OpensslStatus(StatusCode::kInternal, "cannot add root certificate");
    }
  }
  for (const Certificate& cert : intermediates) {
    if (sk_X509_push(untrusted.get(), cert.native()) <= 0) {
      return OpensslStatus(StatusCode::kInternal, "cannot add intermediate certificate");
    }
  }
  // Roots are pinned: each is a trust anchor even when it is not self-signed.
  unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;  // NOLINT(runtime/int)
  for (size_t i = 0; i < options.crls_der.size(); ++i) {
    const Bytes& der = options.crls_der[i];
    const unsigned char* p = der.data();
    X509CrlPtr crl(internal::FitsInt(der.size())
                       ? d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()))
                       : nullptr);
    if (!crl || p != der.data() + der.size()) {
      return OpensslStatus(StatusCode::kInvalidArgument,
                           "CRL " + std::to_string(i) + " is not valid DER");
    }
    if (X509_STORE_add_crl(store.get(), crl.get()) != 1) {
      return OpensslStatus(StatusCode::kInternal, "cannot add CRL");
    }
  }
  if (!options.crls_der.empty()) flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  X509_STORE_set_flags(store.get(), flags);

  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.native(), untrusted.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0,
                          std::chrono::system_clock::to_time_t(options.verification_time));
  int rc = X509_verify_cert(ctx.get());
  if (rc == 1) {
    ERR_clear_error();
    return Status::Ok();
  }
  int error = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  X509* failing = X509_STORE_CTX_get_current_cert(ctx.get());
  std::string who = failing ? NameToString(X509_get_subject_name(failing)) : "unknown";
  ERR_clear_error();
  return UnauthenticatedError("certificate chain verification failed at depth " +
                              std::to_string(depth) + " ('" + who +
                              "'): " + X509_verify_cert_error_string(error));
}

Result<Bytes> CreateCrl(const PrivateKey& issuer_key, const Certificate& issuer_cert,
                        const CrlRequest& request) {
  X509CrlPtr crl(X509_CRL_new());
  if (!crl) return OpensslStatus(StatusCode::kInternal, "X509_CRL_new");
  time_t start = std::chrono::system_clock::to_time_t(request.this_update);
  time_t end = start + static_cast<time_t>(request.lifetime.count());
  using AsnTimePtr = Owned<ASN1_TIME, ASN1_TIME_free>;
  AsnTimePtr last_update(ASN1_TIME_set(nullptr, start));
  AsnTimePtr next_update(ASN1_TIME_set(nullptr, end));
  if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer_cert.native())) != 1 ||
      !last_update || !next_update || X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "cannot fill CRL fields");
  }
  for (const Bytes& serial : request.revoked_serials) {
    if (serial.empty() || !internal::FitsInt(serial.size())) {
      return InvalidArgumentError("revoked serial number must be non-empty");
    }
    X509_REVOKED* revoked = X509_REVOKED_new();
    BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
    ASN1_INTEGER* number = bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr;
    bool ok = revoked != nullptr && number != nullptr &&
              X509_REVOKED_set_serialNumber(revoked, number) == 1 &&
              X509_REVOKED_set_revocationDate(revoked, last_update.get()) == 1 &&
              X509_CRL_add0_revoked(crl.get(), revoked) == 1;
    ASN1_INTEGER_free(number);
    if (!ok) {
      X509_REVOKED_free(revoked);
      return OpensslStatus(StatusCode::kInternal, "cannot add revoked entry");
    }
  }
  if (X509_CRL_sort(crl.get()) != 1 ||
      X509_CRL_sign(crl.get(), issuer_key.native(), SigningMd(issuer_key)) <= 0) {
    return OpensslStatus(StatusCode::kInternal, "CRL signing failed");
  }
  unsigned char* der = nullptr;
  int size = i2d_X509_CRL(crl.get(), &der);
  if (size <= 0) return OpensslStatus(StatusCode::kInternal, "cannot encode CRL");
  Bytes out(der, der + size);
  OPENSSL_free(der);
  return out;
}

}  // namespace chiron::crypto
