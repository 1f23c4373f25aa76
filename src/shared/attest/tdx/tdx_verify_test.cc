#include "shared/attest/tdx/tdx_verify.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "shared/attest/tdx/test_data.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/x509.h"

namespace chiron::attest::tdx {
namespace {

using testing::ReadTestFile;
using testing::TestDataPath;
using testing::Utc;

constexpr char kQuote[] = "tdx/tdx_prod_quote_SPR_E4.dat";
constexpr size_t kQuoteEnd = 4935;  // end of the signature data; 39 test bytes follow

TdxVerifyOptions At(std::chrono::system_clock::time_point time) {
  TdxVerifyOptions options;
  options.verification_time = time;
  return options;
}
// Inside every validity window of the sample collateral (PCK CRL and QE identity until
// 2023-07-08, TCB info until 2023-07-18).
TdxVerifyOptions Valid() { return At(Utc(2023, 7, 1)); }

TdxCollateral FullCollateral() {
  Result<TdxCollateral> c = LoadTdxCollateralDir(TestDataPath("tdx"));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(TdxVerifyTest, ProductionQuoteVerifiesWithoutCollateral) {
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), {}, Valid());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_FALSE(v->tcb.has_value());
  EXPECT_EQ(HexEncode(v->pck.fmspc), "50806f000000");
  EXPECT_EQ(v->pck.pce_svn, 11);
  EXPECT_EQ(v->pck.tcb_components, (std::array<uint8_t, 16>{3, 3, 2, 2, 2, 1, 0, 2}));
  // TCB status not checked (first, loudest), trailing bytes, no CRLs.
  ASSERT_EQ(v->warnings.size(), 3u);
  EXPECT_EQ(v->warnings[0], kTcbStatusNotCheckedWarning);
  EXPECT_NE(v->warnings[1].find("39 unauthenticated byte(s)"), std::string::npos);
  EXPECT_EQ(v->warnings[2], "no CRLs given: revocation of the PCK certificate chain NOT CHECKED");
  bool described = false;
  for (const auto& [name, value] : DescribeTdxVerification(*v)) {
    if (name == "tcb_status") described = value == "NOT CHECKED";
  }
  EXPECT_TRUE(described);
  std::printf("TDX MRTD: %s\n", HexEncode(v->quote.body.mr_td).c_str());
}

TEST(TdxVerifyTest, ProductionQuoteVerifiesWithIntelCollateral) {
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), FullCollateral(), Valid());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(v->tcb.has_value());
  // Intel's sample TCB info lists only levels newer than this platform (see
  // tdx_collateral_test): signatures verify, and the TCB status says "not supported".
  EXPECT_EQ(v->tcb->status, TcbStatus::kNotSupported);
  EXPECT_EQ(v->tcb->qe_status, TcbStatus::kUpToDate);
  EXPECT_EQ(v->tcb_evaluation_data_number, 15u);
  for (const auto& [name, value] : DescribeTdxVerification(*v)) {
    std::printf("  %s: %s\n", name.c_str(), value.c_str());
  }
}

TEST(TdxVerifyTest, VerifiesFromFiles) {
  Result<TdxVerification> v =
      VerifyTdxQuoteFile(TestDataPath(kQuote), TestDataPath("tdx"), Valid());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->tcb.has_value());
  EXPECT_EQ(VerifyTdxQuoteFile("/nonexistent/quote", "", Valid()).status().code(),
            StatusCode::kNotFound);
}

TEST(TdxVerifyTest, VerificationTimeIsRequired) {
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), {}, TdxVerifyOptions{});
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("verification_time"), std::string::npos);
}

