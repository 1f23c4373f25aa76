#include "client/importers/png_source.h"

#include <png.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "shared/base/file_system.h"
#include "shared/base/secret.h"

namespace chiron::importers {
namespace {

namespace fs = std::filesystem;

// Owns a png_image between begin_read and finish_read (which frees it itself).
class PngImage {
 public:
  PngImage() {
    std::memset(&image_, 0, sizeof(image_));
    image_.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&image_); }
  png_image* get() { return &image_; }
  std::string message() const {
    return image_.message[0] != '\0' ? std::string(image_.message) : "unknown libpng error";
  }

 private:
  png_image image_;
};

Status BeginRead(PngImage& image, ByteSpan file, const std::string& name) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (file.size() < sizeof(kSignature) ||
      std::memcmp(file.data(), kSignature, sizeof(kSignature)) != 0) {
    return InvalidArgumentError(name +
                                ": not a PNG file (it does not start with the PNG "
                                "signature)");
  }
  if (png_image_begin_read_from_memory(image.get(), file.data(), file.size()) == 0) {
    return InvalidArgumentError(name + ": not a valid PNG file (" + image.message() + ")");
  }
  return Status::Ok();
}

bool IsHidden(const std::string& name) {
  return !name.empty() && name[0] == '.';
}

bool HasPngExtension(const std::string& name) {
  if (name.size() < 4) return false;
  std::string ext = name.substr(name.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png";
}

// Sorted names of the visible entries of a directory.
Result<std::vector<std::string>> ListVisible(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!IsHidden(name)) names.push_back(name);
  }
  if (ec) return InvalidArgumentError(dir + ": cannot list directory: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

struct PngFile {
  std::string path;
  uint32_t label;
};

class PngFolderSource : public SampleSource {
 public:
  PngFolderSource(std::vector<PngFile> files, PngInfo info, std::string first_path,
                  dataset::DatasetSchema schema)
      : files_(std::move(files)),
        info_(info),
        first_path_(std::move(first_path)),
        schema_(std::move(schema)) {}

  const dataset::DatasetSchema& schema() const override { return schema_; }

  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    if (next_ == files_.size()) return false;
    const PngFile& file = files_[next_];
    auto bytes = FileSystem::Default()->ReadFile(file.path, kMaxPngFileSize);
    if (!bytes.ok()) return bytes.status().WithContext(file.path);
    auto info = ReadPngInfo(*bytes, file.path);
    if (!info.ok()) return info.status();
    if (!(*info == info_)) {
      return InvalidArgumentError(
          file.path + ": image is " + info->Describe() + " but the first image " + first_path_ +
          " is " + info_.Describe() + "; all images must have the same size and colour type");
    }
    CHIRON_RETURN_IF_ERROR(DecodePng(*bytes, file.path, info_, sample));
    // The file's bytes are plaintext data too.
    SecureZero(bytes->data(), bytes->size());
    label = file.label;
    ++next_;
    return true;
  }

 private:
  std::vector<PngFile> files_;
  PngInfo info_;
  std::string first_path_;
  dataset::DatasetSchema schema_;
  size_t next_ = 0;
};

}  // namespace

std::string PngInfo::Describe() const {
  return std::to_string(width) + "x" + std::to_string(height) + " " + (color ? "RGB" : "grey") +
         (alpha ? "+alpha" : "");
}

Result<PngInfo> ReadPngInfo(ByteSpan file, const std::string& name) {
  PngImage image;
  CHIRON_RETURN_IF_ERROR(BeginRead(image, file, name));
  PngInfo info;
  info.width = image.get()->width;
  info.height = image.get()->height;
  info.color = (image.get()->format & PNG_FORMAT_FLAG_COLOR) != 0;
  info.alpha = (image.get()->format & PNG_FORMAT_FLAG_ALPHA) != 0;
  if (info.width == 0 || info.height == 0 || info.decoded_size() > dataset::kMaxSampleSize) {
    return InvalidArgumentError(name + ": a " + info.Describe() +
                                " image is larger than the sample limit of " +
                                std::to_string(dataset::kMaxSampleSize) + " bytes");
  }
  return info;
}

