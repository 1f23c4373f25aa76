// Fuzzes the CSV importer: header, quoting, number parsing, class collection and the second,
// streaming pass. The first input byte picks the label column name, whether a fixed class
// list is used, and whether the label column is optional (chiron predict's mode); the rest is
// the file (decompressed if gzip).
#include <cstddef>
#include <cstdint>

#include "client/importers/csv_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  using namespace chiron::importers;
  if (size < 1) return 0;
  uint8_t mode = data[0];
  ByteSpan file(data + 1, size - 1);
  std::string label_column = (mode & 1) ? "y" : "label";
  std::vector<std::string> classes;
  if (mode & 2) classes = {"a", "b", "c"};
  bool has_labels = true;
  auto source = (mode & 4) ? OpenCsvSourceForPrediction(MemoryFactory(file, "fuzz.csv"),
                                                        label_column, {"a", "b", "c"},
                                                        &has_labels)
                           : OpenCsvSource(MemoryFactory(file, "fuzz.csv"), label_column, classes);
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
