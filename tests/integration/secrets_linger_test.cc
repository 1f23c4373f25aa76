// Attacks the threat model's "secrets do not linger" row the way an attacker who later gets a
// look at the runtime would: one who reads every byte of chirond's state directory, or every
// byte of chirond's memory (a core dump, a memory snapshot of a crashed or decommissioned guest).
//
// The test is the data owner: it uploads a dataset whose data key and sample bytes it knows to a
// real chirond process (sim platform) over attested mutual TLS, deletes the dataset, and then
// searches for the key and for the plaintext samples:
//   - in every file under the state directory, while the dataset exists and after deletion
//     (everything at rest is sealed, so neither may ever appear);
//   - in every readable mapping of the live chirond process after deletion (/proc/PID/mem, which
//     the test may read as chirond's parent), so no copy of the key or the plaintext survives the
//     dataset in the runtime's heap, stacks or buffers. Not only whole copies: every 8-byte
//     window of the key and of the marker is searched for, since glibc's malloc writes its list
//     pointers over the first 16 bytes of a freed chunk (so a freed, unzeroed copy of the key has
//     lost its start but keeps its last 16 bytes, which a whole-key search misses). A 16-byte
//     window is reported as such; with random secrets, an 8-byte match by chance has odds of
//     about 2^-64 per window and position.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chiron/v1/datasets.grpc.pb.h"
#include "chiron/v1/jobs.grpc.pb.h"
#include "chiron/v1/principals.grpc.pb.h"
#include "client/connection.h"
#include "client/importers/encrypt.h"
#include "shared/attest/policy.h"
#include "shared/attest/verifier.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/random.h"
#include "tests/integration/process.h"

namespace chiron {
namespace {

namespace fs = std::filesystem;

// Every sample is the same 64 random bytes (the marker), so any plaintext chunk contains it.
class MarkerSource final : public importers::SampleSource {
 public:
  MarkerSource(Bytes marker, uint64_t count) : marker_(std::move(marker)) {
    schema_.shape = {8, 8};
    schema_.class_names = {"a", "b"};
    schema_.sample_count = count;
  }
  const dataset::DatasetSchema& schema() const override { return schema_; }
  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    if (produced_ == schema_.sample_count) return false;
    std::copy(marker_.begin(), marker_.end(), sample.begin());
    label = static_cast<uint32_t>(produced_++ % 2);
    return true;
  }

 private:
  Bytes marker_;
  dataset::DatasetSchema schema_;
  uint64_t produced_ = 0;
};

bool Contains(const std::string& haystack, ByteSpan needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// Files under `dir` whose bytes contain `needle`; adds the bytes read to `*scanned`.
std::vector<std::string> FilesContaining(const std::string& dir, ByteSpan needle,
                                         uint64_t* scanned = nullptr) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (scanned) *scanned += bytes.str().size();
    if (Contains(bytes.str(), needle)) found.push_back(entry.path().string());
  }
  return found;
}

// The readable mappings of process `pid` ("start-end perms offset dev inode path" lines of
// /proc/PID/maps) that contain `needle`, read through /proc/PID/mem.
std::vector<std::string> MappingsContaining(pid_t pid, ByteSpan needle) {
  std::vector<std::string> found;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(mem, 0) << "cannot open chirond's memory: " << std::strerror(errno);
  if (mem < 0) return found;
  int regions_read = 0;
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3) continue;
    if (perms[0] != 'r' || line.find("[vvar") != std::string::npos ||
        line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    // Read in 16 MiB windows that overlap by the needle's length, so no match is cut apart.
    bool any = false, match = false;
    std::string window;
    for (unsigned long at = start; at < end && !match;) {
      size_t want = std::min<unsigned long>(end - at, 16ul << 20);
      window.resize(want);
      ssize_t got = ::pread(mem, window.data(), want, static_cast<off_t>(at));
      if (got <= 0) break;
      window.resize(static_cast<size_t>(got));
      any = true;
      match = Contains(window, needle);
      if (at + static_cast<unsigned long>(got) >= end) break;
      size_t advance = static_cast<size_t>(got);
      if (advance > needle.size()) advance -= needle.size() - 1;
      at += advance;
    }
    if (any) ++regions_read;
    if (match) found.push_back(line);
  }
  ::close(mem);
  EXPECT_GT(regions_read, 10) << "the memory scan read almost nothing: it would prove nothing";
  return found;
}

