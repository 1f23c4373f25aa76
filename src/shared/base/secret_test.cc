#include "shared/base/secret.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace chiron {
namespace {

// What each released block held at the moment it was released (the test's window on memory that
// is about to be freed, without reading freed memory).
struct ReleasedBlocks {
  static inline std::vector<bool> all_zero;
};

template <typename T>
struct ObservingAllocator {
  using value_type = T;
  ObservingAllocator() = default;
  template <typename U>
  ObservingAllocator(const ObservingAllocator<U>&) {}
  T* allocate(size_t count) { return std::allocator<T>().allocate(count); }
  void deallocate(T* block, size_t count) {
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(block);
    ReleasedBlocks::all_zero.push_back(
        std::all_of(bytes, bytes + count * sizeof(T), [](uint8_t b) { return b == 0; }));
    std::allocator<T>().deallocate(block, count);
  }
  template <typename U>
  bool operator==(const ObservingAllocator<U>&) const {
    return true;
  }
};

// Fills a vector that reallocates several times, then lets it go.
template <typename Vector>
void GrowAndRelease() {
  Vector values;
  for (int i = 0; i < 5000; ++i) values.push_back(static_cast<typename Vector::value_type>(0xAB));
  values.insert(values.end(), 3000, static_cast<typename Vector::value_type>(0xCD));
}

TEST(ZeroingAllocatorTest, EveryBlockAGrowingVectorReleasesIsZeroed) {
  ReleasedBlocks::all_zero.clear();
  GrowAndRelease<std::vector<uint8_t, ZeroingAllocator<uint8_t, ObservingAllocator<uint8_t>>>>();
  ASSERT_GE(ReleasedBlocks::all_zero.size(), 5u) << "the vector should have reallocated";
  EXPECT_TRUE(std::all_of(ReleasedBlocks::all_zero.begin(), ReleasedBlocks::all_zero.end(),
                          [](bool zero) { return zero; }));

  // Rebinding keeps the zeroing (vectors of wider elements, e.g. labels).
  ReleasedBlocks::all_zero.clear();
  GrowAndRelease<std::vector<uint16_t, ZeroingAllocator<uint16_t, ObservingAllocator<uint16_t>>>>();
  ASSERT_GE(ReleasedBlocks::all_zero.size(), 5u);
  EXPECT_TRUE(std::all_of(ReleasedBlocks::all_zero.begin(), ReleasedBlocks::all_zero.end(),
                          [](bool zero) { return zero; }));
}

// The control: without the zeroing allocator the same vector releases its bytes as they were,
// which is what the observation above would catch.
TEST(ZeroingAllocatorTest, APlainVectorReleasesItsBytesUnzeroed) {
  ReleasedBlocks::all_zero.clear();
  GrowAndRelease<std::vector<uint8_t, ObservingAllocator<uint8_t>>>();
  ASSERT_GE(ReleasedBlocks::all_zero.size(), 5u);
  EXPECT_TRUE(std::none_of(ReleasedBlocks::all_zero.begin(), ReleasedBlocks::all_zero.end(),
                           [](bool zero) { return zero; }));
}

TEST(ZeroingAllocatorTest, SecretVectorBehavesAsAVector) {
  SecretVector<uint8_t> a = {1, 2, 3};
  SecretVector<uint8_t> b = a;
  b.push_back(4);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(b, (SecretVector<uint8_t>{1, 2, 3, 4}));
  SecretVector<uint8_t> c = std::move(b);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(ByteSpan(c).size(), 4u);
}

TEST(SecretBytesTest, MoveLeavesTheSourceEmptyAndCloneCopies) {
  SecretBytes a(ByteSpan(reinterpret_cast<const uint8_t*>("key!"), 4));
  SecretBytes b = a.Clone();
  EXPECT_TRUE(std::equal(a.span().begin(), a.span().end(), b.span().begin(), b.span().end()));
  SecretBytes c = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(c.size(), 4u);
}

}  // namespace
}  // namespace chiron
