#include "client/importers/png_source.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "client/importers/test_files.h"

namespace chiron::importers {
namespace {

using testing::PngBytes;
using testing::PullAll;
using testing::TempDir;

Bytes Pixels(size_t count, uint8_t start) {
  Bytes out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<uint8_t>(start + 3 * i);
  return out;
}

void ExpectError(const Status& status, const std::string& needle) {
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
}

Status OpenAndPull(const std::string& root) {
  auto source = OpenPngFolder(root);
  if (!source.ok()) return source.status();
  return PullAll(**source).error;
}

TEST(PngFolderTest, GreyImagesOneClassPerFolder) {
  TempDir dir;
  Bytes a = Pixels(12, 0), b = Pixels(12, 50), c = Pixels(12, 100);
  dir.Write("root/dog/c.png", PngBytes(4, 3, 1, c));
  dir.Write("root/cat/b.png", PngBytes(4, 3, 1, b));
  dir.Write("root/cat/a.png", PngBytes(4, 3, 1, a));
  dir.Write("root/cat/.DS_Store", "ignored");
  dir.Write("root/.hidden/x.txt", "ignored");
  auto source = OpenPngFolder(dir.path() + "/root");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const dataset::DatasetSchema& schema = (*source)->schema();
  EXPECT_EQ(schema.shape, (std::vector<uint32_t>{1, 3, 4}));
  EXPECT_EQ(schema.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(schema.sample_count, 3u);
  testing::Pulled pulled = PullAll(**source);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{0, 0, 1}));
  EXPECT_EQ(pulled.samples[0], a);
  EXPECT_EQ(pulled.samples[1], b);
  EXPECT_EQ(pulled.samples[2], c);
}

TEST(PngFolderTest, ColourImagesBecomePlanarRgb) {
  TempDir dir;
  // 2x1 RGB: pixel 0 = (1,2,3), pixel 1 = (4,5,6).
  dir.Write("root/a/x.png", PngBytes(2, 1, 3, Bytes{1, 2, 3, 4, 5, 6}));
  auto source = OpenPngFolder(dir.path() + "/root");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().shape, (std::vector<uint32_t>{3, 1, 2}));
  testing::Pulled pulled = PullAll(**source);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  EXPECT_EQ(pulled.samples[0], (Bytes{1, 4, 2, 5, 3, 6}));
}

TEST(PngFolderTest, AlphaIsCompositedOntoBlack) {
  TempDir dir;
  // Opaque white, fully transparent white.
  dir.Write("root/a/x.png", PngBytes(2, 1, 4, Bytes{255, 255, 255, 255, 255, 255, 255, 0}));
  auto source = OpenPngFolder(dir.path() + "/root");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  testing::Pulled pulled = PullAll(**source);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  EXPECT_EQ(pulled.samples[0], (Bytes{255, 0, 255, 0, 255, 0}));
}

TEST(PngFolderTest, NotAPng) {
  TempDir dir;
  dir.Write("root/cat/a.png", PngBytes(2, 2, 1, Pixels(4, 0)));
  std::string bad = dir.Write("root/cat/b.png", "GIF89a not really a png");
  ExpectError(OpenAndPull(dir.path() + "/root"), bad + ": not a PNG file");
  // A PNG whose image data is cut short fails when decoded, naming the file.
  Bytes png = PngBytes(2, 2, 1, Pixels(4, 0));
  png.resize(png.size() - 20);
  dir.Write("root/cat/b.png", png);
  ExpectError(OpenAndPull(dir.path() + "/root"), bad + ":");
  std::string txt = dir.Write("root/cat/b.png.txt", "notes");
  std::filesystem::remove(bad);
  ExpectError(OpenAndPull(dir.path() + "/root"), txt + ": not a .png file");
}

TEST(PngFolderTest, MismatchedSizesAndColourTypes) {
  TempDir dir;
  std::string first = dir.Write("root/a/1.png", PngBytes(2, 2, 1, Pixels(4, 0)));
  std::string other = dir.Write("root/b/2.png", PngBytes(3, 2, 1, Pixels(6, 0)));
  ExpectError(OpenAndPull(dir.path() + "/root"),
              other + ": image is 3x2 grey but the first image " + first +
                  " is 2x2 grey; all images must have the same size and colour type");
  dir.Write("root/b/2.png", PngBytes(2, 2, 3, Pixels(12, 0)));
  ExpectError(OpenAndPull(dir.path() + "/root"), "image is 2x2 RGB but the first image");
}

TEST(PngFolderTest, EmptyClassAndStrayFiles) {
  TempDir dir;
  dir.Write("root/a/1.png", PngBytes(2, 2, 1, Pixels(4, 0)));
  std::string empty = dir.MakeDir("root/b");
  ExpectError(OpenAndPull(dir.path() + "/root"), empty + ": class folder has no .png images");
  std::filesystem::remove(empty);
  std::string stray = dir.Write("root/README", "hello");
  ExpectError(OpenAndPull(dir.path() + "/root"), stray + ": only class sub-folders");
  std::filesystem::remove(stray);
  EXPECT_TRUE(OpenAndPull(dir.path() + "/root").ok());
  ExpectError(OpenAndPull(dir.MakeDir("nothing")), "no class sub-folders");
  ExpectError(OpenAndPull(dir.path() + "/missing"), "not a directory");
}

TEST(PngDecodeTest, RejectsImagesOverTheSampleLimitBeforeDecoding) {
  Bytes png = PngBytes(4200, 4200, 1, Bytes(4200 * 4200, 0));  // 17.6 MB > 16 MiB
  ExpectError(ReadPngInfo(png, "big.png").status(),
              "big.png: a 4200x4200 grey image is larger than the sample limit");
  ExpectError(ReadPngInfo(Bytes{0x89, 'P', 'N'}, "short.png").status(), "short.png: not a PNG");
  Bytes ok = PngBytes(2, 2, 1, Pixels(4, 0));
  auto info = ReadPngInfo(ok, "ok.png");
  ASSERT_TRUE(info.ok());
  Bytes out(3);
  ExpectError(DecodePng(ok, "ok.png", *info, out), "output buffer");
  PngInfo wrong = *info;
  wrong.color = true;
  out.resize(wrong.decoded_size());
  ExpectError(DecodePng(ok, "ok.png", wrong, out), "ok.png: image is 2x2 grey, expected 2x2 RGB");
}

}  // namespace
}  // namespace chiron::importers
