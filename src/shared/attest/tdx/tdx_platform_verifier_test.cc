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

Result<Verifier> MakeVerifier(const Policy& policy, bool with_collateral = true) {
  TdxPlatformVerifierOptions options;
  if (with_collateral) options.collateral = *LoadTdxCollateralDir(TestDataPath("tdx"));
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

// The real quote and the policy that accepts it, for the tests below.
struct RealQuote {
  Bytes quote = ReadTestFile("tdx/tdx_prod_quote_SPR_E4.dat");
  Bytes mrtd;
  Bytes report_data;
  Policy policy;

  RealQuote() {
    Result<TdxQuote> parsed = ParseTdxQuote(quote);
    EXPECT_TRUE(parsed.ok());
    mrtd.assign(parsed->body.mr_td.begin(), parsed->body.mr_td.end());
    report_data.assign(parsed->body.report_data.begin(), parsed->body.report_data.end());
    policy.allowed_platforms = {PlatformId::kTdx};
    policy.allowed_measurements["tdx"] = {mrtd};
    policy.tdx.accepted_tcb_statuses = {"NotSupported"};
  }
};

TEST(TdxPlatformVerifierTest, WithoutTcbCollateralOnlyAnExplicitPolicyAccepts) {
  RealQuote real;
  // Default: fail closed, and the message says both ways out.
  Result<Claims> refused =
      MakeVerifier(real.policy, false)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("no TCB status"), std::string::npos);
  EXPECT_NE(refused.status().message().find("--collateral DIR"), std::string::npos);
  EXPECT_NE(refused.status().message().find("\"tcb_status_unchecked\": \"accept\""),
            std::string::npos)
      << refused.status().message();

  Policy accepting = real.policy;
  accepting.tdx.accept_unchecked_tcb_status = true;
  Result<Claims> claims =
      MakeVerifier(accepting, false)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->details.at("tcb_status"), "NOT CHECKED");
  ASSERT_FALSE(claims->warnings.empty());
  EXPECT_EQ(claims->warnings[0], kTcbStatusNotCheckedWarning);
  EXPECT_NE(claims->warnings[0].find("TCB status NOT CHECKED"), std::string::npos);
  bool revocation_warned = false;
  for (const auto& w : claims->warnings) {
    revocation_warned |= w.find("revocation of the PCK certificate chain NOT CHECKED") !=
                         std::string::npos;
  }
  EXPECT_TRUE(revocation_warned);
  // Signatures still count: a tampered quote is refused under the accepting policy too.
  Bytes tampered = real.quote;
  tampered[0x100] ^= 1;
  EXPECT_FALSE(
      MakeVerifier(accepting, false)->Verify(TdxEvidence(tampered), real.report_data).ok());
  // A minimum TCB evaluation data number needs the TCB info: refused, saying so.
  Policy with_minimum = accepting;
  with_minimum.tdx.min_tcb_evaluation_data_number = 1;
  Result<Claims> minimum =
      MakeVerifier(with_minimum, false)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_FALSE(minimum.ok());
  EXPECT_NE(minimum.status().message().find("min_tcb_evaluation_data_number needs"),
            std::string::npos);
  // With collateral the accepting policy changes nothing: the real status is judged.
  Result<Claims> judged =
      MakeVerifier(accepting)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_TRUE(judged.ok());
  EXPECT_EQ(judged->details.at("tcb_status"), "NotSupported");
}

TEST(TdxPlatformVerifierTest, TrailingBytesAreRefusedWhenThePolicySaysSo) {
  RealQuote real;
  Bytes padded = real.quote;
  padded.insert(padded.end(), 32, 0x00);
  ASSERT_TRUE(MakeVerifier(real.policy)->Verify(TdxEvidence(padded), real.report_data).ok());
  Policy strict = real.policy;
  strict.tdx.reject_trailing_bytes = true;
  Result<Claims> refused = MakeVerifier(strict)->Verify(TdxEvidence(padded), real.report_data);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("tdx: trailing bytes"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("tdx.reject_trailing_bytes"), std::string::npos);
}

TEST(TdxPlatformVerifierTest, WrongMeasurementsSayWhatWasExpected) {
  RealQuote real;
  Policy other = real.policy;
  Bytes expected_mrtd(48, 0xaa);
  other.tdx.mrtd = {expected_mrtd};
  Result<Claims> mrtd = MakeVerifier(other)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_FALSE(mrtd.ok());
  EXPECT_NE(mrtd.status().message().find("the policy accepts " + HexEncode(expected_mrtd)),
            std::string::npos)
      << mrtd.status().message();
  Policy rtmr = real.policy;
  rtmr.tdx.rtmr[2] = {Bytes(48, 0x01), Bytes(48, 0x02)};
  Result<Claims> rtmr_refused =
      MakeVerifier(rtmr)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_FALSE(rtmr_refused.ok());
  EXPECT_NE(rtmr_refused.status().message().find(
                "(tdx.rtmr2): the policy accepts " + HexEncode(Bytes(48, 0x01)) + ", " +
                HexEncode(Bytes(48, 0x02))),
            std::string::npos)
      << rtmr_refused.status().message();
  // The generic measurement list (allowed_measurements) names its values too.
  Policy measurement = real.policy;
  measurement.allowed_measurements["tdx"] = {expected_mrtd};
  Result<Claims> generic =
      MakeVerifier(measurement)->Verify(TdxEvidence(real.quote), real.report_data);
  ASSERT_FALSE(generic.ok());
  EXPECT_NE(generic.status().message().find("not in allowed_measurements for platform 'tdx': "
                                            "the policy accepts " + HexEncode(expected_mrtd)),
            std::string::npos)
      << generic.status().message();
}

}  // namespace
}  // namespace chiron::attest::tdx
