// AMD SEV-SNP attestation report (ATTESTATION_REPORT, versions 2 and 3): a strict parser.
//
// Pure bytes: no cryptography, no trust decisions. The layout is table 22 of AMD's "SEV Secure
// Nested Paging Firmware ABI Specification" (revision 1.55+). The report is exactly 0x4A0 bytes;
// the first 0x2A0 are signed by the VCEK (or VLEK), the rest is the signature:
//   0x000 version u32 | guest_svn u32 | policy u64 | family_id 16 | image_id 16 | vmpl u32 |
//   0x034 signature_algo u32 (1 = ECDSA P-384 with SHA-384) | current_tcb u64 |
//   0x040 platform_info u64 | flags u32 (bit 0 author_key_en, bit 1 mask_chip_key,
//         bits 2-4 signing_key: 0 VCEK, 1 VLEK, 7 none) | reserved u32 |
//   0x050 report_data 64 | measurement 48 | host_data 32 | id_key_digest 48 |
//   0x110 author_key_digest 48 | report_id 32 | report_id_ma 32 | reported_tcb u64 |
//   0x188 reserved 24 (version 3: cpuid fam/mod/step in the first 3) | chip_id 64 |
//   0x1E0 committed_tcb u64 | current build/minor/major/reserved 4 | committed b/m/m/r 4 |
//   0x1F0 launch_tcb u64 | reserved 168 |
//   0x2A0 signature: r 72 | s 72 (little-endian, P-384 uses the low 48 bytes) | reserved 368
// A TCB_VERSION u64 is, by byte: 0 boot loader SVN, 1 TEE SVN, 2-5 reserved, 6 SNP SVN,
// 7 microcode SVN (Milan / Genoa layout).
//
// Bytes outside the signed region carry no meaning beyond r and s; the parser requires every one
// of them (the high 24 bytes of r and s and the 368 reserved bytes) to be zero, so no byte of an
// accepted report is free to change.
//
// Thread safety: values; free functions.
#pragma once

#include <array>
#include <cstdint>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest::snp {

inline constexpr size_t kSnpReportSize = 0x4A0;
inline constexpr size_t kSnpSignedSize = 0x2A0;
inline constexpr uint32_t kSnpMinReportVersion = 2;
inline constexpr uint32_t kSnpMaxReportVersion = 3;
inline constexpr uint32_t kSnpSignatureAlgoEcdsaP384Sha384 = 1;
inline constexpr size_t kSnpSignatureComponentSize = 72;  // r and s fields, little-endian
inline constexpr size_t kP384ScalarSize = 48;

// Guest policy bits.
inline constexpr uint64_t kSnpPolicySmt = 1ull << 16;
inline constexpr uint64_t kSnpPolicyReservedOne = 1ull << 17;  // must be 1
inline constexpr uint64_t kSnpPolicyMigrateMa = 1ull << 18;
inline constexpr uint64_t kSnpPolicyDebug = 1ull << 19;
inline constexpr uint64_t kSnpPolicySingleSocket = 1ull << 20;

struct SnpTcbVersion {
  uint8_t bootloader = 0;
  uint8_t tee = 0;
  uint8_t snp = 0;
  uint8_t microcode = 0;
  uint64_t raw = 0;

  static SnpTcbVersion FromRaw(uint64_t raw);
  friend bool operator==(const SnpTcbVersion& a, const SnpTcbVersion& b) { return a.raw == b.raw; }
};

struct SnpReport {
  uint32_t version = 0;
  uint32_t guest_svn = 0;
  uint64_t policy = 0;
  std::array<uint8_t, 16> family_id{};
  std::array<uint8_t, 16> image_id{};
  uint32_t vmpl = 0;
  uint32_t signature_algo = 0;
  SnpTcbVersion current_tcb;
  uint64_t platform_info = 0;
  uint32_t flags = 0;
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  std::array<uint8_t, 48> id_key_digest{};
  std::array<uint8_t, 48> author_key_digest{};
  std::array<uint8_t, 32> report_id{};
  std::array<uint8_t, 32> report_id_ma{};
  SnpTcbVersion reported_tcb;
  std::array<uint8_t, 64> chip_id{};
  SnpTcbVersion committed_tcb;
  uint8_t current_build = 0, current_minor = 0, current_major = 0;
  uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;
  SnpTcbVersion launch_tcb;
  // Big-endian r and s (converted from the report's little-endian fields).
  std::array<uint8_t, kP384ScalarSize> signature_r{};
  std::array<uint8_t, kP384ScalarSize> signature_s{};
  // The first 0x2A0 bytes exactly as received: what the VCEK signed.
  Bytes signed_bytes;

  bool debug_allowed() const { return (policy & kSnpPolicyDebug) != 0; }
  // flags bits 2-4: 0 = VCEK, 1 = VLEK, 7 = no key.
  uint32_t signing_key() const { return (flags >> 2) & 7; }
  bool mask_chip_key() const { return (flags & 2) != 0; }
};

// Strict parse; errors are InvalidArgument beginning "sev-snp report: ".
Result<SnpReport> ParseSnpReport(ByteSpan report);

}  // namespace chiron::attest::snp
