#include "shared/attest/evidence.h"

#include <gtest/gtest.h>

#include "shared/crypto/keys.h"

namespace chiron::attest {
namespace {

Bytes Filled(size_t n, uint8_t v) {
  return Bytes(n, v);
}

TEST(EvidenceTest, PlatformNamesRoundTrip) {
  for (PlatformId id : {PlatformId::kSim, PlatformId::kTdx, PlatformId::kSevSnp}) {
    Result<PlatformId> back = PlatformIdFromName(PlatformName(id));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(PlatformName(PlatformId::kSevSnp), "sev-snp");
  Result<PlatformId> bad = PlatformIdFromName("sgx");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown platform 'sgx'"), std::string::npos);
  EXPECT_FALSE(IsKnownPlatform(0));
  EXPECT_FALSE(IsKnownPlatform(4));
}

TEST(EvidenceTest, EnvelopeRoundTripAndExactLayout) {
  Evidence e{PlatformId::kTdx, Bytes{1, 2, 3}};
  Result<Bytes> wire = SerializeEvidence(e);
  ASSERT_TRUE(wire.ok()) << wire.status().ToString();
  const Bytes expected = {'C', 'H', 'E', 'V', 1, 0, 2, 0, 3, 0, 0, 0, 1, 2, 3};
  EXPECT_EQ(*wire, expected);
  Result<Evidence> back = ParseEvidence(*wire);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->platform, PlatformId::kTdx);
  EXPECT_EQ(back->payload, e.payload);
}

TEST(EvidenceTest, EnvelopeRejectsBadHeaders) {
  Bytes good = *SerializeEvidence({PlatformId::kSim, Bytes{9}});
  auto message = [](const Bytes& b) { return ParseEvidence(b).status().message(); };

  Bytes magic = good;
  magic[0] = 'X';
  EXPECT_NE(message(magic).find("bad magic"), std::string::npos);

  Bytes version = good;
  version[4] = 7;
  EXPECT_EQ(message(version), "evidence: unknown format version 7; this verifier reads version 1");

  Bytes platform = good;
  platform[6] = 9;
  EXPECT_NE(message(platform).find("unknown platform id 9"), std::string::npos);

  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_NE(message(trailing).find("1 unexpected trailing bytes"), std::string::npos);

  Bytes short_payload = good;
  short_payload.pop_back();
  EXPECT_NE(message(short_payload).find("truncated"), std::string::npos);

  EXPECT_NE(message(Bytes{'C', 'H'}).find("shorter than the 12-byte header"), std::string::npos);
  EXPECT_NE(message(Bytes{}).find("truncated"), std::string::npos);
}

TEST(EvidenceTest, EnvelopeSizeLimits) {
  Evidence max{PlatformId::kSim, Bytes(kMaxEvidenceSize - kEvidenceHeaderSize, 0)};
  Result<Bytes> wire = SerializeEvidence(max);
  ASSERT_TRUE(wire.ok());
  EXPECT_EQ(wire->size(), kMaxEvidenceSize);
  EXPECT_TRUE(ParseEvidence(*wire).ok());

  max.payload.push_back(0);
  EXPECT_FALSE(SerializeEvidence(max).ok());
  Bytes oversized = *wire;
  oversized.push_back(0);
  Result<Evidence> parsed = ParseEvidence(oversized);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "evidence: 65537 bytes exceeds the limit of 65536");
}

TEST(EvidenceTest, SimBodyRoundTripAndSignedMessage) {
  Result<crypto::PrivateKey> key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
  ASSERT_TRUE(key.ok());
  Result<Bytes> wire = CreateSimEvidence(*key, Filled(48, 0xaa), Filled(64, 0xbb), true, 7);
  ASSERT_TRUE(wire.ok()) << wire.status().ToString();
  EXPECT_EQ(wire->size(), kEvidenceHeaderSize + kSimBodySize);

  Result<Evidence> envelope = ParseEvidence(*wire);
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ(envelope->platform, PlatformId::kSim);
  Result<SimEvidenceBody> body = ParseSimBody(envelope->payload);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->measurement, Filled(48, 0xaa));
  EXPECT_EQ(body->report_data, Filled(64, 0xbb));
  EXPECT_TRUE(body->debug);
  EXPECT_EQ(body->svn, 7u);
  EXPECT_EQ(body->root_public_key, *key->public_key().ToRaw());

  // The signed message starts with the NUL-terminated domain separator and covers every field
  // before the signature.
  Result<Bytes> message = SimSignedMessage(*body);
  ASSERT_TRUE(message.ok());
  const std::string_view domain = kSimSignatureDomain;
  ASSERT_EQ(domain, "CHIRON-SIM-EVIDENCE-V1");
  ASSERT_EQ(message->size(), domain.size() + 1 + kSimBodySize - kSimSignatureSize);
  EXPECT_EQ(ToString(ByteSpan(*message).first(domain.size())), domain);
  EXPECT_EQ((*message)[domain.size()], 0);
  EXPECT_TRUE(key->public_key().Verify(*message, body->signature).ok());

