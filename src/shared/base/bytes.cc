#include "shared/base/bytes.h"

#include <string>

namespace chiron {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status Overrun(std::string_view what, size_t need, size_t have) {
  return InvalidArgumentError("truncated input: " + std::string(what) + " needs " +
                              std::to_string(need) + " byte(s) but only " +
                              std::to_string(have) + " remain");
}

}  // namespace

std::string HexEncode(ByteSpan data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return InvalidArgumentError("hex string has odd length " + std::to_string(hex.size()));
  }
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("hex string has a non-hex character at position " +
                                  std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

void AppendU16Le(Bytes& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendU32Le(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendU64Le(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendU32Be(Bytes& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void AppendU64Be(Bytes& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

Result<ByteSpan> ByteReader::Take(size_t count, std::string_view what) {
  if (count > remaining()) return Overrun(what, count, remaining());
  ByteSpan out = data_.subspan(offset_, count);
  offset_ += count;
  return out;
}

Status ByteReader::Skip(size_t count, std::string_view what) {
  if (count > remaining()) return Overrun(what, count, remaining());
  offset_ += count;
  return Status::Ok();
}

Result<uint8_t> ByteReader::U8(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(1, what));
  return b[0];
}

namespace {
template <typename T>
T ReadLe(ByteSpan b) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(b[i]) << (8 * i);
  return v;
}
template <typename T>
T ReadBe(ByteSpan b) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v << 8) | b[i];
  return v;
}
}  // namespace

Result<uint16_t> ByteReader::U16Le(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(2, what));
  return ReadLe<uint16_t>(b);
}
Result<uint32_t> ByteReader::U32Le(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(4, what));
  return ReadLe<uint32_t>(b);
}
Result<uint64_t> ByteReader::U64Le(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(8, what));
  return ReadLe<uint64_t>(b);
}
Result<uint32_t> ByteReader::U32Be(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(4, what));
  return ReadBe<uint32_t>(b);
}
Result<uint64_t> ByteReader::U64Be(std::string_view what) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan b, Take(8, what));
  return ReadBe<uint64_t>(b);
}

}  // namespace chiron
