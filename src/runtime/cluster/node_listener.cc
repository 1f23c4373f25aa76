#include "runtime/cluster/node_listener.h"

#include <grpcpp/grpcpp.h>

#include "chiron/internal/node.grpc.pb.h"
#include "runtime/cluster/group_core.h"
#include "shared/dataset/schema.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster {
namespace internal {

using chiron::internal::Frame;

// How often a stream waiting for its job's group checks whether its caller left.
constexpr auto kRegistryPoll = std::chrono::milliseconds(100);

class NodeExchangeService final : public chiron::internal::NodeExchange::Service {
 public:
  NodeExchangeService(std::shared_ptr<JobRegistry> registry, NodeListenerOptions options)
      : registry_(std::move(registry)), options_(options) {}

  grpc::Status Ping(grpc::ServerContext* /*context*/,
                    const chiron::internal::PingRequest* /*request*/,
                    chiron::internal::PingReply* /*reply*/) override {
    return grpc::Status::OK;  // the handshake already checked the caller's evidence
  }

  void SetOfferHandler(OfferHandler handler) {
    std::lock_guard<std::mutex> lock(offer_mu_);
    offer_handler_ = std::move(handler);
  }
  void SetStoreKeyHandler(StoreKeyHandler handler) {
    std::lock_guard<std::mutex> lock(offer_mu_);
    store_key_handler_ = std::move(handler);
  }

  void SetRankFailureHandler(RankFailureHandler handler) {
    std::lock_guard<std::mutex> lock(offer_mu_);
    rank_failure_handler_ = std::move(handler);
  }

  grpc::Status RankFailed(grpc::ServerContext* context,
                          const chiron::internal::RankFailure* request,
                          chiron::internal::RankFailureReply* /*reply*/) override {
    RankFailureHandler handler;
    {
      std::lock_guard<std::mutex> lock(offer_mu_);
      handler = rank_failure_handler_;
    }
    if (!handler) return grpc::Status(grpc::StatusCode::NOT_FOUND, "this node leads no jobs");
    auto caller = ratls::PeerSpki(*context);
    if (!caller.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the caller presented no TLS key");
    }
    Status heard = handler(*caller, request->job_id(), request->rank(), request->failure());
    if (!heard.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(heard.code()), heard.message());
    }
    return grpc::Status::OK;
  }

  // The handshake verified the caller's evidence under the cluster policy: only such a node
  // gets the key.
  grpc::Status StoreKey(grpc::ServerContext* /*context*/,
                        const chiron::internal::StoreKeyRequest* /*request*/,
                        chiron::internal::StoreKeyReply* reply) override {
    StoreKeyHandler handler;
    {
      std::lock_guard<std::mutex> lock(offer_mu_);
      handler = store_key_handler_;
    }
    if (!handler) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "this node holds no cluster store key (it seals with its platform's)");
    }
    Result<SecretBytes> key = handler();
    if (!key.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(key.status().code()),
                          key.status().message());
    }
    reply->set_key(reinterpret_cast<const char*>(key->data()), key->size());
    return grpc::Status::OK;
  }

  // Reads an offer's parts into a ReceivedOffer, checking every size before it allocates, and
  // hands it to the offer handler.
  grpc::Status Offer(grpc::ServerContext* context,
                     grpc::ServerReader<chiron::internal::OfferPart>* reader,
                     chiron::internal::OfferReply* /*reply*/) override {
    OfferHandler handler;
    {
      std::lock_guard<std::mutex> lock(offer_mu_);
      handler = offer_handler_;
    }
    if (!handler) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this node takes no training jobs");
    }
    auto refuse = [](const std::string& why) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "job offer refused: " + why);
    };
    chiron::internal::OfferPart part;
    if (!reader->Read(&part) || !part.has_offer()) return refuse("its first part has no offer");
    const chiron::internal::JobOffer offer = part.offer();
    ByteReader schema_reader(AsBytes(offer.schema()));
    auto schema = dataset::ParseSchema(schema_reader);
    if (!schema.ok() || schema_reader.remaining() != 0) return refuse("its schema does not parse");
    const uint64_t record_size = schema->record_size();
    if (offer.recipe_size() == 0 || offer.recipe_size() > kMaxOfferRecipeSize) {
      return refuse("its recipe size is out of range");
    }
    if (offer.record_count() == 0 || record_size == 0 ||
        offer.record_count() > kMaxOfferRecordsSize / record_size) {
      return refuse("its record count is out of range");
    }
    ReceivedOffer received;
    auto caller = ratls::PeerSpki(*context);
    if (!caller.ok()) return refuse("the caller presented no TLS key");
    received.caller_spki = std::move(*caller);
    received.offer = &offer;
    received.recipe.reserve(offer.recipe_size());
    received.records = SecretBytes(offer.record_count() * record_size);
    uint64_t records_at = 0;
    auto take = [&](chiron::internal::OfferPart& p) -> bool {
      if (p.has_offer()) return false;
      if (!p.recipe().empty()) {
        if (records_at != 0 || p.recipe().size() > offer.recipe_size() - received.recipe.size()) {
          return false;
        }
        received.recipe.insert(received.recipe.end(), p.recipe().begin(), p.recipe().end());
      }
      if (!p.records().empty()) {
        if (received.recipe.size() != offer.recipe_size() ||
            p.records().size() > received.records.size() - records_at) {
          return false;
        }
        std::memcpy(received.records.data() + records_at, p.records().data(), p.records().size());
        records_at += p.records().size();
        SecureZero(p.mutable_records()->data(), p.records().size());
      }
      return true;
    };
    bool parts_ok = part.recipe().empty() && part.records().empty();  // the offer part
    while (parts_ok && reader->Read(&part)) parts_ok = take(part);
    if (!parts_ok) return refuse("its parts do not add up to the sizes it declares");
    if (received.recipe.size() != offer.recipe_size() || records_at != received.records.size()) {
      return refuse("it ended before every part arrived");
    }
    Status decided = handler(std::move(received));
    if (!decided.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(decided.code()), decided.message());
    }
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<Frame, Frame>* stream) override {
    Frame hello;
    if (!stream->Read(&hello)) return grpc::Status(grpc::StatusCode::CANCELLED, "no hello");
    if (hello.kind() != Frame::KIND_HELLO || !ValidJobId(hello.job_id())) {
      Refuse(stream, chiron::internal::REFUSAL_BAD_HELLO);
      return grpc::Status::OK;
    }
    std::shared_ptr<GroupCore> group;
    const auto deadline = std::chrono::steady_clock::now() + options_.unknown_job_wait;
    while (!group && !context->IsCancelled()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      group = registry_->WaitFor(hello.job_id(), std::min(left, kRegistryPoll));
      if (!group && registry_->closed()) break;
    }
    if (!group) {
      Refuse(stream, chiron::internal::REFUSAL_UNKNOWN_JOB);
      return grpc::Status::OK;
    }
    group->ServeIncoming(context, stream, hello);
    return grpc::Status::OK;
  }

 private:
  static void Refuse(grpc::ServerReaderWriter<Frame, Frame>* stream,
                     chiron::internal::Refusal refusal) {
    Frame answer;
    answer.set_kind(Frame::KIND_REFUSAL);
    answer.set_refusal(refusal);
    stream->Write(answer);
  }

  std::shared_ptr<JobRegistry> registry_;
  const NodeListenerOptions options_;
  std::mutex offer_mu_;
  OfferHandler offer_handler_;
  StoreKeyHandler store_key_handler_;
  RankFailureHandler rank_failure_handler_;
};

