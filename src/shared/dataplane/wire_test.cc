// Attacks on the data plane's wire codec (docs/formats/data-plane.md): every parser is fed the
// malformed bytes a hostile peer or host could send, and every server frame is tampered with the
// way a host in the middle could (flipped bits, replays, reorders, frames from another
// connection or another ticket, cuts and extensions). The byte layout and the MAC input are
// checked against OpenSSL's HMAC directly and against known answers computed with
// `openssl dgst -sha256 -mac HMAC`, so a change to the format cannot pass unnoticed.
#include "shared/dataplane/wire.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "shared/crypto/random.h"

namespace chiron::dataplane {
namespace {

// The ticket 00 01 .. 1f and the nonce a0 a1 .. af of the known answers.
Bytes CountingTicket() {
  Bytes ticket(kTicketSize);
  for (size_t i = 0; i < ticket.size(); ++i) ticket[i] = static_cast<uint8_t>(i);
  return ticket;
}

Nonce CountingNonce() {
  Nonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(0xa0 + i);
  return nonce;
}

Bytes Random(size_t size) {
  auto bytes = crypto::RandomBytes(size);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : Bytes(size, 0x42);
}

Nonce RandomNonce() {
  Bytes bytes = Random(kNonceSize);
  Nonce nonce{};
  std::copy(bytes.begin(), bytes.end(), nonce.begin());
  return nonce;
}

// HMAC-SHA256 straight from OpenSSL: an oracle independent of chiron's crypto wrapper.
Bytes OpensslHmac(ByteSpan key, ByteSpan data) {
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned int out_size = 0;
  static const uint8_t kEmpty = 0;
  EXPECT_NE(HMAC(EVP_sha256(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
                 data.empty() ? &kEmpty : data.data(), data.size(), out, &out_size),
            nullptr);
  return Bytes(out, out + out_size);
}

// The MAC of the format's spec: HMAC(ack key, label | nonce | sequence (u64 LE) | body).
Bytes SpecMac(ByteSpan ack_key, const Nonce& nonce, uint64_t sequence, ByteSpan body) {
  Bytes input = ToBytes("chiron data plane frame v1");
  Append(input, nonce);
  AppendU64Le(input, sequence);
  Append(input, body);
  return OpensslHmac(ack_key, input);
}

ServerFrame Welcome(uint64_t next) {
  ServerFrame frame;
  frame.type = ServerFrameType::kWelcome;
  frame.value = next;
  return frame;
}

ServerFrame Ack(uint64_t through, bool complete) {
  ServerFrame frame;
  frame.type = ServerFrameType::kAck;
  frame.value = through;
  frame.complete = complete;
  return frame;
}

ServerFrame ErrorFrame(uint32_t code, std::string message) {
  ServerFrame frame;
  frame.type = ServerFrameType::kError;
  frame.code = code;
  frame.message = std::move(message);
  return frame;
}

ServerFrame Rejected(std::string message) {
  ServerFrame frame;
  frame.type = ServerFrameType::kRejected;
  frame.message = std::move(message);
  return frame;
}

// The authenticated frames the MAC attacks run on, one of each shape.
std::vector<ServerFrame> AuthenticatedFrames() {
  return {
      Welcome(17), Ack(44, false), Ack(45, true),
      ErrorFrame(static_cast<uint32_t>(StatusCode::kDataLoss), "chunk 3 failed authentication")};
}

void ExpectSameFrame(const ServerFrame& parsed, const ServerFrame& sent) {
  EXPECT_EQ(parsed.type, sent.type);
  EXPECT_EQ(parsed.value, sent.value);
  EXPECT_EQ(parsed.complete, sent.complete);
  EXPECT_EQ(parsed.code, sent.code);
  EXPECT_EQ(parsed.message, sent.message);
}

// ---- Hello ----

TEST(DataPlaneWireTest, HelloRoundTripsWithTheSpecLayout) {
  Hello hello;
  Bytes id = Random(kTicketIdSize);
  std::copy(id.begin(), id.end(), hello.ticket_id.begin());
  hello.nonce = RandomNonce();
  Bytes wire = EncodeHello(hello);
  ASSERT_EQ(wire.size(), kHelloSize);
  ASSERT_EQ(kHelloSize, 56u);
  EXPECT_EQ(ToString(ByteSpan(wire).first(8)), "CHRNDP01");
  EXPECT_EQ(Bytes(wire.begin() + 8, wire.begin() + 40), id);
  EXPECT_EQ(Bytes(wire.begin() + 40, wire.end()), Bytes(hello.nonce.begin(), hello.nonce.end()));
  auto parsed = ParseHello(wire);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->ticket_id, hello.ticket_id);
  EXPECT_EQ(parsed->nonce, hello.nonce);
}

TEST(DataPlaneWireTest, HelloKnownAnswer) {
  Hello hello;
  hello.ticket_id = *DeriveTicketId(CountingTicket());
  hello.nonce = CountingNonce();
  EXPECT_EQ(HexEncode(EncodeHello(hello)),
            "4348524e44503031"
            "36b48897f17ed9cbdaccf1e622bafddb52767bd241596dac5a484d1efedd9e45"
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
}

TEST(DataPlaneWireTest, HelloOfTheWrongSizeIsRefused) {
  Bytes wire = EncodeHello(Hello{});
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{8}, kHelloSize - 1, kHelloSize + 1, 2 * kHelloSize}) {
    Bytes bytes = wire;
    bytes.resize(size, 0);
    auto parsed = ParseHello(bytes);
    ASSERT_FALSE(parsed.ok()) << size;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(std::to_string(size) + " bytes, not 56"),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(DataPlaneWireTest, HelloWithTheWrongMagicIsRefused) {
  Bytes wire = EncodeHello(Hello{});
  for (size_t i = 0; i < 8; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bytes = wire;
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
      auto parsed = ParseHello(bytes);
      ASSERT_FALSE(parsed.ok()) << i << " " << bit;
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find("CHRNDP01"), std::string::npos);
    }
  }
  // Another version of the protocol, and a TLS ClientHello sent to the wrong port.
  Bytes other = wire;
  other[7] = '2';
  EXPECT_EQ(ParseHello(other).status().code(), StatusCode::kInvalidArgument);
  Bytes tls = wire;
  tls[0] = 0x16;
  tls[1] = 0x03;
  tls[2] = 0x01;
  EXPECT_EQ(ParseHello(tls).status().code(), StatusCode::kInvalidArgument);
}

// ---- Client frame heads ----

TEST(DataPlaneWireTest, ChunkHeadRoundTripsWithTheSpecLayout) {
  struct Case {
    bool last;
    uint32_t size;
    uint64_t index;
  };
  for (const Case& c :
       {Case{false, 0, 0}, Case{true, 1048591, 44}, Case{false, 0xffffffffu, 0xffffffffffffffffull},
        Case{true, 0x04030201u, 0x0c0b0a0908070605ull}}) {
    ChunkHead head;
    head.type = ClientFrameType::kChunk;
    head.last = c.last;
    head.size = c.size;
    head.index = c.index;
    auto wire = EncodeChunkHead(head);
    EXPECT_EQ(wire[0], 1);
    EXPECT_EQ(wire[1], c.last ? 1 : 0);
    EXPECT_EQ(wire[2], 0);
    EXPECT_EQ(wire[3], 0);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(wire[4 + i], static_cast<uint8_t>(c.size >> (8 * i)));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(wire[8 + i], static_cast<uint8_t>(c.index >> (8 * i)));
    auto parsed = ParseChunkHead(wire);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->type, ClientFrameType::kChunk);
    EXPECT_EQ(parsed->last, c.last);
    EXPECT_EQ(parsed->size, c.size);
    EXPECT_EQ(parsed->index, c.index);
  }
  ChunkHead head;
  head.last = true;
  head.size = 0x04030201u;
  head.index = 0x0c0b0a0908070605ull;
  EXPECT_EQ(HexEncode(EncodeChunkHead(head)),
            "01010000010203040506070809"
            "0a0b0c");
}

