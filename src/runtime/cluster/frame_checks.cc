#include "runtime/cluster/frame_checks.h"

#include <bit>
#include <cstring>

namespace chiron::cluster::internal {

using chiron::internal::Frame;

std::string_view FrameFaultText(FrameFault fault) {
  switch (fault) {
    case FrameFault::kNone: return "no fault";
    case FrameFault::kWrongKind: return "frame of an unexpected kind";
    case FrameFault::kWrongJob: return "frame names another job";
    case FrameFault::kWrongSender: return "frame claims another sender rank";
    case FrameFault::kWrongReceiver: return "frame addressed to another rank";
    case FrameFault::kOldStep: return "frame from an earlier step (replayed or stale)";
    case FrameFault::kFutureStep: return "frame from a later step";
    case FrameFault::kWrongPhase: return "frame for another phase of the step";
    case FrameFault::kOversizedFrame: return "frame payload beyond the 1 MiB limit";
    case FrameFault::kPartialValue: return "frame payload is not a whole number of floats";
    case FrameFault::kWrongSize: return "message size differs from the expected size";
    case FrameFault::kOutOfOrder: return "frame out of order";
    case FrameFault::kEmptyFrame: return "empty frame inside a message";
    case FrameFault::kBadValue: return "value NaN, infinite or beyond the group's limit";
    case FrameFault::kTruncated: return "connection ended inside a message (truncated)";
    case FrameFault::kClosed: return "connection closed";
  }
  return "unknown fault";
}

Status FrameFaultStatus(uint32_t peer_rank, FrameFault fault) {
  std::string message = "rank " + std::to_string(peer_rank) + ": " +
                        std::string(FrameFaultText(fault)) +
                        "; the group is broken (rejoin to continue)";
  switch (fault) {
    case FrameFault::kWrongKind:
    case FrameFault::kWrongJob:
    case FrameFault::kWrongSender:
    case FrameFault::kWrongReceiver:
    case FrameFault::kOldStep:
    case FrameFault::kFutureStep:
    case FrameFault::kWrongPhase:
      return FailedPreconditionError(std::move(message));
    case FrameFault::kClosed:
      return UnavailableError(std::move(message));
    default:
      return DataLossError(std::move(message));
  }
}

uint64_t PayloadElements(const Frame& frame, MessageKind kind) {
  const uint64_t size = frame.payload().size();
  return kind == MessageKind::kFloats ? size / sizeof(float) : size;
}

FrameFault CheckFrame(const Frame& frame, const Expectation& expect) {
  const Frame::Kind want =
      expect.kind == MessageKind::kFloats ? Frame::KIND_FLOATS : Frame::KIND_BYTES;
  if (frame.kind() != want) return FrameFault::kWrongKind;
  if (frame.job_id() != expect.job_id) return FrameFault::kWrongJob;
  if (frame.sender() != expect.sender) return FrameFault::kWrongSender;
  if (frame.receiver() != expect.receiver) return FrameFault::kWrongReceiver;
  if (frame.step() < expect.step) return FrameFault::kOldStep;
  if (frame.step() > expect.step) return FrameFault::kFutureStep;
  if (frame.phase() < expect.phase) return FrameFault::kOldStep;
  if (frame.phase() != expect.phase) return FrameFault::kWrongPhase;
  if (frame.payload().size() > kMaxFramePayloadSize) return FrameFault::kOversizedFrame;
  if (expect.kind == MessageKind::kFloats && frame.payload().size() % sizeof(float) != 0) {
    return FrameFault::kPartialValue;
  }
  if (expect.total_known) {
    if (frame.total() != expect.total) return FrameFault::kWrongSize;
  } else if (frame.total() > kMaxBytesMessageSize) {
    return FrameFault::kWrongSize;
  }
  if (frame.offset() != expect.received) return FrameFault::kOutOfOrder;
  const uint64_t count = PayloadElements(frame, expect.kind);
  // offset == received <= total here, so the subtraction cannot wrap.
  if (count > frame.total() - frame.offset()) return FrameFault::kWrongSize;
  if (count == 0 && frame.total() != 0) return FrameFault::kEmptyFrame;
  return FrameFault::kNone;
}

bool ValuesWithin(std::span<const float> values, float max_abs) {
  // Compare magnitudes as integers: for non-negative IEEE-754 floats the bit patterns order like
  // the values, and NaN and infinity lie above every finite limit. Branch-free so it vectorises.
  const uint32_t limit = std::bit_cast<uint32_t>(max_abs) & 0x7fffffffu;
  uint32_t worst = 0;
  for (float v : values) {
    const uint32_t magnitude = std::bit_cast<uint32_t>(v) & 0x7fffffffu;
    worst = magnitude > worst ? magnitude : worst;
  }
  return worst <= limit;
}

}  // namespace chiron::cluster::internal
