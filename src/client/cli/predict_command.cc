// `chiron predict --model NAME [--owner ID] FILE...` (or `chiron predict NAME --idx/--raw ...`):
// black-box predictions from a trained model, each sample drawn in the terminal beside its
// classes. FILE may be an IDX images file (plain or .gz), a CSV file (numeric feature columns; a
// label column, if present, only shows the true label and is never sent), a PNG image or a
// folder of PNG images (per-class sub-folders show the true label). Every input is checked
// against the model's input schema here, before anything is sent, with errors naming the file
// and line; samples go in batches no larger than the server's and the rate limit's maximum,
// paced to the rate limit (predict_batches.h). Whatever stops a run part-way, every answered
// (charged) sample is printed and the exit code is 7 (partial).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "chiron/v1/models.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/job_view.h"
#include "client/cli/predict_batches.h"
#include "client/cli/terminal_image.h"
#include "client/importers/csv_source.h"
#include "client/importers/input_stream.h"
#include "client/importers/png_source.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

constexpr uint64_t kMaxSamples = 10000;        // per command
constexpr size_t kMaxRawFileSize = size_t{256} << 20;

constexpr uint64_t kDefaultIdxCount = 8;      // an IDX file holds thousands: show a few

struct PredictArgs {
  std::string model;
  std::string owner;                 // a grantee names the model's owner
  std::vector<std::string> files;    // positional; the first is the model without --model
  std::string idx;
  std::string labels;
  std::string raw;
  std::string label_column = "label";
  uint64_t offset = 0;
  uint64_t count = 0;                // 0: every sample (IDX: kDefaultIdxCount)
  uint32_t top_k = 0;
  std::string image_style = "auto";
  bool json = false;
  bool no_wait = false;              // stop at the rate limit instead of waiting
};

// Samples read from the user's files, in the model's schema.
struct Samples {
  std::vector<std::string> items;      // raw bytes of each sample
  std::vector<uint32_t> image_shape;   // for drawing
  bool f32 = false;
  std::vector<int> labels;             // -1: unknown
  std::vector<std::string> names;      // heading of each sample ("t10k-images... #8", "a.png")
  std::vector<uint64_t> indices;       // index of each sample in its file
};

// How many samples to skip before the first one taken, and how many to take, across all inputs.
struct Window {
  uint64_t skip = 0;
  uint64_t take = 0;
  uint64_t seen = 0;  // samples in the inputs read so far (for "past the end")
  bool full() const { return take == 0; }

  // For a file of `total` samples: which ones to take ([first, first + count), count may be 0).
  struct Range {
    uint64_t first = 0, count = 0;
  };
  Range Claim(uint64_t total) {
    seen += total;
    if (skip >= total) {
      skip -= total;
      return {};
    }
    Range range{skip, std::min(take, total - skip)};
    skip = 0;
    take -= range.count;
    return range;
  }
};

void AddSample(Samples& samples, std::string item, int label, std::string name, uint64_t index) {
  samples.items.push_back(std::move(item));
  samples.labels.push_back(label);
  samples.names.push_back(std::move(name));
  samples.indices.push_back(index);
}

std::string BaseName(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  return trimmed.substr(trimmed.find_last_of('/') + 1);
}

uint64_t Product(const std::vector<uint32_t>& shape) {
  uint64_t product = 1;
  for (uint32_t d : shape) product *= d;
  return product;
}

std::string ShapeText(const std::vector<uint32_t>& shape) {
  std::string out;
  for (uint32_t d : shape) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

Status Skip(importers::InputStream& stream, uint64_t bytes) {
  std::vector<uint8_t> buffer(64 * 1024);
  while (bytes > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(bytes, buffer.size()));
    CHIRON_ASSIGN_OR_RETURN(size_t got,
                            importers::ReadFull(stream, MutableByteSpan(buffer.data(), want)));
    if (got != want) return InvalidArgumentError(stream.name() + ": ends early");
    bytes -= want;
  }
  return Status::Ok();
}

// Reads the IDX header (plain or gzip) of `path`: element type must be unsigned byte.
struct IdxFile {
  std::unique_ptr<importers::InputStream> stream;
  std::vector<uint32_t> dims;
};

Result<IdxFile> OpenIdx(const std::string& path) {
  CHIRON_ASSIGN_OR_RETURN(auto raw, importers::OpenFileStream(path));
  CHIRON_ASSIGN_OR_RETURN(auto stream, importers::MaybeDecompress(std::move(raw)));
  uint8_t magic[4];
  CHIRON_ASSIGN_OR_RETURN(size_t got, importers::ReadFull(*stream, MutableByteSpan(magic, 4)));
  if (got != 4 || magic[0] != 0 || magic[1] != 0) {
    return InvalidArgumentError(path + ": not an IDX file (no IDX magic)");
  }
  if (magic[2] != 0x08) {
    return InvalidArgumentError(path + ": IDX element type must be unsigned byte (0x08)");
  }
  if (magic[3] < 1 || magic[3] > 5) {
    return InvalidArgumentError(path + ": IDX files here have 1 to 5 dimensions");
  }
  IdxFile file;
  for (int i = 0; i < magic[3]; ++i) {
    uint8_t be[4];
    CHIRON_ASSIGN_OR_RETURN(got, importers::ReadFull(*stream, MutableByteSpan(be, 4)));
    if (got != 4) return InvalidArgumentError(path + ": truncated IDX header");
    uint32_t d = (uint32_t{be[0]} << 24) | (uint32_t{be[1]} << 16) | (uint32_t{be[2]} << 8) | be[3];
    if (d == 0) return InvalidArgumentError(path + ": IDX dimension of size 0");
    file.dims.push_back(d);
  }
  file.stream = std::move(stream);
  return file;
}