TEST(DataPlaneWireTest, EndHeadRoundTripsAsAllZerosAfterTheType) {
  ChunkHead end;
  end.type = ClientFrameType::kEnd;
  // Whatever else the struct says, End encodes as type 2 and zeros.
  end.last = true;
  end.size = 99;
  end.index = 7;
  auto wire = EncodeChunkHead(end);
  EXPECT_EQ(HexEncode(wire), "02000000000000000000000000000000");
  auto parsed = ParseChunkHead(wire);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->type, ClientFrameType::kEnd);
  EXPECT_FALSE(parsed->last);
  EXPECT_EQ(parsed->size, 0u);
  EXPECT_EQ(parsed->index, 0u);
}

TEST(DataPlaneWireTest, ChunkHeadOfTheWrongSizeIsRefused) {
  ChunkHead head;
  head.size = 16;
  auto wire = EncodeChunkHead(head);
  for (size_t size : {size_t{0}, size_t{1}, kChunkHeadSize - 1, kChunkHeadSize + 1, size_t{56}}) {
    Bytes bytes(wire.begin(), wire.end());
    bytes.resize(size, 0);
    auto parsed = ParseChunkHead(bytes);
    ASSERT_FALSE(parsed.ok()) << size;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("not 16"), std::string::npos);
  }
}

