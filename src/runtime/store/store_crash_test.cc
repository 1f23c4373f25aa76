// Crash safety at the library level: a child process uploads (and deletes) datasets and is killed
// with SIGKILL at seeded random moments and at exact steps inside the blob-file write; after
// every kill the parent reopens the store and checks that every chunk the child saw acknowledged
// is present and intact, nothing unacknowledged is visible, no stray file survives recovery, the
// audit chain verifies, and the upload resumes where it stopped.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <cstdio>
#include <random>
#include <sstream>
#include <thread>

#include "runtime/store/fault_file_system.h"
#include "runtime/store/store.h"
#include "runtime/store/store_impl.h"
#include "runtime/store/store_test_util.h"

namespace chiron::store {
namespace {

using testing::MakeContainer;
using testing::SeededBytes;
using testing::TestContainer;

const std::string kOwner(64, 'a');
// Chunks per AppendChunks in the random-moment test (groups of 1, 2, 3, 1, ...).
constexpr uint64_t kMaxGroup = 3;

// What the child reported through the pipe before it died.
struct ChildReport {
  bool began = false;           // BeginDataset returned OK
  int64_t last_acked = -1;      // highest chunk index whose AppendChunk returned OK
  bool deleted = false;         // DeleteDataset returned OK
  bool finished = false;        // the child ran to its end
};

ChildReport ParseReport(const std::string& text) {
  ChildReport report;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    if (word == "B") report.began = true;
    if (word == "A") {
      int64_t index = 0;
      in >> index;
      report.last_acked = std::max(report.last_acked, index);
    }
    if (word == "X") report.deleted = true;
    if (word == "D") report.finished = true;
  }
  return report;
}

void Say(int fd, const std::string& line) {
  // One write per line: complete or absent, never torn, when the writer is killed.
  ssize_t n = ::write(fd, line.data(), line.size());
  (void)n;
}

// The child: resume the upload of `c`, in groups of 1..max_group chunks per AppendChunks (as
// the service stores what arrived together); delete it once complete if `delete_when_complete`.
[[noreturn]] void RunChild(const std::string& dir, const Bytes& root_key, const TestContainer& c,
                           bool delete_when_complete, int kill_at_call, WritePhase kill_phase,
                           uint64_t max_group, int fd) {
  FaultInjectingFileSystem fs(FileSystem::Default());
  if (kill_at_call > 0) {
    fs.SetHook([&](const std::string&, WritePhase phase, int call) {
      if (call == kill_at_call && phase == kill_phase) ::raise(SIGKILL);
    });
  }
  auto store = Store::Open(dir, SecretBytes(root_key), &fs);
  if (!store.ok()) _exit(3);
  const std::string name = "crash-" + c.id.substr(0, 8);
  uint64_t start = 0;
  auto existing = (*store)->FindDataset(kOwner, name);
  if (existing.ok() && existing->complete) {
    start = c.chunks.size();  // an earlier child finished the upload and died before deleting
  } else {
    auto begun = (*store)->BeginDataset(kOwner, name, c.header, c.key);
    if (!begun.ok()) _exit(4);
    start = begun->acknowledged_through;
  }
  Say(fd, "B\n");
  for (uint64_t i = start; i < c.chunks.size();) {
    uint64_t end = std::min<uint64_t>(c.chunks.size(), i + 1 + i % max_group);
    std::vector<Store::ChunkToStore> group;
    for (uint64_t j = i; j < end; ++j) group.push_back({j, j + 1 == c.chunks.size(), c.chunks[j]});
    auto progress = (*store)->AppendChunks(c.id, group);
    if (!progress.ok() || progress->acknowledged_through != end) _exit(5);
    Say(fd, "A " + std::to_string(end - 1) + "\n");
    i = end;
  }
  if (delete_when_complete) {
    if (!(*store)->DeleteDataset(kOwner, name).ok()) _exit(6);
    Say(fd, "X\n");
  }
  Say(fd, "D\n");
  _exit(0);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class StoreCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path(), SecretBytes(root_key_), nullptr);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->RegisterPrincipal(kOwner, Role::kOwner, "Crash Owner").ok());
  }

  // Forks a child that works on `c` and is killed either by its own hook (kill_at_call > 0) or by
  // the parent after `delay`. Returns what it reported.
  ChildReport RunAndKill(const TestContainer& c, bool delete_when_complete, int kill_at_call,
                         WritePhase phase, std::chrono::microseconds delay,
                         uint64_t max_group = 1) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      RunChild(dir_.path(), root_key_, c, delete_when_complete, kill_at_call, phase, max_group,
               fds[1]);
    }
    ::close(fds[1]);
    if (kill_at_call == 0) {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
    }
    std::string text = ReadAll(fds[0]);
    ::close(fds[0]);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    if (WIFEXITED(wstatus)) {
      EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "the child failed on its own (not by the kill)";
    } else {
      EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
      ++kills_;
    }
    return ParseReport(text);
  }

  // After a kill: reopen (recovery runs) and check the invariants. `known_acked` carries the
  // chunks acknowledged to any child so far; returns the chunks now stored, or nullopt if the
  // dataset is gone (deleted after a complete upload, or never created).
  std::optional<uint64_t> CheckAfterCrash(const TestContainer& c, const ChildReport& report,
                                          uint64_t& known_acked, uint64_t max_group = 1) {
    known_acked = std::max<uint64_t>(known_acked, static_cast<uint64_t>(report.last_acked + 1));
    auto store = Store::Open(dir_.path(), SecretBytes(root_key_), nullptr);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return std::nullopt;
    auto record = (*store)->GetDataset(c.id);
    std::vector<std::string> files = testing::ListBlobFiles(dir_.path());
    // The audit chain is whole whatever happened.
    auto log = (*store)->ListAudit(kOwner, 1);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    if (log.ok()) {
      EXPECT_TRUE(audit::VerifyAuditChain(*log, std::nullopt, kOwner).ok());
    }
    if (!record.ok()) {
      EXPECT_EQ(record.status().code(), StatusCode::kNotFound);
      // Either never created (killed inside the first BeginDataset) or deleted after a complete
      // upload (possibly just before the child could report it). Nothing of it may remain.
      EXPECT_TRUE(known_acked == 0 || known_acked == c.chunks.size())
          << "a dataset with " << known_acked << " acknowledged chunks vanished";
      for (const std::string& name : files) {
        EXPECT_EQ(name.find(c.id), std::string::npos) << "leftover after delete: " << name;
      }
      return std::nullopt;
    }
    EXPECT_FALSE(report.deleted) << "a deleted dataset came back";
    uint64_t acked = record->acknowledged_through;
    // Every chunk a child saw acknowledged is durable ...
    EXPECT_GE(acked, known_acked);
    // ... and at most the one group in flight at the kill may have committed unreported.
    EXPECT_LE(acked, known_acked + max_group);
    known_acked = acked;
    for (uint64_t i = 0; i < acked; ++i) {
      auto chunk = (*store)->ReadChunk(c.id, i);
      EXPECT_TRUE(chunk.ok()) << "chunk " << i << ": " << chunk.status().ToString();
      if (chunk.ok()) {
        EXPECT_EQ(*chunk, c.chunks[i]) << i;
      }
    }
    // Nothing half-written is visible (bytes a killed write left past the committed end of the
    // segment are not chunks), and recovery removed every stray file.
    if (acked < c.chunks.size()) {
      EXPECT_EQ((*store)->ReadChunk(c.id, acked).status().code(), StatusCode::kOutOfRange);
    }
    uint64_t segment_files = 0;
    for (const std::string& name : files) {
      EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
      if (name.find(c.id) != std::string::npos) {
        EXPECT_EQ(name, SegmentFileName(c.id));
        ++segment_files;
      }
    }
    // One segment per dataset, once its first write began.
    EXPECT_LE(segment_files, 1u);
    if (acked > 0) {
      EXPECT_EQ(segment_files, 1u);
    }
    return acked;
  }

  Bytes root_key_ = SeededBytes(7, 32);
  testing::TempDir dir_;
  int kills_ = 0;
};