std::vector<uint32_t> ModelShape(const v1::ModelInfo& model) {
  return std::vector<uint32_t>(model.input_shape().begin(), model.input_shape().end());
}

std::string ModelTakes(const v1::ModelInfo& model) {
  return "model '" + model.name() + "' takes " + ShapeText(ModelShape(model)) + " " +
         (model.input_type().empty() ? std::string("u8") : model.input_type()) + " samples";
}

// The model's class index of a true-label name (a class name, or a class index in decimal).
int ClassIndexOf(const v1::ModelInfo& model, const std::string& name) {
  for (int i = 0; i < model.class_names_size(); ++i) {
    if (model.class_names(i) == name) return i;
  }
  if (!name.empty() && name.size() <= 5 &&
      name.find_first_not_of("0123456789") == std::string::npos) {
    int index = std::stoi(name);
    uint32_t classes =
        model.class_names_size() > 0 ? model.class_names_size() : model.output_size();
    if (index >= 0 && static_cast<uint32_t>(index) < classes) return index;
  }
  return -1;
}

Status ReadIdxSamples(const std::string& path, const std::string& labels_path,
                      const v1::ModelInfo& model, Window& window, Samples& samples) {
  CHIRON_ASSIGN_OR_RETURN(IdxFile images, OpenIdx(path));
  if (images.dims.size() < 2) {
    return InvalidArgumentError(path + ": an images file has at least 2 dimensions (count, "
                                "then the sample shape); is this a labels file? pass it as "
                                "--labels");
  }
  std::vector<uint32_t> shape(images.dims.begin() + 1, images.dims.end());
  std::vector<uint32_t> model_shape = ModelShape(model);
  if (!model.input_type().empty() && model.input_type() != "u8") {
    return InvalidArgumentError(path + ": IDX images are bytes but " + ModelTakes(model) +
                                ": give a CSV file or --raw samples");
  }
  if (!model_shape.empty() && Product(model_shape) != Product(shape)) {
    return InvalidArgumentError(path + " holds " + ShapeText(shape) + " images but " +
                                ModelTakes(model));
  }
  const uint64_t total = images.dims[0];
  const auto [first, count] = window.Claim(total);
  if (count == 0) return Status::Ok();
  const uint64_t sample_size = Product(shape);
  CHIRON_RETURN_IF_ERROR(Skip(*images.stream, first * sample_size));
  samples.image_shape = shape;
  std::vector<int> labels(count, -1);
  if (!labels_path.empty()) {
    CHIRON_ASSIGN_OR_RETURN(IdxFile label_file, OpenIdx(labels_path));
    if (label_file.dims.size() != 1) {
      return InvalidArgumentError(labels_path + ": a labels file has exactly one dimension");
    }
    if (label_file.dims[0] != total) {
      return InvalidArgumentError(labels_path + " has " + std::to_string(label_file.dims[0]) +
                                  " labels for " + std::to_string(total) + " images in " + path);
    }
    CHIRON_RETURN_IF_ERROR(Skip(*label_file.stream, first));
    std::vector<uint8_t> values(count);
    CHIRON_ASSIGN_OR_RETURN(
        size_t got,
        importers::ReadFull(*label_file.stream, MutableByteSpan(values.data(), values.size())));
    if (got != values.size()) return InvalidArgumentError(labels_path + ": ends early");
    for (size_t i = 0; i < values.size(); ++i) labels[i] = values[i];
  }
  const std::string name = BaseName(path);
  for (uint64_t i = 0; i < count; ++i) {
    std::string item(sample_size, '\0');
    CHIRON_ASSIGN_OR_RETURN(
        size_t got,
        importers::ReadFull(*images.stream,
                            MutableByteSpan(reinterpret_cast<uint8_t*>(item.data()), item.size())));
    if (got != item.size()) return InvalidArgumentError(path + ": ends early");
    AddSample(samples, std::move(item), labels[i], name + " #" + std::to_string(first + i),
              first + i);
  }
  return Status::Ok();
}

