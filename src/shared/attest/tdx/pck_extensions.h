// The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): the platform's
// FMSPC, PCE id and TCB (16 CPU SVN components and PCESVN) as Intel certified them. These are the
// inputs of the TCB-level matching in tdx_collateral.h. Parsed with a small bounds-checked DER
// reader; the extension's bytes are authenticated by the PCK chain before they are read.
#pragma once

#include <array>
#include <cstdint>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest::tdx {

inline constexpr char kSgxExtensionOid[] = "1.2.840.113741.1.13.1";

struct PckExtensions {
  std::array<uint8_t, 16> ppid{};
  std::array<uint8_t, 16> cpu_svn{};
  std::array<uint8_t, 16> tcb_components{};  // sgxtcbcomp01svn..16
  uint16_t pce_svn = 0;
  std::array<uint8_t, 2> pce_id{};
  std::array<uint8_t, 6> fmspc{};
};

// `extension_value` is the extnValue contents (a DER SEQUENCE). InvalidArgument naming the
// missing or malformed entry.
Result<PckExtensions> ParsePckExtensions(ByteSpan extension_value);

// Minimal DER: one TLV at the start of `input`. Definite lengths up to 4 bytes; tags of one byte.
struct DerElement {
  uint8_t tag = 0;
  ByteSpan content;
  size_t total_size = 0;  // tag + length + content
};
Result<DerElement> ReadDerElement(ByteSpan input);
// A non-negative DER INTEGER of at most 4 significant bytes.
Result<uint32_t> ReadDerSmallUnsigned(ByteSpan integer_content);

}  // namespace chiron::attest::tdx
