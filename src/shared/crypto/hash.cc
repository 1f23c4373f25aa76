#include "shared/crypto/hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {
namespace {

const EVP_MD* Md(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256: return EVP_sha256();
    case HashAlgorithm::kSha384: return EVP_sha384();
    case HashAlgorithm::kSha512: return EVP_sha512();
  }
  std::abort();  // unreachable: every enumerator is handled above
}

}  // namespace

size_t DigestSize(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256: return 32;
    case HashAlgorithm::kSha384: return 48;
    case HashAlgorithm::kSha512: return 64;
  }
  std::abort();
}

struct Hasher::State {
  internal::EvpMdCtxPtr ctx;
  size_t digest_size = 0;
  bool finished = false;
};

// Digest failures can only come from memory exhaustion or a broken OpenSSL: both are broken
// invariants for a function that cannot fail, so they abort rather than return a wrong digest.
Hasher::Hasher(HashAlgorithm algorithm) : state_(std::make_unique<State>()) {
  state_->ctx.reset(EVP_MD_CTX_new());
  state_->digest_size = DigestSize(algorithm);
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx.get(), Md(algorithm), nullptr) != 1) {
    std::abort();
  }
}

Hasher::~Hasher() = default;

void Hasher::Update(ByteSpan data) {
  if (state_->finished) std::abort();  // precondition: not updated after Finish()
  if (data.empty()) return;
  if (EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size()) != 1) std::abort();
}

Bytes Hasher::Finish() {
  if (state_->finished) std::abort();
  state_->finished = true;
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(state_->ctx.get(), out.data(), &size) != 1) std::abort();
  out.resize(size);
  return out;
}

Bytes Digest(HashAlgorithm algorithm, ByteSpan data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, Md(algorithm), nullptr) != 1) {
    std::abort();
  }
  out.resize(size);
  return out;
}

Bytes Sha256(ByteSpan data) {
  return Digest(HashAlgorithm::kSha256, data);
}
Bytes Sha384(ByteSpan data) {
  return Digest(HashAlgorithm::kSha384, data);
}
Bytes Sha512(ByteSpan data) {
  return Digest(HashAlgorithm::kSha512, data);
}

Result<Bytes> HmacSha256(ByteSpan key, ByteSpan data) {
  static const uint8_t kEmpty = 0;
  Bytes out(32);
  size_t out_size = 0;
  // OpenSSL wants non-null pointers even for empty inputs.
  const uint8_t* key_data = key.empty() ? &kEmpty : key.data();
  const uint8_t* input = data.empty() ? &kEmpty : data.data();
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_data, key.size(), input,
                data.size(), out.data(), out.size(), &out_size) == nullptr ||
      out_size != out.size()) {
    return internal::OpensslStatus(StatusCode::kInternal, "HMAC-SHA256 failed");
  }
  return out;
}

}  // namespace chiron::crypto
