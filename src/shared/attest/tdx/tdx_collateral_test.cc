#include "shared/attest/tdx/tdx_collateral.h"

#include <gtest/gtest.h>

#include "shared/attest/tdx/test_data.h"

namespace chiron::attest::tdx {
namespace {

using testing::ReadTestFile;

std::string TcbInfoText() { return ToString(ReadTestFile("tdx/sample_tcbInfo_response")); }
std::string QeIdentityText() { return ToString(ReadTestFile("tdx/sample_qeIdentity_response")); }

TEST(TdxCollateralTest, ParsesIntelTcbInfo) {
  Result<TdxTcbInfo> info = ParseTdxTcbInfo(TcbInfoText());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->version, 3u);
  EXPECT_EQ(HexEncode(info->fmspc), "50806f000000");
  EXPECT_EQ(info->tcb_evaluation_data_number, 15u);
  EXPECT_EQ(FormatTime(info->next_update), "2023-07-18T08:42:58Z");
  ASSERT_EQ(info->levels.size(), 2u);
  EXPECT_EQ(info->levels[0].status, TcbStatus::kUpToDate);
  EXPECT_EQ(info->levels[0].pce_svn, 11);
  EXPECT_EQ(info->levels[0].tdx_components[2], 5);
  EXPECT_EQ(info->levels[1].status, TcbStatus::kOutOfDate);
  EXPECT_EQ(info->levels[1].advisory_ids.size(), 13u);
  EXPECT_EQ(info->signature.size(), 64u);
  // The signed text is the exact "tcbInfo" value of the body.
  std::string body = TcbInfoText();
  EXPECT_EQ(body.find(info->signed_text), std::string("{\"tcbInfo\":").size());
  EXPECT_EQ(info->signed_text.front(), '{');
  EXPECT_EQ(info->signed_text.back(), '}');
}

TEST(TdxCollateralTest, ParsesIntelQeIdentity) {
  Result<TdxQeIdentity> qe = ParseTdxQeIdentity(QeIdentityText());
  ASSERT_TRUE(qe.ok()) << qe.status().ToString();
  EXPECT_EQ(qe->version, 2u);
  EXPECT_EQ(qe->isv_prod_id, 2);
  EXPECT_EQ(HexEncode(qe->mr_signer),
            "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
  ASSERT_EQ(qe->levels.size(), 1u);
  EXPECT_EQ(qe->levels[0].isv_svn, 4);
}

TEST(TdxCollateralTest, HostileJsonIsAnErrorNotACrash) {
  std::string text = TcbInfoText();
  for (size_t size = 0; size < text.size(); size += 7) {
    EXPECT_FALSE(ParseTdxTcbInfo(text.substr(0, size)).ok()) << size;
  }
  EXPECT_FALSE(ParseTdxTcbInfo("[]").ok());
  EXPECT_FALSE(ParseTdxTcbInfo("{\"tcbInfo\":{},\"signature\":\"00\"}").ok());
  std::string wrong_id = text;
  wrong_id.replace(wrong_id.find("\"TDX\""), 5, "\"SGX\"");
  EXPECT_NE(ParseTdxTcbInfo(wrong_id).status().message().find("not TDX"), std::string::npos);
  std::string bad_svn = text;
  bad_svn.replace(bad_svn.find("\"pcesvn\":11"), 11, "\"pcesvn\":-1");
  EXPECT_FALSE(ParseTdxTcbInfo(bad_svn).ok());
  std::string twice = "{\"tcbInfo\":{},\"tcbInfo\":{},\"signature\":\"\"}";
  EXPECT_FALSE(RawJsonMember(twice, "tcbInfo").ok());
  EXPECT_FALSE(ParseTdxQeIdentity(text).ok());  // a TCB info is not a QE identity
}

TEST(TdxCollateralTest, RawJsonMemberKeepsExactBytes) {
  std::string text = "{ \"a\" : [1, {\"b\":\"}\"}] , \"c\":\"x\\\"y\", \"d\": 12 }";
  EXPECT_EQ(*RawJsonMember(text, "a"), "[1, {\"b\":\"}\"}]");
  EXPECT_EQ(*RawJsonMember(text, "c"), "\"x\\\"y\"");
  EXPECT_EQ(*RawJsonMember(text, "d"), "12");
  EXPECT_EQ(RawJsonMember(text, "e").status().code(), StatusCode::kNotFound);
}

TEST(TdxCollateralTest, ParsesIntelTimes) {
  Result<TimePoint> t = ParseIntelTime("2023-06-18T08:42:58Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatTime(*t), "2023-06-18T08:42:58Z");
  EXPECT_FALSE(ParseIntelTime("2023-06-18 08:42:58").ok());
  EXPECT_FALSE(ParseIntelTime("2023-13-18T08:42:58Z").ok());
  EXPECT_FALSE(ParseIntelTime("2023-06-18T08:42:58+01").ok());
}

// Intel's matching rules on synthetic levels around the sample quote's real TCB.
class TcbMatchingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TdxQuote> quote = ParseTdxQuote(ReadTestFile("tdx/tdx_prod_quote_SPR_E4.dat"));
    ASSERT_TRUE(quote.ok());
    quote_ = *quote;
    Result<TdxTcbInfo> info = ParseTdxTcbInfo(TcbInfoText());
    Result<TdxQeIdentity> qe = ParseTdxQeIdentity(QeIdentityText());
    ASSERT_TRUE(info.ok() && qe.ok());
    info_ = *info;
    qe_ = *qe;
    // The PCK certificate's values (see tdx_verify_test): CPUSVN components and PCESVN 11.
    pck_.fmspc = info_.fmspc;
    pck_.pce_id = info_.pce_id;
    pck_.tcb_components = {3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
    pck_.pce_svn = 11;
  }
  TdxTcbLevel Level(uint8_t sgx, uint16_t pce, uint8_t tdx, TcbStatus status) {
    TdxTcbLevel level;
    level.sgx_components.fill(0);
    level.sgx_components[0] = sgx;  // the PCK's component 0 is 3
    level.pce_svn = pce;
    level.tdx_components.fill(0);
    level.tdx_components[2] = tdx;  // the quote's TEE_TCB_SVN[2] is 4
    level.status = status;
    return level;
  }
  TdxQuote quote_;
  TdxTcbInfo info_;
  TdxQeIdentity qe_;
  PckExtensions pck_;
};

TEST_F(TcbMatchingTest, SampleCollateralIsNewerThanThePlatform) {
  // Every level of Intel's sample needs SGX component 1 >= 5 (the PCK has 3) and TDX component
  // 2 >= 5 (the quote has 4): no level matches.
  Result<TcbEvaluation> eval = EvaluateTdxTcb(info_, qe_, pck_, quote_);
  ASSERT_TRUE(eval.ok()) << eval.status().ToString();
  EXPECT_EQ(eval->platform_status, TcbStatus::kNotSupported);
  EXPECT_EQ(eval->qe_status, TcbStatus::kUpToDate);
  EXPECT_EQ(eval->status, TcbStatus::kNotSupported);
}

TEST_F(TcbMatchingTest, FirstMatchingLevelWins) {
  info_.levels = {Level(4, 11, 5, TcbStatus::kUpToDate), Level(2, 11, 4, TcbStatus::kSwHardeningNeeded),
                  Level(0, 0, 0, TcbStatus::kOutOfDate)};
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kSwHardeningNeeded);
  info_.levels[1].pce_svn = 12;  // PCESVN too low for level 1
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kOutOfDate);
  info_.levels = {Level(0, 0, 4, TcbStatus::kUpToDate)};
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kUpToDate);
}

