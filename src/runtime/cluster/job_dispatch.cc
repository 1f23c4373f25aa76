#include "runtime/cluster/job_dispatch.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>

#include "chiron/internal/node.grpc.pb.h"
#include "runtime/cluster/frame_checks.h"
#include "runtime/cluster/group_collective.h"
#include "runtime/cluster/group_core.h"
#include "runtime/cluster/peer_group.h"
#include "runtime/jobs/records.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/training_session.h"
#include "shared/attest/policy.h"
#include "shared/base/log.h"
#include "shared/crypto/x509.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster {
namespace {

constexpr size_t kOfferPartSize = size_t{1} << 20;

bool SameBytes(const std::string& a, ByteSpan b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, uint8_t y) {
           return static_cast<uint8_t>(x) == y;
         });
}

// The peer-side checkpoint of a job, sealed in the node's store, owned by the runtime itself.
std::string PeerCheckpointId(const std::string& job_id) {
  return "peer-" + job_id;
}

class Run final : public jobs::DistributedRun {
 public:
  Run(std::unique_ptr<PeerGroup> group, ByteSpan local, uint64_t local_count,
      std::vector<jobs::JobNodeRecord> nodes)
      : group_(std::move(group)),
        collective_(*group_),
        local_(local),
        local_count_(local_count),
        nodes_(std::move(nodes)) {}
  train::Collective& collective() override { return collective_; }
  ByteSpan local_records() const override { return local_; }
  uint64_t local_record_count() const override { return local_count_; }
  const std::vector<jobs::JobNodeRecord>& nodes() const override { return nodes_; }

 private:
  std::unique_ptr<PeerGroup> group_;
  GroupCollective collective_;
  ByteSpan local_;
  uint64_t local_count_;
  std::vector<jobs::JobNodeRecord> nodes_;
};

// Sends one peer its offer: dials it over mutual RA-TLS, checks that the key it presents is
// `expected_key` (the one the owner approved) before any data, then streams the offer, the
// recipe and the records of its shard.
Status SendOffer(const std::string& address, const Bytes& expected_key,
                 const ratls::TlsIdentity& identity,
                 const std::shared_ptr<const attest::Verifier>& verifier,
                 const chiron::internal::JobOffer& offer, ByteSpan recipe, ByteSpan records,
                 std::chrono::milliseconds timeout) {
  auto record = std::make_shared<ratls::ServerAttestationRecord>();
  grpc::ChannelArguments args = ratls::AttestedChannelArguments();
  args.SetMaxSendMessageSize(internal::kMaxGrpcMessageSize);
  auto channel = grpc::CreateCustomChannel(
      address, ratls::AttestedChannelCredentials(identity, verifier, record), args);
  const auto deadline = std::chrono::system_clock::now() + timeout;
  if (!channel->WaitForConnected(deadline)) {
    const std::string refused = record->last_failure();
    if (!refused.empty()) {
      return UnauthenticatedError("its evidence does not verify under the cluster policy: " +
                                  refused);
    }
    return UnavailableError("unreachable within " + std::to_string(timeout.count()) + " ms");
  }
  const auto verified = record->last_verified();
  if (!verified || verified->server_spki_der != expected_key) {
    return UnauthenticatedError("its TLS key is not the one the owner approved");
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout +
                       std::chrono::seconds(1 + records.size() / (8 << 20)));
  chiron::internal::OfferReply reply;
  auto writer = chiron::internal::NodeExchange::NewStub(channel)->Offer(&context, &reply);
  chiron::internal::OfferPart part;
  *part.mutable_offer() = offer;
  bool written = writer->Write(part);
  part.Clear();
  for (size_t at = 0; written && at < recipe.size(); at += kOfferPartSize) {
    const size_t n = std::min(kOfferPartSize, recipe.size() - at);
    part.set_recipe(reinterpret_cast<const char*>(recipe.data() + at), n);
    written = writer->Write(part);
  }
  part.clear_recipe();
  for (size_t at = 0; written && at < records.size(); at += kOfferPartSize) {
    const size_t n = std::min(kOfferPartSize, records.size() - at);
    part.set_records(reinterpret_cast<const char*>(records.data() + at), n);
    written = writer->Write(part);
    SecureZero(part.mutable_records()->data(), n);  // the owner's plaintext: no stale copy
  }
  if (written) writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return Status(static_cast<StatusCode>(status.error_code()),
                  "it refused the job: " + status.error_message());
  }
  if (!written) return UnavailableError("the connection closed while the shard was sent");
  return Status::Ok();
}

