// The owner's data path in process: a real RuntimeServer (sim platform, real sealed store) and
// real clients over loopback mutual TLS. Registration and roles, uploads with resume, listing,
// deletion and audit, and every cross-principal access and hostile chunk refused with nothing
// stored lost.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/datasets.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "client/connection.h"
#include "client/importers/encrypt.h"
#include "client/upload.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/audit/chain.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/random.h"

namespace chiron::runtime {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "chiron-data-path-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `count` seeded 6x5 uint8 samples in 4 classes. Fails with InvalidArgument after `fail_after`
// samples if set (an importer error half-way through an upload).
class GeneratedSource final : public importers::SampleSource {
 public:
  GeneratedSource(uint64_t count, uint32_t seed, uint64_t fail_after = ~uint64_t{0})
      : rng_(seed), fail_after_(fail_after) {
    schema_.shape = {6, 5};
    schema_.class_names = {"a", "b", "c", "d"};
    schema_.sample_count = count;
  }
  const dataset::DatasetSchema& schema() const override { return schema_; }
  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    if (produced_ == fail_after_) return InvalidArgumentError("generated input broke");
    if (produced_ == schema_.sample_count) return false;
    for (uint8_t& b : sample) b = static_cast<uint8_t>(rng_());
    label = static_cast<uint32_t>(rng_() % 4);
    ++produced_;
    return true;
  }

 private:
  dataset::DatasetSchema schema_;
  std::mt19937 rng_;
  uint64_t fail_after_;
  uint64_t produced_ = 0;
};

// A container built in memory, for raw protocol tests.
struct Container {
  Bytes key;
  Bytes header;
  std::vector<Bytes> chunks;
};

Container MakeContainer(uint64_t count, uint32_t seed, uint64_t chunk_size = 310) {
  Container c;
  c.key = *crypto::RandomBytes(dataset::kDatasetKeySize);
  GeneratedSource source(count, seed);
  dataset::DatasetWriterOptions options;
  options.target_chunk_size = chunk_size;
  auto stats = importers::EncryptSource(
      source, c.key, *dataset::NewDatasetId(),
      [&c](const dataset::ContainerPiece& piece) {
        if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
          c.header.assign(piece.bytes.begin(), piece.bytes.end());
        } else {
          c.chunks.emplace_back(piece.bytes.begin(), piece.bytes.end());
        }
        return Status::Ok();
      },
      options);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  return c;
}

class DataPathTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  void StartServer(store::StoreLimits limits = {}) {
    server_.reset();
    std::ofstream(dir_.path() + "/worker") << "worker v1";
    std::ofstream(dir_.path() + "/policy.json") << "{}";
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.platform.name = "sim";
    options.platform.state_dir = dir_.path() + "/state";
    options.platform.measured_components = {{"chirond", "/proc/self/exe"},
                                            {"chiron-worker", dir_.path() + "/worker"},
                                            {"sandbox-policy", dir_.path() + "/policy.json"}};
    options.store_limits = limits;
    ASSERT_TRUE(FileSystem::Default()->CreateDirectories(options.platform.state_dir, 0700).ok());
    auto server = RuntimeServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_NE(server_->store(), nullptr);
    auto policy = SimReferencePolicy(server_->platform());
    ASSERT_TRUE(policy.ok());
    auto verifier = attest::Verifier::Create(*policy);
    ASSERT_TRUE(verifier.ok());
    verifier_ = std::make_shared<const attest::Verifier>(std::move(*verifier));
  }

  // A client with a fresh key (a new principal).
  std::unique_ptr<client::Connection> NewClient() {
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    EXPECT_TRUE(key.ok());
    auto identity = ratls::CreateClientIdentity(*key, "test-principal");
    EXPECT_TRUE(identity.ok());
    client::ConnectOptions options;
    options.server = "127.0.0.1:" + std::to_string(server_->port());
    options.verifier = verifier_;
    options.identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    return std::move(*connection);
  }

  std::unique_ptr<client::Connection> NewPrincipal(v1::Role role, v1::Principal* out = nullptr) {
    auto connection = NewClient();
    v1::RegisterPrincipalRequest request;
    request.set_role(role);
    request.set_display_name(role == v1::ROLE_OWNER ? "owner" : "provider");
    v1::Principal principal;
    auto context = connection->NewContext();
    grpc::Status status = v1::Principals::NewStub(connection->channel())
                              ->Register(context.get(), request, &principal);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (out) *out = principal;
    return connection;
  }

  static grpc::Status Begin(client::Connection& c, const std::string& name, ByteSpan header,
                            ByteSpan key, v1::BeginUploadResponse* response = nullptr) {
    v1::BeginUploadRequest request;
    request.set_name(name);
    request.set_container_header(ToString(header));
    request.set_data_key(ToString(key));
    v1::BeginUploadResponse ignored;
    auto context = c.NewContext();
    return v1::Datasets::NewStub(c.channel())
        ->BeginUpload(context.get(), request, response ? response : &ignored);
  }

  struct Sent {
    grpc::Status status;
    std::vector<uint64_t> acks;
  };
  // One Upload stream carrying `chunks` (index, last, bytes) in order.
  static Sent SendChunks(client::Connection& c, const std::string& dataset_id,
                         const std::vector<std::tuple<uint64_t, bool, Bytes>>& chunks) {
    grpc::ClientContext context;
    auto stream = v1::Datasets::NewStub(c.channel())->Upload(&context);
    Sent sent;
    for (const auto& [index, last, bytes] : chunks) {
      v1::UploadChunk chunk;
      chunk.set_dataset_id(dataset_id);
      chunk.set_index(index);
      chunk.set_last(last);
      chunk.set_sealed(ToString(bytes));
      if (!stream->Write(chunk)) break;
      v1::UploadAck ack;
      if (!stream->Read(&ack)) break;
      sent.acks.push_back(ack.acknowledged_through());
    }
    stream->WritesDone();
    sent.status = stream->Finish();
    return sent;
  }

  static std::vector<v1::DatasetInfo> List(client::Connection& c, grpc::Status* status = nullptr) {
    v1::ListDatasetsResponse response;
    auto context = c.NewContext();
    grpc::Status s = v1::Datasets::NewStub(c.channel())
                         ->List(context.get(), v1::ListDatasetsRequest(), &response);
    if (status) *status = s;
    return {response.datasets().begin(), response.datasets().end()};
  }

  static grpc::Status Delete(client::Connection& c, const std::string& name) {
    v1::DeleteDatasetRequest request;
    request.set_name(name);
    v1::DeleteDatasetResponse response;
    auto context = c.NewContext();
    return v1::Datasets::NewStub(c.channel())->Delete(context.get(), request, &response);
  }

  static std::vector<v1::AuditRecord> Audit(client::Connection& c, grpc::Status* status = nullptr) {
    v1::ListAuditResponse response;
    auto context = c.NewContext();
    grpc::Status s =
        v1::Audit::NewStub(c.channel())->List(context.get(), v1::ListAuditRequest(), &response);
    if (status) *status = s;
    return {response.records().begin(), response.records().end()};
  }

  // Uploads a generated dataset through the client library.
  Result<client::UploadOutcome> UploadGenerated(client::Connection& c, const std::string& name,
                                                uint64_t count, uint32_t seed,
                                                const std::string& state_path = "",
                                                uint64_t fail_after = ~uint64_t{0}) {
    client::UploadRequest request;
    request.name = name;
    request.open_source = [count, seed,
                           fail_after]() -> Result<std::unique_ptr<importers::SampleSource>> {
      return std::unique_ptr<importers::SampleSource>(
          std::make_unique<GeneratedSource>(count, seed, fail_after));
    };
    request.source_fingerprint = "seed-" + std::to_string(seed);
    request.state_path = state_path;
    request.target_chunk_size = 310;  // 10 records of 31 bytes per chunk
    return client::UploadDataset(c, request);
  }

  // Reads every stored chunk of the dataset back from the store and checks the records against
  // the generated samples: nothing was lost or corrupted.
  void ExpectStoredDataset(const std::string& dataset_id, uint64_t count, uint32_t seed) {
    store::Store& store = *server_->store();
    auto record = store.GetDataset(dataset_id);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    ASSERT_TRUE(record->complete);
    auto key = store.GetDataKey(dataset_id);
    ASSERT_TRUE(key.ok());
    auto reader = dataset::DatasetReader::Open(key->span(), record->header.encoded);
    ASSERT_TRUE(reader.ok());
    GeneratedSource expected(count, seed);
    Bytes sample(expected.schema().sample_size());
    uint64_t seen = 0;
    for (uint64_t i = 0; i < record->chunk_count; ++i) {
      auto sealed = store.ReadChunk(dataset_id, i);
      ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
      auto plain = reader->OpenChunk(i, *sealed);
      ASSERT_TRUE(plain.ok()) << plain.status().ToString();
      for (uint64_t r = 0; r < record->header.samples_in_chunk(i); ++r) {
        uint32_t label = 0;
        ASSERT_TRUE(*expected.Next(sample, label));
        dataset::Record got = reader->RecordAt(plain->span(), r);
        EXPECT_EQ(got.label, label);
        EXPECT_TRUE(std::equal(got.sample.begin(), got.sample.end(), sample.begin()));
        ++seen;
      }
    }
    EXPECT_EQ(seen, count);
  }

  TempDir dir_;
  std::unique_ptr<RuntimeServer> server_;
  std::shared_ptr<const attest::Verifier> verifier_;
};

