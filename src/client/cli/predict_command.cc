// `chiron predict MODEL (--idx IMAGES [--labels LABELS] | --raw FILE)`: black-box predictions
// from a trained model, each sample drawn in the terminal beside its top classes.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "chiron/v1/models.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/job_view.h"
#include "client/cli/terminal_image.h"
#include "client/importers/input_stream.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

constexpr uint64_t kMaxSamples = 10000;        // per command
constexpr size_t kSamplesPerRequest = 64;      // per Predict call
constexpr size_t kMaxRawFileSize = size_t{256} << 20;

struct PredictArgs {
  std::string model;
  std::string idx;
  std::string labels;
  std::string raw;
  uint64_t offset = 0;
  uint64_t count = 8;
  uint32_t top_k = 0;
  std::string image_style = "auto";
  bool json = false;
};

// Samples read from the user's files, in the model's schema.
struct Samples {
  std::vector<std::string> items;      // raw bytes of each sample
  std::vector<uint32_t> image_shape;   // for drawing
  bool f32 = false;
  std::vector<int> labels;             // -1: unknown
  uint64_t first_index = 0;            // index of items[0] in the file
  std::string source;                  // file name for the heading
};

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
    CHIRON_ASSIGN_OR_RETURN(size_t got, importers::ReadFull(stream, MutableByteSpan(buffer.data(), want)));
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

Result<Samples> ReadIdxSamples(const PredictArgs& args, const v1::ModelInfo& model) {
  CHIRON_ASSIGN_OR_RETURN(IdxFile images, OpenIdx(args.idx));
  if (images.dims.size() < 2) {
    return InvalidArgumentError(args.idx + ": an images file has at least 2 dimensions (count, "
                                "then the sample shape); is this a labels file? pass it as "
                                "--labels");
  }
  std::vector<uint32_t> shape(images.dims.begin() + 1, images.dims.end());
  std::vector<uint32_t> model_shape(model.input_shape().begin(), model.input_shape().end());
  if (!model.input_type().empty() && model.input_type() != "u8") {
    return InvalidArgumentError("model '" + model.name() + "' takes " + model.input_type() +
                                " samples; IDX images are bytes: use --raw with a file of " +
                                model.input_type() + " samples");
  }
  if (!model_shape.empty() && Product(model_shape) != Product(shape)) {
    return InvalidArgumentError(args.idx + " holds " + ShapeText(shape) + " images but model '" +
                                model.name() + "' takes " + ShapeText(model_shape) + " samples");
  }
  uint64_t total = images.dims[0];
  if (args.offset >= total) {
    return InvalidArgumentError("--offset " + std::to_string(args.offset) + " is past the end: " +
                                args.idx + " has " + std::to_string(total) + " images");
  }
  uint64_t count = std::min(args.count, total - args.offset);
  uint64_t sample_size = Product(shape);
  CHIRON_RETURN_IF_ERROR(Skip(*images.stream, args.offset * sample_size));
  Samples samples;
  samples.image_shape = shape;
  samples.first_index = args.offset;
  samples.source = args.idx.substr(args.idx.find_last_of('/') + 1);
  for (uint64_t i = 0; i < count; ++i) {
    std::string item(sample_size, '\0');
    CHIRON_ASSIGN_OR_RETURN(size_t got, importers::ReadFull(*images.stream,
                                                           MutableByteSpan(reinterpret_cast<uint8_t*>(item.data()), item.size())));
    if (got != item.size()) return InvalidArgumentError(args.idx + ": ends early");
    samples.items.push_back(std::move(item));
  }
  samples.labels.assign(samples.items.size(), -1);
  if (!args.labels.empty()) {
    CHIRON_ASSIGN_OR_RETURN(IdxFile labels, OpenIdx(args.labels));
    if (labels.dims.size() != 1) {
      return InvalidArgumentError(args.labels + ": a labels file has exactly one dimension");
    }
    if (labels.dims[0] != total) {
      return InvalidArgumentError(args.labels + " has " + std::to_string(labels.dims[0]) +
                                  " labels for " + std::to_string(total) + " images in " +
                                  args.idx);
    }
    CHIRON_RETURN_IF_ERROR(Skip(*labels.stream, args.offset));
    std::vector<uint8_t> values(samples.items.size());
    CHIRON_ASSIGN_OR_RETURN(size_t got, importers::ReadFull(*labels.stream,
                                                           MutableByteSpan(values.data(), values.size())));
    if (got != values.size()) return InvalidArgumentError(args.labels + ": ends early");
    for (size_t i = 0; i < values.size(); ++i) samples.labels[i] = values[i];
  }
  return samples;
}