Result<attest::Verifier> OwnerVerifier(const std::string& node_policy) {
  auto policy = attest::Policy::FromJson(node_policy, "your policy (node_policy)");
  if (!policy.ok()) return InvalidArgumentError(std::string(policy.status().message()));
  auto verifier = attest::Verifier::Create(*policy);
  if (!verifier.ok()) return InvalidArgumentError(std::string(verifier.status().message()));
  return verifier;
}

}  // namespace

Status PeerJobs::ReportRankFailure(const std::string& leader_address, const Bytes& leader_key,
                                   const std::string& job_id, uint32_t rank,
                                   train::FailureCategory failure) {
  auto record = std::make_shared<ratls::ServerAttestationRecord>();
  auto channel = grpc::CreateCustomChannel(
      leader_address, ratls::AttestedChannelCredentials(*identity_, verifier_, record),
      ratls::AttestedChannelArguments());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return UnavailableError("the job's leader is unreachable");
  }
  const auto verified = record->last_verified();
  if (!verified || verified->server_spki_der != leader_key) {
    return UnauthenticatedError("the node at the leader's address is not the job's leader");
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  chiron::internal::RankFailure report;
  report.set_job_id(job_id);
  report.set_rank(rank);
  report.set_failure(static_cast<uint32_t>(failure));
  chiron::internal::RankFailureReply reply;
  grpc::Status status =
      chiron::internal::NodeExchange::NewStub(channel)->RankFailed(&context, report, &reply);
  if (!status.ok()) {
    return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
  }
  return Status::Ok();
}

Status ClusterDispatcher::CheckNodePolicy(const std::string& node_policy) const {
  return OwnerVerifier(node_policy).status();
}

