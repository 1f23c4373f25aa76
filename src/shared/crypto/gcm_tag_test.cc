// GcmTagChecker against decryption: every tag AES-GCM produces verifies, every altered one does
// not, for AAD and message lengths around block boundaries; strided decryption gives exactly the
// plaintext's bytes. (wycheproof_test.cc runs it over the Project Wycheproof vectors too.)
#include "shared/crypto/gcm_tag.h"

#include <gtest/gtest.h>

#include <random>

#include "shared/crypto/aes_gcm.h"

namespace chiron::crypto {
namespace {

Bytes RandomBytesFrom(std::mt19937& rng, size_t size) {
  Bytes out(size);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

TEST(GcmTagCheckerTest, AgreesWithDecryptionAcrossLengths) {
  std::mt19937 rng(1234);
  Bytes key = RandomBytesFrom(rng, 32);
  auto checker = GcmTagChecker::Create(key);
  ASSERT_TRUE(checker.ok());
  int checked = 0;
  for (size_t aad_size : {0, 1, 15, 16, 17, 43, 64}) {
    for (size_t size : {0, 1, 15, 16, 17, 255, 256, 4097, 70000}) {
      Bytes iv = RandomBytesFrom(rng, 12), aad = RandomBytesFrom(rng, aad_size);
      Bytes message = RandomBytesFrom(rng, size);
      auto sealed = AesGcmSealDetached(key, iv, aad, message, 16);
      ASSERT_TRUE(sealed.ok());
      SCOPED_TRACE("aad " + std::to_string(aad_size) + ", message " + std::to_string(size));
      EXPECT_TRUE(checker->Verify(iv, aad, sealed->ciphertext, sealed->tag).ok());
      // Altered anywhere: tag, ciphertext, aad, iv; or the ciphertext cut by one byte.
      Bytes tag = sealed->tag;
      tag[rng() % 16] ^= 0x01;
      EXPECT_EQ(checker->Verify(iv, aad, sealed->ciphertext, tag).code(), StatusCode::kDataLoss);
      if (size > 0) {
        Bytes ct = sealed->ciphertext;
        ct[rng() % size] ^= 0x80;
        EXPECT_EQ(checker->Verify(iv, aad, ct, sealed->tag).code(), StatusCode::kDataLoss);
        Bytes cut(sealed->ciphertext.begin(), sealed->ciphertext.end() - 1);
        EXPECT_EQ(checker->Verify(iv, aad, cut, sealed->tag).code(), StatusCode::kDataLoss);
      }
      if (aad_size > 0) {
        Bytes other = aad;
        other[rng() % aad_size] ^= 0x02;
        EXPECT_EQ(checker->Verify(iv, other, sealed->ciphertext, sealed->tag).code(),
                  StatusCode::kDataLoss);
      }
      Bytes other_iv = iv;
      other_iv[11] ^= 0x01;
      EXPECT_EQ(checker->Verify(other_iv, aad, sealed->ciphertext, sealed->tag).code(),
                StatusCode::kDataLoss);
      // Bytes moved from the AAD into the message keep the GHASH input but not the lengths.
      if (aad_size >= 16) {
        Bytes shorter_aad(aad.begin(), aad.end() - 16);
        Bytes longer_ct(aad.end() - 16, aad.end());
        Append(longer_ct, sealed->ciphertext);
        EXPECT_EQ(checker->Verify(iv, shorter_aad, longer_ct, sealed->tag).code(),
                  StatusCode::kDataLoss);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 63);
  // Another key does not verify.
  auto other = GcmTagChecker::Create(RandomBytesFrom(rng, 32));
  ASSERT_TRUE(other.ok());
  Bytes iv = RandomBytesFrom(rng, 12), message = RandomBytesFrom(rng, 1000);
  auto sealed = AesGcmSealDetached(key, iv, {}, message, 16);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(other->Verify(iv, {}, sealed->ciphertext, sealed->tag).code(), StatusCode::kDataLoss);
  EXPECT_EQ(checker->Verify(Bytes(16, 0), {}, sealed->ciphertext, sealed->tag).code(),
            StatusCode::kInvalidArgument);
}

TEST(GcmTagCheckerTest, StridedDecryptionReturnsThePlaintextFields) {
  std::mt19937 rng(99);
  Bytes key = RandomBytesFrom(rng, 32);
  auto checker = GcmTagChecker::Create(key);
  ASSERT_TRUE(checker.ok());
  for (auto [stride, width, records] :
       std::vector<std::tuple<size_t, size_t, size_t>>{{785, 1, 1336},  // Fashion-MNIST, u8
                                                       {3074, 2, 100},   // CIFAR-like, u16
                                                       {9, 1, 1000},
                                                       {16, 2, 70},
                                                       {31, 2, 40},
                                                       {1, 1, 33}}) {
    SCOPED_TRACE("stride " + std::to_string(stride) + " width " + std::to_string(width));
    Bytes iv = RandomBytesFrom(rng, 12), message = RandomBytesFrom(rng, stride * records);
    auto sealed = AesGcmSealDetached(key, iv, {}, message, 16);
    ASSERT_TRUE(sealed.ok());
    Bytes fields(records * width);
    ASSERT_TRUE(checker->DecryptStrided(iv, sealed->ciphertext, stride, width, fields).ok());
    for (size_t k = 0; k < records; ++k) {
      for (size_t j = 0; j < width; ++j) {
        ASSERT_EQ(fields[k * width + j], message[k * stride + j]) << "record " << k;
      }
    }
    Bytes wrong_size(fields.size() + 1);
    EXPECT_EQ(checker->DecryptStrided(iv, sealed->ciphertext, stride, width, wrong_size).code(),
              StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace chiron::crypto