Status ReadRawSamples(const std::string& path, const v1::ModelInfo& model, Window& window,
                      Samples& samples) {
  std::vector<uint32_t> shape = ModelShape(model);
  bool f32 = model.input_type() == "f32";
  uint64_t sample_size = Product(shape) * (f32 ? 4 : 1);
  if (shape.empty() || sample_size == 0) {
    return FailedPreconditionError("model '" + model.name() +
                                   "' does not say its input shape; cannot split --raw input");
  }
  CHIRON_ASSIGN_OR_RETURN(Bytes data, FileSystem::Default()->ReadFile(path, kMaxRawFileSize));
  if (data.empty() || data.size() % sample_size != 0) {
    return InvalidArgumentError(path + " has " + std::to_string(data.size()) +
                                " bytes, not a whole number of samples of " +
                                std::to_string(sample_size) + " bytes (" + ModelTakes(model) +
                                ")");
  }
  const uint64_t total = data.size() / sample_size;
  const auto [first, count] = window.Claim(total);
  if (count == 0) return Status::Ok();
  samples.image_shape = shape;
  samples.f32 = f32;
  const std::string name = BaseName(path);
  for (uint64_t i = first; i < first + count; ++i) {
    const uint8_t* begin = data.data() + i * sample_size;
    AddSample(samples, std::string(reinterpret_cast<const char*>(begin), sample_size), -1,
              name + " #" + std::to_string(i), i);
  }
  return Status::Ok();
}

// CSV: the importer parses and checks every row (errors name file:line:column); the label
// column, when present, becomes the true label shown here and is never sent.
Status ReadCsvSamples(const std::string& path, const std::string& label_column,
                      const v1::ModelInfo& model, Window& window, Samples& samples) {
  if (model.input_type() != "f32") {
    return InvalidArgumentError(path + ": CSV features are f32 numbers but " +
                                ModelTakes(model) + ": give IDX or PNG images");
  }
  std::vector<std::string> classes(model.class_names().begin(), model.class_names().end());
  if (classes.empty()) {
    for (uint32_t i = 0; i < model.output_size(); ++i) classes.push_back(std::to_string(i));
  }
  bool has_labels = false;
  auto opened = importers::OpenCsvForPrediction(path, label_column, classes, &has_labels);
  if (!opened.ok()) {
    return opened.status().code() == StatusCode::kInvalidArgument &&
                   opened.status().message().find("not in the given class list") !=
                       std::string::npos
               ? InvalidArgumentError(opened.status().message() + " (the classes of model '" +
                                      model.name() + "'; `chiron model show " + model.name() +
                                      "` lists them)")
               : opened.status();
  }
  importers::SampleSource& source = **opened;
  const uint64_t features = source.schema().shape.empty() ? 0 : source.schema().shape[0];
  if (features != Product(ModelShape(model))) {
    return InvalidArgumentError(path + ":1: the header has " + std::to_string(features) +
                                " feature columns" +
                                (has_labels ? " (besides '" + label_column + "')" : "") +
                                " but " + ModelTakes(model) +
                                (has_labels ? "" : "; is the label column named otherwise? use "
                                                   "--label-column"));
  }
  const uint64_t total = source.schema().sample_count;
  window.seen += total;
  samples.image_shape = ModelShape(model);
  samples.f32 = true;
  const std::string name = BaseName(path);
  Bytes sample(source.schema().sample_size());
  for (uint64_t row = 0; row < total && !window.full(); ++row) {
    uint32_t label = 0;
    CHIRON_ASSIGN_OR_RETURN(bool more, source.Next(sample, label));
    if (!more) return InvalidArgumentError(path + ": ends early (did it change?)");
    if (window.skip > 0) {
      --window.skip;
      continue;
    }
    --window.take;
    AddSample(samples, std::string(sample.begin(), sample.end()),
              has_labels ? static_cast<int>(label) : -1, name + " row " + std::to_string(row + 1),
              row);
  }
  return Status::Ok();
}

// Checks a decoded PNG's [C, H, W] against the model's input.
Status CheckPngShape(const importers::PngInfo& info, const std::string& name,
                     const v1::ModelInfo& model) {
  std::vector<uint32_t> shape = {info.channels(), info.height, info.width};
  std::vector<uint32_t> model_shape = ModelShape(model);
  if (!model.input_type().empty() && model.input_type() != "u8") {
    return InvalidArgumentError(name + ": PNG pixels are bytes but " + ModelTakes(model) +
                                ": give a CSV file or --raw samples");
  }
  bool same = model_shape.size() == 3 ? model_shape == shape
                                       : Product(model_shape) == Product(shape);
  if (!same) {
    return InvalidArgumentError(name + " is a " + info.Describe() + " image (" +
                                ShapeText(shape) + ") but " + ModelTakes(model));
  }
  return Status::Ok();
}

Status ReadPngFile(const std::string& path, int label, const v1::ModelInfo& model,
                   Window& window, Samples& samples) {
  window.seen += 1;
  if (window.skip > 0) {
    --window.skip;
    return Status::Ok();
  }
  if (window.full()) return Status::Ok();
  CHIRON_ASSIGN_OR_RETURN(Bytes file,
                          FileSystem::Default()->ReadFile(path, importers::kMaxPngFileSize));
  CHIRON_ASSIGN_OR_RETURN(importers::PngInfo info, importers::ReadPngInfo(file, path));
  CHIRON_RETURN_IF_ERROR(CheckPngShape(info, path, model));
  std::string item(info.decoded_size(), '\0');
  CHIRON_RETURN_IF_ERROR(importers::DecodePng(
      file, path, info, MutableByteSpan(reinterpret_cast<uint8_t*>(item.data()), item.size())));
  samples.image_shape = {info.channels(), info.height, info.width};
  --window.take;
  AddSample(samples, std::move(item), label, BaseName(path), 0);
  return Status::Ok();
}