Result<std::unique_ptr<jobs::DistributedRun>> ClusterDispatcher::Dispatch(
    const jobs::DispatchRequest& request) {
  if (request.nodes < 2 || request.nodes > kMaxGroupSize || request.schema == nullptr) {
    return InvalidArgumentError("a job on several nodes needs 2 to " +
                                std::to_string(kMaxGroupSize) + " nodes");
  }
  const uint64_t record_size = request.schema->record_size();
  const uint64_t count = record_size == 0 ? 0 : request.records.size() / record_size;
  if (count < request.nodes) {
    return FailedPreconditionError("the dataset has fewer records than the job has nodes");
  }
  CHIRON_ASSIGN_OR_RETURN(attest::Verifier owner_verifier, OwnerVerifier(request.node_policy));
  // The peers to use: in --peers order, those that answer and whose evidence verifies under the
  // cluster policy and under the owner's.
  std::vector<PeerView> chosen;
  std::string problems;
  for (PeerView& view : directory_->Probe(options_.probe_timeout)) {
    if (chosen.size() + 1 == request.nodes) break;
    std::string problem = view.problem;
    if (view.verified) {
      auto certificate = crypto::Certificate::FromPem(view.certificate_pem);
      Status owner_check =
          certificate.ok() ? ratls::VerifyAttestedCertificate(*certificate, owner_verifier).status()
                           : certificate.status();
      if (!owner_check.ok()) {
        problem =
            "its evidence does not verify under your policy: " + std::string(owner_check.message());
      }
    }
    if (problem.empty()) {
      chosen.push_back(std::move(view));
    } else {
      problems += "; " + view.address + ": " + problem;
    }
  }
  if (chosen.size() + 1 < request.nodes) {
    return FailedPreconditionError("--nodes " + std::to_string(request.nodes) + " needs " +
                                   std::to_string(request.nodes - 1) + " other nodes and only " +
                                   std::to_string(chosen.size()) +
                                   " answered, verified and were approved" + problems);
  }

  const auto& identity = directory_->identity();
  const auto& verifier = directory_->verifier();
  PeerGroupOptions group;
  group.job_id = request.job_id;
  group.rank = 0;
  group.size = request.nodes;
  group.identity = identity;
  group.peer_verifier = verifier;
  group.connect_timeout = options_.connect_timeout;
  group.addresses.push_back(options_.node_address);
  group.peer_keys.push_back(identity->spki_der);
  for (const PeerView& view : chosen) {
    group.addresses.push_back(view.address);
    group.peer_keys.push_back(view.spki_der);
  }

  chiron::internal::JobOffer offer;
  offer.set_job_id(request.job_id);
  offer.set_owner_id(request.owner_id);
  offer.set_size(request.nodes);
  for (const std::string& address : group.addresses) offer.add_addresses(address);
  for (const Bytes& key : group.peer_keys) offer.add_peer_keys(key.data(), key.size());
  offer.set_recipe_size(request.recipe.size());
  for (uint64_t value : PackRecipeDeclarations(request.config, ResourceBudget{})) {
    offer.add_declarations(value);
  }
  offer.set_validation_fraction(request.validation_fraction);
  offer.set_seed(request.seed);
  offer.set_checkpoint_every_steps(request.checkpoint_every_steps);
  offer.set_seconds_left(request.seconds_left);
  offer.set_max_resident_size(request.max_resident_size);
  offer.set_staleness(request.staleness);
  offer.set_attempt(request.attempt);

  std::vector<jobs::JobNodeRecord> nodes;
  nodes.push_back({0, options_.node_address, ratls::PrincipalId(identity->spki_der),
                   jobs::ShardBegin(count, 1, request.nodes)});
  for (uint32_t rank = 1; rank < request.nodes; ++rank) {
    const uint64_t begin = jobs::ShardBegin(count, rank, request.nodes);
    const uint64_t end = jobs::ShardBegin(count, rank + 1, request.nodes);
    dataset::DatasetSchema shard = *request.schema;
    shard.sample_count = end - begin;
    Bytes schema_bytes;
    dataset::EncodeSchema(shard, schema_bytes);
    offer.set_schema(schema_bytes.data(), schema_bytes.size());
    offer.set_rank(rank);
    offer.set_record_count(end - begin);
    const PeerView& peer = chosen[rank - 1];
    Status sent =
        SendOffer(peer.address, peer.spki_der, *identity, verifier, offer, request.recipe,
                  request.records.subspan(begin * record_size, (end - begin) * record_size),
                  options_.connect_timeout);
    if (!sent.ok()) {
      return sent.WithContext("node " + peer.address + " (rank " + std::to_string(rank) + ")");
    }
    nodes.push_back({rank, peer.address, ratls::PrincipalId(peer.spki_der), end - begin});
    LogInfo("job.shard_sent", {{"job", request.job_id},
                               {"rank", std::to_string(rank)},
                               {"node", peer.address},
                               {"records", std::to_string(end - begin)}});
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_keys_[request.job_id] = group.peer_keys;
  }
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<PeerGroup> joined,
                          PeerGroup::Join(*listener_, std::move(group)));
  const uint64_t local_count = jobs::ShardBegin(count, 1, request.nodes);
  return std::unique_ptr<jobs::DistributedRun>(
      new Run(std::move(joined), request.records.subspan(0, local_count * record_size), local_count,
              std::move(nodes)));
}

std::optional<train::FailureCategory> ClusterDispatcher::TakeRankFailure(
    const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = rank_failures_.find(job_id);
  if (it == rank_failures_.end()) return std::nullopt;
  const train::FailureCategory failure = it->second;
  rank_failures_.erase(it);
  return failure;
}

