#include "shared/attest/snp/snp_report.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::snp {
namespace {

using testing::ReadTestFile;

constexpr char kReport[] = "sev-snp/attestation.bin";

TEST(SnpReportTest, ParsesTheRealReport) {
  Result<SnpReport> r = ParseSnpReport(ReadTestFile(kReport));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(r->policy, 0xb0000u);
  EXPECT_TRUE(r->debug_allowed());
  EXPECT_EQ(r->vmpl, 0u);
  EXPECT_EQ(r->signing_key(), 0u);
  EXPECT_EQ(HexEncode(r->measurement),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a6"
            "08eb0cf2e4872b01");
  EXPECT_EQ(HexEncode(ByteSpan(r->report_data).first(5)), "0102030405");
  EXPECT_EQ(r->reported_tcb.bootloader, 2);
  EXPECT_EQ(r->reported_tcb.tee, 0);
  EXPECT_EQ(r->reported_tcb.snp, 5);
  EXPECT_EQ(r->reported_tcb.microcode, 0x44);
  EXPECT_EQ(r->reported_tcb, r->committed_tcb);
  EXPECT_EQ(r->current_major, 1);
  EXPECT_EQ(r->current_minor, 49);
  EXPECT_EQ(r->signed_bytes.size(), kSnpSignedSize);
  // r is stored little-endian at 0x2A0: its first byte is the big-endian value's last byte.
  EXPECT_EQ(r->signature_r[47], 0x4f);
}

TEST(SnpReportTest, RejectsWrongSizes) {
  Bytes raw = ReadTestFile(kReport);
  for (size_t size = 0; size < raw.size(); ++size) {
    ASSERT_FALSE(ParseSnpReport(ByteSpan(raw).first(size)).ok()) << size;
  }
  Bytes bigger = raw;
  bigger.push_back(0);
  EXPECT_NE(ParseSnpReport(bigger).status().message().find("exactly 1184 bytes"),
            std::string::npos);
  bigger.resize(4000, 0);  // the size of an extended-report buffer
  EXPECT_FALSE(ParseSnpReport(bigger).ok());
}

TEST(SnpReportTest, RejectsWrongVersionAndAlgorithm) {
  Bytes raw = ReadTestFile(kReport);
  for (uint8_t version : {0, 1, 4, 0xff}) {
    Bytes changed = raw;
    changed[0] = version;
    EXPECT_NE(ParseSnpReport(changed).status().message().find("unsupported report version"),
              std::string::npos);
  }
  Bytes v3 = raw;
  v3[0] = 3;
  EXPECT_TRUE(ParseSnpReport(v3).ok());  // layout-compatible; its signature would fail
  Bytes algo = raw;
  algo[0x34] = 2;
  EXPECT_NE(ParseSnpReport(algo).status().message().find("signature algorithm"),
            std::string::npos);
}

TEST(SnpReportTest, RequiresZeroSignaturePadding) {
  Bytes raw = ReadTestFile(kReport);
  for (size_t offset : {0x2a0 + 48, 0x2a0 + 71, 0x2e8 + 48, 0x330, 0x49f}) {
    Bytes changed = raw;
    changed[offset] = 1;
    EXPECT_FALSE(ParseSnpReport(changed).ok()) << offset;
  }
}

}  // namespace
}  // namespace chiron::attest::snp