Result<Samples> ReadRawSamples(const PredictArgs& args, const v1::ModelInfo& model) {
  std::vector<uint32_t> shape(model.input_shape().begin(), model.input_shape().end());
  bool f32 = model.input_type() == "f32";
  uint64_t sample_size = Product(shape) * (f32 ? 4 : 1);
  if (shape.empty() || sample_size == 0) {
    return FailedPreconditionError("model '" + model.name() +
                                   "' does not say its input shape; cannot split --raw input");
  }
  CHIRON_ASSIGN_OR_RETURN(Bytes data, FileSystem::Default()->ReadFile(args.raw, kMaxRawFileSize));
  if (data.empty() || data.size() % sample_size != 0) {
    return InvalidArgumentError(args.raw + " has " + std::to_string(data.size()) +
                                " bytes, not a whole number of samples of " +
                                std::to_string(sample_size) + " bytes (model '" + model.name() +
                                "' takes " + ShapeText(shape) + " " + model.input_type() + ")");
  }
  uint64_t total = data.size() / sample_size;
  if (args.offset >= total) {
    return InvalidArgumentError("--offset " + std::to_string(args.offset) + " is past the end: " +
                                args.raw + " has " + std::to_string(total) + " samples");
  }
  uint64_t count = std::min(args.count, total - args.offset);
  Samples samples;
  samples.image_shape = shape;
  samples.f32 = f32;
  samples.first_index = args.offset;
  samples.source = args.raw.substr(args.raw.find_last_of('/') + 1);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* begin = data.data() + (args.offset + i) * sample_size;
    samples.items.emplace_back(reinterpret_cast<const char*>(begin), sample_size);
  }
  samples.labels.assign(samples.items.size(), -1);
  return samples;
}

struct Answer {
  std::vector<v1::Prediction> predictions;
  uint64_t queries_used = 0;
  uint64_t query_budget = 0;
};

// Sends the samples in batches; checks every answer before using it (a hostile or broken
// server must not make the client index out of range or print nonsense).
Result<Answer> Predict(Connection& connection, const v1::ModelInfo& model, const Samples& samples,
                       uint32_t top_k) {
  auto stub = v1::Models::NewStub(connection.channel());
  Answer answer;
  uint32_t classes = model.class_names_size() > 0 ? model.class_names_size() : model.output_size();
  for (size_t start = 0; start < samples.items.size(); start += kSamplesPerRequest) {
    size_t end = std::min(samples.items.size(), start + kSamplesPerRequest);
    v1::PredictRequest request;
    request.set_model_name(model.name());
    request.set_top_k(top_k);
    for (size_t i = start; i < end; ++i) request.add_samples(samples.items[i]);
    v1::PredictResponse response;
    auto context = connection.NewContext();
    CHIRON_RETURN_IF_ERROR(
        FromGrpc(stub->Predict(context.get(), request, &response), "Models.Predict"));
    if (static_cast<size_t>(response.predictions_size()) != end - start) {
      return DataLossError("Models.Predict answered " +
                           std::to_string(response.predictions_size()) + " predictions for " +
                           std::to_string(end - start) + " samples");
    }
    for (const v1::Prediction& prediction : response.predictions()) {
      if (prediction.classes_size() != prediction.probabilities_size()) {
        return DataLossError("Models.Predict answered classes and probabilities of different "
                             "lengths");
      }
      for (int k = 0; k < prediction.classes_size(); ++k) {
        float p = prediction.probabilities(k);
        if ((classes > 0 && prediction.classes(k) >= classes) || !(p >= 0.0f && p <= 1.0f)) {
          return DataLossError("Models.Predict answered an out-of-range class or probability");
        }
      }
      answer.predictions.push_back(prediction);
    }
    answer.queries_used = response.queries_used();
    answer.query_budget = response.query_budget();
  }
  return answer;
}

bool UseColor() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) == 1 && term != nullptr && std::strcmp(term, "dumb") != 0;
}

