// The owner's data path in process: a real RuntimeServer (sim platform, real sealed store) and
// real clients over loopback mutual TLS. Registration and roles, uploads with resume, listing,
// deletion and audit, and every cross-principal access and hostile chunk refused with nothing
// stored lost.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include "chiron/v1/audit.grpc.pb.h"
#include "chiron/v1/datasets.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "client/connection.h"
#include "client/data_plane_client.h"
#include "client/importers/encrypt.h"
#include "client/upload.h"
#include "runtime/service/reference_policy.h"
#include "runtime/service/server.h"
#include "shared/audit/chain.h"
#include "shared/base/net.h"
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

  void StartServer(store::StoreLimits limits = {}, DataPlaneLimits data_plane_limits = {}) {
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
    options.data_plane_listen_address = "127.0.0.1:0";
    options.data_plane_limits = data_plane_limits;
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

  // Uploads small datasets (names `prefix`0, 1, ...), one every 200 ms for up to 10 s, until one
  // goes through the data plane rather than the stream fallback. Every upload must succeed.
  bool DataPlaneServesAgain(client::Connection& owner, const std::string& prefix, uint32_t seed) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto upload = UploadGenerated(owner, prefix + std::to_string(attempt), 20, seed);
      if (!upload.ok()) {
        ADD_FAILURE() << upload.status().ToString();
        return false;
      }
      if (upload->via_data_plane) return true;
    }
    return false;
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

// ---- The data plane (docs/formats/data-plane.md): the TLS-free port for chunks, attacked. ----

TEST_F(DataPathTest, UploadsTakeTheDataPlaneOrTheStreamWithTheSameResult) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  auto via_plane = UploadGenerated(*owner, "plane", 95, 21);
  ASSERT_TRUE(via_plane.ok()) << via_plane.status().ToString();
  EXPECT_TRUE(via_plane->via_data_plane);
  EXPECT_EQ(via_plane->data_plane_fallback, "");
  ExpectStoredDataset(via_plane->dataset_id, 95, 21);

  client::UploadRequest request;
  request.name = "stream";
  request.open_source = []() -> Result<std::unique_ptr<importers::SampleSource>> {
    return std::unique_ptr<importers::SampleSource>(std::make_unique<GeneratedSource>(95, 22));
  };
  request.source_fingerprint = "seed-22";
  request.target_chunk_size = 310;
  request.use_data_plane = false;
  auto via_stream = client::UploadDataset(*owner, request);
  ASSERT_TRUE(via_stream.ok()) << via_stream.status().ToString();
  EXPECT_FALSE(via_stream->via_data_plane);
  ExpectStoredDataset(via_stream->dataset_id, 95, 22);
}

TEST_F(DataPathTest, AnUnreachableDataPlaneFallsBackToTheStream) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  server_->StopDataPlaneForTesting();
  auto uploaded = UploadGenerated(*owner, "fallback", 95, 27);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status().ToString();
  EXPECT_FALSE(uploaded->via_data_plane);
  EXPECT_NE(uploaded->data_plane_fallback.find("cannot connect"), std::string::npos)
      << uploaded->data_plane_fallback;
  ExpectStoredDataset(uploaded->dataset_id, 95, 27);
}

