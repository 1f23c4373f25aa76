// A chunked AEAD stream: AES-256-GCM over a sequence of chunks, each with its own nonce derived
// from a per-stream random prefix and the chunk index, and associated data that binds the stream
// header, the chunk index and whether the chunk is the last one. Reordering, truncation (dropping
// final chunks), extension, splicing chunks between streams and a wrong key are all detected.
// The byte layout is specified in docs/formats/aead-stream.md.
//
// Both classes keep the key in SecretBytes and are not thread safe: each holds one keyed OpenSSL
// cipher context that every chunk reuses, so even the const OpenChunk must not be called from
// two threads at once (use one opener per thread).
#pragma once

#include <cstdint>
#include <memory>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/crypto/gcm_tag.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace chiron::crypto {

inline constexpr size_t kStreamNoncePrefixSize = 7;
inline constexpr uint64_t kStreamMaxChunks = uint64_t{1} << 32;
// Each sealed chunk is its plaintext plus this many bytes.
inline constexpr size_t kStreamTagSize = 16;
// GCM's per-message limit (NIST SP 800-38D): 2^36 - 32 bytes of plaintext per chunk.
inline constexpr uint64_t kStreamMaxChunkSize = (uint64_t{1} << 36) - 32;

// Chunks this process has authenticated with AeadStreamOpener (OpenChunk, OpenChunkInto and
// VerifyChunk calls that reached the tag check, whatever their verdict), from any thread. For
// tests and benches that prove a path authenticates each chunk exactly once; one relaxed atomic
// increment per chunk.
uint64_t AeadStreamChunksAuthenticated();

namespace internal {
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const;
};
}  // namespace internal

class AeadStreamSealer {
 public:
  // `key` is 32 bytes. `stream_aad` (e.g. a dataset id and header) is bound into every chunk.
  // The nonce prefix is drawn at random; put it in the stream header (nonce_prefix()).
  static Result<AeadStreamSealer> Create(ByteSpan key, ByteSpan stream_aad);

  const Bytes& nonce_prefix() const { return nonce_prefix_; }
  uint64_t next_index() const { return next_index_; }

  // Seals the next chunk; `last` must be true exactly for the final chunk. Returns
  // ciphertext || 16-byte tag. FailedPrecondition after the last chunk or past kStreamMaxChunks.
  Result<Bytes> SealChunk(ByteSpan plaintext, bool last);
  // Allocation-free variant: writes ciphertext || tag into `out`, which must be exactly
  // plaintext.size() + kStreamTagSize bytes (InvalidArgument otherwise). `out` may not overlap
  // `plaintext` except exactly (in-place sealing of out.first(plaintext.size())).
  Status SealChunkInto(ByteSpan plaintext, bool last, MutableByteSpan out);
  // Re-creates the sealer of an interrupted stream (a resumed upload) with the nonce prefix that
  // stream's header already carries. Safe only when the plaintext sealed again is identical to the
  // first run's, chunk for chunk: then every (nonce, plaintext) pair repeats and so does the
  // ciphertext. Sealing different plaintext under a reused prefix destroys confidentiality, so
  // callers must prove the input unchanged first.
  static Result<AeadStreamSealer> CreateToReseal(ByteSpan key, ByteSpan stream_aad,
                                                 ByteSpan nonce_prefix) {
    return CreateWithNoncePrefixForTesting(key, stream_aad, nonce_prefix);
  }
  // Creates the sealer with a caller-chosen nonce prefix. Only for tests that need
  // deterministic output: reusing a prefix with the same key destroys confidentiality.
  static Result<AeadStreamSealer> CreateWithNoncePrefixForTesting(ByteSpan key, ByteSpan stream_aad,
                                                                  ByteSpan nonce_prefix);

 private:
  AeadStreamSealer() = default;
  SecretBytes key_;
  Bytes stream_aad_;
  Bytes nonce_prefix_;
  uint64_t next_index_ = 0;
  bool finished_ = false;
  // Keyed once at creation; each chunk only sets a new nonce (no per-chunk key schedule).
  std::unique_ptr<EVP_CIPHER_CTX, internal::CipherCtxDeleter> ctx_;
  Bytes aad_;  // label || stream_aad length || stream_aad || index || last (rewritten per chunk)
};

class AeadStreamOpener {
 public:
  static Result<AeadStreamOpener> Create(ByteSpan key, ByteSpan stream_aad, ByteSpan nonce_prefix);

  // Opens chunk `index` (callers may open chunks in any order, e.g. for random access, but
  // each chunk authenticates its own index and last flag). DataLoss if anything was altered.
  // InvalidArgument if index >= kStreamMaxChunks; DataLoss for a chunk shorter than the tag.
  Result<SecretBytes> OpenChunk(uint64_t index, ByteSpan sealed_chunk, bool last) const;
  // Allocation-free variant: writes the plaintext into `out`, which must be exactly
  // sealed_chunk.size() - kStreamTagSize bytes. On any error `out` is zeroed, so no
  // unauthenticated plaintext is left behind.
  Status OpenChunkInto(uint64_t index, ByteSpan sealed_chunk, bool last, MutableByteSpan out) const;

  // Authenticates chunk `index` without decrypting it (GcmTagChecker: GHASH only, about three
  // times faster than OpenChunk), for a caller that keeps the chunk sealed. Same errors as
  // OpenChunk.
  Status VerifyChunk(uint64_t index, ByteSpan sealed_chunk, bool last) const;
  // Decrypts `width` bytes at every multiple of `stride` of the chunk's plaintext into `out`
  // (GcmTagChecker::DecryptStrided), e.g. each record's label. Only for a chunk VerifyChunk
  // accepted.
  Status DecryptStrided(uint64_t index, ByteSpan sealed_chunk, bool last, size_t stride,
                        size_t width, MutableByteSpan out) const;

 private:
  AeadStreamOpener() = default;
  Status CheckChunk(uint64_t index, ByteSpan sealed_chunk) const;
  Result<GcmTagChecker*> Checker() const;
  SecretBytes key_;
  Bytes stream_aad_;
  Bytes nonce_prefix_;
  std::unique_ptr<EVP_CIPHER_CTX, internal::CipherCtxDeleter> ctx_;
  mutable Bytes aad_;  // scratch, as in the sealer
  mutable std::unique_ptr<GcmTagChecker> checker_;  // made on first use
};

}  // namespace chiron::crypto
