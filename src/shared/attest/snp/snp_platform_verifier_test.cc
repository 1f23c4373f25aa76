#include "shared/attest/snp/snp_platform_verifier.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::snp {
namespace {

using testing::ReadTestFile;
using testing::Utc;

Bytes SnpEvidence(const Bytes& report) {
  Result<Bytes> body = SerializeTsmBody({std::string(kTsmProviderSevSnp), report, {}});
  EXPECT_TRUE(body.ok()) << body.status().ToString();
  Result<Bytes> evidence = SerializeEvidence({PlatformId::kSevSnp, *body});
  EXPECT_TRUE(evidence.ok()) << evidence.status().ToString();
  return *evidence;
}

Result<Verifier> MakeVerifier(const Policy& policy) {
  SnpPlatformVerifierOptions options;
  options.collateral.vcek_der = ReadTestFile("sev-snp/vcek.testcer");
  options.collateral.ask_ark_pem = ToString(ReadTestFile("sev-snp/milan.testcer"));
  options.clock = [] { return Utc(2024, 1, 1); };
  std::vector<std::unique_ptr<PlatformVerifier>> verifiers;
  verifiers.push_back(NewSnpPlatformVerifier(std::move(options)));
  return Verifier::Create(policy, std::move(verifiers));
}

TEST(SnpPlatformVerifierTest, RealReportThroughTheGenericVerifier) {
  Bytes report = ReadTestFile("sev-snp/attestation.bin");
  Result<SnpReport> parsed = ParseSnpReport(report);
  ASSERT_TRUE(parsed.ok());
  Bytes measurement(parsed->measurement.begin(), parsed->measurement.end());
  Bytes report_data(parsed->report_data.begin(), parsed->report_data.end());

  Policy policy;
  policy.allowed_platforms = {PlatformId::kSevSnp};
  policy.allowed_measurements["sev-snp"] = {measurement};
  policy.sev_snp.measurement = {measurement};
  policy.sev_snp.min_snp_svn = 5;

  // The guest policy allows debugging: a no-debug policy (the default) rejects it...
  Result<Verifier> no_debug = MakeVerifier(policy);
  ASSERT_TRUE(no_debug.ok()) << no_debug.status().ToString();
  Result<Claims> claims = no_debug->Verify(SnpEvidence(report), report_data);
  ASSERT_FALSE(claims.ok());
  EXPECT_EQ(claims.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(claims.status().message().find("debug"), std::string::npos)
      << claims.status().message();

  // ...and a policy that allows debug accepts it.
  policy.allow_debug = true;
  claims = MakeVerifier(policy)->Verify(SnpEvidence(report), report_data);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->platform, "sev-snp");
  EXPECT_EQ(claims->measurement, measurement);
  EXPECT_TRUE(claims->debug);
  EXPECT_EQ(claims->details.at("product"), "Milan");

  Policy newer = policy;
  newer.sev_snp.min_snp_svn = 6;
  EXPECT_NE(MakeVerifier(newer)->Verify(SnpEvidence(report), report_data).status().message()
                .find("minimum TCB"),
            std::string::npos);
  Bytes tampered = report;
  tampered[0x90] ^= 1;  // measurement
  EXPECT_NE(MakeVerifier(policy)->Verify(SnpEvidence(tampered), report_data).status().message()
                .find("sev-snp: report signature"),
            std::string::npos);
}

}  // namespace
}  // namespace chiron::attest::snp
