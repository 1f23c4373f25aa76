#include "shared/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {
namespace {

const char* DigestName(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256: return "SHA256";
    case HashAlgorithm::kSha384: return "SHA384";
    case HashAlgorithm::kSha512: return "SHA512";
  }
  return "SHA256";
}

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

}  // namespace

Result<SecretBytes> Hkdf(HashAlgorithm algorithm, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                         size_t size) {
  const size_t max_size = 255 * DigestSize(algorithm);
  if (size > max_size) {
    return InvalidArgumentError("HKDF output size " + std::to_string(size) +
                                " exceeds the RFC 5869 limit of 255 * digest size = " +
                                std::to_string(max_size) + " bytes");
  }
  // RFC 5869 section 2.3: output length 0 is allowed and yields nothing.
  if (size == 0) return SecretBytes();
  // OpenSSL's HKDF refuses an info string over 1024 bytes; say so plainly.
  if (info.size() > 1024) {
    return InvalidArgumentError("HKDF info is " + std::to_string(info.size()) +
                                " bytes; at most 1024 are supported");
  }

  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return internal::OpensslStatus(StatusCode::kInternal, "HKDF is unavailable");
  std::unique_ptr<EVP_KDF_CTX, KdfDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return internal::OpensslStatus(StatusCode::kInternal, "HKDF context allocation");

  // OSSL_PARAM takes non-const pointers but never writes through them for inputs.
  static uint8_t kEmpty = 0;
  auto ptr = [](ByteSpan b) {
    return b.empty() ? static_cast<void*>(&kEmpty) : const_cast<uint8_t*>(b.data());
  };
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char*>(DigestName(algorithm)), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ptr(ikm), ikm.size());
  // No salt means HashLen zero bytes (RFC 5869 section 2.2); OpenSSL does exactly that when the
  // parameter is absent, and HMAC gives the same result for an empty key.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, ptr(salt), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ptr(info), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "HKDF derivation failed");
  }
  return out;
}

}  // namespace chiron::crypto
