#include "shared/attest/verifier.h"

#include <gtest/gtest.h>

#include <string>

#include "shared/crypto/keys.h"

namespace chiron::attest {
namespace {

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = *crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
    other_root_ = *crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
    for (size_t i = 0; i < measurement_.size(); ++i) measurement_[i] = static_cast<uint8_t>(i);
    for (size_t i = 0; i < report_data_.size(); ++i) {
      report_data_[i] = static_cast<uint8_t>(0x80 + i);
    }
    policy_.allowed_platforms = {PlatformId::kSim};
    policy_.allowed_measurements["sim"] = {measurement_};
    policy_.trusted_sim_roots = {*root_.public_key().ToRaw()};
    policy_.min_svn = 2;
  }

  Bytes SimEvidence(bool debug = false, uint32_t svn = 2) const {
    Result<Bytes> e = CreateSimEvidence(root_, measurement_, report_data_, debug, svn);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : Bytes{};
  }

  Result<Claims> Verify(ByteSpan evidence) const { return Verify(policy_, evidence); }
  Result<Claims> Verify(const Policy& policy, ByteSpan evidence) const {
    Result<Verifier> v = Verifier::Create(policy);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return v.status();
    return v->Verify(evidence, report_data_);
  }

  crypto::PrivateKey root_ = *crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
  crypto::PrivateKey other_root_ = root_;
  Bytes measurement_ = Bytes(kMeasurementSize);
  Bytes report_data_ = Bytes(kReportDataSize);
  Policy policy_;
};

TEST_F(VerifierTest, AcceptsGoodSimEvidenceWithInsecureWarning) {
  Result<Claims> claims = Verify(SimEvidence());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->platform, "sim");
  EXPECT_EQ(claims->measurement, measurement_);
  EXPECT_EQ(claims->report_data, report_data_);
  EXPECT_FALSE(claims->debug);
  EXPECT_EQ(claims->svn, 2u);
  EXPECT_TRUE(claims->simulated);
  EXPECT_EQ(claims->details.at("sim_root_key"), HexEncode(*root_.public_key().ToRaw()));
  ASSERT_EQ(claims->warnings.size(), 1u);
  EXPECT_EQ(claims->warnings[0], kSimInsecureWarning);
  EXPECT_TRUE(Has(claims->warnings[0], "INSECURE"));
}

TEST_F(VerifierTest, RejectsEverySingleByteFlip) {
  const Bytes good = SimEvidence();
  ASSERT_TRUE(Verify(good).ok());
  Result<Verifier> verifier = Verifier::Create(policy_);
  ASSERT_TRUE(verifier.ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      Bytes bad = good;
      bad[i] ^= mask;
      Result<Claims> r = verifier->Verify(bad, report_data_);
      ASSERT_FALSE(r.ok()) << "flip of byte " << i << " with mask " << int{mask} << " accepted";
      EXPECT_FALSE(r.status().message().empty());
    }
  }
}

TEST_F(VerifierTest, EachFieldFlipIsRejectedByItsOwnCheck) {
  const Bytes good = SimEvidence();
  const size_t body = kEvidenceHeaderSize;
  auto flipped_message = [&](size_t offset, uint8_t mask = 0x01) {
    Bytes bad = good;
    bad[offset] ^= mask;
    return Verify(bad).status().message();
  };
  EXPECT_TRUE(Has(flipped_message(0), "bad magic"));
  EXPECT_TRUE(Has(flipped_message(4), "unknown format version 0"));
  EXPECT_TRUE(Has(flipped_message(6), "evidence: unknown platform id 0"));
  EXPECT_TRUE(Has(flipped_message(8), "unexpected trailing bytes"));  // size 217 -> 216
  EXPECT_TRUE(Has(flipped_message(8, 0x02), "truncated"));            // size 217 -> 219
  EXPECT_TRUE(Has(flipped_message(body + 0), "unknown body version"));
  EXPECT_TRUE(Has(flipped_message(body + 2), "body names platform"));
  // measurement, report data, debug flag, svn: caught by the signature (a forged debug=false
  // never reaches the debug check).
  for (size_t off : {body + 4, body + 4 + 48, body + 4 + 48 + 64, body + 4 + 48 + 64 + 1}) {
    EXPECT_EQ(flipped_message(off), "sim evidence: signature verification failed") << off;
  }
  EXPECT_TRUE(Has(flipped_message(body + 4 + 48 + 64, 0x02), "unknown flag bits 0x02"));
  EXPECT_TRUE(Has(flipped_message(body + 4 + 48 + 64 + 1 + 4), "is not in trusted_sim_roots"));
  EXPECT_EQ(flipped_message(good.size() - 1), "sim evidence: signature verification failed");
}

TEST_F(VerifierTest, RejectsEveryTruncationAndExtension) {
  const Bytes good = SimEvidence();
  Result<Verifier> verifier = Verifier::Create(policy_);
  ASSERT_TRUE(verifier.ok());
  for (size_t n = 0; n < good.size(); ++n) {
    Result<Claims> r = verifier->Verify(ByteSpan(good).first(n), report_data_);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
    EXPECT_TRUE(Has(r.status().message(), "truncated")) << r.status().message();
  }
  Bytes extended = good;
  extended.push_back(0);
  EXPECT_TRUE(Has(Verify(extended).status().message(), "unexpected trailing bytes"));
}

