// Fuzzes the PNG decoding used by the PNG-folder importer: header inspection, then decoding into
// the planar sample layout.
#include <cstddef>
#include <cstdint>

#include "client/importers/png_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  using namespace chiron::importers;
  ByteSpan file(data, size);
  auto info = ReadPngInfo(file, "fuzz.png");
  if (!info.ok()) return 0;
  if (info->decoded_size() > dataset::kMaxSampleSize) __builtin_trap();
  // Large but valid headers are legitimate; decode only what a fuzz iteration can afford.
  if (info->decoded_size() > (uint64_t{1} << 22)) return 0;
  Bytes out(info->decoded_size());
  DecodePng(file, "fuzz.png", *info, out).IgnoreError();
  return 0;
}
