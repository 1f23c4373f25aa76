// Attacks on a node's peer port, as a hostile peer would make them: nodes with another
// measurement, a client without evidence, and an attested but hostile peer driving the raw gRPC
// stream (wrong job, replayed step, wrong phase, resized or truncated messages, NaN and huge
// values, frames out of order). Each is refused with a clear error, the honest rank's Exchange
// fails (it never accepts), and nothing hangs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "runtime/cluster/cluster_test_support.h"
#include "runtime/cluster/frame_checks.h"
#include "runtime/cluster/peer_group.h"

namespace chiron::cluster {
namespace {

using chiron::internal::Frame;
using testing::BaseOptions;
using testing::Contains;
using testing::Hello;
using testing::Local;
using testing::RawPeer;
using testing::SimNodes;

constexpr char kJob[] = "job-test-1";
constexpr size_t kCount = 300000;  // two frames: 262144 + 37856 floats
constexpr uint64_t kStep = 7;
constexpr uint32_t kPhase = 1;

Frame DataFrame(uint64_t offset, size_t count, float value, uint64_t step = kStep) {
  Frame frame;
  frame.set_kind(Frame::KIND_FLOATS);
  frame.set_job_id(kJob);
  frame.set_sender(1);
  frame.set_receiver(0);
  frame.set_step(step);
  frame.set_phase(kPhase);
  frame.set_offset(offset);
  frame.set_total(kCount);
  std::vector<float> values(count, value);
  frame.set_payload(std::string(reinterpret_cast<const char*>(values.data()), count * 4));
  return frame;
}

// An honest rank 0 whose rank 1 is the test's raw stream.
class HostilePeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = nodes_.StartListener(nullptr, {.unknown_job_wait = std::chrono::milliseconds(300)});
    ASSERT_NE(listener_, nullptr);
    Status joined;
    std::thread joiner([&] {
      PeerGroupOptions options =
          BaseOptions(nodes_, 0, 2, {Local(listener_->port()), "127.0.0.1:1"});
      options.exchange_timeout = std::chrono::seconds(30);
      auto group = PeerGroup::Join(*listener_, options);
      joined = group.status();
      if (group.ok()) group_ = std::move(*group);
    });
    peer_ = std::make_unique<RawPeer>(listener_->port(), nodes_.Identity(), nodes_.verifier());
    ASSERT_TRUE(peer_->Write(Hello(kJob, 1, 0, 2)));
    Frame reply;
    ASSERT_TRUE(peer_->Read(&reply));
    joiner.join();
    ASSERT_EQ(reply.kind(), Frame::KIND_HELLO);
    EXPECT_EQ(reply.sender(), 0u);
    ASSERT_TRUE(joined.ok()) << joined.ToString();
    // Drain what the honest rank sends, so only the attack decides the outcome.
    drainer_ = std::thread([this] {
      Frame frame;
      while (peer_->Read(&frame)) {
      }
    });
  }

  void TearDown() override {
    if (exchange_.joinable()) exchange_.join();
    if (peer_) peer_->Cancel();
    if (drainer_.joinable()) drainer_.join();
    group_.reset();
    peer_.reset();
  }

  // Runs the honest Exchange(step, kPhase) receiving kCount floats from rank 1 on a thread.
  void StartExchange(uint64_t step = kStep) {
    exchange_ = std::thread([this, step] {
      std::vector<std::span<const float>> out = {{}, out_};
      std::vector<std::span<float>> in = {{}, in_};
      status_ = group_->Exchange(step, kPhase, out, in);
    });
  }
  Status FinishExchange() {
    exchange_.join();
    return status_;
  }

  // Sends `frames`, then expects the honest Exchange to fail with `code` and `fault`'s text, the
  // group to stay broken, and no peer-chosen number in the message.
  void ExpectRefused(const std::vector<Frame>& frames, StatusCode code,
                     internal::FrameFault fault) {
    StartExchange();
    for (const Frame& frame : frames) {
      if (!peer_->Write(frame)) break;  // the honest rank may already have closed the stream
    }
    Status status = FinishExchange();
    EXPECT_EQ(status.code(), code) << status.ToString();
    EXPECT_TRUE(Contains(status.message(), "rank 1")) << status.ToString();
    EXPECT_TRUE(Contains(status.message(), std::string(internal::FrameFaultText(fault))))
        << status.ToString();
    for (const char* leaked : {"262144", "300001", "1e+35", "nan", "999", "wrong-job"}) {
      EXPECT_FALSE(Contains(status.message(), leaked)) << status.ToString();
    }
    std::vector<std::span<const float>> out = {{}, out_};
    std::vector<std::span<float>> in = {{}, in_};
    EXPECT_EQ(group_->Exchange(kStep + 100, 0, out, in), status) << "the group stays broken";
  }

