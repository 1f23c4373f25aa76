#include "client/cli/terminal_image.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace chiron::client {
namespace {

// Average of the source pixels that fall in [x0, x1) × [y0, y1) (at least one pixel).
uint8_t Average(const GrayImage& image, uint32_t x0, uint32_t x1, uint32_t y0, uint32_t y1) {
  x1 = std::max(x1, x0 + 1);
  y1 = std::max(y1, y0 + 1);
  uint64_t sum = 0;
  uint64_t count = 0;
  for (uint32_t y = y0; y < y1 && y < image.height; ++y) {
    for (uint32_t x = x0; x < x1 && x < image.width; ++x) {
      sum += image.pixels[size_t{y} * image.width + x];
      ++count;
    }
  }
  return count == 0 ? 0 : static_cast<uint8_t>((sum + count / 2) / count);
}

// The 256-colour palette's closest gray: 16 (black), 232..255 (24 grays), 231 (white).
int GrayColor(uint8_t value) {
  if (value < 4) return 16;
  if (value > 246) return 231;
  return 232 + std::min(23, (value - 4) * 24 / 243);
}

}  // namespace

Result<ImageStyle> ParseImageStyle(std::string_view name) {
  if (name == "ascii") return ImageStyle::kAscii;
  if (name == "shades") return ImageStyle::kShades;
  if (name == "color") return ImageStyle::kColor;
  return InvalidArgumentError("image style '" + std::string(name) +
                              "' is not one of ascii, shades, color");
}

Result<GrayImage> SampleToGray(ByteSpan sample, const std::vector<uint32_t>& shape, bool f32) {
  uint32_t channels = 1;
  uint32_t height = 0;
  uint32_t width = 0;
  if (shape.size() == 2) {
    height = shape[0];
    width = shape[1];
  } else if (shape.size() == 3 && (shape[0] == 1 || shape[0] == 3 || shape[0] == 4)) {
    channels = shape[0];
    height = shape[1];
    width = shape[2];
  } else {
    return InvalidArgumentError("a sample of this shape is not an image (expected HxW or CxHxW)");
  }
  if (height == 0 || width == 0 || height > 4096 || width > 4096) {
    return InvalidArgumentError("image dimensions out of range");
  }
  size_t pixels = size_t{height} * width;
  size_t expected = pixels * channels * (f32 ? 4 : 1);
  if (sample.size() != expected) {
    return InvalidArgumentError("sample has " + std::to_string(sample.size()) +
                                " bytes; its shape needs " + std::to_string(expected));
  }
  std::vector<float> values(pixels * channels);
  for (size_t i = 0; i < values.size(); ++i) {
    if (f32) {
      float v;
      std::memcpy(&v, sample.data() + i * 4, 4);
      values[i] = std::isfinite(v) ? v : 0.0f;
    } else {
      values[i] = sample[i];
    }
  }
  float low = 0;
  float high = 255;
  if (f32 && !values.empty()) {
    auto [min_it, max_it] = std::minmax_element(values.begin(), values.end());
    low = *min_it;
    high = *max_it;
  }
  float range = high > low ? high - low : 1.0f;
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(pixels);
  for (size_t p = 0; p < pixels; ++p) {
    float sum = 0;
    for (uint32_t c = 0; c < channels; ++c) sum += values[c * pixels + p];
    float gray = (sum / channels - low) / range * 255.0f;
    image.pixels[p] = static_cast<uint8_t>(std::clamp(gray, 0.0f, 255.0f) + 0.5f);
  }
  return image;
}

RenderedImage RenderImage(const GrayImage& image, ImageStyle style, uint32_t max_columns) {
  static constexpr std::string_view kAsciiRamp = " .:-=+*#%@";
  static constexpr const char* kShadeRamp[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
  RenderedImage out;
  if (image.width == 0 || image.height == 0) return out;
  max_columns = std::max<uint32_t>(max_columns, 1);
  uint32_t columns = std::min(image.width, max_columns);
  // Keep the proportions when scaling down: the same factor for rows.
  double scale = static_cast<double>(image.width) / columns;
  uint32_t rows = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(image.height / scale)));
  out.columns = columns;
  auto pixel = [&](uint32_t column, uint32_t row) -> uint8_t {
    if (row >= rows) return 0;
    auto x0 = static_cast<uint32_t>(column * scale);
    auto x1 = static_cast<uint32_t>((column + 1) * scale);
    auto y0 = static_cast<uint32_t>(row * scale);
    auto y1 = static_cast<uint32_t>((row + 1) * scale);
    return Average(image, x0, x1, y0, y1);
  };
  for (uint32_t row = 0; row < rows; row += 2) {
    std::string line;
    int last_fg = -1;
    int last_bg = -1;
    for (uint32_t column = 0; column < columns; ++column) {
      uint8_t top = pixel(column, row);
      uint8_t bottom = pixel(column, row + 1);
      switch (style) {
        case ImageStyle::kAscii: {
          int level = (top + bottom) * static_cast<int>(kAsciiRamp.size()) / 512;
          line += kAsciiRamp[static_cast<size_t>(std::min(level, 9))];
          break;
        }
        case ImageStyle::kShades: {
          int level = (top + bottom) * 5 / 512;
          line += kShadeRamp[std::min(level, 4)];
          break;
        }
        case ImageStyle::kColor: {
          int fg = GrayColor(top);
          int bg = GrayColor(bottom);
          if (fg != last_fg) line += "\033[38;5;" + std::to_string(fg) + "m";
          if (bg != last_bg) line += "\033[48;5;" + std::to_string(bg) + "m";
          last_fg = fg;
          last_bg = bg;
          line += "\u2580";
          break;
        }
      }
    }
    if (style == ImageStyle::kColor) line += "\033[0m";
    out.lines.push_back(std::move(line));
  }
  return out;
}

}  // namespace chiron::client
