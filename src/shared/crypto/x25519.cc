#include "shared/crypto/x25519.h"

#include <openssl/evp.h>

#include <string>

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {
namespace {

using internal::OpensslStatus;

Status CheckSize(ByteSpan key, const char* what) {
  if (key.size() != kX25519KeySize) {
    return InvalidArgumentError(std::string("X25519 ") + what + " must be 32 bytes, got " +
                                std::to_string(key.size()));
  }
  return Status::Ok();
}

}  // namespace

Result<X25519KeyPair> X25519Generate() {
  internal::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) return OpensslStatus(StatusCode::kInternal, "X25519 key generation failed");
  X25519KeyPair pair;
  pair.private_key = SecretBytes(kX25519KeySize);
  pair.public_key.resize(kX25519KeySize);
  size_t private_size = kX25519KeySize;
  size_t public_size = kX25519KeySize;
  if (EVP_PKEY_get_raw_private_key(key.get(), pair.private_key.data(), &private_size) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), pair.public_key.data(), &public_size) != 1 ||
      private_size != kX25519KeySize || public_size != kX25519KeySize) {
    return OpensslStatus(StatusCode::kInternal, "X25519 key export failed");
  }
  return pair;
}

Result<Bytes> X25519PublicFromPrivate(ByteSpan private_key) {
  CHIRON_RETURN_IF_ERROR(CheckSize(private_key, "private key"));
  internal::EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                                        private_key.data(), private_key.size()));
  if (!key) return OpensslStatus(StatusCode::kInternal, "X25519 private key import failed");
  Bytes out(kX25519KeySize);
  size_t size = out.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), out.data(), &size) != 1 || size != out.size()) {
    return OpensslStatus(StatusCode::kInternal, "X25519 public key derivation failed");
  }
  return out;
}

Result<SecretBytes> X25519(ByteSpan private_key, ByteSpan peer_public_key) {
  CHIRON_RETURN_IF_ERROR(CheckSize(private_key, "private key"));
  CHIRON_RETURN_IF_ERROR(CheckSize(peer_public_key, "peer public key"));
  internal::EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                                        private_key.data(), private_key.size()));
  internal::EvpPkeyPtr peer(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, peer_public_key.data(), peer_public_key.size()));
  if (!key || !peer) return OpensslStatus(StatusCode::kInternal, "X25519 key import failed");
  internal::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X25519 context setup failed");
  }
  // No peer validation step: every 32-byte string is a valid X25519 input (RFC 7748 section 5);
  // low-order points are caught below by the all-zero check.
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), /*validate_peer=*/0) != 1) {
    return OpensslStatus(StatusCode::kInternal, "X25519 peer setup failed");
  }
  SecretBytes shared(kX25519KeySize);
  size_t size = shared.size();
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &size) != 1 || size != kX25519KeySize) {
    // OpenSSL refuses to return an all-zero secret; that is the only way a derivation with two
    // well-sized keys fails.
    ERR_clear_error();
    return UnauthenticatedError(
        "X25519 shared secret is all zeros: the peer public key is a low-order point");
  }
  uint8_t any = 0;
  for (uint8_t b : shared.span()) any |= b;
  if (any == 0) {
    return UnauthenticatedError(
        "X25519 shared secret is all zeros: the peer public key is a low-order point");
  }
  return shared;
}

}  // namespace chiron::crypto