TEST(DataPlaneWireTest, ChunkHeadOfAnUnknownTypeIsRefused) {
  ChunkHead head;
  head.size = 100;
  head.index = 3;
  auto wire = EncodeChunkHead(head);
  int refused = 0;
  for (int type = 0; type < 256; ++type) {
    if (type == 1 || type == 2) continue;
    auto bytes = wire;
    bytes[0] = static_cast<uint8_t>(type);
    auto parsed = ParseChunkHead(bytes);
    ASSERT_FALSE(parsed.ok()) << type;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("unknown type " + std::to_string(type)),
              std::string::npos)
        << parsed.status().message();
    ++refused;
  }
  EXPECT_EQ(refused, 254);
  // The all-zero head (type 0) is not an End frame either.
  std::array<uint8_t, kChunkHeadSize> zeros{};
  EXPECT_EQ(ParseChunkHead(zeros).status().code(), StatusCode::kInvalidArgument);
}

TEST(DataPlaneWireTest, ChunkHeadWithUnknownFlagBitsIsRefused) {
  ChunkHead head;
  head.size = 100;
  auto wire = EncodeChunkHead(head);
  for (int bit = 1; bit < 8; ++bit) {
    for (uint8_t last : {uint8_t{0}, uint8_t{1}}) {
      auto bytes = wire;
      bytes[1] = static_cast<uint8_t>((1u << bit) | last);
      auto parsed = ParseChunkHead(bytes);
      ASSERT_FALSE(parsed.ok()) << bit;
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find("flags"), std::string::npos);
    }
  }
}

// Sets each single bit of each byte at `positions` (which must be zero in `wire`) and expects
// ParseChunkHead to refuse it as InvalidArgument naming `what`.
void ExpectEverySingleBitRefused(const std::array<uint8_t, kChunkHeadSize>& wire,
                                 const std::vector<size_t>& positions, const std::string& what) {
  for (size_t at : positions) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bytes = wire;
      bytes[at] = static_cast<uint8_t>(1u << bit);
      auto parsed = ParseChunkHead(bytes);
      ASSERT_FALSE(parsed.ok()) << at << " " << bit;
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find(what), std::string::npos)
          << parsed.status().message();
    }
  }
}

TEST(DataPlaneWireTest, ChunkHeadWithNonZeroReservedBytesIsRefused) {
  ChunkHead head;
  head.last = true;
  head.size = 100;
  ExpectEverySingleBitRefused(EncodeChunkHead(head), {2, 3}, "reserved");
}

TEST(DataPlaneWireTest, EndWithAnyNonZeroByteIsRefused) {
  ChunkHead end;
  end.type = ClientFrameType::kEnd;
  std::vector<size_t> every_byte_but_the_type;
  for (size_t at = 1; at < kChunkHeadSize; ++at) every_byte_but_the_type.push_back(at);
  ExpectEverySingleBitRefused(EncodeChunkHead(end), every_byte_but_the_type,
                              "End frame has non-zero bytes");
}

// ---- Server frames ----