  Result<Bytes> reserialized = SerializeSimBody(*body);
  ASSERT_TRUE(reserialized.ok());
  EXPECT_EQ(*reserialized, envelope->payload);
}

TEST(EvidenceTest, SimBodyRejectsMalformed) {
  Result<crypto::PrivateKey> key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
  ASSERT_TRUE(key.ok());
  Bytes payload =
      ParseEvidence(*CreateSimEvidence(*key, Filled(48, 1), Filled(64, 2), false, 0))->payload;

  Bytes longer = payload;
  longer.push_back(0);
  EXPECT_NE(ParseSimBody(longer).status().message().find("exactly 217 bytes"), std::string::npos);
  Bytes shorter(payload.begin(), payload.end() - 1);
  EXPECT_FALSE(ParseSimBody(shorter).ok());

  Bytes version = payload;
  version[0] = 2;
  EXPECT_EQ(ParseSimBody(version).status().message(),
            "sim evidence: unknown body version 2; this verifier reads version 1");

  Bytes platform = payload;
  platform[2] = 2;
  EXPECT_NE(ParseSimBody(platform).status().message().find("body names platform 2"),
            std::string::npos);

  Bytes flags = payload;
  flags[4 + 48 + 64] = 0x80;
  EXPECT_NE(ParseSimBody(flags).status().message().find("unknown flag bits 0x80"),
            std::string::npos);
}

TEST(EvidenceTest, CreateSimEvidenceChecksInputs) {
  Result<crypto::PrivateKey> ed = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEd25519);
  Result<crypto::PrivateKey> ec =
      crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  ASSERT_TRUE(ed.ok() && ec.ok());
  EXPECT_FALSE(CreateSimEvidence(*ec, Filled(48, 0), Filled(64, 0), false, 0).ok());
  EXPECT_NE(CreateSimEvidence(*ed, Filled(47, 0), Filled(64, 0), false, 0)
                .status()
                .message()
                .find("measurement must be 48 bytes, got 47"),
            std::string::npos);
  EXPECT_NE(CreateSimEvidence(*ed, Filled(48, 0), Filled(32, 0), false, 0)
                .status()
                .message()
                .find("report data must be 64 bytes, got 32"),
            std::string::npos);
}

TEST(EvidenceTest, TsmBodyRoundTrip) {
  TsmEvidenceBody body{"sev_guest", Bytes(1184, 0x11), Bytes{0x22, 0x33}};
  Result<Bytes> wire = SerializeTsmBody(body);
  ASSERT_TRUE(wire.ok());
  EXPECT_EQ(wire->size(), 1 + 9 + 4 + 1184 + 4 + 2);
  Result<TsmEvidenceBody> back = ParseTsmBody(PlatformId::kSevSnp, *wire);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->provider, "sev_guest");
  EXPECT_EQ(back->outblob, body.outblob);
  EXPECT_EQ(back->auxblob, body.auxblob);

  // An empty auxblob is fine.
  body.auxblob.clear();
  EXPECT_TRUE(ParseTsmBody(PlatformId::kSevSnp, *SerializeTsmBody(body)).ok());
}

TEST(EvidenceTest, TsmBodyRejectsMalformed) {
  Bytes good = *SerializeTsmBody({"tdx_guest", Bytes(100, 1), Bytes(10, 2)});
  // The provider must match the envelope's platform: a TDX quote labelled as SNP is refused.
  EXPECT_NE(ParseTsmBody(PlatformId::kSevSnp, good)
                .status()
                .message()
                .find("produces tdx evidence but the envelope says sev-snp"),
            std::string::npos);
  // Every truncation fails, with a message, never a crash.
  for (size_t n = 0; n < good.size(); ++n) {
    Result<TsmEvidenceBody> r = ParseTsmBody(PlatformId::kTdx, ByteSpan(good).first(n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("tsm evidence: ", 0), 0u) << r.status().message();
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_NE(ParseTsmBody(PlatformId::kTdx, trailing).status().message().find("trailing"),
            std::string::npos);
  EXPECT_TRUE(ParseTsmBody(PlatformId::kTdx, *SerializeTsmBody({"tdx_guest", Bytes{1}, {}})).ok());
  EXPECT_FALSE(SerializeTsmBody({"tdx_guest", Bytes{}, {}}).ok());
  EXPECT_FALSE(SerializeTsmBody({"tdx_guest", Bytes(kMaxEvidenceSize, 0), {}}).ok());
  Result<PlatformId> unknown = PlatformForTsmProvider("arm_cca_guest");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown configfs-tsm provider 'arm_cca_guest'"),
            std::string::npos);
}

}  // namespace
}  // namespace chiron::attest
