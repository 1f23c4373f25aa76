#include "client/importers/csv_source.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace chiron::importers {
namespace {

// The class key of unlabelled rows: labels cannot hold control characters, so no real label
// equals it.
constexpr char kNoLabelKey[] = "\x01unlabelled";

// Reads lines of at most kMaxCsvLineSize bytes, numbering them from 1.
class LineReader {
 public:
  explicit LineReader(std::unique_ptr<InputStream> stream)
      : stream_(std::move(stream)), buffer_(64 * 1024) {}

  const std::string& name() const { return stream_->name(); }
  uint64_t line_number() const { return line_number_; }

  // Sets `line` (without its line end) and returns true, or returns false at the end.
  Result<bool> Next(std::string& line) {
    line.clear();
    bool any = false;
    while (true) {
      if (pos_ == fill_) {
        if (eof_) break;
        CHIRON_ASSIGN_OR_RETURN(fill_, stream_->Read(MutableByteSpan(buffer_)));
        pos_ = 0;
        if (fill_ == 0) {
          eof_ = true;
          break;
        }
      }
      any = true;
      const uint8_t* start = buffer_.data() + pos_;
      const void* newline = std::memchr(start, '\n', fill_ - pos_);
      size_t take =
          newline != nullptr ? static_cast<const uint8_t*>(newline) - start : fill_ - pos_;
      if (line.size() + take > kMaxCsvLineSize) {
        return InvalidArgumentError(name() + ":" + std::to_string(line_number_ + 1) +
                                    ": line is longer than " + std::to_string(kMaxCsvLineSize) +
                                    " bytes; is this really a CSV file?");
      }
      line.append(reinterpret_cast<const char*>(start), take);
      pos_ += take;
      if (newline != nullptr) {
        ++pos_;
        break;
      }
    }
    if (!any) return false;
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }

 private:
  std::unique_ptr<InputStream> stream_;
  Bytes buffer_;
  size_t pos_ = 0;
  size_t fill_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsBlank(std::string_view line) {
  return Trim(line).empty();
}

// Splits one line into trimmed, unquoted fields. `where` is "file:line".
Status SplitFields(std::string_view line, const std::string& where,
                   std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    // Skip leading spaces to find an opening quote.
    size_t start = i;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (!closed) {
        return InvalidArgumentError(where + ":" + std::to_string(fields.size() + 1) +
                                    ": unterminated quoted field (quoted fields may not span "
                                    "lines)");
      }
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i < line.size() && line[i] != ',') {
        return InvalidArgumentError(where + ":" + std::to_string(fields.size() + 1) +
                                    ": unexpected character after a closing quote");
      }
    } else {
      i = start;
      size_t comma = line.find(',', i);
      size_t end = comma == std::string_view::npos ? line.size() : comma;
      std::string_view raw = line.substr(i, end - i);
      if (raw.find('"') != std::string_view::npos) {
        return InvalidArgumentError(where + ":" + std::to_string(fields.size() + 1) +
                                    ": stray quote inside an unquoted field");
      }
      field = std::string(Trim(raw));
      i = end;
    }
    fields.push_back(field);
    if (i >= line.size()) break;
    ++i;  // the comma
    if (i == line.size()) {
      fields.emplace_back();  // a trailing comma ends with an empty field
      break;
    }
  }
  return Status::Ok();
}

std::string Shorten(std::string_view s) {
  if (s.size() <= 40) return std::string(s);
  return std::string(s.substr(0, 37)) + "...";
}

// The parsed header: which column is the label, names of all columns.
struct CsvLayout {
  std::vector<std::string> columns;
  size_t label_index = 0;
  bool has_label = true;  // false only with label_optional and no such column
  size_t feature_count() const { return columns.size() - (has_label ? 1 : 0); }
};

Result<CsvLayout> ParseHeader(LineReader& reader, const std::string& label_column,
                              bool label_optional = false) {
  std::string line;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool more, reader.Next(line));
    if (!more) {
      return InvalidArgumentError(reader.name() +
                                  ": the file is empty; a CSV dataset needs a header row naming "
                                  "its columns");
    }
    if (!IsBlank(line)) break;
  }
  std::string where = reader.name() + ":" + std::to_string(reader.line_number());
  CsvLayout layout;
  CHIRON_RETURN_IF_ERROR(SplitFields(line, where, layout.columns));
  bool found = false;
  for (size_t i = 0; i < layout.columns.size(); ++i) {
    if (layout.columns[i] != label_column) continue;
    if (found) {
      return InvalidArgumentError(where + ": the label column '" + label_column +
                                  "' appears twice in the header");
    }
    found = true;
    layout.label_index = i;
  }
  if (!found && label_optional) {
    layout.has_label = false;
    layout.label_index = layout.columns.size();  // matches no column
    return layout;
  }
  if (!found) {
    std::string names;
    for (size_t i = 0; i < layout.columns.size() && i < 20; ++i) {
      names += (i ? ", " : "") + ("'" + Shorten(layout.columns[i]) + "'");
    }
    return InvalidArgumentError(where + ": no column named '" + label_column +
                                "' in the header (columns: " + names +
                                "); name the label column explicitly");
  }
  if (layout.columns.size() < 2) {
    return InvalidArgumentError(where +
                                ": the header has only the label column; a CSV dataset "
                                "needs at least one feature column");
  }
  return layout;
}

