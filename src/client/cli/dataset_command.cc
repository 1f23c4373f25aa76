// `chiron dataset upload|list|delete`: the owner's encrypted datasets on the runtime.
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/datasets.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/importers/idx_source.h"
#include "client/upload.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

struct UploadArgs {
  std::string path;
  std::string name;
  std::string format = "auto";
  std::string labels;
  std::string label_column = "label";
  std::vector<std::string> classes;
  uint64_t chunk_size = dataset::kDefaultChunkTargetSize;
  bool no_progress = false;
  bool no_data_plane = false;
  bool json = false;
};

// The files an upload reads, for the resume fingerprint.
std::vector<std::string> InputFiles(const UploadArgs& args, importers::ImportFormat format) {
  std::vector<std::string> files = {args.path};
  if (format == importers::ImportFormat::kIdx) {
    files.push_back(args.labels.empty() ? importers::DefaultIdxLabelsPath(args.path) : args.labels);
  }
  return files;
}

std::string Shape(const v1::DatasetInfo& info) {
  std::string out;
  for (uint32_t dimension : info.sample_shape()) {
    out += (out.empty() ? "" : "x") + std::to_string(dimension);
  }
  return out;
}

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
  return text;
}

int RunUpload(const GlobalOptions& global, const UploadArgs& args) {
  importers::ImportOptions import;
  std::string format_name = args.format == "images" ? "png-folder" : args.format;
  auto format = importers::ParseImportFormat(format_name);
  if (!format.ok()) return Fail(format.status());
  if (*format == importers::ImportFormat::kAuto) {
    auto detected = importers::DetectFormat(args.path);
    if (!detected.ok()) return Fail(detected.status());
    format = *detected;
  }
  import.format = *format;
  import.labels_path = args.labels;
  import.label_column = args.label_column;
  import.class_names = args.classes;

  auto fingerprint = FingerprintInputs(InputFiles(args, *format));
  if (!fingerprint.ok()) return Fail(fingerprint.status());
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  // Uploads of big datasets take long: a generous deadline for the unary calls.
  auto connection = ConnectSession(*session, std::chrono::seconds(60));
  if (!connection.ok()) return FailConnect(connection.status());

  ProgressBar bar("uploading " + args.name);
  UploadRequest request;
  request.name = args.name;
  request.open_source = [&args, import] { return importers::OpenSource(args.path, import); };
  request.source_fingerprint = *fingerprint;
  request.state_path = session->profile.UploadStatePath(args.name);
  request.target_chunk_size = args.chunk_size;
  request.use_data_plane = !args.no_data_plane;
  uint64_t base_bytes = 0;
  bool base_known = false;
  if (!args.no_progress && bar.enabled()) {
    request.on_progress = [&](const UploadProgress& p) {
      if (!base_known && p.bytes_total > 0) {
        base_bytes = p.bytes_acknowledged;
        base_known = true;
      }
      bar.Update(p.bytes_acknowledged, p.bytes_total, base_bytes);
    };
  }
  auto start = std::chrono::steady_clock::now();
  auto outcome = UploadDataset(**connection, request);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!outcome.ok()) return Fail(outcome.status());
  if (args.json) {
    nlohmann::json j = {{"name", args.name},
                        {"dataset_id", outcome->dataset_id},
                        {"chunks", outcome->chunks},
                        {"container_size", outcome->container_size},
                        {"samples", outcome->samples},
                        {"resumed", outcome->resumed},
                        {"resumed_from_chunk", outcome->resumed_from},
                        {"already_complete", outcome->already_complete},
                        {"via", outcome->via_data_plane ? "data plane" : "api"},
                        {"seconds", seconds}};
    if (!outcome->data_plane_fallback.empty()) {
      j["data_plane_fallback"] = outcome->data_plane_fallback;
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (outcome->already_complete) {
    std::printf("dataset '%s' (%s) was already complete on the server\n", args.name.c_str(),
                outcome->dataset_id.c_str());
    return kExitOk;
  }
  if (!outcome->data_plane_fallback.empty()) {
    std::fprintf(stderr,
                 "note: the runtime's data plane was not reachable (%s); the chunks went "
                 "through the API port instead, which is slower (open the data-plane port, see "
                 "chirond --data-listen)\n",
                 outcome->data_plane_fallback.c_str());
  }
  if (outcome->resumed) {
    std::printf("resumed '%s' at chunk %llu of %llu\n", args.name.c_str(),
                static_cast<unsigned long long>(outcome->resumed_from),
                static_cast<unsigned long long>(outcome->chunks));
  }
  std::printf("uploaded '%s': dataset %s, %llu samples, %llu chunks, %s in %.1f s (%s/s)\n",
              args.name.c_str(), outcome->dataset_id.c_str(),
              static_cast<unsigned long long>(outcome->samples),
              static_cast<unsigned long long>(outcome->chunks),
              FormatBytes(outcome->container_size).c_str(), seconds,
              FormatBytes(static_cast<uint64_t>(outcome->container_size / std::max(seconds, 1e-3)))
                  .c_str());
  return kExitOk;
}

int RunList(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::ListDatasetsResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Datasets::NewStub((*connection)->channel())
                               ->List(context.get(), v1::ListDatasetsRequest(), &response),
                           "Datasets.List");
  if (!status.ok()) return Fail(status);
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::DatasetInfo& info : response.datasets()) {
      list.push_back({{"name", info.name()},
                      {"dataset_id", info.dataset_id()},
                      {"sample_count", info.sample_count()},
                      {"sample_shape", std::vector<uint32_t>(info.sample_shape().begin(),
                                                             info.sample_shape().end())},
                      {"class_count", info.class_count()},
                      {"stored_size", info.stored_size()},
                      {"complete", info.complete()},
                      {"status", info.complete() ? "complete" : "partial"},
                      {"chunk_count", info.chunk_count()},
                      {"acknowledged_chunks", info.acknowledged_chunks()},
                      {"created_unix", info.created_unix()}});
    }
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.datasets().empty()) {
    std::printf("no datasets; upload one with `chiron dataset upload PATH --name NAME`\n");
    return kExitOk;
  }
  std::printf("%-24s %-18s %9s %-10s %7s %10s %-14s %s\n", "NAME", "ID", "SAMPLES", "SHAPE",
              "CLASSES", "STORED", "STATUS", "CREATED (UTC)");
  std::string partial;  // names of partial datasets
  for (const v1::DatasetInfo& info : response.datasets()) {
    if (!info.complete()) partial += (partial.empty() ? "'" : ", '") + info.name() + "'";
    std::printf("%-24s %-18s %9llu %-10s %7u %10s %-14s %s\n", info.name().c_str(),
                (info.dataset_id().substr(0, 16) + "..").c_str(),
                static_cast<unsigned long long>(info.sample_count()), Shape(info).c_str(),
                info.class_count(), FormatBytes(info.stored_size()).c_str(),
                info.complete() ? "complete"
                                : ("partial " + std::to_string(info.acknowledged_chunks()) + "/" +
                                   std::to_string(info.chunk_count()))
                                      .c_str(),
                FormatTime(info.created_unix()).c_str());
  }
  if (!partial.empty()) {
    // A partial dataset is an upload that did not finish: it cannot be trained on yet.
    std::printf("\npartial (an upload that did not finish; it cannot be used yet): %s. Run the "
                "same `chiron dataset upload` command again to resume it, or delete it with "
                "`chiron dataset delete NAME`.\n",
                partial.c_str());
  }
  return kExitOk;
}