Status DecodePng(ByteSpan file, const std::string& name, const PngInfo& expected,
                 MutableByteSpan out) {
  if (out.size() != expected.decoded_size()) {
    return InvalidArgumentError(name + ": output buffer does not match the image size");
  }
  CHIRON_ASSIGN_OR_RETURN(PngInfo info, ReadPngInfo(file, name));
  if (!(info == expected)) {
    return InvalidArgumentError(name + ": image is " + info.Describe() + ", expected " +
                                expected.Describe());
  }
  PngImage image;
  CHIRON_RETURN_IF_ERROR(BeginRead(image, file, name));
  image.get()->format = expected.color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const png_color black = {0, 0, 0};
  uint32_t channels = expected.channels();
  if (channels == 1) {
    if (png_image_finish_read(image.get(), &black, out.data(), 0, nullptr) == 0) {
      return InvalidArgumentError(name + ": corrupt PNG data (" + image.message() + ")");
    }
    return Status::Ok();
  }
  // libpng writes interleaved RGB; the sample layout is planar.
  std::vector<uint8_t> interleaved(out.size());
  if (png_image_finish_read(image.get(), &black, interleaved.data(), 0, nullptr) == 0) {
    SecureZero(interleaved.data(), interleaved.size());
    return InvalidArgumentError(name + ": corrupt PNG data (" + image.message() + ")");
  }
  size_t pixels = size_t{expected.width} * expected.height;
  for (size_t p = 0; p < pixels; ++p) {
    for (uint32_t c = 0; c < channels; ++c) out[c * pixels + p] = interleaved[p * channels + c];
  }
  SecureZero(interleaved.data(), interleaved.size());
  return Status::Ok();
}

Result<std::unique_ptr<SampleSource>> OpenPngFolder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFoundError(root +
                         ": not a directory; a PNG dataset is a folder with one "
                         "sub-folder of .png files per class");
  }
  CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListVisible(root));
  std::vector<std::string> class_names;
  std::vector<PngFile> files;
  for (const std::string& entry : entries) {
    std::string dir = JoinPath(root, entry);
    if (!fs::is_directory(dir, ec)) {
      return InvalidArgumentError(dir +
                                  ": only class sub-folders may be in the root of a PNG "
                                  "dataset; move or remove this file");
    }
    CHIRON_ASSIGN_OR_RETURN(std::vector<std::string> names, ListVisible(dir));
    size_t before = files.size();
    for (const std::string& name : names) {
      std::string path = JoinPath(dir, name);
      if (!fs::is_regular_file(path, ec) || !HasPngExtension(name)) {
        return InvalidArgumentError(path +
                                    ": not a .png file; a class folder may hold only "
                                    ".png images");
      }
      files.push_back({path, static_cast<uint32_t>(class_names.size())});
    }
    if (files.size() == before) {
      return InvalidArgumentError(dir +
                                  ": class folder has no .png images; add some or remove "
                                  "the folder");
    }
    class_names.push_back(entry);
  }
  if (class_names.empty()) {
    return InvalidArgumentError(root +
                                ": no class sub-folders; a PNG dataset is a folder with "
                                "one sub-folder of .png files per class");
  }
  // The first image fixes the size and colour type of all.
  const std::string& first = files.front().path;
  auto bytes = FileSystem::Default()->ReadFile(first, kMaxPngFileSize);
  if (!bytes.ok()) return bytes.status().WithContext(first);
  CHIRON_ASSIGN_OR_RETURN(PngInfo info, ReadPngInfo(*bytes, first));

  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kUint8;
  schema.shape = {info.channels(), info.height, info.width};
  schema.label_type = dataset::LabelTypeFor(class_names.size());
  schema.class_names = std::move(class_names);
  schema.sample_count = files.size();
  Status valid = schema.Validate();
  if (!valid.ok()) return valid.WithContext(root);
  return std::unique_ptr<SampleSource>(
      new PngFolderSource(std::move(files), info, first, std::move(schema)));
}

}  // namespace chiron::importers