// A folder of PNG images, or of per-class sub-folders (the folder name is the true label: a
// class name of the model or a class index).
Status ReadPngFolder(const std::string& path, const v1::ModelInfo& model, Window& window,
                     Samples& samples) {
  namespace fs = std::filesystem;
  std::error_code error;
  std::vector<fs::path> files;
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(path, error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (entry.is_directory()) {
      folders.push_back(entry.path());
    } else if (entry.path().extension() == ".png" || entry.path().extension() == ".PNG") {
      files.push_back(entry.path());
    } else {
      return InvalidArgumentError(entry.path().string() +
                                  ": not a .png file (a folder given to predict holds PNG "
                                  "images or per-class sub-folders of them)");
    }
  }
  if (error) return InvalidArgumentError(path + ": cannot list the folder: " + error.message());
  if (!files.empty() && !folders.empty()) {
    return InvalidArgumentError(path + ": holds both images and sub-folders; use one layout "
                                "(images, or one sub-folder per class)");
  }
  std::sort(files.begin(), files.end());
  std::sort(folders.begin(), folders.end());
  for (const fs::path& file : files) {
    CHIRON_RETURN_IF_ERROR(ReadPngFile(file.string(), -1, model, window, samples));
  }
  for (const fs::path& folder : folders) {
    const int label = ClassIndexOf(model, folder.filename().string());
    std::vector<fs::path> images;
    for (const auto& entry : fs::directory_iterator(folder, error)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (entry.is_directory() ||
          (entry.path().extension() != ".png" && entry.path().extension() != ".PNG")) {
        return InvalidArgumentError(entry.path().string() + ": not a .png file (class folders "
                                    "hold PNG images only)");
      }
      images.push_back(entry.path());
    }
    if (error) {
      return InvalidArgumentError(folder.string() + ": cannot list the folder: " +
                                  error.message());
    }
    std::sort(images.begin(), images.end());
    for (const fs::path& image : images) {
      CHIRON_RETURN_IF_ERROR(ReadPngFile(image.string(), label, model, window, samples));
    }
  }
  return Status::Ok();
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A FILE argument read as IDX: neither a folder nor a .png or .csv file.
bool IsIdxInput(const std::string& f) {
  return !std::filesystem::is_directory(f) && !EndsWith(f, ".png") && !EndsWith(f, ".PNG") &&
         !EndsWith(f, ".csv") && !EndsWith(f, ".CSV");
}

// Reads every input in order: FILE arguments by kind, then --idx / --raw.
Result<Samples> ReadSamples(const PredictArgs& args, const std::vector<std::string>& files,
                            const v1::ModelInfo& model) {
  bool idx_like = !args.idx.empty();
  for (const std::string& f : files) idx_like = idx_like || IsIdxInput(f);
  Window window;
  window.skip = args.offset;
  window.take = args.count != 0 ? args.count : idx_like ? kDefaultIdxCount : kMaxSamples;
  Samples samples;
  for (const std::string& f : files) {
    if (window.full()) break;
    if (std::filesystem::is_directory(f)) {
      CHIRON_RETURN_IF_ERROR(ReadPngFolder(f, model, window, samples));
    } else if (EndsWith(f, ".png") || EndsWith(f, ".PNG")) {
      CHIRON_RETURN_IF_ERROR(ReadPngFile(f, -1, model, window, samples));
    } else if (EndsWith(f, ".csv") || EndsWith(f, ".CSV")) {
      CHIRON_RETURN_IF_ERROR(ReadCsvSamples(f, args.label_column, model, window, samples));
    } else {
      CHIRON_RETURN_IF_ERROR(ReadIdxSamples(f, args.labels, model, window, samples));
    }
  }
  if (!args.idx.empty() && !window.full()) {
    CHIRON_RETURN_IF_ERROR(ReadIdxSamples(args.idx, args.labels, model, window, samples));
  }
  if (!args.raw.empty() && !window.full()) {
    CHIRON_RETURN_IF_ERROR(ReadRawSamples(args.raw, model, window, samples));
  }
  if (samples.items.empty()) {
    if (args.offset > 0 && args.offset >= window.seen) {
      return InvalidArgumentError("--offset " + std::to_string(args.offset) +
                                  " is past the end: the inputs hold " +
                                  std::to_string(window.seen) + " samples");
    }
    return InvalidArgumentError("the inputs hold no samples");
  }
  return samples;
}

// A grantee's view of a model another owner shared (Models.ListShared), in ModelInfo's shape.
Result<v1::ModelInfo> FindSharedModel(Connection& connection, const std::string& owner_id,
                                      const std::string& name, const std::string& program) {
  v1::ListSharedModelsResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(
      FromGrpc(v1::Models::NewStub(connection.channel())
                   ->ListShared(context.get(), v1::ListSharedModelsRequest(), &response),
               "Models.ListShared"));
  for (const v1::SharedModel& shared : response.models()) {
    if (shared.owner_id() != owner_id || shared.name() != name) continue;
    v1::ModelInfo info;
    info.set_name(shared.name());
    info.set_output_size(shared.output_size());
    *info.mutable_class_names() = shared.class_names();
    *info.mutable_input_shape() = shared.input_shape();
    info.set_input_type(shared.input_type());
    *info.mutable_output_policy() = shared.output_policy();
    info.set_rate_per_minute(shared.rate_per_minute());
    info.set_max_batch(shared.max_batch());
    return info;
  }
  return NotFoundError("no model '" + name + "' of principal " + owner_id +
                       " is shared with you: `" + program + " model shared` lists those that are");
}

// The owners who shared a model named `name` with the caller (Models.ListShared).
Result<std::vector<std::string>> OwnersSharing(Connection& connection, const std::string& name) {
  v1::ListSharedModelsResponse response;
  auto context = connection.NewContext();
  CHIRON_RETURN_IF_ERROR(
      FromGrpc(v1::Models::NewStub(connection.channel())
                   ->ListShared(context.get(), v1::ListSharedModelsRequest(), &response),
               "Models.ListShared"));
  std::vector<std::string> owners;
  for (const v1::SharedModel& shared : response.models()) {
    if (shared.name() == name) owners.push_back(shared.owner_id());
  }
  return owners;
}

// The caller's own model `name`; when there is none but another owner shared one of that name
// with the caller, NotFound that says to add --owner.
Result<v1::ModelInfo> FindOwnOrSaySharedModel(Connection& connection, const std::string& name,
                                              const std::string& program) {
  auto model = FindModel(connection, name, program);
  if (model.ok() || model.status().code() != StatusCode::kNotFound) return model;
  auto owners = OwnersSharing(connection, name);
  if (!owners.ok() || owners->empty()) return model;
  std::string message = "you have no model named '" + name + "', but ";
  if (owners->size() == 1) {
    message +=
        "principal " + owners->front() + " shared one with you: add --owner " + owners->front();
  } else {
    message += std::to_string(owners->size()) +
               " owners shared one with you: add --owner with "
               "one of";
    for (const std::string& owner : *owners) message += " " + owner;
  }
  return NotFoundError(message + " (`" + program + " model shared` lists what is shared with you)");
}

// Why the answer holds fewer classes than --top-k asked for, or "" when it does not: the
// recipe's output policy, the owner's limits (`model limit`) or the model's class count.
std::string TopKCapNote(const PredictArgs& args, const v1::ModelInfo& model) {
  if (args.top_k <= 1) return "";
  const v1::OutputPolicy& policy = model.output_policy();
  const bool grantee = !args.owner.empty();
  const std::string asked = "--top-k " + std::to_string(args.top_k);
  if (policy.label_only()) {
    std::string who = grantee ? "the model's output policy"
                      : model.provider_output_policy().label_only()
                          ? "the recipe's output policy"
                          : "your limits on this model (`chiron model limit`)";
    return asked + " capped to 1: " + who + " returns the most probable class only";
  }
  const bool below_classes = model.output_size() == 0 || policy.max_top_k() < model.output_size();
  if (policy.max_top_k() > 0 && args.top_k > policy.max_top_k() && below_classes) {
    std::string who = grantee ? "the model's output policy"
                      : model.provider_output_policy().max_top_k() == policy.max_top_k()
                          ? "the recipe's output policy"
                          : "your limits on this model (`chiron model limit`)";
    return asked + " capped to " + std::to_string(policy.max_top_k()) + ": " + who +
           " returns at most " + std::to_string(policy.max_top_k()) + " classes per sample";
  }
  if (model.output_size() > 0 && args.top_k > model.output_size()) {
    return asked + " capped to " + std::to_string(model.output_size()) + ": the model has " +
           std::to_string(model.output_size()) + " classes";
  }
  return "";
}

// For IDX images read without --labels: the labels file to pass, named when it lies beside the
// images under the usual name (train-images-idx3-ubyte.gz: train-labels-idx1-ubyte.gz).
std::string MissingLabelsNote(const std::string& images_path) {
  std::string note = images_path +
                     " carries no labels, so no true class or accuracy is shown: "
                     "pass --labels LABELS-FILE";
  std::string labels_path = images_path;
  size_t at = labels_path.rfind("images-idx3");
  if (at != std::string::npos) {
    labels_path.replace(at, std::strlen("images-idx3"), "labels-idx1");
    if (std::filesystem::exists(labels_path)) note += " (here: --labels " + labels_path + ")";
  }
  return note;
}

bool UseColor() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) == 1 && term != nullptr && std::strcmp(term, "dumb") != 0;
}

