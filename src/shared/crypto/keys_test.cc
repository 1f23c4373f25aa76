#include "shared/crypto/keys.h"

#include <gtest/gtest.h>

#include "shared/crypto/hash.h"
#include "shared/crypto/x25519.h"

namespace chiron::crypto {
namespace {

class KeysTest : public ::testing::TestWithParam<SignatureScheme> {};

TEST_P(KeysTest, GenerateSignVerify) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->scheme(), GetParam());
  Bytes message = ToBytes("attested hello");
  auto signature = key->Sign(message);
  ASSERT_TRUE(signature.ok()) << signature.status().ToString();
  PublicKey public_key = key->public_key();
  EXPECT_EQ(public_key.scheme(), GetParam());
  EXPECT_TRUE(public_key.Verify(message, *signature).ok());

  Bytes other = ToBytes("attested hellp");
  Status bad = public_key.Verify(other, *signature);
  EXPECT_EQ(bad.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(bad.message(), "signature verification failed");
  Bytes flipped = *signature;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(public_key.Verify(message, flipped).code(), StatusCode::kUnauthenticated);
  // Hostile encodings: empty, truncated, garbage.
  EXPECT_EQ(public_key.Verify(message, {}).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(public_key.Verify(message, ByteSpan(*signature).first(signature->size() - 1)).code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(public_key.Verify(message, Bytes(200, 0x30)).code(), StatusCode::kUnauthenticated);

  // Another key's signature does not verify.
  auto other_key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(other_key.ok());
  EXPECT_EQ(other_key->public_key().Verify(message, *signature).code(),
            StatusCode::kUnauthenticated);
  // Empty messages are signable.
  auto empty_signature = key->Sign({});
  ASSERT_TRUE(empty_signature.ok());
  EXPECT_TRUE(public_key.Verify({}, *empty_signature).ok());
}

TEST_P(KeysTest, Pkcs8RoundTrip) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  auto pkcs8 = key->ToPkcs8Der();
  ASSERT_TRUE(pkcs8.ok()) << pkcs8.status().ToString();
  auto restored = PrivateKey::FromPkcs8Der(pkcs8->span());
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->scheme(), GetParam());
  EXPECT_EQ(*restored->public_key().ToSpkiDer(), *key->public_key().ToSpkiDer());
  Bytes message = ToBytes("m");
  EXPECT_TRUE(key->public_key().Verify(message, *restored->Sign(message)).ok());

  // Trailing garbage and truncation are refused.
  Bytes longer(pkcs8->span().begin(), pkcs8->span().end());
  longer.push_back(0);
  EXPECT_EQ(PrivateKey::FromPkcs8Der(longer).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PrivateKey::FromPkcs8Der(pkcs8->span().first(pkcs8->size() - 1)).ok());
  EXPECT_FALSE(PrivateKey::FromPkcs8Der({}).ok());
}

TEST_P(KeysTest, SpkiAndRawRoundTrip) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  PublicKey public_key = key->public_key();
  auto spki = public_key.ToSpkiDer();
  ASSERT_TRUE(spki.ok());
  auto parsed = PublicKey::FromSpkiDer(*spki);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->scheme(), GetParam());
  EXPECT_EQ(*parsed->ToSpkiDer(), *spki);

  auto raw = public_key.ToRaw();
  ASSERT_TRUE(raw.ok());
  size_t expected_raw =
      GetParam() == SignatureScheme::kEd25519 ? 32 : 1 + 2 * EcdsaScalarSize(GetParam());
  EXPECT_EQ(raw->size(), expected_raw);
  auto from_raw = PublicKey::FromRaw(GetParam(), *raw);
  ASSERT_TRUE(from_raw.ok()) << from_raw.status().ToString();
  EXPECT_EQ(*from_raw->ToSpkiDer(), *spki);

  Bytes message = ToBytes("raw");
  EXPECT_TRUE(from_raw->Verify(message, *key->Sign(message)).ok());

  Bytes trailing = *spki;
  trailing.push_back(0);
  EXPECT_EQ(PublicKey::FromSpkiDer(trailing).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PublicKey::FromSpkiDer(ByteSpan(*spki).first(spki->size() - 1)).ok());
  EXPECT_FALSE(PublicKey::FromRaw(GetParam(), ByteSpan(*raw).first(raw->size() - 1)).ok());
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, KeysTest,
                         ::testing::Values(SignatureScheme::kEd25519,
                                           SignatureScheme::kEcdsaP256Sha256,
                                           SignatureScheme::kEcdsaP384Sha384),
                         [](const auto& info) {
                           std::string name(SignatureSchemeName(info.param));
                           std::erase(name, '-');
                           return name;
                         });

