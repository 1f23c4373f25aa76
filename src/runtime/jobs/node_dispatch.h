// NodeDispatcher: how a training job reaches the other nodes of a cluster (issue 14,
// docs/distributed.md "Jobs on several nodes"). The training queue stays torch- and gRPC-free:
// it asks a dispatcher (cluster::ClusterDispatcher in chirond) to hand every other rank its shard
// and to join the job's group, then trains rank 0 itself through the returned collective.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/train/worker_settings.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"
#include "shared/worker_abi/worker_protocol.h"

namespace chiron::train {
class Collective;
}

namespace chiron::jobs {

inline constexpr uint32_t kMaxJobNodes = 64;  // cluster::kMaxGroupSize

// One node of a job, as the owner's view and audit chain show it.
struct JobNodeRecord {
  uint32_t rank = 0;
  std::string address;   // its peer listener
  std::string key_id;    // principal id of its attested TLS key
  uint64_t records = 0;  // records of the dataset it received (rank 0: its own shard)
};

struct DispatchRequest {
  std::string job_id;
  std::string owner_id;
  uint32_t nodes = 2;       // ranks in all, this node included
  std::string node_policy;  // the owner's attestation policy (JSON) every other node must pass
  ByteSpan recipe;
  const dataset::DatasetSchema* schema = nullptr;  // of the whole dataset
  ByteSpan records;                                // the whole dataset, record after record
  TrainingConfig config;  // sanitized, epochs resolved: every rank trains alike
  double validation_fraction = 0.1;
  uint64_t seed = 0;
  uint64_t checkpoint_every_steps = 0;
  uint64_t seconds_left = 0;
  uint64_t max_resident_size = 0;
  uint32_t staleness = 0;  // 0: synchronous
  uint32_t attempt = 1;
};

// A dispatched job, as rank 0 holds it while training.
class DistributedRun {
 public:
  virtual ~DistributedRun() = default;
  virtual train::Collective& collective() = 0;
  // Rank 0's shard: a sub-span of DispatchRequest::records.
  virtual ByteSpan local_records() const = 0;
  virtual uint64_t local_record_count() const = 0;
  virtual const std::vector<JobNodeRecord>& nodes() const = 0;
};

class NodeDispatcher {
 public:
  virtual ~NodeDispatcher() = default;
  // Other nodes this node could dispatch to (its --peers).
  virtual uint32_t peer_count() const = 0;
  // InvalidArgument, naming the problem, if `node_policy` is not a usable attestation policy.
  virtual Status CheckNodePolicy(const std::string& node_policy) const = 0;
  // Finds nodes - 1 peers that answer and whose evidence verifies under both the cluster policy
  // and the owner's node_policy (in --peers order), sends each its rank's offer and shard (to
  // the key that verified), and joins the job's group as rank 0. FailedPrecondition naming each
  // unusable peer and why when too few qualify; the errors of PeerGroup::Join otherwise.
  virtual Result<std::unique_ptr<DistributedRun>> Dispatch(const DispatchRequest& request) = 0;
  // The failure another rank of the job reported for its own worker since the last call (and
  // forgets it); nullopt if none. A job whose rank's recipe failed ends with that category.
  virtual std::optional<train::FailureCategory> TakeRankFailure(const std::string& job_id) = 0;
};

// The contiguous shard of rank r of n over `count` records: [count·r/n, count·(r+1)/n).
inline uint64_t ShardBegin(uint64_t count, uint32_t rank, uint32_t nodes) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(count) * rank) / nodes);
}

}  // namespace chiron::jobs
