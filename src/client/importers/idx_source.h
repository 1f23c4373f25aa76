// IDX importer: MNIST-style image and label files (plain or gzip).
//
// An IDX file is two zero bytes, an element type byte, a dimension count, the dimensions as
// big-endian u32, then the elements. The images file has type 0x08 (unsigned byte) and 2..5
// dimensions (count, then the sample shape, e.g. 60000x28x28); the labels file has type 0x08 and
// one dimension (the count). Both counts must agree.
//
// The labels file is read once up front (validating it and finding the class count), then both
// files are streamed together; neither is held in memory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/importers/input_stream.h"
#include "client/importers/sample_source.h"

namespace chiron::importers {

// The ten Fashion-MNIST class names, in label order ("T-shirt/top", "Trouser", ...).
const std::vector<std::string>& FashionMnistClassNames();

// The labels file that goes with an images file: "-images-idx3-ubyte" becomes
// "-labels-idx1-ubyte" (also the "-images.idx3-ubyte" spelling). Empty if the name has neither.
std::string DefaultIdxLabelsPath(const std::string& images_path);

// Opens an images/labels pair from stream factories (each stream is decompressed if gzip).
// `class_names` empty: classes are named "0".."max label".
Result<std::unique_ptr<SampleSource>> OpenIdxSource(StreamFactory images, StreamFactory labels,
                                                    std::vector<std::string> class_names);

// Opens files. `labels_path` empty: DefaultIdxLabelsPath(images_path). `class_names` empty and a
// path containing "fashion": the Fashion-MNIST names.
Result<std::unique_ptr<SampleSource>> OpenIdxFiles(const std::string& images_path,
                                                   const std::string& labels_path,
                                                   std::vector<std::string> class_names);

}  // namespace chiron::importers