  SimNodes nodes_;
  std::unique_ptr<NodeListener> listener_;
  std::unique_ptr<PeerGroup> group_;
  std::unique_ptr<RawPeer> peer_;
  std::thread drainer_;
  std::thread exchange_;
  Status status_;
  std::vector<float> out_ = std::vector<float>(1000, 0.5f);
  std::vector<float> in_ = std::vector<float>(kCount, 0.0f);
};

TEST_F(HostilePeerTest, AWellFormedMessageIsAccepted) {
  // The harness itself is sound: the same frames without the attack are accepted.
  StartExchange();
  ASSERT_TRUE(peer_->Write(DataFrame(0, 262144, 3.0f)));
  ASSERT_TRUE(peer_->Write(DataFrame(262144, kCount - 262144, -4.0f)));
  Status status = FinishExchange();
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(in_[0], 3.0f);
  EXPECT_EQ(in_[262143], 3.0f);
  EXPECT_EQ(in_[262144], -4.0f);
  EXPECT_EQ(in_[kCount - 1], -4.0f);
}

TEST_F(HostilePeerTest, WrongJobIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  frame.set_job_id("wrong-job");
  ExpectRefused({frame}, StatusCode::kFailedPrecondition, internal::FrameFault::kWrongJob);
}

TEST_F(HostilePeerTest, ReplayedStepIsRefused) {
  // One honest exchange at kStep, then the same frames replayed for the next step.
  StartExchange();
  const std::vector<Frame> frames = {DataFrame(0, 262144, 1.0f),
                                     DataFrame(262144, kCount - 262144, 1.0f)};
  for (const Frame& frame : frames) ASSERT_TRUE(peer_->Write(frame));
  ASSERT_TRUE(FinishExchange().ok());
  exchange_ = std::thread([this] {
    std::vector<std::span<const float>> out = {{}, out_};
    std::vector<std::span<float>> in = {{}, in_};
    status_ = group_->Exchange(kStep + 1, kPhase, out, in);
  });
  for (const Frame& frame : frames) peer_->Write(frame);
  Status status = FinishExchange();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_TRUE(Contains(status.message(), "earlier step")) << status.ToString();
  EXPECT_TRUE(Contains(status.message(), "rank 1")) << status.ToString();
}

TEST_F(HostilePeerTest, OldAndFutureStepsAreRefused) {
  ExpectRefused({DataFrame(0, 262144, 1.0f, kStep - 1)}, StatusCode::kFailedPrecondition,
                internal::FrameFault::kOldStep);
}

TEST_F(HostilePeerTest, FutureStepIsRefused) {
  ExpectRefused({DataFrame(0, 262144, 1.0f, kStep + 999)}, StatusCode::kFailedPrecondition,
                internal::FrameFault::kFutureStep);
}

TEST_F(HostilePeerTest, WrongPhaseIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  frame.set_phase(kPhase + 1);
  ExpectRefused({frame}, StatusCode::kFailedPrecondition, internal::FrameFault::kWrongPhase);
}

TEST_F(HostilePeerTest, WrongSenderIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  frame.set_sender(0);
  ExpectRefused({frame}, StatusCode::kFailedPrecondition, internal::FrameFault::kWrongSender);
}

TEST_F(HostilePeerTest, ResizedMessageIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  frame.set_total(kCount + 1);
  ExpectRefused({frame}, StatusCode::kDataLoss, internal::FrameFault::kWrongSize);
}

TEST_F(HostilePeerTest, FrameRunningPastTheMessageIsRefused) {
  ExpectRefused({DataFrame(0, 262144, 1.0f), DataFrame(262144, 40000, 1.0f)},
                StatusCode::kDataLoss, internal::FrameFault::kWrongSize);
}

TEST_F(HostilePeerTest, TruncatedMessageIsRefused) {
  StartExchange();
  ASSERT_TRUE(peer_->Write(DataFrame(0, 262144, 1.0f)));
  peer_->WritesDone();  // the rest never comes
  Status status = FinishExchange();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
  EXPECT_TRUE(Contains(status.message(), "truncated")) << status.ToString();
  EXPECT_TRUE(Contains(status.message(), "rank 1")) << status.ToString();
}

TEST_F(HostilePeerTest, PartialFloatIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  frame.mutable_payload()->pop_back();
  ExpectRefused({frame}, StatusCode::kDataLoss, internal::FrameFault::kPartialValue);
}

TEST_F(HostilePeerTest, OversizedFrameIsRefused) {
  Frame frame = DataFrame(0, 262145, 1.0f);  // 1 MiB + 4 bytes
  ExpectRefused({frame}, StatusCode::kDataLoss, internal::FrameFault::kOversizedFrame);
}

