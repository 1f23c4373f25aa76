#include "shared/crypto/keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <cstring>
#include <string>

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {
namespace {

using internal::OpensslStatus;

Status VerificationFailed() {
  ERR_clear_error();
  return UnauthenticatedError("signature verification failed");
}

const char* CurveName(SignatureScheme scheme) {
  return scheme == SignatureScheme::kEcdsaP384Sha384 ? "secp384r1" : "prime256v1";
}

// The digest of the scheme; null for Ed25519 (which hashes internally).
const EVP_MD* SchemeMd(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEd25519: return nullptr;
    case SignatureScheme::kEcdsaP256Sha256: return EVP_sha256();
    case SignatureScheme::kEcdsaP384Sha384: return EVP_sha384();
  }
  return nullptr;
}

// Which of the three schemes a key belongs to; InvalidArgument for anything else (RSA, other
// curves, explicit curve parameters).
Result<SignatureScheme> SchemeOf(EVP_PKEY* key) {
  if (key == nullptr) return InvalidArgumentError("no key");
  if (EVP_PKEY_is_a(key, "ED25519")) return SignatureScheme::kEd25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t group_size = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_size) != 1) {
      ERR_clear_error();
      return InvalidArgumentError(
          "EC key does not name its curve (explicit curve parameters are not supported)");
    }
    std::string name(group, group_size);
    if (name == "prime256v1" || name == "P-256" || name == "secp256r1") {
      return SignatureScheme::kEcdsaP256Sha256;
    }
    if (name == "secp384r1" || name == "P-384") return SignatureScheme::kEcdsaP384Sha384;
    return InvalidArgumentError("unsupported EC curve '" + name +
                                "'; only P-256 and P-384 are accepted");
  }
  const char* type = EVP_PKEY_get0_type_name(key);
  return InvalidArgumentError(std::string("unsupported key type '") + (type ? type : "unknown") +
                              "'; only Ed25519, ECDSA P-256 and ECDSA P-384 are accepted");
}

Status DerFits(ByteSpan der, const char* what) {
  if (der.empty()) return InvalidArgumentError(std::string(what) + " is empty");
  if (!internal::FitsInt(der.size())) {
    return InvalidArgumentError(std::string(what) + " of " + std::to_string(der.size()) +
                                " bytes is too large");
  }
  return Status::Ok();
}

}  // namespace

std::string_view SignatureSchemeName(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEd25519: return "Ed25519";
    case SignatureScheme::kEcdsaP256Sha256: return "ECDSA-P256-SHA256";
    case SignatureScheme::kEcdsaP384Sha384: return "ECDSA-P384-SHA384";
  }
  return "unknown";
}

size_t EcdsaScalarSize(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEd25519: return 0;
    case SignatureScheme::kEcdsaP256Sha256: return 32;
    case SignatureScheme::kEcdsaP384Sha384: return 48;
  }
  return 0;
}

// ---- PublicKey ----------------------------------------------------------------------------

Result<PublicKey> PublicKey::FromNative(EVP_PKEY* key) {
  CHIRON_ASSIGN_OR_RETURN(SignatureScheme scheme, SchemeOf(key));
  if (EVP_PKEY_up_ref(key) != 1) return OpensslStatus(StatusCode::kInternal, "EVP_PKEY_up_ref");
  return PublicKey(internal::SharePkey(key), scheme);
}

Result<PublicKey> PublicKey::FromSpkiDer(ByteSpan der) {
  CHIRON_RETURN_IF_ERROR(DerFits(der, "SubjectPublicKeyInfo"));
  const unsigned char* p = der.data();
  internal::EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) {
    return OpensslStatus(StatusCode::kInvalidArgument,
                         "malformed SubjectPublicKeyInfo DER or unsupported key");
  }
  if (p != der.data() + der.size()) {
    return InvalidArgumentError("SubjectPublicKeyInfo has " +
                                std::to_string(der.data() + der.size() - p) +
                                " trailing byte(s) after the DER structure");
  }
  CHIRON_ASSIGN_OR_RETURN(SignatureScheme scheme, SchemeOf(key.get()));
  return PublicKey(internal::SharePkey(key.release()), scheme);
}