void ExpectStatus(const grpc::Status& status, grpc::StatusCode code, std::string_view needle) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_NE(status.error_message().find(needle), std::string::npos) << status.error_message();
}

TEST_F(DataPathTest, RegisterIsIdempotentAndRoleIsFixed) {
  v1::Principal first;
  auto owner = NewPrincipal(v1::ROLE_OWNER, &first);
  EXPECT_EQ(first.id().size(), 64u);
  EXPECT_EQ(first.role(), v1::ROLE_OWNER);
  auto stub = v1::Principals::NewStub(owner->channel());
  v1::RegisterPrincipalRequest again;
  again.set_role(v1::ROLE_OWNER);
  again.set_display_name("other name");
  v1::Principal second;
  auto context = owner->NewContext();
  grpc::Status repeated = stub->Register(context.get(), again, &second);
  ASSERT_TRUE(repeated.ok()) << repeated.error_message();
  EXPECT_EQ(second.id(), first.id());
  EXPECT_EQ(second.display_name(), "owner") << "the first display name is kept";

  again.set_role(v1::ROLE_PROVIDER);
  context = owner->NewContext();
  EXPECT_EQ(stub->Register(context.get(), again, &second).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  again.set_role(v1::ROLE_UNSPECIFIED);
  context = owner->NewContext();
  ExpectStatus(stub->Register(context.get(), again, &second), grpc::StatusCode::INVALID_ARGUMENT,
               "role");

  v1::Principal me;
  context = owner->NewContext();
  ASSERT_TRUE(stub->WhoAmI(context.get(), v1::WhoAmIRequest(), &me).ok());
  EXPECT_EQ(me.id(), first.id());
  EXPECT_EQ(me.role(), v1::ROLE_OWNER);
}

TEST_F(DataPathTest, UnregisteredCallerReachesOnlyRegisterWhoAmIAndAttestation) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(30, 1);
  v1::BeginUploadResponse begun;
  ASSERT_TRUE(Begin(*owner, "d", c.header, c.key, &begun).ok());

  auto stranger = NewClient();
  EXPECT_TRUE(stranger->FreshAttestation().ok());
  v1::Principal me;
  auto context = stranger->NewContext();
  ExpectStatus(
      v1::Principals::NewStub(stranger->channel())->WhoAmI(context.get(), v1::WhoAmIRequest(), &me),
      grpc::StatusCode::NOT_FOUND, "chiron init");
  ExpectStatus(Begin(*stranger, "x", c.header, c.key), grpc::StatusCode::PERMISSION_DENIED,
               "not registered");
  grpc::Status status;
  List(*stranger, &status);
  ExpectStatus(status, grpc::StatusCode::PERMISSION_DENIED, "owner role");
  ExpectStatus(Delete(*stranger, "d"), grpc::StatusCode::PERMISSION_DENIED, "owner role");
  ExpectStatus(SendChunks(*stranger, begun.dataset_id(), {{0, false, c.chunks[0]}}).status,
               grpc::StatusCode::PERMISSION_DENIED, "owner role");
  Audit(*stranger, &status);
  ExpectStatus(status, grpc::StatusCode::PERMISSION_DENIED, "registered principal");
  EXPECT_EQ(server_->store()->GetDataset(begun.dataset_id())->acknowledged_through, 0u);
}

