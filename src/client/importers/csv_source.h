// CSV importer: a header row, numeric feature columns and one named label column.
//
// Rules: comma separated; the first line names the columns; every other column than the label
// column is a feature and must hold a finite number (parsed as float32, surrounding spaces
// allowed); every row has as many fields as the header. Fields may be double-quoted ("" inside
// quotes is a quote) but may not span lines. Blank lines are skipped; CRLF line ends are fine.
// Lines longer than kMaxCsvLineSize are rejected.
//
// Samples are float32 vectors of the feature columns in file order. Class names are the distinct
// label values in order of first appearance, or the given list (then any other label is an
// error). A first pass validates every row and collects the classes; the second pass streams.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/importers/input_stream.h"
#include "client/importers/sample_source.h"

namespace chiron::importers {

inline constexpr size_t kMaxCsvLineSize = size_t{1} << 20;

Result<std::unique_ptr<SampleSource>> OpenCsvSource(StreamFactory input,
                                                    const std::string& label_column,
                                                    std::vector<std::string> class_names);

// For predictions (chiron predict): the label column is optional. If the header has a column
// named `label_column`, its values must be among `class_names` (the model's; an error names the
// file, line and column otherwise) and *has_labels is true. Without that column every column is
// a feature, every sample's label is 0 and *has_labels is false. `class_names` must not be empty.
Result<std::unique_ptr<SampleSource>> OpenCsvSourceForPrediction(
    StreamFactory input, const std::string& label_column, std::vector<std::string> class_names,
    bool* has_labels);
Result<std::unique_ptr<SampleSource>> OpenCsvForPrediction(const std::string& path,
                                                           const std::string& label_column,
                                                           std::vector<std::string> class_names,
                                                           bool* has_labels);

Result<std::unique_ptr<SampleSource>> OpenCsvFile(const std::string& path,
                                                  const std::string& label_column,
                                                  std::vector<std::string> class_names);

}  // namespace chiron::importers
