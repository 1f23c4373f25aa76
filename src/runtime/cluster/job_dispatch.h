// Jobs on several chirond nodes (issue 14; docs/distributed.md, "Jobs on several nodes").
//
// ClusterDispatcher (the leader's side, rank 0: the node the owner started the job on): picks the
// peers the owner approved among those that answer and verify under the cluster policy, hands
// each its rank's offer over NodeExchange.Offer (mutual RA-TLS, the peer's key checked against
// the approved one before any byte of data is written) with the recipe and the records of its
// shard only, then joins the job's PeerGroup as rank 0 with every rank bound to its key.
//
// PeerJobs (every node's side): takes offers from the node the offer names as rank 0 (its TLS
// key must be the one the offer lists for rank 0, and this node's key the one listed for its
// rank), and trains its rank on a thread of its own: PeerGroup::Join, a data-parallel
// TrainingSession with this node's own sandboxed worker, checkpoints sealed in this node's store.
// The shard lives in memory only; nothing of it is written to disk.
//
// Thread safety: both are safe to call from any thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/cluster/node_listener.h"
#include "runtime/cluster/peer_directory.h"
#include "runtime/cluster/peer_group.h"
#include "runtime/jobs/node_dispatch.h"
#include "runtime/store/store.h"
#include "runtime/train/training_session.h"
#include "runtime/train/worker_settings.h"

namespace chiron::cluster {

struct ClusterDispatcherOptions {
  std::string node_address;  // this node's peer listener as its peers reach it (host:port)
  std::chrono::milliseconds probe_timeout{5000};
  std::chrono::milliseconds connect_timeout{20000};
};

class ClusterDispatcher final : public jobs::NodeDispatcher {
 public:
  // Borrows `listener` (must outlive the dispatcher and every run it returns).
  ClusterDispatcher(NodeListener* listener, std::shared_ptr<const PeerDirectory> directory,
                    ClusterDispatcherOptions options)
      : listener_(listener), directory_(std::move(directory)), options_(std::move(options)) {}

  uint32_t peer_count() const override { return static_cast<uint32_t>(directory_->peers().size()); }
  Status CheckNodePolicy(const std::string& node_policy) const override;
  std::optional<train::FailureCategory> TakeRankFailure(const std::string& job_id) override;
  // NodeExchange.RankFailed: kept only if `caller_spki` is the key the latest dispatch of the job
  // gave `rank` and `failure` is a worker's own category; else an error naming the check.
  Status HearRankFailure(ByteSpan caller_spki, const std::string& job_id, uint32_t rank,
                         uint32_t failure);
  Result<std::unique_ptr<jobs::DistributedRun>> Dispatch(
      const jobs::DispatchRequest& request) override;

 private:
  NodeListener* listener_;
  std::shared_ptr<const PeerDirectory> directory_;
  ClusterDispatcherOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::vector<Bytes>> job_keys_;  // each job's ranks' keys, latest dispatch
  std::map<std::string, train::FailureCategory> rank_failures_;
};

// A job offer whose every check passed: what a rank needs besides its recipe and records.
struct CheckedOffer {
  std::string job_id;
  std::string owner_id;
  PeerGroupOptions group;           // job id, rank, size, addresses and keys (not the identity,
                                    // verifier or timeouts: the receiving node's own)
  train::TrainingOptions training;  // the leader's hyper-parameters, seed, checkpoints, budget
  dataset::DatasetSchema schema;    // of the shard
};

// The checks a node applies to an offer (fuzzed: fuzz/fuzz_job_offer.cc): a job id of letters,
// digits and '-'; ranks, addresses and keys that agree; `caller_spki` listed as rank 0 (else
// PermissionDenied) and `own_spki` as the offered rank (else FailedPrecondition); complete
// training settings; a parseable schema whose count is the record count. Each refusal is a fixed
// text naming the check.
Result<CheckedOffer> CheckOffer(const ::chiron::internal::JobOffer& offer, ByteSpan caller_spki,
                                ByteSpan own_spki);

struct PeerJobsOptions {
  train::WorkerSettings worker;  // this node's worker (its own sandbox and limits)
  uint32_t max_jobs = 2;         // ranks of other nodes' jobs trained here at once
  std::chrono::milliseconds connect_timeout{30000};
};

class PeerJobs {
 public:
  // `store` (may be null: no checkpoints) and `listener` are borrowed; Stop() before either goes.
  PeerJobs(store::Store* store, NodeListener* listener,
           std::shared_ptr<const ratls::TlsIdentity> identity,
           std::shared_ptr<const attest::Verifier> cluster_verifier, PeerJobsOptions options);
  ~PeerJobs();  // Stop()

  // The listener's offer handler: checks the offer and starts its rank, or says why not.
  Status HandleOffer(ReceivedOffer offer);
  // Kills every rank running here (their jobs' groups break; the leaders dispatch them again).
  void Stop();
  uint32_t running_count();

 private:
  struct Run {
    std::thread thread;
    std::shared_ptr<train::WorkerStopper> stopper;
    bool done = false;
  };
  void Train(std::string job_id, std::string owner_id, uint32_t rank, PeerGroupOptions group,
             train::TrainingOptions training, dataset::DatasetSchema schema, Bytes recipe,
             SecretBytes records, std::shared_ptr<train::WorkerStopper> stopper);
  void ReapLocked();  // joins finished runs (mutex_ held)
  // Tells the job's leader (dialled at its address, its key checked) that this rank's worker
  // failed with `failure`.
  Status ReportRankFailure(const std::string& leader_address, const Bytes& leader_key,
                           const std::string& job_id, uint32_t rank,
                           train::FailureCategory failure);

  store::Store* store_;
  NodeListener* listener_;
  std::shared_ptr<const ratls::TlsIdentity> identity_;
  std::shared_ptr<const attest::Verifier> verifier_;
  PeerJobsOptions options_;
  std::mutex mutex_;
  std::map<std::string, Run> runs_;  // by job id
  bool stopping_ = false;
};

}  // namespace chiron::cluster