// Every 8-byte window of a secret (at every offset), and a quick filter on a window's first two
// bytes, to scan memory for any piece of it in one pass.
class SecretWindows {
 public:
  static constexpr size_t kWindow = 8;

  explicit SecretWindows(const Bytes& secret) : secret_(secret), maybe_(1 << 16) {
    for (size_t at = 0; at + kWindow <= secret_.size(); ++at) {
      maybe_[secret_[at] | (secret_[at + 1] << 8)] = true;
    }
  }

  // The longest run of the secret (at least kWindow bytes) that starts at `data[0]`, or 0.
  size_t MatchAt(const uint8_t* data, size_t available) const {
    if (available < kWindow || !maybe_[data[0] | (data[1] << 8)]) return 0;
    size_t best = 0;
    for (size_t at = 0; at + kWindow <= secret_.size(); ++at) {
      size_t length = 0;
      while (at + length < secret_.size() && length < available &&
             data[length] == secret_[at + length]) {
        ++length;
      }
      if (length >= kWindow) best = std::max(best, length);
    }
    return best;
  }

 private:
  const Bytes secret_;
  std::vector<bool> maybe_;
};

// The readable mappings of process `pid` holding any 8-byte window of `secret`, each with the
// longest piece found ("... : a 16-byte piece"). The scan overlaps its reads so no piece is cut.
// No occurrence is exempt: not even the serialized request field in gRPC's buffers, since chirond
// wipes every block it frees (src/runtime/main/wipe_on_free.cc) and the test searches only after
// the owner's connection, and with it every buffer that held its requests, is gone.
std::vector<std::string> MappingsContainingPieces(pid_t pid, const Bytes& secret) {
  const SecretWindows windows(secret);
  std::vector<std::string> found;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(mem, 0) << "cannot open chirond's memory: " << std::strerror(errno);
  if (mem < 0) return found;
  uint64_t bytes_read = 0;
  std::string line;
  std::vector<uint8_t> window;
  while (std::getline(maps, line)) {
    unsigned long start = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3) continue;
    if (perms[0] != 'r' || line.find("[vvar") != std::string::npos ||
        line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    size_t longest = 0;
    for (unsigned long at = start; at < end;) {
      size_t want = std::min<unsigned long>(end - at, 16ul << 20);
      window.resize(want);
      ssize_t got = ::pread(mem, window.data(), want, static_cast<off_t>(at));
      if (got <= 0) break;
      bytes_read += static_cast<uint64_t>(got);
      const size_t size = static_cast<size_t>(got);
      for (size_t i = 0; i + SecretWindows::kWindow <= size; ++i) {
        const size_t match = windows.MatchAt(window.data() + i, size - i);
        longest = std::max(longest, match);
      }
      if (at + size >= end) break;
      // Overlap by the secret's length so a piece across two reads is seen whole in the next.
      at += size > secret.size() ? size - secret.size() : size;
    }
    if (longest > 0) {
      found.push_back(line + " : a " + std::to_string(longest) + "-byte piece (" +
                      (longest >= 16 ? "16-byte window" : "8-byte window") + ")");
    }
  }
  ::close(mem);
  EXPECT_GT(bytes_read, uint64_t{1} << 20) << "the memory scan read almost nothing";
  return found;
}

// Waits (up to 10 s) until no TCP connection to loopback port `port` remains, in /proc/net/tcp,
// so chirond has closed the owner's connection and freed its buffers (a connection's TLS read
// buffer lives as long as the connection) before its memory is searched. Returns whether it did.
bool WaitUntilConnectionsClosed(int port) {
  char local_port[8];
  std::snprintf(local_port, sizeof(local_port), ":%04X", port);
  for (int attempt = 0; attempt < 200; ++attempt) {
    bool open = false;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(table);
      std::string line;
      std::getline(in, line);  // the header
      while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        const bool ours = local.size() > 5 && local.compare(local.size() - 5, 5, local_port) == 0;
        if (ours && state != "0A") open = true;  // 0A: the listening socket itself
      }
    }
    if (!open) return true;
    ::usleep(50 * 1000);
  }
  return false;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "\n  " + line;
  return out;
}

class SecretsLingerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("chiron-secrets");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    chirond_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<client::Connection> NewOwner() {
    auto policy = attest::Policy::LoadFile(chirond_->policy_path());
    EXPECT_TRUE(policy.ok()) << policy.status().ToString();
    auto verifier = attest::Verifier::Create(*policy);
    EXPECT_TRUE(verifier.ok()) << verifier.status().ToString();
    auto key = crypto::PrivateKey::Generate(crypto::SignatureScheme::kEcdsaP256Sha256);
    auto identity = ratls::CreateClientIdentity(*key, "owner");
    EXPECT_TRUE(identity.ok());
    client::ConnectOptions options;
    options.server = chirond_->address();
    options.verifier = std::make_shared<const attest::Verifier>(std::move(*verifier));
    options.identity = std::make_shared<const ratls::TlsIdentity>(std::move(*identity));
    auto connection = client::Connection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    v1::RegisterPrincipalRequest request;
    request.set_role(v1::ROLE_OWNER);
    request.set_display_name("owner");
    v1::Principal principal;
    auto context = (*connection)->NewContext();
    grpc::Status status = v1::Principals::NewStub((*connection)->channel())
                              ->Register(context.get(), request, &principal);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::move(*connection);
  }

  // Uploads "secret-data": 4000 samples that are all `marker` (256 KB of plaintext in several
  // 64 KiB chunks) under `data_key`; returns the container's size.
  uint64_t UploadMarkerDataset(client::Connection& owner, const Bytes& data_key,
                               const Bytes& marker) {
    MarkerSource source(marker, 4000);
    Bytes header;
    std::vector<Bytes> chunks;
    dataset::DatasetWriterOptions writer;
    writer.target_chunk_size = 64 << 10;
    auto stats = importers::EncryptSource(
        source, data_key, *dataset::NewDatasetId(),
        [&](const dataset::ContainerPiece& piece) {
          if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
            header.assign(piece.bytes.begin(), piece.bytes.end());
          } else {
            chunks.emplace_back(piece.bytes.begin(), piece.bytes.end());
          }
          return Status::Ok();
        },
        writer);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_GE(chunks.size(), 3u);
    auto stub = v1::Datasets::NewStub(owner.channel());
    v1::BeginUploadResponse begun;
    {
      v1::BeginUploadRequest request;
      request.set_name("secret-data");
      request.set_container_header(ToString(header));
      request.set_data_key(ToString(data_key));
      auto context = owner.NewContext();
      grpc::Status status = stub->BeginUpload(context.get(), request, &begun);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    {
      grpc::ClientContext context;
      auto stream = stub->Upload(&context);
      v1::UploadAck ack;
      for (size_t i = 0; i < chunks.size(); ++i) {
        v1::UploadChunk chunk;
        chunk.set_dataset_id(begun.dataset_id());
        chunk.set_index(i);
        chunk.set_last(i + 1 == chunks.size());
        chunk.set_sealed(ToString(chunks[i]));
        if (!stream->Write(chunk)) break;
      }
      stream->WritesDone();
      while (stream->Read(&ack)) {
      }
      grpc::Status status = stream->Finish();
      EXPECT_TRUE(status.ok()) << status.error_message();
      EXPECT_TRUE(ack.complete()) << "the runtime did not acknowledge the whole dataset";
    }
    uint64_t container_bytes = header.size();
    for (const Bytes& chunk : chunks) container_bytes += chunk.size();
    return container_bytes;
  }

  void DeleteDataset(client::Connection& owner) {
    v1::DeleteDatasetRequest request;
    request.set_name("secret-data");
    v1::DeleteDatasetResponse response;
    auto context = owner.NewContext();
    grpc::Status status =
        v1::Datasets::NewStub(owner.channel())->Delete(context.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  // Neither the key nor the plaintext is in chirond's state directory or its live memory.
  void ExpectNoTrace(const Bytes& data_key, const Bytes& marker) {
    std::string state_dir = dir_ + "/state";
    EXPECT_EQ(FilesContaining(state_dir, data_key), std::vector<std::string>{});
    EXPECT_EQ(FilesContaining(state_dir, marker), std::vector<std::string>{});
    auto key_copies = MappingsContainingPieces(chirond_->pid(), data_key);
    EXPECT_TRUE(key_copies.empty())
        << "pieces of the deleted dataset's key are still in chirond's memory in:"
        << Join(key_copies);
    auto plaintext_copies = MappingsContainingPieces(chirond_->pid(), marker);
    EXPECT_TRUE(plaintext_copies.empty())
        << "pieces of the deleted dataset's plaintext are still in chirond's memory in:"
        << Join(plaintext_copies);
  }

  std::string dir_;
  std::unique_ptr<testing::ChirondProcess> chirond_;
};

TEST_F(SecretsLingerTest, DataKeyAndPlaintextAreNotOnDiskAndNotInMemoryAfterDeletion) {
  chirond_ = std::make_unique<testing::ChirondProcess>(dir_);
  Bytes data_key = *crypto::RandomBytes(dataset::kDatasetKeySize);
  Bytes marker = *crypto::RandomBytes(64);
  auto owner = NewOwner();
  ASSERT_NE(owner, nullptr);
  uint64_t container_bytes = UploadMarkerDataset(*owner, data_key, marker);
  ASSERT_FALSE(HasFailure());

  // At rest, while the dataset exists: sealed, so neither the key nor the plaintext is on disk.
  std::string state_dir = dir_ + "/state";
  ASSERT_TRUE(fs::exists(state_dir)) << "the test must scan chirond's real state directory";
  uint64_t scanned = 0;
  EXPECT_EQ(FilesContaining(state_dir, data_key, &scanned), std::vector<std::string>{});
  EXPECT_GE(scanned, container_bytes) << "the at-rest scan missed the stored chunks";
  EXPECT_EQ(FilesContaining(state_dir, marker), std::vector<std::string>{});
  // The memory scan works: it finds a string chirond certainly holds (the dataset's id).
  auto listed = v1::ListDatasetsResponse();
  {
    auto context = owner->NewContext();
    ASSERT_TRUE(v1::Datasets::NewStub(owner->channel())
                    ->List(context.get(), v1::ListDatasetsRequest(), &listed)
                    .ok());
    ASSERT_EQ(listed.datasets_size(), 1);
  }
  EXPECT_FALSE(
      MappingsContaining(chirond_->pid(), AsBytes(listed.datasets(0).dataset_id())).empty())
      << "the memory scan does not even find the dataset id: it would prove nothing";

  DeleteDataset(*owner);
  owner.reset();  // close the connection, as an owner who is done would
  EXPECT_TRUE(WaitUntilConnectionsClosed(chirond_->port()))
      << "chirond kept the owner's connection open 10 s after the owner closed it";
  ExpectNoTrace(data_key, marker);
}

// Training is where the runtime unseals the key and decrypts every sample (into the worker's
// sealed memfd): after the job and the deletion, nothing of either may remain in chirond.
TEST_F(SecretsLingerTest, NothingLingersAfterTrainingOnTheDataset) {
#ifndef CHIRON_TEST_HAVE_WORKER
  GTEST_SKIP() << "this build has no chiron-worker (built without libtorch)";
#endif
  chirond_ = std::make_unique<testing::ChirondProcess>(dir_, std::vector<std::string>{},
                                                       testing::BinaryPath("chiron-worker"));
  Bytes data_key = *crypto::RandomBytes(dataset::kDatasetKeySize);
  Bytes marker = *crypto::RandomBytes(64);
  auto owner = NewOwner();
  ASSERT_NE(owner, nullptr);
  UploadMarkerDataset(*owner, data_key, marker);
  ASSERT_FALSE(HasFailure());

  v1::StartTrainingRequest request;
  request.set_dataset_name("secret-data");
  request.set_recipe_id("mlp");
  request.set_model_name("secret-model");
  request.set_epochs(1);
  request.set_seed(3);
  v1::OwnerJobView job;
  {
    auto context = owner->NewContext();
    grpc::Status status =
        v1::Jobs::NewStub(owner->channel())->StartTraining(context.get(), request, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
    v1::JobRef ref;
    ref.set_job_id(job.job_id());
    auto reader = v1::Jobs::NewStub(owner->channel())->Watch(&context, ref);
    v1::OwnerJobView view;
    while (reader->Read(&view)) job = view;
    ASSERT_TRUE(reader->Finish().ok());
  }
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << "failure category " << job.failure();

  DeleteDataset(*owner);
  owner.reset();
  EXPECT_TRUE(WaitUntilConnectionsClosed(chirond_->port()))
      << "chirond kept the owner's connection open 10 s after the owner closed it";
  ExpectNoTrace(data_key, marker);
}

}  // namespace
}  // namespace chiron
