#include "client/importers/cifar_source.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace chiron::importers {
namespace {

namespace fs = std::filesystem;

constexpr size_t kCifarSampleSize = kCifarRecordSize - 1;

class CifarSource : public SampleSource {
 public:
  CifarSource(std::vector<CifarBatch> batches, dataset::DatasetSchema schema)
      : batches_(std::move(batches)), schema_(std::move(schema)) {}

  const dataset::DatasetSchema& schema() const override { return schema_; }

  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    if (sample.size() != kCifarSampleSize) {
      return InvalidArgumentError("CIFAR source: sample buffer has the wrong size");
    }
    while (true) {
      if (batch_ == batches_.size()) return false;
      const CifarBatch& batch = batches_[batch_];
      if (!stream_) {
        CHIRON_ASSIGN_OR_RETURN(stream_, batch.open());
        record_ = 0;
      }
      if (record_ < batch.size / kCifarRecordSize) break;
      CHIRON_RETURN_IF_ERROR(ExpectEnd(*stream_,
                                       "grew during the import (more records than "
                                       "its size showed)"));
      stream_.reset();
      ++batch_;
    }
    const CifarBatch& batch = batches_[batch_];
    std::string where = batch.name + ": record " + std::to_string(record_);
    uint8_t label_byte;
    CHIRON_ASSIGN_OR_RETURN(size_t got, ReadFull(*stream_, MutableByteSpan(&label_byte, 1)));
    if (got == 1) {
      CHIRON_ASSIGN_OR_RETURN(got, ReadFull(*stream_, sample));
    }
    if (got != sample.size()) {
      return InvalidArgumentError(where + " is truncated (the file shrank during the import)");
    }
    if (label_byte >= schema_.class_count()) {
      return InvalidArgumentError(where + ": label " + std::to_string(label_byte) +
                                  " is out of range 0.." +
                                  std::to_string(schema_.class_count() - 1) +
                                  " (only CIFAR-10 binary batches are supported, not CIFAR-100)");
    }
    label = label_byte;
    ++record_;
    return true;
  }

 private:
  std::vector<CifarBatch> batches_;
  dataset::DatasetSchema schema_;
  size_t batch_ = 0;
  uint64_t record_ = 0;
  std::unique_ptr<InputStream> stream_;
};

// Reads batches.meta.txt: one class name per line.
Result<std::vector<std::string>> ReadMetaNames(const std::string& path) {
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> stream, OpenFileStream(path));
  Bytes contents(64 * 1024);
  CHIRON_ASSIGN_OR_RETURN(size_t got, ReadFull(*stream, MutableByteSpan(contents)));
  if (got == contents.size()) return InvalidArgumentError(path + ": too large for a class list");
  std::vector<std::string> names;
  std::string line;
  for (size_t i = 0; i <= got; ++i) {
    if (i == got || contents[i] == '\n') {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
      line.clear();
    } else {
      line.push_back(static_cast<char>(contents[i]));
    }
  }
  if (names.size() != 10) {
    return InvalidArgumentError(path + ": expected 10 class names (one per line), found " +
                                std::to_string(names.size()));
  }
  return names;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const std::vector<std::string>& Cifar10ClassNames() {
  static const std::vector<std::string> kNames = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return kNames;
}

Result<std::unique_ptr<SampleSource>> OpenCifarSource(std::vector<CifarBatch> batches,
                                                      std::vector<std::string> class_names) {
  if (batches.empty()) return InvalidArgumentError("no CIFAR-10 batch files to import");
  uint64_t count = 0;
  for (const CifarBatch& batch : batches) {
    if (batch.size == 0) {
      return InvalidArgumentError(batch.name +
                                  ": empty file; a CIFAR-10 batch holds 3073-byte "
                                  "records");
    }
    if (batch.size % kCifarRecordSize != 0) {
      uint64_t whole = batch.size / kCifarRecordSize;
      std::string hint = batch.size % 3074 == 0
                             ? " (3074-byte records suggest CIFAR-100, which is not supported)"
                             : "";
      return InvalidArgumentError(batch.name + ": " + std::to_string(batch.size) +
                                  " bytes is not a whole number of 3073-byte CIFAR-10 records: "
                                  "record " +
                                  std::to_string(whole) + " is truncated (it has " +
                                  std::to_string(batch.size % kCifarRecordSize) +
                                  " of 3073 bytes)" + hint);
    }
    count += batch.size / kCifarRecordSize;
  }
  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kUint8;
  schema.shape = {3, 32, 32};
  if (class_names.empty()) class_names = Cifar10ClassNames();
  if (class_names.size() > 256) {
    return InvalidArgumentError("CIFAR-10 labels are one byte: at most 256 class names");
  }
  schema.label_type = dataset::LabelType::kUint8;
  schema.class_names = std::move(class_names);
  schema.sample_count = count;
  CHIRON_RETURN_IF_ERROR(schema.Validate());
  return std::unique_ptr<SampleSource>(new CifarSource(std::move(batches), std::move(schema)));
}

Result<std::unique_ptr<SampleSource>> OpenCifarPath(const std::string& path,
                                                    std::vector<std::string> class_names) {
  std::error_code ec;
  std::vector<std::string> files;
  std::string directory;
  if (fs::is_directory(path, ec)) {
    directory = path;
    std::vector<std::string> all_bins;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
      std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || !EndsWith(name, ".bin")) continue;
      all_bins.push_back(entry.path().string());
      if (name.starts_with("data_batch_")) files.push_back(entry.path().string());
    }
    if (ec) return InvalidArgumentError(path + ": cannot list directory: " + ec.message());
    if (files.empty()) files = all_bins;
    if (files.empty()) {
      return InvalidArgumentError(path + ": no CIFAR-10 batch files (*.bin) in this directory");
    }
    std::sort(files.begin(), files.end());
  } else {
    if (!fs::exists(path, ec)) return NotFoundError(path + ": no such file or directory");
    files.push_back(path);
    directory = fs::path(path).parent_path().string();
  }
  if (class_names.empty()) {
    std::string meta =
        (fs::path(directory.empty() ? "." : directory) / "batches.meta.txt").string();
    if (fs::exists(meta, ec)) {
      CHIRON_ASSIGN_OR_RETURN(class_names, ReadMetaNames(meta));
    }
  }
  std::vector<CifarBatch> batches;
  for (const std::string& file : files) {
    uint64_t size = fs::file_size(file, ec);
    if (ec) return InvalidArgumentError(file + ": cannot read its size: " + ec.message());
    batches.push_back({file, size, [file]() { return OpenFileStream(file); }});
  }
  return OpenCifarSource(std::move(batches), std::move(class_names));
}

}  // namespace chiron::importers
