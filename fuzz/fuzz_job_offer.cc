// libFuzzer target for the checks a node applies to a job offer from a peer (NodeExchange.Offer,
// docs/distributed.md "Jobs on several nodes"): a serialized chiron.internal.JobOffer, checked by
// CheckOffer as if it came from the key "leader-key" to a node whose key is "own-key".
// Oracles: no crash or sanitizer report; an accepted offer names the caller as rank 0 and this
// node at its rank, has a rank inside its size, as many addresses and keys as ranks, a job id of
// letters, digits and '-', and a schema whose sample count is the record count.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chiron/internal/node.pb.h"
#include "runtime/cluster/job_dispatch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  chiron::internal::JobOffer offer;
  if (!offer.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::string leader = "leader-key", own = "own-key";
  auto checked = cluster::CheckOffer(offer, AsBytes(leader), AsBytes(own));
  if (!checked.ok()) return 0;
  const auto& group = checked->group;
  if (group.rank == 0 || group.rank >= group.size || group.addresses.size() != group.size ||
      group.peer_keys.size() != group.size) {
    std::abort();
  }
  if (std::string(group.peer_keys[0].begin(), group.peer_keys[0].end()) != leader ||
      std::string(group.peer_keys[group.rank].begin(), group.peer_keys[group.rank].end()) != own) {
    std::abort();
  }
  if (checked->schema.sample_count != offer.record_count() || checked->job_id.empty()) {
    std::abort();
  }
  for (char c : checked->job_id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) std::abort();
  }
  return 0;
}