TEST_F(StoreCrashTest, KilledAtRandomMomentsLosesNoAcknowledgedChunk) {
  std::mt19937 rng(20240611);
  int datasets_completed = 0;
  // At least two datasets, so the second (deleted once complete) is killed mid-delete too.
  // The loop runs until 40 kills happened, whatever the machine's speed (an idle machine finishes
  // more uploads inside the kill window, so it needs more datasets).
  for (int dataset = 0; (kills_ < 40 || dataset < 2) && dataset < 400; ++dataset) {
    TestContainer c = MakeContainer(100 + static_cast<uint32_t>(dataset), 120);  // 30 chunks
    bool delete_when_complete = dataset % 2 == 1;
    bool done = false;
    uint64_t known_acked = 0;
    for (int round = 0; round < 200 && !done; ++round) {
      auto delay = std::chrono::microseconds(rng() % 30000);
      ChildReport report =
          RunAndKill(c, delete_when_complete, 0, WritePhase::kBefore, delay, kMaxGroup);
      std::optional<uint64_t> acked = CheckAfterCrash(c, report, known_acked, kMaxGroup);
      if (::testing::Test::HasFailure()) return;
      done = delete_when_complete ? !acked.has_value() && known_acked == c.chunks.size()
                                  : acked == c.chunks.size();
    }
    EXPECT_TRUE(done) << "the upload never finished";
    ++datasets_completed;
  }
  EXPECT_GE(kills_, 40);
  std::printf("random-moment kills: %d over %d datasets\n", kills_, datasets_completed);
}