TEST(TdxVerifyTest, ExpiryIsReportedClearly) {
  // The PCK leaf expires 2029-09-20.
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), {}, At(Utc(2030, 1, 1)));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(v.status().message().find("tdx: PCK certificate chain"), std::string::npos);
  EXPECT_NE(v.status().message().find("expired"), std::string::npos) << v.status().message();
  // Before the PCK certificate's notBefore (2022-09-20).
  EXPECT_NE(VerifyTdxQuote(ReadTestFile(kQuote), {}, At(Utc(2022, 1, 1)))
                .status().message().find("not yet valid"),
            std::string::npos);
  // CRLs past nextUpdate (PCK CRL: 2023-07-08).
  v = VerifyTdxQuote(ReadTestFile(kQuote), FullCollateral(), At(Utc(2023, 7, 10)));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("CRL has expired"), std::string::npos)
      << v.status().message();
  // Collateral past nextUpdate (QE identity: 2023-07-08), without CRLs.
  TdxCollateral no_crls = FullCollateral();
  no_crls.pck_crl_der.reset();
  no_crls.root_crl_der.reset();
  v = VerifyTdxQuote(ReadTestFile(kQuote), no_crls, At(Utc(2023, 7, 10)));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message().rfind("tdx: collateral qeIdentity: expired", 0), 0u)
      << v.status().message();
}

TEST(TdxVerifyTest, TrailingBytesCanBeRefused) {
  TdxVerifyOptions options = Valid();
  options.reject_trailing_bytes = true;
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), {}, options);
  EXPECT_NE(v.status().message().find("tdx: trailing bytes: 39 byte(s)"), std::string::npos);
  Bytes exact = ReadTestFile(kQuote);
  exact.resize(kQuoteEnd);
  EXPECT_TRUE(VerifyTdxQuote(exact, {}, options).ok());
}

TEST(TdxVerifyTest, CollateralMustComeAsAPairAndCanBeRequired) {
  TdxCollateral half = FullCollateral();
  half.qe_identity_json.reset();
  EXPECT_FALSE(VerifyTdxQuote(ReadTestFile(kQuote), half, Valid()).ok());
  TdxVerifyOptions options = Valid();
  options.require_collateral = true;
  EXPECT_EQ(VerifyTdxQuote(ReadTestFile(kQuote), {}, options).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(TdxVerifyTest, TamperedCollateralIsRejected) {
  TdxCollateral c = FullCollateral();
  std::string& text = *c.tcb_info_json;
  text.replace(text.find("\"UpToDate\""), 10, "\"Revoked\" ");
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), c, Valid());
  EXPECT_NE(v.status().message().find("tdx: collateral tcbInfo: signature"), std::string::npos)
      << v.status().message();
  // A TCB info signed by someone else's certificate (here: the PCK leaf, which chains to the
  // right root but is not the TCB Signing certificate).
  Result<TdxQuote> quote = ParseTdxQuote(ReadTestFile(kQuote));
  ASSERT_TRUE(quote.ok());
  c = FullCollateral();
  c.pck_crl_der.reset();
  c.root_crl_der.reset();
  c.tcb_signing_chain_pem = crypto::Certificate::FromDer(quote->pck_chain_der[0])->ToPem() +
                            crypto::Certificate::FromDer(quote->pck_chain_der[1])->ToPem() +
                            crypto::Certificate::FromDer(quote->pck_chain_der[2])->ToPem();
  v = VerifyTdxQuote(ReadTestFile(kQuote), c, Valid());
  EXPECT_NE(v.status().message().find("not Intel's TCB Signing certificate"), std::string::npos)
      << v.status().message();
}

