// Drawing a small image sample in a terminal, for `chiron predict`.
//
// A sample (u8 or f32, shape [H, W], [C, H, W] or [1, H, W] as the importers store them) becomes
// a grayscale image, then lines of text in which every character cell covers one pixel column and
// two pixel rows, so a 28×28 Fashion-MNIST image takes 28 columns and 14 lines and keeps its
// proportions (terminal cells are about twice as tall as wide). Wider images are scaled down to
// a maximum width by averaging.
//
// Styles: kColor draws each cell as an upper half block (U+2580) whose foreground is the top
// pixel and background the bottom pixel, in the 256-colour palette's grays (real grayscale; for
// terminals); kShades uses the shade characters " ░▒▓█"; kAscii uses " .:-=+*#%@" (any output,
// logs, tests). Brighter pixels are denser characters.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::client {

struct GrayImage {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> pixels;  // row-major, width × height, 0 black .. 255 white
};

enum class ImageStyle { kAscii, kShades, kColor };

// "ascii", "shades", "color". InvalidArgument otherwise.
Result<ImageStyle> ParseImageStyle(std::string_view name);

// The sample as a grayscale image. `shape` is the sample's shape; rank 2 is [H, W], rank 3 is
// [C, H, W] with C in {1, 3, 4} (colour channels are averaged). f32 samples are scaled from
// their own minimum..maximum. InvalidArgument if the shape is not an image or `sample` has the
// wrong size.
Result<GrayImage> SampleToGray(ByteSpan sample, const std::vector<uint32_t>& shape, bool f32);

struct RenderedImage {
  std::vector<std::string> lines;
  uint32_t columns = 0;  // visible width of every line (escape codes excluded)
};

// Renders `image` at most `max_columns` wide (scaled down by averaging if wider).
RenderedImage RenderImage(const GrayImage& image, ImageStyle style, uint32_t max_columns = 40);

}  // namespace chiron::client
