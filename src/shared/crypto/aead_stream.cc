#include "shared/crypto/aead_stream.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/aes_gcm_internal.h"
#include "shared/crypto/openssl_util.h"
#include "shared/crypto/random.h"

namespace chiron::crypto {
namespace internal {
void CipherCtxDeleter::operator()(EVP_CIPHER_CTX* ctx) const {
  EVP_CIPHER_CTX_free(ctx);
}
}  // namespace internal

namespace {

std::atomic<uint64_t> chunks_authenticated{0};

// Domain separation: these bytes open every chunk's associated data, so a chunk of this format
// can never be confused with another AES-GCM use of the same key. See docs/formats/aead-stream.md.
constexpr std::string_view kLabel = "chiron aead-stream v1";
constexpr size_t kNonceSize = 12;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, internal::CipherCtxDeleter>;

Status CheckKey(ByteSpan key) {
  if (key.size() != kAes256KeySize) {
    return InvalidArgumentError("AEAD stream key must be 32 bytes (AES-256), got " +
                                std::to_string(key.size()));
  }
  return Status::Ok();
}

// label || u64be(len(stream_aad)) || stream_aad || u32be(index) || u8(last); the trailing five
// bytes are rewritten for every chunk.
Bytes AadPrefix(ByteSpan stream_aad) {
  Bytes aad;
  aad.reserve(kLabel.size() + 8 + stream_aad.size() + 5);
  Append(aad, AsBytes(kLabel));
  AppendU64Be(aad, stream_aad.size());
  Append(aad, stream_aad);
  aad.resize(aad.size() + 5);
  return aad;
}

void SetIndexAndLast(uint8_t* tail, uint32_t index, bool last) {
  tail[0] = static_cast<uint8_t>(index >> 24);
  tail[1] = static_cast<uint8_t>(index >> 16);
  tail[2] = static_cast<uint8_t>(index >> 8);
  tail[3] = static_cast<uint8_t>(index);
  tail[4] = last ? 1 : 0;
}

// prefix(7) || u32be(index) || u8(last)
void MakeNonce(const Bytes& prefix, uint32_t index, bool last, uint8_t* nonce) {
  std::copy(prefix.begin(), prefix.end(), nonce);
  SetIndexAndLast(nonce + kStreamNoncePrefixSize, index, last);
}

Result<CipherCtx> KeyedContext(ByteSpan key, bool encrypt) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx ||
      EVP_CipherInit_ex(ctx.get(), internal::AesGcmCipher(kAes256KeySize), nullptr, nullptr,
                        nullptr, encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1) {
    return internal::OpensslStatus(StatusCode::kInternal, "AES-256-GCM stream setup failed");
  }
  return ctx;
}

}  // namespace

// ---- Sealer -------------------------------------------------------------------------------

Result<AeadStreamSealer> AeadStreamSealer::Create(ByteSpan key, ByteSpan stream_aad) {
  uint8_t prefix[kStreamNoncePrefixSize];
  CHIRON_RETURN_IF_ERROR(RandomFill(prefix));
  return CreateWithNoncePrefixForTesting(key, stream_aad, prefix);
}

Result<AeadStreamSealer> AeadStreamSealer::CreateWithNoncePrefixForTesting(ByteSpan key,
                                                                           ByteSpan stream_aad,
                                                                           ByteSpan nonce_prefix) {
  CHIRON_RETURN_IF_ERROR(CheckKey(key));
  if (nonce_prefix.size() != kStreamNoncePrefixSize) {
    return InvalidArgumentError("AEAD stream nonce prefix must be 7 bytes, got " +
                                std::to_string(nonce_prefix.size()));
  }
  AeadStreamSealer sealer;
  sealer.key_ = SecretBytes(key);
  sealer.stream_aad_.assign(stream_aad.begin(), stream_aad.end());
  sealer.nonce_prefix_.assign(nonce_prefix.begin(), nonce_prefix.end());
  sealer.aad_ = AadPrefix(stream_aad);
  CHIRON_ASSIGN_OR_RETURN(sealer.ctx_, KeyedContext(key, /*encrypt=*/true));
  return sealer;
}

Result<Bytes> AeadStreamSealer::SealChunk(ByteSpan plaintext, bool last) {
  Bytes out(plaintext.size() + kStreamTagSize);
  CHIRON_RETURN_IF_ERROR(SealChunkInto(plaintext, last, out));
  return out;
}

