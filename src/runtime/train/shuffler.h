// The trusted batch picker: which examples go into which batch, epoch by epoch.
//
// The runtime, not the recipe, decides the order in which the worker sees the data, so a hostile
// recipe cannot choose to look at particular examples (say, to memorise one owner's record) more
// often than training needs. The order is a seeded, platform-independent permutation
// (xoshiro256** seeded by SplitMix64 from (seed, epoch), unbiased Fisher-Yates with Lemire's
// bounded sampling), so a job resumed from a checkpoint, or replayed on another node of a
// distributed run, picks exactly the same batches. Keep the seed secret from the provider.
//
// Thread safety: immutable; EpochOrder may be called concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shared/base/status.h"

namespace chiron::train {

class Shuffler {
 public:
  // example_count in [1, 2^32); batch_size >= 1. With drop_last the final partial batch of each
  // epoch is skipped (every batch then has exactly batch_size examples).
  static Result<Shuffler> Create(uint64_t seed, uint64_t example_count, uint32_t batch_size,
                                 bool drop_last);

  // A permutation of [0, example_count) for `epoch`; different epochs give independent orders.
  std::vector<uint32_t> EpochOrder(uint64_t epoch) const;

  // EpochOrder cut into batches (the last one shorter unless drop_last).
  std::vector<std::vector<uint32_t>> EpochBatches(uint64_t epoch) const;

  uint64_t batches_per_epoch() const;
  uint64_t example_count() const { return example_count_; }
  uint32_t batch_size() const { return batch_size_; }

 private:
  Shuffler(uint64_t seed, uint64_t example_count, uint32_t batch_size, bool drop_last)
      : seed_(seed),
        example_count_(example_count),
        batch_size_(batch_size),
        drop_last_(drop_last) {}

  uint64_t seed_;
  uint64_t example_count_;
  uint32_t batch_size_;
  bool drop_last_;
};

}  // namespace chiron::train