TEST_F(DataPathTest, ProviderCannotTouchDatasets) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  auto upload = UploadGenerated(*owner, "owners-data", 45, 2);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();

  auto provider = NewPrincipal(v1::ROLE_PROVIDER);
  Container c = MakeContainer(30, 3);
  ExpectStatus(Begin(*provider, "mine", c.header, c.key), grpc::StatusCode::PERMISSION_DENIED,
               "registered as provider");
  grpc::Status status;
  EXPECT_TRUE(List(*provider, &status).empty());
  ExpectStatus(status, grpc::StatusCode::PERMISSION_DENIED, "the owner role is required");
  ExpectStatus(Delete(*provider, "owners-data"), grpc::StatusCode::PERMISSION_DENIED, "owner role");
  ExpectStatus(SendChunks(*provider, upload->dataset_id, {{0, false, c.chunks[0]}}).status,
               grpc::StatusCode::PERMISSION_DENIED, "owner role");
  // The provider's own audit chain holds only its registration.
  auto records = Audit(*provider, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].event(), "principal.register");
  ExpectStoredDataset(upload->dataset_id, 45, 2);
}

TEST_F(DataPathTest, OwnerCannotReachAnotherOwnersDatasetsOrAudit) {
  v1::Principal alice_principal;
  auto alice = NewPrincipal(v1::ROLE_OWNER, &alice_principal);
  auto bob = NewPrincipal(v1::ROLE_OWNER);
  auto uploaded = UploadGenerated(*alice, "shared-name", 95, 4);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status().ToString();
  // Alice's second dataset is left partial (3 of 4 chunks).
  Container partial = MakeContainer(40, 5);
  v1::BeginUploadResponse begun;
  ASSERT_TRUE(Begin(*alice, "partial", partial.header, partial.key, &begun).ok());
  ASSERT_TRUE(SendChunks(*alice, begun.dataset_id(),
                         {{0, false, partial.chunks[0]},
                          {1, false, partial.chunks[1]},
                          {2, false, partial.chunks[2]}})
                  .status.ok());

  // Bob lists only his own (none).
  grpc::Status status;
  EXPECT_TRUE(List(*bob, &status).empty());
  EXPECT_TRUE(status.ok());
  // Bob cannot delete Alice's datasets by name: to him they do not exist.
  ExpectStatus(Delete(*bob, "shared-name"), grpc::StatusCode::NOT_FOUND, "no dataset named");
  // Bob cannot upload into Alice's partial dataset by id, neither the next chunk nor a
  // replacement: answered exactly like an unknown id.
  auto into = SendChunks(*bob, begun.dataset_id(), {{3, true, partial.chunks[3]}});
  ExpectStatus(into.status, grpc::StatusCode::NOT_FOUND, "no dataset with id");
  EXPECT_TRUE(into.acks.empty());
  // Bob cannot hijack the upload by replaying Alice's header and key under his own name.
  ExpectStatus(Begin(*bob, "partial", partial.header, partial.key),
               grpc::StatusCode::ALREADY_EXISTS, "dataset id");
  // Bob's audit chain holds only his own records.
  auto bob_records = Audit(*bob, &status);
  ASSERT_TRUE(status.ok());
  for (const auto& record : bob_records) {
    EXPECT_NE(record.principal_id(), alice_principal.id());
    EXPECT_EQ(record.subject().find("shared-name"), std::string::npos);
  }

  // Alice still has everything, and finishes her partial upload.
  auto alice_list = List(*alice, &status);
  ASSERT_EQ(alice_list.size(), 2u);
  EXPECT_EQ(server_->store()->GetDataset(begun.dataset_id())->acknowledged_through, 3u);
  auto finished = SendChunks(*alice, begun.dataset_id(), {{3, true, partial.chunks[3]}});
  ASSERT_TRUE(finished.status.ok()) << finished.status.error_message();
  EXPECT_EQ(finished.acks, std::vector<uint64_t>{4});
  ExpectStoredDataset(uploaded->dataset_id, 95, 4);
}

