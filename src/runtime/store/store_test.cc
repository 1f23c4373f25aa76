#include "runtime/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/store/fault_file_system.h"
#include "runtime/store/sealed.h"
#include "runtime/store/store_impl.h"
#include "runtime/store/store_test_util.h"
#include "shared/audit/chain.h"
#include "shared/crypto/aead_stream.h"
#include "shared/crypto/hash.h"
#include "shared/dataset/container.h"

namespace chiron::store {
namespace {

using ::testing::HasSubstr;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::ExecSql;
using testing::FilesContaining;
using testing::ListBlobFiles;
using testing::MakeContainer;
using testing::QueryBlob;
using testing::ReadWholeFile;
using testing::SeededBytes;
using testing::TestContainer;
using testing::WriteWholeFile;

const std::string kAlice(64, 'a');
const std::string kBob(64, 'b');
const std::string kProvider(64, 'c');

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() : fs_(FileSystem::Default()) {}

  void SetUp() override {
    Reopen();
    ASSERT_TRUE(store_->RegisterPrincipal(kAlice, Role::kOwner, "Alice").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kBob, Role::kOwner, "Bob").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kProvider, Role::kProvider, "Provider Inc").ok());
  }

  void Reopen(StoreLimits limits = {}) {
    store_.reset();
    auto store = Store::Open(dir_.path(), SecretBytes(root_key_), &fs_, limits);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void Close() { store_.reset(); }

  // Begins and uploads every chunk.
  void Upload(const std::string& owner, const std::string& name, const TestContainer& c) {
    auto record = store_->BeginDataset(owner, name, c.header, c.key);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    for (uint64_t i = record->acknowledged_through; i < c.chunks.size(); ++i) {
      auto progress = store_->AppendChunk(c.id, i, i + 1 == c.chunks.size(), c.chunks[i]);
      ASSERT_TRUE(progress.ok()) << progress.status().ToString();
    }
  }

  void ExpectChunksIntact(const TestContainer& c, uint64_t count) {
    for (uint64_t i = 0; i < count; ++i) {
      auto chunk = store_->ReadChunk(c.id, i);
      ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
      EXPECT_EQ(*chunk, c.chunks[i]) << i;
    }
  }

  Bytes root_key_ = SeededBytes(42, 32);
  testing::TempDir dir_;
  FaultInjectingFileSystem fs_;
  std::unique_ptr<Store> store_;
};

// ---- principals ---------------------------------------------------------------------------------

TEST_F(StoreTest, PrincipalsRegisterOnceWithOneRole) {
  auto alice = store_->GetPrincipal(kAlice);
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->role, Role::kOwner);
  EXPECT_EQ(alice->display_name, "Alice");
  auto again = store_->RegisterPrincipal(kAlice, Role::kOwner, "Other name");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->display_name, "Alice");
  auto other_role = store_->RegisterPrincipal(kAlice, Role::kProvider, "Alice");
  EXPECT_EQ(other_role.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(other_role.status().message(), HasSubstr("already registered as owner"));
  EXPECT_EQ(store_->RegisterPrincipal("bad id!", Role::kOwner, "x").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RegisterPrincipal(kBob + "x", Role::kOwner, "tab\there").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RegisterPrincipal(kBob + "x", Role::kOwner, std::string(65, 'n'))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetPrincipal(std::string(64, 'f')).status().code(), StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(store_->GetPrincipal(kProvider)->display_name, "Provider Inc");
  Close();
  EXPECT_THAT(FilesContaining(dir_.path(), AsBytes("Provider Inc")), IsEmpty())
      << "display names are sealed at rest";
}

// ---- datasets -----------------------------------------------------------------------------------

TEST_F(StoreTest, UploadRoundTripSurvivesReopen) {
  TestContainer c = MakeContainer(1);
  ASSERT_EQ(c.chunks.size(), 6u);
  auto begun = store_->BeginDataset(kAlice, "fashion", c.header, c.key);
  ASSERT_TRUE(begun.ok()) << begun.status().ToString();
  EXPECT_EQ(begun->id, c.id);
  EXPECT_EQ(begun->chunk_count, 6u);
  EXPECT_EQ(begun->acknowledged_through, 0u);
  EXPECT_FALSE(begun->complete);
  EXPECT_EQ(begun->reserved_size, c.Whole().size());
  for (uint64_t i = 0; i < 6; ++i) {
    auto progress = store_->AppendChunk(c.id, i, i == 5, c.chunks[i]);
    ASSERT_TRUE(progress.ok()) << progress.status().ToString();
    EXPECT_EQ(progress->acknowledged_through, i + 1);
    EXPECT_EQ(progress->complete, i == 5);
  }
  Reopen();
  auto record = store_->FindDataset(kAlice, "fashion");
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_TRUE(record->complete);
  EXPECT_EQ(record->stored_size, c.Whole().size());
  EXPECT_EQ(record->header.schema.sample_count, 22u);
  EXPECT_EQ(record->header.encoded, c.header);
  ExpectChunksIntact(c, 6);
  auto key = store_->GetDataKey(c.id);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(Bytes(key->span().begin(), key->span().end()), c.key);
  // What was stored is a valid container under the owner's key.
  Bytes whole = record->header.encoded;
  for (uint64_t i = 0; i < 6; ++i) Append(whole, *store_->ReadChunk(c.id, i));
  int records = 0;
  EXPECT_TRUE(dataset::ReadContainer(c.key, whole, [&](const dataset::Record&) {
                ++records;
                return Status::Ok();
              }).ok());
  EXPECT_EQ(records, 22);
  EXPECT_EQ(store_->ReadChunk(c.id, 6).status().code(), StatusCode::kOutOfRange);
  auto list = store_->ListDatasets(kAlice);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "fashion");
  EXPECT_THAT(*store_->ListDatasets(kBob), IsEmpty());
  EXPECT_EQ(store_->FindDataset(kBob, "fashion").status().code(), StatusCode::kNotFound);
  Close();
  EXPECT_THAT(FilesContaining(dir_.path(), AsBytes("fashion")), IsEmpty())
      << "dataset names are sealed at rest";
  EXPECT_THAT(FilesContaining(dir_.path(), AsBytes("gamma")), IsEmpty())
      << "the schema (class names) is sealed at rest";
  EXPECT_THAT(FilesContaining(dir_.path(), c.key), IsEmpty());
  // The store keeps the owner's chunks as uploaded (AES-256-GCM under the data key, which is
  // only on disk sealed): no plaintext record reaches the disk.
  for (uint64_t i = 0; i < c.chunks.size(); ++i) {
    auto reader = dataset::DatasetReader::Open(c.key, c.header);
    ASSERT_TRUE(reader.ok());
    SecretBytes plain = *reader->OpenChunk(i, c.chunks[i]);
    ASSERT_GE(plain.size(), 16u);
    const long probe = static_cast<long>(std::min<size_t>(plain.size(), 32));
    EXPECT_THAT(FilesContaining(dir_.path(), Bytes(plain.span().begin(),
                                                   plain.span().begin() + probe)),
                IsEmpty())
        << "plaintext of chunk " << i << " on disk";
  }
}

