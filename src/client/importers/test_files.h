// Helpers for the importer tests: a scratch directory and writers for small gzip, IDX, PNG and
// CIFAR files, so every test builds exactly the input it needs.
#pragma once

#include <string>
#include <vector>

#include "client/importers/sample_source.h"
#include "shared/base/bytes.h"

namespace chiron::importers::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `data` to path()/relative (creating parent folders); returns the full path.
  std::string Write(const std::string& relative, ByteSpan data) const;
  std::string Write(const std::string& relative, std::string_view text) const {
    return Write(relative, AsBytes(text));
  }
  std::string MakeDir(const std::string& relative) const;

 private:
  std::string path_;
};

Bytes Gzip(ByteSpan data);

// An IDX file of unsigned bytes: magic, dims (big-endian), then `data`.
Bytes IdxBytes(const std::vector<uint32_t>& dims, ByteSpan data);

// An 8-bit PNG. channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; pixels interleaved, row-major.
Bytes PngBytes(uint32_t width, uint32_t height, uint32_t channels, ByteSpan pixels);

// Pulls every sample; stops at the first error (returned in *error, else OK).
struct Pulled {
  std::vector<Bytes> samples;
  std::vector<uint32_t> labels;
  Status error;
};
Pulled PullAll(SampleSource& source);

}  // namespace chiron::importers::testing
