// GroupCollective: a PeerGroup (mutually attested TLS between the job's nodes) as the
// train::Collective that a data-parallel TrainingSession exchanges through. Borrows the group.
// Thread safety: that of PeerGroup (one exchanging thread; Abort from any thread).
#pragma once

#include "runtime/cluster/peer_group.h"
#include "runtime/train/collective.h"

namespace chiron::cluster {

class GroupCollective final : public train::Collective {
 public:
  explicit GroupCollective(PeerGroup& group) : group_(group) {}

  uint32_t rank() const override { return group_.rank(); }
  uint32_t size() const override { return group_.size(); }
  Status Exchange(uint64_t step, uint32_t phase, std::span<const std::span<const float>> out,
                  std::span<const std::span<float>> in) override {
    return group_.Exchange(step, phase, out, in);
  }
  Status ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out,
                       std::vector<Bytes>& in) override {
    return group_.ExchangeBytes(step, phase, out, in);
  }
  void Abort() override { group_.Abort(); }

 private:
  PeerGroup& group_;
};

}  // namespace chiron::cluster