TEST(DataPlaneWireTest, EveryServerFrameTypeRoundTrips) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  struct Case {
    ServerFrame frame;
    size_t size;
  };
  std::string longest(kMaxMessageSize, 'm');
  std::vector<Case> cases = {
      {Welcome(0), 41},
      {Welcome(0xffffffffffffffffull), 41},
      {Ack(0, false), 42},
      {Ack(12345678901ull, true), 42},
      {ErrorFrame(static_cast<uint32_t>(StatusCode::kInvalidArgument), ""), 39},
      {ErrorFrame(static_cast<uint32_t>(StatusCode::kDataLoss), "chunk 7 failed authentication"),
       39 + 29},
      {ErrorFrame(0xffffffffu, longest), kMaxServerFrameSize},
      {Rejected(""), 3},
      {Rejected("unknown upload ticket; begin the upload again"), 3 + 45},
      {Rejected(longest), 3 + kMaxMessageSize},
  };
  uint64_t sequence = 0;
  for (const Case& c : cases) {
    Bytes wire = EncodeServerFrame(c.frame, key.span(), nonce, sequence);
    EXPECT_EQ(wire.size(), c.size) << static_cast<int>(c.frame.type);
    EXPECT_EQ(wire[0], static_cast<uint8_t>(c.frame.type));
    auto size = ServerFrameSize(wire);
    ASSERT_TRUE(size.ok()) << size.status().ToString();
    ASSERT_TRUE(size->has_value());
    EXPECT_EQ(**size, wire.size());
    auto parsed = ParseServerFrame(wire, key.span(), nonce, sequence);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    ExpectSameFrame(*parsed, c.frame);
    ++sequence;
  }
}

// The bytes of every type, body field by field, with the MAC computed by OpenSSL from the spec.
TEST(DataPlaneWireTest, ServerFramesHaveTheSpecLayoutAndMac) {
  SecretBytes key = *DeriveAckKey(CountingTicket());
  Nonce nonce = CountingNonce();
  const uint64_t sequence = 0x0102030405060708ull;

  Bytes welcome = EncodeServerFrame(Welcome(0x1122334455667788ull), key.span(), nonce, sequence);
  Bytes body = {1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  Append(body, SpecMac(key.span(), nonce, sequence, body));
  EXPECT_EQ(HexEncode(welcome), HexEncode(body));

  Bytes ack = EncodeServerFrame(Ack(0x2a, true), key.span(), nonce, sequence);
  body = {2, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1};
  Append(body, SpecMac(key.span(), nonce, sequence, body));
  EXPECT_EQ(HexEncode(ack), HexEncode(body));

  Bytes error = EncodeServerFrame(ErrorFrame(0x0a0b0c0d, "no"), key.span(), nonce, sequence);
  body = {3, 0x0d, 0x0c, 0x0b, 0x0a, 2, 0, 'n', 'o'};
  Append(body, SpecMac(key.span(), nonce, sequence, body));
  EXPECT_EQ(HexEncode(error), HexEncode(body));

  std::string message(300, 'r');  // both length bytes non-zero: 0x012c
  Bytes rejected = EncodeServerFrame(Rejected(message), key.span(), nonce, sequence);
  body = {0xff, 0x2c, 0x01};
  Append(body, AsBytes(message));
  EXPECT_EQ(HexEncode(rejected), HexEncode(body));  // no MAC
  // A Rejected frame is the same whatever the key, nonce and sequence: it proves nothing.
  EXPECT_EQ(EncodeServerFrame(Rejected(message), {}, Nonce{}, 0), rejected);
}

// Known answer from `openssl dgst -sha256 -mac HMAC` (ack key of ticket 00..1f, nonce a0..af,
// sequence 5, welcome with next chunk 7), so the labels and the MAC input order are pinned.
TEST(DataPlaneWireTest, WelcomeKnownAnswer) {
  SecretBytes key = *DeriveAckKey(CountingTicket());
  Bytes wire = EncodeServerFrame(Welcome(7), key.span(), CountingNonce(), 5);
  EXPECT_EQ(HexEncode(wire),
            "010700000000000000"
            "503bc5eb8bbf9f9b2620bd481e1a6637308ecb21ab2c36cff0a5d52d1836225a");
}

TEST(DataPlaneWireTest, ServerFrameSizeOnEveryPrefix) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  struct Case {
    ServerFrame frame;
    size_t decidable_at;  // bytes needed to tell the size
  };
  std::vector<Case> cases = {
      {Welcome(9), 1},
      {Ack(9, true), 1},
      {ErrorFrame(5, ""), 7},
      {ErrorFrame(5, "short"), 7},
      {ErrorFrame(5, std::string(300, 'e')), 7},
      {ErrorFrame(5, std::string(kMaxMessageSize, 'e')), 7},
      {Rejected(""), 3},
      {Rejected(std::string(300, 'r')), 3},
      {Rejected(std::string(kMaxMessageSize, 'r')), 3},
  };
  Bytes next = EncodeServerFrame(Ack(1, false), key.span(), nonce, 1);
  for (const Case& c : cases) {
    Bytes wire = EncodeServerFrame(c.frame, key.span(), nonce, 0);
    for (size_t prefix = 0; prefix <= wire.size(); ++prefix) {
      auto size = ServerFrameSize(ByteSpan(wire).first(prefix));
      ASSERT_TRUE(size.ok()) << prefix << ": " << size.status().ToString();
      if (prefix < c.decidable_at) {
        EXPECT_FALSE(size->has_value())
            << "type " << static_cast<int>(c.frame.type) << " prefix " << prefix;
      } else {
        ASSERT_TRUE(size->has_value()) << prefix;
        EXPECT_EQ(**size, wire.size()) << prefix;
      }
    }
    // The next frame already in the buffer does not change the answer.
    Bytes two = wire;
    Append(two, next);
    auto size = ServerFrameSize(two);
    ASSERT_TRUE(size.ok() && size->has_value());
    EXPECT_EQ(**size, wire.size());
  }
}

