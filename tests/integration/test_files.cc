#include "tests/integration/test_files.h"

#include <zlib.h>

#include <fstream>
#include <random>

namespace chiron::testing {

void AppendU32Be(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::string WriteGeneratedIdx(const std::string& dir, const std::string& stem, uint32_t count,
                              uint32_t seed) {
  std::mt19937 rng(seed);
  std::string images, labels;
  AppendU32Be(images, 0x00000803);
  AppendU32Be(images, count);
  AppendU32Be(images, 28);
  AppendU32Be(images, 28);
  AppendU32Be(labels, 0x00000801);
  AppendU32Be(labels, count);
  for (uint32_t i = 0; i < count; ++i) {
    for (int p = 0; p < 28 * 28; ++p) images.push_back(static_cast<char>(rng()));
    labels.push_back(static_cast<char>(rng() % 10));
  }
  std::string images_path = dir + "/" + stem + "-images-idx3-ubyte";
  std::ofstream(images_path, std::ios::binary) << images;
  std::ofstream(dir + "/" + stem + "-labels-idx1-ubyte", std::ios::binary) << labels;
  return images_path;
}

std::string ReadGzipRecords(const std::string& path, size_t header_size, size_t item_size,
                            uint32_t count) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return {};
  std::string data(header_size + item_size * count, '\0');
  int got = gzread(file, data.data(), static_cast<unsigned>(data.size()));
  gzclose(file);
  if (got != static_cast<int>(data.size())) return {};
  return data.substr(header_size);
}

std::string WriteFashionSubset(const std::string& dir, const std::string& source,
                               const std::string& stem, uint32_t count) {
  std::string pixels = ReadGzipRecords(
      std::string("/usr/share/datasets/fashion-mnist") + "/" + source + "-images-idx3-ubyte.gz", 16,
      size_t{28 * 28}, count);
  std::string labels = ReadGzipRecords(
      std::string("/usr/share/datasets/fashion-mnist") + "/" + source + "-labels-idx1-ubyte.gz", 8,
      1, count);
  if (pixels.empty() || labels.empty()) return {};
  std::string images_file, labels_file;
  AppendU32Be(images_file, 0x00000803);
  AppendU32Be(images_file, count);
  AppendU32Be(images_file, 28);
  AppendU32Be(images_file, 28);
  images_file += pixels;
  AppendU32Be(labels_file, 0x00000801);
  AppendU32Be(labels_file, count);
  labels_file += labels;
  std::string images_path = dir + "/fashion-" + stem + "-images-idx3-ubyte";
  std::ofstream(images_path, std::ios::binary) << images_file;
  std::ofstream(dir + "/fashion-" + stem + "-labels-idx1-ubyte", std::ios::binary) << labels_file;
  return images_path;
}

}  // namespace chiron::testing
