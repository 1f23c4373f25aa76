// jobs::LoadDataset over a real Store (on disk, through a FaultInjectingFileSystem whose read hook
// lets a test stop the load at an exact chunk): the records loaded are the ones uploaded; a chunk
// altered on disk is DataLoss naming it; the load holds no store lock, so an upload to another
// dataset completes while a load is stopped half-way, and a deletion half-way makes the load fail
// cleanly; each chunk is read once and authenticated once.
#include "runtime/jobs/dataset_loader.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "runtime/store/fault_file_system.h"
#include "runtime/store/store_test_util.h"
#include "shared/crypto/aead_stream.h"
#include "shared/dataset/container.h"

namespace chiron::jobs {
namespace {

using store::testing::MakeContainer;
using store::testing::SeededBytes;
using store::testing::TestContainer;
using ::testing::HasSubstr;

const std::string kOwner(64, 'a');
// Liveness only: far above anything these small operations take, so a test that would hang on a
// lock fails with a message instead.
constexpr auto kLiveness = std::chrono::seconds(60);

// The records (label || sample) of a container as the owner's client wrote it, read from the
// container itself (not from the store).
Bytes RecordsOf(const TestContainer& c) {
  Bytes records;
  auto header = dataset::ParseContainerHeader(c.header);
  EXPECT_TRUE(header.ok());
  const size_t label_size = dataset::LabelSize(header->schema.label_type);
  Status read = dataset::ReadContainer(c.key, c.Whole(), [&](const dataset::Record& record) {
    for (size_t i = 0; i < label_size; ++i)
      records.push_back(static_cast<uint8_t>(record.label >> (8 * i)));
    Append(records, record.sample);
    return Status::Ok();
  });
  EXPECT_TRUE(read.ok()) << read.ToString();
  return records;
}

// Stops the reader at the n-th read of one file until released; counts that file's reads.
class ReadGate {
 public:
  void Arm(const std::string& path_suffix, int stop_at_read) {
    std::lock_guard<std::mutex> lock(mu_);
    suffix_ = path_suffix;
    stop_at_ = stop_at_read;
  }
  void OnRead(const std::string& path) {
    std::unique_lock<std::mutex> lock(mu_);
    if (suffix_.empty() || !path.ends_with(suffix_)) return;
    if (++reads_ != stop_at_) return;
    stopped_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_; });
  }
  bool WaitUntilStopped() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kLiveness, [&] { return stopped_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    changed_.notify_all();
  }
  int reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return reads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::string suffix_;
  int stop_at_ = 0;
  int reads_ = 0;
  bool stopped_ = false;
  bool released_ = false;
};

class DatasetLoaderTest : public ::testing::Test {
 protected:
  DatasetLoaderTest() : fs_(FileSystem::Default()) {}

  void SetUp() override {
    fs_.SetReadHook([this](const std::string& path, uint64_t) { gate_.OnRead(path); });
    auto store = store::Store::Open(dir_.path(), SecretBytes(SeededBytes(7, 32)), &fs_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->RegisterPrincipal(kOwner, store::Role::kOwner, "Owner").ok());
  }
  void TearDown() override {
    gate_.Release();  // never leave a reader blocked
  }

  // Begins the dataset and stores its first `count` chunks (all of them by default).
  void Upload(const std::string& name, const TestContainer& c, size_t count = SIZE_MAX) {
    auto record = store_->BeginDataset(kOwner, name, c.header, c.key);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    std::vector<store::Store::ChunkToStore> chunks;
    for (size_t i = 0; i < std::min(count, c.chunks.size()); ++i) {
      chunks.push_back({i, i + 1 == c.chunks.size(), c.chunks[i]});
    }
    auto stored = store_->AppendChunks(c.id, chunks);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  }

  std::string SegmentPath(const TestContainer& c) const {
    return dir_.path() + "/blobs/d-" + c.id + ".seg";
  }