// Splits a DER ECDSA signature into fixed-size r and s (test helper, trusted input).
void DerToRaw(const Bytes& der, size_t size, Bytes& r, Bytes& s) {
  size_t offset = 2;  // SEQUENCE, short length (our signatures are < 128 bytes)
  for (Bytes* out : {&r, &s}) {
    size_t length = der[offset + 1];
    ByteSpan value(der.data() + offset + 2, length);
    while (!value.empty() && value[0] == 0) value = value.subspan(1);
    out->assign(size - value.size(), 0);
    out->insert(out->end(), value.begin(), value.end());
    offset += 2 + length;
  }
}

TEST(EcdsaRawTest, VerifyEcdsaRawAcceptsP1363AndRejectsBadSizes) {
  for (SignatureScheme scheme :
       {SignatureScheme::kEcdsaP256Sha256, SignatureScheme::kEcdsaP384Sha384}) {
    auto key = PrivateKey::Generate(scheme);
    ASSERT_TRUE(key.ok());
    Bytes message = ToBytes("quote body");
    Bytes der = *key->Sign(message);
    size_t size = EcdsaScalarSize(scheme);
    Bytes r, s;
    DerToRaw(der, size, r, s);
    PublicKey public_key = key->public_key();
    EXPECT_TRUE(public_key.VerifyEcdsaRaw(message, r, s).ok());
    EXPECT_EQ(*EcdsaRawToDer(r, s), der);
    Bytes bad_s = s;
    bad_s.back() ^= 1;
    EXPECT_EQ(public_key.VerifyEcdsaRaw(message, r, bad_s).code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(public_key.VerifyEcdsaRaw(message, ByteSpan(r).first(size - 1), s).code(),
              StatusCode::kUnauthenticated);
    EXPECT_EQ(public_key.VerifyEcdsaRaw(message, Bytes(size, 0), Bytes(size, 0)).code(),
              StatusCode::kUnauthenticated);
  }
  auto ed = PrivateKey::Generate(SignatureScheme::kEd25519);
  EXPECT_EQ(ed->public_key().VerifyEcdsaRaw({}, Bytes(32), Bytes(32)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(EcdsaRawToDer({}, {}).ok());
  EXPECT_FALSE(EcdsaRawToDer(Bytes(32, 1), Bytes(31, 1)).ok());
}

TEST(PublicKeyTest, RejectsPointsOffTheCurve) {
  Bytes point(65, 0);
  point[0] = 0x04;
  point[64] = 1;
  auto key = PublicKey::FromRaw(SignatureScheme::kEcdsaP256Sha256, point);
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PublicKey::FromRaw(SignatureScheme::kEd25519, Bytes(31)).ok());
  EXPECT_FALSE(PublicKey::FromSpkiDer(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}).ok());
}

TEST(X25519Test, AgreementAndErrors) {
  auto a = X25519Generate();
  auto b = X25519Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  auto ab = X25519(a->private_key.span(), b->public_key);
  auto ba = X25519(b->private_key.span(), a->public_key);
  ASSERT_TRUE(ab.ok() && ba.ok());
  EXPECT_TRUE(ConstantTimeEqual(ab->span(), ba->span()));
  EXPECT_EQ(*X25519PublicFromPrivate(a->private_key.span()), a->public_key);
  // The zero point is low order: the result would be all zeros.
  EXPECT_EQ(X25519(a->private_key.span(), Bytes(32, 0)).status().code(),
            StatusCode::kUnauthenticated);
  auto bad_size = X25519(a->private_key.span(), Bytes(31, 9));
  EXPECT_EQ(bad_size.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_size.status().message().find("got 31"), std::string::npos);
}

}  // namespace
}  // namespace chiron::crypto
