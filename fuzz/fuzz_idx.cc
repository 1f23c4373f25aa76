// Fuzzes the IDX importer (plain and gzip). Input: u16 little-endian length of the images file,
// the images file, then the labels file; each part is decompressed if it starts with the gzip
// magic, exactly as files are.
#include <cstddef>
#include <cstdint>

#include "client/importers/idx_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  using namespace chiron::importers;
  if (size < 2) return 0;
  size_t images_size = data[0] | size_t{data[1]} << 8;
  ByteSpan rest(data + 2, size - 2);
  if (images_size > rest.size()) images_size = rest.size();
  ByteSpan images = rest.first(images_size);
  ByteSpan labels = rest.subspan(images_size);
  auto source = OpenIdxSource(MemoryFactory(images, "images"), MemoryFactory(labels, "labels"), {});
  if (!source.ok()) return 0;
  Bytes sample((*source)->schema().sample_size());
  uint32_t label = 0;
  while (true) {
    auto more = (*source)->Next(sample, label);
    if (!more.ok() || !*more) break;
    if (label >= (*source)->schema().class_count()) __builtin_trap();
  }
  return 0;
}
