#include "client/importers/idx_source.h"

#include <algorithm>
#include <cctype>

namespace chiron::importers {
namespace {

constexpr uint8_t kTypeUnsignedByte = 0x08;

struct IdxHeader {
  std::vector<uint32_t> dims;  // dims[0] is the item count
};

std::string Hex32(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(v >> shift) & 0xf]);
  return out;
}

std::string TypeName(uint8_t type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

// `role` is "images" or "labels".
Result<IdxHeader> ReadIdxHeader(InputStream& stream, std::string_view role, size_t min_rank,
                                size_t max_rank) {
  const std::string& name = stream.name();
  uint8_t magic[4];
  CHIRON_ASSIGN_OR_RETURN(size_t got, ReadFull(stream, magic));
  if (got < 4) {
    return InvalidArgumentError(name + ": truncated IDX header: the file has only " +
                                std::to_string(got) + " byte(s)");
  }
  uint32_t magic_value =
      uint32_t{magic[0]} << 24 | uint32_t{magic[1]} << 16 | uint32_t{magic[2]} << 8 | magic[3];
  if (magic[0] != 0 || magic[1] != 0) {
    return InvalidArgumentError(name + ": not an IDX file (bad magic " + Hex32(magic_value) +
                                "; an IDX file starts with two zero bytes, a type byte and a "
                                "dimension count, e.g. 0x00000803 for images)");
  }
  if (magic[2] != kTypeUnsignedByte) {
    return InvalidArgumentError(name + ": IDX element type 0x" + Hex32(magic[2]).substr(8) + " (" +
                                TypeName(magic[2]) +
                                ") is not supported; only unsigned byte (0x08) files are");
  }
  size_t rank = magic[3];
  if (rank < min_rank || rank > max_rank) {
    std::string expected = min_rank == max_rank
                               ? "exactly " + std::to_string(min_rank) + " dimension"
                               : std::to_string(min_rank) + " to " + std::to_string(max_rank) +
                                     " dimensions (the count, then the sample shape)";
    return InvalidArgumentError(name + ": an IDX " + std::string(role) + " file has " + expected +
                                ", but this one has " + std::to_string(rank) +
                                " (are the images and labels files swapped?)");
  }
  IdxHeader header;
  for (size_t i = 0; i < rank; ++i) {
    uint8_t dim[4];
    CHIRON_ASSIGN_OR_RETURN(size_t dim_got, ReadFull(stream, dim));
    if (dim_got < 4) {
      return InvalidArgumentError(name + ": truncated IDX header: dimension " + std::to_string(i) +
                                  " is cut short");
    }
    header.dims.push_back(uint32_t{dim[0]} << 24 | uint32_t{dim[1]} << 16 | uint32_t{dim[2]} << 8 |
                          dim[3]);
  }
  if (header.dims[0] == 0) {
    return InvalidArgumentError(name + ": the IDX " + std::string(role) + " file holds no items");
  }
  return header;
}

class IdxSource : public SampleSource {
 public:
  IdxSource(std::unique_ptr<InputStream> images, std::unique_ptr<InputStream> labels,
            dataset::DatasetSchema schema)
      : images_(std::move(images)), labels_(std::move(labels)), schema_(std::move(schema)) {}

  const dataset::DatasetSchema& schema() const override { return schema_; }

  Result<bool> Next(MutableByteSpan sample, uint32_t& label) override {
    uint64_t count = schema_.sample_count;
    if (index_ == count) {
      CHIRON_RETURN_IF_ERROR(ExpectEnd(
          *images_,
          "has extra bytes after the " + std::to_string(count) + " images its header declares"));
      CHIRON_RETURN_IF_ERROR(ExpectEnd(
          *labels_,
          "has extra bytes after the " + std::to_string(count) + " labels its header declares"));
      ++index_;
      return false;
    }
    if (index_ > count) return false;
    if (sample.size() != schema_.sample_size()) {
      return InvalidArgumentError("IDX source: sample buffer has the wrong size");
    }
    CHIRON_ASSIGN_OR_RETURN(size_t got, ReadFull(*images_, sample));
    if (got != sample.size()) {
      return InvalidArgumentError(images_->name() + ": truncated: image " + std::to_string(index_) +
                                  " of " + std::to_string(count) + " has only " +
                                  std::to_string(got) + " of " + std::to_string(sample.size()) +
                                  " bytes");
    }
    uint8_t byte;
    CHIRON_ASSIGN_OR_RETURN(size_t label_got, ReadFull(*labels_, MutableByteSpan(&byte, 1)));
    if (label_got != 1) {
      return InvalidArgumentError(labels_->name() + ": truncated at label " +
                                  std::to_string(index_) +
                                  " (did the file change during the "
                                  "import?)");
    }
    if (byte >= schema_.class_count()) {
      return InvalidArgumentError(labels_->name() + ": record " + std::to_string(index_) +
                                  ": label " + std::to_string(byte) + " is not below the " +
                                  std::to_string(schema_.class_count()) + " classes");
    }
    label = byte;
    ++index_;
    return true;
  }

 private:
  std::unique_ptr<InputStream> images_;
  std::unique_ptr<InputStream> labels_;
  dataset::DatasetSchema schema_;
  uint64_t index_ = 0;
};

bool ContainsFashion(const std::string& path) {
  std::string lower(path);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("fashion") != std::string::npos;
}

}  // namespace

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

