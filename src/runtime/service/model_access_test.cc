// Who may query a model, and what they get, tried as an attacker would: a real RuntimeServer
// (sim platform) with the real sandboxed worker, real Fashion-MNIST (Debian's t10k file) and
// distinct principals on real mutual TLS. An owner shares Predict on a model with a grant; an
// ungranted owner, a provider and a revoked grantee are refused; a grantee can do nothing but
// Predict; a label-only recipe returns no scores whatever the request or the owner ask; the
// owner's rate limit refuses a burst (the limiter's clock is injected: no sleeping, no timing
// flakiness); grants, revocations and grantee queries are audit records in both chains.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/models.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "chiron/v1/recipes.grpc.pb.h"
#include "client/connection.h"
#include "client/importers/sample_source.h"
#include "client/upload.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/crypto/keys.h"

namespace chiron::runtime {
namespace {

namespace fs = std::filesystem;

constexpr char kImages[] = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// The limiter's clock: starts at an arbitrary point and moves only when the test says so.
std::atomic<int64_t> g_clock_seconds{1000};

struct Principal {
  std::unique_ptr<client::Connection> connection;
  std::string id;
};

class ModelAccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "chiron-access-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    std::ofstream(dir_ + "/policy.json") << "{}";
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.platform.state_dir = dir_ + "/state";
    options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                            {"chiron-worker", CHIRON_WORKER_PATH},
                                            {"sandbox-policy", dir_ + "/policy.json"}};
    jobs::JobManagerOptions jobs;
    jobs.worker.worker_path = CHIRON_WORKER_PATH;
    jobs.worker.threads = 2;
    jobs.recipes_dir = CHIRON_RECIPES_DIR;
    jobs.query_budget = 1000;
    jobs.max_predict_batch = 16;
    jobs.clock = [] {
      return std::chrono::steady_clock::time_point(std::chrono::seconds(g_clock_seconds.load()));
    };
    options.jobs = jobs;
    ASSERT_TRUE(FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok());
    auto server = RuntimeServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server).release();
    auto policy = SimReferencePolicy(server_->platform());
    ASSERT_TRUE(policy.ok());
    auto verifier = attest::Verifier::Create(*policy);
    ASSERT_TRUE(verifier.ok());
    verifier_ = new std::shared_ptr<const attest::Verifier>(
        std::make_shared<const attest::Verifier>(std::move(*verifier)));

    alice_ = new Principal(NewPrincipal(v1::ROLE_OWNER));
    UploadFashionMnist(*alice_->connection);
    TrainAndWait(*alice_->connection, "mlp", "scores");
  }

  static void TearDownTestSuite() {
    delete alice_;
    delete verifier_;
    delete server_;
    fs::remove_all(dir_);
  }

  static Principal NewPrincipal(v1::Role role) {
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    EXPECT_TRUE(key.ok());
    auto identity = ratls::CreateClientIdentity(*key, "test");
    EXPECT_TRUE(identity.ok());
    client::ConnectOptions options;
    options.server = "127.0.0.1:" + std::to_string(server_->port());
    options.verifier = *verifier_;
    options.identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
    options.timeout = std::chrono::seconds(120);
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    v1::RegisterPrincipalRequest request;
    request.set_role(role);
    request.set_display_name("test");
    v1::Principal principal;
    auto context = (*connection)->NewContext();
    EXPECT_TRUE(v1::Principals::NewStub((*connection)->channel())
                    ->Register(context.get(), request, &principal)
                    .ok());
    return Principal{std::move(*connection), principal.id()};
  }

  static void UploadFashionMnist(client::Connection& owner) {
    client::UploadRequest request;
    request.name = "fmnist";
    request.open_source = [] {
      return importers::OpenSource(kImages, importers::ImportOptions{});
    };
    request.source_fingerprint = "t10k";
    auto outcome = client::UploadDataset(owner, request);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  }

  // Trains one epoch of `recipe` (a name or id) into model `model` and waits for the end.
  static void TrainAndWait(client::Connection& c, const std::string& recipe,
                           const std::string& model) {
    v1::StartTrainingRequest request;
    request.set_dataset_name("fmnist");
    request.set_recipe_id(recipe);
    request.set_model_name(model);
    request.set_epochs(1);
    request.set_seed(7);
    v1::OwnerJobView job;
    {
      auto context = c.NewContext();
      grpc::Status status =
          v1::Jobs::NewStub(c.channel())->StartTraining(context.get(), request, &job);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    v1::JobRef ref;
    ref.set_job_id(job.job_id());
    auto reader = v1::Jobs::NewStub(c.channel())->Watch(&context, ref);
    v1::OwnerJobView view, last;
    while (reader->Read(&view)) last = view;
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_EQ(last.state(), v1::JOB_STATE_SUCCEEDED);
  }

  static std::string Images(size_t count) {
    auto source = importers::OpenSource(kImages, importers::ImportOptions{});
    EXPECT_TRUE(source.ok());
    std::string out;
    Bytes sample((*source)->schema().sample_size());
    uint32_t label = 0;
    for (size_t i = 0; i < count; ++i) {
      auto more = (*source)->Next(sample, label);
      EXPECT_TRUE(more.ok() && *more);
      out.append(sample.begin(), sample.end());
    }
    return out;
  }

  static grpc::Status Predict(Principal& caller, const std::string& owner_id,
                              const std::string& model, size_t count, uint32_t top_k,
                              v1::PredictResponse* response) {
    v1::PredictRequest request;
    request.set_model_name(model);
    request.set_owner_id(owner_id);
    request.set_top_k(top_k);
    std::string images = Images(count);
    for (size_t i = 0; i < count; ++i) request.add_samples(images.substr(i * 784, 784));
    auto context = caller.connection->NewContext();
    return v1::Models::NewStub(caller.connection->channel())
        ->Predict(context.get(), request, response);
  }

  static grpc::Status Grant(Principal& owner, const std::string& model,
                            const std::string& grantee, uint64_t budget, v1::ModelInfo* info) {
    v1::GrantModelRequest request;
    request.set_name(model);
    request.set_grantee_id(grantee);
    request.set_budget(budget);
    auto context = owner.connection->NewContext();
    return v1::Models::NewStub(owner.connection->channel())->Grant(context.get(), request, info);
  }

  static grpc::Status Revoke(Principal& owner, const std::string& model,
                             const std::string& grantee) {
    v1::RevokeModelRequest request;
    request.set_name(model);
    request.set_grantee_id(grantee);
    v1::ModelInfo info;
    auto context = owner.connection->NewContext();
    return v1::Models::NewStub(owner.connection->channel())->Revoke(context.get(), request, &info);
  }

  static grpc::Status SetLimits(Principal& owner, const v1::SetModelLimitsRequest& request,
                                v1::ModelInfo* info) {
    auto context = owner.connection->NewContext();
    return v1::Models::NewStub(owner.connection->channel())
        ->SetLimits(context.get(), request, info);
  }

  static std::vector<v1::AuditRecord> Audit(Principal& p) {
    v1::ListAuditResponse response;
    auto context = p.connection->NewContext();
    EXPECT_TRUE(v1::Audit::NewStub(p.connection->channel())
                    ->List(context.get(), v1::ListAuditRequest(), &response)
                    .ok());
    return {response.records().begin(), response.records().end()};
  }

  static bool HasRecord(const std::vector<v1::AuditRecord>& records, const std::string& event,
                        const std::string& subject_part) {
    for (const auto& r : records) {
      if (r.event() == event && r.subject().find(subject_part) != std::string::npos) return true;
    }
    return false;
  }

  static inline std::string dir_;
  static inline RuntimeServer* server_ = nullptr;
  static inline std::shared_ptr<const attest::Verifier>* verifier_ = nullptr;
  static inline Principal* alice_ = nullptr;
};

