// Fuzzes the dataset container parser and reader (docs/formats/dataset.md) with hostile bytes:
// header parsing without a key, then full verification with a fixed key, so mutated seeds
// (valid containers under that key) reach chunk authentication and record decoding.
#include <cstddef>
#include <cstdint>

#include "shared/dataset/container.h"

namespace {
// The key the seed corpus was written with (fuzz/corpus/fuzz_dataset_container).
const chiron::Bytes& FuzzKey() {
  static const chiron::Bytes key(chiron::dataset::kDatasetKeySize, 0x5a);
  return key;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  ByteSpan input(data, size);
  auto header = dataset::ParseContainerHeader(input);
  if (header.ok()) {
    // The layout arithmetic must hold for every header that parses.
    uint64_t count = header->chunk_count();
    if (count == 0 || header->container_size() < header->header_size()) __builtin_trap();
    if (header->samples_in_chunk(count - 1) == 0) __builtin_trap();
  }
  uint64_t records = 0;
  dataset::ReadContainer(FuzzKey(), input, [&](const dataset::Record& record) {
    ++records;
    return Status::Ok();
  }).IgnoreError();
  // Random access: open whatever follows the header as chunk 0 and as the last chunk.
  auto size_or = dataset::PeekHeaderSize(input);
  if (size_or.ok() && *size_or <= size) {
    auto reader = dataset::DatasetReader::Open(FuzzKey(), input.first(*size_or));
    if (reader.ok()) {
      ByteSpan rest = input.subspan(*size_or);
      reader->OpenChunk(0, rest).status().IgnoreError();
      reader->OpenChunk(reader->header().chunk_count() - 1, rest).status().IgnoreError();
    }
  }
  return 0;
}
