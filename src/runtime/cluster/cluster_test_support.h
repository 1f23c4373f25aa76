// Test support for chiron_cluster: real sim-platform identities and cluster policies, listeners
// on 127.0.0.1, groups joined from threads, and a raw attested gRPC client for hostile peers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "chiron/internal/node.grpc.pb.h"
#include "runtime/cluster/node_listener.h"
#include "runtime/cluster/peer_group.h"
#include "runtime/tee/platform.h"
#include "shared/attest/verifier.h"
#include "shared/ratls/ratls.h"

namespace chiron::cluster::testing {

// Two sim platforms sharing one software root: `platform` (the cluster's measurement, accepted
// by `verifier`) and `other_platform` (another measurement, refused by it).
class SimNodes {
 public:
  SimNodes();
  ~SimNodes();

  std::shared_ptr<const ratls::TlsIdentity> Identity() const { return Identity(*platform_); }
  std::shared_ptr<const ratls::TlsIdentity> OtherMeasurementIdentity() const {
    return Identity(*other_platform_);
  }
  // A plain self-signed certificate without evidence (a client, not a node).
  static std::shared_ptr<const ratls::TlsIdentity> UnattestedIdentity();
  std::shared_ptr<const attest::Verifier> verifier() const { return verifier_; }
  // A verifier that accepts both measurements (for the other node's own view).
  std::shared_ptr<const attest::Verifier> lenient_verifier() const { return lenient_verifier_; }

  std::unique_ptr<NodeListener> StartListener(
      std::shared_ptr<const ratls::TlsIdentity> identity = nullptr,
      NodeListenerOptions options = {}) const;

 private:
  std::shared_ptr<const ratls::TlsIdentity> Identity(tee::Platform& platform) const;

  std::string dir_;
  std::unique_ptr<tee::Platform> platform_;
  std::unique_ptr<tee::Platform> other_platform_;
  std::shared_ptr<const attest::Verifier> verifier_;
  std::shared_ptr<const attest::Verifier> lenient_verifier_;
};

// `size` honest nodes of one job, each with its own listener and identity, joined concurrently.
struct Cluster {
  std::vector<std::unique_ptr<NodeListener>> listeners;
  std::vector<std::unique_ptr<PeerGroup>> groups;
};
// `adjust` (may be null) edits each rank's options before Join. Fails the test on a Join error.
Cluster JoinCluster(const SimNodes& nodes, uint32_t size,
                    void (*adjust)(PeerGroupOptions&) = nullptr);

PeerGroupOptions BaseOptions(const SimNodes& nodes, uint32_t rank, uint32_t size,
                             std::vector<std::string> addresses);

std::string Local(int port);

// A raw attested client of a node's listener, driven frame by frame (the hostile peer).
class RawPeer {
 public:
  RawPeer(int port, std::shared_ptr<const ratls::TlsIdentity> identity,
          std::shared_ptr<const attest::Verifier> verifier);
  ~RawPeer();
  bool Write(const chiron::internal::Frame& frame) { return stream_->Write(frame); }
  bool Read(chiron::internal::Frame* frame) { return stream_->Read(frame); }
  void WritesDone() { stream_->WritesDone(); }
  void Cancel() { context_.TryCancel(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<chiron::internal::NodeExchange::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<chiron::internal::Frame, chiron::internal::Frame>>
      stream_;
};

chiron::internal::Frame Hello(const std::string& job_id, uint32_t sender, uint32_t receiver,
                              uint32_t size);

bool Contains(const std::string& haystack, const std::string& needle);

}  // namespace chiron::cluster::testing
