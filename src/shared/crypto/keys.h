// Signature keys: Ed25519, ECDSA P-256 with SHA-256, ECDSA P-384 with SHA-384.
//
// PrivateKey and PublicKey own an OpenSSL EVP_PKEY (reference counted; copies share it and are
// cheap). Both are immutable after creation and safe to use from several threads.
//
// Signature encodings:
//  - Ed25519: the 64-byte RFC 8032 signature.
//  - ECDSA: DER (SEQUENCE of two INTEGERs) by default, as X.509 and TLS use; VerifyEcdsaRaw takes
//    the fixed-size big-endian r || s form (IEEE P1363) found in TDX quotes and, byte-reversed,
//    in SEV-SNP reports.
#pragma once

#include <memory>
#include <string>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace chiron::crypto {

enum class SignatureScheme { kEd25519, kEcdsaP256Sha256, kEcdsaP384Sha384 };

std::string_view SignatureSchemeName(SignatureScheme scheme);

class PublicKey {
 public:
  // SubjectPublicKeyInfo DER (any of the three schemes; the curve picks the scheme).
  static Result<PublicKey> FromSpkiDer(ByteSpan der);
  // Ed25519: 32 raw bytes. ECDSA: the SEC1 point (0x04 || X || Y, or compressed).
  static Result<PublicKey> FromRaw(SignatureScheme scheme, ByteSpan raw);

  SignatureScheme scheme() const { return scheme_; }
  Result<Bytes> ToSpkiDer() const;
  // Ed25519: 32 bytes. ECDSA: uncompressed SEC1 point.
  Result<Bytes> ToRaw() const;

  // OK, or Unauthenticated("signature verification failed") for any bad signature, including
  // malformed encodings. Never crashes on hostile input.
  Status Verify(ByteSpan message, ByteSpan signature) const;
  // ECDSA only: r and s as big-endian integers of the curve's size (32 or 48 bytes each).
  Status VerifyEcdsaRaw(ByteSpan message, ByteSpan r, ByteSpan s) const;

  EVP_PKEY* native() const { return key_.get(); }
  // Adopts a reference to an existing key (increments its reference count).
  static Result<PublicKey> FromNative(EVP_PKEY* key);

 private:
  PublicKey(std::shared_ptr<EVP_PKEY> key, SignatureScheme scheme)
      : key_(std::move(key)), scheme_(scheme) {}
  std::shared_ptr<EVP_PKEY> key_;
  SignatureScheme scheme_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> Generate(SignatureScheme scheme);
  // PKCS#8 DER (unencrypted) as written by ToPkcs8Der.
  static Result<PrivateKey> FromPkcs8Der(ByteSpan der);

  SignatureScheme scheme() const { return scheme_; }
  PublicKey public_key() const;
  Result<SecretBytes> ToPkcs8Der() const;

  Result<Bytes> Sign(ByteSpan message) const;

  EVP_PKEY* native() const { return key_.get(); }

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey public_key, SignatureScheme scheme)
      : key_(std::move(key)), public_key_(std::move(public_key)), scheme_(scheme) {}
  // Adopts one reference to `key` and derives the public half.
  static Result<PrivateKey> Adopt(EVP_PKEY* key);
  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_key_;  // a separate, public-only EVP_PKEY
  SignatureScheme scheme_;
};

// Converts big-endian r, s into a DER ECDSA signature (helper for raw formats). r and s must be
// non-empty, of equal size, at most 66 bytes each.
Result<Bytes> EcdsaRawToDer(ByteSpan r, ByteSpan s);

// The size in bytes of r and s (and of a field element) for an ECDSA scheme: 32 or 48; 0 for
// Ed25519.
size_t EcdsaScalarSize(SignatureScheme scheme);

}  // namespace chiron::crypto
