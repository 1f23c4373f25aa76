// SampleSource: the owner's data, one labelled sample at a time, ready to be encrypted.
//
// Importers turn the common dataset formats into a stream of (sample bytes, class index) pairs
// with a DatasetSchema known up front (the container header needs it before the first chunk).
// They read their input sequentially and hold at most one sample (plus small fixed buffers), so
// an upload never keeps a plaintext copy of the dataset in memory. Where the schema depends on
// the whole input (CSV class names, IDX label range), the importer makes a validation pass first
// and then streams in a second pass.
//
// Formats (docs/formats/dataset.md, "Importers", lists the exact rules):
//   idx         MNIST / Fashion-MNIST image + label files, plain or gzip
//   csv         header row, numeric feature columns, one named label column
//   cifar       CIFAR-10 binary batches (1 label byte + 3072 pixel bytes per record)
//   png-folder  root/<class>/*.png, all images the same size and colour type
//
// Errors are InvalidArgument (NotFound for missing files) and name the file and the line,
// record or column at fault, e.g. "iris.csv:17:3 (column 'petal_width'): 'abc' is not a number".
//
// Thread safety: a source is used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::importers {

class SampleSource {
 public:
  virtual ~SampleSource() = default;

  // Known before the first sample; sample_count is exact.
  virtual const dataset::DatasetSchema& schema() const = 0;

  // Reads the next sample into `sample` (exactly schema().sample_size() bytes) and its class
  // index (below schema().class_count()) into `label`. Returns true for a sample and false once
  // all sample_count samples were read and the input was checked to end there. After an error the
  // source must not be used again.
  virtual Result<bool> Next(MutableByteSpan sample, uint32_t& label) = 0;
};

enum class ImportFormat { kAuto, kIdx, kCsv, kCifar, kPngFolder };

// "auto", "idx", "csv", "cifar", "png-folder".
Result<ImportFormat> ParseImportFormat(std::string_view name);
std::string_view ImportFormatName(ImportFormat format);

struct ImportOptions {
  ImportFormat format = ImportFormat::kAuto;
  // idx: the labels file; by default derived from the images file name
  // ("train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz").
  std::string labels_path;
  // csv: the column holding the class label.
  std::string label_column = "label";
  // Class names in class-index order. csv: the allowed labels (a label outside the list is an
  // error); idx, cifar: names for class indices 0..n-1 (a label >= n is an error). Not used by
  // png-folder, whose classes are its sub-folder names.
  std::vector<std::string> class_names;
};

// Guesses the format of `path`: a directory holding *.bin files is cifar, any other directory
// png-folder; a file starting (after gzip decompression) with an IDX magic is idx, a .csv file
// is csv, a .bin file is cifar. InvalidArgument, asking for an explicit format, otherwise.
Result<ImportFormat> DetectFormat(const std::string& path);

// Opens `path` with options.format (detected if kAuto).
Result<std::unique_ptr<SampleSource>> OpenSource(const std::string& path,
                                                 const ImportOptions& options);

}  // namespace chiron::importers
