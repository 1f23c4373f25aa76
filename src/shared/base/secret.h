// SecretBytes: key material that zeroes itself when released.
//
// Move-only (a copy would leave a second, unzeroed image); Clone() makes an explicit copy where
// one is truly needed. The zeroing uses explicit_bzero, which the compiler may not elide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "shared/base/bytes.h"

namespace chiron {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  explicit SecretBytes(ByteSpan data);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return SecretBytes(span()); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  ByteSpan span() const { return ByteSpan(data_, size_); }
  MutableByteSpan mutable_span() { return MutableByteSpan(data_, size_); }

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroes any buffer (for temporaries that briefly held a secret).
void SecureZero(void* data, size_t size);

}  // namespace chiron
