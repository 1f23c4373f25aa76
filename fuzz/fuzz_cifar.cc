// Fuzzes the CIFAR-10 binary importer with the input as one batch file.
#include <cstddef>
#include <cstdint>

#include "client/importers/cifar_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  using namespace chiron::importers;
  ByteSpan file(data, size);
  std::vector<CifarBatch> batches = {
      {"fuzz.bin", size, [file]() -> Result<std::unique_ptr<InputStream>> {
         return MemoryStream(file, "fuzz.bin");
       }}};
  auto source = OpenCifarSource(std::move(batches), {});
  if (!source.ok()) return 0;
  Bytes sample((*source)->schema().sample_size());
  uint32_t label = 0;
  while (true) {
    auto more = (*source)->Next(sample, label);
    if (!more.ok() || !*more) break;
    if (label >= 10) __builtin_trap();
  }
  return 0;
}
