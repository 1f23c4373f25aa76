#include "shared/ratls/evidence_extension.h"

#include <string_view>

namespace chiron::ratls {
namespace {

// CBOR major types (RFC 8949 §3.1) used by the record.
constexpr uint8_t kMajorBytes = 2;
constexpr uint8_t kMajorText = 3;
constexpr uint8_t kArrayOfTwo = 0x82;
constexpr uint8_t kArrayOfThree = 0x83;

// Appends a CBOR head (major type and argument) in its shortest form.
void AppendHead(Bytes& out, uint8_t major, uint64_t argument) {
  const uint8_t type = static_cast<uint8_t>(major << 5);
  if (argument < 24) {
    out.push_back(static_cast<uint8_t>(type | argument));
    return;
  }
  // Additional information 24, 25, 26, 27: a 1-, 2-, 4- or 8-byte argument follows.
  int size = 8;
  uint8_t info = 27;
  if (argument <= 0xff) {
    size = 1, info = 24;
  } else if (argument <= 0xffff) {
    size = 2, info = 25;
  } else if (argument <= 0xffffffff) {
    size = 4, info = 26;
  }
  out.push_back(static_cast<uint8_t>(type | info));
  for (int i = size - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(argument >> (8 * i)));
}

Status Malformed(std::string_view what) {
  return InvalidArgumentError("evidence extension: " + std::string(what) +
                              " (Chiron certificates carry a CMW record [\"" + kEvidenceMediaType +
                              "\", evidence, 4]; docs/attested-tls.md)");
}

// Reads a CBOR head of `major` at `at`: its argument in shortest form, bounded by `max`.
class Reader {
 public:
  explicit Reader(ByteSpan bytes) : bytes_(bytes) {}

  Result<uint64_t> Head(uint8_t major, std::string_view field, uint64_t max) {
    if (at_ >= bytes_.size()) return Malformed(std::string(field) + " is missing");
    const uint8_t initial = bytes_[at_++];
    if ((initial >> 5) != major) return Malformed(std::string(field) + " has the wrong CBOR type");
    const uint8_t info = initial & 0x1f;
    uint64_t argument = 0;
    if (info < 24) {
      argument = info;
    } else if (info <= 27) {
      const size_t size = size_t{1} << (info - 24);
      if (bytes_.size() - at_ < size) return Malformed(std::string(field) + " is truncated");
      for (size_t i = 0; i < size; ++i) argument = (argument << 8) | bytes_[at_++];
      const uint64_t smallest = info == 24 ? 24 : (uint64_t{1} << (8 * (size / 2)));
      if (argument < smallest) {
        return Malformed(std::string(field) + " length is not in CBOR's shortest form");
      }
    } else {
      return Malformed(std::string(field) + " has an indefinite or reserved CBOR length");
    }
    if (argument > max) return Malformed(std::string(field) + " is larger than allowed");
    return argument;
  }

  Result<ByteSpan> Take(size_t size, std::string_view field) {
    if (bytes_.size() - at_ < size) return Malformed(std::string(field) + " is truncated");
    ByteSpan out = bytes_.subspan(at_, size);
    at_ += size;
    return out;
  }

  size_t remaining() const { return bytes_.size() - at_; }

 private:
  ByteSpan bytes_;
  size_t at_ = 0;
};

}  // namespace

Result<Bytes> EncodeEvidenceExtension(ByteSpan evidence) {
  if (evidence.empty()) return InvalidArgumentError("evidence extension: the evidence is empty");
  if (evidence.size() > kMaxEvidenceExtensionSize) {
    return InvalidArgumentError("evidence extension: evidence of " +
                                std::to_string(evidence.size()) + " bytes is above the limit of " +
                                std::to_string(kMaxEvidenceExtensionSize));
  }
  const std::string_view type = kEvidenceMediaType;
  Bytes out;
  out.reserve(evidence.size() + type.size() + 8);
  out.push_back(kArrayOfThree);
  AppendHead(out, kMajorText, type.size());
  Append(out, AsBytes(type));
  AppendHead(out, kMajorBytes, evidence.size());
  Append(out, evidence);
  out.push_back(kCmwIndicatorEvidence);  // unsigned integer below 24: its own head
  return out;
}

Result<Bytes> DecodeEvidenceExtension(ByteSpan extension_value) {
  // Copy, then check: the certificate's buffer belongs to OpenSSL and the peer chose its bytes.
  const Bytes copy(extension_value.begin(), extension_value.end());
  Reader reader(copy);
  if (copy.empty() || (copy[0] != kArrayOfTwo && copy[0] != kArrayOfThree)) {
    return Malformed("is not a CBOR CMW record (an array of 2 or 3 items)");
  }
  const bool has_indicator = copy[0] == kArrayOfThree;
  CHIRON_RETURN_IF_ERROR(reader.Take(1, "record").status());
  const std::string_view expected = kEvidenceMediaType;
  CHIRON_ASSIGN_OR_RETURN(uint64_t type_size, reader.Head(kMajorText, "the CMW type", 255));
  CHIRON_ASSIGN_OR_RETURN(ByteSpan type, reader.Take(type_size, "the CMW type"));
  if (ToString(type) != expected) {
    return Malformed("holds a CMW whose type is not Chiron evidence");
  }
  CHIRON_ASSIGN_OR_RETURN(uint64_t value_size,
                          reader.Head(kMajorBytes, "the CMW value", kMaxEvidenceExtensionSize));
  if (value_size == 0) return Malformed("holds an empty CMW value");
  CHIRON_ASSIGN_OR_RETURN(ByteSpan value, reader.Take(value_size, "the CMW value"));
  if (has_indicator) {
    CHIRON_ASSIGN_OR_RETURN(uint64_t indicator, reader.Head(0, "the CMW indicator", 31));
    if (indicator != kCmwIndicatorEvidence) {
      return Malformed("holds a CMW whose indicator is not Evidence");
    }
  }
  if (reader.remaining() != 0) return Malformed("has bytes after the CMW record");
  return Bytes(value.begin(), value.end());
}

Result<Bytes> CertificateEvidence(const crypto::Certificate& certificate) {
  auto extension = certificate.FindExtension(kEvidenceExtensionOid);
  if (!extension.ok()) {
    if (extension.status().code() != StatusCode::kNotFound) {
      return UnauthenticatedError("certificate evidence extension: " +
                                  extension.status().message());
    }
    if (certificate.FindExtension(kRetiredEvidenceExtensionOid).ok()) {
      return UnauthenticatedError(
          std::string("the certificate carries its evidence under the retired extension OID ") +
          kRetiredEvidenceExtensionOid +
          ": the runtime that made it runs an older Chiron release, whose certificates other "
          "X.509 libraries cannot read. Upgrade that chirond to this release (both ends of a "
          "connection must use the evidence extension " +
          kEvidenceExtensionOid + "), or use the chiron client of its release");
    }
    return UnauthenticatedError(
        "the server's certificate has no Chiron evidence extension: it is not an attested "
        "Chiron runtime (check --server)");
  }
  auto evidence = DecodeEvidenceExtension(extension->value);
  if (!evidence.ok()) {
    return UnauthenticatedError("certificate " + evidence.status().message());
  }
  return evidence;
}

}  // namespace chiron::ratls
