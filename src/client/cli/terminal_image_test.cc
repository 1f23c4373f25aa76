#include "client/cli/terminal_image.h"

#include <gtest/gtest.h>

namespace chiron::client {
namespace {

// A 28×28 image: black, with a white vertical bar in columns 10..17 and rows 4..23.
Bytes BarImage() {
  Bytes pixels(28 * 28, 0);
  for (int y = 4; y < 24; ++y) {
    for (int x = 10; x < 18; ++x) pixels[y * 28 + x] = 255;
  }
  return pixels;
}

TEST(TerminalImageTest, FashionMnistSizeFitsFourteenLinesOfTwentyEightColumns) {
  Bytes pixels = BarImage();
  auto gray = SampleToGray(pixels, {28, 28}, /*f32=*/false);
  ASSERT_TRUE(gray.ok()) << gray.status().message();
  RenderedImage image = RenderImage(*gray, ImageStyle::kAscii);
  ASSERT_EQ(image.lines.size(), 14u);
  EXPECT_EQ(image.columns, 28u);
  for (const std::string& line : image.lines) EXPECT_EQ(line.size(), 28u);
  // Rows 4..23 are lines 2..11: the bar is '@' there, background ' ' everywhere else.
  EXPECT_EQ(image.lines[0], std::string(28, ' '));
  EXPECT_EQ(image.lines[5], std::string(10, ' ') + std::string(8, '@') + std::string(10, ' '));
  EXPECT_EQ(image.lines[13], std::string(28, ' '));
}

TEST(TerminalImageTest, HalfCoveredCellIsAMiddleShade) {
  // Rows 0 white, row 1 black: one cell averaging to half intensity.
  GrayImage image{2, 2, {255, 255, 0, 0}};
  RenderedImage ascii = RenderImage(image, ImageStyle::kAscii);
  ASSERT_EQ(ascii.lines.size(), 1u);
  EXPECT_EQ(ascii.lines[0], "==");  // level 4 of " .:-=+*#%@"
  RenderedImage shades = RenderImage(image, ImageStyle::kShades);
  EXPECT_EQ(shades.lines[0], "\u2592\u2592");
}

TEST(TerminalImageTest, ColorUsesUpperHalfBlocksWithGrayForegroundAndBackground) {
  GrayImage image{1, 2, {255, 0}};
  RenderedImage color = RenderImage(image, ImageStyle::kColor);
  ASSERT_EQ(color.lines.size(), 1u);
  EXPECT_EQ(color.columns, 1u);
  EXPECT_EQ(color.lines[0], "\033[38;5;231m\033[48;5;16m\u2580\033[0m");
}

TEST(TerminalImageTest, WideImagesAreScaledDownKeepingProportions) {
  GrayImage image{80, 40, std::vector<uint8_t>(80 * 40, 200)};
  RenderedImage out = RenderImage(image, ImageStyle::kAscii, 40);
  EXPECT_EQ(out.columns, 40u);
  EXPECT_EQ(out.lines.size(), 10u);  // 40 px rows after scaling by 2 → 20 rows → 10 lines
}

TEST(TerminalImageTest, ColourChannelsAreAveragedAndFloatsScaledToTheirRange) {
  // [3, 1, 2]: pixel 0 is (255, 0, 0) → 85, pixel 1 is (255, 255, 255) → 255.
  Bytes rgb = {255, 255, 0, 255, 0, 255};
  auto gray = SampleToGray(rgb, {3, 1, 2}, false);
  ASSERT_TRUE(gray.ok());
  EXPECT_EQ(gray->pixels, (std::vector<uint8_t>{85, 255}));

  float values[2] = {-1.0f, 3.0f};
  Bytes f32(reinterpret_cast<uint8_t*>(values), reinterpret_cast<uint8_t*>(values) + 8);
  gray = SampleToGray(f32, {1, 2}, true);
  ASSERT_TRUE(gray.ok());
  EXPECT_EQ(gray->pixels, (std::vector<uint8_t>{0, 255}));
}

TEST(TerminalImageTest, RejectsNonImagesAndWrongSizes) {
  Bytes row(20, 1);
  EXPECT_FALSE(SampleToGray(row, {20}, false).ok());
  EXPECT_FALSE(SampleToGray(row, {5, 4, 1}, false).ok());  // [C,H,W] with C = 5
  EXPECT_FALSE(SampleToGray(row, {4, 4}, false).ok());     // 16 pixels, 20 bytes
  EXPECT_FALSE(ParseImageStyle("sixel").ok());
}

}  // namespace
}  // namespace chiron::client