TEST_F(ModelAccessTest, OnlyTheOwnerAndGranteesPredictAndGranteesDoNothingElse) {
  Principal bob = NewPrincipal(v1::ROLE_OWNER);
  Principal carol = NewPrincipal(v1::ROLE_OWNER);
  Principal acme = NewPrincipal(v1::ROLE_PROVIDER);
  Principal& alice = *alice_;
  v1::PredictResponse r;

  // Before any grant: another owner and a provider are refused, whichever way they ask.
  EXPECT_EQ(Predict(bob, alice.id, "scores", 2, 0, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Predict(bob, "", "scores", 2, 0, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Predict(acme, alice.id, "scores", 2, 0, &r).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A model that does not exist and one not shared look alike to a prober.
  grpc::Status missing = Predict(bob, alice.id, "no-such-model", 1, 0, &r);
  grpc::Status unshared = Predict(bob, alice.id, "scores", 1, 0, &r);
  EXPECT_EQ(missing.error_code(), unshared.error_code());

  // Grants: never to a provider, never to oneself, never on a model one does not own.
  v1::ModelInfo info;
  EXPECT_EQ(Grant(alice, "scores", acme.id, 0, &info).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Grant(alice, "scores", alice.id, 0, &info).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Grant(bob, "scores", carol.id, 0, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Grant(acme, "scores", bob.id, 0, &info).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status granted = Grant(alice, "scores", bob.id, 5, &info);
  ASSERT_TRUE(granted.ok()) << granted.error_message();
  ASSERT_EQ(info.grants_size(), 1);
  EXPECT_EQ(info.grants(0).grantee_id(), bob.id);
  EXPECT_EQ(info.grants(0).budget(), 5u);

  // The grantee predicts through the owner's id, within its own budget.
  grpc::Status ok = Predict(bob, alice.id, "scores", 3, 2, &r);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  ASSERT_EQ(r.predictions_size(), 3);
  EXPECT_EQ(r.predictions(0).classes_size(), 2);
  EXPECT_EQ(r.queries_used(), 3u);
  EXPECT_EQ(r.query_budget(), 5u);
  grpc::Status over = Predict(bob, alice.id, "scores", 3, 2, &r);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
  ASSERT_TRUE(Predict(bob, alice.id, "scores", 2, 2, &r).ok()) << "the refusal charged nothing";
  // The grantee sees the model in its shared list, with no recipe, job or metrics.
  {
    v1::ListSharedModelsResponse shared;
    auto context = bob.connection->NewContext();
    ASSERT_TRUE(v1::Models::NewStub(bob.connection->channel())
                    ->ListShared(context.get(), v1::ListSharedModelsRequest(), &shared)
                    .ok());
    ASSERT_EQ(shared.models_size(), 1);
    EXPECT_EQ(shared.models(0).owner_id(), alice.id);
    EXPECT_EQ(shared.models(0).name(), "scores");
    EXPECT_EQ(shared.models(0).queries_used(), 5u);
    v1::ListSharedModelsResponse none;
    auto c2 = carol.connection->NewContext();
    ASSERT_TRUE(v1::Models::NewStub(carol.connection->channel())
                    ->ListShared(c2.get(), v1::ListSharedModelsRequest(), &none)
                    .ok());
    EXPECT_EQ(none.models_size(), 0);
  }
  // Another owner is still refused; the grant is bob's alone.
  EXPECT_EQ(Predict(carol, alice.id, "scores", 1, 0, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A grantee can do nothing else with the model: every owner call addresses the caller's own
  // models, so it cannot even name alice's.
  auto models = v1::Models::NewStub(bob.connection->channel());
  {
    v1::DeleteModelRequest request;
    request.set_name("scores");
    v1::DeleteModelResponse response;
    auto context = bob.connection->NewContext();
    EXPECT_EQ(models->Delete(context.get(), request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::EvaluateRequest request;
    request.set_model_name("scores");
    request.set_dataset_name("fmnist");
    v1::EvaluationReport report;
    auto context = bob.connection->NewContext();
    EXPECT_EQ(models->Evaluate(context.get(), request, &report).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::SetModelLimitsRequest request;
    request.set_name("scores");
    request.set_query_budget(1000);
    request.set_rate_per_minute(0);
    EXPECT_EQ(SetLimits(bob, request, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(Grant(bob, "scores", carol.id, 0, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Revoke(bob, "scores", bob.id).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    v1::ListModelsResponse list;
    auto context = bob.connection->NewContext();
    ASSERT_TRUE(models->List(context.get(), v1::ListModelsRequest(), &list).ok());
    EXPECT_EQ(list.models_size(), 0) << "a grantee's own list holds only its own models";
  }
  // Alice's model and grant survived every attempt.
  {
    v1::ListModelsResponse list;
    auto context = alice.connection->NewContext();
    ASSERT_TRUE(v1::Models::NewStub(alice.connection->channel())
                    ->List(context.get(), v1::ListModelsRequest(), &list)
                    .ok());
    const v1::ModelInfo* scores = nullptr;
    for (const v1::ModelInfo& m : list.models()) {
      if (m.name() == "scores") scores = &m;
    }
    ASSERT_NE(scores, nullptr);
    ASSERT_EQ(scores->grants_size(), 1);
    EXPECT_EQ(scores->grants(0).used(), 5u);
    EXPECT_GE(scores->queries_used(), 5u) << "grantee queries count on the model too";
  }

  // Revoked: refused at once.
  ASSERT_TRUE(Revoke(alice, "scores", bob.id).ok());
  EXPECT_EQ(Predict(bob, alice.id, "scores", 1, 0, &r).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Revoke(alice, "scores", bob.id).error_code(), grpc::StatusCode::NOT_FOUND);

  // Audit: grant, every grantee query and the revocation in alice's chain and in bob's.
  auto alice_audit = Audit(alice);
  EXPECT_TRUE(HasRecord(alice_audit, "model.grant", "scores to=" + bob.id + " budget=5"));
  EXPECT_TRUE(HasRecord(alice_audit, "model.predict", "scores samples=3 by=" + bob.id));
  EXPECT_TRUE(HasRecord(alice_audit, "model.predict", "scores samples=2 by=" + bob.id));
  EXPECT_TRUE(HasRecord(alice_audit, "model.revoke", "scores from=" + bob.id));
  auto bob_audit = Audit(bob);
  EXPECT_TRUE(HasRecord(bob_audit, "model.grant", "from=" + alice.id));
  EXPECT_TRUE(HasRecord(bob_audit, "model.predict", "samples=3"));
  EXPECT_TRUE(HasRecord(bob_audit, "model.revoke", "by=" + alice.id));
  EXPECT_FALSE(HasRecord(Audit(carol), "model.predict", ""));
}

TEST_F(ModelAccessTest, OwnerNarrowsOutputAndTheRateLimitRefusesABurst) {
  Principal& alice = *alice_;
  Principal dave = NewPrincipal(v1::ROLE_OWNER);
  v1::ModelInfo info;
  v1::SetModelLimitsRequest limits;
  limits.set_name("scores");
  limits.set_rate_per_minute(3);
  limits.mutable_output_limits()->set_max_top_k(1);
  limits.mutable_output_limits()->set_decimals(1);
  grpc::Status set = SetLimits(alice, limits, &info);
  ASSERT_TRUE(set.ok()) << set.error_message();
  EXPECT_EQ(info.rate_per_minute(), 3u);
  EXPECT_EQ(info.output_policy().max_top_k(), 1u);
  EXPECT_EQ(info.output_policy().decimals(), 1u);
  EXPECT_EQ(info.provider_output_policy().decimals(), 4u) << "the provider's stays as declared";

  // Narrowed: one class, one decimal, whatever the request asks.
  v1::PredictResponse r;
  g_clock_seconds += 3600;
  ASSERT_TRUE(Predict(alice, "", "scores", 3, 10, &r).ok());
  for (const v1::Prediction& p : r.predictions()) {
    ASSERT_EQ(p.classes_size(), 1);
    ASSERT_EQ(p.probabilities_size(), 1);
    EXPECT_FLOAT_EQ(p.probabilities(0), std::round(p.probabilities(0) * 10) / 10);
  }
  // The burst of 3 used the minute's 3 queries: the next is refused, saying when to retry.
  grpc::Status refused = Predict(alice, "", "scores", 1, 0, &r);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("retry in 20 s"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(Predict(alice, "", "scores", 4, 0, &r).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "more than a minute's worth can never pass";
  // A grantee has its own bucket.
  ASSERT_TRUE(Grant(alice, "scores", dave.id, 0, &info).ok());
  ASSERT_TRUE(Predict(dave, alice.id, "scores", 3, 0, &r).ok());
  EXPECT_EQ(Predict(dave, alice.id, "scores", 1, 0, &r).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // 20 s later one query passes again.
  g_clock_seconds += 20;
  ASSERT_TRUE(Predict(alice, "", "scores", 1, 0, &r).ok());
  EXPECT_EQ(Predict(alice, "", "scores", 1, 0, &r).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Limits off again (for the other tests) and the narrowing removed.
  v1::SetModelLimitsRequest reset;
  reset.set_name("scores");
  reset.set_rate_per_minute(0);
  reset.mutable_output_limits();
  ASSERT_TRUE(SetLimits(alice, reset, &info).ok());
  EXPECT_EQ(info.output_policy().decimals(), 4u);
  ASSERT_TRUE(Revoke(alice, "scores", dave.id).ok());
  // The owner cannot set a budget beyond chirond's.
  v1::SetModelLimitsRequest huge;
  huge.set_name("scores");
  huge.set_query_budget(1001);
  EXPECT_EQ(SetLimits(alice, huge, &info).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ModelAccessTest, LabelOnlyRecipeNeverReturnsScores) {
  Principal acme = NewPrincipal(v1::ROLE_PROVIDER);
  Principal& alice = *alice_;
  std::ifstream in(CHIRON_LABEL_ONLY_RECIPE, std::ios::binary);
  std::string code((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(code.empty());
  v1::RegisterRecipeRequest request;
  request.set_name("acme-labels");
  request.set_version("1");
  request.set_shared_object(code);
  v1::RecipeCard card;
  {
    auto context = acme.connection->NewContext();
    grpc::Status status = v1::Recipes::NewStub(acme.connection->channel())
                              ->Register(context.get(), request, &card);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  TrainAndWait(*alice.connection, card.recipe_id(), "labels");

  // The owner tries to widen the provider's policy: it stays label only.
  v1::SetModelLimitsRequest widen;
  widen.set_name("labels");
  widen.mutable_output_limits()->set_label_only(false);
  widen.mutable_output_limits()->set_max_top_k(10);
  widen.mutable_output_limits()->set_decimals(6);
  v1::ModelInfo info;
  ASSERT_TRUE(SetLimits(alice, widen, &info).ok());
  EXPECT_TRUE(info.output_policy().label_only());
  EXPECT_TRUE(info.provider_output_policy().label_only());

  for (uint32_t top_k : {0u, 1u, 3u, 10u, 1000u}) {
    v1::PredictResponse r;
    grpc::Status status = Predict(alice, "", "labels", 8, top_k, &r);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(r.label_only());
    ASSERT_EQ(r.predictions_size(), 8);
    for (const v1::Prediction& p : r.predictions()) {
      EXPECT_EQ(p.classes_size(), 1) << "top_k " << top_k;
      EXPECT_EQ(p.probabilities_size(), 0) << "top_k " << top_k;
      EXPECT_LT(p.classes(0), 10u);
    }
  }
  // The scores model still returns scores: the policy is per model, from its recipe.
  v1::PredictResponse scores;
  ASSERT_TRUE(Predict(alice, "", "scores", 2, 3, &scores).ok());
  EXPECT_FALSE(scores.label_only());
  EXPECT_EQ(scores.predictions(0).probabilities_size(), 3);
}

}  // namespace
}  // namespace chiron::runtime
