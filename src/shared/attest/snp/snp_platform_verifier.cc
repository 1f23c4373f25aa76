#include "shared/attest/snp/snp_platform_verifier.h"

namespace chiron::attest::snp {
namespace {

class SnpPlatformVerifier : public PlatformVerifier {
 public:
  explicit SnpPlatformVerifier(SnpPlatformVerifierOptions options) : options_(std::move(options)) {}

  PlatformId platform() const override { return PlatformId::kSevSnp; }

  Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const override {
    CHIRON_ASSIGN_OR_RETURN(TsmEvidenceBody body, ParseTsmBody(PlatformId::kSevSnp, payload));
    SnpVerifyOptions verify_options;
    verify_options.verification_time = options_.clock();
    CHIRON_ASSIGN_OR_RETURN(SnpVerification v,
                            VerifySnpReport(body.outblob, options_.collateral, verify_options));
    SnpExpectations expectations;
    expectations.allow_debug = true;  // the generic Verifier applies allow_debug
    expectations.measurement = policy.sev_snp.measurement;
    expectations.min_bootloader_svn = policy.sev_snp.min_bootloader_svn;
    expectations.min_tee_svn = policy.sev_snp.min_tee_svn;
    expectations.min_snp_svn = policy.sev_snp.min_snp_svn;
    expectations.min_microcode_svn = policy.sev_snp.min_microcode_svn;
    CHIRON_RETURN_IF_ERROR(CheckSnpExpectations(v, expectations));

    Claims claims;
    claims.platform = std::string(PlatformName(PlatformId::kSevSnp));
    const SnpReport& r = v.report;
    claims.measurement.assign(r.measurement.begin(), r.measurement.end());
    claims.report_data.assign(r.report_data.begin(), r.report_data.end());
    claims.debug = r.debug_allowed();
    claims.svn = r.guest_svn;
    for (auto& [name, value] : DescribeSnpVerification(v)) claims.details[name] = value;
    claims.warnings = v.warnings;
    return claims;
  }

 private:
  SnpPlatformVerifierOptions options_;
};

}  // namespace

std::unique_ptr<PlatformVerifier> NewSnpPlatformVerifier(SnpPlatformVerifierOptions options) {
  return std::make_unique<SnpPlatformVerifier>(std::move(options));
}

}  // namespace chiron::attest::snp
