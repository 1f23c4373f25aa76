// Attacks on a node's job offers (NodeExchange.Offer, PeerJobs), as a hostile peer would make
// them: an offer from a node that is not the job's named leader, one naming another node's key
// for this node's rank, parts beyond or short of the declared sizes, an absurd record count, a
// garbled schema or settings, a client without evidence and a node with another measurement.
// Each is refused with a fixed text naming the check (never a value the sender chose) and
// nothing starts; an honest offer starts a rank, a second offer for the same job is refused, and
// a rank whose leader never comes gives up within its connect timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "runtime/cluster/cluster_test_support.h"
#include "runtime/cluster/job_dispatch.h"
#include "shared/dataset/schema.h"
#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster {
namespace {

using chiron::internal::JobOffer;
using chiron::internal::OfferPart;
using testing::Contains;
using testing::Local;
using testing::SimNodes;

constexpr char kJob[] = "job-offer-test";

dataset::DatasetSchema Schema(uint64_t count) {
  dataset::DatasetSchema schema;
  schema.shape = {4};
  schema.class_names = {"a", "b"};
  schema.sample_count = count;
  return schema;
}

class JobOfferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    me_ = nodes_.Identity();
    leader_ = nodes_.Identity();
    listener_ = nodes_.StartListener(me_);
    ASSERT_NE(listener_, nullptr);
    PeerJobsOptions options;
    options.connect_timeout = std::chrono::milliseconds(1500);
    jobs_ = std::make_unique<PeerJobs>(nullptr, listener_.get(), me_, nodes_.verifier(), options);
    PeerJobs* jobs = jobs_.get();
    listener_->SetOfferHandler(
        [jobs](ReceivedOffer offer) { return jobs->HandleOffer(std::move(offer)); });
  }
  void TearDown() override {
    jobs_->Stop();
    listener_->Shutdown();
  }

  // An honest offer of rank 1 of 2 from `leader_`, with `count` records.
  JobOffer Offer(uint64_t count = 10) const {
    JobOffer offer;
    offer.set_job_id(kJob);
    offer.set_owner_id("owner");
    offer.set_rank(1);
    offer.set_size(2);
    offer.add_addresses("127.0.0.1:1");
    offer.add_addresses(Local(listener_->port()));
    offer.add_peer_keys(leader_->spki_der.data(), leader_->spki_der.size());
    offer.add_peer_keys(me_->spki_der.data(), me_->spki_der.size());
    offer.set_recipe_size(3);
    Bytes schema;
    dataset::EncodeSchema(Schema(count), schema);
    offer.set_schema(schema.data(), schema.size());
    offer.set_record_count(count);
    TrainingConfig config;
    for (uint64_t value : PackRecipeDeclarations(config, ResourceBudget{})) {
      offer.add_declarations(value);
    }
    offer.set_validation_fraction(0.1);
    offer.set_seconds_left(60);
    offer.set_attempt(1);
    return offer;
  }

  // Sends `offer` then `recipe` and `records` parts (as given) as `identity`; the call's status.
  grpc::Status Send(const JobOffer& offer, const std::vector<std::string>& recipe_parts,
                    const std::vector<std::string>& record_parts,
                    std::shared_ptr<const ratls::TlsIdentity> identity = nullptr) {
    auto channel =
        grpc::CreateCustomChannel(Local(listener_->port()),
                                  ratls::AttestedChannelCredentials(
                                      identity ? *identity : *leader_, nodes_.lenient_verifier(),
                                      std::make_shared<ratls::ServerAttestationRecord>()),
                                  ratls::AttestedChannelArguments());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    chiron::internal::OfferReply reply;
    auto writer = chiron::internal::NodeExchange::NewStub(channel)->Offer(&context, &reply);
    OfferPart part;
    *part.mutable_offer() = offer;
    writer->Write(part);
    for (const std::string& bytes : recipe_parts) {
      OfferPart p;
      p.set_recipe(bytes);
      writer->Write(p);
    }
    for (const std::string& bytes : record_parts) {
      OfferPart p;
      p.set_records(bytes);
      writer->Write(p);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static std::string Records(uint64_t count) { return std::string(count * 5, '\0'); }

  SimNodes nodes_;
  std::shared_ptr<const ratls::TlsIdentity> me_, leader_;
  std::unique_ptr<NodeListener> listener_;
  std::unique_ptr<PeerJobs> jobs_;
};

TEST_F(JobOfferTest, OffersThatBreakACheckAreRefusedAndStartNothing) {
  struct Case {
    const char* what;
    void (*edit)(JobOffer&);
    std::vector<std::string> recipe;
    std::vector<std::string> records;
    const char* reason;
  };
  const std::string records = Records(10);
  const std::vector<Case> cases = {
      {"more records than declared",
       nullptr,
       {"abc"},
       {records, "x"},
       "do not add up to the sizes it declares"},
      {"records before the recipe ends",
       nullptr,
       {"ab"},
       {records},
       "do not add up to the sizes it declares"},
      {"fewer records than declared",
       nullptr,
       {"abc"},
       {records.substr(1)},
       "ended before every part arrived"},
      {"an absurd record count",
       [](JobOffer& o) { o.set_record_count(uint64_t{1} << 62); },
       {"abc"},
       {records},
       "record count is out of range"},
      {"no recipe",
       [](JobOffer& o) { o.set_recipe_size(0); },
       {},
       {records},
       "recipe size is out of range"},
      {"a garbled schema",
       [](JobOffer& o) { o.set_schema("garbage"); },
       {"abc"},
       {records},
       "schema does not parse"},
      {"rank 0 offered",
       [](JobOffer& o) { o.set_rank(0); },
       {"abc"},
       {records},
       "ranks, addresses and keys do not agree"},
      {"keys missing",
       [](JobOffer& o) { o.mutable_peer_keys()->RemoveLast(); },
       {"abc"},
       {records},
       "ranks, addresses and keys do not agree"},
      {"settings cut short",
       [](JobOffer& o) { o.mutable_declarations()->RemoveLast(); },
       {"abc"},
       {records},
       "training settings are incomplete"},
      {"a bad job id",
       [](JobOffer& o) { o.set_job_id("../../etc"); },
       {"abc"},
       {records},
       "invalid job id"},
      {"no time left",
       [](JobOffer& o) { o.set_seconds_left(0); },
       {"abc"},
       {records},
       "time budget out of range"},
      {"another node's key for this rank",
       [](JobOffer& o) { o.set_peer_keys(1, o.peer_keys(0)); },
       {"abc"},
       {records},
       "the key it lists for this node's rank is not this node's"},
  };
  for (const Case& c : cases) {
    JobOffer offer = Offer();
    if (c.edit) c.edit(offer);
    grpc::Status status = Send(offer, c.recipe, c.records);
    EXPECT_FALSE(status.ok()) << c.what;
    EXPECT_TRUE(Contains(status.error_message(), c.reason))
        << c.what << ": " << status.error_message();
  }
  EXPECT_EQ(jobs_->running_count(), 0u);
}

TEST_F(JobOfferTest, OnlyTheNamedLeaderMayOfferAndOnlyAttestedNodesReachThePort) {
  // An attested node of the cluster that is not the leader the offer names.
  grpc::Status status = Send(Offer(), {"abc"}, {Records(10)}, nodes_.Identity());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Contains(status.error_message(),
                       "did not come from the node it names as the "
                       "job's leader"))
      << status.error_message();
  // Another measurement, and no evidence at all: the handshake refuses them.
  for (auto identity : {nodes_.OtherMeasurementIdentity(), SimNodes::UnattestedIdentity()}) {
    JobOffer offer = Offer();
    offer.set_peer_keys(0, identity->spki_der.data(), identity->spki_der.size());
    status = Send(offer, {"abc"}, {Records(10)}, identity);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  EXPECT_EQ(jobs_->running_count(), 0u);
}

TEST_F(JobOfferTest, AnHonestOfferStartsOneRankThatGivesUpWithoutItsLeader) {
  ASSERT_TRUE(Send(Offer(), {"abc"}, {Records(10)}).ok());
  EXPECT_EQ(jobs_->running_count(), 1u);
  // The same job again while its rank runs: refused.
  grpc::Status again = Send(Offer(), {"abc"}, {Records(10)});
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS) << again.error_message();
  // Its leader (127.0.0.1:1) never answers: the rank stops after its connect timeout.
  for (int i = 0; i < 100 && jobs_->running_count() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(jobs_->running_count(), 0u);
}

// A node's report that its worker failed (NodeExchange.RankFailed) can end another node's job, so
// the leader hears it only for a job it leads and a worker's own category.
TEST_F(JobOfferTest, ARankFailureForAJobThisNodeDoesNotLeadOrOfNoWorkerCategoryIsRefused) {
  auto directory =
      std::make_shared<const PeerDirectory>(std::vector<std::string>{}, me_, nodes_.verifier());
  ClusterDispatcher dispatcher(listener_.get(), directory, {Local(listener_->port())});
  const auto crashed = static_cast<uint32_t>(train::FailureCategory::kCrashed);
  Status unknown = dispatcher.HearRankFailure(leader_->spki_der, "job-x", 1, crashed);
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound) << unknown.ToString();
  for (auto category : {train::FailureCategory::kNone, train::FailureCategory::kInternal,
                        train::FailureCategory::kStopped}) {
    Status refused = dispatcher.HearRankFailure(leader_->spki_der, "job-x", 1,
                                                static_cast<uint32_t>(category));
    EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.ToString();
  }
  Status huge = dispatcher.HearRankFailure(leader_->spki_der, "job-x", 1, 200);
  EXPECT_EQ(huge.code(), StatusCode::kInvalidArgument) << huge.ToString();
  EXPECT_FALSE(dispatcher.TakeRankFailure("job-x").has_value());
}

}  // namespace
}  // namespace chiron::cluster
