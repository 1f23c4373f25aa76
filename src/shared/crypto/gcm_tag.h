// GcmTagChecker: checks AES-256-GCM tags without decrypting, and decrypts selected bytes.
//
// A runtime that receives sealed data it will store as it is (dataset chunks) needs only to know
// the tag is right, and to read a few fields (each record's label); decrypting every byte to
// throw the plaintext away costs an AES pass. GCM's tag is GHASH over (aad, ciphertext, lengths)
// masked with E_K(J0), so the tag can be computed from the ciphertext alone: OpenSSL's fast GHASH
// absorbs aad || zero padding || ciphertext as associated data of an empty message, which
// yields the right tag except for the final length block; GHASH is linear, so the difference is
// (L xor L') * H for the two length blocks L, L' and the hash key H = E_K(0^128), one
// multiplication to undo. About 1.8 times as fast as decryption over data that is not in cache
// (build/bin/crypto_bench, "tag only"; more on cached data). Checked against every Project Wycheproof AES-GCM vector with a 12-byte IV
// (wycheproof_test.cc) and against decryption (gcm_tag_test.cc).
//
// Selected bytes decrypt with GCM's own counter mode: byte p of the message is XORed with byte
// p mod 16 of E_K(IV || be32(2 + p / 16)). Only for ciphertext whose tag was checked.
//
// Not thread safe (one keyed OpenSSL context each); create one per thread.
#pragma once

#include <memory>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace chiron::crypto {

class GcmTagChecker {
 public:
  // `key`: 32 bytes (AES-256).
  static Result<GcmTagChecker> Create(ByteSpan key);
  ~GcmTagChecker();
  GcmTagChecker(GcmTagChecker&&) noexcept;
  GcmTagChecker& operator=(GcmTagChecker&&) noexcept;

  // OK if `tag` (16 bytes) is the GCM tag of `ciphertext` with `aad` under the key and `iv` (12
  // bytes); DataLoss "authentication failed" if not; InvalidArgument for other IV or tag sizes.
  // Compares in constant time.
  Status Verify(ByteSpan iv, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag);

  // Decrypts `width` bytes at every offset k * stride (k = 0, 1, ... while the bytes fit in
  // `ciphertext`) into `out`, back to back: out must hold count * width bytes, count =
  // ciphertext.size() / stride rounded up where a whole field fits. For records of `stride`
  // bytes that start with a `width`-byte field (a dataset chunk's labels).
  Status DecryptStrided(ByteSpan iv, ByteSpan ciphertext, size_t stride, size_t width,
                        MutableByteSpan out);

 private:
  struct Contexts;
  explicit GcmTagChecker(std::unique_ptr<Contexts> contexts);
  std::unique_ptr<Contexts> contexts_;
};

}  // namespace chiron::crypto
