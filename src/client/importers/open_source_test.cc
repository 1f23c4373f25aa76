#include <gtest/gtest.h>

#include <cstring>

#include "client/importers/cifar_source.h"
#include "client/importers/encrypt.h"
#include "client/importers/sample_source.h"
#include "client/importers/test_files.h"
#include "shared/dataset/container.h"

namespace chiron::importers {
namespace {

using testing::TempDir;

TEST(OpenSourceTest, FormatNames) {
  for (ImportFormat format : {ImportFormat::kAuto, ImportFormat::kIdx, ImportFormat::kCsv,
                              ImportFormat::kCifar, ImportFormat::kPngFolder}) {
    auto parsed = ParseImportFormat(ImportFormatName(format));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, format);
  }
  EXPECT_NE(ParseImportFormat("jpeg").status().message().find("use auto, idx"), std::string::npos);
}

TEST(OpenSourceTest, DetectsEachFormat) {
  TempDir dir;
  std::string idx = dir.Write("t-images-idx3-ubyte.gz",
                              testing::Gzip(testing::IdxBytes({1, 2, 2}, Bytes{1, 2, 3, 4})));
  dir.Write("t-labels-idx1-ubyte.gz", testing::Gzip(testing::IdxBytes({1}, Bytes{0})));
  std::string csv = dir.Write("table.csv", "a,label\n1,x\n");
  std::string bin = dir.Write("cifar/data_batch_1.bin", Bytes(kCifarRecordSize, 1));
  dir.Write("pngs/cat/a.png", testing::PngBytes(1, 1, 1, Bytes{7}));
  std::string other = dir.Write("notes.txt", "hello");

  auto format = DetectFormat(idx);
  ASSERT_TRUE(format.ok());
  EXPECT_EQ(*format, ImportFormat::kIdx);
  EXPECT_EQ(*DetectFormat(csv), ImportFormat::kCsv);
  EXPECT_EQ(*DetectFormat(bin), ImportFormat::kCifar);
  EXPECT_EQ(*DetectFormat(dir.path() + "/cifar"), ImportFormat::kCifar);
  EXPECT_EQ(*DetectFormat(dir.path() + "/pngs"), ImportFormat::kPngFolder);
  EXPECT_NE(DetectFormat(other).status().message().find("name it explicitly"), std::string::npos);
  EXPECT_EQ(DetectFormat(dir.path() + "/missing").status().code(), StatusCode::kNotFound);

  // Each opens through the one factory.
  ImportOptions options;
  for (const std::string& path : {idx, csv, bin, dir.path() + "/pngs"}) {
    auto source = OpenSource(path, options);
    ASSERT_TRUE(source.ok()) << path << ": " << source.status().ToString();
    EXPECT_EQ((*source)->schema().sample_count, 1u);
  }
  options.class_names = {"a"};
  EXPECT_FALSE(OpenSource(dir.path() + "/pngs", options).ok());
  options.class_names.clear();
  options.format = ImportFormat::kCsv;
  EXPECT_FALSE(OpenSource(idx, options).ok());  // binary data is not a CSV header
}

TEST(EncryptSourceTest, CsvRoundTripsThroughTheContainer) {
  TempDir dir;
  std::string text = "f1,f2,label\n";
  for (int i = 0; i < 500; ++i) {
    text +=
        std::to_string(i) + "," + std::to_string(i * 0.5) + "," + (i % 3 ? "odd" : "even") + "\n";
  }
  ImportOptions options;
  auto source = OpenSource(dir.Write("t.csv", text), options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Bytes key(dataset::kDatasetKeySize, 0x42);
  dataset::DatasetId id{};
  id[0] = 1;
  Bytes container;
  size_t pieces = 0;
  dataset::DatasetWriterOptions writer_options;
  writer_options.target_chunk_size = 1000;  // 111 records of 9 bytes per chunk
  auto stats = EncryptSource(
      **source, key, id,
      [&](const dataset::ContainerPiece& piece) {
        ++pieces;
        Append(container, piece.bytes);
        return Status::Ok();
      },
      writer_options);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->samples, 500u);
  EXPECT_EQ(stats->chunks, 5u);
  EXPECT_EQ(pieces, 6u);
  int n = 0;
  Status status = dataset::ReadContainer(key, container, [&](const dataset::Record& record) {
    float f1 = 0;
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= uint32_t{record.sample[b]} << (8 * b);
    std::memcpy(&f1, &bits, 4);
    EXPECT_EQ(f1, static_cast<float>(n));
    EXPECT_EQ(record.label, n % 3 ? 1u : 0u);  // "even" appears first
    ++n;
    return Status::Ok();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(n, 500);
}

TEST(EncryptSourceTest, SourceErrorsStopTheUpload) {
  TempDir dir;
  std::string path = dir.Write("data_batch_1.bin", Bytes(2 * kCifarRecordSize, 200));
  ImportOptions options;
  auto source = OpenSource(path, options);
  ASSERT_TRUE(source.ok());
  size_t chunks = 0;
  auto stats = EncryptSource(**source, Bytes(32, 1), dataset::DatasetId{},
                             [&](const dataset::ContainerPiece& piece) {
                               if (piece.kind == dataset::ContainerPiece::Kind::kChunk) ++chunks;
                               return Status::Ok();
                             });
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("record 0: label 200 is out of range"),
            std::string::npos);
  EXPECT_EQ(chunks, 0u);
}

}  // namespace
}  // namespace chiron::importers
