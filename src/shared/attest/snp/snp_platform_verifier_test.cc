#include "shared/attest/snp/snp_platform_verifier.h"

#include <gtest/gtest.h>

#include "shared/attest/snp/snp_cert_table.h"
#include "shared/attest/tdx/strict_pem.h"
#include "shared/attest/tdx/test_data.h"
#include "shared/crypto/x509.h"

namespace chiron::attest::snp {
namespace {

using testing::ReadTestFile;
using testing::Utc;

Bytes SnpEvidence(const Bytes& report, const Bytes& auxblob = {}) {
  Result<Bytes> body = SerializeTsmBody({std::string(kTsmProviderSevSnp), report, auxblob});
  EXPECT_TRUE(body.ok()) << body.status().ToString();
  Result<Bytes> evidence = SerializeEvidence({PlatformId::kSevSnp, *body});
  EXPECT_TRUE(evidence.ok()) << evidence.status().ToString();
  return *evidence;
}

// `with_collateral` false: the verifier has no VCEK or ASK/ARK of its own, as `chiron attest`
// against a live runtime; the evidence's certificate table must supply them.
Result<Verifier> MakeVerifier(const Policy& policy, bool with_collateral = true) {
  SnpPlatformVerifierOptions options;
  if (with_collateral) {
    options.collateral.vcek_der = ReadTestFile("sev-snp/vcek.testcer");
    options.collateral.ask_ark_pem = ToString(ReadTestFile("sev-snp/milan.testcer"));
  }
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

struct RealReport {
  Bytes report, report_data, measurement;
  Policy policy;  // accepts this report (sev-snp, its measurement, debug allowed)
};

RealReport LoadRealReport() {
  RealReport r;
  r.report = ReadTestFile("sev-snp/attestation.bin");
  Result<SnpReport> parsed = ParseSnpReport(r.report);
  EXPECT_TRUE(parsed.ok());
  r.measurement.assign(parsed->measurement.begin(), parsed->measurement.end());
  r.report_data.assign(parsed->report_data.begin(), parsed->report_data.end());
  r.policy.allowed_platforms = {PlatformId::kSevSnp};
  r.policy.allowed_measurements["sev-snp"] = {r.measurement};
  r.policy.sev_snp.measurement = {r.measurement};
  r.policy.allow_debug = true;
  return r;
}

// The host's certificate table (auxblob) with AMD's real certificates.
Bytes RealCertTable(bool with_chain = true) {
  auto chain = DecodeStrictPemCertificates(ReadTestFile("sev-snp/milan.testcer"));
  EXPECT_TRUE(chain.ok() && chain->size() == 2);
  std::vector<std::pair<std::string, Bytes>> certificates = {
      {kSnpVcekGuid, ReadTestFile("sev-snp/vcek.testcer")}};
  if (with_chain) {
    certificates.push_back({kSnpAskGuid, (*chain)[0]});
    certificates.push_back({kSnpArkGuid, (*chain)[1]});
  }
  return *BuildSnpCertTable(certificates);
}

TEST(SnpPlatformVerifierTest, CertificatesFromTheEvidencesTableWithoutCollateral) {
  RealReport r = LoadRealReport();
  auto verifier = MakeVerifier(r.policy, /*with_collateral=*/false);
  ASSERT_TRUE(verifier.ok());
  auto claims = verifier->Verify(SnpEvidence(r.report, RealCertTable()), r.report_data);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->measurement, r.measurement);
  EXPECT_EQ(claims->details.at("product"), "Milan");

  // Only the VCEK in the table: the verifier's own ASK/ARK complete the chain.
  claims = MakeVerifier(r.policy)->Verify(SnpEvidence(r.report, RealCertTable(false)),
                                          r.report_data);
  EXPECT_TRUE(claims.ok()) << claims.status().ToString();

  // Neither a table nor collateral: a clear error naming what to do.
  auto none = verifier->Verify(SnpEvidence(r.report), r.report_data);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("--collateral"), std::string::npos)
      << none.status().message();
  // A malformed table is named as such.
  Bytes truncated = RealCertTable();
  truncated.resize(30);
  auto bad = verifier->Verify(SnpEvidence(r.report, truncated), r.report_data);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("auxblob"), std::string::npos) << bad.status().message();
}

// The host controls the table. A forged chain (its own "ARK-Milan" root, ASK and VCEK, P-384)
// must not make the report verify: the root is not AMD's pinned ARK.
TEST(SnpPlatformVerifierTest, ForgedChainInTheTableIsRefusedByTheArkPin) {
  RealReport r = LoadRealReport();
  auto key = [] {
    return *crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP384Sha384);
  };
  crypto::PrivateKey ark_key = key(), ask_key = key(), vcek_key = key();
  crypto::CertificateRequest ca;
  ca.common_name = "ARK-Milan";
  ca.is_ca = true;
  ca.not_before = Utc(2020, 1, 1);
  ca.lifetime = std::chrono::hours(24 * 365 * 20);
  auto ark = crypto::Certificate::CreateSelfSigned(ark_key, ca);
  ASSERT_TRUE(ark.ok()) << ark.status().ToString();
  ca.common_name = "SEV-Milan";
  auto ask = crypto::Certificate::CreateSigned(ark_key, *ark, ask_key.public_key(), ca);
  ASSERT_TRUE(ask.ok()) << ask.status().ToString();
  crypto::CertificateRequest leaf = ca;
  leaf.common_name = "SEV-VCEK";
  leaf.is_ca = false;
  auto vcek = crypto::Certificate::CreateSigned(ask_key, *ask, vcek_key.public_key(), leaf);
  ASSERT_TRUE(vcek.ok()) << vcek.status().ToString();
  Bytes table = *BuildSnpCertTable({{kSnpVcekGuid, *vcek->ToDer()},
                                    {kSnpAskGuid, *ask->ToDer()},
                                    {kSnpArkGuid, *ark->ToDer()}});
  auto claims =
      MakeVerifier(r.policy, false)->Verify(SnpEvidence(r.report, table), r.report_data);
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("pinned"), std::string::npos)
      << claims.status().message();
  // The real VCEK with the forged ASK/ARK: refused as well.
  table = *BuildSnpCertTable({{kSnpVcekGuid, ReadTestFile("sev-snp/vcek.testcer")},
                              {kSnpAskGuid, *ask->ToDer()},
                              {kSnpArkGuid, *ark->ToDer()}});
  claims = MakeVerifier(r.policy, false)->Verify(SnpEvidence(r.report, table), r.report_data);
  ASSERT_FALSE(claims.ok());
  EXPECT_NE(claims.status().message().find("pinned"), std::string::npos)
      << claims.status().message();
}

}  // namespace
}  // namespace chiron::attest::snp
