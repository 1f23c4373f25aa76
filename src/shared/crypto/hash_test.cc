#include "shared/crypto/hash.h"

#include <gtest/gtest.h>

#include "shared/crypto/hkdf.h"
#include "shared/crypto/random.h"
#include "shared/crypto/test_util.h"

namespace chiron::crypto {
namespace {

using testing::Hex;

// FIPS 180-4 example "abc" and the two-block message (NIST CSRC examples).
TEST(HashTest, Sha2KnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha384(AsBytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(HexEncode(Sha512(AsBytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexEncode(Sha256({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha256), 32u);
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha384), 48u);
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha512), 64u);
}

TEST(HashTest, IncrementalMatchesOneShot) {
  Bytes data = *RandomBytes(100000);
  for (HashAlgorithm algorithm :
       {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
    Hasher hasher(algorithm);
    size_t offset = 0;
    for (size_t piece : {0u, 1u, 63u, 64u, 65u, 999u}) {
      hasher.Update(ByteSpan(data).subspan(offset, piece));
      offset += piece;
    }
    hasher.Update(ByteSpan(data).subspan(offset));
    EXPECT_EQ(hasher.Finish(), Digest(algorithm, data));
  }
}

// RFC 4231 test cases 1, 2 and 6 (a key longer than the block size).
TEST(HashTest, HmacSha256KnownAnswers) {
  EXPECT_EQ(HexEncode(*HmacSha256(Bytes(20, 0x0b), AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(*HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(
      HexEncode(*HmacSha256(Bytes(131, 0xaa),
                            AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // An empty key and message are legal HMAC inputs.
  EXPECT_EQ(HexEncode(*HmacSha256({}, {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// RFC 5869 test case 3: no salt, no info.
TEST(HkdfTest, EmptySaltAndInfo) {
  auto okm = Hkdf(HashAlgorithm::kSha256, Bytes(22, 0x0b), {}, {}, 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexEncode(okm->span()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(HkdfTest, RejectsOversizedOutputNamingTheLimit) {
  auto okm = Hkdf(HashAlgorithm::kSha256, Bytes(16, 1), {}, {}, 255 * 32 + 1);
  ASSERT_FALSE(okm.ok());
  EXPECT_EQ(okm.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(okm.status().message().find("8160"), std::string::npos) << okm.status().message();
  EXPECT_TRUE(Hkdf(HashAlgorithm::kSha512, Bytes(16, 1), {}, {}, 255 * 64).ok());
  EXPECT_EQ(Hkdf(HashAlgorithm::kSha256, Bytes(16, 1), {}, {}, 0)->size(), 0u);
}

TEST(RandomTest, ProducesDistinctBytes) {
  auto a = RandomBytes(32);
  auto b = RandomSecret(32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(ConstantTimeEqual(*a, b->span()));
  EXPECT_EQ(RandomBytes(0)->size(), 0u);
}

}  // namespace
}  // namespace chiron::crypto
