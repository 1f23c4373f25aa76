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
  EXPECT_FALSE(ParseTdxQuote(v5).ok());
  Bytes key_type = raw;
  key_type[2] = 3;
  EXPECT_NE(ParseTdxQuote(key_type).status().message().find("attestation key type 3"),
            std::string::npos);
  Bytes sgx = raw;
  sgx[4] = 0;  // TEE type 0: an SGX quote
  EXPECT_NE(ParseTdxQuote(sgx).status().message().find("not TDX"), std::string::npos);
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
