#include "shared/base/bytes.h"

#include <gtest/gtest.h>

#include "shared/base/secret.h"

namespace chiron {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes data = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(data), "0001abff");
  auto decoded = HexDecode("0001ABff");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, data);
}

TEST(BytesTest, HexRejectsOddLengthAndBadCharacters) {
  EXPECT_EQ(HexDecode("abc").status().code(), StatusCode::kInvalidArgument);
  auto bad = HexDecode("zz");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("non-hex"), std::string::npos);
}

TEST(BytesTest, ConstantTimeEqual) {
  Bytes a = {1, 2, 3};
  Bytes b = {1, 2, 3};
  Bytes c = {1, 2, 4};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, Bytes{1, 2}));
}

TEST(BytesTest, ReaderReadsLittleAndBigEndianAndRefusesOverrun) {
  Bytes data;
  AppendU16Le(data, 0x0102);
  AppendU32Le(data, 0x03040506);
  AppendU64Be(data, 0x0708090a0b0c0d0eULL);
  ByteReader r(data);
  EXPECT_EQ(*r.U16Le("a"), 0x0102);
  EXPECT_EQ(*r.U32Le("b"), 0x03040506u);
  EXPECT_EQ(*r.U64Be("c"), 0x0708090a0b0c0d0eULL);
  EXPECT_TRUE(r.empty());
  auto overrun = r.U8("signature length");
  ASSERT_FALSE(overrun.ok());
  EXPECT_NE(overrun.status().message().find("signature length"), std::string::npos);
}

TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  SecretBytes a(Bytes{9, 9, 9});
  SecretBytes b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.data()[2], 9);
}

}  // namespace
}  // namespace chiron
