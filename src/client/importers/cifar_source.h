// CIFAR-10 binary importer.
//
// A CIFAR-10 binary batch (data_batch_1.bin ... test_batch.bin) is a sequence of 3073-byte
// records: one label byte (0..9), then 1024 red, 1024 green and 1024 blue bytes of a 32x32
// image, row by row. Samples keep that planar layout: shape [3, 32, 32], uint8.
//
// Batches are streamed record by record; the record count comes from the file sizes, which must
// be whole multiples of 3073 bytes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/importers/input_stream.h"
#include "client/importers/sample_source.h"

namespace chiron::importers {

inline constexpr size_t kCifarRecordSize = 3073;

// airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.
const std::vector<std::string>& Cifar10ClassNames();

struct CifarBatch {
  std::string name;    // for messages
  uint64_t size = 0;   // bytes
  StreamFactory open;  // the raw bytes (not decompressed)
};

// `class_names` empty: the CIFAR-10 names. A label >= the number of classes is an error naming
// the batch and record.
Result<std::unique_ptr<SampleSource>> OpenCifarSource(std::vector<CifarBatch> batches,
                                                      std::vector<std::string> class_names);

// `path` is a batch file or a directory; a directory contributes its data_batch_*.bin files (the
// training set), or every *.bin file if it has none. Class names, unless given, come from
// batches.meta.txt beside the batches when present (10 non-empty lines), else the CIFAR-10 names.
Result<std::unique_ptr<SampleSource>> OpenCifarPath(const std::string& path,
                                                    std::vector<std::string> class_names);

}  // namespace chiron::importers
