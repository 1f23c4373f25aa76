#include "runtime/cluster/cluster_test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/cluster/frame_checks.h"
#include "shared/attest/evidence.h"
#include "shared/crypto/keys.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster::testing {
namespace {

std::unique_ptr<tee::Platform> MakePlatform(const std::string& dir, const std::string& code) {
  std::ofstream(dir + "/chirond-" + code, std::ios::binary) << "chirond build " << code;
  tee::PlatformOptions options;
  options.name = "sim";
  options.state_dir = dir + "/state";  // one software root for both platforms
  options.measured_components = {{"chirond", dir + "/chirond-" + code}};
  auto platform = tee::CreatePlatform(options);
  EXPECT_TRUE(platform.ok()) << platform.status().ToString();
  return platform.ok() ? std::move(*platform) : nullptr;
}

std::shared_ptr<const attest::Verifier> MakeVerifier(const attest::Policy& policy) {
  auto verifier = attest::Verifier::Create(policy);
  EXPECT_TRUE(verifier.ok()) << verifier.status().ToString();
  return std::make_shared<const attest::Verifier>(std::move(*verifier));
}

}  // namespace

SimNodes::SimNodes() {
  std::string pattern = (std::filesystem::temp_directory_path() / "chiron-cluster-XXXXXX");
  dir_ = ::mkdtemp(pattern.data());
  platform_ = MakePlatform(dir_, "a");
  other_platform_ = MakePlatform(dir_, "b");
  attest::Policy policy;
  policy.allowed_platforms = {attest::PlatformId::kSim};
  policy.allowed_measurements["sim"] = {platform_->measurement()};
  Bytes probe(64, 0);
  auto evidence = platform_->GetEvidence(probe);
  EXPECT_TRUE(evidence.ok());
  policy.trusted_sim_roots = {
      attest::ParseSimBody(attest::ParseEvidence(*evidence)->payload)->root_public_key};
  verifier_ = MakeVerifier(policy);
  policy.allowed_measurements["sim"].push_back(other_platform_->measurement());
  lenient_verifier_ = MakeVerifier(policy);
}

SimNodes::~SimNodes() { std::filesystem::remove_all(dir_); }

std::shared_ptr<const ratls::TlsIdentity> SimNodes::Identity(tee::Platform& platform) const {
  auto identity = ratls::CreateAttestedIdentity(
      [&](ByteSpan report_data) { return platform.GetEvidence(report_data); }, "chirond-node");
  EXPECT_TRUE(identity.ok()) << identity.status().ToString();
  return std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
}

std::shared_ptr<const ratls::TlsIdentity> SimNodes::UnattestedIdentity() {
  auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
  EXPECT_TRUE(key.ok());
  auto identity = ratls::CreateClientIdentity(*key, "not-a-node");
  EXPECT_TRUE(identity.ok()) << identity.status().ToString();
  return std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
}

std::unique_ptr<NodeListener> SimNodes::StartListener(
    std::shared_ptr<const ratls::TlsIdentity> identity, NodeListenerOptions options) const {
  auto listener = NodeListener::Start("127.0.0.1:0", identity ? identity : Identity(),
                                      verifier_, options);
  EXPECT_TRUE(listener.ok()) << listener.status().ToString();
  return listener.ok() ? std::move(*listener) : nullptr;
}

std::string Local(int port) { return "127.0.0.1:" + std::to_string(port); }

PeerGroupOptions BaseOptions(const SimNodes& nodes, uint32_t rank, uint32_t size,
                             std::vector<std::string> addresses) {
  PeerGroupOptions options;
  options.job_id = "job-test-1";
  options.rank = rank;
  options.size = size;
  options.addresses = std::move(addresses);
  options.identity = nodes.Identity();
  options.peer_verifier = nodes.verifier();
  options.connect_timeout = std::chrono::seconds(20);
  options.exchange_timeout = std::chrono::seconds(60);
  return options;
}

Cluster JoinCluster(const SimNodes& nodes, uint32_t size, void (*adjust)(PeerGroupOptions&)) {
  Cluster cluster;
  std::vector<std::string> addresses;
  for (uint32_t r = 0; r < size; ++r) {
    cluster.listeners.push_back(nodes.StartListener());
    addresses.push_back(Local(cluster.listeners.back()->port()));
  }
  cluster.groups.resize(size);
  std::vector<Status> statuses(size);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      PeerGroupOptions options = BaseOptions(nodes, r, size, addresses);
      if (adjust) adjust(options);
      auto group = PeerGroup::Join(*cluster.listeners[r], std::move(options));
      statuses[r] = group.status();
      if (group.ok()) cluster.groups[r] = std::move(*group);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (uint32_t r = 0; r < size; ++r) {
    EXPECT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r].ToString();
  }
  return cluster;
}

RawPeer::RawPeer(int port, std::shared_ptr<const ratls::TlsIdentity> identity,
                 std::shared_ptr<const attest::Verifier> verifier) {
  grpc::ChannelArguments args = ratls::AttestedChannelArguments();
  args.SetMaxSendMessageSize(8 << 20);
  args.SetMaxReceiveMessageSize(8 << 20);
  channel_ = grpc::CreateCustomChannel(
      Local(port),
      ratls::AttestedChannelCredentials(*identity, std::move(verifier),
                                        std::make_shared<ratls::ServerAttestationRecord>()),
      args);
  stub_ = chiron::internal::NodeExchange::NewStub(channel_);
  context_.set_wait_for_ready(false);
  stream_ = stub_->Stream(&context_);
}

RawPeer::~RawPeer() {
  context_.TryCancel();
  stream_->Finish().ok();
}

chiron::internal::Frame Hello(const std::string& job_id, uint32_t sender, uint32_t receiver,
                              uint32_t size) {
  chiron::internal::Frame hello;
  hello.set_kind(chiron::internal::Frame::KIND_HELLO);
  hello.set_job_id(job_id);
  hello.set_sender(sender);
  hello.set_receiver(receiver);
  hello.set_size(size);
  return hello;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace chiron::cluster::testing
