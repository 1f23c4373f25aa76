// The receiver's frame checks, one fault at a time, and the value range check.
#include "runtime/cluster/frame_checks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace chiron::cluster::internal {
namespace {

using chiron::internal::Frame;

Expectation FloatExpectation() {
  Expectation e;
  e.kind = MessageKind::kFloats;
  e.job_id = "job";
  e.sender = 2;
  e.receiver = 0;
  e.step = 10;
  e.phase = 1;
  e.total = 8;
  e.total_known = true;
  e.received = 4;
  return e;
}

Frame GoodFrame() {
  Frame f;
  f.set_kind(Frame::KIND_FLOATS);
  f.set_job_id("job");
  f.set_sender(2);
  f.set_receiver(0);
  f.set_step(10);
  f.set_phase(1);
  f.set_offset(4);
  f.set_total(8);
  f.set_payload(std::string(16, '\0'));
  return f;
}

TEST(FrameChecksTest, EachFieldIsChecked) {
  const Expectation e = FloatExpectation();
  EXPECT_EQ(CheckFrame(GoodFrame(), e), FrameFault::kNone);
  struct Case {
    void (*edit)(Frame&);
    FrameFault fault;
  } cases[] = {
      {[](Frame& f) { f.set_kind(Frame::KIND_BYTES); }, FrameFault::kWrongKind},
      {[](Frame& f) { f.set_kind(Frame::KIND_HELLO); }, FrameFault::kWrongKind},
      {[](Frame& f) { f.set_job_id("jobx"); }, FrameFault::kWrongJob},
      {[](Frame& f) { f.set_sender(1); }, FrameFault::kWrongSender},
      {[](Frame& f) { f.set_receiver(1); }, FrameFault::kWrongReceiver},
      {[](Frame& f) { f.set_step(9); }, FrameFault::kOldStep},
      {[](Frame& f) { f.set_phase(0); }, FrameFault::kOldStep},
      {[](Frame& f) { f.set_step(11); }, FrameFault::kFutureStep},
      {[](Frame& f) { f.set_phase(2); }, FrameFault::kWrongPhase},
      {[](Frame& f) { f.set_payload(std::string(kMaxFramePayloadSize + 4, '\0')); },
       FrameFault::kOversizedFrame},
      {[](Frame& f) { f.set_payload(std::string(15, '\0')); }, FrameFault::kPartialValue},
      {[](Frame& f) { f.set_total(9); }, FrameFault::kWrongSize},
      {[](Frame& f) { f.set_offset(0); }, FrameFault::kOutOfOrder},
      {[](Frame& f) { f.set_offset(5); }, FrameFault::kOutOfOrder},
      {[](Frame& f) { f.set_payload(std::string(20, '\0')); }, FrameFault::kWrongSize},
      {[](Frame& f) { f.clear_payload(); }, FrameFault::kEmptyFrame},
  };
  for (const Case& c : cases) {
    Frame f = GoodFrame();
    c.edit(f);
    EXPECT_EQ(CheckFrame(f, e), c.fault) << FrameFaultText(c.fault);
  }
}

TEST(FrameChecksTest, EmptyMessageIsOneEmptyFrame) {
  Expectation e = FloatExpectation();
  e.total = 0;
  e.received = 0;
  Frame f = GoodFrame();
  f.set_offset(0);
  f.set_total(0);
  f.clear_payload();
  EXPECT_EQ(CheckFrame(f, e), FrameFault::kNone);
}

TEST(FrameChecksTest, ByteMessagesAreBoundedBeforeTheirSizeIsKnown) {
  Expectation e;
  e.kind = MessageKind::kBytes;
  e.job_id = "job";
  e.sender = 2;
  e.step = 10;
  e.phase = 1;
  Frame f = GoodFrame();
  f.set_kind(Frame::KIND_BYTES);
  f.set_offset(0);
  f.set_total(3);
  f.set_payload("abc");
  EXPECT_EQ(CheckFrame(f, e), FrameFault::kNone);
  f.set_total(kMaxBytesMessageSize + 1);
  EXPECT_EQ(CheckFrame(f, e), FrameFault::kWrongSize);
}

TEST(FrameChecksTest, ValuesWithinRefusesNanInfinityAndMagnitude) {
  std::vector<float> values = {0.0f, -0.0f, 1.5f, -1e30f, 1e30f, 1e-40f};
  EXPECT_TRUE(ValuesWithin(values, 1e30f));
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 1.0001e30f,
        -3e38f}) {
    std::vector<float> v = values;
    v[3] = bad;
    EXPECT_FALSE(ValuesWithin(v, 1e30f)) << bad;
  }
  EXPECT_TRUE(ValuesWithin({}, 1.0f));
}

TEST(FrameChecksTest, FaultMessagesNameTheRankAndTheCheck) {
  Status s = FrameFaultStatus(3, FrameFault::kOldStep);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("rank 3"), std::string::npos);
  EXPECT_NE(s.message().find("earlier step"), std::string::npos);
  EXPECT_EQ(FrameFaultStatus(1, FrameFault::kBadValue).code(), StatusCode::kDataLoss);
  EXPECT_EQ(FrameFaultStatus(1, FrameFault::kTruncated).code(), StatusCode::kDataLoss);
  EXPECT_EQ(FrameFaultStatus(1, FrameFault::kClosed).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chiron::cluster::internal