Status JobRegistry::Register(const std::string& job_id, std::shared_ptr<GroupCore> group) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("the node listener was shut down");
  if (!groups_.emplace(job_id, std::move(group)).second) {
    return AlreadyExistsError("this node already has a group for job '" + job_id + "'");
  }
  cv_.notify_all();
  return Status::Ok();
}

void JobRegistry::Unregister(const std::string& job_id, const GroupCore* group) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(job_id);
  if (it != groups_.end() && it->second.get() == group) groups_.erase(it);
}

std::shared_ptr<GroupCore> JobRegistry::WaitFor(const std::string& job_id,
                                                std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<GroupCore> found;
  cv_.wait_for(lock, wait, [&] {
    if (closed_) return true;
    auto it = groups_.find(job_id);
    if (it != groups_.end()) found = it->second;
    return found != nullptr;
  });
  return closed_ ? nullptr : found;
}

bool JobRegistry::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void JobRegistry::Close() {
  std::map<std::string, std::shared_ptr<GroupCore>> groups;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    groups.swap(groups_);
    cv_.notify_all();
  }
  for (auto& [job_id, group] : groups) group->Abort();
}

}  // namespace internal

Result<std::unique_ptr<NodeListener>> NodeListener::Start(
    const std::string& address, std::shared_ptr<const ratls::TlsIdentity> identity,
    std::shared_ptr<const attest::Verifier> peer_verifier, NodeListenerOptions options) {
  if (!identity) return InvalidArgumentError("NodeListener needs this node's attested identity");
  if (!peer_verifier) {
    return InvalidArgumentError("NodeListener needs the cluster policy's verifier for peers");
  }
  if (options.unknown_job_wait.count() < 0) {
    return InvalidArgumentError("NodeListenerOptions::unknown_job_wait must not be negative");
  }
  std::unique_ptr<NodeListener> listener(new NodeListener());
  listener->identity_ = identity;
  listener->registry_ = std::make_shared<internal::JobRegistry>();
  listener->service_ =
      std::make_unique<internal::NodeExchangeService>(listener->registry_, options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, ratls::AttestedServerCredentials(*identity, peer_verifier),
                           &listener->port_);
  builder.SetMaxReceiveMessageSize(internal::kMaxGrpcMessageSize);
  builder.SetMaxSendMessageSize(internal::kMaxGrpcMessageSize);
  builder.RegisterService(listener->service_.get());
  listener->server_ = builder.BuildAndStart();
  if (!listener->server_ || listener->port_ == 0) {
    return UnavailableError("cannot listen for peer nodes on " + address +
                            " (address in use or not local?)");
  }
  return listener;
}

NodeListener::~NodeListener() { Shutdown(); }

void NodeListener::SetOfferHandler(OfferHandler handler) {
  service_->SetOfferHandler(std::move(handler));
}

void NodeListener::SetStoreKeyHandler(StoreKeyHandler handler) {
  service_->SetStoreKeyHandler(std::move(handler));
}

void NodeListener::SetRankFailureHandler(RankFailureHandler handler) {
  service_->SetRankFailureHandler(std::move(handler));
}

void NodeListener::Shutdown() {
  std::call_once(shut_down_, [this] {
    registry_->Close();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  });
}

}  // namespace chiron::cluster