Status AeadStreamSealer::SealChunkInto(ByteSpan plaintext, bool last, MutableByteSpan out) {
  if (finished_) {
    return FailedPreconditionError("AEAD stream already sealed its last chunk");
  }
  if (next_index_ >= kStreamMaxChunks) {
    return FailedPreconditionError("AEAD stream reached its limit of 2^32 chunks");
  }
  if (next_index_ == kStreamMaxChunks - 1 && !last) {
    return FailedPreconditionError(
        "AEAD stream chunk 2^32 - 1 must be the last one (the index would overflow)");
  }
  if (plaintext.size() > kStreamMaxChunkSize) {
    return InvalidArgumentError("AEAD stream chunk of " + std::to_string(plaintext.size()) +
                                " bytes exceeds GCM's limit of 2^36 - 32 bytes");
  }
  if (out.size() != plaintext.size() + kStreamTagSize) {
    return InvalidArgumentError("AEAD stream output buffer must be " +
                                std::to_string(plaintext.size() + kStreamTagSize) +
                                " bytes (plaintext + tag), got " + std::to_string(out.size()));
  }
  const uint32_t index = static_cast<uint32_t>(next_index_);
  uint8_t nonce[kNonceSize];
  MakeNonce(nonce_prefix_, index, last, nonce);
  SetIndexAndLast(aad_.data() + aad_.size() - 5, index, last);

  EVP_CIPHER_CTX* ctx = ctx_.get();
  int final_size = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      !internal::CipherAad(ctx, aad_) ||
      !internal::CipherUpdate(ctx, plaintext.data(), plaintext.size(), out.data()) ||
      EVP_EncryptFinal_ex(ctx, out.data() + plaintext.size(), &final_size) != 1 ||
      final_size != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kStreamTagSize),
                          out.data() + plaintext.size()) != 1) {
    SecureZero(out.data(), out.size());
    return internal::OpensslStatus(StatusCode::kInternal, "AEAD stream chunk encryption failed");
  }
  ++next_index_;
  finished_ = last;
  return Status::Ok();
}

// ---- Opener -------------------------------------------------------------------------------

uint64_t AeadStreamChunksAuthenticated() {
  return chunks_authenticated.load(std::memory_order_relaxed);
}

Result<AeadStreamOpener> AeadStreamOpener::Create(ByteSpan key, ByteSpan stream_aad,
                                                  ByteSpan nonce_prefix) {
  CHIRON_RETURN_IF_ERROR(CheckKey(key));
  if (nonce_prefix.size() != kStreamNoncePrefixSize) {
    return InvalidArgumentError("AEAD stream nonce prefix must be 7 bytes, got " +
                                std::to_string(nonce_prefix.size()));
  }
  AeadStreamOpener opener;
  opener.key_ = SecretBytes(key);
  opener.stream_aad_.assign(stream_aad.begin(), stream_aad.end());
  opener.nonce_prefix_.assign(nonce_prefix.begin(), nonce_prefix.end());
  opener.aad_ = AadPrefix(stream_aad);
  CHIRON_ASSIGN_OR_RETURN(opener.ctx_, KeyedContext(key, /*encrypt=*/false));
  return opener;
}

Result<SecretBytes> AeadStreamOpener::OpenChunk(uint64_t index, ByteSpan sealed_chunk,
                                                bool last) const {
  if (sealed_chunk.size() < kStreamTagSize) {
    return DataLossError("AEAD stream chunk " + std::to_string(index) + " is " +
                         std::to_string(sealed_chunk.size()) +
                         " bytes, shorter than its 16-byte tag");
  }
  SecretBytes plaintext(sealed_chunk.size() - kStreamTagSize);
  CHIRON_RETURN_IF_ERROR(OpenChunkInto(index, sealed_chunk, last, plaintext.mutable_span()));
  return plaintext;
}