TEST_F(DataPathTest, UploadListDeleteReuploadAndAuditChainVerifies) {
  v1::Principal principal;
  auto owner = NewPrincipal(v1::ROLE_OWNER, &principal);
  auto first = UploadGenerated(*owner, "gen", 123, 6);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->chunks, 13u);
  EXPECT_EQ(first->samples, 123u);
  ExpectStoredDataset(first->dataset_id, 123, 6);

  auto list = List(*owner);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name(), "gen");
  EXPECT_EQ(list[0].dataset_id(), first->dataset_id);
  EXPECT_EQ(list[0].sample_count(), 123u);
  EXPECT_EQ(list[0].class_count(), 4u);
  EXPECT_EQ(std::vector<uint32_t>(list[0].sample_shape().begin(), list[0].sample_shape().end()),
            (std::vector<uint32_t>{6, 5}));
  EXPECT_TRUE(list[0].complete());

  // The same name again is refused while it exists.
  EXPECT_EQ(UploadGenerated(*owner, "gen", 123, 6).status().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(Delete(*owner, "gen").ok());
  EXPECT_TRUE(List(*owner).empty());
  EXPECT_EQ(server_->store()->GetDataset(first->dataset_id).status().code(), StatusCode::kNotFound);
  ExpectStatus(Delete(*owner, "gen"), grpc::StatusCode::NOT_FOUND, "no dataset named");
  auto again = UploadGenerated(*owner, "gen", 123, 6);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(again->dataset_id, first->dataset_id);
  ExpectStoredDataset(again->dataset_id, 123, 6);

  // The owner's records form one verifiable chain covering every step.
  auto records = Audit(*owner);
  std::vector<audit::AuditRecord> chain;
  std::vector<std::string> events;
  for (const auto& r : records) {
    chain.push_back({r.sequence(), r.time_unix(), r.principal_id(), r.event(), r.subject(),
                     ToBytes(r.previous_hash()), ToBytes(r.hash())});
    events.push_back(r.event());
  }
  EXPECT_EQ(events,
            (std::vector<std::string>{"principal.register", "dataset.create", "dataset.upload",
                                      "dataset.delete", "dataset.create", "dataset.upload"}));
  EXPECT_TRUE(audit::VerifyAuditChain(chain, std::nullopt, principal.id()).ok());
  // A server that drops a record is caught.
  auto dropped = chain;
  dropped.erase(dropped.begin() + 3);
  EXPECT_EQ(audit::VerifyAuditChain(dropped, std::nullopt, principal.id()).code(),
            StatusCode::kDataLoss);
}

TEST_F(DataPathTest, InterruptedUploadResumesFromTheLastAcknowledgedChunk) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  std::string state = dir_.path() + "/upload-state.json";
  // The input breaks after 57 samples: chunks 0..4 (10 records each) are stored.
  auto broken = UploadGenerated(*owner, "resumable", 200, 7, state, 57);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("generated input broke"), std::string::npos);
  ASSERT_TRUE(fs::exists(state)) << "the resume state survives the failure";
  auto list = List(*owner);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_FALSE(list[0].complete());
  EXPECT_EQ(server_->store()->GetDataset(list[0].dataset_id())->acknowledged_through, 5u);

  // Another input under the same name cannot resume (its fingerprint differs).
  auto other = UploadGenerated(*owner, "resumable", 200, 8, state);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("changed"), std::string::npos);

  auto resumed = UploadGenerated(*owner, "resumable", 200, 7, state);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_TRUE(resumed->resumed);
  EXPECT_EQ(resumed->resumed_from, 5u);
  EXPECT_EQ(resumed->dataset_id, list[0].dataset_id());
  EXPECT_FALSE(fs::exists(state)) << "the key leaves the client once the upload completes";
  ExpectStoredDataset(resumed->dataset_id, 200, 7);
}