TEST(DataPlaneWireTest, OverLongMessageLengthIsRefused) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  for (uint16_t length : {uint16_t{kMaxMessageSize + 1}, uint16_t{4096}, uint16_t{0xffff}}) {
    // Error: type | code | length | message | MAC, with a MAC that verifies.
    Bytes error = {3, 1, 0, 0, 0};
    AppendU16Le(error, length);
    error.resize(error.size() + length, 'x');
    Append(error, SpecMac(key.span(), nonce, 0, error));
    // Rejected: type | length | message.
    Bytes rejected = {0xff};
    AppendU16Le(rejected, length);
    rejected.resize(rejected.size() + length, 'x');
    for (const Bytes& wire : {error, rejected}) {
      // Refused as soon as the length is visible, before the message arrives.
      size_t length_end = wire[0] == 3 ? 7 : 3;
      for (size_t prefix : {length_end, wire.size()}) {
        auto size = ServerFrameSize(ByteSpan(wire).first(prefix));
        ASSERT_FALSE(size.ok()) << length << " " << prefix;
        EXPECT_EQ(size.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(size.status().message().find(std::to_string(length) + "-byte message"),
                  std::string::npos);
      }
      auto parsed = ParseServerFrame(wire, key.span(), nonce, 0);
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(DataPlaneWireTest, UnknownServerFrameTypeIsRefused) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  int refused = 0;
  for (int type = 0; type < 256; ++type) {
    if (type == 1 || type == 2 || type == 3 || type == 0xff) continue;
    // Shaped like a Welcome, with a MAC that verifies over it: still refused for its type.
    Bytes wire = {static_cast<uint8_t>(type), 9, 0, 0, 0, 0, 0, 0, 0};
    Append(wire, SpecMac(key.span(), nonce, 0, wire));
    for (size_t prefix : {size_t{1}, wire.size()}) {
      auto size = ServerFrameSize(ByteSpan(wire).first(prefix));
      ASSERT_FALSE(size.ok()) << type;
      EXPECT_EQ(size.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(size.status().message().find("unknown type " + std::to_string(type)),
                std::string::npos);
    }
    auto parsed = ParseServerFrame(wire, key.span(), nonce, 0);
    ASSERT_FALSE(parsed.ok()) << type;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    ++refused;
  }
  EXPECT_EQ(refused, 252);
}

TEST(DataPlaneWireTest, AckCompleteFlagOtherThanZeroOrOneIsRefused) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  for (uint8_t flag : {uint8_t{2}, uint8_t{0x80}, uint8_t{0xff}}) {
    // Authentic (the MAC verifies), so only the flag check can refuse it.
    Bytes wire = {2, 5, 0, 0, 0, 0, 0, 0, 0, flag};
    Append(wire, SpecMac(key.span(), nonce, 3, wire));
    auto parsed = ParseServerFrame(wire, key.span(), nonce, 3);
    ASSERT_FALSE(parsed.ok()) << int{flag};
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("complete flag"), std::string::npos);
  }
}

TEST(DataPlaneWireTest, MessagesLongerThanTheLimitAreCutOnEncode) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  std::string message;
  for (size_t i = 0; i < 5000; ++i) message.push_back(static_cast<char>('a' + i % 26));
  for (size_t length : {kMaxMessageSize, kMaxMessageSize + 1, size_t{5000}}) {
    std::string sent = message.substr(0, length);
    for (const ServerFrame& frame : {ErrorFrame(13, sent), Rejected(sent)}) {
      Bytes wire = EncodeServerFrame(frame, key.span(), nonce, 2);
      size_t expected =
          frame.type == ServerFrameType::kError ? kMaxServerFrameSize : 3 + kMaxMessageSize;
      EXPECT_EQ(wire.size(), expected) << length;
      auto parsed = ParseServerFrame(wire, key.span(), nonce, 2);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      EXPECT_EQ(parsed->message, message.substr(0, kMaxMessageSize));
    }
  }
}

