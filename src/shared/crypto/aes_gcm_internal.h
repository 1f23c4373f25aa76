// Internal AES-GCM helpers shared by aes_gcm.cc and aead_stream.cc.
#pragma once

#include <openssl/evp.h>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::crypto::internal {

// The fetched AES-GCM cipher for a 16/24/32-byte key, or null for other sizes.
const EVP_CIPHER* AesGcmCipher(size_t key_size);
// InvalidArgument naming the size unless the key is 16, 24 or 32 bytes.
Status CheckGcmKey(ByteSpan key);
// EVP_CipherUpdate over inputs of any size; false on failure.
bool CipherUpdate(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t size, uint8_t* out);
bool CipherAad(EVP_CIPHER_CTX* ctx, ByteSpan aad);

}  // namespace chiron::crypto::internal
