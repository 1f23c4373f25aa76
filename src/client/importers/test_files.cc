#include "client/importers/test_files.h"

#include <png.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace chiron::importers::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/chiron-import-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) std::abort();
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& relative, ByteSpan data) const {
  std::filesystem::path full = std::filesystem::path(path_) / relative;
  std::filesystem::create_directories(full.parent_path());
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) std::abort();
  return full.string();
}

std::string TempDir::MakeDir(const std::string& relative) const {
  std::filesystem::path full = std::filesystem::path(path_) / relative;
  std::filesystem::create_directories(full);
  return full.string();
}

Bytes Gzip(ByteSpan data) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();
  }
  Bytes out(deflateBound(&zs, data.size()) + 64);
  zs.next_in = const_cast<uint8_t*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Bytes IdxBytes(const std::vector<uint32_t>& dims, ByteSpan data) {
  Bytes out = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) AppendU32Be(out, dim);
  Append(out, data);
  return out;
}

Bytes PngBytes(uint32_t width, uint32_t height, uint32_t channels, ByteSpan pixels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  static constexpr png_uint_32 kFormats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                             PNG_FORMAT_RGBA};
  image.format = kFormats[channels - 1];
  png_alloc_size_t size = 0;
  if (png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr) == 0) {
    std::abort();
  }
  Bytes out(size);
  if (png_image_write_to_memory(&image, out.data(), &size, 0, pixels.data(), 0, nullptr) == 0) {
    std::abort();
  }
  out.resize(size);
  return out;
}

Pulled PullAll(SampleSource& source) {
  Pulled pulled;
  Bytes sample(source.schema().sample_size());
  while (true) {
    uint32_t label = 0;
    auto more = source.Next(sample, label);
    if (!more.ok()) {
      pulled.error = more.status();
      break;
    }
    if (!*more) break;
    pulled.samples.push_back(sample);
    pulled.labels.push_back(label);
  }
  return pulled;
}

}  // namespace chiron::importers::testing
