#include "shared/attest/snp/snp_cert_table.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/strict_pem.h"
#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::snp {
namespace {

using testing::ReadTestFile;

struct RealCertificates {
  Bytes vcek, ask, ark;
};

// AMD's VCEK (DER) and Milan ASK + ARK (PEM) from ../shared/testdata.
RealCertificates LoadReal() {
  RealCertificates real;
  real.vcek = ReadTestFile("sev-snp/vcek.testcer");
  auto chain = DecodeStrictPemCertificates(ReadTestFile("sev-snp/milan.testcer"));
  EXPECT_TRUE(chain.ok() && chain->size() == 2);
  if (chain.ok() && chain->size() == 2) {
    real.ask = (*chain)[0];
    real.ark = (*chain)[1];
  }
  return real;
}

void SetU32Le(Bytes& blob, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) blob[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(SnpCertTableTest, RoundTripsTheRealCertificatesAndPinsTheGuidBytes) {
  RealCertificates real = LoadReal();
  auto blob = BuildSnpCertTable(
      {{kSnpVcekGuid, real.vcek}, {kSnpAskGuid, real.ask}, {kSnpArkGuid, real.ark}});
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  // The wire bytes of the VCEK GUID are those of its text, in order (AMD's tools: uuid_parse).
  EXPECT_EQ(HexEncode(ByteSpan(*blob).first(16)), "63da758de6644564adc5f4b93be8accd");
  blob->resize(blob->size() + 4096 - blob->size() % 4096, 0);  // a host's page-sized buffer
  auto table = ParseSnpCertTable(*blob);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(table->vcek, real.vcek);
  EXPECT_EQ(table->ask, real.ask);
  EXPECT_EQ(table->ark, real.ark);
  EXPECT_FALSE(table->vlek.has_value());
  EXPECT_TRUE(table->other_guids.empty());
}

TEST(SnpCertTableTest, AcceptsPemEntriesAndKeepsUnknownGuids) {
  RealCertificates real = LoadReal();
  // The ASK as PEM: the first block of AMD's Milan chain text.
  std::string milan = ToString(ReadTestFile("sev-snp/milan.testcer"));
  Bytes ask_pem = ToBytes(milan.substr(0, milan.find("-----END CERTIFICATE-----") + 26));
  auto blob = BuildSnpCertTable({{kSnpVcekGuid, real.vcek},
                                 {kSnpAskGuid, ask_pem},
                                 {"01234567-89ab-cdef-0123-456789abcdef", ToBytes("other")}});
  ASSERT_TRUE(blob.ok());
  auto table = ParseSnpCertTable(*blob);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(table->ask, real.ask);
  EXPECT_EQ(table->other_guids, std::vector<std::string>{"01234567-89ab-cdef-0123-456789abcdef"});
  // Two certificates in one PEM entry: refused.
  blob = BuildSnpCertTable({{kSnpAskGuid, ReadTestFile("sev-snp/milan.testcer")}});
  auto two = ParseSnpCertTable(*blob);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("one per entry"), std::string::npos);
}

TEST(SnpCertTableTest, MalformedTablesAreRefusedWithTheEntryAndProblem) {
  RealCertificates real = LoadReal();
  const Bytes good = *BuildSnpCertTable({{kSnpVcekGuid, real.vcek}, {kSnpAskGuid, real.ask}});
  auto refused = [](const Bytes& blob, const std::string& words) {
    auto table = ParseSnpCertTable(blob);
    ASSERT_FALSE(table.ok()) << "accepted; expected: " << words;
    EXPECT_EQ(table.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find(words), std::string::npos)
        << table.status().message();
  };
  refused({}, "without the all-zero terminator");
  refused(Bytes(good.begin(), good.begin() + 2 * kSnpCertTableEntrySize + 10),
          "without the all-zero terminator");
  Bytes past_end = good;
  SetU32Le(past_end, 16, static_cast<uint32_t>(good.size()));  // VCEK offset at the very end
  refused(past_end, "outside the");
  Bytes into_table = good;
  SetU32Le(into_table, 16, 8);  // VCEK "inside" the table itself
  refused(into_table, "outside the");
  Bytes overflow = good;
  SetU32Le(overflow, 20, 0xFFFFFFF0u);  // offset + length wraps a 32-bit sum
  refused(overflow, "outside the");
  Bytes empty_entry = good;
  SetU32Le(empty_entry, 20, 0);
  refused(empty_entry, "length 0");
  Bytes twice = good;
  std::copy(good.begin(), good.begin() + 16, twice.begin() + kSnpCertTableEntrySize);
  refused(twice, "appears twice");
  Bytes bad_terminator = good;
  bad_terminator[2 * kSnpCertTableEntrySize + 16] = 1;
  refused(bad_terminator, "terminator");
  Bytes many;
  for (size_t i = 0; i <= kSnpCertTableMaxEntries + 1; ++i) {
    Bytes guid(16, static_cast<uint8_t>(i + 1));
    Append(many, guid);
    AppendU32Le(many, 0);
    AppendU32Le(many, 1);
  }
  refused(many, "entries without the all-zero terminator");
}

// Every byte of the table part flipped: either refused, or the change shows in what is parsed
// (a certificate moved, cut, or under another name); never a silently identical result from
// different bytes. The certificates' own bytes are judged by the chain check, not here.
TEST(SnpCertTableTest, EveryTableByteFlippedIsRefusedOrChangesTheResult) {
  RealCertificates real = LoadReal();
  const Bytes good = *BuildSnpCertTable({{kSnpVcekGuid, real.vcek}, {kSnpAskGuid, real.ask}});
  const auto original = ParseSnpCertTable(good);
  ASSERT_TRUE(original.ok());
  for (size_t i = 0; i < 3 * kSnpCertTableEntrySize; ++i) {
    Bytes flipped = good;
    flipped[i] ^= 0x01;
    auto table = ParseSnpCertTable(flipped);
    if (!table.ok()) continue;
    bool same = table->vcek == original->vcek && table->ask == original->ask &&
                table->other_guids == original->other_guids;
    EXPECT_FALSE(same) << "byte " << i << " changed and nothing noticed";
  }
}

}  // namespace
}  // namespace chiron::attest::snp
