#include "shared/attest/tdx/pck_extensions.h"

#include <algorithm>
#include <string>

namespace chiron::attest::tdx {
namespace {

constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagOctetString = 0x04;
constexpr uint8_t kTagOid = 0x06;
constexpr uint8_t kTagEnumerated = 0x0a;
constexpr uint8_t kTagSequence = 0x30;

// DER of OID 1.2.840.113741.1.13.1 (without tag and length).
constexpr uint8_t kSgxOidPrefix[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

Status ExtError(std::string message) {
  return InvalidArgumentError("PCK certificate SGX extension: " + message);
}

// Returns the sub-identifiers after the SGX prefix (e.g. {2, 17} for ...13.1.2.17), or empty if
// the OID is not under the prefix. Sub-identifiers here are all < 128 (one byte each).
std::vector<uint8_t> SgxOidSuffix(ByteSpan oid) {
  if (oid.size() <= sizeof(kSgxOidPrefix) ||
      !std::equal(std::begin(kSgxOidPrefix), std::end(kSgxOidPrefix), oid.begin())) {
    return {};
  }
  std::vector<uint8_t> suffix(oid.begin() + sizeof(kSgxOidPrefix), oid.end());
  for (uint8_t b : suffix) {
    if (b & 0x80) return {};
  }
  return suffix;
}

// Iterates the elements of a SEQUENCE's content: each must be SEQUENCE { OID, value }.
struct Entry {
  std::vector<uint8_t> suffix;
  DerElement value;
};
Result<std::vector<Entry>> ReadEntries(ByteSpan content) {
  std::vector<Entry> entries;
  while (!content.empty()) {
    CHIRON_ASSIGN_OR_RETURN(DerElement pair, ReadDerElement(content));
    if (pair.tag != kTagSequence) return ExtError("entry is not a SEQUENCE");
    CHIRON_ASSIGN_OR_RETURN(DerElement oid, ReadDerElement(pair.content));
    if (oid.tag != kTagOid) return ExtError("entry does not start with an OID");
    CHIRON_ASSIGN_OR_RETURN(DerElement value, ReadDerElement(pair.content.subspan(oid.total_size)));
    if (oid.total_size + value.total_size != pair.content.size()) {
      return ExtError("entry has trailing bytes");
    }
    entries.push_back({SgxOidSuffix(oid.content), value});
    content = content.subspan(pair.total_size);
  }
  return entries;
}

template <size_t N>
Status CopyOctets(const DerElement& e, std::array<uint8_t, N>& out, std::string_view what) {
  if (e.tag != kTagOctetString || e.content.size() != N) {
    return ExtError(std::string(what) + " is not an OCTET STRING of " + std::to_string(N) +
                    " bytes");
  }
  std::copy(e.content.begin(), e.content.end(), out.begin());
  return Status::Ok();
}

}  // namespace

Result<DerElement> ReadDerElement(ByteSpan input) {
  if (input.size() < 2) return InvalidArgumentError("DER: truncated element header");
  DerElement e;
  e.tag = input[0];
  if ((e.tag & 0x1f) == 0x1f) return InvalidArgumentError("DER: multi-byte tags are not supported");
  size_t length = input[1];
  size_t header = 2;
  if (length & 0x80) {
    size_t count = length & 0x7f;
    if (count == 0 || count > 4) return InvalidArgumentError("DER: unsupported length form");
    if (input.size() < 2 + count) return InvalidArgumentError("DER: truncated length");
    length = 0;
    for (size_t i = 0; i < count; ++i) length = length << 8 | input[2 + i];
    if (length < 0x80) return InvalidArgumentError("DER: non-minimal length");
    header += count;
  }
  if (length > input.size() - header) return InvalidArgumentError("DER: element overruns input");
  e.content = input.subspan(header, length);
  e.total_size = header + length;
  return e;
}

Result<uint32_t> ReadDerSmallUnsigned(ByteSpan c) {
  if (c.empty()) return InvalidArgumentError("DER: empty INTEGER");
  if (c[0] & 0x80) return InvalidArgumentError("DER: negative INTEGER");
  if (c.size() > 1 && c[0] == 0 && !(c[1] & 0x80)) {
    return InvalidArgumentError("DER: non-minimal INTEGER");
  }
  if (c.size() > 5 || (c.size() == 5 && c[0] != 0)) {
    return InvalidArgumentError("DER: INTEGER too large");
  }
  uint32_t v = 0;
  for (uint8_t b : c) v = v << 8 | b;
  return v;
}

Result<PckExtensions> ParsePckExtensions(ByteSpan value) {
  CHIRON_ASSIGN_OR_RETURN(DerElement top, ReadDerElement(value));
  if (top.tag != kTagSequence || top.total_size != value.size()) {
    return ExtError("not a single SEQUENCE");
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<Entry> entries, ReadEntries(top.content));
  PckExtensions ext;
  bool have_ppid = false, have_tcb = false, have_pce_id = false, have_fmspc = false;
  uint32_t top_seen = 0;
  for (const Entry& entry : entries) {
    if (entry.suffix.size() != 1 || entry.suffix[0] > 31) continue;
    if (top_seen & (1u << entry.suffix[0])) return ExtError("an entry is listed twice");
    top_seen |= 1u << entry.suffix[0];
    switch (entry.suffix[0]) {
      case 1:
        CHIRON_RETURN_IF_ERROR(CopyOctets(entry.value, ext.ppid, "PPID"));
        have_ppid = true;
        break;
      case 2: {
        if (entry.value.tag != kTagSequence) return ExtError("TCB is not a SEQUENCE");
        CHIRON_ASSIGN_OR_RETURN(std::vector<Entry> tcb, ReadEntries(entry.value.content));
        uint32_t seen = 0;  // bit i: component i+1 (1..18)
        for (const Entry& item : tcb) {
          if (item.suffix.size() != 2 || item.suffix[0] != 2) continue;
          uint8_t index = item.suffix[1];
          if (index >= 1 && index <= 17) {
            if (item.value.tag != kTagInteger) return ExtError("TCB component is not an INTEGER");
            CHIRON_ASSIGN_OR_RETURN(uint32_t svn, ReadDerSmallUnsigned(item.value.content));
            if (index <= 16) {
              if (svn > 255) return ExtError("TCB component SVN exceeds 255");
              ext.tcb_components[index - 1] = static_cast<uint8_t>(svn);
            } else {
              if (svn > 65535) return ExtError("PCESVN exceeds 65535");
              ext.pce_svn = static_cast<uint16_t>(svn);
            }
          } else if (index == 18) {
            CHIRON_RETURN_IF_ERROR(CopyOctets(item.value, ext.cpu_svn, "CPUSVN"));
          } else {
            continue;
          }
          if (seen & (1u << (index - 1))) return ExtError("TCB component listed twice");
          seen |= 1u << (index - 1);
        }
        if (seen != (1u << 18) - 1) return ExtError("TCB lacks some of its 18 components");
        have_tcb = true;
        break;
      }
      case 3:
        CHIRON_RETURN_IF_ERROR(CopyOctets(entry.value, ext.pce_id, "PCE-ID"));
        have_pce_id = true;
        break;
      case 4:
        CHIRON_RETURN_IF_ERROR(CopyOctets(entry.value, ext.fmspc, "FMSPC"));
        have_fmspc = true;
        break;
      case 5:
        if (entry.value.tag != kTagEnumerated) return ExtError("SGX type is not ENUMERATED");
        break;
      default:
        break;
    }
  }
  if (!have_ppid || !have_tcb || !have_pce_id || !have_fmspc) {
    return ExtError("missing PPID, TCB, PCE-ID or FMSPC");
  }
  return ext;
}

}  // namespace chiron::attest::tdx
