#include "shared/attest/tdx/tdx_platform_verifier.h"

namespace chiron::attest::tdx {
namespace {

class TdxPlatformVerifier : public PlatformVerifier {
 public:
  explicit TdxPlatformVerifier(TdxPlatformVerifierOptions options) : options_(std::move(options)) {}

  PlatformId platform() const override { return PlatformId::kTdx; }

  Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const override {
    CHIRON_ASSIGN_OR_RETURN(TsmEvidenceBody body, ParseTsmBody(PlatformId::kTdx, payload));
    TdxVerifyOptions verify_options;
    verify_options.verification_time = options_.clock();
    verify_options.reject_trailing_bytes =
        options_.reject_trailing_bytes || policy.tdx.reject_trailing_bytes;
    CHIRON_ASSIGN_OR_RETURN(TdxVerification v,
                            VerifyTdxQuote(body.outblob, options_.collateral, verify_options));
    TdxExpectations expectations;
    expectations.allow_debug = true;  // the generic Verifier applies allow_debug
    expectations.mrtd = policy.tdx.mrtd;
    expectations.rtmr = policy.tdx.rtmr;
    expectations.accepted_tcb_statuses = policy.tdx.accepted_tcb_statuses;
    expectations.min_tcb_evaluation_data_number = policy.tdx.min_tcb_evaluation_data_number;
    expectations.accept_unchecked_tcb_status = policy.tdx.accept_unchecked_tcb_status;
    CHIRON_RETURN_IF_ERROR(CheckTdxExpectations(v, expectations));

    Claims claims;
    claims.platform = std::string(PlatformName(PlatformId::kTdx));
    const TdReportBody& b = v.quote.body;
    claims.measurement.assign(b.mr_td.begin(), b.mr_td.end());
    claims.report_data.assign(b.report_data.begin(), b.report_data.end());
    claims.debug = b.debug();
    claims.svn = b.tee_tcb_svn[0];
    for (auto& [name, value] : DescribeTdxVerification(v)) claims.details[name] = value;
    claims.warnings = v.warnings;
    return claims;
  }

 private:
  TdxPlatformVerifierOptions options_;
};

}  // namespace

std::unique_ptr<PlatformVerifier> NewTdxPlatformVerifier(TdxPlatformVerifierOptions options) {
  return std::make_unique<TdxPlatformVerifier>(std::move(options));
}

}  // namespace chiron::attest::tdx
