#include "shared/attest/snp/snp_report.h"

#include <algorithm>
#include <string>

namespace chiron::attest::snp {
namespace {

Status ReportError(std::string message) {
  return InvalidArgumentError("sev-snp report: " + message);
}

uint32_t LoadU32(const Bytes& b, size_t offset) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | b[offset + i];
  return v;
}
uint64_t LoadU64(const Bytes& b, size_t offset) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | b[offset + i];
  return v;
}
template <size_t N>
void LoadArray(const Bytes& b, size_t offset, std::array<uint8_t, N>& out) {
  std::copy(b.begin() + offset, b.begin() + offset + N, out.begin());
}
bool AllZero(const Bytes& b, size_t begin, size_t end) {
  return std::all_of(b.begin() + begin, b.begin() + end, [](uint8_t x) { return x == 0; });
}

}  // namespace

SnpTcbVersion SnpTcbVersion::FromRaw(uint64_t raw) {
  SnpTcbVersion tcb;
  tcb.raw = raw;
  tcb.bootloader = static_cast<uint8_t>(raw);
  tcb.tee = static_cast<uint8_t>(raw >> 8);
  tcb.snp = static_cast<uint8_t>(raw >> 48);
  tcb.microcode = static_cast<uint8_t>(raw >> 56);
  return tcb;
}

Result<SnpReport> ParseSnpReport(ByteSpan input) {
  if (input.size() != kSnpReportSize) {
    return ReportError("report is " + std::to_string(input.size()) + " bytes; a report is exactly " +
                       std::to_string(kSnpReportSize) + " bytes");
  }
  const Bytes b(input.begin(), input.end());  // copy, then check
  SnpReport r;
  r.version = LoadU32(b, 0x000);
  if (r.version < kSnpMinReportVersion || r.version > kSnpMaxReportVersion) {
    return ReportError("unsupported report version " + std::to_string(r.version) +
                       "; this verifier reads versions 2 and 3");
  }
  r.guest_svn = LoadU32(b, 0x004);
  r.policy = LoadU64(b, 0x008);
  LoadArray(b, 0x010, r.family_id);
  LoadArray(b, 0x020, r.image_id);
  r.vmpl = LoadU32(b, 0x030);
  r.signature_algo = LoadU32(b, 0x034);
  if (r.signature_algo != kSnpSignatureAlgoEcdsaP384Sha384) {
    return ReportError("unsupported signature algorithm " + std::to_string(r.signature_algo) +
                       " (expected 1, ECDSA P-384 with SHA-384)");
  }
  r.current_tcb = SnpTcbVersion::FromRaw(LoadU64(b, 0x038));
  r.platform_info = LoadU64(b, 0x040);
  r.flags = LoadU32(b, 0x048);
  LoadArray(b, 0x050, r.report_data);
  LoadArray(b, 0x090, r.measurement);
  LoadArray(b, 0x0C0, r.host_data);
  LoadArray(b, 0x0E0, r.id_key_digest);
  LoadArray(b, 0x110, r.author_key_digest);
  LoadArray(b, 0x140, r.report_id);
  LoadArray(b, 0x160, r.report_id_ma);
  r.reported_tcb = SnpTcbVersion::FromRaw(LoadU64(b, 0x180));
  LoadArray(b, 0x1A0, r.chip_id);
  r.committed_tcb = SnpTcbVersion::FromRaw(LoadU64(b, 0x1E0));
  r.current_build = b[0x1E8];
  r.current_minor = b[0x1E9];
  r.current_major = b[0x1EA];
  r.committed_build = b[0x1EC];
  r.committed_minor = b[0x1ED];
  r.committed_major = b[0x1EE];
  r.launch_tcb = SnpTcbVersion::FromRaw(LoadU64(b, 0x1F0));

  // Signature: r and s are 72-byte little-endian fields of which P-384 uses 48 bytes.
  constexpr size_t kR = kSnpSignedSize;
  constexpr size_t kS = kSnpSignedSize + kSnpSignatureComponentSize;
  constexpr size_t kReservedBegin = kS + kSnpSignatureComponentSize;
  if (!AllZero(b, kR + kP384ScalarSize, kS) || !AllZero(b, kS + kP384ScalarSize, kReservedBegin)) {
    return ReportError("signature r or s has non-zero bytes beyond the 48 a P-384 scalar uses");
  }
  if (!AllZero(b, kReservedBegin, kSnpReportSize)) {
    return ReportError("reserved bytes after the signature (0x330..0x4A0) are not zero");
  }
  for (size_t i = 0; i < kP384ScalarSize; ++i) {
    r.signature_r[i] = b[kR + kP384ScalarSize - 1 - i];
    r.signature_s[i] = b[kS + kP384ScalarSize - 1 - i];
  }
  r.signed_bytes.assign(b.begin(), b.begin() + kSnpSignedSize);
  return r;
}

}  // namespace chiron::attest::snp
