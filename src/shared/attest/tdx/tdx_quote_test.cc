#include "shared/attest/tdx/tdx_quote.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/strict_pem.h"
#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::tdx {
namespace {

using testing::ReadTestFile;

constexpr char kQuote[] = "tdx/tdx_prod_quote_SPR_E4.dat";
// Where Intel's sample quote's signature data ends; 39 bytes of test text follow.
constexpr size_t kQuoteEnd = 4935;

TEST(TdxQuoteTest, ParsesTheProductionQuote) {
  Bytes raw = ReadTestFile(kQuote);
  ASSERT_EQ(raw.size(), 4974u);
  Result<TdxQuote> quote = ParseTdxQuote(raw);
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  EXPECT_EQ(quote->header.version, 4);
  EXPECT_EQ(quote->header.tee_type, kTeeTypeTdx);
  EXPECT_EQ(HexEncode(quote->body.mr_td),
            "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc"
            "10d5e119d7215cbb");
  EXPECT_EQ(quote->body.td_attributes, 0x40000000u);
  EXPECT_FALSE(quote->body.debug());
  EXPECT_EQ(quote->body.xfam, 0x61ae7u);
  EXPECT_EQ(quote->body.tee_tcb_svn[0], 3);
  EXPECT_EQ(quote->body.tee_tcb_svn[2], 4);
  EXPECT_EQ(quote->signed_bytes.size(), kQuoteHeaderSize + kTdReportBodySize);
  EXPECT_EQ(HexEncode(quote->qe_auth_data),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(quote->qe_report.isv_prod_id, 2);
  EXPECT_EQ(quote->pck_chain_der.size(), 3u);
  EXPECT_EQ(quote->trailing_size, raw.size() - kQuoteEnd);
}

TEST(TdxQuoteTest, RejectsEveryTruncation) {
  Bytes raw = ReadTestFile(kQuote);
  for (size_t size = 0; size < kQuoteEnd; ++size) {
    Result<TdxQuote> quote = ParseTdxQuote(ByteSpan(raw).first(size));
    ASSERT_FALSE(quote.ok()) << "prefix of " << size << " bytes was accepted";
    EXPECT_EQ(quote.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(quote.status().message().rfind("tdx quote: ", 0), 0u) << quote.status().message();
  }
  EXPECT_TRUE(ParseTdxQuote(ByteSpan(raw).first(kQuoteEnd)).ok());
}

TEST(TdxQuoteTest, RejectsOversizedInput) {
  Bytes raw = ReadTestFile(kQuote);
  raw.resize(kMaxTdxQuoteSize + 1, 0);
  Result<TdxQuote> quote = ParseTdxQuote(raw);
  ASSERT_FALSE(quote.ok());
  EXPECT_NE(quote.status().message().find("limit"), std::string::npos);
}

TEST(TdxQuoteTest, RejectsWrongVersionKeyTypeAndTeeType) {
  Bytes raw = ReadTestFile(kQuote);
  Bytes v3 = raw;
  v3[0] = 3;
  EXPECT_EQ(ParseTdxQuote(v3).status().message(),
            "tdx quote: unsupported quote version 3; this verifier reads version 4");
  Bytes v5 = raw;
  v5[0] = 5;
  EXPECT_EQ(ParseTdxQuote(v5).status().message(),
            "tdx quote: quote version 5 (the TDX 1.5 layout, whose TD report body is typed and "
            "may be larger) is not supported; this verifier reads version 4 quotes");
  Bytes key_type = raw;
  key_type[2] = 3;
  EXPECT_NE(ParseTdxQuote(key_type).status().message().find("attestation key type 3"),
            std::string::npos);
  Bytes sgx = raw;
  sgx[4] = 0;  // TEE type 0: an SGX quote
  EXPECT_NE(ParseTdxQuote(sgx).status().message().find("not TDX"), std::string::npos);
}

// A version 5 quote as TDX 1.5 hosts return it: the version 4 header with version 5, then a
// body descriptor (type u16 = 2 for a TDX 1.0 body, size u32 = 584) before the same body.
Bytes VersionFiveQuote(const Bytes& v4) {
  Bytes v5(v4.begin(), v4.begin() + kQuoteHeaderSize);
  v5[0] = 5;
  AppendU16Le(v5, 2);
  AppendU32Le(v5, kTdReportBodySize);
  v5.insert(v5.end(), v4.begin() + kQuoteHeaderSize, v4.end());
  return v5;
}

TEST(TdxQuoteTest, RecognizesIntelQuotesByTheirHeaderEvenWhenItIsDamaged) {
  Bytes raw = ReadTestFile(kQuote);
  auto v4 = RecognizeIntelQuote(raw);
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(v4->tdx());
  EXPECT_EQ(DescribeIntelQuote(*v4), "Intel TDX quote (version 4)");
  auto v5 = RecognizeIntelQuote(VersionFiveQuote(raw));
  ASSERT_TRUE(v5.has_value());
  EXPECT_EQ(DescribeIntelQuote(*v5), "Intel TDX quote (version 5)");
  // Damaged version (the QE vendor id names Intel): still a TDX quote, version as written.
  Bytes damaged_version = raw;
  damaged_version[0] = 0x44;
  auto damaged = RecognizeIntelQuote(damaged_version);
  ASSERT_TRUE(damaged.has_value());
  EXPECT_EQ(DescribeIntelQuote(*damaged), "Intel TDX quote (version 68)");
  // Damaged QE vendor id, intact version/key/TEE type: recognized by those.
  Bytes damaged_vendor = raw;
  damaged_vendor[12] ^= 0xff;
  EXPECT_TRUE(RecognizeIntelQuote(damaged_vendor).has_value());
  // Damaged TEE type with Intel's vendor id.
  Bytes damaged_tee = raw;
  damaged_tee[4] = 0x02;
  auto tee = RecognizeIntelQuote(damaged_tee);
  ASSERT_TRUE(tee.has_value());
  EXPECT_EQ(DescribeIntelQuote(*tee), "Intel quote with TEE type 0x2 (version 4)");
  // An SGX quote (version 3, TEE type 0).
  Bytes sgx = raw;
  sgx[0] = 3;
  sgx[4] = 0;
  EXPECT_EQ(DescribeIntelQuote(*RecognizeIntelQuote(sgx)), "Intel SGX quote (version 3)");
  // Not quotes: a Chiron evidence envelope, zeros, a short buffer.
  Bytes envelope = {'C', 'H', 'E', 'V', 1, 0, 2, 0};
  envelope.resize(200, 0);
  EXPECT_FALSE(RecognizeIntelQuote(envelope).has_value());
  EXPECT_FALSE(RecognizeIntelQuote(Bytes(200, 0)).has_value());
  EXPECT_FALSE(RecognizeIntelQuote(Bytes(raw.begin(), raw.begin() + 47)).has_value());
}

TEST(TdxQuoteTest, RejectsLengthsThatDisagree) {
  Bytes raw = ReadTestFile(kQuote);
  Bytes bigger = raw;
  bigger[0x278] = 0xff;  // signature data size past the end of the input
  bigger[0x279] = 0xff;
  EXPECT_NE(ParseTdxQuote(bigger).status().message().find("signature data size"),
            std::string::npos);
  Bytes smaller = raw;
  smaller[0x2fe] -= 1;  // certification data size one short of its container
  EXPECT_NE(ParseTdxQuote(smaller).status().message().find("disagrees"), std::string::npos);
}

std::string Pem(const std::string& body) {
  return "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n";
}

TEST(StrictPemTest, DecodesAndRejectsLooseText) {
  // "AQID" is base64 of 01 02 03; "AQI=" of 01 02; "AQ==" of 01.
  auto decode = [](const std::string& text) { return DecodeStrictPemCertificates(AsBytes(text)); };
  Result<std::vector<Bytes>> ok = decode(Pem("AQID") + Pem("AQI=") + Pem("AQ=="));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[0], (Bytes{1, 2, 3}));
  EXPECT_EQ((*ok)[1], (Bytes{1, 2}));
  EXPECT_EQ((*ok)[2], (Bytes{1}));
  EXPECT_TRUE(decode(Pem("AQID") + std::string(1, '\0')).ok());  // one NUL terminator
  std::string crlf = "-----BEGIN CERTIFICATE-----\r\nAQID\r\n-----END CERTIFICATE-----\r\n";
  EXPECT_TRUE(decode(crlf).ok());

  EXPECT_FALSE(decode("").ok());
  EXPECT_FALSE(decode(Pem("AQJ=")).ok());   // non-zero padding bits
  EXPECT_FALSE(decode(Pem("AQ=D")).ok());   // '=' inside
  EXPECT_FALSE(decode(Pem("AQI")).ok());    // length not a multiple of 4
  EXPECT_FALSE(decode(Pem("AQ!D")).ok());   // not base64
  EXPECT_FALSE(decode(Pem("AQID") + "\n").ok());  // stray blank line
  EXPECT_FALSE(decode(Pem("AQID") + "x").ok());   // trailing text
  EXPECT_FALSE(decode("-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----").ok());
  EXPECT_FALSE(decode("-----BEGIN CERTIFICATE-----\nAQID\n").ok());  // no END
  std::string nine;
  for (int i = 0; i < 9; ++i) nine += Pem("AQID");
  EXPECT_FALSE(decode(nine).ok());  // more certificates than any real chain has
}

}  // namespace
}  // namespace chiron::attest::tdx
