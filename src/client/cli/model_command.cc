// `chiron model list|delete|evaluate`: the owner's trained models. Parameters never leave the
// runtime; an owner lists models, scores them on their own labelled datasets, and deletes them.
#include <ctime>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/models.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/job_view.h"

namespace chiron::client {
namespace {

struct EvaluateArgs {
  std::string model;
  std::string dataset;
  bool json = false;
};

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
  return text;
}

std::string Shape(const v1::ModelInfo& info) {
  std::string out;
  for (uint32_t dimension : info.input_shape()) {
    out += (out.empty() ? "" : "x") + std::to_string(dimension);
  }
  return out + (info.input_type().empty() ? "" : " " + info.input_type());
}

int RunList(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::ListModelsResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Models::NewStub((*connection)->channel())
                               ->List(context.get(), v1::ListModelsRequest(), &response),
                           "Models.List");
  if (!status.ok()) return Fail(status);
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::ModelInfo& info : response.models()) list.push_back(ModelInfoJson(info));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.models().empty()) {
    std::printf("no models; train one with `%s train --dataset D --recipe R --model M`\n",
                global.program.c_str());
    return kExitOk;
  }
  std::printf("%-22s %-18s %-14s %7s %8s %15s %s\n", "NAME", "RECIPE", "INPUT", "CLASSES",
              "VAL ACC", "QUERIES", "CREATED (UTC)");
  for (const v1::ModelInfo& info : response.models()) {
    std::string queries = std::to_string(info.queries_used()) + "/" +
                          (info.query_budget() > 0 ? std::to_string(info.query_budget()) : "-");
    std::printf("%-22s %-18s %-14s %7d %8.4f %15s %s\n", info.name().c_str(),
                (info.recipe_id().substr(0, 16) + "..").c_str(), Shape(info).c_str(),
                info.class_names_size() > 0 ? info.class_names_size()
                                            : static_cast<int>(info.output_size()),
                info.validation_accuracy(), queries.c_str(),
                FormatTime(info.created_unix()).c_str());
  }
  return kExitOk;
}

int RunDelete(const GlobalOptions& global, const std::string& name) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::DeleteModelRequest request;
  request.set_name(name);
  v1::DeleteModelResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Models::NewStub((*connection)->channel())
                               ->Delete(context.get(), request, &response),
                           "Models.Delete");
  if (!status.ok()) {
    int code = Fail(status);
    if (status.code() == StatusCode::kNotFound) {
      std::fprintf(stderr, "%s: `%s model list` shows your models\n", global.program.c_str(),
                   global.program.c_str());
    }
    return code;
  }
  std::printf("deleted model '%s': its sealed parameters were destroyed\n", name.c_str());
  return kExitOk;
}

int RunEvaluate(const GlobalOptions& global, const EvaluateArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  // Scoring runs the model over the whole dataset in the sandbox: allow for that.
  auto connection = ConnectSession(*session, std::chrono::minutes(30));
  if (!connection.ok()) return FailConnect(connection.status());
  auto model = FindModel(**connection, args.model, global.program);
  if (!model.ok()) return Fail(model.status());
  v1::EvaluateRequest request;
  request.set_model_name(args.model);
  request.set_dataset_name(args.dataset);
  v1::EvaluationReport report;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Models::NewStub((*connection)->channel())
                               ->Evaluate(context.get(), request, &report),
                           "Models.Evaluate");
  if (!status.ok()) {
    int code = Fail(status);
    if (status.code() == StatusCode::kNotFound) {
      std::fprintf(stderr,
                   "%s: `%s dataset list` shows your datasets; upload a labelled test set with "
                   "`%s dataset upload FILE --name NAME`\n",
                   global.program.c_str(), global.program.c_str(), global.program.c_str());
    } else if (status.code() == StatusCode::kInvalidArgument ||
               status.code() == StatusCode::kFailedPrecondition) {
      std::fprintf(stderr,
                   "%s: the dataset must have the model's input shape and classes (`%s model "
                   "list` and `%s dataset list` show both)\n",
                   global.program.c_str(), global.program.c_str(), global.program.c_str());
    }
    return code;
  }
  std::vector<std::string> class_names(model->class_names().begin(), model->class_names().end());
  std::vector<double> per_class(report.per_class_accuracy().begin(),
                                report.per_class_accuracy().end());
  std::vector<uint64_t> confusion(report.confusion_matrix().begin(),
                                  report.confusion_matrix().end());
  if (args.json) {
    nlohmann::json j = {{"model", args.model},
                        {"dataset", args.dataset},
                        {"sample_count", report.sample_count()},
                        {"loss", report.loss()},
                        {"accuracy", report.accuracy()},
                        {"per_class_accuracy", per_class},
                        {"confusion_matrix", confusion},
                        {"class_names", class_names}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("model '%s' on dataset '%s' (%llu samples, scored inside the runtime)\n",
              args.model.c_str(), args.dataset.c_str(),
              static_cast<unsigned long long>(report.sample_count()));
  std::printf("accuracy: %.4f (loss %.4f; validation accuracy at training: %.4f)\n",
              report.accuracy(), report.loss(), model->validation_accuracy());
  PrintClassMetrics(class_names, per_class, confusion);
  return kExitOk;
}

}  // namespace

void AddModelCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto* model_cmd = app.add_subcommand("model", "List, evaluate and delete your trained models");
  model_cmd->require_subcommand(1);
  model_cmd->footer(
      "A model's parameters never leave the runtime: you query it (chiron predict) and score it "
      "(chiron model evaluate), nothing more.\n\nExamples:\n  chiron model list\n"
      "  chiron model evaluate fmnist-lenet --dataset fmnist-test\n"
      "  chiron model delete fmnist-lenet");

  auto list_json = std::make_shared<bool>(false);
  auto* list_cmd = model_cmd->add_subcommand(
      "list", "List your models: input, classes, validation accuracy, queries used/budget");
  list_cmd->footer("Example:\n  chiron model list --json");
  list_cmd->add_flag("--json", *list_json, "print as JSON");
  list_cmd->callback([&global, &action, list_json] {
    action = [&global, list_json] { return RunList(global, *list_json); };
  });

  auto delete_name = std::make_shared<std::string>();
  auto* delete_cmd = model_cmd->add_subcommand("delete", "Delete a model and its parameters");
  delete_cmd->footer("Example:\n  chiron model delete fmnist-lenet");
  delete_cmd->add_option("MODEL", *delete_name, "the model's name")->required();
  delete_cmd->callback([&global, &action, delete_name] {
    action = [&global, delete_name] { return RunDelete(global, *delete_name); };
  });

  auto evaluate = std::make_shared<EvaluateArgs>();
  auto* evaluate_cmd = model_cmd->add_subcommand(
      "evaluate",
      "Score a model on one of your labelled datasets: accuracy, per-class, confusion matrix");
  evaluate_cmd->footer(
      "The runtime runs the model over every sample of the dataset and returns only aggregate "
      "metrics. Upload the test set first (chiron dataset upload).\n\nExample:\n"
      "  chiron dataset upload /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "
      "--name fmnist-test\n  chiron model evaluate fmnist-lenet --dataset fmnist-test");
  evaluate_cmd->add_option("MODEL", evaluate->model, "the model's name")->required();
  evaluate_cmd->add_option("--dataset", evaluate->dataset, "your labelled dataset to score on")
      ->required();
  evaluate_cmd->add_flag("--json", evaluate->json, "print as JSON");
  evaluate_cmd->callback([&global, &action, evaluate] {
    action = [&global, evaluate] { return RunEvaluate(global, *evaluate); };
  });
}

}  // namespace chiron::client
