#include "shared/dataplane/wire.h"

#include <algorithm>
#include <cstring>

#include "shared/crypto/hash.h"

namespace chiron::dataplane {
namespace {

constexpr char kMagic[8] = {'C', 'H', 'R', 'N', 'D', 'P', '0', '1'};
constexpr std::string_view kTicketIdLabel = "chiron data plane ticket id v1";
constexpr std::string_view kAckKeyLabel = "chiron data plane ack key v1";
constexpr std::string_view kMacLabel = "chiron data plane frame v1";

// For the encoders, which cannot fail: HMAC-SHA256 fails only if OpenSSL cannot allocate, and
// the zero MAC sent then is refused by every reader. The reader (ParseServerFrame) must not use
// this: a zero expected MAC would accept a forged frame carrying a zero MAC.
Bytes Hmac(ByteSpan key, ByteSpan data) {
  auto mac = crypto::HmacSha256(key, data);
  return mac.ok() ? std::move(*mac) : Bytes(kMacSize, 0);
}

Bytes FrameMacInput(const Nonce& nonce, uint64_t sequence, ByteSpan body) {
  Bytes input(kMacLabel.begin(), kMacLabel.end());
  Append(input, nonce);
  AppendU64Le(input, sequence);
  Append(input, body);
  return input;
}

// At most kMaxMessageSize bytes, never ending inside a UTF-8 character (the messages name
// files and datasets, which may be in any language).
std::string_view Cut(const std::string& message) {
  if (message.size() <= kMaxMessageSize) return message;
  size_t size = kMaxMessageSize;
  // A continuation byte (top bits 10) right after the cut means the cut splits a character.
  while (size > 0 && (static_cast<uint8_t>(message[size]) & 0xC0) == 0x80) --size;
  return std::string_view(message).substr(0, size);
}

}  // namespace

// No zero fallback here: an all-zero ack key would let anyone forge acknowledgements.
Result<TicketId> DeriveTicketId(ByteSpan ticket) {
  CHIRON_ASSIGN_OR_RETURN(Bytes mac, crypto::HmacSha256(ticket, AsBytes(kTicketIdLabel)));
  TicketId id{};
  std::copy_n(mac.begin(), id.size(), id.begin());
  return id;
}

Result<SecretBytes> DeriveAckKey(ByteSpan ticket) {
  CHIRON_ASSIGN_OR_RETURN(Bytes mac, crypto::HmacSha256(ticket, AsBytes(kAckKeyLabel)));
  SecretBytes key(mac);
  SecureZero(mac.data(), mac.size());
  return key;
}

Bytes EncodeHello(const Hello& hello) {
  Bytes out(kMagic, kMagic + sizeof kMagic);
  Append(out, hello.ticket_id);
  Append(out, hello.nonce);
  return out;
}

Result<Hello> ParseHello(ByteSpan bytes) {
  if (bytes.size() != kHelloSize) {
    return InvalidArgumentError("data-plane hello has " + std::to_string(bytes.size()) +
                                " bytes, not " + std::to_string(kHelloSize));
  }
  if (!std::equal(kMagic, kMagic + sizeof kMagic, bytes.begin())) {
    return InvalidArgumentError(
        "not a Chiron data-plane client, or another protocol version (the hello must start with "
        "CHRNDP01); upgrade the client or upload through the API port");
  }
  Hello hello;
  std::copy_n(bytes.begin() + 8, kTicketIdSize, hello.ticket_id.begin());
  std::copy_n(bytes.begin() + 8 + kTicketIdSize, kNonceSize, hello.nonce.begin());
  return hello;
}

std::array<uint8_t, kChunkHeadSize> EncodeChunkHead(const ChunkHead& head) {
  std::array<uint8_t, kChunkHeadSize> out{};
  out[0] = static_cast<uint8_t>(head.type);
  if (head.type == ClientFrameType::kChunk) {
    out[1] = head.last ? 1 : 0;
    for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(head.size >> (8 * i));
    for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(head.index >> (8 * i));
  }
  return out;
}

Result<ChunkHead> ParseChunkHead(ByteSpan bytes) {
  if (bytes.size() != kChunkHeadSize) {
    return InvalidArgumentError("data-plane frame head has " + std::to_string(bytes.size()) +
                                " bytes, not " + std::to_string(kChunkHeadSize));
  }
  ChunkHead head;
  if (bytes[0] == static_cast<uint8_t>(ClientFrameType::kEnd)) {
    if (!std::all_of(bytes.begin() + 1, bytes.end(), [](uint8_t b) { return b == 0; })) {
      return InvalidArgumentError("data-plane End frame has non-zero bytes");
    }
    head.type = ClientFrameType::kEnd;
    return head;
  }
  if (bytes[0] != static_cast<uint8_t>(ClientFrameType::kChunk)) {
    return InvalidArgumentError("data-plane frame has unknown type " + std::to_string(bytes[0]) +
                                " (1 = chunk, 2 = end)");
  }
  if ((bytes[1] & ~uint8_t{1}) != 0 || bytes[2] != 0 || bytes[3] != 0) {
    return InvalidArgumentError("data-plane chunk frame has unknown flags or reserved bits set");
  }
  head.last = bytes[1] == 1;
  for (int i = 0; i < 4; ++i) head.size |= uint32_t{bytes[4 + i]} << (8 * i);
  for (int i = 0; i < 8; ++i) head.index |= uint64_t{bytes[8 + i]} << (8 * i);
  return head;
}

Bytes EncodeServerFrame(const ServerFrame& frame, ByteSpan ack_key, const Nonce& nonce,
                        uint64_t sequence) {
  Bytes body;
  body.push_back(static_cast<uint8_t>(frame.type));
  switch (frame.type) {
    case ServerFrameType::kWelcome:
      AppendU64Le(body, frame.value);
      break;
    case ServerFrameType::kAck:
      AppendU64Le(body, frame.value);
      body.push_back(frame.complete ? 1 : 0);
      break;
    case ServerFrameType::kError:
      AppendU32Le(body, frame.code);
      [[fallthrough]];
    case ServerFrameType::kRejected: {
      std::string_view message = Cut(frame.message);
      AppendU16Le(body, static_cast<uint16_t>(message.size()));
      Append(body, AsBytes(message));
      break;
    }
  }
  if (frame.type != ServerFrameType::kRejected) {
    Append(body, Hmac(ack_key, FrameMacInput(nonce, sequence, body)));
  }
  return body;
}

Result<std::optional<size_t>> ServerFrameSize(ByteSpan bytes) {
  if (bytes.empty()) return std::optional<size_t>();
  auto message_frame = [&](size_t length_at, size_t mac) -> Result<std::optional<size_t>> {
    if (bytes.size() < length_at + 2) return std::optional<size_t>();
    size_t length = size_t{bytes[length_at]} | (size_t{bytes[length_at + 1]} << 8);
    if (length > kMaxMessageSize) {
      return InvalidArgumentError("data-plane server frame announces a " +
                                  std::to_string(length) + "-byte message; at most " +
                                  std::to_string(kMaxMessageSize) + " are allowed");
    }
    return std::optional<size_t>(length_at + 2 + length + mac);
  };
  switch (static_cast<ServerFrameType>(bytes[0])) {
    case ServerFrameType::kWelcome:
      return std::optional<size_t>(1 + 8 + kMacSize);
    case ServerFrameType::kAck:
      return std::optional<size_t>(1 + 8 + 1 + kMacSize);
    case ServerFrameType::kError:
      return message_frame(5, kMacSize);
    case ServerFrameType::kRejected:
      return message_frame(1, 0);
  }
  return InvalidArgumentError("data-plane server frame has unknown type " +
                              std::to_string(bytes[0]));
}

Result<ServerFrame> ParseServerFrame(ByteSpan bytes, ByteSpan ack_key, const Nonce& nonce,
                                     uint64_t sequence) {
  CHIRON_ASSIGN_OR_RETURN(std::optional<size_t> size, ServerFrameSize(bytes));
  if (!size || *size != bytes.size()) {
    return InvalidArgumentError("data-plane server frame has " + std::to_string(bytes.size()) +
                                " bytes; its type and length call for " +
                                (size ? std::to_string(*size) : std::string("more")));
  }
  ServerFrame frame;
  frame.type = static_cast<ServerFrameType>(bytes[0]);
  if (frame.type != ServerFrameType::kRejected) {
    ByteSpan body = bytes.first(bytes.size() - kMacSize);
    // Fails closed: if the MAC cannot be computed, nothing is believed.
    CHIRON_ASSIGN_OR_RETURN(Bytes expected,
                            crypto::HmacSha256(ack_key, FrameMacInput(nonce, sequence, body)));
    if (!ConstantTimeEqual(expected, bytes.last(kMacSize))) {
      return DataLossError(
          "a data-plane reply from the runtime is not authenticated (forged, replayed or "
          "reordered on the way); nothing it says is believed: run the upload again to resume "
          "from the last authenticated acknowledgement");
    }
    bytes = body;
  }
  ByteReader reader(bytes.subspan(1));
  switch (frame.type) {
    case ServerFrameType::kWelcome: {
      CHIRON_ASSIGN_OR_RETURN(frame.value, reader.U64Le("welcome next chunk"));
      break;
    }
    case ServerFrameType::kAck: {
      CHIRON_ASSIGN_OR_RETURN(frame.value, reader.U64Le("ack acknowledged_through"));
      CHIRON_ASSIGN_OR_RETURN(uint8_t complete, reader.U8("ack complete flag"));
      if (complete > 1) return InvalidArgumentError("data-plane ack complete flag is not 0 or 1");
      frame.complete = complete == 1;
      break;
    }
    case ServerFrameType::kError: {
      CHIRON_ASSIGN_OR_RETURN(frame.code, reader.U32Le("error code"));
      [[fallthrough]];
    }
    case ServerFrameType::kRejected: {
      CHIRON_ASSIGN_OR_RETURN(uint16_t length, reader.U16Le("message length"));
      CHIRON_ASSIGN_OR_RETURN(ByteSpan text, reader.Take(length, "message"));
      frame.message = ToString(text);
      break;
    }
  }
  return frame;
}

}  // namespace chiron::dataplane
