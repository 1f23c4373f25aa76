#include "shared/worker_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "worker/sandbox_policy.h"

namespace chiron {
namespace {

uint64_t DoubleBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return bits;
}

WorkerFrame GradientsReady(uint64_t sequence, uint64_t count, double loss, uint64_t samples) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kGradientsReady;
  frame.sequence = sequence;
  frame.fields = {count, DoubleBits(loss), samples, 0, 0, 0};
  return frame;
}

WorkerFrameExpectation ExpectGradients() {
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kGradientsReady;
  expect.sequence = 7;
  expect.count = 100;
  expect.sample_count = 32;
  return expect;
}

Result<WorkerFrame> RoundTrip(const WorkerFrame& frame, const WorkerFrameExpectation& expect) {
  auto bytes = EncodeWorkerFrame(frame);
  return ValidateWorkerFrame(ByteSpan(bytes.data(), bytes.size()), expect);
}

TEST(WorkerProtocolTest, EncodesTheDocumentedLayout) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kPredict;
  frame.sequence = 0x0102030405060708ULL;
  frame.fields[0] = 0x11;
  auto bytes = EncodeWorkerFrame(frame);
  ASSERT_EQ(bytes.size(), 64u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "CHWF");
  EXPECT_EQ(bytes[4], 1);  // version
  EXPECT_EQ(bytes[5], 0);
  EXPECT_EQ(bytes[6], 4);  // kPredict
  EXPECT_EQ(bytes[8], 0x08);
  EXPECT_EQ(bytes[15], 0x01);
  EXPECT_EQ(bytes[16], 0x11);
  auto decoded = DecodeWorkerFrame(ByteSpan(bytes.data(), bytes.size()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->type, WorkerFrameType::kPredict);
  EXPECT_EQ(decoded->sequence, frame.sequence);
  EXPECT_EQ(decoded->fields, frame.fields);
}

TEST(WorkerProtocolTest, AcceptsTheExpectedResponse) {
  auto frame = RoundTrip(GradientsReady(7, 100, 2.5, 32), ExpectGradients());
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->fields[0], 100u);
}

