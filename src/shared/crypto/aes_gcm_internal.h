// Internal AES-GCM helpers shared by aes_gcm.cc and aead_stream.cc.
#pragma once

#include <openssl/evp.h>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::crypto::internal {

// The fetched AES-GCM cipher for a 16/24/32-byte key, or null for other sizes.
const EVP_CIPHER* AesGcmCipher(size_t key_size);
// InvalidArgument naming the size unless the key is 16, 24 or 32 bytes.
Status CheckGcmKey(ByteSpan key);
// EVP_CipherUpdate over inputs of any size; false on failure.
bool CipherUpdate(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t size, uint8_t* out);
bool CipherAad(EVP_CIPHER_CTX* ctx, ByteSpan aad);

// A GF(2^128) element in GCM's bit order (SP 800-38D): byte 0's high bit is the x^0 coefficient.
struct GfBlock {
  uint64_t hi = 0, lo = 0;
};
GfBlock LoadBlock(const uint8_t* p);   // 16 bytes, big-endian halves
void StoreBlock(GfBlock b, uint8_t* p);
// Multiplication in GF(2^128) (SP 800-38D, algorithm 1; bitwise, for a few blocks only).
GfBlock GfMultiply(GfBlock x, GfBlock y);

// OpenSSL's GCM accepts IVs of at most this many bytes; longer ones use AesGcmLongIv.
inline constexpr size_t kMaxOpensslGcmIvSize = 128;
// GCM from its definition for long IVs: en/decrypts `input` into `output` (same size) and
// writes the full 16-byte tag (computed over the ciphertext). The caller compares tags.
Status AesGcmLongIv(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan input, bool encrypt,
                    uint8_t* output, uint8_t tag[16]);

}  // namespace chiron::crypto::internal
