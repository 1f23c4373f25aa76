// Sealed values: the one at-rest encryption format of the store (docs/formats/sealed-blob.md).
//
//   sealed = magic "CHSB" | version u16le (1) | reserved u16le (0) | nonce (12) | ciphertext | tag (16)
//   AAD    = "CHIRON-SEALED-V1" 0x00 | u32le len | purpose | u32le len | row | the 8 header bytes
//
// `purpose` names the table and column or file kind ("datasets.name", "blob.model") and `row`
// the row it belongs to ("3fa1...", "3fa1.../7"), so a sealed value copied to another row,
// column or table fails authentication.
//
// Keys. SealingKeys derives one key per purpose family from the platform sealing key with
// HKDF-SHA256 (salt "chiron-store-v1", info = family name), so the catalog, blob and audit keys
// are independent and none equals the platform key.
//
// Thread safety: pure functions; SealingKeys is an immutable value after Derive.
#pragma once

#include <cstdint>
#include <string_view>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::store {

inline constexpr char kSealedMagic[4] = {'C', 'H', 'S', 'B'};
inline constexpr uint16_t kSealedVersion = 1;
inline constexpr size_t kSealedHeaderSize = 8;  // magic, version, reserved
inline constexpr size_t kSealedNonceSize = 12;
inline constexpr size_t kSealedTagSize = 16;
inline constexpr size_t kSealedOverhead = kSealedHeaderSize + kSealedNonceSize + kSealedTagSize;
// Largest sealed value accepted (a generic blob up to 1 GiB, plus overhead).
inline constexpr uint64_t kMaxSealedSize = (uint64_t{1} << 30) + kSealedOverhead;
inline constexpr size_t kMaxPurposeSize = 64;
inline constexpr size_t kMaxRowSize = 512;

// The structure of a sealed value, parsed without a key. Views into the input.
struct SealedView {
  uint16_t version = 0;
  ByteSpan header;  // the kSealedHeaderSize header bytes (bound into the AAD)
  ByteSpan nonce;
  ByteSpan ciphertext;
  ByteSpan tag;
};

// Structure only: InvalidArgument naming the field if the input is shorter than
// kSealedOverhead, longer than kMaxSealedSize, has the wrong magic, an unknown version or a
// non-zero reserved field.
Result<SealedView> ParseSealed(ByteSpan sealed);

// The associated data for (purpose, row) under a given header. InvalidArgument if purpose is
// empty or longer than kMaxPurposeSize, or row is longer than kMaxRowSize.
Result<Bytes> SealedAad(std::string_view purpose, std::string_view row, ByteSpan header);

// Seals `plaintext` with a 32-byte key and a fresh random nonce.
Result<Bytes> Seal(ByteSpan key, std::string_view purpose, std::string_view row,
                   ByteSpan plaintext);
// Opens a sealed value. InvalidArgument (from ParseSealed) if it is not structurally a sealed
// value; DataLoss "<purpose> of <row> failed authentication (altered, moved from another row, or
// sealed under another key)" if the key, purpose, row or any byte differs.
Result<SecretBytes> Unseal(ByteSpan key, std::string_view purpose, std::string_view row,
                           ByteSpan sealed);

// The store's per-family keys, derived from the platform sealing key.
struct SealingKeys {
  SecretBytes catalog;  // sealed catalog columns
  SecretBytes blob;     // blob files (mixed with a per-dataset or per-blob key)
  SecretBytes audit;    // audit records at rest
  SecretBytes index;    // HMAC key for blind indexes (dataset name lookups)
  SecretBytes check;    // key check stored in the catalog: detects a wrong sealing key on Open

  // InvalidArgument unless root is 32 bytes.
  static Result<SealingKeys> Derive(ByteSpan root);
};

// The key that seals one generic blob's file: HKDF-SHA256(ikm = item_key, salt = blob key,
// info = "chiron-store blob" 0x00 kind 0x00 id), where item_key is the blob's random 32-byte key.
Result<SecretBytes> DeriveItemKey(ByteSpan blob_key, ByteSpan item_key, std::string_view kind,
                                  std::string_view id);

}  // namespace chiron::store
