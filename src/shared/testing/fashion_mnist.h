// Test and benchmark support (linked into no product): reads the Debian-packaged Fashion-MNIST
// IDX files (gzip) into memory, for the worker's engine tests, the runtime's training tests, the
// scripted-worker tests and bench/train_bench. It lives in src/shared so that both sides of the
// worker boundary can use it without src/runtime including src/worker (its namespace,
// chiron::worker::testing, is where it started). Header-only; callers link ZLIB.
//
// IDX format: big-endian u32 magic (0x00000803 images, 0x00000801 labels), big-endian u32 sizes
// (count, then rows and columns for images), then u8 data.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "shared/base/status.h"

namespace chiron::worker::testing {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct LabelledImages {
  size_t count = 0;
  int64_t rows = 0, columns = 0;
  std::vector<uint8_t> pixels;  // count × rows × columns
  std::vector<int64_t> labels;  // count, in [0, 10)
};

inline Result<std::vector<uint8_t>> ReadGzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return NotFoundError("cannot open " + path);
  std::vector<uint8_t> out;
  uint8_t buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) out.insert(out.end(), buffer, buffer + n);
  const bool failed = n < 0;
  gzclose(file);
  if (failed) return DataLossError("corrupt gzip data in " + path);
  return out;
}

inline uint32_t BigEndian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Reads `split` ("train" or "t10k"), keeping at most `limit` examples.
inline Result<LabelledImages> ReadFashionMnist(const std::string& split, size_t limit) {
  const std::string dir = kFashionMnistDir;
  CHIRON_ASSIGN_OR_RETURN(std::vector<uint8_t> images,
                          ReadGzip(dir + "/" + split + "-images-idx3-ubyte.gz"));
  CHIRON_ASSIGN_OR_RETURN(std::vector<uint8_t> labels,
                          ReadGzip(dir + "/" + split + "-labels-idx1-ubyte.gz"));
  if (images.size() < 16 || BigEndian32(images.data()) != 0x803 || labels.size() < 8 ||
      BigEndian32(labels.data()) != 0x801) {
    return DataLossError("Fashion-MNIST " + split + ": bad IDX header");
  }
  LabelledImages out;
  const size_t count = BigEndian32(images.data() + 4);
  out.rows = BigEndian32(images.data() + 8);
  out.columns = BigEndian32(images.data() + 12);
  const size_t image_size = static_cast<size_t>(out.rows * out.columns);
  if (BigEndian32(labels.data() + 4) != count || images.size() != 16 + count * image_size ||
      labels.size() != 8 + count) {
    return DataLossError("Fashion-MNIST " + split + ": sizes do not match the headers");
  }
  out.count = std::min(count, limit);
  out.pixels.assign(images.begin() + 16, images.begin() + 16 + out.count * image_size);
  out.labels.assign(labels.begin() + 8, labels.begin() + 8 + out.count);
  return out;
}

}  // namespace chiron::worker::testing
