// Internal helpers for the crypto module's use of OpenSSL: owning pointers and error text.
// Not part of the public API; include only from src/shared/crypto/*.cc.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>
#include <string>

#include "shared/base/status.h"

namespace chiron::crypto::internal {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EvpCipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

// Shares an EVP_PKEY (takes ownership of one reference).
inline std::shared_ptr<EVP_PKEY> SharePkey(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

// The text of the oldest queued OpenSSL error (or "no OpenSSL error queued"); clears the
// queue so stale errors never leak into a later message.
std::string TakeOpensslError();

// `context`: OpenSSL's reason, as an error of `code`.
Status OpensslStatus(StatusCode code, const std::string& context);

// OpenSSL's length parameters are int: inputs are processed in pieces no larger than this.
inline constexpr size_t kMaxOpensslChunk = size_t{1} << 30;

// Fails InvalidArgument if `size` does not fit OpenSSL's int/long length parameters.
inline bool FitsInt(size_t size) {
  return size <= static_cast<size_t>(INT_MAX);
}

}  // namespace chiron::crypto::internal
