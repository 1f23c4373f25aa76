// AES-GCM authenticated encryption.
//
// The one-shot functions below accept every key size (16/24/32 bytes), IV size (≥ 1 byte) and
// tag size (4..16 bytes) so the Wycheproof vectors can be run through them; Chiron's own formats
// use only AES-256 with 12-byte nonces and 16-byte tags (the k* constants).
#pragma once

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::crypto {

inline constexpr size_t kAes256KeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

struct SealedDetached {
  Bytes ciphertext;
  Bytes tag;
};

// Encrypts; returns ciphertext and a tag of `tag_size` bytes.
Result<SealedDetached> AesGcmSealDetached(ByteSpan key, ByteSpan iv, ByteSpan aad,
                                          ByteSpan plaintext, size_t tag_size = kGcmTagSize);
// Decrypts and verifies. Any mismatch (key, iv, aad, ciphertext or tag) is DataLoss with the
// message "authentication failed"; no partial plaintext is ever returned.
Result<SecretBytes> AesGcmOpenDetached(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan ciphertext,
                                       ByteSpan tag);

// AES-256-GCM with a random 12-byte nonce: output is nonce || ciphertext || tag.
Result<Bytes> AesGcmSeal(ByteSpan key, ByteSpan aad, ByteSpan plaintext);
// Inverse of AesGcmSeal.
Result<SecretBytes> AesGcmOpen(ByteSpan key, ByteSpan aad, ByteSpan sealed);

}  // namespace chiron::crypto
