#include "runtime/cluster/peer_directory.h"

#include <grpcpp/grpcpp.h>

#include <future>

#include "chiron/internal/node.grpc.pb.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster {

namespace {

// A peer's NodeExchange over mutual RA-TLS under the cluster policy; `record` learns what the
// handshake verified or refused.
std::unique_ptr<chiron::internal::NodeExchange::Stub> Dial(
    const std::string& address, const ratls::TlsIdentity& identity,
    std::shared_ptr<const attest::Verifier> verifier,
    std::shared_ptr<ratls::ServerAttestationRecord> record) {
  return chiron::internal::NodeExchange::NewStub(grpc::CreateCustomChannel(
      address, ratls::AttestedChannelCredentials(identity, std::move(verifier), std::move(record)),
      ratls::AttestedChannelArguments()));
}

}  // namespace

PeerView PeerDirectory::ProbeOne(const std::string& address,
                                 std::chrono::milliseconds timeout) const {
  PeerView view;
  view.address = address;
  auto record = std::make_shared<ratls::ServerAttestationRecord>();
  // Ping: answered only once both ends accepted each other's evidence (a TLS 1.3 server checks
  // the client's certificate after the client has checked the server's).
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  context.set_wait_for_ready(true);
  chiron::internal::PingRequest request;
  chiron::internal::PingReply reply;
  grpc::Status status =
      Dial(address, *identity_, verifier_, record)->Ping(&context, request, &reply);
  if (status.ok()) {
    if (auto verified = record->last_verified()) {
      view.verified = true;
      view.certificate_pem = verified->server_cert_pem;
      view.spki_der = verified->server_spki_der;
      return view;
    }
    view.problem = "answered without a verified certificate";
    return view;
  }
  const std::string refused = record->last_failure();
  if (!refused.empty()) {
    view.problem = "its evidence does not verify under the cluster policy: " + refused;
  } else if (record->last_verified()) {
    view.problem = "it refused this node (its cluster policy does not accept this node's "
                   "evidence, or it is not a Chiron node): " + status.error_message();
  } else {
    view.problem = "unreachable within " + std::to_string(timeout.count()) +
                   " ms: " + status.error_message();
  }
  return view;
}

std::vector<PeerView> PeerDirectory::Probe(std::chrono::milliseconds timeout) const {
  std::vector<std::future<PeerView>> probes;
  for (const std::string& address : peers_) {
    probes.push_back(std::async(std::launch::async,
                                [this, address, timeout] { return ProbeOne(address, timeout); }));
  }
  std::vector<PeerView> views;
  for (auto& probe : probes) views.push_back(probe.get());
  return views;
}

Result<SecretBytes> PeerDirectory::FetchStoreKey(std::chrono::milliseconds timeout) const {
  std::string problems;
  for (const std::string& address : peers_) {
    auto record = std::make_shared<ratls::ServerAttestationRecord>();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    context.set_wait_for_ready(true);
    chiron::internal::StoreKeyRequest request;
    chiron::internal::StoreKeyReply reply;
    grpc::Status status =
        Dial(address, *identity_, verifier_, record)->StoreKey(&context, request, &reply);
    if (status.ok()) {
      SecretBytes key(AsBytes(reply.key()));
      SecureZero(reply.mutable_key()->data(), reply.key().size());
      if (key.size() != 32) {
        return DataLossError("node " + address + " released a store key of the wrong size");
      }
      return key;
    }
    const std::string refused = record->last_failure();
    problems +=
        "; " + address + ": " +
        (!refused.empty() ? "its evidence does not verify under the cluster policy: " + refused
         : status.error_code() == grpc::StatusCode::NOT_FOUND ? "holds no store key"
         : status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
             ? "unreachable within " + std::to_string(timeout.count()) + " ms"
             : status.error_message());
  }
  return NotFoundError("no peer released the cluster store key" +
                       (problems.empty() ? std::string(" (no peers)") : problems));
}

}  // namespace chiron::cluster
