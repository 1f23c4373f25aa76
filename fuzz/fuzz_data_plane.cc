// Fuzzes the data plane's wire codec (docs/formats/data-plane.md) with the bytes a hostile client
// sends chirond's data-plane port (ParseHello, ParseChunkHead) and a hostile host sends the
// client in the runtime's place (ServerFrameSize, ParseServerFrame under a fixed ack key and
// nonce). Oracles: no crash or sanitizer report; whatever parses re-encodes to exactly the input
// bytes and parses again to the same values; ServerFrameSize asks for more bytes only in the
// first 7 and never announces more than kMaxServerFrameSize; an authenticated frame that parses
// at one sequence, nonce and key fails as DataLoss at any other; a body the fuzzer supplies is
// also parsed with a valid MAC appended, so mutations reach the field checks behind the MAC.
// Seeds (fuzz/corpus/fuzz_data_plane): a hello, chunk heads (chunk, last chunk, End) and one
// frame of every server type encoded under the key and nonce below at sequence 0, plus a welcome
// followed by an ack.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "shared/crypto/hash.h"
#include "shared/dataplane/wire.h"

namespace {
using namespace chiron;
using namespace chiron::dataplane;

// The ack key and connection nonce the seed corpus was encoded with.
const Bytes& FuzzKey() {
  static const Bytes key(kMacSize, 0x5a);
  return key;
}
const Bytes& OtherKey() {
  static const Bytes key(kMacSize, 0x5b);
  return key;
}
Nonce FuzzNonce() {
  Nonce nonce;
  nonce.fill(0xa5);
  return nonce;
}

bool SameBytes(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool SameFrame(const ServerFrame& a, const ServerFrame& b) {
  return a.type == b.type && a.value == b.value && a.complete == b.complete && a.code == b.code &&
         a.message == b.message;
}

// Parses `bytes` as the server frame at `sequence`; whatever parses must round-trip and must not
// verify in any other context.
void CheckServerFrame(ByteSpan bytes, uint64_t sequence) {
  const Nonce nonce = FuzzNonce();
  Result<ServerFrame> frame = ParseServerFrame(bytes, FuzzKey(), nonce, sequence);
  if (!frame.ok()) {
    StatusCode code = frame.status().code();
    if (code != StatusCode::kInvalidArgument && code != StatusCode::kDataLoss) __builtin_trap();
    return;
  }
  if (frame->message.size() > kMaxMessageSize) __builtin_trap();
  Bytes again = EncodeServerFrame(*frame, FuzzKey(), nonce, sequence);
  if (!SameBytes(again, bytes)) __builtin_trap();
  Result<ServerFrame> reparsed = ParseServerFrame(again, FuzzKey(), nonce, sequence);
  if (!reparsed.ok() || !SameFrame(*reparsed, *frame)) __builtin_trap();
  if (frame->type == ServerFrameType::kRejected) return;  // unauthenticated by design
  Nonce other_nonce = nonce;
  other_nonce[0] ^= 1;
  for (auto other : {ParseServerFrame(bytes, FuzzKey(), nonce, sequence + 1),
                     ParseServerFrame(bytes, FuzzKey(), other_nonce, sequence),
                     ParseServerFrame(bytes, OtherKey(), nonce, sequence)}) {
    if (other.ok() || other.status().code() != StatusCode::kDataLoss) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan input(data, size);

  // Client -> runtime: the hello and the frame heads, on the whole input and on its start.
  for (ByteSpan bytes : {input, input.first(std::min(size, kHelloSize))}) {
    Result<Hello> hello = ParseHello(bytes);
    if (hello.ok() && !SameBytes(EncodeHello(*hello), bytes)) __builtin_trap();
  }
  for (ByteSpan bytes : {input, input.first(std::min(size, kChunkHeadSize))}) {
    Result<ChunkHead> head = ParseChunkHead(bytes);
    if (!head.ok()) continue;
    if (!SameBytes(EncodeChunkHead(*head), bytes)) __builtin_trap();
    if (head->type == ClientFrameType::kEnd && (head->last || head->size != 0 || head->index != 0))
      __builtin_trap();
  }

  // Runtime -> client: framing, then authentication.
  Result<std::optional<size_t>> frame_size = ServerFrameSize(input);
  if (frame_size.ok()) {
    if (!frame_size->has_value()) {
      if (size >= 7) __builtin_trap();
    } else if (**frame_size < 1 + 2 || **frame_size > kMaxServerFrameSize) {
      __builtin_trap();
    } else if (**frame_size <= size) {
      // A stream of frames: the first, then what follows it as the next one.
      CheckServerFrame(input.first(**frame_size), 0);
      ByteSpan rest = input.subspan(**frame_size);
      Result<std::optional<size_t>> next = ServerFrameSize(rest);
      if (next.ok() && next->has_value() && **next <= rest.size()) {
        CheckServerFrame(rest.first(**next), 1);
      }
    }
  } else if (frame_size.status().code() != StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  CheckServerFrame(input, 0);

  // The input as a body with a valid MAC, so the checks behind the MAC are reached.
  if (size > 0 && size <= kMaxServerFrameSize) {
    Bytes framed(input.begin(), input.end());
    Bytes mac_input = ToBytes("chiron data plane frame v1");
    Nonce nonce = FuzzNonce();
    Append(mac_input, nonce);
    AppendU64Le(mac_input, 0);
    Append(mac_input, input);
    Result<Bytes> mac = crypto::HmacSha256(FuzzKey(), mac_input);
    if (mac.ok()) {
      Append(framed, *mac);
      CheckServerFrame(framed, 0);
    }
  }
  return 0;
}
