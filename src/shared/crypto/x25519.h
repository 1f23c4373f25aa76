// X25519 key agreement (RFC 7748).
#pragma once

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::crypto {

inline constexpr size_t kX25519KeySize = 32;

struct X25519KeyPair {
  SecretBytes private_key;  // 32 bytes
  Bytes public_key;         // 32 bytes
};

Result<X25519KeyPair> X25519Generate();
// Derives the public key of a 32-byte private key.
Result<Bytes> X25519PublicFromPrivate(ByteSpan private_key);
// Shared secret. InvalidArgument for wrong sizes; Unauthenticated if the result is all zeros
// (a low-order peer point: RFC 7748 section 6.1 says to abort).
Result<SecretBytes> X25519(ByteSpan private_key, ByteSpan peer_public_key);

}  // namespace chiron::crypto