Result<PublicKey> PublicKey::FromRaw(SignatureScheme scheme, ByteSpan raw) {
  if (scheme == SignatureScheme::kEd25519) {
    if (raw.size() != 32) {
      return InvalidArgumentError("Ed25519 public key must be 32 bytes, got " +
                                  std::to_string(raw.size()));
    }
    EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
    if (key == nullptr) return OpensslStatus(StatusCode::kInvalidArgument, "bad Ed25519 key");
    return PublicKey(internal::SharePkey(key), scheme);
  }
  const size_t field = EcdsaScalarSize(scheme);
  if (raw.size() != 1 + 2 * field && raw.size() != 1 + field) {
    return InvalidArgumentError(std::string(SignatureSchemeName(scheme)) +
                                " public key must be a SEC1 point of " +
                                std::to_string(1 + 2 * field) + " or " + std::to_string(1 + field) +
                                " bytes, got " + std::to_string(raw.size()));
  }
  internal::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "EC key context");
  }
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                          const_cast<char*>(CurveName(scheme)), 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(raw.data()), raw.size()),
                         OSSL_PARAM_construct_end()};
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1 || key == nullptr) {
    return OpensslStatus(
        StatusCode::kInvalidArgument,
        std::string(SignatureSchemeName(scheme)) + " public key is not a valid point on the curve");
  }
  return PublicKey(internal::SharePkey(key), scheme);
}

Result<Bytes> PublicKey::ToSpkiDer() const {
  unsigned char* der = nullptr;
  int size = i2d_PUBKEY(key_.get(), &der);
  if (size <= 0) return OpensslStatus(StatusCode::kInternal, "cannot encode public key");
  Bytes out(der, der + size);
  OPENSSL_free(der);
  return out;
}

Result<Bytes> PublicKey::ToRaw() const {
  if (scheme_ == SignatureScheme::kEd25519) {
    Bytes out(32);
    size_t size = out.size();
    if (EVP_PKEY_get_raw_public_key(key_.get(), out.data(), &size) != 1 || size != 32) {
      return OpensslStatus(StatusCode::kInternal, "cannot export Ed25519 public key");
    }
    return out;
  }
  // Rebuilt from the affine coordinates so the result is uncompressed whatever form the key
  // was imported in.
  const size_t field = EcdsaScalarSize(scheme_);
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  Bytes out(1 + 2 * field);
  out[0] = 0x04;
  bool ok =
      EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
      EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
      BN_bn2binpad(x, out.data() + 1, static_cast<int>(field)) == static_cast<int>(field) &&
      BN_bn2binpad(y, out.data() + 1 + field, static_cast<int>(field)) == static_cast<int>(field);
  BN_free(x);
  BN_free(y);
  if (!ok) return OpensslStatus(StatusCode::kInternal, "cannot export EC public key");
  return out;
}

Status PublicKey::Verify(ByteSpan message, ByteSpan signature) const {
  internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return OpensslStatus(StatusCode::kInternal, "digest context allocation");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, SchemeMd(scheme_), nullptr, key_.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "signature verification setup failed");
  }
  // Fail closed: only an explicit 1 is success; 0 and negative values (malformed) fail alike.
  static const uint8_t kEmpty = 0;
  int rc =
      EVP_DigestVerify(ctx.get(), signature.empty() ? &kEmpty : signature.data(), signature.size(),
                       message.empty() ? &kEmpty : message.data(), message.size());
  if (rc != 1) return VerificationFailed();
  return Status::Ok();
}

Status PublicKey::VerifyEcdsaRaw(ByteSpan message, ByteSpan r, ByteSpan s) const {
  const size_t field = EcdsaScalarSize(scheme_);
  if (field == 0) {
    return InvalidArgumentError("VerifyEcdsaRaw needs an ECDSA key, not " +
                                std::string(SignatureSchemeName(scheme_)));
  }
  if (r.size() != field || s.size() != field) {
    return UnauthenticatedError("signature verification failed: raw ECDSA r and s must be " +
                                std::to_string(field) + " bytes each, got " +
                                std::to_string(r.size()) + " and " + std::to_string(s.size()));
  }
  CHIRON_ASSIGN_OR_RETURN(Bytes der, EcdsaRawToDer(r, s));
  return Verify(message, der);
}

// ---- PrivateKey ---------------------------------------------------------------------------

Result<PrivateKey> PrivateKey::Adopt(EVP_PKEY* raw_key) {
  std::shared_ptr<EVP_PKEY> key = internal::SharePkey(raw_key);
  CHIRON_ASSIGN_OR_RETURN(SignatureScheme scheme, SchemeOf(key.get()));
  // A public-only copy, so a PublicKey never carries private material.
  unsigned char* der = nullptr;
  int size = i2d_PUBKEY(key.get(), &der);
  if (size <= 0) return OpensslStatus(StatusCode::kInternal, "cannot derive the public key");
  Bytes spki(der, der + size);
  OPENSSL_free(der);
  CHIRON_ASSIGN_OR_RETURN(PublicKey public_key, PublicKey::FromSpkiDer(spki));
  return PrivateKey(std::move(key), std::move(public_key), scheme);
}

