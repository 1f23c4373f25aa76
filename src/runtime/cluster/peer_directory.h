// PeerDirectory: the other nodes of this chirond's cluster (chirond --peers), as this node finds
// them when asked: each dialled over mutual RA-TLS, its certificate's evidence verified under the
// cluster policy, and its listener asked to answer (so a peer that refuses this node's own
// evidence shows as refusing, not as fine). What owners see through Attestation.ListNodes before
// any data moves (docs/distributed.md, "Nodes"); they verify each certificate again under their
// own policy.
//
// Thread safety: immutable after construction; Probe may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "shared/attest/verifier.h"
#include "shared/base/bytes.h"
#include "shared/base/secret.h"
#include "shared/base/status.h"
#include "shared/ratls/ratls.h"

namespace chiron::cluster {

struct PeerView {
  std::string address;          // host:port of its NodeListener
  bool verified = false;        // its evidence verified under the cluster policy and it answered
  std::string certificate_pem;  // the certificate it presented (empty if none was verified)
  Bytes spki_der;               // its certificate's key (empty if none was verified)
  std::string problem;          // when not verified: what failed, for the operator and the owner
};

class PeerDirectory {
 public:
  // `peers`: host:port of each peer's NodeListener. `identity`: this node's attested identity
  // (peers check it under their own cluster policy). `cluster_verifier`: the cluster policy.
  PeerDirectory(std::vector<std::string> peers, std::shared_ptr<const ratls::TlsIdentity> identity,
                std::shared_ptr<const attest::Verifier> cluster_verifier)
      : peers_(std::move(peers)),
        identity_(std::move(identity)),
        verifier_(std::move(cluster_verifier)) {}

  const std::vector<std::string>& peers() const { return peers_; }
  const std::shared_ptr<const ratls::TlsIdentity>& identity() const { return identity_; }
  const std::shared_ptr<const attest::Verifier>& verifier() const { return verifier_; }

  // Dials every peer now, all at once, each bounded by `timeout`; one view per peer, in the
  // order of peers().
  std::vector<PeerView> Probe(std::chrono::milliseconds timeout) const;

  // The cluster store key from the first peer (in peers() order) that holds one, each dialled
  // over mutual RA-TLS under the cluster policy and bounded by `timeout`. NotFound, naming every
  // peer and why it gave none, when no peer released one; DataLoss if a peer's key is not 32
  // bytes.
  Result<SecretBytes> FetchStoreKey(std::chrono::milliseconds timeout) const;

 private:
  PeerView ProbeOne(const std::string& address, std::chrono::milliseconds timeout) const;

  std::vector<std::string> peers_;
  std::shared_ptr<const ratls::TlsIdentity> identity_;
  std::shared_ptr<const attest::Verifier> verifier_;
};

}  // namespace chiron::cluster
