#include "runtime/store/sealed.h"

#include <cstring>
#include <string>

#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/hkdf.h"
#include "shared/crypto/random.h"

namespace chiron::store {
namespace {

constexpr char kAadDomain[] = "CHIRON-SEALED-V1";  // followed by its NUL in the AAD
constexpr char kKeySalt[] = "chiron-store-v1";

void AppendString(Bytes& out, std::string_view s) {
  AppendU32Le(out, static_cast<uint32_t>(s.size()));
  Append(out, AsBytes(s));
}

Bytes SealedHeader() {
  Bytes header(kSealedMagic, kSealedMagic + sizeof kSealedMagic);
  AppendU16Le(header, kSealedVersion);
  AppendU16Le(header, 0);
  return header;
}

Result<SecretBytes> DeriveFamilyKey(ByteSpan root, std::string_view family) {
  return crypto::Hkdf(crypto::HashAlgorithm::kSha256, root, AsBytes(kKeySalt), AsBytes(family),
                      crypto::kAes256KeySize);
}

}  // namespace

Result<SealedView> ParseSealed(ByteSpan sealed) {
  if (sealed.size() < kSealedOverhead) {
    return InvalidArgumentError("sealed value is " + std::to_string(sealed.size()) +
                                " bytes, shorter than the " + std::to_string(kSealedOverhead) +
                                "-byte minimum (header, nonce and tag): truncated?");
  }
  if (sealed.size() > kMaxSealedSize) {
    return InvalidArgumentError("sealed value is " + std::to_string(sealed.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(kMaxSealedSize));
  }
  ByteReader reader(sealed);
  SealedView view;
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(sizeof kSealedMagic, "sealed magic"));
  if (std::memcmp(magic.data(), kSealedMagic, sizeof kSealedMagic) != 0) {
    return InvalidArgumentError("sealed value: wrong magic (expected \"CHSB\"; not a sealed value "
                                "of this store)");
  }
  CHIRON_ASSIGN_OR_RETURN(view.version, reader.U16Le("sealed version"));
  if (view.version != kSealedVersion) {
    return InvalidArgumentError("sealed value: unsupported version " +
                                std::to_string(view.version) + " (this build reads version " +
                                std::to_string(kSealedVersion) + ")");
  }
  CHIRON_ASSIGN_OR_RETURN(uint16_t reserved, reader.U16Le("sealed reserved field"));
  if (reserved != 0) {
    return InvalidArgumentError("sealed value: reserved field is " + std::to_string(reserved) +
                                ", must be 0");
  }
  view.header = sealed.first(kSealedHeaderSize);
  CHIRON_ASSIGN_OR_RETURN(view.nonce, reader.Take(kSealedNonceSize, "sealed nonce"));
  CHIRON_ASSIGN_OR_RETURN(view.ciphertext,
                          reader.Take(reader.remaining() - kSealedTagSize, "sealed ciphertext"));
  CHIRON_ASSIGN_OR_RETURN(view.tag, reader.Take(kSealedTagSize, "sealed tag"));
  return view;
}

Result<Bytes> SealedAad(std::string_view purpose, std::string_view row, ByteSpan header) {
  if (purpose.empty() || purpose.size() > kMaxPurposeSize) {
    return InvalidArgumentError("sealed purpose must be 1.." + std::to_string(kMaxPurposeSize) +
                                " bytes, got " + std::to_string(purpose.size()));
  }
  if (row.size() > kMaxRowSize) {
    return InvalidArgumentError("sealed row name is " + std::to_string(row.size()) +
                                " bytes, more than the limit of " + std::to_string(kMaxRowSize));
  }
  Bytes aad;
  aad.reserve(sizeof kAadDomain + 8 + purpose.size() + row.size() + header.size());
  Append(aad, AsBytes(std::string_view(kAadDomain, sizeof kAadDomain)));  // includes the NUL
  AppendString(aad, purpose);
  AppendString(aad, row);
  Append(aad, header);
  return aad;
}

Result<Bytes> Seal(ByteSpan key, std::string_view purpose, std::string_view row,
                   ByteSpan plaintext) {
  if (plaintext.size() > kMaxSealedSize - kSealedOverhead) {
    return InvalidArgumentError("cannot seal " + std::to_string(plaintext.size()) +
                                " bytes: more than the limit of " +
                                std::to_string(kMaxSealedSize - kSealedOverhead));
  }
  Bytes out = SealedHeader();
  CHIRON_ASSIGN_OR_RETURN(Bytes aad, SealedAad(purpose, row, out));
  uint8_t nonce[kSealedNonceSize];
  CHIRON_RETURN_IF_ERROR(crypto::RandomFill(nonce));
  CHIRON_ASSIGN_OR_RETURN(crypto::SealedDetached sealed,
                          crypto::AesGcmSealDetached(key, nonce, aad, plaintext, kSealedTagSize));
  out.reserve(kSealedOverhead + plaintext.size());
  Append(out, nonce);
  Append(out, sealed.ciphertext);
  Append(out, sealed.tag);
  return out;
}

Result<SecretBytes> Unseal(ByteSpan key, std::string_view purpose, std::string_view row,
                           ByteSpan sealed) {
  CHIRON_ASSIGN_OR_RETURN(SealedView view, ParseSealed(sealed));
  CHIRON_ASSIGN_OR_RETURN(Bytes aad, SealedAad(purpose, row, view.header));
  Result<SecretBytes> opened =
      crypto::AesGcmOpenDetached(key, view.nonce, aad, view.ciphertext, view.tag);
  if (!opened.ok()) {
    if (opened.status().code() != StatusCode::kDataLoss) return opened.status();
    return DataLossError(std::string(purpose) + " of " + std::string(row) +
                         " failed authentication (altered, moved from another row, or sealed "
                         "under another key)");
  }
  return opened;
}

Result<SealingKeys> SealingKeys::Derive(ByteSpan root) {
  if (root.size() != crypto::kAes256KeySize) {
    return InvalidArgumentError("store sealing key must be 32 bytes, got " +
                                std::to_string(root.size()));
  }
  SealingKeys keys;
  CHIRON_ASSIGN_OR_RETURN(keys.catalog, DeriveFamilyKey(root, "catalog"));
  CHIRON_ASSIGN_OR_RETURN(keys.blob, DeriveFamilyKey(root, "blob"));
  CHIRON_ASSIGN_OR_RETURN(keys.audit, DeriveFamilyKey(root, "audit"));
  CHIRON_ASSIGN_OR_RETURN(keys.index, DeriveFamilyKey(root, "index"));
  CHIRON_ASSIGN_OR_RETURN(keys.check, DeriveFamilyKey(root, "check"));
  return keys;
}

Result<SecretBytes> DeriveItemKey(ByteSpan blob_key, ByteSpan item_key, std::string_view kind,
                                  std::string_view id) {
  if (item_key.size() != crypto::kAes256KeySize) {
    return InvalidArgumentError("blob key must be 32 bytes, got " +
                                std::to_string(item_key.size()));
  }
  Bytes info = ToBytes("chiron-store blob");
  info.push_back(0);
  Append(info, AsBytes(kind));
  info.push_back(0);
  Append(info, AsBytes(id));
  return crypto::Hkdf(crypto::HashAlgorithm::kSha256, item_key, blob_key, info,
                      crypto::kAes256KeySize);
}

}  // namespace chiron::store