int RunPredict(const GlobalOptions& global, const PredictArgs& args) {
  if (args.idx.empty() == args.raw.empty()) {
    std::fprintf(stderr,
                 "%s: give the samples with exactly one of --idx IMAGES (IDX, plain or .gz) or "
                 "--raw FILE (samples in the model's schema, back to back); see --help\n",
                 global.program.c_str());
    return kExitUsage;
  }
  if (!args.labels.empty() && args.idx.empty()) {
    std::fprintf(stderr, "%s: --labels goes with --idx\n", global.program.c_str());
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
  auto model = FindModel(**connection, args.model, global.program);
  if (!model.ok()) return Fail(model.status());
  auto samples = args.idx.empty() ? ReadRawSamples(args, *model) : ReadIdxSamples(args, *model);
  if (!samples.ok()) return Fail(samples.status());
  auto answer = Predict(**connection, *model, *samples, args.top_k);
  if (!answer.ok()) {
    int code = Fail(answer.status());
    if (answer.status().code() == StatusCode::kResourceExhausted) {
      std::fprintf(stderr, "%s: the model's query budget is spent; `%s model list` shows it\n",
                   global.program.c_str(), global.program.c_str());
    }
    return code;
  }

  std::vector<std::string> names(model->class_names().begin(), model->class_names().end());
  size_t class_count = std::max<size_t>(names.size(), model->output_size());
  std::vector<std::string> labels = ClassLabels(names, std::max<size_t>(class_count, 256));
  size_t known = 0;
  size_t correct = 0;
  if (args.json) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < answer->predictions.size(); ++i) {
      const v1::Prediction& p = answer->predictions[i];
      nlohmann::json item = {{"index", samples->first_index + i}};
      std::vector<uint32_t> classes(p.classes().begin(), p.classes().end());
      std::vector<std::string> class_names;
      for (uint32_t c : classes) class_names.push_back(labels[c % labels.size()]);
      item["classes"] = classes;
      item["class_names"] = class_names;
      item["probabilities"] = std::vector<float>(p.probabilities().begin(), p.probabilities().end());
      int label = samples->labels[i];
      if (label >= 0) {
        item["label"] = label;
        item["label_name"] = labels[static_cast<size_t>(label) % labels.size()];
        item["correct"] = !classes.empty() && classes[0] == static_cast<uint32_t>(label);
      }
      list.push_back(item);
    }
    nlohmann::json out = {{"model", args.model},
                          {"predictions", list},
                          {"queries_used", answer->queries_used},
                          {"query_budget", answer->query_budget}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }

  for (size_t i = 0; i < answer->predictions.size(); ++i) {
    const v1::Prediction& p = answer->predictions[i];
    int label = samples->labels[i];
    std::vector<std::string> text;
    char line[256];
    std::snprintf(line, sizeof line, "%s #%llu", samples->source.c_str(),
                  static_cast<unsigned long long>(samples->first_index + i));
    text.push_back(line);
    if (p.classes_size() > 0) {
      std::string verdict;
      if (label >= 0) {
        ++known;
        bool ok = p.classes(0) == static_cast<uint32_t>(label);
        correct += ok ? 1 : 0;
        verdict = ok ? "  \u2713 correct" : "  \u2717 wrong";
      }
      std::snprintf(line, sizeof line, "predicted: %s (%.1f%%)%s",
                    labels[p.classes(0) % labels.size()].c_str(), p.probabilities(0) * 100.0,
                    verdict.c_str());
      text.push_back(line);
    } else {
      text.push_back("predicted: (no classes returned)");
    }
    if (label >= 0) {
      text.push_back("true:      " + labels[static_cast<size_t>(label) % labels.size()]);
    }
    for (int k = 0; k < p.classes_size(); ++k) {
      std::snprintf(line, sizeof line, "  %d. %-16s %.3f", k + 1,
                    labels[p.classes(k) % labels.size()].c_str(), p.probabilities(k));
      text.push_back(line);
    }
    RenderedImage image;
    if (style) {
      auto gray = SampleToGray(ToBytes(samples->items[i]), samples->image_shape, samples->f32);
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
  if (known > 0) {
    std::printf("%zu of %zu correct (%.1f%%)\n", correct, known, 100.0 * correct / known);
  }
  if (answer->query_budget > 0) {
    std::printf("queries used: %llu of %llu for model '%s'\n",
                static_cast<unsigned long long>(answer->queries_used),
                static_cast<unsigned long long>(answer->query_budget), args.model.c_str());
  } else {
    std::printf("queries used: %llu for model '%s'\n",
                static_cast<unsigned long long>(answer->queries_used), args.model.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddPredictCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<PredictArgs>();
  auto* predict_cmd = app.add_subcommand(
      "predict", "Ask a trained model for predictions; each sample is drawn beside its classes");
  predict_cmd->footer(
      "Samples come from an IDX images file (plain or .gz; --labels adds the true label and "
      "\u2713/\u2717) or a raw file of samples in the model's schema (`chiron model list` shows "
      "shape and type). Each query counts against the model's query budget; probabilities are "
      "rounded by the provider's output policy.\n\nExamples:\n"
      "  chiron predict fmnist-lenet --idx /usr/share/datasets/fashion-mnist/"
      "t10k-images-idx3-ubyte.gz \\\n      --labels /usr/share/datasets/fashion-mnist/"
      "t10k-labels-idx1-ubyte.gz --count 8 --top-k 3\n"
      "  chiron predict fmnist-lenet --raw sample.bin --json");
  predict_cmd->add_option("MODEL", args->model, "the model's name")->required();
  auto* idx = predict_cmd->add_option("--idx", args->idx, "IDX images file (plain or .gz)");
  auto* raw = predict_cmd->add_option("--raw", args->raw, "file of raw samples, back to back");
  idx->excludes(raw);
  raw->excludes(idx);
  predict_cmd->add_option("--labels", args->labels, "IDX labels file for --idx (plain or .gz)");
  predict_cmd->add_option("--offset", args->offset, "first sample to send (0-based)")
      ->capture_default_str();
  predict_cmd->add_option("--count", args->count, "number of samples to send")
      ->check(CLI::Range(uint64_t{1}, kMaxSamples))
      ->capture_default_str();
  predict_cmd->add_option("--top-k", args->top_k, "classes per sample (0: the provider's default)")
      ->check(CLI::Range(0u, 1000u))
      ->capture_default_str();
  predict_cmd->add_option("--image-style", args->image_style,
                          "auto (colour on a terminal, else ascii), color, shades, ascii or none")
      ->check(CLI::IsMember({"auto", "color", "shades", "ascii", "none"}))
      ->capture_default_str();
  predict_cmd->add_flag("--json", args->json, "print as JSON (no images)");
  predict_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunPredict(global, *args); };
  });
}

}  // namespace chiron::client