TEST_F(DataPathTest, HostileChunksAreRefusedAndNothingStoredIsLost) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(60, 9);  // 6 chunks of 10 records
  Container other = MakeContainer(60, 10);
  ASSERT_EQ(c.chunks.size(), 6u);

  // Wrong data key: refused before anything is stored.
  Bytes wrong_key = c.key;
  wrong_key[0] ^= 1;
  ExpectStatus(Begin(*owner, "d", c.header, wrong_key), grpc::StatusCode::DATA_LOSS, "wrong key");
  ExpectStatus(Begin(*owner, "d", c.header, Bytes(16, 1)), grpc::StatusCode::INVALID_ARGUMENT,
               "32 bytes");
  Bytes altered_header = c.header;
  altered_header[altered_header.size() - 36] ^= 1;  // inside the nonce prefix, under the MAC
  EXPECT_EQ(Begin(*owner, "d", altered_header, c.key).error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(List(*owner).empty());

  v1::BeginUploadResponse begun;
  ASSERT_TRUE(Begin(*owner, "d", c.header, c.key, &begun).ok());
  const std::string id = begun.dataset_id();
  ASSERT_TRUE(
      SendChunks(*owner, id, {{0, false, c.chunks[0]}, {1, false, c.chunks[1]}}).status.ok());

  Bytes tampered = c.chunks[2];
  tampered[5] ^= 0x80;
  ExpectStatus(SendChunks(*owner, id, {{2, false, tampered}}).status, grpc::StatusCode::DATA_LOSS,
               "chunk 2");
  // Reordered: chunk 3 before chunk 2; and chunk 3's bytes presented as chunk 2.
  ExpectStatus(SendChunks(*owner, id, {{3, false, c.chunks[3]}}).status,
               grpc::StatusCode::FAILED_PRECONDITION, "expects chunk 2");
  EXPECT_EQ(SendChunks(*owner, id, {{2, false, c.chunks[3]}}).status.error_code(),
            grpc::StatusCode::DATA_LOSS);
  // Spliced: the same index from another dataset.
  EXPECT_EQ(SendChunks(*owner, id, {{2, false, other.chunks[2]}}).status.error_code(),
            grpc::StatusCode::DATA_LOSS);
  // Truncated and mis-flagged chunks.
  Bytes truncated(c.chunks[2].begin(), c.chunks[2].end() - 1);
  EXPECT_FALSE(SendChunks(*owner, id, {{2, false, truncated}}).status.ok());
  ExpectStatus(SendChunks(*owner, id, {{2, true, c.chunks[2]}}).status,
               grpc::StatusCode::INVALID_ARGUMENT, "marked last");
  // An acknowledged chunk cannot be replaced.
  ExpectStatus(SendChunks(*owner, id, {{1, false, c.chunks[2]}}).status,
               grpc::StatusCode::ALREADY_EXISTS, "different contents");
  // One stream cannot switch datasets half-way.
  v1::BeginUploadResponse other_begun;
  ASSERT_TRUE(Begin(*owner, "other", other.header, other.key, &other_begun).ok());
  {
    grpc::ClientContext context;
    auto stream = v1::Datasets::NewStub(owner->channel())->Upload(&context);
    v1::UploadChunk chunk;
    chunk.set_dataset_id(id);
    chunk.set_index(2);
    chunk.set_sealed(ToString(c.chunks[2]));
    ASSERT_TRUE(stream->Write(chunk));
    v1::UploadAck ack;
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.acknowledged_through(), 3u);
    chunk.set_dataset_id(other_begun.dataset_id());
    chunk.set_index(0);
    chunk.set_sealed(ToString(other.chunks[0]));
    stream->Write(chunk);
    stream->WritesDone();
    ExpectStatus(stream->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "one stream per dataset");
  }
  EXPECT_EQ(server_->store()->GetDataset(other_begun.dataset_id())->acknowledged_through, 0u);

  // Nothing acknowledged was lost; resuming (BeginUpload again) continues and completes.
  v1::BeginUploadResponse resumed;
  ASSERT_TRUE(Begin(*owner, "d", c.header, c.key, &resumed).ok());
  EXPECT_EQ(resumed.dataset_id(), id);
  EXPECT_EQ(resumed.next_chunk_index(), 3u);
  auto rest = SendChunks(
      *owner, id, {{3, false, c.chunks[3]}, {4, false, c.chunks[4]}, {5, true, c.chunks[5]}});
  ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
  EXPECT_EQ(rest.acks, (std::vector<uint64_t>{4, 5, 6}));
  ExpectStoredDataset(id, 60, 9);
}

TEST_F(DataPathTest, QuotaRefusesAnUploadUpFront) {
  store::StoreLimits limits;
  limits.max_bytes_per_owner = 4000;
  StartServer(limits);
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  ASSERT_TRUE(UploadGenerated(*owner, "small", 60, 11).ok());  // ~2 kB
  auto big = UploadGenerated(*owner, "big", 200, 12);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  auto list = List(*owner);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name(), "small");
}

}  // namespace
}  // namespace chiron::runtime
