// Cryptographically secure random bytes from OpenSSL's DRBG (seeded by the kernel).
#pragma once

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::crypto {

// Fills `out`. Fails (Internal) only if the DRBG cannot be seeded; callers must fail closed.
Status RandomFill(MutableByteSpan out);
Result<Bytes> RandomBytes(size_t size);
Result<SecretBytes> RandomSecret(size_t size);

}  // namespace chiron::crypto