Status ClusterDispatcher::HearRankFailure(ByteSpan caller_spki, const std::string& job_id,
                                          uint32_t rank, uint32_t failure) {
  using train::FailureCategory;
  const auto category = static_cast<FailureCategory>(failure);
  const bool workers_own = failure <= static_cast<uint32_t>(FailureCategory::kNumericalError) &&
                           category != FailureCategory::kNone;
  if (!workers_own) return InvalidArgumentError("rank failure: not a worker's failure category");
  std::lock_guard<std::mutex> lock(mutex_);
  auto keys = job_keys_.find(job_id);
  if (keys == job_keys_.end() || rank == 0 || rank >= keys->second.size()) {
    return NotFoundError("rank failure: this node leads no such job and rank");
  }
  const Bytes& expected = keys->second[rank];
  if (expected.size() != caller_spki.size() ||
      !std::equal(expected.begin(), expected.end(), caller_spki.begin())) {
    return PermissionDeniedError("rank failure: the caller is not the node of that rank");
  }
  rank_failures_[job_id] = category;
  LogWarning("job.rank_failed", {{"job", job_id},
                                 {"rank", std::to_string(rank)},
                                 {"failure", std::string(train::FailureCategoryName(category))}});
  return Status::Ok();
}

PeerJobs::PeerJobs(store::Store* store, NodeListener* listener,
                   std::shared_ptr<const ratls::TlsIdentity> identity,
                   std::shared_ptr<const attest::Verifier> cluster_verifier,
                   PeerJobsOptions options)
    : store_(store),
      listener_(listener),
      identity_(std::move(identity)),
      verifier_(std::move(cluster_verifier)),
      options_(std::move(options)) {}

PeerJobs::~PeerJobs() {
  Stop();
}

void PeerJobs::ReapLocked() {
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second.done) {
      it->second.thread.join();
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t PeerJobs::running_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t n = 0;
  for (const auto& [id, run] : runs_) n += run.done ? 0 : 1;
  return n;
}

Result<CheckedOffer> CheckOffer(const chiron::internal::JobOffer& offer, ByteSpan caller_spki,
                                ByteSpan own_spki) {
  // Job ids name checkpoints in the store: letters, digits and '-' only (the leader's are
  // "job-" and 24 hex digits).
  const std::string& job_id = offer.job_id();
  if (job_id.empty() || job_id.size() > 64 ||
      !std::all_of(job_id.begin(), job_id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
      })) {
    return InvalidArgumentError("job offer: invalid job id");
  }
  if (offer.size() < 2 || offer.size() > kMaxGroupSize || offer.rank() == 0 ||
      offer.rank() >= offer.size() ||
      static_cast<uint32_t>(offer.addresses_size()) != offer.size() ||
      static_cast<uint32_t>(offer.peer_keys_size()) != offer.size()) {
    return InvalidArgumentError("job offer: its ranks, addresses and keys do not agree");
  }
  // Who may offer: the node the offer names as rank 0, to the node it names for this rank.
  if (!SameBytes(offer.peer_keys(0), caller_spki)) {
    return PermissionDeniedError(
        "job offer: it did not come from the node it names as the job's leader (rank 0)");
  }
  if (!SameBytes(offer.peer_keys(static_cast<int>(offer.rank())), own_spki)) {
    return FailedPreconditionError(
        "job offer: the key it lists for this node's rank is not this node's");
  }
  if (offer.declarations_size() !=
      static_cast<int>(kDescriptionPages * kDescriptionValuesPerPage)) {
    return InvalidArgumentError("job offer: its training settings are incomplete");
  }
  CheckedOffer checked;
  RecipeDeclarationValues values{};
  std::copy(offer.declarations().begin(), offer.declarations().end(), values.begin());
  ResourceBudget unused;
  if (!UnpackRecipeDeclarations(values, checked.training.config, unused).ok()) {
    return InvalidArgumentError("job offer: its training settings do not decode");
  }
  if (!(offer.validation_fraction() >= 0.0 && offer.validation_fraction() <= 0.5) ||
      offer.seconds_left() == 0 || offer.seconds_left() > uint64_t{366} * 24 * 3600) {
    return InvalidArgumentError("job offer: validation fraction or time budget out of range");
  }
  ByteReader schema_reader(AsBytes(offer.schema()));
  auto schema = dataset::ParseSchema(schema_reader);
  if (!schema.ok() || schema_reader.remaining() != 0) {
    return InvalidArgumentError("job offer: its schema does not parse");
  }
  if (schema->sample_count != offer.record_count()) {
    return InvalidArgumentError("job offer: its schema and record count disagree");
  }
  checked.schema = std::move(*schema);
  checked.job_id = job_id;
  checked.owner_id = offer.owner_id();
  checked.training.validation_fraction = offer.validation_fraction();
  checked.training.seed = offer.seed();
  checked.training.checkpoint_every_steps = offer.checkpoint_every_steps();
  checked.training.max_resident_size = offer.max_resident_size();
  if (offer.staleness() > train::kMaxStaleness) {
    return InvalidArgumentError("job offer: its staleness is out of range");
  }
  checked.training.staleness = offer.staleness();
  checked.training.deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(offer.seconds_left());
  checked.group.job_id = job_id;
  checked.group.rank = offer.rank();
  checked.group.size = offer.size();
  checked.group.addresses.assign(offer.addresses().begin(), offer.addresses().end());
  for (const std::string& key : offer.peer_keys()) {
    checked.group.peer_keys.emplace_back(key.begin(), key.end());
  }
  return checked;
}