int RunDelete(const GlobalOptions& global, const std::string& name, bool force) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::DeleteDatasetRequest request;
  request.set_name(name);
  request.set_force(force);
  v1::DeleteDatasetResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(
      v1::Datasets::NewStub((*connection)->channel())->Delete(context.get(), request, &response),
      "Datasets.Delete");
  if (!status.ok()) return Fail(status);
  // A partial upload's local resume state (with its data key) goes too.
  FileSystem::Default()->RemoveFile(session->profile.UploadStatePath(name)).IgnoreError();
  for (const std::string& job : response.cancelled_jobs()) {
    std::printf("cancelled job %s, which was reading it\n", job.c_str());
  }
  std::printf("deleted '%s' (dataset %s): its key was destroyed and its chunks removed\n",
              name.c_str(), response.dataset_id().c_str());
  return kExitOk;
}

}  // namespace

void AddDatasetCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto* dataset_cmd = app.add_subcommand("dataset", "Upload, list and delete your datasets");
  dataset_cmd->require_subcommand(1);
  dataset_cmd->footer(
      "Examples:\n"
      "  chiron dataset upload /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz "
      "--name fmnist-train\n  chiron dataset list --json\n  chiron dataset delete fmnist-train");

  auto upload = std::make_shared<UploadArgs>();
  auto* upload_cmd = dataset_cmd->add_subcommand(
      "upload",
      "Encrypt a dataset while streaming it to the runtime; rerun to resume an interrupted one");
  upload_cmd->footer(
      "Formats: idx (MNIST/Fashion-MNIST images file; labels file found beside it or --labels), "
      "csv (header row, numeric columns, --label-column), cifar (CIFAR-10 .bin or folder), "
      "images (png folder: root/<class>/*.png). auto detects.\n\nExamples:\n"
      "  chiron dataset upload train-images-idx3-ubyte.gz --name fmnist-train\n"
      "  chiron dataset upload iris.csv --name iris --format csv --label-column species");
  upload_cmd->add_option("PATH", upload->path, "the dataset file or folder")->required();
  upload_cmd->add_option("--name", upload->name, "name of the dataset on the server")->required();
  upload_cmd->add_option("--format", upload->format, "auto, idx, csv, cifar or images")
      ->check(CLI::IsMember({"auto", "idx", "csv", "cifar", "images", "png-folder"}))
      ->capture_default_str();
  upload_cmd->add_option("--labels", upload->labels, "idx: the labels file");
  upload_cmd->add_option("--label-column", upload->label_column, "csv: the label column")
      ->capture_default_str();
  upload_cmd
      ->add_option("--classes", upload->classes,
                   "class names in class-index order (comma separated)")
      ->delimiter(',');
  upload_cmd
      ->add_option("--chunk-size", upload->chunk_size,
                   "plaintext bytes per encrypted chunk (whole samples)")
      ->check(CLI::Range(uint64_t{1}, dataset::kMaxChunkPlaintextSize))
      ->capture_default_str();
  upload_cmd->add_flag("--no-progress", upload->no_progress, "no progress bar");
  upload_cmd->add_flag("--no-data-plane", upload->no_data_plane,
                       "send the chunks through the attested API connection, not the runtime's "
                       "TLS-free data-plane port (they are sealed under the dataset key either "
                       "way; docs/formats/data-plane.md)");
  upload_cmd->add_flag("--json", upload->json, "print the result as JSON");
  upload_cmd->callback([&global, &action, upload] {
    action = [&global, upload] { return RunUpload(global, *upload); };
  });

  auto list_json = std::make_shared<bool>(false);
  auto* list_cmd = dataset_cmd->add_subcommand("list", "List your datasets on the server");
  list_cmd->footer("Example:\n  chiron dataset list --json");
  list_cmd->add_flag("--json", *list_json, "print as JSON");
  list_cmd->callback([&global, &action, list_json] {
    action = [&global, list_json] { return RunList(global, *list_json); };
  });

  auto delete_name = std::make_shared<std::string>();
  auto* delete_cmd = dataset_cmd->add_subcommand(
      "delete", "Delete a dataset: its key is destroyed (crypto-shredding), then its chunks");
  delete_cmd->footer("Example:\n  chiron dataset delete fmnist-train");
  delete_cmd->add_option("NAME", *delete_name, "the dataset's name")->required();
  auto delete_force = std::make_shared<bool>(false);
  delete_cmd->add_flag("--force", *delete_force,
                       "also when unfinished training jobs read it: cancel them first (without "
                       "it, such a dataset is not deleted and the jobs are named)");
  delete_cmd->callback([&global, &action, delete_name, delete_force] {
    action = [&global, delete_name, delete_force] {
      return RunDelete(global, *delete_name, *delete_force);
    };
  });
}

}  // namespace chiron::client
