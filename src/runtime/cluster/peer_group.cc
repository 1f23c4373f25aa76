#include "runtime/cluster/peer_group.h"

#include <cmath>

#include "runtime/cluster/group_core.h"

namespace chiron::cluster {
namespace {

Status CheckOptions(const PeerGroupOptions& options) {
  if (!internal::ValidJobId(options.job_id)) {
    return InvalidArgumentError("PeerGroupOptions::job_id must be 1 to 128 printable ASCII "
                                "characters");
  }
  if (options.size < 1 || options.size > kMaxGroupSize) {
    return InvalidArgumentError("PeerGroupOptions::size must be in [1, 64]");
  }
  if (options.rank >= options.size) {
    return InvalidArgumentError("PeerGroupOptions::rank must be below size");
  }
  if (options.addresses.size() != options.size) {
    return InvalidArgumentError("PeerGroupOptions::addresses needs one address per rank");
  }
  for (uint32_t j = 0; j < options.rank; ++j) {
    if (options.addresses[j].empty()) {
      return InvalidArgumentError("PeerGroupOptions::addresses: rank " + std::to_string(j) +
                                  " (a rank this node dials) has no address");
    }
  }
  if (!options.identity) {
    return InvalidArgumentError("PeerGroupOptions::identity (this node's attested identity) is "
                                "required");
  }
  if (!options.peer_verifier) {
    return InvalidArgumentError("PeerGroupOptions::peer_verifier (the cluster policy) is "
                                "required");
  }
  if (options.connect_timeout.count() <= 0 || options.exchange_timeout.count() <= 0) {
    return InvalidArgumentError("PeerGroupOptions: timeouts must be positive");
  }
  if (!options.peer_keys.empty()) {
    if (options.peer_keys.size() != options.size) {
      return InvalidArgumentError("PeerGroupOptions::peer_keys needs one key per rank, or none");
    }
    for (const Bytes& key : options.peer_keys) {
      if (key.empty()) return InvalidArgumentError("PeerGroupOptions::peer_keys: an empty key");
    }
  }
  if (!std::isfinite(options.max_abs_value) || options.max_abs_value <= 0) {
    return InvalidArgumentError("PeerGroupOptions::max_abs_value must be finite and positive");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PeerGroup>> PeerGroup::Join(NodeListener& listener,
                                                   PeerGroupOptions options) {
  CHIRON_RETURN_IF_ERROR(CheckOptions(options));
  const std::string job_id = options.job_id;
  auto core = std::make_shared<internal::GroupCore>(std::move(options));
  CHIRON_RETURN_IF_ERROR(listener.registry_->Register(job_id, core));
  Status connected = core->Connect();
  if (!connected.ok()) {
    listener.registry_->Unregister(job_id, core.get());
    return connected;
  }
  std::unique_ptr<PeerGroup> group(new PeerGroup());
  group->core_ = std::move(core);
  group->registry_ = listener.registry_;
  return group;
}

PeerGroup::~PeerGroup() {
  registry_->Unregister(core_->options().job_id, core_.get());
  core_->Shutdown();
}

uint32_t PeerGroup::rank() const { return core_->options().rank; }
uint32_t PeerGroup::size() const { return core_->options().size; }

Status PeerGroup::Exchange(uint64_t step, uint32_t phase,
                           std::span<const std::span<const float>> out,
                           std::span<const std::span<float>> in) {
  return core_->ExchangeFloats(step, phase, out, in);
}

Status PeerGroup::ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out,
                                std::vector<Bytes>& in) {
  return core_->ExchangeBytes(step, phase, out, in);
}

void PeerGroup::Abort() { core_->Abort(); }

uint64_t PeerGroup::payload_bytes_sent() const { return core_->payload_bytes_sent(); }
uint64_t PeerGroup::wire_bytes_sent() const { return core_->wire_bytes_sent(); }

}  // namespace chiron::cluster
