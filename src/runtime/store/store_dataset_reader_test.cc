// StoredDatasetReader's contract at the store's level (the loader's tests in
// src/runtime/jobs/dataset_loader_test.cc cover a whole load, concurrency and tampering).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/store/store.h"
#include "runtime/store/store_test_util.h"
#include "shared/dataset/container.h"

namespace chiron::store {
namespace {

using ::testing::HasSubstr;
using testing::MakeContainer;
using testing::SeededBytes;
using testing::TestContainer;

const std::string kOwner(64, 'a');

class StoredDatasetReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path(), SecretBytes(SeededBytes(3, 32)), nullptr);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->RegisterPrincipal(kOwner, Role::kOwner, "Owner").ok());
    ASSERT_TRUE(store_->BeginDataset(kOwner, "d", c_.header, c_.key).ok());
    for (uint64_t i = 0; i < 3; ++i) {  // 3 of 6 chunks: an upload in progress
      ASSERT_TRUE(store_->AppendChunk(c_.id, i, false, c_.chunks[i]).ok());
    }
  }

  SecretBytes Chunk(const StoredDatasetReader& reader, uint64_t index) {
    return SecretBytes(reader.record().header.plaintext_chunk_size(index));
  }

  testing::TempDir dir_;
  TestContainer c_ = MakeContainer(21);  // 22 samples, 6 chunks
  std::unique_ptr<Store> store_;
};

TEST_F(StoredDatasetReaderTest, ReadsTheAcknowledgedChunksOfTheRecordItWasOpenedWith) {
  auto reader = store_->OpenDatasetReader(c_.id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->record().acknowledged_through, 3u);
  EXPECT_FALSE((*reader)->record().complete);
  auto opener = dataset::DatasetReader::Open(c_.key, c_.header);
  ASSERT_TRUE(opener.ok());
  for (uint64_t i = 0; i < 3; ++i) {
    SecretBytes plain = Chunk(**reader, i);
    ASSERT_TRUE((*reader)->OpenChunkInto(i, plain.mutable_span()).ok());
    auto expected = opener->OpenChunk(i, c_.chunks[i]);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(std::equal(plain.span().begin(), plain.span().end(), expected->span().begin(),
                           expected->span().end()));
  }
  // Chunks stored after the reader was opened are not its to read.
  ASSERT_TRUE(store_->AppendChunk(c_.id, 3, false, c_.chunks[3]).ok());
  SecretBytes plain = Chunk(**reader, 3);
  EXPECT_EQ((*reader)->OpenChunkInto(3, plain.mutable_span()).code(), StatusCode::kOutOfRange);
}

TEST_F(StoredDatasetReaderTest, WrongBufferSizeIsInvalidArgumentAndUnknownIdNotFound) {
  auto reader = store_->OpenDatasetReader(c_.id);
  ASSERT_TRUE(reader.ok());
  SecretBytes small((*reader)->record().header.plaintext_chunk_size(0) - 1);
  EXPECT_EQ((*reader)->OpenChunkInto(0, small.mutable_span()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->OpenDatasetReader(std::string(32, 'f')).status().code(), StatusCode::kNotFound);
}

TEST_F(StoredDatasetReaderTest, AfterTheDatasetIsDeletedEveryReadFailsAndZeroesTheBuffer) {
  auto reader = store_->OpenDatasetReader(c_.id);
  auto other = store_->OpenDatasetReader(c_.id);  // readers of one dataset share the mark
  ASSERT_TRUE(reader.ok() && other.ok());
  SecretBytes plain = Chunk(**reader, 0);
  ASSERT_TRUE((*reader)->OpenChunkInto(0, plain.mutable_span()).ok());
  ASSERT_TRUE(store_->DeleteDataset(kOwner, "d").ok());
  for (auto* r : {reader->get(), other->get()}) {
    for (uint64_t i = 0; i < 2; ++i) {
      SecretBytes out = Chunk(*r, 0);
      std::fill(out.data(), out.data() + out.size(), 0x5a);
      Status status = r->OpenChunkInto(0, out.mutable_span());
      EXPECT_EQ(status.code(), StatusCode::kNotFound);
      EXPECT_THAT(status.message(), HasSubstr("was deleted while it was being read"));
      EXPECT_TRUE(
          std::all_of(out.span().begin(), out.span().end(), [](uint8_t b) { return b == 0; }));
    }
  }
  // The reader outlives the store (it needs only the file system).
  store_.reset();
  SecretBytes out = Chunk(**reader, 1);
  EXPECT_EQ((*reader)->OpenChunkInto(1, out.mutable_span()).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace chiron::store
