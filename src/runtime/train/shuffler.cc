#include "runtime/train/shuffler.h"

#include <numeric>
#include <string>

namespace chiron::train {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream) {
    uint64_t sm = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    for (uint64_t& word : s_) word = SplitMix64(sm);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, bound) without modulo bias (Lemire 2019), bound < 2^32.
  uint32_t Below(uint32_t bound) {
    uint64_t product = (Next() >> 32) * bound;
    uint32_t low = static_cast<uint32_t>(product);
    if (low < bound) {
      const uint32_t threshold = static_cast<uint32_t>(-bound) % bound;
      while (low < threshold) {
        product = (Next() >> 32) * bound;
        low = static_cast<uint32_t>(product);
      }
    }
    return static_cast<uint32_t>(product >> 32);
  }

 private:
  uint64_t s_[4];
};

}  // namespace

Result<Shuffler> Shuffler::Create(uint64_t seed, uint64_t example_count, uint32_t batch_size,
                                  bool drop_last) {
  if (example_count == 0 || example_count >= (uint64_t{1} << 32)) {
    return InvalidArgumentError("shuffler: example count " + std::to_string(example_count) +
                                " must be in [1, 2^32)");
  }
  if (batch_size == 0) return InvalidArgumentError("shuffler: batch size must be >= 1");
  if (drop_last && batch_size > example_count) {
    return InvalidArgumentError("shuffler: batch size " + std::to_string(batch_size) +
                                " exceeds the " + std::to_string(example_count) +
                                " examples and drop_last would leave no batch");
  }
  return Shuffler(seed, example_count, batch_size, drop_last);
}

std::vector<uint32_t> Shuffler::EpochOrder(uint64_t epoch) const {
  std::vector<uint32_t> order(example_count_);
  std::iota(order.begin(), order.end(), 0u);
  Xoshiro256 rng(seed_, epoch);
  for (size_t i = order.size() - 1; i > 0; --i) {
    uint32_t j = rng.Below(static_cast<uint32_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

uint64_t Shuffler::batches_per_epoch() const {
  return drop_last_ ? example_count_ / batch_size_
                    : (example_count_ + batch_size_ - 1) / batch_size_;
}

std::vector<std::vector<uint32_t>> Shuffler::EpochBatches(uint64_t epoch) const {
  std::vector<uint32_t> order = EpochOrder(epoch);
  std::vector<std::vector<uint32_t>> batches;
  const uint64_t count = batches_per_epoch();
  batches.reserve(count);
  for (uint64_t b = 0; b < count; ++b) {
    size_t begin = b * batch_size_;
    size_t end = std::min<size_t>(begin + batch_size_, order.size());
    batches.emplace_back(order.begin() + begin, order.begin() + end);
  }
  return batches;
}

}  // namespace chiron::train
