// HKDF (RFC 5869), extract-then-expand.
#pragma once

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/crypto/hash.h"

namespace chiron::crypto {

// Derives `size` bytes. InvalidArgument if size exceeds 255 * digest size (RFC 5869's limit).
// An empty salt means "no salt" (a string of zeros of the digest size, per the RFC).
Result<SecretBytes> Hkdf(HashAlgorithm algorithm, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                         size_t size);

}  // namespace chiron::crypto