TEST_F(TcbMatchingTest, QeStatusConverges) {
  info_.levels = {Level(0, 0, 0, TcbStatus::kUpToDate)};
  qe_.levels[0].isv_svn = 5;  // the QE's ISVSVN is 4: older than the only level
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kNotSupported);
  QeIdentityLevel old_level;
  old_level.isv_svn = 0;
  old_level.status = TcbStatus::kOutOfDate;
  qe_.levels.push_back(old_level);
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kOutOfDate);
  info_.levels[0].status = TcbStatus::kConfigurationNeeded;
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status,
            TcbStatus::kOutOfDateConfigurationNeeded);
  qe_.levels[1].status = TcbStatus::kRevoked;
  EXPECT_EQ(EvaluateTdxTcb(info_, qe_, pck_, quote_)->status, TcbStatus::kRevoked);
}

TEST_F(TcbMatchingTest, RejectsCollateralOfAnotherPlatformOrQe) {
  info_.levels = {Level(0, 0, 0, TcbStatus::kUpToDate)};
  PckExtensions other = pck_;
  other.fmspc[0] ^= 1;
  EXPECT_NE(EvaluateTdxTcb(info_, qe_, other, quote_).status().message().find("FMSPC"),
            std::string::npos);
  TdxQeIdentity wrong_qe = qe_;
  wrong_qe.mr_signer[0] ^= 1;
  EXPECT_EQ(EvaluateTdxTcb(info_, wrong_qe, pck_, quote_).status().code(),
            StatusCode::kUnauthenticated);
  TdxTcbInfo wrong_module = info_;
  wrong_module.module_mr_signer[0] ^= 1;
  EXPECT_EQ(EvaluateTdxTcb(wrong_module, qe_, pck_, quote_).status().code(),
            StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace chiron::attest::tdx