TEST_F(StoreCrashTest, KilledAtEveryStepOfTheBlobWrite) {
  // Kill the child at each phase of its k-th write (k = 1..6; one chunk per write here): before
  // anything, with half of the chunk in the segment (not synced), and after the chunk is
  // durable in the segment but before the catalog commit.
  TestContainer c = MakeContainer(300, 240);  // 60 chunks
  uint64_t known_acked = 0;
  for (int call = 1; call <= 6; ++call) {
    for (WritePhase phase : {WritePhase::kBefore, WritePhase::kPartialTemp,
                             WritePhase::kAfterRename}) {
      uint64_t before = known_acked;
      ChildReport report = RunAndKill(c, false, call, phase, {});
      std::optional<uint64_t> acked = CheckAfterCrash(c, report, known_acked);
      if (::testing::Test::HasFailure()) return;
      // Killed during its call-th write: exactly the chunks of the earlier writes were added,
      // even when the killed write's file was already durable (it was never committed).
      EXPECT_EQ(acked, before + static_cast<uint64_t>(call - 1)) << "call " << call;
    }
  }
  EXPECT_EQ(kills_, 18);
  // Finally the upload resumes and completes without a kill, and the result is a valid container.
  ChildReport report = RunAndKill(c, false, 0, WritePhase::kBefore, std::chrono::seconds(20));
  EXPECT_TRUE(report.finished);
  auto store = Store::Open(dir_.path(), SecretBytes(root_key_), nullptr);
  ASSERT_TRUE(store.ok());
  auto record = (*store)->GetDataset(c.id);
  ASSERT_TRUE(record.ok());
  EXPECT_TRUE(record->complete);
  Bytes whole = record->header.encoded;
  for (uint64_t i = 0; i < record->chunk_count; ++i) Append(whole, *(*store)->ReadChunk(c.id, i));
  EXPECT_EQ(whole, c.Whole());
  EXPECT_TRUE(dataset::ReadContainer(c.key, whole, [](const dataset::Record&) {
                return Status::Ok();
              }).ok());
}

}  // namespace
}  // namespace chiron::store
