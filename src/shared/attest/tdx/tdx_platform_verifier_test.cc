#include "shared/attest/tdx/tdx_platform_verifier.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::tdx {
namespace {

using testing::ReadTestFile;
using testing::TestDataPath;
using testing::Utc;

Bytes TdxEvidence(const Bytes& quote) {
  Result<Bytes> body = SerializeTsmBody({std::string(kTsmProviderTdx), quote, {}});
  EXPECT_TRUE(body.ok()) << body.status().ToString();
  Result<Bytes> evidence = SerializeEvidence({PlatformId::kTdx, *body});
  EXPECT_TRUE(evidence.ok()) << evidence.status().ToString();
  return *evidence;
}

Result<Verifier> MakeVerifier(const Policy& policy) {
  TdxPlatformVerifierOptions options;
  options.collateral = *LoadTdxCollateralDir(TestDataPath("tdx"));
  options.clock = [] { return Utc(2023, 7, 1); };
  std::vector<std::unique_ptr<PlatformVerifier>> verifiers;
  verifiers.push_back(NewTdxPlatformVerifier(std::move(options)));
  return Verifier::Create(policy, std::move(verifiers));
}

TEST(TdxPlatformVerifierTest, RealQuoteThroughTheGenericVerifier) {
  Bytes quote = ReadTestFile("tdx/tdx_prod_quote_SPR_E4.dat");
  Result<TdxQuote> parsed = ParseTdxQuote(quote);
  ASSERT_TRUE(parsed.ok());
  Bytes mrtd(parsed->body.mr_td.begin(), parsed->body.mr_td.end());
  Bytes report_data(parsed->body.report_data.begin(), parsed->body.report_data.end());

  Policy policy;
  policy.allowed_platforms = {PlatformId::kTdx};
  policy.allowed_measurements["tdx"] = {mrtd};
  policy.tdx.mrtd = {mrtd};
  // Intel's sample collateral is newer than the sample platform (see tdx_verify_test).
  policy.tdx.accepted_tcb_statuses = {"UpToDate", "NotSupported"};
  Result<Verifier> verifier = MakeVerifier(policy);
  ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
  Result<Claims> claims = verifier->Verify(TdxEvidence(quote), report_data);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->platform, "tdx");
  EXPECT_EQ(claims->measurement, mrtd);
  EXPECT_FALSE(claims->debug);
  EXPECT_FALSE(claims->simulated);
  EXPECT_EQ(claims->details.at("tcb_status"), "NotSupported");
  EXPECT_EQ(claims->details.at("mrtd"), HexEncode(mrtd));

  // Wrong report data, another MRTD, default TCB statuses, a flipped byte: rejected.
  Bytes other_data = report_data;
  other_data[0] ^= 1;
  EXPECT_EQ(verifier->Verify(TdxEvidence(quote), other_data).status().code(),
            StatusCode::kUnauthenticated);
  Policy strict = policy;
  strict.tdx.accepted_tcb_statuses.clear();
  EXPECT_NE(MakeVerifier(strict)->Verify(TdxEvidence(quote), report_data).status().message()
                .find("TCB status NotSupported"),
            std::string::npos);
  Policy other_mrtd = policy;
  other_mrtd.tdx.mrtd[0][0] ^= 1;
  EXPECT_NE(MakeVerifier(other_mrtd)->Verify(TdxEvidence(quote), report_data).status().message()
                .find("policy: MRTD"),
            std::string::npos);
  Bytes tampered = quote;
  tampered[0x100] ^= 1;
  EXPECT_NE(verifier->Verify(TdxEvidence(tampered), report_data).status().message()
                .find("tdx: quote signature"),
            std::string::npos);
}

}  // namespace
}  // namespace chiron::attest::tdx