TEST_F(HostilePeerTest, FramesOutOfOrderAreRefused) {
  ExpectRefused({DataFrame(262144, kCount - 262144, 1.0f), DataFrame(0, 262144, 1.0f)},
                StatusCode::kDataLoss, internal::FrameFault::kOutOfOrder);
}

TEST_F(HostilePeerTest, NanIsRefused) {
  Frame frame = DataFrame(262144, kCount - 262144, 1.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(frame.mutable_payload()->data() + 4000, &nan, 4);
  ExpectRefused({DataFrame(0, 262144, 1.0f), frame}, StatusCode::kDataLoss,
                internal::FrameFault::kBadValue);
}

TEST_F(HostilePeerTest, HugeValueIsRefused) {
  Frame frame = DataFrame(0, 262144, 1.0f);
  const float huge = 1e35f;
  std::memcpy(frame.mutable_payload()->data() + 400, &huge, 4);
  ExpectRefused({frame}, StatusCode::kDataLoss, internal::FrameFault::kBadValue);
}

TEST_F(HostilePeerTest, HelloInsideTheExchangeIsRefused) {
  ExpectRefused({Hello(kJob, 1, 0, 2)}, StatusCode::kFailedPrecondition,
                internal::FrameFault::kWrongKind);
}

TEST_F(HostilePeerTest, PeerClosingTheStreamFailsTheExchange) {
  StartExchange();
  peer_->Cancel();
  Status status = FinishExchange();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_TRUE(Contains(status.message(), "rank 1")) << status.ToString();
}

TEST_F(HostilePeerTest, SilentPeerHitsTheTimeoutAndAbortWorks) {
  StartExchange();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  group_->Abort();
  Status status = FinishExchange();
  EXPECT_EQ(status.code(), StatusCode::kAborted) << status.ToString();
}

// Hellos the listener refuses, each with its fixed reason.
TEST_F(HostilePeerTest, BadHellosAreRefused) {
  struct Case {
    Frame hello;
    chiron::internal::Refusal refusal;
  } cases[] = {
      {Hello(kJob, 1, 0, 3), chiron::internal::REFUSAL_WRONG_SIZE},
      {Hello(kJob, 0, 0, 2), chiron::internal::REFUSAL_WRONG_RANK},
      {Hello(kJob, 1, 1, 2), chiron::internal::REFUSAL_WRONG_RANK},
      {Hello(kJob, 1, 0, 2), chiron::internal::REFUSAL_DUPLICATE_RANK},  // rank 1 is connected
      {Hello("another-job", 1, 0, 2), chiron::internal::REFUSAL_UNKNOWN_JOB},
      {DataFrame(0, 1, 1.0f), chiron::internal::REFUSAL_BAD_HELLO},
  };
  for (const Case& c : cases) {
    RawPeer intruder(listener_->port(), nodes_.Identity(), nodes_.verifier());
    ASSERT_TRUE(intruder.Write(c.hello));
    Frame reply;
    ASSERT_TRUE(intruder.Read(&reply)) << c.refusal;
    EXPECT_EQ(reply.kind(), Frame::KIND_REFUSAL);
    EXPECT_EQ(reply.refusal(), c.refusal);
    EXPECT_FALSE(intruder.Read(&reply)) << "the stream ends after a refusal";
  }
  // None of it disturbed the group.
  StartExchange();
  ASSERT_TRUE(peer_->Write(DataFrame(0, 262144, 3.0f)));
  ASSERT_TRUE(peer_->Write(DataFrame(262144, kCount - 262144, 3.0f)));
  EXPECT_TRUE(FinishExchange().ok());
}

TEST(NodeAttestationTest, DiallerRefusesAPeerWithAnotherMeasurement) {
  SimNodes nodes;
  // Rank 0 runs other code; its own policy would accept the dialler.
  auto other = nodes.StartListener(nodes.OtherMeasurementIdentity());
  auto honest = nodes.StartListener();
  const std::vector<std::string> addresses = {Local(other->port()), Local(honest->port())};
  std::thread other_join([&] {
    PeerGroupOptions options = BaseOptions(nodes, 0, 2, addresses);
    options.identity = nodes.OtherMeasurementIdentity();
    options.peer_verifier = nodes.lenient_verifier();
    options.connect_timeout = std::chrono::seconds(2);
    EXPECT_FALSE(PeerGroup::Join(*other, options).ok());
  });
  PeerGroupOptions options = BaseOptions(nodes, 1, 2, addresses);
  options.connect_timeout = std::chrono::seconds(10);
  auto group = PeerGroup::Join(*honest, options);
  other_join.join();
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), StatusCode::kUnauthenticated) << group.status().ToString();
  EXPECT_TRUE(Contains(group.status().message(), "rank 0")) << group.status().ToString();
  EXPECT_TRUE(Contains(group.status().message(), "measurement")) << group.status().ToString();
}

