// The SEV-SNP PlatformVerifier: plugs VerifySnpReport into the generic attest::Verifier
// (verifier.h) for PlatformId::kSevSnp. Library chiron_snp_platform (apart from chiron_snp so
// chiron_attest need not depend on it).
//
// Payload: a configfs-tsm body from provider "sev_guest" whose outblob is the 1184-byte report.
// The VCEK and ASK/ARK come from the options (fetched from AMD's KDS ahead of time) or, where
// the options leave them empty, from the evidence's auxblob: the certificate table the host
// provisions for extended reports (snp_cert_table.h). Either way the chain must end in the
// pinned ARK, so certificates from the untrusted host cannot make a forged report verify. Checks: VerifySnpReport at
// clock(), then policy.sev_snp (measurement, minimum reported TCB). The Verifier then applies
// report data, allow_debug (guest policy bit 19), min_svn and allowed_measurements.
//
// Claims: measurement = MEASUREMENT; report_data; debug = guest policy DEBUG; svn = GUEST_SVN;
// details from DescribeSnpVerification.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "shared/attest/snp/snp_verify.h"
#include "shared/attest/verifier.h"

namespace chiron::attest::snp {

struct SnpPlatformVerifierOptions {
  SnpCollateral collateral;  // may be empty: then the evidence's certificate table must have it
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

std::unique_ptr<PlatformVerifier> NewSnpPlatformVerifier(SnpPlatformVerifierOptions options);

}  // namespace chiron::attest::snp