// The names predictions are printed with: the model's class names, else class indices.
struct Labels {
  std::vector<std::string> names;
  const std::string& operator[](size_t c) const { return names[c % names.size()]; }
};

Labels MakeLabels(const v1::ModelInfo& model) {
  std::vector<std::string> names(model.class_names().begin(), model.class_names().end());
  size_t class_count = std::max<size_t>(names.size(), model.output_size());
  return Labels{ClassLabels(names, std::max<size_t>(class_count, 256))};
}

// Every answered sample (in order), and which were not answered and why.
void PrintJson(const PredictArgs& args, const Samples& samples, const Labels& labels,
               const PredictRun& answer) {
  size_t known = 0;
  size_t correct = 0;
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < answer.predictions.size(); ++i) {
    const v1::Prediction& p = answer.predictions[i];
    nlohmann::json item = {{"index", samples.indices[i]}, {"source", samples.names[i]}};
    std::vector<uint32_t> classes(p.classes().begin(), p.classes().end());
    std::vector<std::string> class_names;
    for (uint32_t c : classes) class_names.push_back(labels[c]);
    item["classes"] = classes;
    item["class_names"] = class_names;
    if (!answer.label_only) {
      item["probabilities"] =
          std::vector<float>(p.probabilities().begin(), p.probabilities().end());
    }
    int label = samples.labels[i];
    if (label >= 0) {
      item["label"] = label;
      item["label_name"] = labels[static_cast<size_t>(label)];
      item["correct"] = !classes.empty() && classes[0] == static_cast<uint32_t>(label);
      ++known;
      correct += item["correct"].get<bool>() ? 1 : 0;
    }
    list.push_back(item);
  }
  nlohmann::json unanswered = nlohmann::json::array();
  for (size_t i = answer.predictions.size(); i < samples.items.size(); ++i) {
    unanswered.push_back({{"index", samples.indices[i]}, {"source", samples.names[i]}});
  }
  nlohmann::json out = {{"model", args.model},
                        {"label_only", answer.label_only},
                        {"predictions", list},
                        {"queries_used", answer.queries_used},
                        {"query_budget", answer.query_budget},
                        {"complete", answer.stop == PredictStop::kNone},
                        {"answered", answer.predictions.size()},
                        {"unanswered", unanswered}};
  if (answer.stop != PredictStop::kNone) {
    nlohmann::json stopped = {{"reason", PredictStopName(answer.stop)},
                              {"message", answer.stopped.message()}};
    if (answer.retry_after.count() > 0) stopped["retry_after_ms"] = answer.retry_after.count();
    out["stopped"] = stopped;
  }
  if (!args.owner.empty()) out["owner_id"] = args.owner;
  if (known > 0) out["accuracy"] = static_cast<double>(correct) / known;
  std::cout << out.dump(2) << "\n";
}

