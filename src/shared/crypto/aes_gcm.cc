#include "shared/crypto/aes_gcm.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "shared/crypto/aes_gcm_internal.h"
#include "shared/crypto/openssl_util.h"
#include "shared/crypto/random.h"

namespace chiron::crypto {
namespace internal {

const EVP_CIPHER* AesGcmCipher(size_t key_size) {
  // Fetched once: an explicit fetch avoids OpenSSL 3's per-call implicit lookup.
  static EVP_CIPHER* const k128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const k192 = EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr);
  static EVP_CIPHER* const k256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  switch (key_size) {
    case 16: return k128;
    case 24: return k192;
    case 32: return k256;
    default: return nullptr;
  }
}

Status CheckGcmKey(ByteSpan key) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    return InvalidArgumentError("AES-GCM key must be 16, 24 or 32 bytes, got " +
                                std::to_string(key.size()));
  }
  if (AesGcmCipher(key.size()) == nullptr) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-GCM is unavailable");
  }
  return Status::Ok();
}

bool CipherUpdate(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t size, uint8_t* out) {
  size_t offset = 0;
  while (offset < size) {
    size_t piece = std::min(size - offset, kMaxOpensslChunk);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out + offset, &written, in + offset, static_cast<int>(piece)) != 1 ||
        static_cast<size_t>(written) != piece) {
      return false;
    }
    offset += piece;
  }
  return true;
}

bool CipherAad(EVP_CIPHER_CTX* ctx, ByteSpan aad) {
  size_t offset = 0;
  while (offset < aad.size()) {
    size_t piece = std::min(aad.size() - offset, kMaxOpensslChunk);
    int written = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &written, aad.data() + offset, static_cast<int>(piece)) !=
        1) {
      return false;
    }
    offset += piece;
  }
  return true;
}

}  // namespace internal

namespace {

using internal::CipherAad;
using internal::CipherUpdate;

Status CheckIvAndTag(ByteSpan iv, size_t tag_size) {
  if (iv.empty()) return InvalidArgumentError("AES-GCM IV must not be empty");
  if (!internal::FitsInt(iv.size())) {
    return InvalidArgumentError("AES-GCM IV of " + std::to_string(iv.size()) +
                                " bytes is too long");
  }
  if (tag_size < 4 || tag_size > 16) {
    return InvalidArgumentError("AES-GCM tag must be 4 to 16 bytes, got " +
                                std::to_string(tag_size));
  }
  return Status::Ok();
}

Status CheckPlaintextSize(size_t size) {
  // NIST SP 800-38D: at most 2^39 - 256 bits (2^36 - 32 bytes) per invocation.
  constexpr uint64_t kMaxGcmPlaintext = (uint64_t{1} << 36) - 32;
  if (static_cast<uint64_t>(size) > kMaxGcmPlaintext) {
    return InvalidArgumentError("AES-GCM input of " + std::to_string(size) +
                                " bytes exceeds GCM's limit of 2^36 - 32 bytes");
  }
  return Status::Ok();
}

Status InitGcm(EVP_CIPHER_CTX* ctx, ByteSpan key, ByteSpan iv, bool encrypt) {
  if (EVP_CipherInit_ex(ctx, internal::AesGcmCipher(key.size()), nullptr, nullptr, nullptr,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) != 1 ||
      EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data(), iv.data(), encrypt ? 1 : 0) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-GCM initialisation failed");
  }
  return Status::Ok();
}

}  // namespace

