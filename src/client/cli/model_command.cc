// `chiron model list|show|delete|evaluate|limit|grant|revoke|shared`: the owner's trained
// models. Parameters never leave the runtime; an owner lists models, scores them on their own
// labelled datasets, sets their query limits and output narrowing, shares Predict on them with
// other owners (grant/revoke), and deletes them. `shared` lists the models others shared.
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

std::string PolicyText(const v1::OutputPolicy& p) {
  if (p.label_only()) return "label only";
  return (p.max_top_k() == 0 ? std::string("every class") : "top " + std::to_string(p.max_top_k())) +
         ", " + std::to_string(p.decimals()) + " decimals";
}

std::string LimitsText(const v1::OutputLimits& l) {
  std::vector<std::string> parts;
  if (l.label_only()) parts.push_back("label only");
  if (l.max_top_k() > 0) parts.push_back("top " + std::to_string(l.max_top_k()));
  if (l.has_decimals()) parts.push_back(std::to_string(l.decimals()) + " decimals");
  if (parts.empty()) return "none";
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

nlohmann::json PolicyJson(const v1::OutputPolicy& p) {
  return {{"label_only", p.label_only()}, {"max_top_k", p.max_top_k()},
          {"decimals", p.decimals()}};
}

// The owner's full view of a model: ModelInfoJson plus policies, limits and grants.
nlohmann::json FullModelJson(const v1::ModelInfo& info) {
  nlohmann::json j = ModelInfoJson(info);
  j["output_policy"] = PolicyJson(info.output_policy());
  j["provider_output_policy"] = PolicyJson(info.provider_output_policy());
  nlohmann::json limits = {{"label_only", info.owner_output_limits().label_only()},
                           {"max_top_k", info.owner_output_limits().max_top_k()}};
  if (info.owner_output_limits().has_decimals()) {
    limits["decimals"] = info.owner_output_limits().decimals();
  }
  j["owner_output_limits"] = limits;
  j["rate_per_minute"] = info.rate_per_minute();
  j["max_batch"] = info.max_batch();
  nlohmann::json grants = nlohmann::json::array();
  for (const v1::ModelGrant& g : info.grants()) {
    grants.push_back({{"grantee_id", g.grantee_id()},
                      {"budget", g.budget()},
                      {"used", g.used()},
                      {"created_unix", g.created_unix()}});
  }
  j["grants"] = grants;
  return j;
}

void PrintModel(const v1::ModelInfo& info) {
  std::printf("model '%s'\n", info.name().c_str());
  std::printf("  input:            %s\n", Shape(info).c_str());
  std::printf("  classes:          %d\n", info.class_names_size() > 0
                                                ? info.class_names_size()
                                                : static_cast<int>(info.output_size()));
  std::printf("  recipe:           %s\n", info.recipe_id().c_str());
  std::printf("  job:              %s\n", info.job_id().c_str());
  std::printf("  validation acc:   %.4f\n", info.validation_accuracy());
  std::printf("  created (UTC):    %s\n", FormatTime(info.created_unix()).c_str());
  std::printf("  queries:          %llu of %llu (everyone's)\n",
              static_cast<unsigned long long>(info.queries_used()),
              static_cast<unsigned long long>(info.query_budget()));
  std::printf("  rate limit:       %s\n",
              info.rate_per_minute() == 0
                  ? "none"
                  : (std::to_string(info.rate_per_minute()) + " per minute per principal").c_str());
  std::printf("  output:           %s (provider: %s; your limits: %s)\n",
              PolicyText(info.output_policy()).c_str(),
              PolicyText(info.provider_output_policy()).c_str(),
              LimitsText(info.owner_output_limits()).c_str());
  if (info.grants().empty()) {
    std::printf("  shared with:      nobody\n");
    return;
  }
  std::printf("  shared with:\n");
  for (const v1::ModelGrant& g : info.grants()) {
    std::string budget = g.budget() == 0 ? "model budget" : std::to_string(g.budget());
    std::printf("    %s  used %llu of %s, since %s\n", g.grantee_id().c_str(),
                static_cast<unsigned long long>(g.used()), budget.c_str(),
                FormatTime(g.created_unix()).c_str());
  }
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
    for (const v1::ModelInfo& info : response.models()) list.push_back(FullModelJson(info));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.models().empty()) {
    std::printf("no models; train one with `%s train --dataset D --recipe R --model M`\n",
                global.program.c_str());
    return kExitOk;
  }
  std::printf("%-22s %-18s %-14s %7s %8s %15s %-16s %6s %s\n", "NAME", "RECIPE", "INPUT",
              "CLASSES", "VAL ACC", "QUERIES", "CREATED (UTC)", "SHARED", "OUTPUT");
  for (const v1::ModelInfo& info : response.models()) {
    std::string queries = std::to_string(info.queries_used()) + "/" +
                          (info.query_budget() > 0 ? std::to_string(info.query_budget()) : "-");
    std::printf("%-22s %-18s %-14s %7d %8.4f %15s %-16s %6d %s\n", info.name().c_str(),
                (info.recipe_id().substr(0, 16) + "..").c_str(), Shape(info).c_str(),
                info.class_names_size() > 0 ? info.class_names_size()
                                            : static_cast<int>(info.output_size()),
                info.validation_accuracy(), queries.c_str(),
                FormatTime(info.created_unix()).c_str(), info.grants_size(),
                PolicyText(info.output_policy()).c_str());
  }
  return kExitOk;
}

