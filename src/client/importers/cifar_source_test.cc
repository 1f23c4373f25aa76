#include "client/importers/cifar_source.h"

#include <gtest/gtest.h>

#include "client/importers/test_files.h"

namespace chiron::importers {
namespace {

using testing::PullAll;
using testing::TempDir;

// `labels.size()` records; record i has label labels[i] and pixels (i * 31 + p) % 256.
Bytes Batch(const std::vector<uint8_t>& labels, uint32_t seed = 0) {
  Bytes out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.push_back(labels[i]);
    for (size_t p = 0; p < kCifarRecordSize - 1; ++p) {
      out.push_back(static_cast<uint8_t>((seed + i * 31 + p) % 256));
    }
  }
  return out;
}

void ExpectError(const Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
}

TEST(CifarTest, DirectoryImportsTheTrainingBatchesInOrder) {
  TempDir dir;
  dir.Write("cifar/data_batch_2.bin", Batch({9, 8}, 100));
  dir.Write("cifar/data_batch_1.bin", Batch({0, 3, 7}, 0));
  dir.Write("cifar/test_batch.bin", Batch({1}));  // not part of the training set
  auto source = OpenCifarPath(dir.path() + "/cifar", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const dataset::DatasetSchema& schema = (*source)->schema();
  EXPECT_EQ(schema.shape, (std::vector<uint32_t>{3, 32, 32}));
  EXPECT_EQ(schema.sample_count, 5u);
  EXPECT_EQ(schema.class_names, Cifar10ClassNames());
  testing::Pulled pulled = PullAll(**source);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{0, 3, 7, 9, 8}));
  Bytes first = Batch({0}, 0);
  EXPECT_EQ(pulled.samples[0], Bytes(first.begin() + 1, first.end()));
  Bytes fourth = Batch({9}, 100);
  EXPECT_EQ(pulled.samples[3], Bytes(fourth.begin() + 1, fourth.end()));
}

TEST(CifarTest, SingleFileAndMetaNames) {
  TempDir dir;
  std::string names;
  for (int i = 0; i < 10; ++i) names += "class" + std::to_string(i) + "\n";
  dir.Write("c/batches.meta.txt", names + "\n");
  std::string path = dir.Write("c/test_batch.bin", Batch({4, 5}));
  auto source = OpenCifarPath(path, {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().class_names[4], "class4");
  EXPECT_EQ((*source)->schema().sample_count, 2u);
  dir.Write("c/batches.meta.txt", "a\nb\n");
  ExpectError(OpenCifarPath(path, {}).status(), "expected 10 class names");
}

TEST(CifarTest, TruncatedRecord) {
  TempDir dir;
  Bytes batch = Batch({1, 2, 3});
  batch.resize(2 * kCifarRecordSize + 100);
  std::string path = dir.Write("data_batch_1.bin", batch);
  ExpectError(OpenCifarPath(path, {}).status(),
              path +
                  ": 6246 bytes is not a whole number of 3073-byte CIFAR-10 records: record 2 "
                  "is truncated (it has 100 of 3073 bytes)");
  ExpectError(OpenCifarPath(dir.Write("empty.bin", Bytes{}), {}).status(), "empty file");
  Bytes cifar100(3074 * 3, 0);
  ExpectError(OpenCifarPath(dir.Write("c100.bin", cifar100), {}).status(), "CIFAR-100");
}

TEST(CifarTest, LabelOutOfRange) {
  TempDir dir;
  std::string path = dir.Write("data_batch_1.bin", Batch({1, 10, 2}));
  auto source = OpenCifarPath(path, {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  testing::Pulled pulled = PullAll(**source);
  EXPECT_EQ(pulled.samples.size(), 1u);
  ExpectError(pulled.error, path + ": record 1: label 10 is out of range 0..9");
}

TEST(CifarTest, FromMemoryAndShrinkingFile) {
  Bytes batch = Batch({1, 2});
  std::vector<CifarBatch> batches = {
      {"mem", batch.size(),
       [&]() { return Result<std::unique_ptr<InputStream>>(MemoryStream(batch, "mem")); }}};
  auto source = OpenCifarSource(batches, {});
  ASSERT_TRUE(source.ok());
  EXPECT_TRUE(PullAll(**source).error.ok());
  // The declared size says 2 records but the stream holds 1.5.
  Bytes short_batch(batch.begin(), batch.begin() + kCifarRecordSize + 50);
  batches = {{"mem", batch.size(), [&]() {
                return Result<std::unique_ptr<InputStream>>(MemoryStream(short_batch, "mem"));
              }}};
  source = OpenCifarSource(batches, {});
  ASSERT_TRUE(source.ok());
  ExpectError(PullAll(**source).error, "mem: record 1 is truncated");
  ExpectError(OpenCifarSource({}, {}).status(), "no CIFAR-10 batch files");
}

}  // namespace
}  // namespace chiron::importers
