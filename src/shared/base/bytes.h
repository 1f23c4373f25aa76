// Byte strings and the helpers every module needs: hex, constant-time comparison, and
// bounds-checked little/big-endian reads for parsers of untrusted input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/status.h"

namespace chiron {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string ToString(ByteSpan b) { return std::string(b.begin(), b.end()); }

// Lower-case hex.
std::string HexEncode(ByteSpan data);
// Accepts upper or lower case; rejects odd length and non-hex characters.
Result<Bytes> HexDecode(std::string_view hex);

// Compares in time independent of the contents (lengths are not secret).
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

// Appends integers in a fixed byte order.
void AppendU16Le(Bytes& out, uint16_t v);
void AppendU32Le(Bytes& out, uint32_t v);
void AppendU64Le(Bytes& out, uint64_t v);
void AppendU32Be(Bytes& out, uint32_t v);
void AppendU64Be(Bytes& out, uint64_t v);
inline void Append(Bytes& out, ByteSpan data) { out.insert(out.end(), data.begin(), data.end()); }

// A cursor over untrusted bytes. Every read checks bounds and, on overrun, returns an error that
// names `what` so the caller's message tells the user which field was cut short.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return data_.size() - offset_; }
  bool empty() const { return remaining() == 0; }

  Result<uint8_t> U8(std::string_view what);
  Result<uint16_t> U16Le(std::string_view what);
  Result<uint32_t> U32Le(std::string_view what);
  Result<uint64_t> U64Le(std::string_view what);
  Result<uint32_t> U32Be(std::string_view what);
  Result<uint64_t> U64Be(std::string_view what);
  // A view into the underlying bytes (valid as long as they are).
  Result<ByteSpan> Take(size_t count, std::string_view what);
  Status Skip(size_t count, std::string_view what);

 private:
  ByteSpan data_;
  size_t offset_ = 0;
};

}  // namespace chiron