TEST(WorkerProtocolTest, RejectsEverySizeButSixtyFour) {
  auto bytes = EncodeWorkerFrame(GradientsReady(7, 100, 2.5, 32));
  Bytes longer(bytes.begin(), bytes.end());
  longer.push_back(0);
  EXPECT_EQ(ValidateWorkerFrame(longer, ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWorkerFrame(ByteSpan(bytes.data(), 63), ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWorkerFrame(ByteSpan(), ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(WorkerProtocolTest, RejectsBadHeaderFields) {
  auto bytes = EncodeWorkerFrame(GradientsReady(7, 100, 2.5, 32));
  auto corrupt = [&](size_t offset, uint8_t value) {
    auto copy = bytes;
    copy[offset] = value;
    return ValidateWorkerFrame(ByteSpan(copy.data(), copy.size()), ExpectGradients());
  };
  EXPECT_NE(corrupt(0, 'X').status().message().find("magic"), std::string::npos);
  EXPECT_NE(corrupt(4, 2).status().message().find("version"), std::string::npos);
  EXPECT_NE(corrupt(6, 99).status().message().find("unknown frame type"), std::string::npos);
  EXPECT_NE(corrupt(6, 0).status().message().find("unknown frame type"), std::string::npos);
}

TEST(WorkerProtocolTest, RejectsWrongTypeSequenceAndCounts) {
  EXPECT_FALSE(RoundTrip(GradientsReady(8, 100, 2.5, 32), ExpectGradients()).ok());
  EXPECT_FALSE(RoundTrip(GradientsReady(7, 99, 2.5, 32), ExpectGradients()).ok());
  EXPECT_FALSE(RoundTrip(GradientsReady(7, 100, 2.5, 31), ExpectGradients()).ok());
  WorkerFrame output;
  output.type = WorkerFrameType::kOutputReady;
  output.sequence = 7;
  output.fields[0] = 100;
  EXPECT_NE(RoundTrip(output, ExpectGradients()).status().message().find("expected"),
            std::string::npos);
  // A worker may not send a request type.
  WorkerFrame request;
  request.type = WorkerFrameType::kComputeGradients;
  request.sequence = 7;
  WorkerFrameExpectation expect_request = ExpectGradients();
  expect_request.type = WorkerFrameType::kComputeGradients;
  EXPECT_FALSE(RoundTrip(request, expect_request).ok());
}

TEST(WorkerProtocolTest, RejectsNonFiniteAndHugeLoss) {
  EXPECT_FALSE(
      RoundTrip(GradientsReady(7, 100, std::numeric_limits<double>::quiet_NaN(), 32),
                ExpectGradients())
          .ok());
  EXPECT_FALSE(
      RoundTrip(GradientsReady(7, 100, std::numeric_limits<double>::infinity(), 32),
                ExpectGradients())
          .ok());
  EXPECT_FALSE(RoundTrip(GradientsReady(7, 100, -1e300, 32), ExpectGradients()).ok());
}

TEST(WorkerProtocolTest, UnusedFieldsMustBeZero) {
  WorkerFrame frame = GradientsReady(7, 100, 2.5, 32);
  frame.fields[5] = 1;
  auto result = RoundTrip(frame, ExpectGradients());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("field 5 must be zero"), std::string::npos);
}

TEST(WorkerProtocolTest, FailedFramesCarryOnlyKnownReasons) {
  WorkerFrame failed;
  failed.type = WorkerFrameType::kFailed;
  failed.sequence = 7;
  failed.fields[0] = static_cast<uint64_t>(WorkerFailure::kRecipeError);
  auto ok = RoundTrip(failed, ExpectGradients());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->type, WorkerFrameType::kFailed);
  failed.fields[0] = 12345;
  EXPECT_FALSE(RoundTrip(failed, ExpectGradients()).ok());
}

TEST(WorkerProtocolTest, HelloMustCarryThePolicyFingerprint) {
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kHello;
  expect.policy_fingerprint = SandboxPolicyFingerprint();
  expect.min_landlock_abi = 3;
  WorkerFrame hello;
  hello.type = WorkerFrameType::kHello;
  hello.fields = {SandboxPolicyFingerprint(), 7, 0, 0, 0, 0};
  EXPECT_TRUE(RoundTrip(hello, expect).ok());
  hello.fields[0] ^= 1;
  EXPECT_FALSE(RoundTrip(hello, expect).ok());
  hello.fields = {SandboxPolicyFingerprint(), 2, 0, 0, 0, 0};
  EXPECT_FALSE(RoundTrip(hello, expect).ok());
}

TEST(WorkerProtocolTest, FloatArenaRejectsNanInfAndOutOfRange) {
  std::vector<float> values = {0.5f, -3.0f, 1e-20f, 0.0f};
  ByteSpan bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float));
  auto good = ValidateFloatArena(bytes, 4, 10.0f);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, values);
  EXPECT_FALSE(ValidateFloatArena(bytes, 5, 10.0f).ok());  // larger than the copy
  EXPECT_FALSE(ValidateFloatArena(bytes, 4, 2.0f).ok());   // |-3| > 2
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    values[2] = bad;
    auto result = ValidateFloatArena(bytes, 4, 10.0f);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.status().message().find("value 2"), std::string::npos);
  }
}

TEST(SandboxPolicyTest, TextListsEveryRuleAndFingerprintIsStable) {
  const std::string_view text = SandboxPolicyBytes();
  for (const SyscallRule& rule : WorkerSyscallRules()) {
    EXPECT_NE(text.find("allow " + std::string(rule.name) + " "), std::string_view::npos)
        << rule.name;
  }
  EXPECT_EQ(text.find("allow socket"), std::string_view::npos);
  EXPECT_EQ(SandboxPolicyFingerprint(), SandboxPolicyFingerprint());
  EXPECT_NE(SandboxPolicyFingerprint(), 0u);
}

}  // namespace
}  // namespace chiron