TEST(DataPlaneWireTest, ACutNeverSplitsAUtf8Character) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  // "é" is two bytes, "€" three: placed so that byte kMaxMessageSize falls inside them.
  for (const std::string& wide : {std::string("\xC3\xA9"), std::string("\xE2\x82\xAC")}) {
    for (size_t before = kMaxMessageSize - wide.size() + 1; before < kMaxMessageSize; ++before) {
      std::string message = std::string(before, 'x') + wide + "tail";
      auto parsed =
          ParseServerFrame(EncodeServerFrame(ErrorFrame(1, message), key.span(), nonce, 0),
                           key.span(), nonce, 0);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      EXPECT_EQ(parsed->message, std::string(before, 'x')) << before;
    }
  }
  // A character that ends exactly at the limit is kept whole.
  std::string fits = std::string(kMaxMessageSize - 2, 'x') + "\xC3\xA9" + "more";
  auto parsed = ParseServerFrame(EncodeServerFrame(Rejected(fits), {}, {}, 0), {}, {}, 0);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->message, fits.substr(0, kMaxMessageSize));
}

// ---- MAC attacks: what a host in the middle can try on the runtime's frames ----

TEST(DataPlaneWireTest, AFlippedBitAnywhereInAnAuthenticatedFrameIsDataLoss) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  for (const ServerFrame& frame : AuthenticatedFrames()) {
    Bytes wire = EncodeServerFrame(frame, key.span(), nonce, 6);
    ASSERT_TRUE(ParseServerFrame(wire, key.span(), nonce, 6).ok());
    // The type byte and an Error's length bytes decide the size; flipping them makes the frame
    // malformed (InvalidArgument) or a frame of another type whose MAC fails (DataLoss).
    size_t structural_end = frame.type == ServerFrameType::kError ? 7 : 1;
    for (size_t at = 0; at < wire.size(); ++at) {
      bool structural = at == 0 || (at >= 5 && at < structural_end);
      for (int bit = 0; bit < 8; ++bit) {
        Bytes bytes = wire;
        bytes[at] ^= static_cast<uint8_t>(1u << bit);
        auto parsed = ParseServerFrame(bytes, key.span(), nonce, 6);
        ASSERT_FALSE(parsed.ok()) << "type " << int{wire[0]} << " byte " << at << " bit " << bit;
        if (structural) {
          EXPECT_TRUE(parsed.status().code() == StatusCode::kDataLoss ||
                      parsed.status().code() == StatusCode::kInvalidArgument)
              << parsed.status().ToString();
        } else {
          EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss)
              << "type " << int{wire[0]} << " byte " << at << " bit " << bit;
          EXPECT_NE(parsed.status().message().find("not authenticated"), std::string::npos);
        }
      }
    }
  }
}