TEST(NodeAttestationTest, ListenerRefusesADiallerWithAnotherMeasurement) {
  SimNodes nodes;
  auto honest = nodes.StartListener();
  auto other = nodes.StartListener(nodes.OtherMeasurementIdentity());
  const std::vector<std::string> addresses = {Local(honest->port()), Local(other->port())};
  Status other_status;
  std::thread other_join([&] {
    PeerGroupOptions options = BaseOptions(nodes, 1, 2, addresses);
    options.identity = nodes.OtherMeasurementIdentity();
    options.peer_verifier = nodes.lenient_verifier();  // it would accept the honest node
    options.connect_timeout = std::chrono::seconds(2);
    other_status = PeerGroup::Join(*other, options).status();
  });
  PeerGroupOptions options = BaseOptions(nodes, 0, 2, addresses);
  options.connect_timeout = std::chrono::seconds(2);
  auto group = PeerGroup::Join(*honest, options);
  other_join.join();
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), StatusCode::kDeadlineExceeded) << group.status().ToString();
  EXPECT_TRUE(Contains(group.status().message(), "rank 1")) << group.status().ToString();
  EXPECT_FALSE(other_status.ok());
  EXPECT_TRUE(Contains(other_status.message(), "rank 0")) << other_status.ToString();
}

TEST(NodeAttestationTest, RanksAreBoundToTheKeysTheJobLists) {
  SimNodes nodes;
  const auto id0 = nodes.Identity(), id1 = nodes.Identity(), stranger = nodes.Identity();
  auto listener0 = nodes.StartListener(id0);
  auto listener1 = nodes.StartListener(id1);
  const std::vector<std::string> addresses = {Local(listener0->port()), Local(listener1->port())};
  struct Outcome {
    Status status[2];
    std::unique_ptr<PeerGroup> group[2];
  };
  // Joins both ranks, each with its own list of keys.
  auto join = [&](const std::string& job, std::vector<Bytes> keys0, std::vector<Bytes> keys1) {
    Outcome outcome;
    std::thread threads[2];
    for (uint32_t r = 0; r < 2; ++r) {
      threads[r] = std::thread([&, r] {
        PeerGroupOptions options = BaseOptions(nodes, r, 2, addresses);
        options.job_id = job;
        options.identity = r == 0 ? id0 : id1;
        options.peer_keys = r == 0 ? keys0 : keys1;
        options.connect_timeout = std::chrono::seconds(3);
        auto group = PeerGroup::Join(r == 0 ? *listener0 : *listener1, options);
        outcome.status[r] = group.status();
        if (group.ok()) outcome.group[r] = std::move(*group);
      });
    }
    for (std::thread& thread : threads) thread.join();
    return outcome;
  };
  const std::vector<Bytes> right = {id0->spki_der, id1->spki_der};

  Outcome good = join("keys-good", right, right);
  ASSERT_TRUE(good.status[0].ok()) << good.status[0].ToString();
  ASSERT_TRUE(good.status[1].ok()) << good.status[1].ToString();

  // Rank 0 lists another key for rank 1: rank 1's hello is refused.
  Outcome refused = join("keys-dialler", {id0->spki_der, stranger->spki_der}, right);
  EXPECT_EQ(refused.status[1].code(), StatusCode::kFailedPrecondition)
      << refused.status[1].ToString();
  EXPECT_TRUE(Contains(refused.status[1].message(), "rank 0")) << refused.status[1].ToString();
  EXPECT_TRUE(Contains(refused.status[1].message(), "key")) << refused.status[1].ToString();
  EXPECT_FALSE(refused.status[0].ok());

  // Rank 1 lists another key for rank 0: it does not accept rank 0's listener.
  Outcome refusing = join("keys-listener", right, {stranger->spki_der, id1->spki_der});
  EXPECT_EQ(refusing.status[1].code(), StatusCode::kUnauthenticated)
      << refusing.status[1].ToString();
  EXPECT_TRUE(Contains(refusing.status[1].message(), "rank 0")) << refusing.status[1].ToString();
  EXPECT_TRUE(Contains(refusing.status[1].message(), "peer_keys"))
      << refusing.status[1].ToString();
  EXPECT_FALSE(refusing.status[0].ok());
}

TEST(NodeAttestationTest, ClientWithoutEvidenceIsRefusedOnTheNodePort) {
  SimNodes nodes;
  auto listener = nodes.StartListener();
  RawPeer intruder(listener->port(), SimNodes::UnattestedIdentity(), nodes.verifier());
  intruder.Write(Hello(kJob, 1, 0, 2));
  Frame reply;
  EXPECT_FALSE(intruder.Read(&reply)) << "a certificate without evidence gets no stream";
}

}  // namespace
}  // namespace chiron::cluster
