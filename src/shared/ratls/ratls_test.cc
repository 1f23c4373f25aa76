// The RA-TLS certificate's evidence extension: its OID and CMW encoding byte for byte, the
// strict decoder, certificates of older releases (retired OID) refused with a message that says
// so, and a whole certificate verifying end to end with sim evidence.
#include "shared/ratls/ratls.h"

#include <gtest/gtest.h>

#include "shared/attest/evidence.h"
#include "shared/attest/verifier.h"
#include "shared/ratls/evidence_extension.h"

namespace chiron::ratls {
namespace {

bool Contains(const Status& status, std::string_view text) {
  return status.message().find(text) != std::string::npos;
}

class RatlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
    ASSERT_TRUE(root.ok());
    root_ = std::make_unique<crypto::PrivateKey>(std::move(*root));
    auto root_public = root_->public_key().ToRaw();
    ASSERT_TRUE(root_public.ok());
    policy_.allowed_platforms = {attest::PlatformId::kSim};
    policy_.allowed_measurements["sim"] = {measurement_};
    policy_.trusted_sim_roots = {*root_public};
  }

  EvidenceProducer Producer() {
    return [this](ByteSpan report_data) {
      return attest::CreateSimEvidence(*root_, measurement_, report_data, false, 1);
    };
  }

  attest::Verifier MakeVerifier() {
    auto verifier = attest::Verifier::Create(policy_);
    EXPECT_TRUE(verifier.ok()) << verifier.status().message();
    return std::move(*verifier);
  }

  // A self-signed certificate of a fresh key with `extensions`.
  crypto::Certificate CertificateWith(std::vector<crypto::CertificateExtension> extensions) {
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    EXPECT_TRUE(key.ok());
    crypto::CertificateRequest request;
    request.common_name = "chirond";
    request.extensions = std::move(extensions);
    auto certificate = crypto::Certificate::CreateSelfSigned(*key, request);
    EXPECT_TRUE(certificate.ok());
    return std::move(*certificate);
  }

  std::unique_ptr<crypto::PrivateKey> root_;
  Bytes measurement_ = Bytes(attest::kMeasurementSize, 0x5a);
  attest::Policy policy_;
};

TEST(EvidenceExtensionTest, EncodingIsTheDocumentedCmwRecord) {
  const Bytes evidence(300, 0xab);
  auto encoded = EncodeEvidenceExtension(evidence);
  ASSERT_TRUE(encoded.ok());
  // 83 | 78 1f "application/vnd.chiron.evidence" | 59 01 2c <300 bytes> | 04
  Bytes expected = {0x83, 0x78, 0x1f};
  Append(expected, AsBytes("application/vnd.chiron.evidence"));
  Append(expected, Bytes{0x59, 0x01, 0x2c});
  Append(expected, evidence);
  expected.push_back(0x04);
  EXPECT_EQ(*encoded, expected);
  EXPECT_EQ(std::string(kEvidenceExtensionOid), "2.23.133.5.4.9");

  auto decoded = DecodeEvidenceExtension(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, evidence);

  // Short values use the one-byte length forms.
  auto small = EncodeEvidenceExtension(Bytes(5, 0x01));
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)[3 + 31], 0x45);  // bytes(5)
  auto medium = EncodeEvidenceExtension(Bytes(200, 0x01));
  ASSERT_TRUE(medium.ok());
  EXPECT_EQ((*medium)[3 + 31], 0x58);  // bytes, one-byte length
  EXPECT_EQ((*medium)[3 + 32], 200);
  EXPECT_TRUE(DecodeEvidenceExtension(*small).ok());
  EXPECT_TRUE(DecodeEvidenceExtension(*medium).ok());

  EXPECT_FALSE(EncodeEvidenceExtension({}).ok());
  EXPECT_FALSE(EncodeEvidenceExtension(Bytes(kMaxEvidenceExtensionSize + 1, 0)).ok());
}

