// Format names, detection and the OpenSource factory.
#include <filesystem>
#include <system_error>

#include "client/importers/cifar_source.h"
#include "client/importers/csv_source.h"
#include "client/importers/idx_source.h"
#include "client/importers/png_source.h"
#include "client/importers/sample_source.h"

namespace chiron::importers {
namespace {

namespace fs = std::filesystem;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status AskForFormat(const std::string& path, std::string_view why) {
  return InvalidArgumentError(path + ": cannot tell the dataset format (" + std::string(why) +
                              "); name it explicitly: idx, csv, cifar or png-folder");
}

}  // namespace

Result<ImportFormat> ParseImportFormat(std::string_view name) {
  if (name == "auto") return ImportFormat::kAuto;
  if (name == "idx") return ImportFormat::kIdx;
  if (name == "csv") return ImportFormat::kCsv;
  if (name == "cifar") return ImportFormat::kCifar;
  if (name == "png-folder") return ImportFormat::kPngFolder;
  return InvalidArgumentError("unknown dataset format '" + std::string(name) +
                              "'; use auto, idx, csv, cifar or png-folder");
}

std::string_view ImportFormatName(ImportFormat format) {
  switch (format) {
    case ImportFormat::kAuto: return "auto";
    case ImportFormat::kIdx: return "idx";
    case ImportFormat::kCsv: return "csv";
    case ImportFormat::kCifar: return "cifar";
    case ImportFormat::kPngFolder: return "png-folder";
  }
  return "unknown";
}

Result<ImportFormat> DetectFormat(const std::string& path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return NotFoundError(path + ": no such file or directory");
  if (fs::is_directory(status)) {
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file() && EndsWith(it->path().filename().string(), ".bin")) {
        return ImportFormat::kCifar;
      }
    }
    return ImportFormat::kPngFolder;
  }
  // IDX: two zero bytes, type, rank (possibly inside gzip).
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> stream, FileFactory(path)());
  uint8_t magic[4];
  auto got = ReadFull(*stream, magic);
  if (got.ok() && *got == 4 && magic[0] == 0 && magic[1] == 0 && magic[3] >= 1 && magic[3] <= 5) {
    return ImportFormat::kIdx;
  }
  if (EndsWith(path, ".csv") || EndsWith(path, ".csv.gz")) return ImportFormat::kCsv;
  if (EndsWith(path, ".bin")) return ImportFormat::kCifar;
  return AskForFormat(path, "not an IDX file, and the name ends in neither .csv nor .bin");
}

Result<std::unique_ptr<SampleSource>> OpenSource(const std::string& path,
                                                 const ImportOptions& options) {
  ImportFormat format = options.format;
  if (format == ImportFormat::kAuto) {
    CHIRON_ASSIGN_OR_RETURN(format, DetectFormat(path));
  }
  switch (format) {
    case ImportFormat::kIdx: return OpenIdxFiles(path, options.labels_path, options.class_names);
    case ImportFormat::kCsv: return OpenCsvFile(path, options.label_column, options.class_names);
    case ImportFormat::kCifar: return OpenCifarPath(path, options.class_names);
    case ImportFormat::kPngFolder:
      if (!options.class_names.empty()) {
        return InvalidArgumentError(
            "a class list does not apply to png-folder datasets: their classes are the "
            "sub-folder names");
      }
      return OpenPngFolder(path);
    case ImportFormat::kAuto: break;
  }
  return InternalError("format detection returned auto");
}

}  // namespace chiron::importers
