#include "shared/crypto/aes_gcm.h"

#include <gtest/gtest.h>

#include "shared/crypto/aes_gcm_internal.h"
#include "shared/crypto/random.h"
#include "shared/crypto/test_util.h"

namespace chiron::crypto {
namespace {

using testing::Hex;

// NIST GCM test case 16 (AES-256, 60-byte plaintext, 20-byte AAD) from the GCM spec.
TEST(AesGcmTest, KnownAnswer) {
  Bytes key = Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes iv = Hex("cafebabefacedbaddecaf888");
  Bytes aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  Bytes plaintext =
      Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  auto sealed = AesGcmSealDetached(key, iv, aad, plaintext);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(HexEncode(sealed->ciphertext),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
  EXPECT_EQ(HexEncode(sealed->tag), "76fc6ece0f4e1768cddf8853bb2d551b");
  auto opened = AesGcmOpenDetached(key, iv, aad, sealed->ciphertext, sealed->tag);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ToString(opened->span()), ToString(plaintext));
}

TEST(AesGcmTest, SealOpenRoundTripAndTamperDetection) {
  Bytes key = *RandomBytes(32);
  Bytes plaintext = ToBytes("dataset chunk");
  auto sealed = AesGcmSeal(key, AsBytes("aad"), plaintext);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kGcmNonceSize + plaintext.size() + kGcmTagSize);
  auto opened = AesGcmOpen(key, AsBytes("aad"), *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ToString(opened->span()), "dataset chunk");

  for (size_t i = 0; i < sealed->size(); ++i) {
    Bytes tampered = *sealed;
    tampered[i] ^= 0x80;
    auto result = AesGcmOpen(key, AsBytes("aad"), tampered);
    ASSERT_FALSE(result.ok()) << "byte " << i;
    EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(result.status().message(), "authentication failed");
  }
  EXPECT_EQ(AesGcmOpen(key, AsBytes("other"), *sealed).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AesGcmOpen(*RandomBytes(32), AsBytes("aad"), *sealed).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(AesGcmOpen(key, AsBytes("aad"), ByteSpan(*sealed).first(27)).status().code(),
            StatusCode::kDataLoss);
}

TEST(AesGcmTest, ErrorsNameTheProblem) {
  auto bad_key = AesGcmSealDetached(Bytes(7), Bytes(12), {}, {});
  EXPECT_EQ(bad_key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_key.status().message(), "AES-GCM key must be 16, 24 or 32 bytes, got 7");
  EXPECT_EQ(AesGcmSealDetached(Bytes(16), {}, {}, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmSealDetached(Bytes(16), Bytes(12), {}, {}, 3).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmOpenDetached(Bytes(16), Bytes(12), {}, {}, Bytes(17)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmSeal(Bytes(16), {}, {}).status().code(), StatusCode::kInvalidArgument);
  // Empty plaintext and truncated tags are legal for the detached API.
  auto sealed = AesGcmSealDetached(Bytes(16), Bytes(12), {}, {}, 8);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->tag.size(), 8u);
  EXPECT_TRUE(AesGcmOpenDetached(Bytes(16), Bytes(12), {}, {}, sealed->tag).ok());
}

// The portable path for IVs over 128 bytes must agree with OpenSSL where both apply.
TEST(AesGcmTest, LongIvPathMatchesOpenssl) {
  for (size_t key_size : {16u, 24u, 32u}) {
    for (size_t iv_size : {1u, 12u, 16u, 100u, 128u}) {
      for (size_t size : {0u, 1u, 16u, 33u, 4096u, 10000u}) {
        Bytes key = *RandomBytes(key_size), iv = *RandomBytes(iv_size);
        Bytes aad = *RandomBytes(size % 50), plaintext = *RandomBytes(size);
        auto expected = AesGcmSealDetached(key, iv, aad, plaintext);
        ASSERT_TRUE(expected.ok());
        Bytes ciphertext(size);
        uint8_t tag[16];
        ASSERT_TRUE(
            internal::AesGcmLongIv(key, iv, aad, plaintext, true, ciphertext.data(), tag).ok());
        EXPECT_EQ(ciphertext, expected->ciphertext) << key_size << "/" << iv_size << "/" << size;
        EXPECT_EQ(Bytes(tag, tag + 16), expected->tag);
      }
    }
  }
  // Round trip and tamper detection through the public API with a 300-byte IV.
  Bytes key = *RandomBytes(32), iv = *RandomBytes(300);
  auto sealed = AesGcmSealDetached(key, iv, AsBytes("a"), AsBytes("long iv"), 12);
  ASSERT_TRUE(sealed.ok());
  auto opened = AesGcmOpenDetached(key, iv, AsBytes("a"), sealed->ciphertext, sealed->tag);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(ToString(opened->span()), "long iv");
  Bytes bad_tag = sealed->tag;
  bad_tag[0] ^= 1;
  EXPECT_EQ(AesGcmOpenDetached(key, iv, AsBytes("a"), sealed->ciphertext, bad_tag).status().code(),
            StatusCode::kDataLoss);
}

}  // namespace
}  // namespace chiron::crypto