// Every byte of the quote, flipped: all are rejected except the 39 trailing bytes after the
// signature data, which no signature covers and the verifier never reads.
TEST(TdxVerifyTest, EveryFlippedByteIsRejected) {
  const Bytes original = ReadTestFile(kQuote);
  const TdxCollateral collateral = FullCollateral();
  for (uint8_t mask : {0x01, 0x80}) {
    std::set<size_t> accepted;
    std::map<std::string, int> checks;
    for (size_t i = 0; i < original.size(); ++i) {
      Bytes tampered = original;
      tampered[i] ^= mask;
      Result<TdxVerification> v = VerifyTdxQuote(tampered, collateral, Valid());
      if (v.ok()) {
        accepted.insert(i);
        continue;
      }
      const std::string& m = v.status().message();
      ASSERT_TRUE(m.rfind("tdx: ", 0) == 0 || m.rfind("tdx quote: ", 0) == 0) << i << ": " << m;
      checks[m.substr(0, m.find(':', 5))]++;
    }
    std::set<size_t> trailing;
    for (size_t i = kQuoteEnd; i < original.size(); ++i) trailing.insert(i);
    EXPECT_EQ(accepted, trailing) << "mask " << int(mask);
    // Each layer of the quote is caught by its own check. (With mask 0x80 every PEM character
    // becomes non-ASCII, so the strict PEM parser catches all of them before the chain check.)
    std::vector<const char*> expected = {"tdx quote", "tdx: QE report signature",
                                         "tdx: QE binding", "tdx: quote signature"};
    if (mask == 0x01) expected.push_back("tdx: PCK certificate chain");
    for (const char* check : expected) {
      EXPECT_GT(checks[check], 0) << check << " never fired with mask " << int(mask);
    }
  }
}

// Replaces the PEM chain of the quote, fixing up the three enclosing sizes.
Bytes WithChain(const Bytes& quote, const std::string& pem) {
  constexpr size_t kSigSize = 0x278, kOuterSize = 0x2fe, kQeData = 0x302;
  size_t auth_size = quote[kQeData + 384 + 64] | quote[kQeData + 384 + 65] << 8;
  size_t inner = kQeData + 384 + 64 + 2 + auth_size;  // inner type u16, size u32, PEM
  Bytes out(quote.begin(), quote.begin() + inner + 6);
  Append(out, AsBytes(pem));
  auto put = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(inner + 2, static_cast<uint32_t>(pem.size()));
  put(kOuterSize, static_cast<uint32_t>(out.size() - kQeData));
  put(kSigSize, static_cast<uint32_t>(out.size() - (kSigSize + 4)));
  return out;
}

TEST(TdxVerifyTest, ChainToAnotherRootIsRejected) {
  using crypto::Certificate;
  using crypto::CertificateRequest;
  using crypto::PrivateKey;
  using crypto::SignatureScheme;
  const Bytes original = ReadTestFile(kQuote);
  Result<TdxQuote> quote = ParseTdxQuote(original);
  ASSERT_TRUE(quote.ok());
  // Re-encoding the genuine chain keeps the quote valid (the helper is right)...
  std::string genuine;
  for (const Bytes& der : quote->pck_chain_der) genuine += Certificate::FromDer(der)->ToPem();
  ASSERT_TRUE(VerifyTdxQuote(WithChain(original, genuine), {}, Valid()).ok());

  // ...while an impostor chain with Intel's names but a root key generated here is not.
  auto key = [] { return *PrivateKey::Generate(SignatureScheme::kEcdsaP256Sha256); };
  PrivateKey root_key = key(), ca_key = key(), leaf_key = key();
  CertificateRequest root_req;
  root_req.common_name = "Intel SGX Root CA";
  root_req.is_ca = true;
  root_req.not_before = Utc(2020, 1, 1);
  root_req.lifetime = std::chrono::hours(24 * 365 * 20);
  Result<Certificate> root = Certificate::CreateSelfSigned(root_key, root_req);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  CertificateRequest ca_req = root_req;
  ca_req.common_name = "Intel SGX PCK Platform CA";
  Result<Certificate> ca = Certificate::CreateSigned(root_key, *root, ca_key.public_key(), ca_req);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  CertificateRequest leaf_req = root_req;
  leaf_req.common_name = "Intel SGX PCK Certificate";
  leaf_req.is_ca = false;
  Result<Certificate> leaf = Certificate::CreateSigned(ca_key, *ca, leaf_key.public_key(), leaf_req);
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  Result<TdxVerification> v = VerifyTdxQuote(
      WithChain(original, leaf->ToPem() + ca->ToPem() + root->ToPem()), {}, Valid());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(v.status().message().find("does not carry the Intel SGX Root CA public key"),
            std::string::npos)
      << v.status().message();
  // The impostor leaf under the real Intel root (no Intel signature on it) fails as well.
  std::string spliced = leaf->ToPem() + Certificate::FromDer(quote->pck_chain_der[1])->ToPem() +
                        Certificate::FromDer(quote->pck_chain_der[2])->ToPem();
  v = VerifyTdxQuote(WithChain(original, spliced), {}, Valid());
  EXPECT_NE(v.status().message().find("tdx: PCK certificate chain: certificate chain "
                                      "verification failed"),
            std::string::npos)
      << v.status().message();
}