// A host (or anyone on the network) holding every data-plane slot with silent connections cannot
// stop uploads: they take the gRPC stream meanwhile, and the plane serves again once the slots
// are free.
TEST_F(DataPathTest, SilentConnectionsHoldingEverySlotDoNotStopUploads) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  std::vector<int> squatters;
  for (size_t i = 0; i < DataPlaneServer::kMaxConnections; ++i) {
    auto fd = ConnectTcp("127.0.0.1", server_->data_plane_port(), std::chrono::seconds(5));
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    squatters.push_back(*fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all of them accepted
  auto blocked = UploadGenerated(*owner, "squatted", 95, 28);
  ASSERT_TRUE(blocked.ok()) << blocked.status().ToString();
  EXPECT_FALSE(blocked->via_data_plane);
  EXPECT_NE(blocked->data_plane_fallback, "");
  ExpectStoredDataset(blocked->dataset_id, 95, 28);

  for (int fd : squatters) close(fd);
  // The runtime notices the closed connections and reaps them (its accept loop wakes every s).
  EXPECT_TRUE(DataPlaneServesAgain(*owner, "free-", 29))
      << "the data plane never served again after the squatters left";
}

// A raw hello with `ticket_id`; returns the first reply frame (or its error).
Result<dataplane::ServerFrame> RawHello(int port, const dataplane::TicketId& ticket_id) {
  CHIRON_ASSIGN_OR_RETURN(int fd, ConnectTcp("127.0.0.1", port, std::chrono::seconds(5)));
  SetSocketTimeouts(fd, std::chrono::seconds(10));
  dataplane::Hello hello;
  hello.ticket_id = ticket_id;
  Status sent = WriteAll(fd, dataplane::EncodeHello(hello));
  Bytes reply(3);
  Status read = sent.ok() ? ReadExact(fd, reply) : sent;
  if (read.ok()) {
    size_t length = size_t{reply[1]} | (size_t{reply[2]} << 8);
    reply.resize(3 + length);
    read = ReadExact(fd, MutableByteSpan(reply).subspan(3));
  }
  close(fd);
  CHIRON_RETURN_IF_ERROR(read);
  return dataplane::ParseServerFrame(reply, {}, {}, 0);
}

TEST_F(DataPathTest, DataPlaneAdmitsOnlyAFreshTicketOnce) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(30, 23);
  v1::BeginUploadResponse begun;
  ASSERT_TRUE(Begin(*owner, "t", c.header, c.key, &begun).ok());
  ASSERT_NE(begun.data_plane_port(), 0u);
  ASSERT_EQ(begun.upload_ticket().size(), dataplane::kTicketSize);
  const int port = static_cast<int>(begun.data_plane_port());

  // A guessed ticket id is refused (unauthenticated: the runtime has no key to answer with).
  dataplane::TicketId guessed{};
  guessed[0] = 1;
  auto refused = RawHello(port, guessed);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->type, dataplane::ServerFrameType::kRejected);
  EXPECT_NE(refused->message.find("unknown, used or expired upload ticket"), std::string::npos);

  // The real ticket works once; presented again (a replayed hello), it is refused.
  ByteSpan ticket = AsBytes(begun.upload_ticket());
  {
    auto first = client::DataPlaneUpload::Open("127.0.0.1", port, ticket, std::chrono::seconds(5));
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ((*first)->resume_point(), 0u);
  }
  auto again = client::DataPlaneUpload::Open("127.0.0.1", port, ticket, std::chrono::seconds(5));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(again.status().message().find("refused the upload ticket"), std::string::npos);

  // Not a Chiron client at all.
  auto fd = ConnectTcp("127.0.0.1", port, std::chrono::seconds(5));
  ASSERT_TRUE(fd.ok());
  SetSocketTimeouts(*fd, std::chrono::seconds(10));
  std::string garbage(dataplane::kHelloSize, 'G');
  ASSERT_TRUE(WriteAll(*fd, AsBytes(garbage)).ok());
  Bytes reply(3);
  ASSERT_TRUE(ReadExact(*fd, reply).ok());
  EXPECT_EQ(reply[0], static_cast<uint8_t>(dataplane::ServerFrameType::kRejected));
  close(*fd);
  EXPECT_EQ(server_->store()->GetDataset(begun.dataset_id())->acknowledged_through, 0u);
}

TEST_F(DataPathTest, AnUnusedTicketExpires) {
  DataPlaneLimits limits;
  limits.ticket_lifetime = std::chrono::milliseconds(1000);
  StartServer({}, limits);
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(30, 31);
  v1::BeginUploadResponse stale;
  ASSERT_TRUE(Begin(*owner, "late", c.header, c.key, &stale).ok());
  const int port = static_cast<int>(stale.data_plane_port());
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // past the lifetime
  auto late =
      client::DataPlaneUpload::Open("127.0.0.1", port, AsBytes(stale.upload_ticket()),
                                    std::chrono::seconds(5));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(late.status().message().find("refused the upload ticket"), std::string::npos)
      << late.status().ToString();

  // BeginUpload again (as a resumed upload does) hands out a fresh ticket, which is admitted.
  v1::BeginUploadResponse fresh;
  ASSERT_TRUE(Begin(*owner, "late", c.header, c.key, &fresh).ok());
  EXPECT_NE(fresh.upload_ticket(), stale.upload_ticket());
  auto on_time = client::DataPlaneUpload::Open("127.0.0.1", port, AsBytes(fresh.upload_ticket()),
                                               std::chrono::seconds(5));
  ASSERT_TRUE(on_time.ok()) << on_time.status().ToString();
}