Result<SealedDetached> AesGcmSealDetached(ByteSpan key, ByteSpan iv, ByteSpan aad,
                                          ByteSpan plaintext, size_t tag_size) {
  CHIRON_RETURN_IF_ERROR(internal::CheckGcmKey(key));
  CHIRON_RETURN_IF_ERROR(CheckIvAndTag(iv, tag_size));
  CHIRON_RETURN_IF_ERROR(CheckPlaintextSize(plaintext.size()));
  if (iv.size() > internal::kMaxOpensslGcmIvSize) {
    SealedDetached out;
    out.ciphertext.resize(plaintext.size());
    uint8_t tag[16];
    CHIRON_RETURN_IF_ERROR(internal::AesGcmLongIv(key, iv, aad, plaintext, /*encrypt=*/true,
                                                  out.ciphertext.data(), tag));
    out.tag.assign(tag, tag + tag_size);
    return out;
  }
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return internal::OpensslStatus(StatusCode::kInternal, "cipher context allocation");
  CHIRON_RETURN_IF_ERROR(InitGcm(ctx.get(), key, iv, /*encrypt=*/true));

  SealedDetached out;
  out.ciphertext.resize(plaintext.size());
  out.tag.resize(tag_size);
  int final_size = 0;
  if (!CipherAad(ctx.get(), aad) ||
      !CipherUpdate(ctx.get(), plaintext.data(), plaintext.size(), out.ciphertext.data()) ||
      EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + out.ciphertext.size(), &final_size) !=
          1 ||
      final_size != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size),
                          out.tag.data()) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-GCM encryption failed");
  }
  return out;
}

Result<SecretBytes> AesGcmOpenDetached(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan ciphertext,
                                       ByteSpan tag) {
  CHIRON_RETURN_IF_ERROR(internal::CheckGcmKey(key));
  CHIRON_RETURN_IF_ERROR(CheckIvAndTag(iv, tag.size()));
  CHIRON_RETURN_IF_ERROR(CheckPlaintextSize(ciphertext.size()));
  if (iv.size() > internal::kMaxOpensslGcmIvSize) {
    SecretBytes plaintext(ciphertext.size());
    uint8_t expected[16];
    CHIRON_RETURN_IF_ERROR(internal::AesGcmLongIv(key, iv, aad, ciphertext, /*encrypt=*/false,
                                                  plaintext.data(), expected));
    if (!ConstantTimeEqual(ByteSpan(expected, tag.size()), tag)) {
      return DataLossError("authentication failed");
    }
    return plaintext;
  }
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return internal::OpensslStatus(StatusCode::kInternal, "cipher context allocation");
  CHIRON_RETURN_IF_ERROR(InitGcm(ctx.get(), key, iv, /*encrypt=*/false));

  SecretBytes plaintext(ciphertext.size());
  // The tag is copied: OpenSSL's ctrl takes a non-const pointer.
  uint8_t tag_copy[16];
  std::copy(tag.begin(), tag.end(), tag_copy);
  int final_size = 0;
  if (!CipherAad(ctx.get(), aad) ||
      !CipherUpdate(ctx.get(), ciphertext.data(), ciphertext.size(), plaintext.data()) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          tag_copy) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-GCM decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), plaintext.data() + plaintext.size(), &final_size) != 1) {
    ERR_clear_error();
    // `plaintext` is zeroed by its destructor: no unauthenticated byte escapes.
    return DataLossError("authentication failed");
  }
  return plaintext;
}

Result<Bytes> AesGcmSeal(ByteSpan key, ByteSpan aad, ByteSpan plaintext) {
  if (key.size() != kAes256KeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  uint8_t nonce[kGcmNonceSize];
  CHIRON_RETURN_IF_ERROR(RandomFill(nonce));
  CHIRON_ASSIGN_OR_RETURN(SealedDetached sealed,
                          AesGcmSealDetached(key, nonce, aad, plaintext, kGcmTagSize));
  Bytes out;
  out.reserve(kGcmNonceSize + sealed.ciphertext.size() + kGcmTagSize);
  Append(out, nonce);
  Append(out, sealed.ciphertext);
  Append(out, sealed.tag);
  return out;
}

Result<SecretBytes> AesGcmOpen(ByteSpan key, ByteSpan aad, ByteSpan sealed) {
  if (key.size() != kAes256KeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) {
    return DataLossError("sealed message is " + std::to_string(sealed.size()) +
                         " bytes, shorter than nonce and tag (28 bytes)");
  }
  ByteSpan nonce = sealed.first(kGcmNonceSize);
  ByteSpan tag = sealed.last(kGcmTagSize);
  ByteSpan ciphertext = sealed.subspan(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  return AesGcmOpenDetached(key, nonce, aad, ciphertext, tag);
}

}  // namespace chiron::crypto