TEST_F(VerifierTest, RejectsOversizedInputBeforeParsing) {
  Bytes huge = SimEvidence();
  huge.resize(kMaxEvidenceSize + 1, 0);
  EXPECT_EQ(Verify(huge).status().message(), "evidence: 65537 bytes exceeds the limit of 65536");
  // A consistent envelope whose sim body is too long is refused by the body parser.
  Evidence e{PlatformId::kSim, Bytes(kSimBodySize + 1, 0)};
  EXPECT_TRUE(Has(Verify(*SerializeEvidence(e)).status().message(), "exactly 217 bytes"));
}

TEST_F(VerifierTest, RejectsWrongFormatVersionAndUnknownPlatform) {
  Bytes v7 = SimEvidence();
  v7[4] = 7;
  EXPECT_EQ(Verify(v7).status().message(),
            "evidence: unknown format version 7; this verifier reads version 1");
  Bytes unknown = SimEvidence();
  unknown[6] = 0x2a;
  EXPECT_TRUE(Has(Verify(unknown).status().message(), "unknown platform id 42"));
}

TEST_F(VerifierTest, RejectsPlatformNotInPolicy) {
  Policy tdx_only = policy_;
  tdx_only.allowed_platforms = {PlatformId::kTdx};
  tdx_only.allowed_measurements["tdx"] = {measurement_};
  Result<Claims> r = Verify(tdx_only, SimEvidence());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "policy: platform 'sim' is not in allowed_platforms");
}

TEST_F(VerifierTest, RejectsPlatformWithoutVerifier) {
  Policy tdx = policy_;
  tdx.allowed_platforms.push_back(PlatformId::kTdx);
  tdx.allowed_measurements["tdx"] = {measurement_};
  Result<Verifier> v = Verifier::Create(tdx, [] {
    std::vector<std::unique_ptr<PlatformVerifier>> list;
    list.push_back(NewSimPlatformVerifier());
    return list;
  }());
  ASSERT_TRUE(v.ok());
  Bytes payload = *SerializeTsmBody({"tdx_guest", Bytes(100, 1), {}});
  Result<Claims> r = v->Verify(*SerializeEvidence({PlatformId::kTdx, payload}), report_data_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Has(r.status().message(), "no verifier for platform 'tdx'"));
}

TEST_F(VerifierTest, RejectsUnlistedSimRoot) {
  Bytes evidence = *CreateSimEvidence(other_root_, measurement_, report_data_, false, 2);
  Result<Claims> r = Verify(evidence);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "policy: sim root key " +
                                      HexEncode(*other_root_.public_key().ToRaw()) +
                                      " is not in trusted_sim_roots");
}

TEST_F(VerifierTest, RejectsListedRootWithForeignSignature) {
  // An attacker copies the trusted root's public key into evidence signed with their own key.
  Bytes evidence = *CreateSimEvidence(other_root_, measurement_, report_data_, false, 2);
  Bytes trusted_key = *root_.public_key().ToRaw();
  std::copy(trusted_key.begin(), trusted_key.end(),
            evidence.begin() + kEvidenceHeaderSize + 4 + 48 + 64 + 1 + 4);
  Result<Claims> r = Verify(evidence);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), "sim evidence: signature verification failed");
}

TEST_F(VerifierTest, SimNeedsBothPlatformAndRoot) {
  // Root listed but "sim" not allowed.
  Policy no_sim = policy_;
  no_sim.allowed_platforms = {PlatformId::kSevSnp};
  no_sim.allowed_measurements["sev-snp"] = {measurement_};
  EXPECT_TRUE(Has(Verify(no_sim, SimEvidence()).status().message(), "not in allowed_platforms"));
  // "sim" allowed but no root listed: the policy itself is refused.
  Policy no_root = policy_;
  no_root.trusted_sim_roots.clear();
  Result<Verifier> v = Verifier::Create(no_root);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(Has(v.status().message(), "trusted_sim_roots is empty"));
}

TEST_F(VerifierTest, DebugEvidenceVersusPolicy) {
  Result<Claims> r = Verify(SimEvidence(/*debug=*/true));
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(),
            "policy: evidence comes from a debug-mode sim TEE (the host can read its memory) and "
            "allow_debug is false");
  Policy debug_ok = policy_;
  debug_ok.allow_debug = true;
  Result<Claims> accepted = Verify(debug_ok, SimEvidence(true));
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_TRUE(accepted->debug);
  ASSERT_EQ(accepted->warnings.size(), 2u);
  EXPECT_TRUE(Has(accepted->warnings[1], "debug-mode"));
}

