#include "runtime/store/sealed.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/store/store_test_util.h"

namespace chiron::store {
namespace {

using ::testing::HasSubstr;
using testing::SeededBytes;

TEST(SealedTest, RoundTripAndLayout) {
  Bytes key = SeededBytes(1, 32);
  Bytes plain = ToBytes("the display name");
  Result<Bytes> sealed = Seal(key, "principals.display_name", "abc", plain);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), plain.size() + kSealedOverhead);
  EXPECT_EQ(ToString(ByteSpan(*sealed).first(4)), "CHSB");
  EXPECT_EQ((*sealed)[4], 1);  // version 1, little-endian
  Result<SecretBytes> opened = Unseal(key, "principals.display_name", "abc", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(ToString(opened->span()), "the display name");
  // Fresh nonce per seal.
  EXPECT_NE(*Seal(key, "p", "r", plain), *Seal(key, "p", "r", plain));
  // Empty plaintexts are fine.
  Result<Bytes> empty = Seal(key, "p", "", {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(Unseal(key, "p", "", *empty).ok());
}

TEST(SealedTest, BindsKeyPurposeAndRow) {
  Bytes key = SeededBytes(1, 32);
  Bytes sealed = *Seal(key, "datasets.name", "owner/ds1", ToBytes("x"));
  Status wrong_row = Unseal(key, "datasets.name", "owner/ds2", sealed).status();
  EXPECT_EQ(wrong_row.code(), StatusCode::kDataLoss);
  EXPECT_THAT(wrong_row.message(), HasSubstr("datasets.name of owner/ds2 failed authentication"));
  EXPECT_EQ(Unseal(key, "datasets.header", "owner/ds1", sealed).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(Unseal(SeededBytes(2, 32), "datasets.name", "owner/ds1", sealed).status().code(),
            StatusCode::kDataLoss);
  // Length prefixes: moving a character between purpose and row changes the AAD.
  Bytes a = *Seal(key, "ab", "c", ToBytes("x"));
  EXPECT_FALSE(Unseal(key, "a", "bc", a).ok());
}

TEST(SealedTest, EveryByteIsAuthenticated) {
  Bytes key = SeededBytes(3, 32);
  Bytes sealed = *Seal(key, "blob.chunk", "d/0", SeededBytes(4, 40));
  for (size_t i = 0; i < sealed.size(); ++i) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    Status status = Unseal(key, "blob.chunk", "d/0", bad).status();
    EXPECT_FALSE(status.ok()) << i;
    // Header bytes fail structurally (InvalidArgument), the rest authentication (DataLoss).
    EXPECT_EQ(status.code(), i < kSealedHeaderSize ? StatusCode::kInvalidArgument
                                                   : StatusCode::kDataLoss)
        << i;
  }
  for (size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(Unseal(key, "blob.chunk", "d/0", ByteSpan(sealed).first(n)).ok()) << n;
  }
}

TEST(SealedTest, ParseRejectsMalformedStructure) {
  EXPECT_THAT(ParseSealed(Bytes(35, 0)).status().message(), HasSubstr("shorter than the 36-byte"));
  Bytes sealed = *Seal(SeededBytes(1, 32), "p", "r", ToBytes("hello"));
  Bytes bad = sealed;
  bad[0] = 'X';
  EXPECT_THAT(ParseSealed(bad).status().message(), HasSubstr("wrong magic"));
  bad = sealed;
  bad[4] = 2;
  EXPECT_THAT(ParseSealed(bad).status().message(), HasSubstr("unsupported version 2"));
  bad = sealed;
  bad[6] = 1;
  EXPECT_THAT(ParseSealed(bad).status().message(), HasSubstr("reserved field"));
  Result<SealedView> view = ParseSealed(sealed);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->ciphertext.size(), 5u);
  EXPECT_EQ(view->nonce.size(), kSealedNonceSize);
  EXPECT_EQ(view->tag.size(), kSealedTagSize);
  EXPECT_FALSE(SealedAad("", "r", view->header).ok());
  EXPECT_FALSE(SealedAad("p", std::string(kMaxRowSize + 1, 'r'), view->header).ok());
}

TEST(SealedTest, DerivedKeysAreIndependent) {
  Bytes root = SeededBytes(9, 32);
  Result<SealingKeys> keys = SealingKeys::Derive(root);
  ASSERT_TRUE(keys.ok());
  std::vector<Bytes> all = {root,
                            Bytes(keys->catalog.span().begin(), keys->catalog.span().end()),
                            Bytes(keys->blob.span().begin(), keys->blob.span().end()),
                            Bytes(keys->audit.span().begin(), keys->audit.span().end()),
                            Bytes(keys->index.span().begin(), keys->index.span().end()),
                            Bytes(keys->check.span().begin(), keys->check.span().end())};
  Bytes data_key = SeededBytes(10, 32);
  SecretBytes other = *DeriveItemKey(keys->blob.span(), data_key, "model", "ds2");
  all.push_back(Bytes(other.span().begin(), other.span().end()));
  SecretBytes item = *DeriveItemKey(keys->blob.span(), data_key, "model", "ds1");
  all.push_back(Bytes(item.span().begin(), item.span().end()));
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].size(), 32u);
    for (size_t j = i + 1; j < all.size(); ++j) EXPECT_NE(all[i], all[j]) << i << " " << j;
  }
  // Deterministic.
  EXPECT_EQ(SealingKeys::Derive(root)->catalog.span().size(), 32u);
  EXPECT_TRUE(ConstantTimeEqual(SealingKeys::Derive(root)->catalog.span(), keys->catalog.span()));
  EXPECT_FALSE(SealingKeys::Derive(Bytes(16, 1)).ok());
}

}  // namespace
}  // namespace chiron::store
