// Verification of AMD SEV-SNP attestation reports, offline, against AMD's root key (ARK) pinned
// here by the SHA-256 of its SubjectPublicKeyInfo.
//
// VerifySnpReport runs, in order, and stops at the first failure (fail closed); each error
// begins "sev-snp: <check>: ":
//   parse            strict layout of snp_report.h (size, version, algorithm, zero padding)
//   signing key      the report must be signed by a VCEK (VLEK reports are not accepted)
//   certificate chain  VCEK -> ASK -> ARK, the ARK's key pinned and its self-signature checked
//                    (RSASSA-PSS / SHA-384 throughout AMD's chain), validity at
//                    verification_time, CA constraints, AMD's CRL when given
//   report signature ECDSA P-384 / SHA-384 by the VCEK over bytes 0x000..0x29F
//   VCEK TCB         the VCEK's extensions blSPL (1.3.6.1.4.1.3704.1.3.1), teeSPL (.3.2),
//                    snpSPL (.3.3), ucodeSPL (.3.8) equal the report's REPORTED_TCB, and hwID
//                    (.1.4) equals CHIP_ID (skipped, with a warning, if the guest masked it)
// Policy (measurement, debug, minimum TCB, host data, report data) is applied separately by
// CheckSnpExpectations.
//
// Thread safety: free functions; safe from any thread.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "shared/attest/snp/snp_report.h"
#include "shared/base/bytes.h"
#include "shared/base/file_system.h"
#include "shared/base/status.h"

namespace chiron::attest::snp {

// SHA-256 of the DER SubjectPublicKeyInfo of AMD's root keys that Chiron trusts.
// ARK-Milan (RSA-4096, "CN=ARK-Milan", 2020-10-22 to 2045-10-22).
extern const std::array<uint8_t, 32> kArkMilanSpkiSha256;

struct SnpCollateral {
  Bytes vcek_der;                  // the chip's VCEK certificate (DER, as AMD's KDS serves it)
  std::string ask_ark_pem;         // "cert_chain": ASK then ARK, PEM
  std::optional<Bytes> crl_der;    // AMD's CRL for the ASK / VCEKs (optional)
};

struct SnpVerifyOptions {
  // Required; judged for certificate validity and CRLs. Unset: InvalidArgument.
  std::optional<std::chrono::system_clock::time_point> verification_time;
};

struct SnpVerification {
  SnpReport report;
  std::string product;  // from the ASK/VCEK issuer, e.g. "Milan"
  std::vector<std::string> warnings;
};

Result<SnpVerification> VerifySnpReport(ByteSpan report, const SnpCollateral& collateral,
                                        const SnpVerifyOptions& options);

struct SnpExpectations {
  std::optional<Bytes> report_data;  // 64 bytes, compared in constant time
  bool allow_debug = false;          // the guest policy's DEBUG bit
  std::vector<Bytes> measurement;    // accepted launch measurements (48 bytes each)
  std::optional<Bytes> host_data;    // 32 bytes, if set must match
  std::optional<uint8_t> min_bootloader_svn, min_tee_svn, min_snp_svn, min_microcode_svn;
  std::optional<uint32_t> max_vmpl;  // e.g. 0: only reports requested from VMPL0
};

// PermissionDenied "policy: ..." (Unauthenticated for a report data mismatch).
Status CheckSnpExpectations(const SnpVerification& verification,
                            const SnpExpectations& expectations);

// Reads a directory holding vcek.der / vcek.testcer (DER) and cert_chain.pem / ask_ark.pem /
// milan.testcer (PEM, ASK then ARK), and optional crl.der.
Result<SnpCollateral> LoadSnpCollateralDir(const std::string& dir,
                                           FileSystem* fs = FileSystem::Default());

// For `chiron evidence verify`: a raw report file plus a collateral directory.
Result<SnpVerification> VerifySnpReportFile(const std::string& report_path,
                                            const std::string& collateral_dir,
                                            const SnpVerifyOptions& options,
                                            FileSystem* fs = FileSystem::Default());

std::vector<std::pair<std::string, std::string>> DescribeSnpVerification(
    const SnpVerification& verification);

}  // namespace chiron::attest::snp