// Whether the runtime has closed `fd` (end of stream or reset) without sending anything; fails
// the test if it sent bytes.
bool ClosedWithoutReply(int fd) {
  char byte = 0;
  ssize_t got = recv(fd, &byte, 1, MSG_DONTWAIT);
  EXPECT_LE(got, 0) << "the runtime answered a hello it should have given up on";
  return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

TEST_F(DataPathTest, SilentAndTricklingHellosLoseTheirSlots) {
  DataPlaneLimits limits;
  limits.hello_timeout = std::chrono::milliseconds(400);
  StartServer({}, limits);
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  const int port = server_->data_plane_port();
  // Every slot but one held by a connection that says nothing...
  std::vector<int> silent;
  for (size_t i = 0; i + 1 < DataPlaneServer::kMaxConnections; ++i) {
    auto fd = ConnectTcp("127.0.0.1", port, std::chrono::seconds(5));
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    silent.push_back(*fd);
  }
  // ...and the last by one that trickles a hello a byte at a time: each byte well within the
  // timeout, the whole hello far beyond it. The deadline is for the whole hello, so the runtime
  // hangs up before the last byte (a timeout per receive would wait for all of it).
  auto trickler = ConnectTcp("127.0.0.1", port, std::chrono::seconds(5));
  ASSERT_TRUE(trickler.ok()) << trickler.status().ToString();
  dataplane::Hello hello;
  Bytes hello_bytes = dataplane::EncodeHello(hello);
  size_t sent = 0;
  bool closed = false;
  for (; sent < hello_bytes.size() && !closed; ++sent) {
    if (send(*trickler, &hello_bytes[sent], 1, MSG_NOSIGNAL) != 1) break;  // reset: closed
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    closed = ClosedWithoutReply(*trickler);
  }
  EXPECT_LT(sent, hello_bytes.size()) << "the runtime waited for the whole trickled hello";
  close(*trickler);

  // The silent ones are dropped too, without the client closing them: uploads get the data
  // plane back (the runtime reaps finished connections about once a second).
  EXPECT_TRUE(DataPlaneServesAgain(*owner, "after-", 32))
      << "silent connections kept the data plane's slots";
  for (int fd : silent) {
    EXPECT_TRUE(ClosedWithoutReply(fd));
    close(fd);
  }
}

TEST_F(DataPathTest, AnAdmittedConnectionThatGoesQuietIsClosed) {
  DataPlaneLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(500);
  StartServer({}, limits);
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(30, 33);
  v1::BeginUploadResponse begun;
  ASSERT_TRUE(Begin(*owner, "quiet", c.header, c.key, &begun).ok());
  auto fd = ConnectTcp("127.0.0.1", static_cast<int>(begun.data_plane_port()),
                       std::chrono::seconds(5));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  dataplane::Hello hello;
  auto ticket_id = dataplane::DeriveTicketId(AsBytes(begun.upload_ticket()));
  ASSERT_TRUE(ticket_id.ok());
  hello.ticket_id = *ticket_id;
  ASSERT_TRUE(WriteAll(*fd, dataplane::EncodeHello(hello)).ok());
  // Admitted (the welcome comes), then silence from the client: the runtime must hang up
  // rather than hold the slot and the ingest. Everything it sends is read until the end; the
  // 10 s receive timeout here only fires if it never hangs up.
  SetSocketTimeouts(*fd, std::chrono::seconds(10));
  Bytes received;
  uint8_t buffer[256];
  ssize_t got = 0;
  while ((got = recv(*fd, buffer, sizeof buffer, 0)) > 0) {
    received.insert(received.end(), buffer, buffer + got);
  }
  const int error = got < 0 ? errno : 0;
  close(*fd);
  ASSERT_FALSE(received.empty());
  EXPECT_EQ(received[0], static_cast<uint8_t>(dataplane::ServerFrameType::kWelcome));
  EXPECT_TRUE(got == 0 || error == ECONNRESET)
      << "the runtime kept a quiet admitted connection open: " << std::strerror(error);
  EXPECT_EQ(server_->store()->GetDataset(begun.dataset_id())->acknowledged_through, 0u);
}

TEST_F(DataPathTest, DataPlaneRefusesHostileChunksAndKeepsWhatWasAcknowledged) {
  v1::Principal principal;
  auto owner = NewPrincipal(v1::ROLE_OWNER, &principal);
  Container c = MakeContainer(60, 24);  // 6 chunks
  Container other = MakeContainer(60, 25);
  ASSERT_EQ(c.chunks.size(), 6u);
  // Each attempt: a fresh ticket (BeginUpload again resumes), then `send` on the data plane.
  auto attempt = [&](const std::function<void(client::DataPlaneUpload&)>& send) -> Status {
    v1::BeginUploadResponse begun;
    grpc::Status begin = Begin(*owner, "hostile", c.header, c.key, &begun);
    if (!begin.ok()) return InternalError(begin.error_message());
    auto upload = client::DataPlaneUpload::Open("127.0.0.1", begun.data_plane_port(),
                                                AsBytes(begun.upload_ticket()),
                                                std::chrono::seconds(5));
    if (!upload.ok()) return upload.status();
    (*upload)->StartReading([](uint64_t, bool) {});
    send(**upload);
    return (*upload)->Close(/*end=*/true);
  };
  auto stored = [&] {
    auto record = server_->store()->FindDataset(principal.id(), "hostile");
    return record.ok() ? record->acknowledged_through : ~uint64_t{0};
  };

  ASSERT_TRUE(attempt([&](client::DataPlaneUpload& u) {
                ASSERT_TRUE(u.Send(0, false, c.chunks[0]).ok());
                ASSERT_TRUE(u.Send(1, false, c.chunks[1]).ok());
              }).ok());
  EXPECT_EQ(stored(), 2u);

  Bytes tampered = c.chunks[2];
  tampered[7] ^= 0x01;
  Status s = attempt([&](client::DataPlaneUpload& u) { u.Send(2, false, tampered).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("chunk 2"), std::string::npos) << s.ToString();
  s = attempt([&](client::DataPlaneUpload& u) { u.Send(2, false, other.chunks[2]).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << "spliced from another dataset: " << s.ToString();
  s = attempt([&](client::DataPlaneUpload& u) { u.Send(3, false, c.chunks[3]).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  Bytes longer = c.chunks[2];
  longer.push_back(0);
  s = attempt([&](client::DataPlaneUpload& u) { u.Send(2, false, longer).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("container's header says"), std::string::npos) << s.ToString();
  s = attempt([&](client::DataPlaneUpload& u) { u.Send(9, false, c.chunks[2]).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  s = attempt([&](client::DataPlaneUpload& u) { u.Send(1, false, c.chunks[2]).IgnoreError(); });
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << "replacing an acknowledged chunk";
  EXPECT_EQ(stored(), 2u);

  // A chunk accepted before a refused one is still stored and acknowledged.
  uint64_t acked = 0;
  {
    v1::BeginUploadResponse begun;
    ASSERT_TRUE(Begin(*owner, "hostile", c.header, c.key, &begun).ok());
    EXPECT_EQ(begun.next_chunk_index(), 2u);
    auto upload = client::DataPlaneUpload::Open("127.0.0.1", begun.data_plane_port(),
                                                AsBytes(begun.upload_ticket()),
                                                std::chrono::seconds(5));
    ASSERT_TRUE(upload.ok());
    (*upload)->StartReading([&acked](uint64_t through, bool) { acked = through; });
    ASSERT_TRUE((*upload)->Send(2, false, c.chunks[2]).ok());
    (*upload)->Send(3, false, tampered).IgnoreError();
    EXPECT_EQ((*upload)->Close(true).code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(acked, 3u);
  EXPECT_EQ(stored(), 3u);

  ASSERT_TRUE(attempt([&](client::DataPlaneUpload& u) {
                for (uint64_t i = 3; i < 6; ++i) ASSERT_TRUE(u.Send(i, i == 5, c.chunks[i]).ok());
              }).ok());
  EXPECT_EQ(stored(), 6u);
  auto record = server_->store()->FindDataset(principal.id(), "hostile");
  ASSERT_TRUE(record.ok());
  ExpectStoredDataset(record->id, 60, 24);
}

// A host in the middle of the data plane: relays the client's bytes to the runtime and the
// runtime's back, except that it flips one bit of the runtime's bytes at `flip_at` (counted from
// the first byte the runtime sends). What the client is told then fails authentication.
class TamperingRelay {
 public:
  TamperingRelay(int upstream_port, size_t flip_at) {
    auto listener = ListenTcp("127.0.0.1:0", "relay");
    EXPECT_TRUE(listener.ok());
    listen_fd_ = listener->fd;
    port_ = listener->port;
    thread_ = std::thread([this, upstream_port, flip_at] {
      int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      auto upstream = ConnectTcp("127.0.0.1", upstream_port, std::chrono::seconds(5));
      if (!upstream.ok()) {
        close(client);
        return;
      }
      int server = *upstream;
      std::thread up([client, server] { Pump(client, server, ~size_t{0}); });
      Pump(server, client, flip_at);
      up.join();
      close(client);
      close(server);
    });
  }
  ~TamperingRelay() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  static void Pump(int from, int to, size_t flip_at) {
    uint8_t buffer[65536];
    size_t offset = 0;
    while (true) {
      ssize_t n = recv(from, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      if (flip_at >= offset && flip_at < offset + static_cast<size_t>(n)) {
        buffer[flip_at - offset] ^= 0x01;
      }
      offset += static_cast<size_t>(n);
      if (send(to, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    shutdown(to, SHUT_WR);
    shutdown(from, SHUT_RD);
  }
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(DataPathTest, AClientBelievesNoAcknowledgementTheHostAltered) {
  auto owner = NewPrincipal(v1::ROLE_OWNER);
  Container c = MakeContainer(60, 26);
  const size_t kWelcome = 1 + 8 + dataplane::kMacSize;

  // The welcome itself altered (its next-chunk field): the client does not start.
  {
    v1::BeginUploadResponse begun;
    ASSERT_TRUE(Begin(*owner, "mitm", c.header, c.key, &begun).ok());
    TamperingRelay relay(static_cast<int>(begun.data_plane_port()), /*flip_at=*/1);
    auto upload = client::DataPlaneUpload::Open("127.0.0.1", relay.port(),
                                                AsBytes(begun.upload_ticket()),
                                                std::chrono::seconds(5));
    ASSERT_FALSE(upload.ok());
    EXPECT_EQ(upload.status().code(), StatusCode::kDataLoss) << upload.status().ToString();
    EXPECT_NE(upload.status().message().find("not authenticated"), std::string::npos);
  }
  // The first ack's acknowledged_through altered: the runtime stored the chunk, but the client
  // takes nothing from the forged ack and reports the forgery.
  {
    v1::BeginUploadResponse begun;
    ASSERT_TRUE(Begin(*owner, "mitm", c.header, c.key, &begun).ok());
    TamperingRelay relay(static_cast<int>(begun.data_plane_port()), kWelcome + 1);
    auto upload = client::DataPlaneUpload::Open("127.0.0.1", relay.port(),
                                                AsBytes(begun.upload_ticket()),
                                                std::chrono::seconds(5));
    ASSERT_TRUE(upload.ok()) << upload.status().ToString();
    std::vector<uint64_t> believed;
    (*upload)->StartReading([&believed](uint64_t through, bool) { believed.push_back(through); });
    ASSERT_TRUE((*upload)->Send(0, false, c.chunks[0]).ok());
    Status closed = (*upload)->Close(true);
    EXPECT_EQ(closed.code(), StatusCode::kDataLoss) << closed.ToString();
    EXPECT_TRUE(believed.empty());
  }
  // The runtime did store chunk 0 (only the ack was forged): a resume starts after it.
  v1::BeginUploadResponse resumed;
  ASSERT_TRUE(Begin(*owner, "mitm", c.header, c.key, &resumed).ok());
  EXPECT_EQ(resumed.next_chunk_index(), 1u);
}

}  // namespace
}  // namespace chiron::runtime
