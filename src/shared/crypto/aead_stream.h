// A chunked AEAD stream: AES-256-GCM over a sequence of chunks, each with its own nonce derived
// from a per-stream random prefix and the chunk index, and associated data that binds the stream
// header, the chunk index and whether the chunk is the last one. Reordering, truncation (dropping
// final chunks), extension, splicing chunks between streams and a wrong key are all detected.
// The byte layout is specified in docs/formats/aead-stream.md.
//
// Both classes keep the key in SecretBytes and are not thread safe.
#pragma once

#include <cstdint>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::crypto {

inline constexpr size_t kStreamNoncePrefixSize = 7;
inline constexpr uint64_t kStreamMaxChunks = uint64_t{1} << 32;

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

 private:
  AeadStreamSealer() = default;
  SecretBytes key_;
  Bytes stream_aad_;
  Bytes nonce_prefix_;
  uint64_t next_index_ = 0;
  bool finished_ = false;
};

class AeadStreamOpener {
 public:
  static Result<AeadStreamOpener> Create(ByteSpan key, ByteSpan stream_aad, ByteSpan nonce_prefix);

  // Opens chunk `index` (callers may open chunks in any order, e.g. for random access, but
  // each chunk authenticates its own index and last flag). DataLoss if anything was altered.
  Result<SecretBytes> OpenChunk(uint64_t index, ByteSpan sealed_chunk, bool last) const;

 private:
  AeadStreamOpener() = default;
  SecretBytes key_;
  Bytes stream_aad_;
  Bytes nonce_prefix_;
};

}  // namespace chiron::crypto