Status PeerJobs::HandleOffer(ReceivedOffer received) {
  const chiron::internal::JobOffer& offer = *received.offer;
  CHIRON_ASSIGN_OR_RETURN(CheckedOffer checked,
                          CheckOffer(offer, received.caller_spki, identity_->spki_der));
  PeerGroupOptions group = std::move(checked.group);
  group.identity = identity_;
  group.peer_verifier = verifier_;
  group.connect_timeout = options_.connect_timeout;
  train::TrainingOptions training = std::move(checked.training);
  dataset::DatasetSchema schema = std::move(checked.schema);

  std::lock_guard<std::mutex> lock(mutex_);
  ReapLocked();
  if (stopping_) return UnavailableError("job offer: this node is shutting down");
  if (runs_.count(offer.job_id())) {
    return AlreadyExistsError("job offer: this node already trains a rank of that job");
  }
  if (runs_.size() >= options_.max_jobs) {
    return ResourceExhaustedError("job offer: this node already trains " +
                                  std::to_string(runs_.size()) +
                                  " ranks of other nodes' jobs; try again later");
  }
  auto stopper = std::make_shared<train::WorkerStopper>();
  Run& run = runs_[offer.job_id()];
  run.stopper = stopper;
  run.thread = std::thread(&PeerJobs::Train, this, offer.job_id(), offer.owner_id(), offer.rank(),
                           std::move(group), std::move(training), std::move(schema),
                           std::move(received.recipe), std::move(received.records), stopper);
  LogInfo("peer_job.accepted", {{"job", offer.job_id()},
                                {"rank", std::to_string(offer.rank())},
                                {"size", std::to_string(offer.size())},
                                {"attempt", std::to_string(offer.attempt())},
                                {"records", std::to_string(offer.record_count())}});
  return Status::Ok();
}