int RunShow(const GlobalOptions& global, const std::string& name, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto model = FindModel(**connection, name, global.program);
  if (!model.ok()) return Fail(model.status());
  if (json) {
    std::cout << FullModelJson(*model).dump(2) << "\n";
  } else {
    PrintModel(*model);
  }
  return kExitOk;
}

struct LimitArgs {
  std::string name;
  uint64_t budget = 0;
  uint32_t per_minute = 0;
  bool label_only = false;
  uint32_t top_k = 0;
  uint32_t decimals = 0;
  bool clear_output = false;
  bool json = false;
  // Which options were given.
  bool has_budget = false;
  bool has_per_minute = false;
  bool has_top_k = false;
  bool has_decimals = false;
};

// Sends a Models call that answers the owner's updated view, and prints it.
template <typename Request, typename Call>
int ChangeModel(const GlobalOptions& global, const Request& request, const char* what,
                const std::string& done, bool json, Call call) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto stub = v1::Models::NewStub((*connection)->channel());
  v1::ModelInfo info;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(call(*stub, context.get(), request, &info), what);
  if (!status.ok()) {
    int code = Fail(status);
    if (status.code() == StatusCode::kNotFound) {
      std::fprintf(stderr, "%s: `%s model list` shows your models\n", global.program.c_str(),
                   global.program.c_str());
    }
    return code;
  }
  if (json) {
    std::cout << FullModelJson(info).dump(2) << "\n";
  } else {
    std::printf("%s\n", done.c_str());
    PrintModel(info);
  }
  return kExitOk;
}

int RunLimit(const GlobalOptions& global, const LimitArgs& args) {
  v1::SetModelLimitsRequest request;
  request.set_name(args.name);
  if (args.has_budget) request.set_query_budget(args.budget);
  if (args.has_per_minute) request.set_rate_per_minute(args.per_minute);
  if (args.label_only || args.has_top_k || args.has_decimals || args.clear_output) {
    v1::OutputLimits* limits = request.mutable_output_limits();
    limits->set_label_only(args.label_only);
    if (args.has_top_k) limits->set_max_top_k(args.top_k);
    if (args.has_decimals) limits->set_decimals(args.decimals);
  }
  if (!request.has_query_budget() && !request.has_rate_per_minute() &&
      !request.has_output_limits()) {
    std::fprintf(stderr, "%s: nothing to change; see --help\n", global.program.c_str());
    return kExitUsage;
  }
  return ChangeModel(global, request, "Models.SetLimits",
                     "limits of model '" + args.name + "' updated", args.json,
                     [](auto& stub, grpc::ClientContext* c, const auto& r, v1::ModelInfo* out) {
                       return stub.SetLimits(c, r, out);
                     });
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

int RunShared(const GlobalOptions& global, bool json) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  v1::ListSharedModelsResponse response;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Models::NewStub((*connection)->channel())
                               ->ListShared(context.get(), v1::ListSharedModelsRequest(),
                                            &response),
                           "Models.ListShared");
  if (!status.ok()) return Fail(status);
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::SharedModel& m : response.models()) {
      std::string shape;
      for (uint32_t d : m.input_shape()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      list.push_back({{"owner_id", m.owner_id()},
                      {"name", m.name()},
                      {"input_shape", std::vector<uint32_t>(m.input_shape().begin(),
                                                            m.input_shape().end())},
                      {"input_type", m.input_type()},
                      {"class_names", std::vector<std::string>(m.class_names().begin(),
                                                               m.class_names().end())},
                      {"output_policy", PolicyJson(m.output_policy())},
                      {"rate_per_minute", m.rate_per_minute()},
                      {"queries_used", m.queries_used()},
                      {"query_budget", m.query_budget()}});
    }
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  if (response.models().empty()) {
    std::printf("no models are shared with you; an owner shares one with `%s model grant NAME "
                "--to YOUR_ID` (`%s whoami` shows your id)\n",
                global.program.c_str(), global.program.c_str());
    return kExitOk;
  }
  for (const v1::SharedModel& m : response.models()) {
    std::string shape;
    for (uint32_t d : m.input_shape()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    std::string budget = m.query_budget() == 0 ? "the model's budget"
                                               : std::to_string(m.query_budget());
    std::printf("%s  owner %s\n  input %s %s, %s, used %llu of %s\n  %s predict --model %s "
                "--owner %s FILE...\n",
                m.name().c_str(), m.owner_id().c_str(), shape.c_str(), m.input_type().c_str(),
                PolicyText(m.output_policy()).c_str(),
                static_cast<unsigned long long>(m.queries_used()), budget.c_str(),
                global.program.c_str(), m.name().c_str(), m.owner_id().c_str());
  }
  return kExitOk;
}

}  // namespace

void AddModelCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto* model_cmd = app.add_subcommand("model", "List, evaluate and delete your trained models");
  model_cmd->require_subcommand(1);
  model_cmd->footer(
      "A model's parameters never leave the runtime: you query it (chiron predict) and score it "
      "(chiron model evaluate), limit it, share Predict with other owners (grant / revoke), "
      "nothing more.\n\nExamples:\n  chiron model list\n"
      "  chiron model show fmnist-lenet\n"
      "  chiron model evaluate fmnist-lenet --dataset fmnist-test\n"
      "  chiron model limit fmnist-lenet --per-minute 60 --budget 5000\n"
      "  chiron model grant fmnist-lenet --to 3fa1...c2 --budget 100\n"
      "  chiron model delete fmnist-lenet");

  auto list_json = std::make_shared<bool>(false);
  auto* list_cmd = model_cmd->add_subcommand(
      "list", "List your models: input, classes, validation accuracy, queries used/budget");
  list_cmd->footer("Example:\n  chiron model list --json");
  list_cmd->add_flag("--json", *list_json, "print as JSON");
  list_cmd->callback([&global, &action, list_json] {
    action = [&global, list_json] { return RunList(global, *list_json); };
  });

  auto show_name = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  auto* show_cmd = model_cmd->add_subcommand(
      "show", "Show one model: input, queries, rate limit, output policy and who it is shared with");
  show_cmd->footer("Example:\n  chiron model show fmnist-lenet --json");
  show_cmd->add_option("MODEL", *show_name, "the model's name")->required();
  show_cmd->add_flag("--json", *show_json, "print as JSON");
  show_cmd->callback([&global, &action, show_name, show_json] {
    action = [&global, show_name, show_json] { return RunShow(global, *show_name, *show_json); };
  });

  auto limit = std::make_shared<LimitArgs>();
  auto* limit_cmd = model_cmd->add_subcommand(
      "limit", "Set a model's query budget, rate limit and output narrowing");
  limit_cmd->footer(
      "--per-minute N lets each querying principal (you, and each grantee separately) send N "
      "samples per minute (a token bucket; 0 removes the limit); more is refused with the time "
      "to wait. --budget M is the model's total queries (everyone's), at most chirond's "
      "--query-budget. --label-only, --top-k and --decimals narrow what the provider's output "
      "policy returns; they can never widen it, and each use replaces the previous narrowing "
      "(--no-output-limits removes it).\n\nExamples:\n"
      "  chiron model limit fmnist-lenet --per-minute 60 --budget 5000\n"
      "  chiron model limit fmnist-lenet --top-k 1 --decimals 2\n"
      "  chiron model limit fmnist-lenet --label-only");
  limit_cmd->add_option("MODEL", limit->name, "the model's name")->required();
  auto* budget_opt =
      limit_cmd->add_option("--budget", limit->budget, "total queries the model answers");
  auto* per_minute_opt = limit_cmd->add_option(
      "--per-minute", limit->per_minute, "queries per minute per querying principal (0: no limit)");
  limit_cmd->add_flag("--label-only", limit->label_only, "return only the predicted class");
  auto* top_k_opt =
      limit_cmd->add_option("--top-k", limit->top_k, "return at most this many classes")
          ->check(CLI::Range(1u, 65536u));
  auto* decimals_opt =
      limit_cmd
          ->add_option("--decimals", limit->decimals, "round probabilities to this many decimals")
          ->check(CLI::Range(0u, 6u));
  limit_cmd->add_flag("--no-output-limits", limit->clear_output,
                      "remove your output narrowing (the provider's policy still applies)");
  limit_cmd->add_flag("--json", limit->json, "print the model as JSON");
  limit_cmd->callback([&global, &action, limit, budget_opt, per_minute_opt, top_k_opt,
                       decimals_opt] {
    limit->has_budget = budget_opt->count() > 0;
    limit->has_per_minute = per_minute_opt->count() > 0;
    limit->has_top_k = top_k_opt->count() > 0;
    limit->has_decimals = decimals_opt->count() > 0;
    action = [&global, limit] { return RunLimit(global, *limit); };
  });

  struct GrantArgs {
    std::string name;
    std::string principal;
    uint64_t budget = 0;
    bool json = false;
  };
  auto grant = std::make_shared<GrantArgs>();
  auto* grant_cmd = model_cmd->add_subcommand(
      "grant", "Let another owner query one of your models (Predict only)");
  grant_cmd->footer(
      "The grantee (an owner-role principal; providers are refused) may call Predict on this "
      "model and nothing else: no evaluate, delete, limits or grants, and never the parameters. "
      "Its queries count against --budget (0: only the model's budget) and the model's, follow "
      "the model's rate limit and output policy, and are audit records in your chain and in "
      "the grantee's. Granting again changes the budget. The grantee's id is what `chiron "
      "whoami` prints on its side.\n\nExample:\n"
      "  chiron model grant fmnist-lenet --to 3fa1...c2 --budget 100");
  grant_cmd->add_option("MODEL", grant->name, "the model's name")->required();
  grant_cmd->add_option("--to", grant->principal, "the grantee's principal id")->required();
  grant_cmd->add_option("--budget", grant->budget, "queries the grantee may make (0: no own cap)")
      ->capture_default_str();
  grant_cmd->add_flag("--json", grant->json, "print the model as JSON");
  grant_cmd->callback([&global, &action, grant] {
    action = [&global, grant] {
      v1::GrantModelRequest request;
      request.set_name(grant->name);
      request.set_grantee_id(grant->principal);
      request.set_budget(grant->budget);
      return ChangeModel(global, request, "Models.Grant",
                         "model '" + grant->name + "' shared with " + grant->principal,
                         grant->json,
                         [](auto& stub, grpc::ClientContext* c, const auto& r,
                            v1::ModelInfo* out) { return stub.Grant(c, r, out); });
    };
  });

  auto revoke = std::make_shared<GrantArgs>();
  auto* revoke_cmd = model_cmd->add_subcommand(
      "revoke", "Take back another owner's access to one of your models");
  revoke_cmd->footer(
      "Takes effect for the grantee's next request. Audited in your chain and the grantee's."
      "\n\nExample:\n  chiron model revoke fmnist-lenet --from 3fa1...c2");
  revoke_cmd->add_option("MODEL", revoke->name, "the model's name")->required();
  revoke_cmd->add_option("--from", revoke->principal, "the grantee's principal id")->required();
  revoke_cmd->add_flag("--json", revoke->json, "print the model as JSON");
  revoke_cmd->callback([&global, &action, revoke] {
    action = [&global, revoke] {
      v1::RevokeModelRequest request;
      request.set_name(revoke->name);
      request.set_grantee_id(revoke->principal);
      return ChangeModel(global, request, "Models.Revoke",
                         "model '" + revoke->name + "' no longer shared with " +
                             revoke->principal,
                         revoke->json,
                         [](auto& stub, grpc::ClientContext* c, const auto& r,
                            v1::ModelInfo* out) { return stub.Revoke(c, r, out); });
    };
  });

  auto shared_json = std::make_shared<bool>(false);
  auto* shared_cmd = model_cmd->add_subcommand(
      "shared", "List the models other owners shared with you, and how to query them");
  shared_cmd->footer("Example:\n  chiron model shared --json");
  shared_cmd->add_flag("--json", *shared_json, "print as JSON");
  shared_cmd->callback([&global, &action, shared_json] {
    action = [&global, shared_json] { return RunShared(global, *shared_json); };
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