// Parses one data row into `features` (float32, native order) and the label text.
Status ParseRow(const std::vector<std::string>& fields, const CsvLayout& layout,
                const std::string& where, float* features, std::string& label) {
  if (fields.size() != layout.columns.size()) {
    return InvalidArgumentError(where + ": row has " + std::to_string(fields.size()) +
                                " fields but the header has " +
                                std::to_string(layout.columns.size()));
  }
  size_t out = 0;
  for (size_t column = 0; column < fields.size(); ++column) {
    const std::string& field = fields[column];
    std::string at = where + ":" + std::to_string(column + 1) + " (column '" +
                     Shorten(layout.columns[column]) + "')";
    if (column == layout.label_index) {
      if (field.empty()) return InvalidArgumentError(at + ": empty label");
      label = field;
      continue;
    }
    if (field.empty()) return InvalidArgumentError(at + ": empty value; every feature is needed");
    const char* begin = field.data();
    const char* end = field.data() + field.size();
    if (*begin == '+') ++begin;  // from_chars does not take a leading '+'
    float value = 0;
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec == std::errc::result_out_of_range) {
      return InvalidArgumentError(at + ": '" + Shorten(field) + "' is out of float32 range");
    }
    if (ec != std::errc() || ptr != end) {
      return InvalidArgumentError(at + ": '" + Shorten(field) + "' is not a number");
    }
    if (!std::isfinite(value)) {
      return InvalidArgumentError(at + ": '" + Shorten(field) + "' is not a finite number");
    }
    features[out++] = value;
  }
  return Status::Ok();
}

class CsvSource : public SampleSource {
 public:
  CsvSource(LineReader reader, CsvLayout layout, dataset::DatasetSchema schema,
            std::unordered_map<std::string, uint32_t> class_index)
      : reader_(std::move(reader)),
        layout_(std::move(layout)),
        schema_(std::move(schema)),
        class_index_(std::move(class_index)),
        features_(layout_.feature_count()) {}

  const dataset::DatasetSchema& schema() const override { return schema_; }

  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    if (sample.size() != schema_.sample_size()) {
      return InvalidArgumentError("CSV source: sample buffer has the wrong size");
    }
    std::string line;
    while (true) {
      CHIRON_ASSIGN_OR_RETURN(bool more, reader_.Next(line));
      if (!more) {
        if (rows_ != schema_.sample_count) {
          return InvalidArgumentError(reader_.name() + ": the file changed during the import (" +
                                      std::to_string(rows_) + " rows now, " +
                                      std::to_string(schema_.sample_count) + " before)");
        }
        return false;
      }
      if (!IsBlank(line)) break;
    }
    std::string where = reader_.name() + ":" + std::to_string(reader_.line_number());
    if (rows_ == schema_.sample_count) {
      return InvalidArgumentError(where + ": the file changed during the import (more rows)");
    }
    CHIRON_RETURN_IF_ERROR(SplitFields(line, where, fields_));
    std::string label_text;
    CHIRON_RETURN_IF_ERROR(ParseRow(fields_, layout_, where, features_.data(), label_text));
    if (!layout_.has_label) label_text = kNoLabelKey;
    auto it = class_index_.find(label_text);
    if (it == class_index_.end()) {
      return InvalidArgumentError(where + ": label '" + Shorten(label_text) +
                                  "' was not seen before (did the file change during the import?)");
    }
    label = it->second;
    // float32 little-endian, the container's element encoding.
    for (size_t i = 0; i < features_.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &features_[i], 4);
      for (int b = 0; b < 4; ++b) sample[4 * i + b] = static_cast<uint8_t>(bits >> (8 * b));
    }
    ++rows_;
    return true;
  }

 private:
  LineReader reader_;
  CsvLayout layout_;
  dataset::DatasetSchema schema_;
  std::unordered_map<std::string, uint32_t> class_index_;
  std::vector<float> features_;
  std::vector<std::string> fields_;
  uint64_t rows_ = 0;
};