  store::testing::TempDir dir_;
  store::FaultInjectingFileSystem fs_;
  ReadGate gate_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(DatasetLoaderTest, LoadsExactlyTheUploadedRecords) {
  TestContainer c = MakeContainer(11, 401);  // 101 chunks, the last one short
  Upload("numbers", c);
  auto loaded = LoadDataset(*store_, c.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->schema.sample_count, 401u);
  Bytes expected = RecordsOf(c);
  ASSERT_EQ(expected.size(), 401u * loaded->schema.record_size());
  EXPECT_EQ(Bytes(loaded->records.span().begin(), loaded->records.span().end()), expected);
}

TEST_F(DatasetLoaderTest, ChunkAlteredOnDiskIsDataLossNamingTheChunk) {
  TestContainer c = MakeContainer(12, 40);
  Upload("numbers", c);
  // The host flips one bit of chunk 3's ciphertext in the segment file.
  Bytes segment = store::testing::ReadWholeFile(SegmentPath(c));
  auto at = std::search(segment.begin(), segment.end(), c.chunks[3].begin(), c.chunks[3].end());
  ASSERT_NE(at, segment.end());
  const off_t offset = static_cast<off_t>(at - segment.begin()) + 5;
  int fd = ::open(SegmentPath(c).c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t flipped = segment[static_cast<size_t>(offset)] ^ 0x01;
  ASSERT_EQ(::pwrite(fd, &flipped, 1, offset), 1);
  ::close(fd);

  auto loaded = LoadDataset(*store_, c.id);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("chunk 3 "));
  EXPECT_THAT(loaded.status().message(), HasSubstr("failed authentication"));
}

TEST_F(DatasetLoaderTest, ReadsAndAuthenticatesEachChunkOnce) {
  TestContainer c = MakeContainer(13, 64);  // 16 chunks
  Upload("numbers", c);
  gate_.Arm(".seg", /*stop_at_read=*/0);  // count only
  const uint64_t authenticated_before = crypto::AeadStreamChunksAuthenticated();
  auto loaded = LoadDataset(*store_, c.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(crypto::AeadStreamChunksAuthenticated() - authenticated_before, c.chunks.size())
      << "each chunk must be authenticated exactly once (the store and the loader each did it)";
  EXPECT_EQ(gate_.reads(), static_cast<int>(c.chunks.size()))
      << "each chunk must be read from the segment exactly once";
}

TEST_F(DatasetLoaderTest, IncompleteUploadIsFailedPrecondition) {
  TestContainer c = MakeContainer(14, 40);
  Upload("partial", c, /*count=*/4);
  auto loaded = LoadDataset(*store_, c.id);
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(loaded.status().message(), HasSubstr("4 of 10 chunks"));
  EXPECT_EQ(LoadDataset(*store_, std::string(32, '0')).status().code(), StatusCode::kNotFound);
}

// A load holds no store lock while it reads: with the loader stopped inside its read of chunk 2,
// a whole upload of another dataset (begin, append, complete) goes through.
TEST_F(DatasetLoaderTest, UploadToAnotherDatasetCompletesWhileALoadIsStopped) {
  TestContainer big = MakeContainer(15, 400);
  Upload("big", big);
  gate_.Arm("d-" + big.id + ".seg", /*stop_at_read=*/3);
  auto load = std::async(std::launch::async, [&] { return LoadDataset(*store_, big.id); });
  ASSERT_TRUE(gate_.WaitUntilStopped()) << "the load never reached chunk 2";

  TestContainer other = MakeContainer(16, 40);
  auto upload = std::async(std::launch::async, [&] {
    auto record = store_->BeginDataset(kOwner, "other", other.header, other.key);
    if (!record.ok()) return record.status();
    std::vector<store::Store::ChunkToStore> chunks;
    for (size_t i = 0; i < other.chunks.size(); ++i) {
      chunks.push_back({i, i + 1 == other.chunks.size(), other.chunks[i]});
    }
    auto stored = store_->AppendChunks(other.id, chunks);
    if (!stored.ok()) return stored.status();
    return stored->complete ? Status::Ok() : InternalError("upload not complete");
  });
  const bool upload_done = upload.wait_for(kLiveness) == std::future_status::ready;
  EXPECT_TRUE(upload_done) << "the upload waited for the load: the load holds the store's lock";
  gate_.Release();
  if (upload_done) {
    Status uploaded = upload.get();
    EXPECT_TRUE(uploaded.ok()) << uploaded.ToString();
  }
  auto loaded = load.get();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(Bytes(loaded->records.span().begin(), loaded->records.span().end()), RecordsOf(big));
  if (upload_done) {
    EXPECT_TRUE(LoadDataset(*store_, other.id).ok());
  }
}

// Deleting the dataset while a load is stopped half-way: the deletion does not wait for the
// load, and the load then fails with NotFound saying so (never with bytes read afterwards).
TEST_F(DatasetLoaderTest, DeletionDuringALoadFailsTheLoadCleanly) {
  TestContainer c = MakeContainer(17, 400);
  Upload("doomed", c);
  gate_.Arm("d-" + c.id + ".seg", /*stop_at_read=*/10);
  auto load = std::async(std::launch::async, [&] { return LoadDataset(*store_, c.id); });
  ASSERT_TRUE(gate_.WaitUntilStopped());
  auto deletion =
      std::async(std::launch::async, [&] { return store_->DeleteDataset(kOwner, "doomed"); });
  const bool deleted = deletion.wait_for(kLiveness) == std::future_status::ready;
  EXPECT_TRUE(deleted) << "the deletion waited for the load: the load holds the store's lock";
  if (deleted) {
    auto id = deletion.get();
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_FALSE(*fs_.Exists(SegmentPath(c)));
  }
  gate_.Release();
  auto loaded = load.get();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(loaded.status().message(), HasSubstr("was deleted while it was being read"));
}

// The same, and the same container uploaded again (same dataset id, so the same segment path)
// before the load goes on: the load still fails, it does not read the new dataset's file as if
// it were the old one.
TEST_F(DatasetLoaderTest, DeletedAndUploadedAgainDuringALoadStillFailsTheLoad) {
  TestContainer c = MakeContainer(18, 400);
  Upload("doomed", c);
  gate_.Arm("d-" + c.id + ".seg", /*stop_at_read=*/10);
  auto load = std::async(std::launch::async, [&] { return LoadDataset(*store_, c.id); });
  ASSERT_TRUE(gate_.WaitUntilStopped());
  auto again = std::async(std::launch::async, [&]() -> Status {
    CHIRON_RETURN_IF_ERROR(store_->DeleteDataset(kOwner, "doomed").status());
    CHIRON_RETURN_IF_ERROR(store_->BeginDataset(kOwner, "reborn", c.header, c.key).status());
    std::vector<store::Store::ChunkToStore> chunks;
    for (size_t i = 0; i < c.chunks.size(); ++i) {
      chunks.push_back({i, i + 1 == c.chunks.size(), c.chunks[i]});
    }
    return store_->AppendChunks(c.id, chunks).status();
  });
  const bool done = again.wait_for(kLiveness) == std::future_status::ready;
  EXPECT_TRUE(done) << "deleting and uploading waited for the load";
  if (done) {
    Status status = again.get();
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  gate_.Release();
  auto loaded = load.get();
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound) << loaded.status().ToString();
  // A load that starts now reads the new dataset.
  EXPECT_TRUE(LoadDataset(*store_, c.id).ok());
}

TEST_F(DatasetLoaderTest, ConcurrentLoadsOfOneDatasetAgree) {
  TestContainer c = MakeContainer(19, 200);
  Upload("shared", c);
  auto first = std::async(std::launch::async, [&] { return LoadDataset(*store_, c.id); });
  auto second = std::async(std::launch::async, [&] { return LoadDataset(*store_, c.id); });
  auto a = first.get();
  auto b = second.get();
  ASSERT_TRUE(a.ok() && b.ok());
  const Bytes expected = RecordsOf(c);
  EXPECT_EQ(Bytes(a->records.span().begin(), a->records.span().end()), expected);
  EXPECT_EQ(Bytes(b->records.span().begin(), b->records.span().end()), expected);
}

}  // namespace
}  // namespace chiron::jobs
