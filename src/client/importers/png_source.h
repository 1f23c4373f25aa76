// PNG folder importer: root/<class name>/*.png.
//
// Each sub-folder of the root is a class (named after the folder, in sorted order) and must hold
// at least one .png file; every image must have the same width, height and colour type
// (grey or colour, with or without alpha) as the first one. Images are decoded with libpng to
// 8 bits per channel in a fixed planar layout: [1, H, W] for grey, [3, H, W] (R, G, B planes)
// for colour, as CIFAR-10 and PyTorch use. Alpha is composited onto black; 16-bit images are
// reduced to 8 bits. Hidden entries (names starting with '.') are ignored; any other non-folder
// in the root or non-.png file in a class folder is an error, so nothing is silently skipped.
//
// Files are decoded one at a time as samples are pulled.
#pragma once

#include <memory>
#include <string>

#include "client/importers/sample_source.h"

namespace chiron::importers {

inline constexpr uint64_t kMaxPngFileSize = uint64_t{64} << 20;

struct PngInfo {
  uint32_t width = 0;
  uint32_t height = 0;
  bool color = false;
  bool alpha = false;

  uint32_t channels() const { return color ? 3 : 1; }
  uint64_t decoded_size() const { return uint64_t{channels()} * width * height; }
  // "32x32 RGB", "28x28 grey+alpha".
  std::string Describe() const;
  friend bool operator==(const PngInfo&, const PngInfo&) = default;
};

// Reads the header of an in-memory PNG. InvalidArgument "<name>: not a PNG file (...)" for
// anything libpng rejects, or for an image whose decoded size exceeds dataset::kMaxSampleSize.
Result<PngInfo> ReadPngInfo(ByteSpan file, const std::string& name);

// Decodes an in-memory PNG whose header must match `expected` into `out` (exactly
// expected.decoded_size() bytes, planar). InvalidArgument naming the file otherwise.
Status DecodePng(ByteSpan file, const std::string& name, const PngInfo& expected,
                 MutableByteSpan out);

Result<std::unique_ptr<SampleSource>> OpenPngFolder(const std::string& root);

}  // namespace chiron::importers
