// Secrets by type: memory that holds keys or owner plaintext and zeroes itself when released.
//
// SecretBytes: a fixed-size buffer (keys, a dataset's records). Move-only (a copy would leave a
// second, unzeroed image); Clone() makes an explicit copy where one is truly needed.
// SecretVector<T> (std::vector<T, ZeroingAllocator<T>>): a growable buffer of owner plaintext
// (a split's samples and labels, a batch of inputs). Every block it releases, on reallocation or
// destruction, is zeroed first, so a vector that grows leaves no stale copy behind either; clear()
// and resize() down do not zero (the block is zeroed when it is released).
// Both are wiped on every path out of a scope, early returns included: hold owner plaintext and
// keys only in these types; memory owned elsewhere that briefly holds them (a parsed request, a
// worker's input arena) gets a ScopedWipe.
// The zeroing uses explicit_bzero, which the compiler may not elide.
//
// Thread safety: as for any value type (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

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

// Zeroes a buffer this scope does not own when the scope ends, on every path out (early returns
// included): a key inside a parsed request, a shared buffer that briefly held plaintext.
// The buffer must outlive the guard.
class ScopedWipe {
 public:
  ScopedWipe(void* data, size_t size) : data_(data), size_(size) {}
  explicit ScopedWipe(MutableByteSpan buffer) : ScopedWipe(buffer.data(), buffer.size()) {}
  ~ScopedWipe() { SecureZero(data_, size_); }
  ScopedWipe(const ScopedWipe&) = delete;
  ScopedWipe& operator=(const ScopedWipe&) = delete;

 private:
  void* data_;
  size_t size_;
};

// An allocator that zeroes every block before it hands it back to `Base` (std::allocator by
// default; tests pass one that observes the released bytes). Stateless: all instances are equal.
template <typename T, typename Base = std::allocator<T>>
class ZeroingAllocator {
 public:
  using value_type = T;
  template <typename U>
  struct rebind {
    using other =
        ZeroingAllocator<U, typename std::allocator_traits<Base>::template rebind_alloc<U>>;
  };

  ZeroingAllocator() noexcept = default;
  template <typename U, typename OtherBase>
  ZeroingAllocator(const ZeroingAllocator<U, OtherBase>&) noexcept {}  // NOLINT: rebinding

  T* allocate(size_t count) { return Base().allocate(count); }
  void deallocate(T* block, size_t count) noexcept {
    SecureZero(block, count * sizeof(T));
    Base().deallocate(block, count);
  }

  template <typename U, typename OtherBase>
  bool operator==(const ZeroingAllocator<U, OtherBase>&) const noexcept {
    return true;
  }
};

template <typename T>
using SecretVector = std::vector<T, ZeroingAllocator<T>>;

}  // namespace chiron
