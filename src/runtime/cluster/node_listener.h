// NodeListener: a node's port for traffic from its peers in distributed training (issue 14).
//
// A gRPC server with AttestedServerCredentials(identity, peer_verifier): the TLS handshake
// (TLS 1.3 only) requires the dialler's certificate to carry evidence that verifies under the
// cluster policy, so an unattested process, or a node with another measurement, never gets a
// stream. Each incoming stream names a job in its hello and is routed to the PeerGroup of that
// job (peer_group.h); a stream for a job with no group here waits up to
// NodeListenerOptions::unknown_job_wait for one to register, then is refused.
//
// One listener serves every job of the node. Wire format and checks: docs/distributed.md,
// "Transport"; the service is proto/chiron/internal/node.proto (not public API).
//
// Thread safety: all methods may be called from any thread. Groups joined through a listener may
// outlive it (their streams end when it shuts down).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "shared/attest/verifier.h"
#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/ratls/ratls.h"

namespace grpc {
class Server;
}

namespace chiron::internal {
class JobOffer;
}

namespace chiron::cluster {

namespace internal {
class JobRegistry;
class NodeExchangeService;
}  // namespace internal

// A job offer as a node received it (NodeExchange.Offer, docs/distributed.md "Jobs on several
// nodes"): the caller's TLS key, the offer's settings (sizes already checked against the parts
// received), the recipe and the records of this node's shard.
struct ReceivedOffer {
  Bytes caller_spki;
  const ::chiron::internal::JobOffer* offer = nullptr;  // valid during the handler only
  Bytes recipe;
  SecretBytes records;
};
// Decides on an offer; an error status goes back to the leader as the refusal.
using OfferHandler = std::function<Status(ReceivedOffer offer)>;
// The cluster store key this node holds and may release to attested peers (NotFound: none).
using StoreKeyHandler = std::function<Result<SecretBytes>()>;
// A rank's report that its worker failed: the caller's TLS key, the job, the rank, the category.
using RankFailureHandler = std::function<Status(ByteSpan caller_spki, const std::string& job_id,
                                                uint32_t rank, uint32_t failure)>;

inline constexpr uint64_t kMaxOfferRecipeSize = uint64_t{64} << 20;  // as RegisterRecipe's
inline constexpr uint64_t kMaxOfferRecordsSize = uint64_t{16} << 30;

struct NodeListenerOptions {
  // How long a stream naming an unknown job waits for its group to register (peers may join a
  // job a little before this node does).
  std::chrono::milliseconds unknown_job_wait{30000};
};

class NodeListener {
 public:
  // Listens on `address` ("127.0.0.1:0" picks a free port). identity: this node's attested TLS
  // identity; peer_verifier: the cluster policy every peer's evidence must verify under (both
  // required). Errors: InvalidArgument for a missing identity or verifier, Unavailable if the
  // address cannot be bound.
  static Result<std::unique_ptr<NodeListener>> Start(
      const std::string& address, std::shared_ptr<const ratls::TlsIdentity> identity,
      std::shared_ptr<const attest::Verifier> peer_verifier, NodeListenerOptions options = {});

  ~NodeListener();  // Shutdown()
  NodeListener(const NodeListener&) = delete;
  NodeListener& operator=(const NodeListener&) = delete;

  // The bound port.
  int port() const { return port_; }

  // Who takes job offers on this node (PeerJobs); without one, offers are refused as
  // UNIMPLEMENTED. Set once, before peers may send offers.
  void SetOfferHandler(OfferHandler handler);
  // Who answers NodeExchange.StoreKey; without one the call answers NOT_FOUND.
  void SetStoreKeyHandler(StoreKeyHandler handler);
  // Who hears NodeExchange.RankFailed (the dispatcher of this node's jobs); without one the call
  // answers NOT_FOUND.
  void SetRankFailureHandler(RankFailureHandler handler);

  // Stops accepting streams and aborts every group joined through this listener (their blocked
  // calls return Aborted). Idempotent.
  void Shutdown();

 private:
  friend class PeerGroup;
  NodeListener() = default;

  int port_ = 0;
  std::shared_ptr<internal::JobRegistry> registry_;
  std::unique_ptr<internal::NodeExchangeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<const ratls::TlsIdentity> identity_;
  std::once_flag shut_down_;
};

}  // namespace chiron::cluster