TEST_F(StoreTest, AppendChunkRefusesGapsAndIsIdempotent) {
  TestContainer c = MakeContainer(2);
  ASSERT_TRUE(store_->BeginDataset(kAlice, "d", c.header, c.key).ok());
  ASSERT_TRUE(store_->AppendChunk(c.id, 0, false, c.chunks[0]).ok());
  auto gap = store_->AppendChunk(c.id, 3, false, c.chunks[3]);
  EXPECT_EQ(gap.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.status().message(),
              HasSubstr("expects chunk 1 next, got chunk 3; resume from chunk 1"));
  auto resent = store_->AppendChunk(c.id, 0, false, c.chunks[0]);
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_EQ(resent->acknowledged_through, 1u);
  auto different = store_->AppendChunk(c.id, 0, false, c.chunks[1]);
  EXPECT_EQ(different.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(different.status().message(), HasSubstr("already stored with different contents"));
  auto wrong_last = store_->AppendChunk(c.id, 1, true, c.chunks[1]);
  EXPECT_EQ(wrong_last.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_last.status().message(), HasSubstr("marked last but the header declares 6"));
  // A chunk that fails authentication at this index is refused and nothing is stored.
  auto moved = store_->AppendChunk(c.id, 1, false, c.chunks[2]);
  EXPECT_EQ(moved.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(moved.status().message(), HasSubstr("chunk 1"));
  Bytes tampered = c.chunks[1];
  tampered[5] ^= 1;
  EXPECT_EQ(store_->AppendChunk(c.id, 1, false, tampered).status().code(), StatusCode::kDataLoss);
  TestContainer other = MakeContainer(3);
  EXPECT_FALSE(store_->AppendChunk(c.id, 1, false, other.chunks[1]).ok());
  EXPECT_FALSE(store_->AppendChunk(c.id, 1, false, Bytes(3, 0)).ok());
  EXPECT_EQ(store_->GetDataset(c.id)->acknowledged_through, 1u);
  EXPECT_EQ(store_->AppendChunk(c.id, 99, false, c.chunks[1]).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(store_->AppendChunk("00", 0, false, c.chunks[0]).status().code(),
            StatusCode::kNotFound);
  // Only the dataset's segment file exists, and only the acknowledged chunk reads back.
  EXPECT_THAT(ListBlobFiles(dir_.path()), ElementsAre(SegmentFileName(c.id)));
  EXPECT_EQ(store_->ReadChunk(c.id, 1).status().code(), StatusCode::kOutOfRange);
}

TEST_F(StoreTest, AppendChunksStoresAGroupAllOrNothing) {
  TestContainer c = MakeContainer(5);
  ASSERT_TRUE(store_->BeginDataset(kAlice, "g", c.header, c.key).ok());
  auto views = [&](uint64_t from, uint64_t to) {
    std::vector<Store::ChunkToStore> out;
    for (uint64_t i = from; i < to; ++i) {
      out.push_back({i, i + 1 == c.chunks.size(), c.chunks[i]});
    }
    return out;
  };
  // A group with a chunk that fails authentication in its middle stores nothing.
  std::vector<Store::ChunkToStore> bad = views(0, 4);
  Bytes tampered = c.chunks[2];
  tampered[7] ^= 1;
  bad[2].sealed = tampered;
  auto refused = store_->AppendChunks(c.id, bad);
  EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(), HasSubstr("chunk 2"));
  EXPECT_EQ(store_->GetDataset(c.id)->acknowledged_through, 0u);
  // A gap inside a group is refused too.
  std::vector<Store::ChunkToStore> gap = views(0, 4);
  gap.erase(gap.begin() + 1);
  EXPECT_EQ(store_->AppendChunks(c.id, gap).status().code(), StatusCode::kFailedPrecondition);
  // Good groups: 0..2, then an overlapping re-send of 1..2 followed by new 3..5.
  auto first = store_->AppendChunks(c.id, views(0, 3));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->acknowledged_through, 3u);
  EXPECT_FALSE(first->complete);
  Reopen();
  auto rest = store_->AppendChunks(c.id, views(1, c.chunks.size()));
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->acknowledged_through, c.chunks.size());
  EXPECT_TRUE(rest->complete);
  Reopen();
  ExpectChunksIntact(c, c.chunks.size());
  auto log = store_->ListAudit(kAlice, 1);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->back().event, "dataset.upload");
}