// A host that records frame k and plays it back in place of frame j, or plays them out of order.
TEST(DataPlaneWireTest, TheRightFrameAtTheWrongSequenceIsDataLoss) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  std::vector<Bytes> frames;
  frames.push_back(EncodeServerFrame(Welcome(0), key.span(), nonce, 0));
  for (uint64_t i = 1; i < 6; ++i) {
    frames.push_back(EncodeServerFrame(Ack(i - 1, i == 5), key.span(), nonce, i));
  }
  for (uint64_t k = 0; k < frames.size(); ++k) {
    for (uint64_t j = 0; j < frames.size() + 2; ++j) {
      auto parsed = ParseServerFrame(frames[k], key.span(), nonce, j);
      if (j == k) {
        EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
      } else {
        ASSERT_FALSE(parsed.ok()) << k << " at " << j;
        EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
      }
    }
  }
  // Every bit of the sequence is bound, not only the low ones.
  Bytes ack = EncodeServerFrame(Ack(3, false), key.span(), nonce, 3);
  for (int bit = 0; bit < 64; ++bit) {
    uint64_t other = 3 ^ (uint64_t{1} << bit);
    EXPECT_EQ(ParseServerFrame(ack, key.span(), nonce, other).status().code(),
              StatusCode::kDataLoss)
        << bit;
  }
}

// A host that replays an acknowledgement recorded on an earlier connection of the same upload.
TEST(DataPlaneWireTest, AFrameFromAnotherConnectionIsDataLoss) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  for (const ServerFrame& frame : AuthenticatedFrames()) {
    Bytes wire = EncodeServerFrame(frame, key.span(), nonce, 1);
    ASSERT_TRUE(ParseServerFrame(wire, key.span(), nonce, 1).ok());
    for (size_t at = 0; at < kNonceSize; ++at) {
      Nonce other = nonce;
      other[at] ^= 0x01;
      auto parsed = ParseServerFrame(wire, key.span(), other, 1);
      ASSERT_FALSE(parsed.ok()) << at;
      EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
    }
    EXPECT_EQ(ParseServerFrame(wire, key.span(), RandomNonce(), 1).status().code(),
              StatusCode::kDataLoss);
  }
}

// A host that hands one upload's acknowledgements to another upload's client, or that knows the
// public ticket id (it sees every hello) and tries to MAC with it.
TEST(DataPlaneWireTest, AFrameUnderAnotherTicketsAckKeyIsDataLoss) {
  Bytes ticket = Random(kTicketSize);
  SecretBytes key = *DeriveAckKey(ticket);
  Nonce nonce = RandomNonce();
  Bytes near = ticket;
  near[kTicketSize - 1] ^= 0x80;
  TicketId id = *DeriveTicketId(ticket);
  auto key_of = [](ByteSpan t) {
    SecretBytes k = *DeriveAckKey(t);
    return Bytes(k.span().begin(), k.span().end());
  };
  std::vector<Bytes> wrong_keys = {key_of(Random(kTicketSize)), key_of(near),
                                   Bytes(id.begin(), id.end()), ticket,
                                   Bytes(kMacSize, 0),          Bytes{}};
  for (const ServerFrame& frame : AuthenticatedFrames()) {
    Bytes wire = EncodeServerFrame(frame, key.span(), nonce, 2);
    ASSERT_TRUE(ParseServerFrame(wire, key.span(), nonce, 2).ok());
    for (size_t i = 0; i < wrong_keys.size(); ++i) {
      auto parsed = ParseServerFrame(wire, wrong_keys[i], nonce, 2);
      ASSERT_FALSE(parsed.ok()) << i;
      EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss) << i;
      // And what each wrong key would produce does not verify under the right one.
      Bytes forged = EncodeServerFrame(frame, wrong_keys[i], nonce, 2);
      EXPECT_EQ(ParseServerFrame(forged, key.span(), nonce, 2).status().code(),
                StatusCode::kDataLoss)
          << i;
    }
  }
}