// Each answered sample drawn beside its classes, then the accuracy and the budget.
void PrintText(const PredictArgs& args, const Samples& samples, const Labels& labels,
               const PredictRun& answer, const std::optional<ImageStyle>& style) {
  size_t known = 0;
  size_t correct = 0;
  for (size_t i = 0; i < answer.predictions.size(); ++i) {
    const v1::Prediction& p = answer.predictions[i];
    int label = samples.labels[i];
    std::vector<std::string> text;
    char line[512];
    text.push_back(samples.names[i]);
    if (p.classes_size() > 0) {
      std::string verdict;
      if (label >= 0) {
        ++known;
        bool ok = p.classes(0) == static_cast<uint32_t>(label);
        correct += ok ? 1 : 0;
        verdict = ok ? "  \u2713 correct" : "  \u2717 wrong";
      }
      if (p.probabilities_size() > 0) {
        std::snprintf(line, sizeof line, "predicted: %s (%.1f%%)%s", labels[p.classes(0)].c_str(),
                      p.probabilities(0) * 100.0, verdict.c_str());
      } else {
        std::snprintf(line, sizeof line, "predicted: %s%s", labels[p.classes(0)].c_str(),
                      verdict.c_str());
      }
      text.push_back(line);
    } else {
      text.push_back("predicted: (no classes returned)");
    }
    if (label >= 0) text.push_back("true:      " + labels[static_cast<size_t>(label)]);
    for (int k = 0; k < p.probabilities_size(); ++k) {
      std::snprintf(line, sizeof line, "  %d. %-16s %.3f", k + 1, labels[p.classes(k)].c_str(),
                    p.probabilities(k));
      text.push_back(line);
    }
    RenderedImage image;
    if (style) {
      auto gray = SampleToGray(ToBytes(samples.items[i]), samples.image_shape, samples.f32);
      if (gray.ok()) image = RenderImage(*gray, *style, 40);
    }
    bool framed = style && *style != ImageStyle::kColor && !image.lines.empty();
    size_t rows = std::max(image.lines.size(), text.size());
    for (size_t row = 0; row < rows; ++row) {
      std::string out;
      if (!image.lines.empty()) {
        if (framed) out += "|";
        out += row < image.lines.size() ? image.lines[row] : std::string(image.columns, ' ');
        if (framed) out += "|";
        out += "  ";
      }
      if (row < text.size()) out += text[row];
      while (!out.empty() && out.back() == ' ') out.pop_back();
      std::printf("%s\n", out.c_str());
    }
    std::printf("\n");
  }
  if (answer.label_only) std::printf("labels only: the model's output policy returns no scores\n");
  if (known > 0) {
    std::printf("%zu of %zu correct (%.1f%%)\n", correct, known, 100.0 * correct / known);
  }
  if (answer.stop != PredictStop::kNone) {
    std::printf("answered %zu of %zu samples (the rest: see the message on stderr)\n",
                answer.predictions.size(), samples.items.size());
  }
  const char* whose = args.owner.empty() ? "model" : "your grant on model";
  if (answer.query_budget > 0) {
    std::printf("queries used: %llu of %llu for %s '%s'\n",
                static_cast<unsigned long long>(answer.queries_used),
                static_cast<unsigned long long>(answer.query_budget), whose, args.model.c_str());
  } else {
    std::printf("queries used: %llu for %s '%s'\n",
                static_cast<unsigned long long>(answer.queries_used), whose, args.model.c_str());
  }
}

