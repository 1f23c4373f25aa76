// The data plane's wire format (docs/formats/data-plane.md): the frames a client and chirond
// exchange on the data-plane TCP port to move an upload's sealed chunks without TLS.
//
// Why no TLS here: every chunk is already AES-256-GCM under the dataset's data key, with the
// dataset id, chunk index and last flag in its associated data, and it is stored on the host's
// disk as exactly these bytes. TLS on top would hide nothing from the host (it holds the same
// ciphertext at rest) and cost two more AES passes per byte; what TLS would add, the format adds
// itself:
//   - who may send: the client presents a ticket id derived from a 32-byte upload ticket that
//     BeginUpload handed out over the attested TLS channel (the ticket itself never crosses the
//     data plane); the runtime authenticates every chunk under the data key before it is stored;
//   - what the runtime says: every server frame (welcome, ack, error) carries an HMAC-SHA256
//     under a key derived from the ticket, over the client's fresh connection nonce, the frame's
//     sequence number and its bytes, so a host can neither forge an acknowledgement (and make a
//     client forget an upload that was never stored) nor replay or reorder one.
// The host can still drop or stall the connection, as it can any traffic; the client then
// resumes from the last authenticated acknowledgement.
//
// Client -> runtime:  Hello, then Chunk frames in order, then End.
//   Hello  56 bytes: magic "CHRNDP01" | ticket id (32) | connection nonce (16)
//   Chunk  16-byte head: type 1 (u8) | flags (u8, bit 0 = last) | 0 (u16) | size (u32 LE) |
//          index (u64 LE), then `size` bytes of sealed chunk (ciphertext || tag)
//   End    16-byte head with type 2 and every other byte 0
// Runtime -> client: authenticated frames, each a body then a 32-byte MAC:
//   Welcome  type 1 (u8) | next chunk index (u64 LE)            the ticket was accepted
//   Ack      type 2 (u8) | acknowledged_through (u64 LE) | complete (u8: 0 or 1)
//   Error    type 3 (u8) | status code (u32 LE) | length (u16 LE) | message (<= 1024 bytes)
// and one unauthenticated frame, sent only when the runtime does not know the ticket (it has no
// key to authenticate with):
//   Rejected type 0xFF (u8) | length (u16 LE) | message (<= 1024 bytes)
// MAC = HMAC-SHA256(ack key, "chiron data plane frame v1" | nonce | sequence (u64 LE) | body),
// the sequence counting the runtime's frames on this connection from 0.
//
// Every parser here takes untrusted bytes and is fuzzed (fuzz/fuzz_data_plane.cc).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"

namespace chiron::dataplane {

inline constexpr size_t kTicketSize = 32;
inline constexpr size_t kTicketIdSize = 32;
inline constexpr size_t kNonceSize = 16;
inline constexpr size_t kMacSize = 32;
inline constexpr size_t kHelloSize = 8 + kTicketIdSize + kNonceSize;
inline constexpr size_t kChunkHeadSize = 16;
inline constexpr size_t kMaxMessageSize = 1024;
// The largest server frame: an error with the longest message, and its MAC.
inline constexpr size_t kMaxServerFrameSize = 1 + 4 + 2 + kMaxMessageSize + kMacSize;

using TicketId = std::array<uint8_t, kTicketIdSize>;
using Nonce = std::array<uint8_t, kNonceSize>;

// The public id of a ticket (what the client presents) and the key of the runtime's MACs: two
// HMAC-SHA256 derivations of the secret ticket, so neither reveals the ticket or the other.
// Errors only if OpenSSL cannot compute HMAC-SHA256 (Internal).
Result<TicketId> DeriveTicketId(ByteSpan ticket);
Result<SecretBytes> DeriveAckKey(ByteSpan ticket);

struct Hello {
  TicketId ticket_id{};
  Nonce nonce{};
};
Bytes EncodeHello(const Hello& hello);
// InvalidArgument naming what is wrong (size, magic: "not a Chiron data-plane client, or
// another version").
Result<Hello> ParseHello(ByteSpan bytes);

enum class ClientFrameType : uint8_t { kChunk = 1, kEnd = 2 };

struct ChunkHead {
  ClientFrameType type = ClientFrameType::kChunk;
  bool last = false;
  uint32_t size = 0;   // bytes of sealed chunk that follow (0 for End)
  uint64_t index = 0;
};
std::array<uint8_t, kChunkHeadSize> EncodeChunkHead(const ChunkHead& head);
// InvalidArgument for a wrong size, an unknown type, unknown flag bits, non-zero reserved
// bytes, or an End frame that is not all zeros.
Result<ChunkHead> ParseChunkHead(ByteSpan bytes);

enum class ServerFrameType : uint8_t { kWelcome = 1, kAck = 2, kError = 3, kRejected = 0xFF };

struct ServerFrame {
  ServerFrameType type = ServerFrameType::kAck;
  uint64_t value = 0;       // Welcome: next chunk index; Ack: acknowledged_through
  bool complete = false;    // Ack
  uint32_t code = 0;        // Error: a chiron StatusCode
  std::string message;      // Error, Rejected (at most kMaxMessageSize bytes)
};

// Encodes `frame` as the `sequence`-th server frame of the connection whose hello carried
// `nonce`, with its MAC under `ack_key` (a Rejected frame carries none; ack_key is then unused).
// Messages longer than kMaxMessageSize are cut.
Bytes EncodeServerFrame(const ServerFrame& frame, ByteSpan ack_key, const Nonce& nonce,
                        uint64_t sequence);

// How many bytes the server frame at the start of `bytes` has: nullopt when more bytes are
// needed to tell (at most 7 bytes in); InvalidArgument for an unknown type or an over-long
// message.
Result<std::optional<size_t>> ServerFrameSize(ByteSpan bytes);

// Parses and authenticates one whole server frame (exactly ServerFrameSize bytes). DataLoss
// "not authenticated" if the MAC does not verify for this key, nonce and sequence (forged,
// replayed, reordered or from another connection); InvalidArgument if malformed; Internal if
// HMAC-SHA256 cannot be computed. A Rejected frame is returned as is: the caller must treat it as
// unauthenticated.
Result<ServerFrame> ParseServerFrame(ByteSpan bytes, ByteSpan ack_key, const Nonce& nonce,
                                     uint64_t sequence);

}  // namespace chiron::dataplane