Status AeadStreamOpener::OpenChunkInto(uint64_t index, ByteSpan sealed_chunk, bool last,
                                       MutableByteSpan out) const {
  if (index >= kStreamMaxChunks) {
    SecureZero(out.data(), out.size());
    return InvalidArgumentError("AEAD stream chunk index " + std::to_string(index) +
                                " is beyond the format's limit of 2^32 - 1");
  }
  if (sealed_chunk.size() < kStreamTagSize) {
    SecureZero(out.data(), out.size());
    return DataLossError("AEAD stream chunk " + std::to_string(index) + " is " +
                         std::to_string(sealed_chunk.size()) +
                         " bytes, shorter than its 16-byte tag");
  }
  const size_t size = sealed_chunk.size() - kStreamTagSize;
  if (out.size() != size) {
    SecureZero(out.data(), out.size());
    return InvalidArgumentError("AEAD stream output buffer must be " + std::to_string(size) +
                                " bytes, got " + std::to_string(out.size()));
  }
  if (size > kStreamMaxChunkSize) {
    return DataLossError("AEAD stream chunk is larger than GCM allows");
  }
  uint8_t nonce[kNonceSize];
  MakeNonce(nonce_prefix_, static_cast<uint32_t>(index), last, nonce);
  SetIndexAndLast(aad_.data() + aad_.size() - 5, static_cast<uint32_t>(index), last);
  uint8_t tag[kStreamTagSize];
  std::copy(sealed_chunk.end() - kStreamTagSize, sealed_chunk.end(), tag);

  EVP_CIPHER_CTX* ctx = ctx_.get();
  int final_size = 0;
  chunks_authenticated.fetch_add(1, std::memory_order_relaxed);
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      !internal::CipherAad(ctx, aad_) ||
      !internal::CipherUpdate(ctx, sealed_chunk.data(), size, out.data()) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kStreamTagSize), tag) != 1) {
    SecureZero(out.data(), out.size());
    return internal::OpensslStatus(StatusCode::kInternal, "AEAD stream chunk decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx, out.data() + size, &final_size) != 1) {
    ERR_clear_error();
    SecureZero(out.data(), out.size());
    return DataLossError("authentication failed");
  }
  return Status::Ok();
}

Status AeadStreamOpener::CheckChunk(uint64_t index, ByteSpan sealed_chunk) const {
  if (index >= kStreamMaxChunks) {
    return InvalidArgumentError("AEAD stream chunk index " + std::to_string(index) +
                                " is beyond the format's limit of 2^32 - 1");
  }
  if (sealed_chunk.size() < kStreamTagSize) {
    return DataLossError("AEAD stream chunk " + std::to_string(index) + " is " +
                         std::to_string(sealed_chunk.size()) +
                         " bytes, shorter than its 16-byte tag");
  }
  if (sealed_chunk.size() - kStreamTagSize > kStreamMaxChunkSize) {
    return DataLossError("AEAD stream chunk is larger than GCM allows");
  }
  return Status::Ok();
}

Result<GcmTagChecker*> AeadStreamOpener::Checker() const {
  if (!checker_) {
    CHIRON_ASSIGN_OR_RETURN(GcmTagChecker checker, GcmTagChecker::Create(key_.span()));
    checker_ = std::make_unique<GcmTagChecker>(std::move(checker));
  }
  return checker_.get();
}

Status AeadStreamOpener::VerifyChunk(uint64_t index, ByteSpan sealed_chunk, bool last) const {
  CHIRON_RETURN_IF_ERROR(CheckChunk(index, sealed_chunk));
  CHIRON_ASSIGN_OR_RETURN(GcmTagChecker * checker, Checker());
  uint8_t nonce[kNonceSize];
  MakeNonce(nonce_prefix_, static_cast<uint32_t>(index), last, nonce);
  SetIndexAndLast(aad_.data() + aad_.size() - 5, static_cast<uint32_t>(index), last);
  const size_t size = sealed_chunk.size() - kStreamTagSize;
  chunks_authenticated.fetch_add(1, std::memory_order_relaxed);
  return checker->Verify(ByteSpan(nonce, kNonceSize), aad_, sealed_chunk.first(size),
                         sealed_chunk.subspan(size));
}

Status AeadStreamOpener::DecryptStrided(uint64_t index, ByteSpan sealed_chunk, bool last,
                                        size_t stride, size_t width, MutableByteSpan out) const {
  CHIRON_RETURN_IF_ERROR(CheckChunk(index, sealed_chunk));
  CHIRON_ASSIGN_OR_RETURN(GcmTagChecker * checker, Checker());
  uint8_t nonce[kNonceSize];
  MakeNonce(nonce_prefix_, static_cast<uint32_t>(index), last, nonce);
  return checker->DecryptStrided(ByteSpan(nonce, kNonceSize),
                                 sealed_chunk.first(sealed_chunk.size() - kStreamTagSize), stride,
                                 width, out);
}

}  // namespace chiron::crypto
