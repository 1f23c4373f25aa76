#include "client/importers/idx_source.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <map>

#include "client/importers/encrypt.h"
#include "client/importers/test_files.h"
#include "shared/crypto/hash.h"
#include "shared/crypto/random.h"
#include "shared/dataset/container.h"

namespace chiron::importers {
namespace {

using testing::Gzip;
using testing::IdxBytes;
using testing::PullAll;
using testing::TempDir;

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

// Reads a whole gzip file through zlib's own gzread: an independent path to the raw bytes.
Bytes GunzipFile(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return {};
  Bytes out;
  uint8_t buffer[65536];
  int got;
  while ((got = gzread(file, buffer, sizeof(buffer))) > 0)
    out.insert(out.end(), buffer, buffer + got);
  gzclose(file);
  return out;
}

struct FashionCase {
  std::string split;
  uint64_t count;
  std::string first_image_sha256;
};

class FashionMnistTest : public ::testing::TestWithParam<FashionCase> {};

TEST_P(FashionMnistTest, ImportsTheRealFiles) {
  const FashionCase& c = GetParam();
  std::string images = kFashionDir + "/" + c.split + "-images-idx3-ubyte.gz";
  // A declared dependency (scripts/install-deps.sh): missing, the test fails, never skips.
  ASSERT_TRUE(std::filesystem::exists(images))
      << images << " is missing: install Debian's dataset-fashion-mnist";
  auto source = OpenIdxFiles(images, "", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const dataset::DatasetSchema& schema = (*source)->schema();
  EXPECT_EQ(schema.sample_count, c.count);
  EXPECT_EQ(schema.shape, (std::vector<uint32_t>{28, 28}));
  EXPECT_EQ(schema.element_type, dataset::ElementType::kUint8);
  EXPECT_EQ(schema.label_type, dataset::LabelType::kUint8);
  EXPECT_EQ(schema.class_names, FashionMnistClassNames());

  Bytes raw_images = GunzipFile(images);
  Bytes raw_labels = GunzipFile(kFashionDir + "/" + c.split + "-labels-idx1-ubyte.gz");
  ASSERT_EQ(raw_images.size(), 16 + c.count * 784);
  ASSERT_EQ(raw_labels.size(), 8 + c.count);

  crypto::Hasher imported(crypto::HashAlgorithm::kSha256);
  std::map<uint32_t, uint64_t> per_class;
  Bytes sample(784);
  uint64_t n = 0;
  while (true) {
    uint32_t label = 99;
    auto more = (*source)->Next(sample, label);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    if (n == 0) {
      EXPECT_EQ(HexEncode(crypto::Sha256(sample)), c.first_image_sha256);
      EXPECT_TRUE(std::equal(sample.begin(), sample.end(), raw_images.begin() + 16));
    }
    ASSERT_LT(label, 10u);
    ASSERT_EQ(label, raw_labels[8 + n]) << "sample " << n;
    ++per_class[label];
    imported.Update(sample);
    ++n;
  }
  EXPECT_EQ(n, c.count);
  EXPECT_EQ(imported.Finish(), crypto::Sha256(ByteSpan(raw_images).subspan(16)));
  // Fashion-MNIST is balanced: every class has a tenth of the samples.
  ASSERT_EQ(per_class.size(), 10u);
  for (auto [label, count] : per_class) EXPECT_EQ(count, c.count / 10) << "class " << label;
}

INSTANTIATE_TEST_SUITE_P(
    Splits, FashionMnistTest,
    ::testing::Values(
        FashionCase{"train", 60000,
                    "5bd44e331a6d6998daf675700cd0c13dcd7af8ab954b7585124124da61459e7b"},
        FashionCase{"t10k", 10000,
                    "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787"}),
    [](const ::testing::TestParamInfo<FashionCase>& info) { return info.param.split; });

TEST(FashionMnistRoundTripTest, EncryptsAndDecryptsTheTestSplitExactly) {
  std::string images = kFashionDir + "/t10k-images-idx3-ubyte.gz";
  // A declared dependency (scripts/install-deps.sh): missing, the test fails, never skips.
  ASSERT_TRUE(std::filesystem::exists(images))
      << images << " is missing: install Debian's dataset-fashion-mnist";
  auto source = OpenIdxFiles(images, "", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto key = crypto::RandomBytes(dataset::kDatasetKeySize);
  auto id = dataset::NewDatasetId();
  ASSERT_TRUE(key.ok() && id.ok());
  Bytes container;
  uint64_t largest_piece = 0;
  auto stats = EncryptSource(**source, *key, *id, [&](const dataset::ContainerPiece& piece) {
    largest_piece = std::max<uint64_t>(largest_piece, piece.bytes.size());
    Append(container, piece.bytes);
    return Status::Ok();
  });
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->samples, 10000u);
  EXPECT_EQ(stats->plaintext_bytes, 10000u * 785);
  EXPECT_EQ(stats->container_bytes, container.size());
  EXPECT_EQ(stats->chunks, 8u);  // 1335 records of 785 bytes per 1 MiB chunk
  // Streaming: no piece handed to the uploader is bigger than one chunk.
  EXPECT_LE(largest_piece, dataset::kDefaultChunkTargetSize + dataset::kChunkTagSize);

  auto again = OpenIdxFiles(images, "", {});
  ASSERT_TRUE(again.ok());
  Bytes expected(784);
  uint64_t n = 0;
  Status status = dataset::ReadContainer(*key, container, [&](const dataset::Record& record) {
    uint32_t label = 0;
    auto more = (*again)->Next(expected, label);
    if (!more.ok() || !*more) return InternalError("re-import ended early");
    if (record.label != label ||
        !std::equal(expected.begin(), expected.end(), record.sample.begin(), record.sample.end())) {
      return InternalError("record " + std::to_string(n) + " differs");
    }
    ++n;
    return Status::Ok();
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(n, 10000u);
}

// ---- small synthetic files ----

class IdxFilesTest : public ::testing::Test {
 protected:
  // 5 images of 3x2 pixels with labels 0..2.
  void SetUp() override {
    for (int i = 0; i < 30; ++i) pixels_.push_back(static_cast<uint8_t>(i * 7));
    images_ = IdxBytes({5, 3, 2}, pixels_);
    labels_ = IdxBytes({5}, Bytes{2, 0, 1, 1, 0});
  }

  // Opens the pair and pulls all samples; returns the error (or OK).
  Status OpenAndPull(ByteSpan images, ByteSpan labels, testing::Pulled* pulled = nullptr,
                     std::vector<std::string> classes = {}) {
    std::string images_path = dir_.Write("x-images-idx3-ubyte", images);
    std::string labels_path = dir_.Write("x-labels-idx1-ubyte", labels);
    auto source = OpenIdxFiles(images_path, labels_path, std::move(classes));
    if (!source.ok()) return source.status();
    testing::Pulled result = PullAll(**source);
    if (pulled != nullptr) *pulled = result;
    return result.error;
  }

  TempDir dir_;
  Bytes pixels_;
  Bytes images_;
  Bytes labels_;
};

TEST_F(IdxFilesTest, ReadsPlainAndGzipFiles) {
  for (bool gzip : {false, true}) {
    testing::Pulled pulled;
    Status status = gzip ? OpenAndPull(Gzip(images_), Gzip(labels_), &pulled)
                         : OpenAndPull(images_, labels_, &pulled);
    ASSERT_TRUE(status.ok()) << status.ToString();
    ASSERT_EQ(pulled.samples.size(), 5u);
    EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{2, 0, 1, 1, 0}));
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(pulled.samples[i], Bytes(pixels_.begin() + 6 * i, pixels_.begin() + 6 * i + 6));
    }
  }
}

TEST_F(IdxFilesTest, SchemaAndDefaultClassNames) {
  std::string images_path = dir_.Write("d/t-images-idx3-ubyte.gz", Gzip(images_));
  dir_.Write("d/t-labels-idx1-ubyte.gz", Gzip(labels_));
  auto source = OpenIdxFiles(images_path, "", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().shape, (std::vector<uint32_t>{3, 2}));
  EXPECT_EQ((*source)->schema().class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ((*source)->schema().sample_count, 5u);
}

TEST_F(IdxFilesTest, LabelsPathIsDerivedFromTheImagesPath) {
  EXPECT_EQ(DefaultIdxLabelsPath("/a/train-images-idx3-ubyte.gz"), "/a/train-labels-idx1-ubyte.gz");
  EXPECT_EQ(DefaultIdxLabelsPath("t10k-images.idx3-ubyte"), "t10k-labels.idx1-ubyte");
  EXPECT_EQ(DefaultIdxLabelsPath("/x-images-idx3-ubyte/data"), "");
  auto source = OpenIdxFiles(dir_.Write("pictures.idx", images_), "", {});
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find("cannot derive the IDX labels file"), std::string::npos);
}

void ExpectError(const Status& status, std::string_view needle) {
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
}

TEST_F(IdxFilesTest, BadMagic) {
  Bytes bad = images_;
  bad[0] = 0x50;  // e.g. a PNG or text file
  ExpectError(OpenAndPull(bad, labels_),
              "x-images-idx3-ubyte: not an IDX file (bad magic 0x50000803");
  bad = images_;
  bad[2] = 0x0D;
  ExpectError(OpenAndPull(bad, labels_), "element type 0x0d (float32) is not supported");
  // Files swapped: the labels file has one dimension.
  ExpectError(OpenAndPull(labels_, images_), "are the images and labels files swapped?");
  ExpectError(OpenAndPull(Bytes{0, 0}, labels_), "truncated IDX header");
}

TEST_F(IdxFilesTest, CountMismatch) {
  ExpectError(OpenAndPull(images_, IdxBytes({4}, Bytes{0, 1, 2, 0})), "has 5 images but");
  ExpectError(OpenAndPull(images_, IdxBytes({4}, Bytes{0, 1, 2, 0})), "has 4 labels");
}

TEST_F(IdxFilesTest, TruncatedGzip) {
  Bytes gz = Gzip(images_);
  gz.resize(gz.size() - 10);  // cuts into the deflate data / trailer
  ExpectError(OpenAndPull(gz, labels_), "truncated gzip data");
  Bytes gz_labels = Gzip(labels_);
  gz_labels.resize(gz_labels.size() / 2);
  ExpectError(OpenAndPull(images_, gz_labels), "x-labels-idx1-ubyte: truncated");
}

TEST_F(IdxFilesTest, CorruptGzip) {
  Bytes gz = Gzip(images_);
  gz[gz.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
  ExpectError(OpenAndPull(gz, labels_), "corrupt gzip data");
}

TEST_F(IdxFilesTest, TruncatedAndOverlongPlainFiles) {
  Bytes short_images(images_.begin(), images_.end() - 4);
  ExpectError(OpenAndPull(short_images, labels_), "truncated: image 4 of 5 has only 2 of 6 bytes");
  Bytes long_images = images_;
  long_images.push_back(0);
  ExpectError(OpenAndPull(long_images, labels_), "extra bytes after the 5 images");
  Bytes short_labels(labels_.begin(), labels_.end() - 2);
  ExpectError(OpenAndPull(images_, short_labels), "only 3 of the 5 labels");
  Bytes long_labels = labels_;
  long_labels.push_back(1);
  ExpectError(OpenAndPull(images_, long_labels), "extra bytes after the 5 labels");
}

TEST_F(IdxFilesTest, LabelOutsideTheGivenClassNames) {
  ExpectError(OpenAndPull(images_, labels_, nullptr, {"a", "b"}),
              "record 0: label 2 is not below the 2 class names given");
}

TEST_F(IdxFilesTest, ZeroDimensionAndEmptyFiles) {
  ExpectError(OpenAndPull(IdxBytes({5, 0, 2}, {}), labels_), "dimension 0 is 0");
  ExpectError(OpenAndPull(IdxBytes({0, 3, 2}, {}), IdxBytes({0}, {})), "holds no items");
  ExpectError(OpenAndPull(Bytes{}, labels_), "only 0 byte(s)");
}

}  // namespace
}  // namespace chiron::importers
