#include "runtime/train/shuffler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

namespace chiron::train {
namespace {

TEST(ShufflerTest, EveryEpochIsAPermutationAndDeterministic) {
  auto s = Shuffler::Create(42, 1000, 64, false);
  ASSERT_TRUE(s.ok());
  auto a = s->EpochOrder(0);
  auto b = s->EpochOrder(0);
  auto c = s->EpochOrder(1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<uint32_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint32_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0u);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(a, identity);
  auto other_seed = Shuffler::Create(43, 1000, 64, false);
  EXPECT_NE(other_seed->EpochOrder(0), a);
}

TEST(ShufflerTest, FixedSeedGivesAFixedOrder) {
  // Pins the algorithm: a resumed or distributed job must pick the same batches on any machine.
  auto s = Shuffler::Create(7, 10, 3, false);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->EpochOrder(0), (std::vector<uint32_t>{0, 5, 9, 3, 4, 7, 1, 8, 6, 2}));
  EXPECT_EQ(s->EpochOrder(1), (std::vector<uint32_t>{7, 8, 0, 1, 3, 9, 2, 4, 5, 6}));
}

TEST(ShufflerTest, BatchesCoverTheEpoch) {
  auto keep = Shuffler::Create(1, 10, 4, false);
  ASSERT_TRUE(keep.ok());
  auto batches = keep->EpochBatches(3);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].size(), 4u);
  EXPECT_EQ(batches[2].size(), 2u);
  std::vector<uint32_t> joined;
  for (auto& b : batches) joined.insert(joined.end(), b.begin(), b.end());
  EXPECT_EQ(joined, keep->EpochOrder(3));

  auto drop = Shuffler::Create(1, 10, 4, true);
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(drop->batches_per_epoch(), 2u);
  for (auto& b : drop->EpochBatches(0)) EXPECT_EQ(b.size(), 4u);
}

TEST(ShufflerTest, PositionsAreRoughlyUniform) {
  // Over many epochs each example lands in the first slot about equally often (chi-square-ish
  // bound, deterministic seed).
  auto s = Shuffler::Create(99, 8, 8, false);
  ASSERT_TRUE(s.ok());
  std::vector<int> first(8, 0);
  const int epochs = 8000;
  for (int e = 0; e < epochs; ++e) ++first[s->EpochOrder(e)[0]];
  for (int count : first) EXPECT_NEAR(count, epochs / 8, 120);
}

TEST(ShufflerTest, RefusesBadArguments) {
  EXPECT_FALSE(Shuffler::Create(1, 0, 4, false).ok());
  EXPECT_FALSE(Shuffler::Create(1, 10, 0, false).ok());
  EXPECT_FALSE(Shuffler::Create(1, 3, 4, true).ok());
  EXPECT_FALSE(Shuffler::Create(1, uint64_t{1} << 32, 4, false).ok());
}

}  // namespace
}  // namespace chiron::train
