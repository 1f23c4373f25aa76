// The receiver's checks on node-to-node frames (docs/distributed.md, "Transport"): every frame a
// peer sends is matched against what this node expects next from that peer before a byte of its
// payload is copied, and float payloads are range-checked after the copy (copy, then check).
//
// A peer is another attested chirond, yet it is treated as hostile input: a compromised or buggy
// node must not make this one train on replayed, reordered, resized or absurd values. Faults are
// a closed set (FrameFault); their texts never contain a value the peer chose (STYLE.md #13).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "chiron/internal/node.pb.h"
#include "shared/base/status.h"

namespace chiron::cluster::internal {

// Largest payload of one frame (values are split into frames of at most this many bytes).
inline constexpr size_t kMaxFramePayloadSize = size_t{1} << 20;
inline constexpr size_t kFloatsPerFrame = kMaxFramePayloadSize / sizeof(float);
// gRPC's message limit on node channels: a frame's payload plus its header, with room to spare
// so that an oversized payload reaches CheckFrame and is refused with a clear reason.
inline constexpr int kMaxGrpcMessageSize = 2 << 20;
// Largest opaque message (ExchangeBytes): control data, not parameters.
inline constexpr uint64_t kMaxBytesMessageSize = uint64_t{16} << 20;
// Bytes gRPC adds to each serialized message on the stream (compressed flag + u32 length).
inline constexpr uint64_t kGrpcMessagePrefixSize = 5;

enum class MessageKind { kFloats, kBytes };

// What this node expects next from one peer: one message of one exchange.
struct Expectation {
  MessageKind kind = MessageKind::kFloats;
  std::string job_id;
  uint32_t sender = 0;    // the peer's rank
  uint32_t receiver = 0;  // this node's rank
  uint64_t step = 0;
  uint32_t phase = 0;
  // Elements of the message: exact for floats; for bytes, known after the first frame.
  uint64_t total = 0;
  bool total_known = false;
  uint64_t received = 0;  // elements accepted so far
};

// Why a frame, or a stream, was refused. Closed set.
enum class FrameFault {
  kNone,
  kWrongKind,        // a hello, refusal or other message kind where a message frame was due
  kWrongJob,         // another job's id
  kWrongSender,      // claims another sender rank than the stream's peer
  kWrongReceiver,    // addressed to another rank
  kOldStep,          // an earlier (step, phase) than expected: replayed or stale
  kFutureStep,       // a later step than expected
  kWrongPhase,       // the right step, another phase
  kOversizedFrame,   // payload beyond kMaxFramePayloadSize
  kPartialValue,     // float payload not a whole number of values
  kWrongSize,        // message size other than expected, or a frame running past its end
  kOutOfOrder,       // a frame not starting where the previous one ended
  kEmptyFrame,       // an empty frame inside a non-empty message
  kBadValue,         // NaN, infinity, or magnitude beyond the group's max_abs_value
  kTruncated,        // the stream ended inside a message
  kClosed,           // the stream ended (or failed) between messages
};

// Fixed text for a fault, e.g. "frame from an earlier step (replayed or stale)".
std::string_view FrameFaultText(FrameFault fault);

// The Status for a fault on the stream with `peer_rank` (a rank this node assigned, never one
// the peer claimed): DataLoss for damaged, resized or out-of-range content, FailedPrecondition
// for frames of another job, step, phase or sender, Unavailable for a closed connection.
Status FrameFaultStatus(uint32_t peer_rank, FrameFault fault);

// Checks `frame` against `expect` (header, size and order; not the values). On kNone the frame
// carries elements [frame.offset(), frame.offset() + count) of the message, where count is
// PayloadElements(frame, expect.kind), and fits in it.
FrameFault CheckFrame(const chiron::internal::Frame& frame, const Expectation& expect);

// Elements in a frame's payload (floats: payload bytes / 4).
uint64_t PayloadElements(const chiron::internal::Frame& frame, MessageKind kind);

// True iff every value is finite with |v| <= max_abs (max_abs finite and >= 0).
bool ValuesWithin(std::span<const float> values, float max_abs);

}  // namespace chiron::cluster::internal
