#include "shared/crypto/x509.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "shared/crypto/test_util.h"

namespace chiron::crypto {
namespace {

using std::chrono::hours;
using Clock = std::chrono::system_clock;

// A fixed instant so validity checks are reproducible: 2030-01-01T00:00:00Z.
const Clock::time_point kNow = Clock::from_time_t(1893456000);

CertificateRequest Request(std::string name, bool is_ca) {
  CertificateRequest request;
  request.common_name = std::move(name);
  request.not_before = kNow - hours(24);
  request.lifetime = hours(24 * 30);
  request.is_ca = is_ca;
  return request;
}

TEST(X509Test, SelfSignedRoundTripWithExtensions) {
  auto key = PrivateKey::Generate(SignatureScheme::kEcdsaP256Sha256);
  ASSERT_TRUE(key.ok());
  CertificateRequest request = Request("chirond.example", false);
  request.dns_names = {"chirond.example", "localhost"};
  request.extensions.push_back({"1.3.6.1.4.1.99999.1", false, ToBytes("evidence bytes")});
  request.extensions.push_back({"1.3.6.1.4.1.99999.2", true, Bytes{0, 1, 2, 255}});
  auto cert = Certificate::CreateSelfSigned(*key, request);
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();

  auto der = cert->ToDer();
  ASSERT_TRUE(der.ok());
  auto parsed = Certificate::FromDer(*der);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto from_pem = Certificate::FromPem(parsed->ToPem());
  ASSERT_TRUE(from_pem.ok()) << from_pem.status().ToString();
  EXPECT_EQ(*from_pem->ToDer(), *der);

  EXPECT_EQ(parsed->subject(), "CN=chirond.example");
  EXPECT_EQ(parsed->issuer(), "CN=chirond.example");
  EXPECT_EQ(parsed->not_before(), kNow - hours(24));
  EXPECT_EQ(parsed->not_after(), kNow - hours(24) + hours(24 * 30));
  EXPECT_EQ(parsed->serial_number().size(), 16u);
  EXPECT_EQ(*parsed->public_key()->ToSpkiDer(), *key->public_key().ToSpkiDer());
  EXPECT_TRUE(parsed->VerifySignature(key->public_key()).ok());
  auto stranger = PrivateKey::Generate(SignatureScheme::kEcdsaP256Sha256);
  EXPECT_EQ(parsed->VerifySignature(stranger->public_key()).code(), StatusCode::kUnauthenticated);

  auto ext1 = parsed->FindExtension("1.3.6.1.4.1.99999.1");
  ASSERT_TRUE(ext1.ok()) << ext1.status().ToString();
  EXPECT_EQ(ext1->value, ToBytes("evidence bytes"));
  EXPECT_FALSE(ext1->critical);
  auto ext2 = parsed->FindExtension("1.3.6.1.4.1.99999.2");
  ASSERT_TRUE(ext2.ok());
  EXPECT_TRUE(ext2->critical);
  EXPECT_EQ(ext2->value, (Bytes{0, 1, 2, 255}));
  EXPECT_EQ(parsed->FindExtension("1.3.6.1.4.1.99999.3").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(parsed->FindExtension("2.5.29.17").ok());  // subjectAltName
  EXPECT_TRUE(parsed->FindExtension("2.5.29.19").ok());  // basicConstraints

  // Path validation refuses a critical extension it does not understand...
  ChainVerifyOptions options;
  options.verification_time = kNow;
  Status critical = VerifyCertificateChain(*parsed, {}, {*parsed}, options);
  EXPECT_EQ(critical.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(critical.message().find("unhandled critical extension"), std::string::npos)
      << critical.message();
  // ...while a self-signed certificate with only non-critical ones, pinned as its own root,
  // verifies.
  request.extensions.pop_back();
  auto plain = Certificate::CreateSelfSigned(*key, request);
  ASSERT_TRUE(plain.ok());
  Status status = VerifyCertificateChain(*plain, {}, {*plain}, options);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(X509Test, EverySchemeSelfSigns) {
  for (SignatureScheme scheme : {SignatureScheme::kEd25519, SignatureScheme::kEcdsaP256Sha256,
                                 SignatureScheme::kEcdsaP384Sha384}) {
    auto key = PrivateKey::Generate(scheme);
    auto cert = Certificate::CreateSelfSigned(*key, Request("k", false));
    ASSERT_TRUE(cert.ok()) << SignatureSchemeName(scheme) << ": " << cert.status().ToString();
    EXPECT_TRUE(cert->VerifySignature(key->public_key()).ok());
    EXPECT_EQ(cert->public_key()->scheme(), scheme);
  }
}

TEST(X509Test, RejectsBadRequests) {
  auto key = PrivateKey::Generate(SignatureScheme::kEd25519);
  CertificateRequest duplicate = Request("d", false);
  duplicate.extensions.push_back({"1.2.3.4", false, {}});
  duplicate.extensions.push_back({"1.2.3.4", false, {}});
  EXPECT_EQ(Certificate::CreateSelfSigned(*key, duplicate).status().code(),
            StatusCode::kInvalidArgument);
  CertificateRequest bad_oid = Request("d", false);
  bad_oid.extensions.push_back({"not an oid", false, {}});
  EXPECT_EQ(Certificate::CreateSelfSigned(*key, bad_oid).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Certificate::CreateSelfSigned(*key, Request("", false)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(X509Test, ParsersRejectHostileInput) {
  EXPECT_EQ(Certificate::FromDer({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(Certificate::FromDer(Bytes{0x30, 0x82, 0xff, 0xff, 0x00}).ok());
  EXPECT_FALSE(Certificate::FromPem("not pem").ok());
  EXPECT_FALSE(Certificate::ChainFromPem("").ok());
  auto key = PrivateKey::Generate(SignatureScheme::kEd25519);
  auto cert = Certificate::CreateSelfSigned(*key, Request("t", false));
  Bytes der = *cert->ToDer();
  for (size_t cut = 0; cut < der.size(); cut += 7) {
    EXPECT_FALSE(Certificate::FromDer(ByteSpan(der).first(cut)).ok()) << cut;
  }
  der.push_back(0);
  EXPECT_EQ(Certificate::FromDer(der).status().code(), StatusCode::kInvalidArgument);
}

// root CA -> intermediate CA -> leaf, all built here.
class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_key_ = *PrivateKey::Generate(SignatureScheme::kEcdsaP384Sha384);
    auto root = Certificate::CreateSelfSigned(*root_key_, Request("Test Root CA", true));
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = *root;
    intermediate_key_ = *PrivateKey::Generate(SignatureScheme::kEcdsaP256Sha256);
    auto intermediate = Certificate::CreateSigned(
        *root_key_, *root_, intermediate_key_->public_key(), Request("Test Intermediate CA", true));
    ASSERT_TRUE(intermediate.ok()) << intermediate.status().ToString();
    intermediate_ = *intermediate;
    leaf_key_ = *PrivateKey::Generate(SignatureScheme::kEd25519);
    auto leaf = Certificate::CreateSigned(*intermediate_key_, *intermediate_,
                                          leaf_key_->public_key(), Request("Test Leaf", false));
    ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
    leaf_ = *leaf;
    options_.verification_time = kNow;
  }

  Bytes Crl(const PrivateKey& key, const Certificate& issuer, std::vector<Bytes> revoked) {
    CrlRequest request;
    request.this_update = kNow - hours(1);
    request.revoked_serials = std::move(revoked);
    auto crl = CreateCrl(key, issuer, request);
    EXPECT_TRUE(crl.ok()) << crl.status().ToString();
    return crl.ok() ? *crl : Bytes();
  }

  std::optional<PrivateKey> root_key_, intermediate_key_, leaf_key_;
  std::optional<Certificate> root_, intermediate_, leaf_;
  ChainVerifyOptions options_;
};

TEST_F(ChainTest, ValidChainVerifies) {
  EXPECT_EQ(leaf_->issuer(), "CN=Test Intermediate CA");
  Status status = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(ChainTest, MissingIntermediateFails) {
  Status status = VerifyCertificateChain(*leaf_, {}, {*root_}, options_);
  EXPECT_EQ(status.code(), StatusCode::kUnauthenticated);
}

TEST_F(ChainTest, ExpiredAndNotYetValidFail) {
  options_.verification_time = kNow + hours(24 * 60);
  Status expired = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_EQ(expired.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired.message();

  options_.verification_time = kNow - hours(48);
  Status early = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_EQ(early.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(early.message().find("not yet valid"), std::string::npos) << early.message();
}

TEST_F(ChainTest, WrongRootFails) {
  auto other_key = PrivateKey::Generate(SignatureScheme::kEcdsaP384Sha384);
  // Same name, different key: an impostor root.
  auto impostor = Certificate::CreateSelfSigned(*other_key, Request("Test Root CA", true));
  ASSERT_TRUE(impostor.ok());
  Status status = VerifyCertificateChain(*leaf_, {*intermediate_}, {*impostor}, options_);
  EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << status.ToString();
  EXPECT_EQ(VerifyCertificateChain(*leaf_, {*intermediate_}, {}, options_).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ChainTest, LeafCannotIssue) {
  // A certificate signed by a non-CA leaf must not verify.
  auto sub_key = PrivateKey::Generate(SignatureScheme::kEd25519);
  auto sub =
      Certificate::CreateSigned(*leaf_key_, *leaf_, sub_key->public_key(), Request("Sub", false));
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(VerifyCertificateChain(*sub, {*leaf_, *intermediate_}, {*root_}, options_).code(),
            StatusCode::kUnauthenticated);
  // The issuer key must match the issuer certificate.
  EXPECT_EQ(Certificate::CreateSigned(*sub_key, *leaf_, sub_key->public_key(), Request("x", false))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ChainTest, CrlRevocation) {
  Bytes root_crl = Crl(*root_key_, *root_, {});
  Bytes intermediate_crl = Crl(*intermediate_key_, *intermediate_, {});
  options_.crls_der = {root_crl, intermediate_crl};
  Status status = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_TRUE(status.ok()) << status.ToString();

  options_.crls_der = {root_crl, Crl(*intermediate_key_, *intermediate_, {leaf_->serial_number()})};
  Status revoked = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_EQ(revoked.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(revoked.message().find("revoked"), std::string::npos) << revoked.message();

  options_.crls_der = {Crl(*root_key_, *root_, {intermediate_->serial_number()}), intermediate_crl};
  EXPECT_EQ(VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_).code(),
            StatusCode::kUnauthenticated);

  // A CRL is required for every issuer once CRLs are given.
  options_.crls_der = {root_crl};
  Status missing = VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_);
  EXPECT_EQ(missing.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(missing.message().find("CRL"), std::string::npos) << missing.message();

  options_.crls_der = {Bytes{1, 2, 3}};
  EXPECT_EQ(VerifyCertificateChain(*leaf_, {*intermediate_}, {*root_}, options_).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ChainTest, PemChainParses) {
  std::string pem = leaf_->ToPem() + intermediate_->ToPem() + root_->ToPem();
  auto chain = Certificate::ChainFromPem(pem);
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[1].subject(), "CN=Test Intermediate CA");
  // A damaged middle block is an error, not a silently shorter chain.
  std::string damaged =
      leaf_->ToPem() + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE(Certificate::ChainFromPem(damaged).ok());
}

std::string ReadTestdata(const std::string& relative) {
  std::ifstream in(testing::TestdataDir() + "/" + relative, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open testdata " << relative;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Real AMD SEV-SNP chain: VCEK (P-384) <- ASK <- ARK (RSA-PSS), from go-sev-guest's test data.
TEST(RealChainTest, SevSnpVcekChain) {
  std::string vcek_der = ReadTestdata("attestation/sev-snp/vcek.testcer");
  auto vcek = Certificate::FromDer(AsBytes(vcek_der));
  ASSERT_TRUE(vcek.ok()) << vcek.status().ToString();
  auto ask_ark = Certificate::ChainFromPem(ReadTestdata("attestation/sev-snp/milan.testcer"));
  ASSERT_TRUE(ask_ark.ok()) << ask_ark.status().ToString();
  ASSERT_EQ(ask_ark->size(), 2u);
  EXPECT_NE(vcek->subject().find("CN=SEV-VCEK"), std::string::npos) << vcek->subject();
  EXPECT_EQ(vcek->public_key()->scheme(), SignatureScheme::kEcdsaP384Sha384);

  ChainVerifyOptions options;
  options.verification_time = Clock::from_time_t(1704067200);  // 2024-01-01
  Status status = VerifyCertificateChain(*vcek, {(*ask_ark)[0]}, {(*ask_ark)[1]}, options);
  EXPECT_TRUE(status.ok()) << status.ToString();
  options.verification_time = Clock::from_time_t(1893456000);  // 2030: VCEK expired
  EXPECT_EQ(VerifyCertificateChain(*vcek, {(*ask_ark)[0]}, {(*ask_ark)[1]}, options).code(),
            StatusCode::kUnauthenticated);
}

// Real Intel TDX PCK chain, taken from the PEM certification data inside the quote, checked
// against Intel's root and PCK CRLs at a time when both CRLs were current.
TEST(RealChainTest, TdxPckChainWithCrls) {
  std::string quote = ReadTestdata("attestation/tdx/tdx_prod_quote_SPR_E4.dat");
  size_t begin = quote.find("-----BEGIN CERTIFICATE-----");
  ASSERT_NE(begin, std::string::npos);
  auto chain = Certificate::ChainFromPem(std::string_view(quote).substr(begin));
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  ASSERT_EQ(chain->size(), 3u);  // PCK, PCK Platform CA, Intel SGX Root CA
  EXPECT_NE((*chain)[2].subject().find("Intel SGX Root CA"), std::string::npos);

  ChainVerifyOptions options;
  options.verification_time = Clock::from_time_t(1686787200);  // 2023-06-15
  Status plain = VerifyCertificateChain((*chain)[0], {(*chain)[1]}, {(*chain)[2]}, options);
  EXPECT_TRUE(plain.ok()) << plain.ToString();

  std::string root_crl = ReadTestdata("attestation/tdx/rootcrl.der");
  std::string pck_crl = ReadTestdata("attestation/tdx/pckcrl");
  options.crls_der = {ToBytes(root_crl), ToBytes(pck_crl)};
  Status with_crls = VerifyCertificateChain((*chain)[0], {(*chain)[1]}, {(*chain)[2]}, options);
  EXPECT_TRUE(with_crls.ok()) << with_crls.ToString();

  // A stale CRL (past its nextUpdate, 2023-07-08) is refused.
  options.verification_time = Clock::from_time_t(1690848000);  // 2023-08-01
  Status stale = VerifyCertificateChain((*chain)[0], {(*chain)[1]}, {(*chain)[2]}, options);
  EXPECT_EQ(stale.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(stale.message().find("CRL has expired"), std::string::npos) << stale.message();
  options.verification_time = Clock::from_time_t(1686787200);

  // The PCK CRL alone does not cover the Platform CA: refused once CRLs are in play.
  options.crls_der = {ToBytes(pck_crl)};
  EXPECT_EQ(VerifyCertificateChain((*chain)[0], {(*chain)[1]}, {(*chain)[2]}, options).code(),
            StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace chiron::crypto