Result<std::unique_ptr<SampleSource>> OpenCsv(StreamFactory input, const std::string& label_column,
                                              std::vector<std::string> class_names,
                                              bool label_optional, bool* has_labels) {
  // Pass 1: validate every row, count them, collect the classes.
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> stream, input());
  LineReader reader(std::move(stream));
  CHIRON_ASSIGN_OR_RETURN(CsvLayout layout, ParseHeader(reader, label_column, label_optional));
  if (has_labels != nullptr) *has_labels = layout.has_label;
  size_t feature_count = layout.feature_count();
  if (feature_count > dataset::kMaxSampleSize / 4) {
    return InvalidArgumentError(reader.name() + ":1: " + std::to_string(feature_count) +
                                " feature columns exceed the sample size limit");
  }
  bool fixed_classes = !class_names.empty();
  std::unordered_map<std::string, uint32_t> class_index;
  for (size_t i = 0; i < class_names.size(); ++i) {
    if (!class_index.emplace(class_names[i], static_cast<uint32_t>(i)).second) {
      return InvalidArgumentError("class list names '" + class_names[i] + "' twice");
    }
  }
  std::vector<float> features(feature_count);
  std::vector<std::string> fields;
  std::string line, label;
  uint64_t rows = 0;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool more, reader.Next(line));
    if (!more) break;
    if (IsBlank(line)) continue;
    std::string where = reader.name() + ":" + std::to_string(reader.line_number());
    CHIRON_RETURN_IF_ERROR(SplitFields(line, where, fields));
    CHIRON_RETURN_IF_ERROR(ParseRow(fields, layout, where, features.data(), label));
    if (!layout.has_label) {
      // Unlabelled rows (predictions only): every row maps to class 0 of the given list.
      class_index.emplace(kNoLabelKey, 0);
    } else if (class_index.find(label) == class_index.end()) {
      std::string at = where + ":" + std::to_string(layout.label_index + 1) + " (column '" +
                       Shorten(label_column) + "')";
      if (fixed_classes) {
        return InvalidArgumentError(at + ": label '" + Shorten(label) +
                                    "' is not in the given class list");
      }
      if (label.size() > dataset::kMaxClassNameSize) {
        return InvalidArgumentError(at + ": label '" + Shorten(label) + "' is longer than " +
                                    std::to_string(dataset::kMaxClassNameSize) + " bytes");
      }
      for (unsigned char c : label) {
        if (c < 0x20 || c == 0x7f) {
          return InvalidArgumentError(at + ": label contains a control character");
        }
      }
      if (class_names.size() == dataset::kMaxClasses) {
        return InvalidArgumentError(at + ": more than " + std::to_string(dataset::kMaxClasses) +
                                    " distinct labels; is the label column a numeric target? "
                                    "Only classification is supported");
      }
      class_index.emplace(label, static_cast<uint32_t>(class_names.size()));
      class_names.push_back(label);
    }
    ++rows;
    if (rows > dataset::kMaxSampleCount) {
      return InvalidArgumentError(where + ": more rows than the limit of " +
                                  std::to_string(dataset::kMaxSampleCount));
    }
  }
  if (rows == 0) {
    return InvalidArgumentError(reader.name() + ": the header is not followed by any data rows");
  }

  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kFloat32;
  schema.shape = {static_cast<uint32_t>(feature_count)};
  schema.label_type = dataset::LabelTypeFor(class_names.size());
  schema.class_names = std::move(class_names);
  schema.sample_count = rows;
  Status valid = schema.Validate();
  if (!valid.ok()) return valid.WithContext(reader.name());

  // Pass 2 streams the rows again.
  CHIRON_ASSIGN_OR_RETURN(stream, input());
  LineReader second(std::move(stream));
  CHIRON_ASSIGN_OR_RETURN(CsvLayout again, ParseHeader(second, label_column, label_optional));
  if (again.columns != layout.columns) {
    return InvalidArgumentError(second.name() + ": the file changed during the import");
  }
  return std::unique_ptr<SampleSource>(new CsvSource(std::move(second), std::move(layout),
                                                     std::move(schema), std::move(class_index)));
}

}  // namespace

Result<std::unique_ptr<SampleSource>> OpenCsvSource(StreamFactory input,
                                                    const std::string& label_column,
                                                    std::vector<std::string> class_names) {
  return OpenCsv(std::move(input), label_column, std::move(class_names), false, nullptr);
}

Result<std::unique_ptr<SampleSource>> OpenCsvSourceForPrediction(
    StreamFactory input, const std::string& label_column, std::vector<std::string> class_names,
    bool* has_labels) {
  if (class_names.empty()) {
    return InvalidArgumentError("CSV for predictions: the model's class names are needed");
  }
  return OpenCsv(std::move(input), label_column, std::move(class_names), true, has_labels);
}

Result<std::unique_ptr<SampleSource>> OpenCsvForPrediction(
    const std::string& path, const std::string& label_column,
    std::vector<std::string> class_names, bool* has_labels) {
  return OpenCsvSourceForPrediction(FileFactory(path), label_column, std::move(class_names),
                                    has_labels);
}

Result<std::unique_ptr<SampleSource>> OpenCsvFile(const std::string& path,
                                                  const std::string& label_column,
                                                  std::vector<std::string> class_names) {
  return OpenCsvSource(FileFactory(path), label_column, std::move(class_names));
}

}  // namespace chiron::importers