TEST_F(StoreTest, BeginDatasetResumesOrRefuses) {
  TestContainer c = MakeContainer(4);
  ASSERT_TRUE(store_->BeginDataset(kAlice, "d", c.header, c.key).ok());
  ASSERT_TRUE(store_->AppendChunk(c.id, 0, false, c.chunks[0]).ok());
  ASSERT_TRUE(store_->AppendChunk(c.id, 1, false, c.chunks[1]).ok());
  Reopen();
  auto resumed = store_->BeginDataset(kAlice, "d", c.header, c.key);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->acknowledged_through, 2u);

  TestContainer other = MakeContainer(5);
  auto clash = store_->BeginDataset(kAlice, "d", other.header, other.key);
  EXPECT_EQ(clash.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(clash.status().message(), HasSubstr("unfinished upload"));
  // Same name for another owner is fine; the same container id twice is not.
  EXPECT_TRUE(store_->BeginDataset(kBob, "d", other.header, other.key).ok());
  EXPECT_EQ(store_->BeginDataset(kBob, "d2", c.header, c.key).status().code(),
            StatusCode::kAlreadyExists);

  Bytes wrong_key = c.key;
  wrong_key[0] ^= 1;
  auto bad_key = store_->BeginDataset(kAlice, "d3", MakeContainer(6).header, wrong_key);
  EXPECT_EQ(bad_key.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(bad_key.status().message(), HasSubstr("wrong key"));
  Bytes bad_header = MakeContainer(7).header;
  bad_header[bad_header.size() - 1] ^= 1;
  EXPECT_EQ(store_->BeginDataset(kAlice, "d4", bad_header, MakeContainer(7).key).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(store_->BeginDataset(kAlice, "d5", Bytes(10, 0), c.key).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginDataset(kAlice, "", c.header, c.key).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginDataset(kProvider, "p", MakeContainer(8).header, MakeContainer(8).key)
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->BeginDataset(std::string(64, 'e'), "p", MakeContainer(8).header,
                                 MakeContainer(8).key)
                .status()
                .code(),
            StatusCode::kNotFound);

  for (uint64_t i = 2; i < c.chunks.size(); ++i) {
    ASSERT_TRUE(store_->AppendChunk(c.id, i, i + 1 == c.chunks.size(), c.chunks[i]).ok());
  }
  auto complete = store_->BeginDataset(kAlice, "d", c.header, c.key);
  EXPECT_EQ(complete.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(complete.status().message(), HasSubstr("chiron dataset delete d"));
}

// ---- tampering by the host ----------------------------------------------------------------------

TEST_F(StoreTest, TamperedSealedColumnIsDataLossNamingTheRow) {
  TestContainer c = MakeContainer(10);
  TestContainer d = MakeContainer(11);
  Upload(kAlice, "first", c);
  Upload(kAlice, "second", d);
  Close();
  // Flip one byte of the sealed name.
  ExecSql(dir_.path(), "UPDATE datasets SET sealed_name = "
                       "substr(sealed_name, 1, 20) || x'ff' || substr(sealed_name, 22) "
                       "WHERE id = '" + c.id + "'");
  Reopen();
  auto tampered = store_->GetDataset(c.id);
  EXPECT_EQ(tampered.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(tampered.status().message(),
              HasSubstr("datasets.name of " + kAlice + "/" + c.id + " failed authentication"));
  EXPECT_TRUE(store_->GetDataset(d.id).ok()) << "other rows are unaffected";
  Close();
  // Swap the data keys of two datasets: each sealed key is bound to its row.
  Bytes key_c = QueryBlob(dir_.path(), "SELECT sealed_data_key FROM datasets WHERE id='" + c.id + "'");
  Bytes key_d = QueryBlob(dir_.path(), "SELECT sealed_data_key FROM datasets WHERE id='" + d.id + "'");
  ExecSql(dir_.path(), "UPDATE datasets SET sealed_data_key = x'" + HexEncode(key_c) +
                           "' WHERE id = '" + d.id + "'");
  Reopen();
  auto swapped = store_->GetDataKey(d.id);
  EXPECT_EQ(swapped.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(swapped.status().message(), HasSubstr("datasets.data_key of " + kAlice + "/" + d.id));
  EXPECT_EQ(store_->ReadChunk(d.id, 0).status().code(), StatusCode::kDataLoss);
  Close();
  // A principal's display name moved to another principal.
  Bytes name = QueryBlob(dir_.path(), "SELECT sealed_display_name FROM principals WHERE id='" + kAlice + "'");
  ExecSql(dir_.path(), "UPDATE principals SET sealed_display_name = x'" + HexEncode(name) +
                           "' WHERE id = '" + kBob + "'");
  Reopen();
  EXPECT_THAT(store_->GetPrincipal(kBob).status().message(),
              HasSubstr("principals.display_name of " + kBob));
  (void)key_d;
}

TEST_F(StoreTest, TamperedOrSwappedBlobFileIsDataLoss) {
  TestContainer c = MakeContainer(12);
  TestContainer d = MakeContainer(13);
  Upload(kAlice, "c", c);
  Upload(kBob, "d", d);
  Close();
  const std::string blobs = dir_.path() + "/blobs/";
  const std::string c_segment = blobs + SegmentFileName(c.id);
  const std::string d_segment = blobs + SegmentFileName(d.id);
  const dataset::ContainerHeader header = *dataset::ParseContainerHeader(c.header);
  auto at = [&](uint64_t index) { return static_cast<size_t>(SegmentOffset(header, index)); };
  Bytes c_file = ReadWholeFile(c_segment);
  Bytes d_file = ReadWholeFile(d_segment);
  ASSERT_EQ(c_file, c.Segment());
  ASSERT_EQ(c_file.size(), d_file.size());
  // One flipped byte in chunk 2 of c.
  c_file[at(2) + 30] ^= 0x40;
  // Chunk 1 of the two datasets swapped (same position, same size, another dataset's key).
  for (size_t i = at(1); i < at(2); ++i) std::swap(c_file[i], d_file[i]);
  // Chunks 1 and 3 of d swapped (same dataset and key, another position).
  for (size_t i = 0; i < at(1) - at(0); ++i) std::swap(d_file[at(3) + i], d_file[at(1) + i]);
  WriteWholeFile(c_segment, c_file);
  WriteWholeFile(d_segment, d_file);
  Reopen();
  auto flipped = store_->ReadChunk(c.id, 2);
  EXPECT_EQ(flipped.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(flipped.status().message(), HasSubstr("dataset " + c.id + " chunk 2"));
  EXPECT_THAT(flipped.status().message(), HasSubstr("does not hold the chunk that was acknowledged"));
  for (const auto& [id, index] : {std::pair{c.id, 1}, std::pair{d.id, 1}, std::pair{d.id, 3}}) {
    auto swapped = store_->ReadChunk(id, index);
    EXPECT_EQ(swapped.status().code(), StatusCode::kDataLoss);
    EXPECT_THAT(swapped.status().message(),
                HasSubstr("dataset " + id + " chunk " + std::to_string(index)));
  }
  // Untouched chunks still read.
  EXPECT_EQ(*store_->ReadChunk(c.id, 0), c.chunks[0]);
  EXPECT_EQ(*store_->ReadChunk(d.id, 2), d.chunks[2]);
  // A truncated segment: the chunks past its end are reported missing; before it still read.
  Close();
  c_file.resize(at(4) + 10);
  WriteWholeFile(c_segment, c_file);
  Reopen();
  auto truncated = store_->ReadChunk(c.id, 4);
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(truncated.status().message(), HasSubstr("missing or shorter than the catalog says"));
  EXPECT_EQ(*store_->ReadChunk(c.id, 3), c.chunks[3]);
  // A removed segment.
  Close();
  ASSERT_TRUE(FileSystem::Default()->RemoveFile(d_segment).ok());
  Reopen();
  auto missing = store_->ReadChunk(d.id, 0);
  EXPECT_EQ(missing.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(missing.status().message(), HasSubstr("missing or shorter than the catalog says"));
}

TEST_F(StoreTest, WrongSealingKeyDoesNotOpen) {
  Close();
  auto other = Store::Open(dir_.path(), SecretBytes(SeededBytes(43, 32)), &fs_);
  EXPECT_EQ(other.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(other.status().message(), HasSubstr("sealed with a different key"));
  EXPECT_EQ(Store::Open(dir_.path(), SecretBytes(Bytes(16, 0)), &fs_).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, OneProcessAtATime) {
  auto second = Store::Open(dir_.path(), SecretBytes(root_key_), &fs_);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use by another process"));
}

// ---- disk full ----------------------------------------------------------------------------------

TEST_F(StoreTest, DiskFullDuringAppendLosesNothingAndRetrySucceeds) {
  TestContainer c = MakeContainer(20);
  ASSERT_TRUE(store_->BeginDataset(kAlice, "d", c.header, c.key).ok());
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(store_->AppendChunk(c.id, i, false, c.chunks[i]).ok());
  fs_.SetSpaceLeft(20);  // less than one sealed chunk
  auto full = store_->AppendChunk(c.id, 3, false, c.chunks[3]);
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("No space left on device"));
  EXPECT_THAT(full.status().message(), HasSubstr("nothing was changed"));
  EXPECT_EQ(store_->GetDataset(c.id)->acknowledged_through, 3u);
  EXPECT_EQ(store_->ReadChunk(c.id, 3).status().code(), StatusCode::kOutOfRange);
  ExpectChunksIntact(c, 3);
  // A second attempt while still full fails the same way.
  EXPECT_EQ(store_->AppendChunk(c.id, 3, false, c.chunks[3]).status().code(),
            StatusCode::kResourceExhausted);
  // The failed write left a few bytes past the committed end of the segment: invisible (the
  // catalog's acknowledged_through decides), and overwritten by the retry.
  const std::string segment = dir_.path() + "/blobs/" + SegmentFileName(c.id);
  const dataset::ContainerHeader header = *dataset::ParseContainerHeader(c.header);
  EXPECT_EQ(ReadWholeFile(segment).size(), SegmentOffset(header, 3) + 20);
  Reopen();
  EXPECT_EQ(ListBlobFiles(dir_.path()).size(), 1u);
  EXPECT_EQ(store_->ReadChunk(c.id, 3).status().code(), StatusCode::kOutOfRange);
  ExpectChunksIntact(c, 3);
  // Space frees up: the retry works and the upload completes.
  fs_.SetSpaceLeft(std::nullopt);
  auto retried = store_->AppendChunk(c.id, 3, false, c.chunks[3]);
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(retried->acknowledged_through, 4u);
  for (uint64_t i = 4; i < c.chunks.size(); ++i) {
    ASSERT_TRUE(store_->AppendChunk(c.id, i, i + 1 == c.chunks.size(), c.chunks[i]).ok());
  }
  Reopen();
  EXPECT_EQ(ListBlobFiles(dir_.path()).size(), 1u);
  EXPECT_EQ(ReadWholeFile(segment), c.Segment());
  ExpectChunksIntact(c, c.chunks.size());
}

TEST_F(StoreTest, DiskFullDuringBlobReplaceKeepsThePreviousGeneration) {
  Bytes v1 = SeededBytes(1, 5000);
  ASSERT_TRUE(store_->PutBlob(BlobKind::kModel, "m1", kAlice, v1, ToBytes("meta1")).ok());
  fs_.SetSpaceLeft(100);
  auto full = store_->PutBlob(BlobKind::kModel, "m1", kAlice, SeededBytes(2, 5000), {});
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  fs_.SetSpaceLeft(std::nullopt);
  auto data = store_->GetBlob(BlobKind::kModel, "m1");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(Bytes(data->span().begin(), data->span().end()), v1);
  EXPECT_EQ(store_->GetBlobInfo(BlobKind::kModel, "m1")->metadata, ToBytes("meta1"));
  // An injected failure of another kind passes through unchanged in code.
  fs_.FailWrite(1, UnavailableError("injected I/O error"));
  auto failed = store_->PutBlob(BlobKind::kModel, "m2", kAlice, v1, {});
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store_->GetBlobInfo(BlobKind::kModel, "m2").status().code(), StatusCode::kNotFound);
}

// ---- crypto-shredding ---------------------------------------------------------------------------

TEST_F(StoreTest, DeleteShredsTheDatasetBeyondRecovery) {
  TestContainer victim = MakeContainer(30);
  TestContainer keep = MakeContainer(31);
  Upload(kAlice, "victim", victim);
  Upload(kAlice, "keep", keep);
  ASSERT_TRUE(store_->PutBlob(BlobKind::kModel, "model-1", kAlice, SeededBytes(5, 300), {}).ok());
  Close();

  // What a host could have copied before the delete: the segment file (the owner's chunks under
  // the data key) and the sealed columns.
  const std::string blobs = dir_.path() + "/blobs/";
  const Bytes leftover_segment = ReadWholeFile(blobs + SegmentFileName(victim.id));
  const dataset::ContainerHeader victim_header = *dataset::ParseContainerHeader(victim.header);
  std::vector<Bytes> leftover_chunks;
  for (size_t i = 0; i < victim.chunks.size(); ++i) {
    auto from = leftover_segment.begin() + static_cast<long>(SegmentOffset(victim_header, i));
    leftover_chunks.emplace_back(from, from + static_cast<long>(victim.chunks[i].size()));
    ASSERT_EQ(leftover_chunks.back(), victim.chunks[i]);
  }
  const std::string where = " FROM datasets WHERE id='" + victim.id + "'";
  std::vector<Bytes> sealed_columns = {QueryBlob(dir_.path(), "SELECT sealed_data_key" + where),
                                       QueryBlob(dir_.path(), "SELECT sealed_name" + where),
                                       QueryBlob(dir_.path(), "SELECT sealed_header" + where)};
  for (const Bytes& sealed : sealed_columns) {
    ASSERT_GT(sealed.size(), kSealedOverhead);
    // Positive control: the scan below does find them while the dataset exists.
    EXPECT_THAT(FilesContaining(dir_.path(), sealed), ::testing::Not(IsEmpty()));
  }

  Reopen();
  auto deleted = store_->DeleteDataset(kAlice, "victim");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, victim.id);
  EXPECT_EQ(store_->GetDataset(victim.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadChunk(victim.id, 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteDataset(kAlice, "victim").status().code(), StatusCode::kNotFound);

  // Everything the runtime still holds: the root and derived keys, every remaining dataset's
  // data key, every remaining blob's item and file keys.
  SealingKeys keys = *SealingKeys::Derive(root_key_);
  std::vector<Bytes> held = {root_key_};
  for (const SecretBytes* k : {&keys.catalog, &keys.blob, &keys.audit, &keys.index, &keys.check}) {
    held.emplace_back(k->span().begin(), k->span().end());
  }
  std::vector<DatasetRecord> remaining = *store_->ListDatasets(kAlice);
  for (const DatasetRecord& r : remaining) {
    SecretBytes data_key = *store_->GetDataKey(r.id);
    held.emplace_back(data_key.span().begin(), data_key.span().end());
  }
  Close();
  Bytes item_key_sealed = QueryBlob(dir_.path(), "SELECT sealed_item_key FROM blobs");
  SecretBytes item_key = *Unseal(keys.catalog.span(), "blobs.item_key",
                                 BlobRowName(BlobKind::kModel, "model-1", kAlice) + "/1",
                                 item_key_sealed);
  held.emplace_back(item_key.span().begin(), item_key.span().end());
  SecretBytes file_key = *DeriveItemKey(keys.blob.span(), item_key.span(), "model", "model-1");
  held.emplace_back(file_key.span().begin(), file_key.span().end());
  ASSERT_EQ(held.size(), 9u);

  // 1. No file of the state directory holds the destroyed key, in plaintext or sealed, nor any
  //    other sealed column of the dataset (the WAL was checkpointed and truncated).
  EXPECT_THAT(FilesContaining(dir_.path(), victim.key), IsEmpty());
  for (const Bytes& sealed : sealed_columns) {
    EXPECT_THAT(FilesContaining(dir_.path(), sealed), IsEmpty());
  }
  // 2. Its segment file is gone.
  for (const std::string& name : ListBlobFiles(dir_.path())) {
    EXPECT_EQ(name.find(victim.id), std::string::npos) << name;
  }
  // 3. The copied chunks open under no key the runtime still holds, and the copied sealed data
  //    key opens under none either.
  for (const Bytes& key : held) {
    // Not the data key: the header's key check (an HKDF of the data key) refuses it ...
    auto as_data_key = dataset::DatasetReader::Open(key, victim.header);
    EXPECT_EQ(as_data_key.status().code(), StatusCode::kDataLoss);
    // ... nor the chunk key derived from it: the chunks, with the container's nonces and
    // associated data, fail to open under it directly.
    auto opener = crypto::AeadStreamOpener::Create(key, victim_header.stream_aad(),
                                                   victim_header.nonce_prefix);
    ASSERT_TRUE(opener.ok());
    for (size_t i = 0; i < leftover_chunks.size(); ++i) {
      EXPECT_FALSE(opener->OpenChunk(i, leftover_chunks[i], i + 1 == leftover_chunks.size()).ok());
    }
  }
  // The catalog key does open the copied sealed key (that is why the delete must remove every
  // copy of it from the disk, which (1) checked) ...
  EXPECT_TRUE(Unseal(keys.catalog.span(), "datasets.data_key", DatasetRowName(kAlice, victim.id),
                     sealed_columns[0])
                  .ok());
  // ... and positive control: the destroyed key was the one that mattered.
  auto reader = dataset::DatasetReader::Open(victim.key, victim.header);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(reader->OpenChunk(0, leftover_chunks[0]).ok());

  // 4. The other dataset and the model are intact; the delete is in the owner's audit log.
  Reopen();
  ExpectChunksIntact(keep, keep.chunks.size());
  EXPECT_TRUE(store_->GetBlob(BlobKind::kModel, "model-1").ok());
  auto log = store_->ListAudit(kAlice, 1);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->back().event, "dataset.delete");
  EXPECT_EQ(log->back().subject, "victim (" + victim.id + ")");
}

TEST_F(StoreTest, DeleteBlobShredsItsKey) {
  Bytes data = SeededBytes(8, 2000);
  ASSERT_TRUE(store_->PutBlob(BlobKind::kCheckpoint, "ck", kAlice, data, {}).ok());
  Close();
  Bytes file = ReadWholeFile(dir_.path() + "/blobs/" + BlobFileName(BlobKind::kCheckpoint, "ck", 1));
  Bytes sealed_key = QueryBlob(dir_.path(), "SELECT sealed_item_key FROM blobs");
  Reopen();
  ASSERT_TRUE(store_->DeleteBlob(BlobKind::kCheckpoint, "ck",
                                 AuditEvent{kAlice, "checkpoint.delete", "ck"})
                  .ok());
  Close();
  EXPECT_THAT(FilesContaining(dir_.path(), sealed_key), IsEmpty());
  EXPECT_THAT(ListBlobFiles(dir_.path()), IsEmpty());
  SealingKeys keys = *SealingKeys::Derive(root_key_);
  for (const SecretBytes* k : {&keys.catalog, &keys.blob, &keys.audit, &keys.index, &keys.check}) {
    EXPECT_FALSE(Unseal(k->span(), "blob.checkpoint",
                        BlobRowName(BlobKind::kCheckpoint, "ck", kAlice) + "/1", file)
                     .ok());
  }
  Reopen();
  EXPECT_EQ(store_->GetBlob(BlobKind::kCheckpoint, "ck").status().code(), StatusCode::kNotFound);
}

// ---- quotas -------------------------------------------------------------------------------------

TEST_F(StoreTest, QuotasGiveClearErrors) {
  TestContainer a = MakeContainer(40);
  TestContainer b = MakeContainer(41);
  TestContainer big = MakeContainer(42, 200);
  StoreLimits limits;
  limits.max_datasets_per_owner = 2;
  limits.max_bytes_per_owner = a.Whole().size() + b.Whole().size() + 100;
  Reopen(limits);
  Upload(kAlice, "a", a);
  auto usage = store_->GetUsage(kAlice);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->bytes_used, a.Whole().size());
  EXPECT_EQ(usage->datasets, 1u);
  auto too_big = store_->BeginDataset(kAlice, "big", big.header, big.key);
  EXPECT_EQ(too_big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(too_big.status().message(),
              HasSubstr("owner " + kAlice + " uses " + std::to_string(a.Whole().size()) + " of " +
                        std::to_string(limits.max_bytes_per_owner) + " bytes"));
  EXPECT_THAT(too_big.status().message(),
              HasSubstr("delete a dataset (chiron dataset delete NAME) or ask the operator"));
  Upload(kAlice, "b", b);
  auto third = store_->BeginDataset(kAlice, "c", MakeContainer(43, 1).header,
                                    MakeContainer(43, 1).key);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("has 2 of 2 datasets"));
  // Blobs count against the same byte quota.
  auto blob = store_->PutBlob(BlobKind::kModel, "m", kAlice, Bytes(200, 1), {});
  EXPECT_EQ(blob.status().code(), StatusCode::kResourceExhausted);
  // Another owner is unaffected; deleting frees the quota.
  EXPECT_TRUE(store_->BeginDataset(kBob, "c", MakeContainer(43, 1).header,
                                   MakeContainer(43, 1).key)
                  .ok());
  ASSERT_TRUE(store_->DeleteDataset(kAlice, "a").ok());
  EXPECT_TRUE(store_->PutBlob(BlobKind::kModel, "m", kAlice, Bytes(200, 1), {}).ok());
  EXPECT_EQ(store_->GetUsage(kAlice)->bytes_used, b.Whole().size() + 200);

  // An unmetered principal (chirond's built-in recipes) is not held to the quota; the others
  // still are.
  limits.unmetered_principals = {kBob};
  Reopen(limits);
  EXPECT_TRUE(store_->PutBlob(BlobKind::kRecipe, "builtin", kBob,
                              Bytes(limits.max_bytes_per_owner + 1, 2), {})
                  .ok());
  EXPECT_EQ(store_->PutBlob(BlobKind::kModel, "m2", kAlice, Bytes(limits.max_bytes_per_owner, 1),
                            {})
                .status()
                .code(),
            StatusCode::kResourceExhausted);
}

// ---- generic blobs ------------------------------------------------------------------------------

TEST_F(StoreTest, BlobsRoundTripReplaceAndRefuseOldGenerations) {
  Bytes v1 = SeededBytes(50, 1000);
  Bytes v2 = SeededBytes(51, 1200);
  auto put = store_->PutBlob(BlobKind::kRecipe, "mlp.v1", kProvider, v1, ToBytes("card"),
                             AuditEvent{kProvider, "recipe.register", "mlp.v1"});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->generation, 1u);
  EXPECT_EQ(store_->PutBlob(BlobKind::kRecipe, "mlp.v1", kAlice, v1, {}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->PutBlob(BlobKind::kRecipe, "../x", kProvider, v1, {}).status().code(),
            StatusCode::kInvalidArgument);
  Close();
  Bytes old_file = ReadWholeFile(dir_.path() + "/blobs/" +
                                 BlobFileName(BlobKind::kRecipe, "mlp.v1", 1));
  Reopen();
  auto replaced = store_->PutBlob(BlobKind::kRecipe, "mlp.v1", kProvider, v2, ToBytes("card2"));
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->generation, 2u);
  EXPECT_EQ(replaced->created_unix, put->created_unix);
  SecretBytes got = *store_->GetBlob(BlobKind::kRecipe, "mlp.v1");
  EXPECT_EQ(Bytes(got.span().begin(), got.span().end()), v2);
  EXPECT_EQ(ListBlobFiles(dir_.path()).size(), 1u) << "the old generation's file is removed";
  auto updated = store_->UpdateBlobMetadata(BlobKind::kRecipe, "mlp.v1", ToBytes("card3"));
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(store_->GetBlobInfo(BlobKind::kRecipe, "mlp.v1")->metadata, ToBytes("card3"));
  ASSERT_TRUE(store_->PutBlob(BlobKind::kJob, "job-1", kAlice, {}, ToBytes("queued")).ok());
  ASSERT_TRUE(store_->PutBlob(BlobKind::kJob, "job-2", kBob, {}, ToBytes("queued")).ok());
  EXPECT_EQ(store_->ListBlobs(BlobKind::kJob)->size(), 2u);
  ASSERT_EQ(store_->ListBlobs(BlobKind::kJob, kBob)->size(), 1u);
  EXPECT_EQ((*store_->ListBlobs(BlobKind::kJob, kBob))[0].id, "job-2");
  EXPECT_EQ(store_->ListBlobs(BlobKind::kModel)->size(), 0u);
  Close();
  // The host puts the old generation's file back under the new name: refused.
  WriteWholeFile(dir_.path() + "/blobs/" + BlobFileName(BlobKind::kRecipe, "mlp.v1", 2), old_file);
  Reopen();
  auto rolled_back = store_->GetBlob(BlobKind::kRecipe, "mlp.v1");
  EXPECT_EQ(rolled_back.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(rolled_back.status().message(), HasSubstr("recipe 'mlp.v1'"));
  EXPECT_THAT(rolled_back.status().message(), HasSubstr("replaced by an older copy"));
  auto log = *store_->ListAudit(kProvider, 1);
  EXPECT_EQ(log.back().event, "recipe.register");
}

// ---- audit --------------------------------------------------------------------------------------

TEST_F(StoreTest, AuditChainsArePerPrincipalAndVerify) {
  TestContainer c = MakeContainer(60);
  Upload(kAlice, "d", c);
  ASSERT_TRUE(store_->AppendAudit({kAlice, "job.train", "job-1 on d"}).ok());
  ASSERT_TRUE(store_->AppendAudit({kAlice, "model.predict", "m1: 10 samples"}).ok());
  ASSERT_TRUE(store_->DeleteDataset(kAlice, "d").ok());
  EXPECT_EQ(store_->AppendAudit({kAlice, "Bad Event", ""}).status().code(),
            StatusCode::kInvalidArgument);
  Reopen();
  auto alice = store_->ListAudit(kAlice, 1);
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  std::vector<std::string> events;
  for (const auto& r : *alice) events.push_back(r.event);
  EXPECT_EQ(events, (std::vector<std::string>{"principal.register", "dataset.create",
                                              "dataset.upload", "job.train", "model.predict",
                                              "dataset.delete"}));
  EXPECT_TRUE(audit::VerifyAuditChain(*alice, std::nullopt, kAlice).ok());
  auto bob = store_->ListAudit(kBob, 1);
  ASSERT_EQ(bob->size(), 1u) << "Bob sees only his own chain";
  EXPECT_TRUE(audit::VerifyAuditChain(*bob, std::nullopt, kBob).ok());
  auto tail = store_->ListAudit(kAlice, 4);
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_TRUE(
      audit::VerifyAuditChain(*tail, audit::AuditHead{3, (*alice)[2].hash}, kAlice).ok());
  Close();
  EXPECT_THAT(FilesContaining(dir_.path(), AsBytes("model.predict")), IsEmpty())
      << "audit records are sealed at rest";
}

TEST_F(StoreTest, AuditTamperingAtRestIsDetected) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->AppendAudit({kAlice, "model.predict", "q" + std::to_string(i)}).ok());
  }
  auto before = *store_->ListAudit(kAlice, 1);
  ASSERT_EQ(before.size(), 6u);
  audit::AuditHead seen{before.back().sequence, before.back().hash};
  Close();
  const std::string snapshot = dir_.path() + "-snapshot";
  std::filesystem::copy(dir_.path(), snapshot, std::filesystem::copy_options::recursive);

  // Removed record: the chain has a gap the client's verifier names.
  ExecSql(dir_.path(), "DELETE FROM audit WHERE principal_id='" + kAlice + "' AND sequence=3");
  Reopen();
  auto removed = *store_->ListAudit(kAlice, 1);
  Status status = audit::VerifyAuditChain(removed, seen, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("expected record 3 after record 2 but got record 4"));
  Close();

  // Reordered (two sealed records swapped between rows): their seals are bound to the row.
  std::filesystem::remove_all(dir_.path());
  std::filesystem::copy(snapshot, dir_.path(), std::filesystem::copy_options::recursive);
  Bytes r2 = QueryBlob(dir_.path(), "SELECT sealed_record FROM audit WHERE sequence=2 AND principal_id='" + kAlice + "'");
  Bytes r4 = QueryBlob(dir_.path(), "SELECT sealed_record FROM audit WHERE sequence=4 AND principal_id='" + kAlice + "'");
  ExecSql(dir_.path(), "UPDATE audit SET sealed_record=x'" + HexEncode(r4) +
                           "' WHERE sequence=2 AND principal_id='" + kAlice + "'");
  ExecSql(dir_.path(), "UPDATE audit SET sealed_record=x'" + HexEncode(r2) +
                           "' WHERE sequence=4 AND principal_id='" + kAlice + "'");
  Reopen();
  auto reordered = store_->ListAudit(kAlice, 1);
  EXPECT_EQ(reordered.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(reordered.status().message(), HasSubstr("audit.record of " + kAlice + "/2"));
  Close();

  // Altered: one byte of a sealed record.
  ExecSql(dir_.path(), "UPDATE audit SET sealed_record = substr(sealed_record, 1, 30) || x'00' || "
                       "substr(sealed_record, 32) WHERE sequence=5");
  Reopen();
  EXPECT_EQ(store_->ListAudit(kAlice, 1).status().code(), StatusCode::kDataLoss);
  Close();

  // Rolled back: the host restores an older copy of the whole directory; the chain verifies on
  // its own, but not against the head the client saw.
  std::filesystem::remove_all(dir_.path());
  std::filesystem::copy(snapshot, dir_.path(), std::filesystem::copy_options::recursive);
  ExecSql(dir_.path(), "DELETE FROM audit WHERE sequence >= 5");
  Reopen();
  auto truncated = *store_->ListAudit(kAlice, 1);
  EXPECT_TRUE(audit::VerifyAuditChain(truncated, std::nullopt, kAlice).ok());
  status = audit::VerifyAuditChain(truncated, seen, kAlice);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("ends at record 4 but record 6 was seen before"));
  std::filesystem::remove_all(snapshot);
}

TEST_F(StoreTest, AuditRecordCommitsWithItsEvent) {
  // A dataset whose creation fails (quota) leaves no audit record, and vice versa every
  // successful creation has exactly one.
  StoreLimits limits;
  limits.max_datasets_per_owner = 1;
  Reopen(limits);
  TestContainer a = MakeContainer(70);
  TestContainer b = MakeContainer(71);
  ASSERT_TRUE(store_->BeginDataset(kAlice, "a", a.header, a.key).ok());
  ASSERT_FALSE(store_->BeginDataset(kAlice, "b", b.header, b.key).ok());
  auto log = *store_->ListAudit(kAlice, 1);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].event, "dataset.create");
  EXPECT_EQ(log[1].subject, "a (" + a.id + ")");
}

}  // namespace
}  // namespace chiron::store