// A forger without the key: an all-zero or all-one MAC never verifies, whatever the key (even an
// empty one, which a caller bug could pass).
TEST(DataPlaneWireTest, AConstantMacNeverVerifies) {
  Nonce nonce = RandomNonce();
  for (uint8_t fill : {uint8_t{0}, uint8_t{0xff}}) {
    Bytes wire = {1, 4, 0, 0, 0, 0, 0, 0, 0};
    wire.resize(wire.size() + kMacSize, fill);
    for (const Bytes& key : {Bytes{}, Bytes(kMacSize, 0), Random(kMacSize)}) {
      EXPECT_EQ(ParseServerFrame(wire, key, nonce, 0).status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(DataPlaneWireTest, AFrameCutOrExtendedIsInvalidArgument) {
  SecretBytes key = *DeriveAckKey(Random(kTicketSize));
  Nonce nonce = RandomNonce();
  std::vector<ServerFrame> frames = AuthenticatedFrames();
  frames.push_back(Rejected("unknown ticket"));
  for (const ServerFrame& frame : frames) {
    Bytes wire = EncodeServerFrame(frame, key.span(), nonce, 0);
    for (size_t size = 0; size < wire.size(); ++size) {
      auto parsed = ParseServerFrame(ByteSpan(wire).first(size), key.span(), nonce, 0);
      ASSERT_FALSE(parsed.ok()) << size;
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << size;
    }
    for (const Bytes& tail : {Bytes{0}, Bytes(kMacSize, 0x5a),
                              EncodeServerFrame(Ack(1, false), key.span(), nonce, 1)}) {
      Bytes longer = wire;
      Append(longer, tail);
      auto parsed = ParseServerFrame(longer, key.span(), nonce, 0);
      ASSERT_FALSE(parsed.ok()) << tail.size();
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find("call for " + std::to_string(wire.size())),
                std::string::npos)
          << parsed.status().message();
    }
  }
}

// ---- Derivations ----

TEST(DataPlaneWireTest, TicketIdAndAckKeyAreDistinctDeterministicDerivations) {
  std::vector<Bytes> tickets = {CountingTicket(), Random(kTicketSize), Random(kTicketSize)};
  Bytes near = tickets[1];
  near[0] ^= 0x01;
  tickets.push_back(near);
  std::vector<Bytes> seen;
  for (const Bytes& ticket : tickets) {
    TicketId id = *DeriveTicketId(ticket);
    SecretBytes key = *DeriveAckKey(ticket);
    Bytes id_bytes(id.begin(), id.end());
    Bytes key_bytes(key.span().begin(), key.span().end());
    ASSERT_EQ(key_bytes.size(), kMacSize);
    EXPECT_EQ(*DeriveTicketId(ticket), id);
    EXPECT_TRUE(ConstantTimeEqual(DeriveAckKey(ticket)->span(), key.span()));
    EXPECT_NE(id_bytes, key_bytes);
    EXPECT_NE(id_bytes, ticket);
    EXPECT_NE(key_bytes, ticket);
    // Independent oracle: HMAC-SHA256 keyed by the ticket over the label.
    EXPECT_EQ(id_bytes, OpensslHmac(ticket, AsBytes("chiron data plane ticket id v1")));
    EXPECT_EQ(key_bytes, OpensslHmac(ticket, AsBytes("chiron data plane ack key v1")));
    for (const Bytes& other : seen) {
      EXPECT_NE(other, id_bytes);
      EXPECT_NE(other, key_bytes);
    }
    seen.push_back(id_bytes);
    seen.push_back(key_bytes);
  }
  // Known answers from `openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f`.
  TicketId id = *DeriveTicketId(CountingTicket());
  EXPECT_EQ(HexEncode(id), "36b48897f17ed9cbdaccf1e622bafddb52767bd241596dac5a484d1efedd9e45");
  EXPECT_EQ(HexEncode(DeriveAckKey(CountingTicket())->span()),
            "045d186b015929d91345612fabde314dc4feede5dbe11b15fb07a77c2195d9df");
}

}  // namespace
}  // namespace chiron::dataplane