// On stderr: how many were answered, why the rest were not (the server's message says what to
// do about a budget), and the options that ask for the rest.
void ReportStop(const GlobalOptions& global, const PredictArgs& args, const Samples& samples,
                const PredictRun& answer) {
  const size_t answered = answer.predictions.size();
  const size_t rest = samples.items.size() - answered;
  std::fprintf(stderr, "%s: answered %zu of %zu samples (printed); the other %zu, from %s on, "
               "were not: %s\n",
               global.program.c_str(), answered, samples.items.size(), rest,
               samples.names[answered].c_str(), answer.stopped.message().c_str());
  if (answer.stop == PredictStop::kInvalidAnswer) {
    std::fprintf(stderr, "%s: the server's answer failed the client's checks: do not trust it\n",
                 global.program.c_str());
    return;
  }
  char rest_options[96];
  std::snprintf(rest_options, sizeof rest_options, "--offset %llu --count %zu",
                static_cast<unsigned long long>(args.offset + answered), rest);
  if (answer.stop == PredictStop::kRateLimit && answer.retry_after.count() > 0) {
    std::fprintf(stderr,
                 "%s: in %s, ask for the rest with %s (without --no-wait, predict waits for the "
                 "rate limit itself)\n",
                 global.program.c_str(), WaitText(answer.retry_after).c_str(), rest_options);
  } else {
    std::fprintf(stderr, "%s: ask for the rest with %s\n", global.program.c_str(), rest_options);
  }
}

int RunPredict(const GlobalOptions& global, const PredictArgs& given) {
  PredictArgs args = given;
  std::vector<std::string> files = args.files;
  if (args.model.empty()) {
    // The short form: `chiron predict NAME --idx FILE`.
    if (files.empty()) {
      std::fprintf(stderr, "%s: name the model with --model NAME; see --help\n",
                   global.program.c_str());
      return kExitUsage;
    }
    args.model = files.front();
    files.erase(files.begin());
  }
  if (files.empty() && args.idx.empty() && args.raw.empty()) {
    std::fprintf(stderr,
                 "%s: give the samples: FILE... (IDX, CSV, PNG or a folder of PNG images), "
                 "--idx IMAGES or --raw FILE; see --help\n",
                 global.program.c_str());
    return kExitUsage;
  }
  if (!args.idx.empty() && !args.raw.empty()) {
    std::fprintf(stderr, "%s: give at most one of --idx and --raw\n", global.program.c_str());
    return kExitUsage;
  }
  if (!args.labels.empty() && !args.raw.empty()) {
    std::fprintf(stderr, "%s: --labels goes with IDX images\n", global.program.c_str());
    return kExitUsage;
  }
  std::optional<ImageStyle> style;
  if (args.image_style == "auto") {
    style = UseColor() ? ImageStyle::kColor : ImageStyle::kAscii;
  } else if (args.image_style != "none") {
    auto parsed = ParseImageStyle(args.image_style);
    if (!parsed.ok()) return Fail(parsed.status());
    style = *parsed;
  }

  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session, std::chrono::seconds(120));
  if (!connection.ok()) return FailConnect(connection.status());
  auto model = args.owner.empty()
                   ? FindOwnOrSaySharedModel(**connection, args.model, global.program)
                   : FindSharedModel(**connection, args.owner, args.model, global.program);
  if (!model.ok()) return Fail(model.status());
  auto samples = ReadSamples(args, files, *model);
  if (!samples.ok()) return Fail(samples.status());
  if (args.labels.empty()) {
    std::vector<std::string> idx_inputs;
    for (const std::string& f : files) {
      if (IsIdxInput(f)) idx_inputs.push_back(f);
    }
    if (!args.idx.empty()) idx_inputs.push_back(args.idx);
    for (const std::string& f : idx_inputs) {
      std::fprintf(stderr, "%s: %s\n", global.program.c_str(), MissingLabelsNote(f).c_str());
    }
  }
  if (std::string note = TopKCapNote(args, *model); !note.empty()) {
    std::fprintf(stderr, "%s: %s\n", global.program.c_str(), note.c_str());
  }
  PredictPacing pacing;
  pacing.no_wait = args.no_wait;
  pacing.on_wait = [&](std::chrono::milliseconds wait) {
    std::fprintf(stderr, "%s: rate limit of model '%s': waiting %s (--no-wait to stop instead)\n",
                 global.program.c_str(), args.model.c_str(), WaitText(wait).c_str());
  };
  const PredictRun answer =
      SendPredictions(**connection, *model, samples->items, args.owner, args.top_k, pacing);
  if (answer.predictions.empty() && answer.stop != PredictStop::kNone) {
    // Nothing answered: a plain failure, with the way on.
    int code = Fail(answer.stopped);
    if (answer.stop == PredictStop::kRateLimit) {
      std::fprintf(stderr,
                   "%s: the model's rate limit refused the first request; %s (`%s model show "
                   "%s` shows the limit)\n",
                   global.program.c_str(),
                   answer.retry_after.count() > 0
                       ? ("run again in " + WaitText(answer.retry_after) +
                          ", or without --no-wait to wait for it")
                             .c_str()
                       : "send fewer samples per minute",
                   global.program.c_str(), args.model.c_str());
    }
    return code;
  }

  const Labels labels = MakeLabels(*model);
  if (args.json) {
    PrintJson(args, *samples, labels, answer);
  } else {
    PrintText(args, *samples, labels, answer, style);
  }
  if (answer.stop == PredictStop::kNone) return kExitOk;
  ReportStop(global, args, *samples, answer);
  // Some answered and printed, the rest not: "partial" (a refused answer is a verification
  // failure whatever came before it).
  return answer.stop == PredictStop::kInvalidAnswer ? kExitVerificationFailed : kExitPartial;
}

}  // namespace

void AddPredictCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<PredictArgs>();
  auto* predict_cmd = app.add_subcommand(
      "predict", "Ask a trained model for predictions; each sample is drawn beside its classes");
  predict_cmd->footer(
      "FILE may be an IDX images file (plain or .gz; --labels adds the true label), a CSV file "
      "(numeric feature columns; a column named by --label-column, if present, shows the true "
      "label and is never sent), a PNG image, or a folder of PNG images (one sub-folder per "
      "class shows the true label). Inputs are checked against the model's input shape before "
      "anything is sent; `chiron model show NAME` shows it. Samples go in batches (at most the "
      "server's maximum and the model's per-minute rate). Each sample counts against the query "
      "budget; the provider's output policy (and the owner's limits) decide how many classes "
      "and decimals come back, or the label only. Without --model, the first argument names the "
      "model. --count defaults to every sample (8 for IDX files), at most 10000.\n\nExamples:\n"
      "  chiron predict --model fmnist-lenet /usr/share/datasets/fashion-mnist/"
      "t10k-images-idx3-ubyte.gz \\\n      --labels /usr/share/datasets/fashion-mnist/"
      "t10k-labels-idx1-ubyte.gz --count 8 --top-k 3\n"
      "  chiron predict --model iris-mlp flowers.csv --label-column species --json\n"
      "  chiron predict --model cifar-resnet photos/ cat.png\n"
      "  chiron predict --model fmnist-lenet --owner 3fa1...c2 shoes/   # a model shared with you\n"
      "  chiron predict fmnist-lenet --raw sample.bin --json");
  predict_cmd->add_option("FILE", args->files,
                          "inputs: IDX (plain or .gz), CSV, PNG files or folders of PNG images");
  predict_cmd->add_option("--model", args->model, "the model's name");
  predict_cmd->add_option("--owner", args->owner,
                          "the owner's principal id, for a model shared with you "
                          "(`chiron model shared`)");
  auto* idx = predict_cmd->add_option("--idx", args->idx, "IDX images file (plain or .gz)");
  auto* raw = predict_cmd->add_option("--raw", args->raw, "file of raw samples, back to back");
  idx->excludes(raw);
  raw->excludes(idx);
  predict_cmd->add_option("--labels", args->labels, "IDX labels file for the IDX images");
  predict_cmd->add_option("--label-column", args->label_column,
                          "CSV column holding the true label (shown, never sent)")
      ->capture_default_str();
  predict_cmd->add_option("--offset", args->offset, "first sample to send (0-based)")
      ->capture_default_str();
  predict_cmd->add_option("--count", args->count, "number of samples to send")
      ->check(CLI::Range(uint64_t{1}, kMaxSamples));
  predict_cmd->add_option("--top-k", args->top_k,
                          "classes per sample (0: 5, capped by the output policy)")
      ->check(CLI::Range(0u, 1000u))
      ->capture_default_str();
  predict_cmd->add_option("--image-style", args->image_style,
                          "auto (colour on a terminal, else ascii), color, shades, ascii or none")
      ->check(CLI::IsMember({"auto", "color", "shades", "ascii", "none"}))
      ->capture_default_str();
  predict_cmd->add_flag("--json", args->json, "print as JSON (no images)");
  predict_cmd->add_flag("--no-wait", args->no_wait,
                        "at the model's rate limit, stop (answered samples printed, exit 7) "
                        "instead of waiting as long as the server says");
  predict_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunPredict(global, *args); };
  });
}

}  // namespace chiron::client