TEST_F(VerifierTest, RejectsWrongMeasurement) {
  Bytes other(kMeasurementSize, 0x3f);
  Bytes evidence = *CreateSimEvidence(root_, other, report_data_, false, 2);
  Result<Claims> r = Verify(evidence);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "policy: measurement " + HexEncode(other) +
                                      " is not in allowed_measurements for platform 'sim': the "
                                      "policy accepts " + HexEncode(measurement_));
  // Many accepted values: the first eight, then how many more.
  Policy many = policy_;
  for (uint8_t i = 0; i < 9; ++i) many.allowed_measurements["*"].push_back(Bytes(48, i));
  Result<Claims> listed = Verify(many, evidence);
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.status().message().find(HexEncode(Bytes(48, 0x07)) + " and 2 more"),
            std::string::npos)
      << listed.status().message();
  // The "*" list applies to every platform.
  Policy global = policy_;
  global.allowed_measurements["*"] = {other};
  EXPECT_TRUE(Verify(global, evidence).ok());
  // A measurement listed only for another platform does not count for sim.
  Policy other_platform = policy_;
  other_platform.allowed_platforms.push_back(PlatformId::kTdx);
  other_platform.allowed_measurements["tdx"] = {other};
  EXPECT_FALSE(Verify(other_platform, evidence).ok());
}

TEST_F(VerifierTest, RejectsSvnBelowMinimum) {
  Result<Claims> r = Verify(SimEvidence(false, 1));
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "policy: security version 1 is below min_svn 2");
  EXPECT_TRUE(Verify(SimEvidence(false, 3)).ok());
}

TEST_F(VerifierTest, RejectsWrongReportData) {
  Result<Verifier> v = Verifier::Create(policy_);
  ASSERT_TRUE(v.ok());
  Bytes other = report_data_;
  other[63] ^= 1;
  Result<Claims> r = v->Verify(SimEvidence(), other);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(),
            "report data mismatch: evidence is not bound to this TLS key/nonce");
  Result<Claims> short_expected = v->Verify(SimEvidence(), ByteSpan(report_data_).first(32));
  EXPECT_EQ(short_expected.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(VerifierTest, CreateRejectsDuplicateAndNullVerifiers) {
  std::vector<std::unique_ptr<PlatformVerifier>> twice;
  twice.push_back(NewSimPlatformVerifier());
  twice.push_back(NewSimPlatformVerifier());
  EXPECT_TRUE(Has(Verifier::Create(policy_, std::move(twice)).status().message(),
                  "two PlatformVerifiers for platform 'sim'"));
  std::vector<std::unique_ptr<PlatformVerifier>> null_entry;
  null_entry.push_back(nullptr);
  EXPECT_FALSE(Verifier::Create(policy_, std::move(null_entry)).ok());
}

// A platform verifier registered through the extension point is used for its platform, and
// the generic policy checks still apply to the claims it returns.
class FakeTdxVerifier final : public PlatformVerifier {
 public:
  explicit FakeTdxVerifier(Bytes measurement) : measurement_(std::move(measurement)) {}
  PlatformId platform() const override { return PlatformId::kTdx; }
  Result<Claims> VerifyPayload(ByteSpan payload, const Policy& policy) const override {
    CHIRON_ASSIGN_OR_RETURN(TsmEvidenceBody body, ParseTsmBody(PlatformId::kTdx, payload));
    if (body.outblob.size() != kReportDataSize) return UnauthenticatedError("fake: bad quote");
    Claims claims;
    claims.platform = "tdx";
    claims.measurement = measurement_;
    claims.report_data = body.outblob;  // the fake "quote" is just the report data
    claims.svn = 5;
    claims.details["provider"] = body.provider;
    return claims;
  }

 private:
  Bytes measurement_;
};

TEST_F(VerifierTest, ExtensionPointDispatchesByPlatform) {
  Policy policy = policy_;
  policy.allowed_platforms.push_back(PlatformId::kTdx);
  policy.allowed_measurements["tdx"] = {Bytes(48, 7)};
  std::vector<std::unique_ptr<PlatformVerifier>> list;
  list.push_back(NewSimPlatformVerifier());
  list.push_back(std::make_unique<FakeTdxVerifier>(Bytes(48, 7)));
  Result<Verifier> v = Verifier::Create(policy, std::move(list));
  ASSERT_TRUE(v.ok());
  Bytes evidence =
      *SerializeEvidence({PlatformId::kTdx, *SerializeTsmBody({"tdx_guest", report_data_, {}})});
  Result<Claims> claims = v->Verify(evidence, report_data_);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->platform, "tdx");
  EXPECT_FALSE(claims->simulated);
  EXPECT_TRUE(claims->warnings.empty());
  EXPECT_EQ(claims->details.at("provider"), "tdx_guest");
  // Sim still works through the same verifier.
  EXPECT_TRUE(v->Verify(SimEvidence(), report_data_).ok());
  // Generic checks apply to the extension's claims: wrong report data is refused.
  Bytes other = report_data_;
  other[0] ^= 1;
  EXPECT_TRUE(Has(v->Verify(evidence, other).status().message(), "report data mismatch"));
}

}  // namespace
}  // namespace chiron::attest