TEST(EvidenceExtensionTest, DecoderAcceptsOnlyTheDocumentedEncoding) {
  auto good = EncodeEvidenceExtension(Bytes(300, 0xab));
  ASSERT_TRUE(good.ok());
  auto refuses = [](const Bytes& value, std::string_view reason) {
    auto decoded = DecodeEvidenceExtension(value);
    ASSERT_FALSE(decoded.ok()) << reason;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(decoded.status(), reason)) << decoded.status().message();
    EXPECT_TRUE(Contains(decoded.status(), "evidence extension: ")) << decoded.status().message();
  };
  // The bare evidence envelope (how older releases filled the extension).
  refuses(Bytes{'C', 'H', 'E', 'V', 1, 0, 1, 0}, "not a CBOR CMW record");
  refuses({}, "not a CBOR CMW record");
  // Another type: the mismatch is named, the peer's string is not echoed.
  Bytes other = *good;
  other[3 + 16] = 'X';  // "application/vnd.Xhiron..."
  auto other_decoded = DecodeEvidenceExtension(other);
  ASSERT_FALSE(other_decoded.ok());
  EXPECT_TRUE(Contains(other_decoded.status(), "type is not Chiron evidence"));
  EXPECT_FALSE(Contains(other_decoded.status(), "Xhiron"));
  // An indicator other than Evidence.
  Bytes results = *good;
  results.back() = 0x08;
  refuses(results, "indicator is not Evidence");
  // Trailing bytes.
  Bytes trailing = *good;
  trailing.push_back(0x00);
  refuses(trailing, "bytes after the CMW record");
  // Truncated value.
  Bytes truncated(good->begin(), good->end() - 10);
  refuses(truncated, "truncated");
  // A length not in shortest form: 5 bytes written with a two-byte length.
  Bytes longform = {0x82, 0x78, 0x1f};
  Append(longform, AsBytes(kEvidenceMediaType));
  Append(longform, Bytes{0x59, 0x00, 0x05, 1, 2, 3, 4, 5});
  refuses(longform, "shortest form");
  // Indefinite-length byte string.
  Bytes indefinite = {0x82, 0x78, 0x1f};
  Append(indefinite, AsBytes(kEvidenceMediaType));
  Append(indefinite, Bytes{0x5f, 0x41, 0x01, 0xff});
  refuses(indefinite, "indefinite");
  // A value above the limit (length declared, bytes absent).
  Bytes huge = {0x82, 0x78, 0x1f};
  Append(huge, AsBytes(kEvidenceMediaType));
  Append(huge, Bytes{0x5a, 0x00, 0x10, 0x00, 0x01});
  refuses(huge, "larger than allowed");
  // The two-item record (no indicator) is a valid CMW record too.
  Bytes two = {0x82, 0x78, 0x1f};
  Append(two, AsBytes(kEvidenceMediaType));
  Append(two, Bytes{0x43, 7, 8, 9});
  auto decoded = DecodeEvidenceExtension(two);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, (Bytes{7, 8, 9}));
}

TEST_F(RatlsTest, AttestedCertificateCarriesTheCmwAndVerifies) {
  auto identity = CreateAttestedIdentity(Producer(), "chirond");
  ASSERT_TRUE(identity.ok()) << identity.status().message();
  auto extension = identity->certificate.FindExtension(kEvidenceExtensionOid);
  ASSERT_TRUE(extension.ok());
  EXPECT_FALSE(extension->critical);
  auto evidence = CertificateEvidence(identity->certificate);
  ASSERT_TRUE(evidence.ok()) << evidence.status().message();
  EXPECT_EQ(*EncodeEvidenceExtension(*evidence), extension->value);
  EXPECT_EQ(ToString(ByteSpan(*evidence).first(4)), "CHEV");
  EXPECT_FALSE(identity->certificate.FindExtension(kRetiredEvidenceExtensionOid).ok());

  auto claims = VerifyAttestedCertificate(identity->certificate, MakeVerifier());
  ASSERT_TRUE(claims.ok()) << claims.status().message();
  EXPECT_EQ(claims->report_data, CertificateReportData(identity->spki_der));
}

TEST_F(RatlsTest, CertificateOfAnOlderReleaseIsRefusedSayingSo) {
  // What releases before the CMW encoding made: the bare envelope under the UUID OID. The
  // evidence itself is genuine (it binds this very key), and still it is refused, with the reason.
  auto identity = CreateAttestedIdentity(Producer(), "chirond");
  ASSERT_TRUE(identity.ok());
  auto evidence = CertificateEvidence(identity->certificate);
  ASSERT_TRUE(evidence.ok());
  auto old = CertificateWith({{kRetiredEvidenceExtensionOid, false, *evidence}});
  auto claims = VerifyAttestedCertificate(old, MakeVerifier());
  ASSERT_FALSE(claims.ok());
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(claims.status(), "runs an older Chiron release"))
      << claims.status().message();
  EXPECT_TRUE(Contains(claims.status(), "Upgrade that chirond")) << claims.status().message();
  EXPECT_TRUE(Contains(claims.status(), kRetiredEvidenceExtensionOid));
}

TEST_F(RatlsTest, MalformedOrMissingExtensionIsRefused) {
  auto none = CertificateWith({});
  auto missing = VerifyAttestedCertificate(none, MakeVerifier());
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status(), "no Chiron evidence extension"));

  auto bare = CertificateWith({{kEvidenceExtensionOid, false, Bytes{'C', 'H', 'E', 'V'}}});
  auto refused = VerifyAttestedCertificate(bare, MakeVerifier());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(refused.status(), "certificate evidence extension: is not a CBOR CMW"))
      << refused.status().message();
}

TEST_F(RatlsTest, EveryFlippedByteOfTheExtensionIsRefused) {
  auto identity = CreateAttestedIdentity(Producer(), "chirond");
  ASSERT_TRUE(identity.ok());
  auto extension = identity->certificate.FindExtension(kEvidenceExtensionOid);
  ASSERT_TRUE(extension.ok());
  attest::Verifier verifier = MakeVerifier();
  Bytes report_data = CertificateReportData(identity->spki_der);
  for (size_t i = 0; i < extension->value.size(); ++i) {
    Bytes tampered = extension->value;
    tampered[i] ^= 0x01;
    auto evidence = DecodeEvidenceExtension(tampered);
    if (!evidence.ok()) continue;  // refused by the decoder
    EXPECT_FALSE(verifier.Verify(*evidence, report_data).ok()) << "byte " << i;
  }
}

}  // namespace
}  // namespace chiron::ratls
