// libFuzzer target: the SEV-SNP attestation report parser on arbitrary bytes.
// Seeds: fuzz/corpus/fuzz_snp_report (synthetic reports).
#include <cstddef>
#include <cstdint>

#include "shared/attest/snp/snp_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chiron::Result<chiron::attest::snp::SnpReport> report =
      chiron::attest::snp::ParseSnpReport(chiron::ByteSpan(data, size));
  if (report.ok() && report->signed_bytes.size() != chiron::attest::snp::kSnpSignedSize) {
    __builtin_trap();
  }
  return 0;
}