void PeerJobs::Train(std::string job_id, std::string owner_id, uint32_t rank,
                     PeerGroupOptions group_options, train::TrainingOptions training,
                     dataset::DatasetSchema schema, Bytes recipe, SecretBytes records,
                     std::shared_ptr<train::WorkerStopper> stopper) {
  (void)owner_id;  // the job's owner is the leader's principal; checkpoints here are the runtime's
  train::FailureCategory failure = train::FailureCategory::kNone;
  const std::string leader_address = group_options.addresses.at(0);
  const Bytes leader_key = group_options.peer_keys.at(0);
  Status outcome = [&]() -> Status {
    CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<PeerGroup> group,
                            PeerGroup::Join(*listener_, std::move(group_options)));
    GroupCollective collective(*group);
    training.collective = &collective;
    training.worker = options_.worker;
    training.worker.stopper = stopper;
    const std::string checkpoint_id = PeerCheckpointId(job_id);
    Result<SecretBytes> checkpoint =
        store_ != nullptr ? store_->GetBlob(store::BlobKind::kCheckpoint, checkpoint_id)
                          : Result<SecretBytes>(NotFoundError("no store"));
    uint64_t step = 0;
    if (checkpoint.ok()) {
      auto at = train::CheckpointStep(checkpoint->span());
      if (at.ok()) step = *at;
    }
    // Before the session's own exchanges: every rank restores the same step, or none does.
    CHIRON_ASSIGN_OR_RETURN(bool agreed, train::AgreeOnResume(collective, step));
    CHIRON_ASSIGN_OR_RETURN(
        std::unique_ptr<train::TrainingSession> session,
        train::TrainingSession::Create(train::TrainingData{schema, records.span()}, recipe,
                                       training, &failure));
    if (agreed) {
      Status restored = session->Restore(checkpoint->span());
      if (!restored.ok()) {
        LogWarning("peer_job.checkpoint_unusable",
                   {{"job", job_id}, {"error", restored.ToString()}});
      }
    }
    auto save = [&](ByteSpan bytes, const train::EpochMetrics&) -> Status {
      if (store_ == nullptr) return Status::Ok();
      auto saved = store_->PutBlob(store::BlobKind::kCheckpoint, checkpoint_id,
                                   jobs::kBuiltinPrincipal, bytes, {});
      if (!saved.ok()) {
        LogWarning("peer_job.checkpoint_not_saved",
                   {{"job", job_id}, {"error", saved.status().ToString()}});
      }
      return Status::Ok();
    };
    auto result = session->Run({}, save, {});
    failure = session->failure();
    if (!result.ok()) return result.status();
    return Status::Ok();
  }();
  // This node's own worker failed: tell the leader, so that it ends the job with the category
  // instead of dispatching it again (best effort; the leader retries without it).
  if (!outcome.ok() && failure != train::FailureCategory::kNone &&
      failure != train::FailureCategory::kInternal && failure != train::FailureCategory::kStopped) {
    Status told = ReportRankFailure(leader_address, leader_key, job_id, rank, failure);
    if (!told.ok()) {
      LogWarning("peer_job.failure_not_reported", {{"job", job_id}, {"error", told.ToString()}});
    }
  }
  // Done, or this node's own worker failed: the checkpoint has no further use. A broken group
  // (the leader or another rank lost) keeps it for the leader's next dispatch.
  const bool keep_checkpoint = !outcome.ok() && (failure == train::FailureCategory::kInternal ||
                                                 failure == train::FailureCategory::kNone ||
                                                 failure == train::FailureCategory::kStopped);
  if (store_ != nullptr && !keep_checkpoint) {
    store_->DeleteBlob(store::BlobKind::kCheckpoint, PeerCheckpointId(job_id)).IgnoreError();
  }
  LogInfo("peer_job.finished", {{"job", job_id},
                                {"rank", std::to_string(rank)},
                                {"failure", std::string(train::FailureCategoryName(failure))},
                                {"detail", outcome.ok() ? "" : outcome.ToString()}});
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = runs_.find(job_id);
  if (it != runs_.end()) it->second.done = true;
}

void PeerJobs::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, run] : runs_) run.stopper->Stop();
  }
  // Threads are joined without the lock (each takes it to mark itself done).
  for (;;) {
    std::thread thread;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = std::find_if(runs_.begin(), runs_.end(),
                             [](const auto& entry) { return entry.second.thread.joinable(); });
      if (it == runs_.end()) break;
      thread = std::move(it->second.thread);
    }
    thread.join();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  runs_.clear();
}

}  // namespace chiron::cluster
