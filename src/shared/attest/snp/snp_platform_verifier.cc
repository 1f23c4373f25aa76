#include "shared/attest/snp/snp_platform_verifier.h"

#include "shared/attest/snp/snp_cert_table.h"
#include "shared/crypto/x509.h"

namespace chiron::attest::snp {
namespace {

// The options' collateral, completed from the evidence's certificate table (auxblob) where the
// options lack the VCEK or the ASK/ARK. Safe because the chain must still end in the pinned ARK.
Result<SnpCollateral> CompleteCollateral(SnpCollateral collateral, ByteSpan auxblob) {
  const bool need_vcek = collateral.vcek_der.empty();
  const bool need_chain = collateral.ask_ark_pem.empty();
  if ((need_vcek || need_chain) && !auxblob.empty()) {
    Result<SnpCertTable> table = ParseSnpCertTable(auxblob);
    if (!table.ok()) return table.status().WithContext("sev-snp: the evidence's auxblob");
    if (need_vcek && table->vcek) collateral.vcek_der = *table->vcek;
    if (need_chain && table->ask && table->ark) {
      std::string pem;
      for (const Bytes* der : {&*table->ask, &*table->ark}) {
        Result<crypto::Certificate> certificate = crypto::Certificate::FromDer(*der);
        if (!certificate.ok()) {
          return InvalidArgumentError("sev-snp: the evidence's certificate table holds an ASK or "
                                      "ARK that is not a DER certificate: " +
                                      certificate.status().message());
        }
        pem += certificate->ToPem();
      }
      collateral.ask_ark_pem = std::move(pem);
    }
  }
  if (collateral.vcek_der.empty() || collateral.ask_ark_pem.empty()) {
    return FailedPreconditionError(
        std::string("sev-snp: no ") + (collateral.vcek_der.empty() ? "VCEK" : "ASK/ARK chain") +
        " to check the report with: the evidence carries no certificate table with one (the "
        "host did not provision its certificates for extended reports) and none was given as "
        "collateral; fetch them from AMD's KDS for this chip and pass --collateral DIR");
  }
  return collateral;
}

class SnpPlatformVerifier : public PlatformVerifier {
 public:
  explicit SnpPlatformVerifier(SnpPlatformVerifierOptions options) : options_(std::move(options)) {}

  PlatformId platform() const override { return PlatformId::kSevSnp; }

  Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const override {
    CHIRON_ASSIGN_OR_RETURN(TsmEvidenceBody body, ParseTsmBody(PlatformId::kSevSnp, payload));
    SnpVerifyOptions verify_options;
    verify_options.verification_time = options_.clock();
    CHIRON_ASSIGN_OR_RETURN(SnpCollateral collateral,
                            CompleteCollateral(options_.collateral, body.auxblob));
    CHIRON_ASSIGN_OR_RETURN(SnpVerification v,
                            VerifySnpReport(body.outblob, collateral, verify_options));
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