std::string DefaultIdxLabelsPath(const std::string& images_path) {
  size_t slash = images_path.rfind('/');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  for (auto [from, to] : {std::pair{"-images-idx3-ubyte", "-labels-idx1-ubyte"},
                          std::pair{"-images.idx3-ubyte", "-labels.idx1-ubyte"}}) {
    size_t at = images_path.find(from, base);
    if (at != std::string::npos) {
      std::string out = images_path;
      out.replace(at, std::string_view(from).size(), to);
      return out;
    }
  }
  return "";
}

Result<std::unique_ptr<SampleSource>> OpenIdxSource(StreamFactory images_factory,
                                                    StreamFactory labels_factory,
                                                    std::vector<std::string> class_names) {
  // Pass 1 over the labels: check the header, the count and every label, find the class count.
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> images, images_factory());
  CHIRON_ASSIGN_OR_RETURN(IdxHeader image_header, ReadIdxHeader(*images, "images", 2, 5));
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<InputStream> labels, labels_factory());
  CHIRON_ASSIGN_OR_RETURN(IdxHeader label_header, ReadIdxHeader(*labels, "labels", 1, 1));
  uint64_t count = image_header.dims[0];
  if (label_header.dims[0] != count) {
    return InvalidArgumentError(images->name() + " has " + std::to_string(count) + " images but " +
                                labels->name() + " has " + std::to_string(label_header.dims[0]) +
                                " labels; use the labels file of the same split");
  }
  uint32_t max_label = 0;
  Bytes block(64 * 1024);
  uint64_t seen = 0;
  while (seen < count) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(block.size(), count - seen));
    CHIRON_ASSIGN_OR_RETURN(size_t got, ReadFull(*labels, MutableByteSpan(block).first(want)));
    for (size_t i = 0; i < got; ++i) {
      if (!class_names.empty() && block[i] >= class_names.size()) {
        return InvalidArgumentError(labels->name() + ": record " + std::to_string(seen + i) +
                                    ": label " + std::to_string(block[i]) + " is not below the " +
                                    std::to_string(class_names.size()) + " class names given");
      }
      max_label = std::max<uint32_t>(max_label, block[i]);
    }
    seen += got;
    if (got < want) {
      return InvalidArgumentError(labels->name() + ": truncated: only " + std::to_string(seen) +
                                  " of the " + std::to_string(count) +
                                  " labels its header declares are present");
    }
  }
  CHIRON_RETURN_IF_ERROR(ExpectEnd(*labels, "has extra bytes after the " + std::to_string(count) +
                                                " labels its header declares"));

  dataset::DatasetSchema schema;
  schema.element_type = dataset::ElementType::kUint8;
  schema.shape.assign(image_header.dims.begin() + 1, image_header.dims.end());
  if (class_names.empty()) {
    for (uint32_t i = 0; i <= max_label; ++i) class_names.push_back(std::to_string(i));
  }
  schema.label_type = dataset::LabelTypeFor(class_names.size());
  schema.class_names = std::move(class_names);
  schema.sample_count = count;
  Status valid = schema.Validate();
  if (!valid.ok()) return valid.WithContext(images->name());

  // Pass 2 streams: a fresh labels stream, the images stream positioned after its header.
  CHIRON_ASSIGN_OR_RETURN(labels, labels_factory());
  CHIRON_RETURN_IF_ERROR(ReadIdxHeader(*labels, "labels", 1, 1).status());
  return std::unique_ptr<SampleSource>(
      new IdxSource(std::move(images), std::move(labels), std::move(schema)));
}

Result<std::unique_ptr<SampleSource>> OpenIdxFiles(const std::string& images_path,
                                                   const std::string& labels_path,
                                                   std::vector<std::string> class_names) {
  std::string labels = labels_path.empty() ? DefaultIdxLabelsPath(images_path) : labels_path;
  if (labels.empty()) {
    return InvalidArgumentError(images_path +
                                ": cannot derive the IDX labels file name (expected "
                                "'...-images-idx3-ubyte[.gz]'); pass the labels file explicitly");
  }
  if (class_names.empty() && ContainsFashion(images_path)) {
    class_names = FashionMnistClassNames();
  }
  return OpenIdxSource(FileFactory(images_path), FileFactory(labels), std::move(class_names));
}

}  // namespace chiron::importers