Result<PrivateKey> PrivateKey::Generate(SignatureScheme scheme) {
  EVP_PKEY* key = nullptr;
  if (scheme == SignatureScheme::kEd25519) {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", CurveName(scheme));
  }
  if (key == nullptr) {
    return OpensslStatus(StatusCode::kInternal,
                         "key generation failed for " + std::string(SignatureSchemeName(scheme)));
  }
  return Adopt(key);
}

Result<PrivateKey> PrivateKey::FromPkcs8Der(ByteSpan der) {
  CHIRON_RETURN_IF_ERROR(DerFits(der, "PKCS#8 private key"));
  const unsigned char* p = der.data();
  PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size()));
  if (info == nullptr) {
    return OpensslStatus(StatusCode::kInvalidArgument, "malformed PKCS#8 private key DER");
  }
  bool trailing = p != der.data() + der.size();
  EVP_PKEY* key = trailing ? nullptr : EVP_PKCS82PKEY(info);
  PKCS8_PRIV_KEY_INFO_free(info);
  if (trailing) {
    return InvalidArgumentError("PKCS#8 private key has trailing bytes after the DER structure");
  }
  if (key == nullptr) {
    return OpensslStatus(StatusCode::kInvalidArgument, "PKCS#8 private key cannot be decoded");
  }
  return Adopt(key);
}

PublicKey PrivateKey::public_key() const {
  return public_key_;
}

Result<SecretBytes> PrivateKey::ToPkcs8Der() const {
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(key_.get());
  if (info == nullptr) return OpensslStatus(StatusCode::kInternal, "cannot encode PKCS#8");
  int size = i2d_PKCS8_PRIV_KEY_INFO(info, nullptr);
  if (size <= 0) {
    PKCS8_PRIV_KEY_INFO_free(info);
    return OpensslStatus(StatusCode::kInternal, "cannot encode PKCS#8");
  }
  SecretBytes out(static_cast<size_t>(size));
  unsigned char* p = out.data();
  int written = i2d_PKCS8_PRIV_KEY_INFO(info, &p);
  PKCS8_PRIV_KEY_INFO_free(info);  // clears its key material
  if (written != size) return OpensslStatus(StatusCode::kInternal, "cannot encode PKCS#8");
  return out;
}

Result<Bytes> PrivateKey::Sign(ByteSpan message) const {
  internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return OpensslStatus(StatusCode::kInternal, "digest context allocation");
  if (EVP_DigestSignInit(ctx.get(), nullptr, SchemeMd(scheme_), nullptr, key_.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "signing setup failed");
  }
  static const uint8_t kEmpty = 0;
  const uint8_t* data = message.empty() ? &kEmpty : message.data();
  size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, data, message.size()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "signing failed");
  }
  Bytes signature(size);
  if (EVP_DigestSign(ctx.get(), signature.data(), &size, data, message.size()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "signing failed");
  }
  signature.resize(size);
  return signature;
}

Result<Bytes> EcdsaRawToDer(ByteSpan r, ByteSpan s) {
  if (r.empty() || r.size() != s.size() || r.size() > 66) {
    return InvalidArgumentError(
        "ECDSA r and s must be non-empty, equal-sized and at most 66 "
        "bytes; got " +
        std::to_string(r.size()) + " and " + std::to_string(s.size()));
  }
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* bn_r = BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr);
  BIGNUM* bn_s = BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr);
  if (sig == nullptr || bn_r == nullptr || bn_s == nullptr ||
      ECDSA_SIG_set0(sig, bn_r, bn_s) != 1) {
    ECDSA_SIG_free(sig);
    BN_free(bn_r);
    BN_free(bn_s);
    return OpensslStatus(StatusCode::kInternal, "cannot build ECDSA signature");
  }
  unsigned char* der = nullptr;
  int size = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);  // owns bn_r and bn_s now
  if (size <= 0) return OpensslStatus(StatusCode::kInternal, "cannot encode ECDSA signature");
  Bytes out(der, der + size);
  OPENSSL_free(der);
  return out;
}

}  // namespace chiron::crypto
