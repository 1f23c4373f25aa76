#include "shared/audit/chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace chiron::audit {
namespace {

using ::testing::HasSubstr;

constexpr char kAlice[] = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
constexpr char kBob[] = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

std::vector<AuditRecord> MakeChain(const std::string& principal, int count) {
  std::vector<AuditRecord> chain;
  std::optional<AuditRecord> previous;
  for (int i = 0; i < count; ++i) {
    Result<AuditRecord> record =
        MakeNextAuditRecord(previous, 1700000000 + i, principal,
                            i % 2 == 0 ? "dataset.upload" : "model.predict",
                            "subject-" + std::to_string(i));
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    chain.push_back(*record);
    previous = *record;
  }
  return chain;
}

AuditHead HeadOf(const AuditRecord& r) { return {r.sequence, r.hash}; }

TEST(AuditChainTest, FreshChainVerifies) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 10);
  EXPECT_EQ(chain[0].sequence, 1u);
  EXPECT_EQ(chain[0].previous_hash, Bytes(kAuditHashSize, 0));
  EXPECT_EQ(chain[9].sequence, 10u);
  EXPECT_TRUE(VerifyAuditChain(chain, std::nullopt, kAlice).ok());
  EXPECT_TRUE(VerifyAuditChain({}, std::nullopt).ok());
  EXPECT_EQ(ChainHead(chain, std::nullopt), HeadOf(chain[9]));
}

TEST(AuditChainTest, HashCoversEveryField) {
  AuditRecord base = MakeChain(kAlice, 2)[1];
  std::vector<AuditRecord> variants(7, base);
  variants[0].sequence++;
  variants[1].time_unix++;
  variants[2].principal_id = kBob;
  variants[3].event = "dataset.delete";
  variants[4].subject += "x";
  variants[5].previous_hash[31] ^= 1;
  variants[6].subject = "";
  for (const AuditRecord& v : variants) EXPECT_NE(ComputeAuditHash(v), base.hash);
}

TEST(AuditChainTest, LengthPrefixesPreventFieldShifting) {
  AuditRecord a = MakeChain(kAlice, 1)[0];
  AuditRecord b = a;
  a.event = "ab";
  a.subject = "c";
  b.event = "a";
  b.subject = "bc";
  EXPECT_NE(CanonicalAuditEncoding(a), CanonicalAuditEncoding(b));
}

TEST(AuditChainTest, DetectsAlteredRecord) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 6);
  chain[3].subject = "something else";
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("audit record 4: hash does not match"));
}

TEST(AuditChainTest, DetectsAlteredRecordWithRecomputedHash) {
  // An attacker who recomputes the altered record's hash breaks the link to the next record.
  std::vector<AuditRecord> chain = MakeChain(kAlice, 6);
  chain[3].event = "dataset.keep";
  chain[3].hash = ComputeAuditHash(chain[3]);
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("audit record 5: previous_hash does not match record 4"));
}

TEST(AuditChainTest, DetectsRemovedRecord) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 6);
  chain.erase(chain.begin() + 2);
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              HasSubstr("expected record 3 after record 2 but got record 4 (records 3..3"));
}

TEST(AuditChainTest, DetectsRemovedFirstRecord) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 4);
  chain.erase(chain.begin());
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("starts at record 2"));
}

TEST(AuditChainTest, DetectsRemovedAndRenumberedRecord) {
  // Removing a record and renumbering the rest (recomputing their hashes) still breaks the link.
  std::vector<AuditRecord> chain = MakeChain(kAlice, 5);
  chain.erase(chain.begin() + 1);
  for (size_t i = 1; i < chain.size(); ++i) {
    chain[i].sequence = i + 1;
    chain[i].hash = ComputeAuditHash(chain[i]);
  }
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("audit record 2: previous_hash does not match record 1"));
}

TEST(AuditChainTest, DetectsReorderedRecords) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 6);
  std::swap(chain[2], chain[3]);
  Status status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("expected record 3 after record 2 but got record 4"));

  // Swapping contents but keeping sequence numbers in place is caught by the hash.
  chain = MakeChain(kAlice, 6);
  std::swap(chain[2].subject, chain[3].subject);
  status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("audit record 3: hash does not match"));

  chain = MakeChain(kAlice, 6);
  chain.push_back(chain[1]);  // a replayed record
  status = VerifyAuditChain(chain, std::nullopt, kAlice);
  EXPECT_THAT(status.message(), HasSubstr("audit record 2 follows record 6"));
}

TEST(AuditChainTest, DetectsTruncationGivenPreviousHead) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 8);
  AuditHead seen = HeadOf(chain[6]);
  EXPECT_TRUE(VerifyAuditChain(chain, seen, kAlice).ok());
  std::vector<AuditRecord> truncated(chain.begin(), chain.begin() + 5);
  EXPECT_TRUE(VerifyAuditChain(truncated, std::nullopt, kAlice).ok())
      << "a truncated chain is self-consistent; only a remembered head reveals it";
  Status status = VerifyAuditChain(truncated, seen, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("ends at record 5 but record 7 was seen before"));
  status = VerifyAuditChain({}, seen, kAlice);
  EXPECT_THAT(status.message(), HasSubstr("empty but record 7 was seen before"));
}

