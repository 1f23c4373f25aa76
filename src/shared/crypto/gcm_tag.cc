#include "shared/crypto/gcm_tag.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>
#include <vector>

#include "shared/crypto/aes_gcm_internal.h"
#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {

struct GcmTagChecker::Contexts {
  internal::EvpCipherCtxPtr gcm{EVP_CIPHER_CTX_new()};  // encrypt mode: absorbs AAD, yields a tag
  internal::EvpCipherCtxPtr ecb{EVP_CIPHER_CTX_new()};  // single blocks: H and counter-mode keystream
  internal::GfBlock h;                        // E_K(0^128)
  std::vector<uint8_t> counters, stream;      // scratch for DecryptStrided
  ~Contexts() {
    SecureZero(&h, sizeof h);
    if (!stream.empty()) SecureZero(stream.data(), stream.size());
  }
};

namespace {

constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;

bool EncryptBlocks(EVP_CIPHER_CTX* ecb, const uint8_t* in, size_t size, uint8_t* out) {
  int written = 0;
  return EVP_EncryptUpdate(ecb, out, &written, in, static_cast<int>(size)) == 1 &&
         static_cast<size_t>(written) == size;
}

}  // namespace

GcmTagChecker::GcmTagChecker(std::unique_ptr<Contexts> contexts)
    : contexts_(std::move(contexts)) {}
GcmTagChecker::~GcmTagChecker() = default;
GcmTagChecker::GcmTagChecker(GcmTagChecker&&) noexcept = default;
GcmTagChecker& GcmTagChecker::operator=(GcmTagChecker&&) noexcept = default;

Result<GcmTagChecker> GcmTagChecker::Create(ByteSpan key) {
  if (key.size() != 32) {
    return InvalidArgumentError("GCM tag checker key must be 32 bytes (AES-256), got " +
                                std::to_string(key.size()));
  }
  auto c = std::make_unique<Contexts>();
  std::unique_ptr<EVP_CIPHER, internal::Deleter<EVP_CIPHER, EVP_CIPHER_free>> ecb_cipher(
      EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr));
  uint8_t zero[16] = {0}, h[16];
  if (!c->gcm || !c->ecb || !ecb_cipher ||
      EVP_EncryptInit_ex(c->gcm.get(), internal::AesGcmCipher(32), nullptr, nullptr, nullptr) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(c->gcm.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kIvSize),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(c->gcm.get(), nullptr, nullptr, key.data(), nullptr) != 1 ||
      EVP_EncryptInit_ex(c->ecb.get(), ecb_cipher.get(), nullptr, key.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(c->ecb.get(), 0) != 1 || !EncryptBlocks(c->ecb.get(), zero, 16, h)) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-256-GCM tag checker setup failed");
  }
  c->h = internal::LoadBlock(h);
  SecureZero(h, sizeof h);
  return GcmTagChecker(std::move(c));
}

Status GcmTagChecker::Verify(ByteSpan iv, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag) {
  if (iv.size() != kIvSize || tag.size() != kTagSize) {
    return InvalidArgumentError("GCM tag check needs a 12-byte IV and a 16-byte tag, got " +
                                std::to_string(iv.size()) + " and " + std::to_string(tag.size()));
  }
  EVP_CIPHER_CTX* gcm = contexts_->gcm.get();
  static const uint8_t kZeros[16] = {0};
  const size_t aad_padding = (16 - aad.size() % 16) % 16;
  int ignored = 0;
  uint8_t computed[kTagSize];
  // GHASH over aad || padding || ciphertext as the associated data of an empty message.
  if (EVP_EncryptInit_ex(gcm, nullptr, nullptr, nullptr, iv.data()) != 1 ||
      !internal::CipherAad(gcm, aad) ||
      !internal::CipherAad(gcm, ByteSpan(kZeros, aad_padding)) ||
      !internal::CipherAad(gcm, ciphertext) || EVP_EncryptFinal_ex(gcm, computed, &ignored) != 1 ||
      EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), computed) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-256-GCM tag computation failed");
  }
  // That tag hashed the length block L' = (bits of aad, padding and ciphertext, 0); the real one
  // hashes L = (bits of aad, bits of ciphertext). Both are the last block, multiplied by H once.
  internal::GfBlock difference;
  difference.hi = static_cast<uint64_t>(aad.size() + aad_padding + ciphertext.size()) * 8 ^
                  static_cast<uint64_t>(aad.size()) * 8;
  difference.lo = static_cast<uint64_t>(ciphertext.size()) * 8;
  uint8_t correction[16];
  internal::StoreBlock(internal::GfMultiply(difference, contexts_->h), correction);
  for (size_t i = 0; i < kTagSize; ++i) computed[i] ^= correction[i];
  if (!ConstantTimeEqual(ByteSpan(computed, kTagSize), tag)) {
    return DataLossError("authentication failed");
  }
  return Status::Ok();
}

Status GcmTagChecker::DecryptStrided(ByteSpan iv, ByteSpan ciphertext, size_t stride, size_t width,
                                     MutableByteSpan out) {
  if (iv.size() != kIvSize || stride == 0 || width == 0 || width > stride) {
    return InvalidArgumentError("GCM strided decryption needs a 12-byte IV and 0 < width <= "
                                "stride");
  }
  const size_t count = ciphertext.size() < width ? 0 : (ciphertext.size() - width) / stride + 1;
  if (out.size() != count * width) {
    return InvalidArgumentError("GCM strided decryption: the output must hold " +
                                std::to_string(count * width) + " bytes, not " +
                                std::to_string(out.size()));
  }
  // One counter block per 16-byte block any field touches (at most two per field).
  std::vector<uint8_t>& counters = contexts_->counters;
  counters.clear();
  std::vector<uint64_t> first_block(count);
  uint64_t previous = ~uint64_t{0};
  size_t blocks = 0;
  for (size_t k = 0; k < count; ++k) {
    uint64_t from = (k * stride) / 16, to = (k * stride + width - 1) / 16;
    first_block[k] = from == previous ? blocks - 1 : blocks;
    for (uint64_t b = from == previous ? from + 1 : from; b <= to; ++b) {
      uint32_t counter = static_cast<uint32_t>(2 + b);
      counters.insert(counters.end(), iv.begin(), iv.end());
      counters.push_back(static_cast<uint8_t>(counter >> 24));
      counters.push_back(static_cast<uint8_t>(counter >> 16));
      counters.push_back(static_cast<uint8_t>(counter >> 8));
      counters.push_back(static_cast<uint8_t>(counter));
      ++blocks;
      previous = b;
    }
  }
  std::vector<uint8_t>& stream = contexts_->stream;
  stream.resize(counters.size());
  if (!counters.empty() &&
      !EncryptBlocks(contexts_->ecb.get(), counters.data(), counters.size(), stream.data())) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES block encryption failed");
  }
  for (size_t k = 0; k < count; ++k) {
    size_t at = k * stride;
    size_t base = first_block[k] * 16 + at % 16;  // keystream index of the field's first byte
    for (size_t j = 0; j < width; ++j) out[k * width + j] = ciphertext[at + j] ^ stream[base + j];
  }
  SecureZero(stream.data(), stream.size());
  return Status::Ok();
}

}  // namespace chiron::crypto