TEST(TdxVerifyTest, ExpectationsAreApplied) {
  Result<TdxVerification> v = VerifyTdxQuote(ReadTestFile(kQuote), FullCollateral(), Valid());
  ASSERT_TRUE(v.ok());
  TdxExpectations e;
  e.mrtd = {Bytes(v->quote.body.mr_td.begin(), v->quote.body.mr_td.end())};
  e.rtmr[0] = {Bytes(v->quote.body.rtmr[0].begin(), v->quote.body.rtmr[0].end())};
  e.report_data = Bytes(v->quote.body.report_data.begin(), v->quote.body.report_data.end());
  // Default: only UpToDate is accepted, and the sample's status is NotSupported.
  EXPECT_EQ(CheckTdxExpectations(*v, e).message(),
            "policy: TCB status NotSupported is not among the accepted statuses");
  e.accepted_tcb_statuses = {"UpToDate", "NotSupported"};
  EXPECT_TRUE(CheckTdxExpectations(*v, e).ok());
  e.min_tcb_evaluation_data_number = 16;
  EXPECT_EQ(CheckTdxExpectations(*v, e).code(), StatusCode::kPermissionDenied);
  e.min_tcb_evaluation_data_number = 15;

  TdxExpectations wrong = e;
  wrong.mrtd[0][0] ^= 1;
  EXPECT_NE(CheckTdxExpectations(*v, wrong).message().find("policy: MRTD"), std::string::npos);
  wrong = e;
  wrong.rtmr[3] = {Bytes(48, 0xaa)};
  EXPECT_NE(CheckTdxExpectations(*v, wrong).message().find("RTMR3"), std::string::npos);
  wrong = e;
  (*wrong.report_data)[63] ^= 1;
  EXPECT_EQ(CheckTdxExpectations(*v, wrong).code(), StatusCode::kUnauthenticated);

  TdxVerification debug = *v;
  debug.quote.body.td_attributes |= kTdAttributeDebug;
  EXPECT_NE(CheckTdxExpectations(debug, e).message().find("debug"), std::string::npos);
  e.allow_debug = true;
  EXPECT_TRUE(CheckTdxExpectations(debug, e).ok());

  // Without collateral: a minimum evaluation data number cannot be met, and without one the
  // refusal says how to accept the quote knowingly; accept_unchecked_tcb_status does.
  Result<TdxVerification> bare = VerifyTdxQuote(ReadTestFile(kQuote), {}, Valid());
  EXPECT_NE(CheckTdxExpectations(*bare, e).message().find(
                "tdx.min_tcb_evaluation_data_number needs Intel's TCB info"),
            std::string::npos);
  e.min_tcb_evaluation_data_number.reset();
  EXPECT_NE(CheckTdxExpectations(*bare, e).message().find("no TCB status"), std::string::npos);
  EXPECT_NE(CheckTdxExpectations(*bare, e).message().find(
                "\"tcb_status_unchecked\": \"accept\""),
            std::string::npos);
  e.accept_unchecked_tcb_status = true;
  EXPECT_TRUE(CheckTdxExpectations(*bare, e).ok());
  // It judges nothing else differently: a wrong MRTD is still refused.
  TdxExpectations unchecked_wrong = e;
  unchecked_wrong.mrtd[0][0] ^= 1;
  EXPECT_FALSE(CheckTdxExpectations(*bare, unchecked_wrong).ok());
}

}  // namespace
}  // namespace chiron::attest::tdx