TEST(AuditChainTest, DetectsRewrittenHistoryGivenPreviousHead) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 6);
  AuditHead seen = HeadOf(chain[3]);
  // A whole new chain of the same length (e.g. the log rebuilt without an embarrassing record).
  std::vector<AuditRecord> forged = MakeChain(kAlice, 6);
  forged[0].subject = "forged";
  std::optional<AuditRecord> previous;
  for (AuditRecord& r : forged) {
    if (previous) r.previous_hash = previous->hash;
    r.hash = ComputeAuditHash(r);
    previous = r;
  }
  ASSERT_TRUE(VerifyAuditChain(forged, std::nullopt, kAlice).ok());
  Status status = VerifyAuditChain(forged, seen, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("audit record 4: hash differs from the one seen before"));
}

TEST(AuditChainTest, IncrementalVerificationFromSeenHead) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 8);
  AuditHead seen = HeadOf(chain[4]);
  std::vector<AuditRecord> tail(chain.begin() + 5, chain.end());
  EXPECT_TRUE(VerifyAuditChain(tail, seen, kAlice).ok());
  EXPECT_EQ(ChainHead(tail, seen), HeadOf(chain[7]));
  // Records from any other point are refused: a server could otherwise drop the first ones.
  std::vector<AuditRecord> overlap(chain.begin() + 3, chain.end());
  EXPECT_EQ(VerifyAuditChain(overlap, seen, kAlice).code(), StatusCode::kFailedPrecondition);
  // A tail whose first record does not link to the seen head is rejected.
  tail[0].previous_hash[0] ^= 0x80;
  tail[0].hash = ComputeAuditHash(tail[0]);
  Status status = VerifyAuditChain(tail, seen, kAlice);
  EXPECT_THAT(status.message(),
              HasSubstr("audit record 6: previous_hash does not match the previously seen "
                        "record 5"));
  // A tail that skips past the seen head has no anchor.
  std::vector<AuditRecord> skipping(chain.begin() + 6, chain.end());
  EXPECT_EQ(VerifyAuditChain(skipping, seen, kAlice).code(), StatusCode::kFailedPrecondition);
}

TEST(AuditChainTest, DetectsRecordFromAnotherPrincipal) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 3);
  std::vector<AuditRecord> bob = MakeChain(kBob, 3);
  EXPECT_THAT(VerifyAuditChain(bob, std::nullopt, kAlice).message(),
              HasSubstr("audit record 1 belongs to principal"));
  chain[2] = bob[2];
  EXPECT_EQ(VerifyAuditChain(chain, std::nullopt).code(), StatusCode::kDataLoss);
  EXPECT_FALSE(MakeNextAuditRecord(bob[2], 0, kAlice, "x", "").ok());
}

TEST(AuditChainTest, ValidatesFields) {
  EXPECT_FALSE(ValidateAuditFields("", "dataset.upload", "").ok());
  EXPECT_FALSE(ValidateAuditFields(std::string(129, 'a'), "dataset.upload", "").ok());
  EXPECT_FALSE(ValidateAuditFields(kAlice, "", "").ok());
  EXPECT_FALSE(ValidateAuditFields(kAlice, "Dataset Upload", "").ok());
  EXPECT_FALSE(ValidateAuditFields(kAlice, "dataset.upload", "line\nbreak").ok());
  EXPECT_FALSE(ValidateAuditFields(kAlice, "dataset.upload", std::string(513, 'x')).ok());
  EXPECT_TRUE(ValidateAuditFields(kAlice, "policy.change", "model m1: budget 100").ok());
}

TEST(AuditChainTest, EncodeDecodeRoundTripAndHostileBytes) {
  std::vector<AuditRecord> chain = MakeChain(kAlice, 3);
  for (const AuditRecord& r : chain) {
    Bytes encoded = EncodeAuditRecord(r);
    Result<AuditRecord> decoded = DecodeAuditRecord(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, r);
    // Every strict prefix is refused with a message naming a field.
    for (size_t n = 0; n < encoded.size(); ++n) {
      Result<AuditRecord> cut = DecodeAuditRecord(ByteSpan(encoded).first(n));
      EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument) << n;
    }
    Bytes longer = encoded;
    longer.push_back(0);
    EXPECT_THAT(DecodeAuditRecord(longer).status().message(), HasSubstr("trailing"));
  }
  Bytes huge_subject = EncodeAuditRecord(chain[0]);
  // subject length field sits after magic(4) version(2) seq(8) time(8) principal(4+64) event(4+14)
  size_t subject_length_offset = 4 + 2 + 8 + 8 + 4 + 64 + 4 + 14;
  huge_subject[subject_length_offset + 3] = 0x7f;
  EXPECT_THAT(DecodeAuditRecord(huge_subject).status().message(),
              HasSubstr("subject is 2130706441 bytes"));
}

TEST(AuditChainTest, RandomMutationsAreAlwaysDetected) {
  std::mt19937_64 rng(1234);
  std::vector<AuditRecord> chain = MakeChain(kAlice, 12);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<AuditRecord> bad = chain;
    AuditRecord& r = bad[rng() % bad.size()];
    switch (rng() % 5) {
      case 0: r.time_unix ^= int64_t{1} << (rng() % 40); break;
      case 1: r.subject.push_back('!'); break;
      case 2: r.hash[rng() % kAuditHashSize] ^= uint8_t(1u << (rng() % 8)); break;
      case 3: r.previous_hash[rng() % kAuditHashSize] ^= uint8_t(1u << (rng() % 8)); break;
      case 4: bad.erase(bad.begin() + static_cast<long>(rng() % (bad.size() - 1)));
    }
    EXPECT_FALSE(VerifyAuditChain(bad, HeadOf(chain.back()), kAlice).ok()) << trial;
  }
}

}  // namespace
}  // namespace chiron::audit
