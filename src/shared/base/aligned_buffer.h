// AlignedBuffer: bytes at a 4096-byte aligned address, followed by zeros up to the next multiple
// of 4096, so that padded() can go to an O_DIRECT write as it is (FileSystem::WriteAtDurable).
// The upload path receives chunks into these and the store writes them without another copy.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "shared/base/bytes.h"

namespace chiron {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  static constexpr size_t RoundUp(size_t size) {
    return (size + kAlignment - 1) & ~(kAlignment - 1);
  }

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size) { Resize(size); }

  // Sets the size. Growing past the capacity allocates afresh and does not keep the contents
  // (the buffer is meant to be received into); within the capacity the bytes stay. The bytes
  // from size() to RoundUp(size()) are zero afterwards. Throws std::bad_alloc like new.
  void Resize(size_t size) {
    size_t padded = RoundUp(size);
    if (padded > capacity_) {
      data_.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlignment, padded)));
      if (!data_) throw std::bad_alloc();
      capacity_ = padded;
    }
    size_ = size;
    if (padded > size) std::memset(data_.get() + size, 0, padded - size);
  }

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  ByteSpan span() const { return ByteSpan(data_.get(), size_); }
  MutableByteSpan mutable_span() { return MutableByteSpan(data_.get(), size_); }
  // The bytes and the zeros after them: RoundUp(size()) bytes at an aligned address.
  ByteSpan padded() const { return ByteSpan(data_.get(), RoundUp(size_)); }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace chiron
