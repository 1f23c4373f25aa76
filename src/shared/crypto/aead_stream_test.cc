#include "shared/crypto/aead_stream.h"

#include <gtest/gtest.h>

#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/random.h"

namespace chiron::crypto {
namespace {

struct Stream {
  Bytes nonce_prefix;
  std::vector<Bytes> chunks;  // sealed
};

Stream Seal(ByteSpan key, ByteSpan stream_aad, const std::vector<Bytes>& plaintexts) {
  auto sealer = AeadStreamSealer::Create(key, stream_aad);
  EXPECT_TRUE(sealer.ok()) << sealer.status().ToString();
  Stream stream;
  stream.nonce_prefix = sealer->nonce_prefix();
  for (size_t i = 0; i < plaintexts.size(); ++i) {
    auto chunk = sealer->SealChunk(plaintexts[i], i + 1 == plaintexts.size());
    EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
    stream.chunks.push_back(*chunk);
  }
  return stream;
}

void ExpectDataLoss(const Result<SecretBytes>& result, const std::string& what) {
  ASSERT_FALSE(result.ok()) << what << " was accepted";
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss) << what;
  EXPECT_EQ(result.status().message(), "authentication failed") << what;
}

class AeadStreamTest : public ::testing::Test {
 protected:
  Bytes key_ = *RandomBytes(32);
  Bytes aad_ = ToBytes("dataset 42 header");
  std::vector<Bytes> plaintexts_ = {ToBytes("chunk zero"), Bytes(), Bytes(70000, 7),
                                    ToBytes("the end")};
};

TEST_F(AeadStreamTest, RoundTrip) {
  Stream stream = Seal(key_, aad_, plaintexts_);
  ASSERT_EQ(stream.chunks.size(), 4u);
  EXPECT_EQ(stream.nonce_prefix.size(), kStreamNoncePrefixSize);
  auto opener = AeadStreamOpener::Create(key_, aad_, stream.nonce_prefix);
  ASSERT_TRUE(opener.ok());
  for (size_t i = 0; i < stream.chunks.size(); ++i) {
    EXPECT_EQ(stream.chunks[i].size(), plaintexts_[i].size() + kStreamTagSize);
    auto opened = opener->OpenChunk(i, stream.chunks[i], i == 3);
    ASSERT_TRUE(opened.ok()) << i << ": " << opened.status().ToString();
    EXPECT_EQ(Bytes(opened->span().begin(), opened->span().end()), plaintexts_[i]);
  }
  // Random access in any order works too.
  EXPECT_TRUE(opener->OpenChunk(2, stream.chunks[2], false).ok());
  EXPECT_TRUE(opener->OpenChunk(0, stream.chunks[0], false).ok());
}

// Pins the byte layout of docs/formats/aead-stream.md against the one-shot AES-GCM.
TEST_F(AeadStreamTest, MatchesDocumentedLayout) {
  Bytes prefix = {1, 2, 3, 4, 5, 6, 7};
  auto sealer = AeadStreamSealer::CreateWithNoncePrefixForTesting(key_, aad_, prefix);
  ASSERT_TRUE(sealer.ok());
  ASSERT_TRUE(sealer->SealChunk(ToBytes("a"), false).ok());
  auto chunk = sealer->SealChunk(ToBytes("bc"), true);
  ASSERT_TRUE(chunk.ok());

  Bytes nonce = prefix;
  AppendU32Be(nonce, 1);
  nonce.push_back(1);
  Bytes aad = ToBytes("chiron aead-stream v1");
  AppendU64Be(aad, aad_.size());
  Append(aad, aad_);
  AppendU32Be(aad, 1);
  aad.push_back(1);
  auto expected = AesGcmSealDetached(key_, nonce, aad, ToBytes("bc"));
  ASSERT_TRUE(expected.ok());
  Bytes expected_chunk = expected->ciphertext;
  Append(expected_chunk, expected->tag);
  EXPECT_EQ(*chunk, expected_chunk);
}

TEST_F(AeadStreamTest, ReorderIsRejected) {
  Stream stream = Seal(key_, aad_, plaintexts_);
  auto opener = *AeadStreamOpener::Create(key_, aad_, stream.nonce_prefix);
  ExpectDataLoss(opener.OpenChunk(0, stream.chunks[1], false), "chunk 1 at index 0");
  ExpectDataLoss(opener.OpenChunk(1, stream.chunks[0], false), "chunk 0 at index 1");
  ExpectDataLoss(opener.OpenChunk(3, stream.chunks[2], true), "chunk 2 at index 3");
}

TEST_F(AeadStreamTest, TruncationIsRejected) {
  Stream stream = Seal(key_, aad_, plaintexts_);
  auto opener = *AeadStreamOpener::Create(key_, aad_, stream.nonce_prefix);
  // Last chunk dropped: the reader treats chunk 2 as the final one and must fail.
  ExpectDataLoss(opener.OpenChunk(2, stream.chunks[2], true), "non-final chunk marked last");
  ExpectDataLoss(opener.OpenChunk(0, stream.chunks[0], true), "first chunk marked last");
  // And the real last chunk cannot pass as a middle one (extension after it).
  ExpectDataLoss(opener.OpenChunk(3, stream.chunks[3], false), "last chunk marked non-final");
  // A chunk cut short.
  ExpectDataLoss(opener.OpenChunk(2, ByteSpan(stream.chunks[2]).first(100), false), "cut chunk");
  auto tiny = opener.OpenChunk(0, Bytes(15), false);
  EXPECT_EQ(tiny.status().code(), StatusCode::kDataLoss);
}

TEST_F(AeadStreamTest, SplicingBetweenStreamsIsRejected) {
  Stream a = Seal(key_, aad_, plaintexts_);
  Stream b = Seal(key_, ToBytes("dataset 43 header"), plaintexts_);
  auto opener_a = *AeadStreamOpener::Create(key_, aad_, a.nonce_prefix);
  // Different stream_aad: even with a's nonce prefix, b's chunks fail.
  ExpectDataLoss(opener_a.OpenChunk(1, b.chunks[1], false), "chunk from another stream_aad");
  auto b_aad_a_prefix =
      *AeadStreamOpener::Create(key_, ToBytes("dataset 43 header"), a.nonce_prefix);
  ExpectDataLoss(b_aad_a_prefix.OpenChunk(1, b.chunks[1], false), "wrong nonce prefix");

  // Same stream_aad, different nonce prefix (two uploads of one dataset).
  Stream c = Seal(key_, aad_, plaintexts_);
  ASSERT_NE(a.nonce_prefix, c.nonce_prefix);
  ExpectDataLoss(opener_a.OpenChunk(1, c.chunks[1], false), "chunk from a second stream");
  ExpectDataLoss(opener_a.OpenChunk(3, c.chunks[3], true), "last chunk from a second stream");
}

TEST_F(AeadStreamTest, WrongKeyIsRejected) {
  Stream stream = Seal(key_, aad_, plaintexts_);
  auto opener = *AeadStreamOpener::Create(*RandomBytes(32), aad_, stream.nonce_prefix);
  ExpectDataLoss(opener.OpenChunk(0, stream.chunks[0], false), "wrong key");
  Bytes flipped = stream.chunks[0];
  flipped[0] ^= 1;
  auto right = *AeadStreamOpener::Create(key_, aad_, stream.nonce_prefix);
  ExpectDataLoss(right.OpenChunk(0, flipped, false), "flipped bit");
}

TEST_F(AeadStreamTest, SealerEnforcesItsContract) {
  auto sealer = *AeadStreamSealer::Create(key_, aad_);
  EXPECT_EQ(sealer.next_index(), 0u);
  ASSERT_TRUE(sealer.SealChunk(ToBytes("x"), false).ok());
  EXPECT_EQ(sealer.next_index(), 1u);
  Bytes small(3);
  EXPECT_EQ(sealer.SealChunkInto(ToBytes("x"), false, small).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(sealer.SealChunk(ToBytes("y"), true).ok());
  EXPECT_EQ(sealer.SealChunk(ToBytes("z"), true).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(AeadStreamSealer::Create(Bytes(16), aad_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadStreamOpener::Create(key_, aad_, Bytes(6)).status().code(),
            StatusCode::kInvalidArgument);
  auto opener = *AeadStreamOpener::Create(key_, aad_, sealer.nonce_prefix());
  EXPECT_EQ(opener.OpenChunk(kStreamMaxChunks, Bytes(16), true).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(AeadStreamTest, IntoVariantsMatchAndZeroOnFailure) {
  auto sealer = *AeadStreamSealer::Create(key_, aad_);
  Bytes plaintext(1000, 0x5a);
  Bytes sealed(plaintext.size() + kStreamTagSize);
  ASSERT_TRUE(sealer.SealChunkInto(plaintext, true, sealed).ok());
  auto opener = *AeadStreamOpener::Create(key_, aad_, sealer.nonce_prefix());
  Bytes out(plaintext.size());
  ASSERT_TRUE(opener.OpenChunkInto(0, sealed, true, out).ok());
  EXPECT_EQ(out, plaintext);
  sealed[5] ^= 1;
  Status status = opener.OpenChunkInto(0, sealed, true, out);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(out, Bytes(plaintext.size(), 0));
}

}  // namespace
}  // namespace chiron::crypto
