// `chiron train`: start a confined training job on one of your datasets and follow it live.
#include <cstdio>
#include <iostream>

#include "chiron/v1/jobs.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "client/cli/cluster_nodes.h"
#include "client/cli/job_view.h"
#include "shared/base/file_system.h"

namespace chiron::client {
namespace {

struct TrainArgs {
  std::string dataset;
  std::string recipe;
  std::string model;
  uint32_t epochs = 0;
  double validation = 0.1;
  uint64_t seed = 0;
  std::string provider_view = "coarse";
  uint32_t nodes = 1;
  uint32_t staleness = 0;
  bool detach = false;
  bool json = false;
};

int RunTrain(const GlobalOptions& global, const TrainArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  // Starting a job loads the recipe in a sandbox to read its declarations: allow for that.
  auto connection = ConnectSession(*session, std::chrono::seconds(120));
  if (!connection.ok()) return FailConnect(connection.status());

  v1::StartTrainingRequest request;
  request.set_dataset_name(args.dataset);
  request.set_recipe_id(args.recipe);
  request.set_model_name(args.model);
  request.set_validation_fraction(args.validation);
  request.set_epochs(args.epochs);
  request.set_seed(args.seed);
  request.set_provider_view(args.provider_view == "done-only" ? v1::PROVIDER_VIEW_DONE_ONLY
                                                              : v1::PROVIDER_VIEW_COARSE);
  if (args.staleness > 0 && args.nodes <= 1) {
    return Fail(InvalidArgumentError(
        "--staleness applies to a job on several nodes: add --nodes N, or drop --staleness"));
  }
  if (args.nodes > 1) {
    // Only nodes whose certificates verify under YOUR policy may receive a shard of your data:
    // the server's cluster is checked here, and their keys go with the request.
    auto verifier = LoadVerifier(session->policy_path);
    if (!verifier.ok()) return Fail(verifier.status());
    auto cluster = CheckClusterNodes(**connection, **verifier);
    if (!cluster.ok()) return Fail(cluster.status());
    if (cluster->node_address.empty()) {
      return Fail(
          FailedPreconditionError("--nodes " + std::to_string(args.nodes) + ": " + session->server +
                                  " is not in a cluster, so it trains on one node; drop --nodes"));
    }
    uint32_t approved = 0;
    for (const CheckedNode& node : cluster->nodes) {
      if (node.approved) ++approved;
      if (!args.json) {
        std::fprintf(stderr, "%s: node %s  %s\n", global.program.c_str(), node.address.c_str(),
                     node.verdict.c_str());
      }
    }
    if (approved + 1 < args.nodes) {
      return Fail(FailedPreconditionError(
          "--nodes " + std::to_string(args.nodes) + " needs " + std::to_string(args.nodes - 1) +
          " other nodes that pass your policy, and " + std::to_string(approved) + " of the " +
          std::to_string(cluster->nodes.size()) + " in the cluster do (listed above; `" +
          global.program +
          " attest` shows them): lower --nodes, or trust the nodes in your policy"));
    }
    // The server checks every node again under your policy at each dispatch (a node that
    // restarts has a new key, the same evidence).
    auto policy_text = FileSystem::Default()->ReadFile(session->policy_path, size_t{1} << 20);
    if (!policy_text.ok()) return Fail(policy_text.status());
    request.set_node_policy(std::string(policy_text->begin(), policy_text->end()));
    request.set_nodes(args.nodes);
    request.set_staleness(args.staleness);
  }
  v1::OwnerJobView started;
  auto context = (*connection)->NewContext();
  Status status = FromGrpc(v1::Jobs::NewStub((*connection)->channel())
                               ->StartTraining(context.get(), request, &started),
                           "Jobs.StartTraining");
  if (!status.ok()) {
    int code = Fail(status);
    if (status.code() == StatusCode::kNotFound) {
      std::fprintf(stderr,
                   "%s: `%s dataset list` shows your datasets and `%s recipe list` the recipes "
                   "(pass a recipe's name or id)\n",
                   global.program.c_str(), global.program.c_str(), global.program.c_str());
    } else if (status.code() == StatusCode::kAlreadyExists) {
      std::fprintf(stderr, "%s: choose another --model name, or `%s model delete %s` first\n",
                   global.program.c_str(), global.program.c_str(), args.model.c_str());
    }
    return code;
  }
  if (!args.json) {
    uint32_t epochs = started.epochs_total() > 0 ? started.epochs_total() : args.epochs;
    std::string epoch_text = epochs > 0
                                 ? std::to_string(epochs) + (epochs == 1 ? " epoch" : " epochs")
                                 : "the recipe's default epochs";
    std::printf(
        "started job %s: model '%s' from dataset '%s' with recipe %s, %s, "
        "%.0f%% held out for validation%s\n",
        started.job_id().c_str(), args.model.c_str(), args.dataset.c_str(),
        started.recipe_id().substr(0, 16).c_str(), epoch_text.c_str(), args.validation * 100,
        args.nodes > 1 ? (", on " + std::to_string(args.nodes) + " nodes").c_str() : "");
    std::fflush(stdout);
  }
  if (args.detach) {
    if (args.json) {
      std::cout << OwnerJobViewJson(started, {}).dump(2) << "\n";
    } else {
      std::printf("detached: `%s job watch %s` follows it, `%s job list` shows every job\n",
                  global.program.c_str(), started.job_id().c_str(), global.program.c_str());
    }
    return kExitOk;
  }
  if (!args.json) {
    std::printf("training in the sandbox; Ctrl-C stops watching (the job keeps running)\n");
    std::fflush(stdout);
  }
  WatchOptions watch;
  watch.program = global.program;
  watch.print_epochs = !args.json;
  auto finished = WatchJob(**connection, started, watch);
  if (!finished.ok()) return Fail(finished.status());
  return ReportFinishedJob(**connection, *finished, args.json, global.program);
}

}  // namespace

void AddTrainCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<TrainArgs>();
  auto* train_cmd = app.add_subcommand(
      "train", "Train a model on one of your datasets with a recipe, inside the sandbox");
  train_cmd->footer(
      "The runtime holds out --validation of the dataset, trains for --epochs (default: the "
      "recipe's), and shows each finished epoch (on a terminal also a live line: batch within "
      "the epoch, bar, rate, ETA); at the end it prints the validation accuracy, "
      "the per-class accuracy and the confusion matrix. The provider sees only the job's coarse "
      "facts, revealed when its time budget has run out (--provider-view, "
      "docs/provider-facts.md), never your data or metrics. Exit code 6 if the job "
      "failed or was cancelled.\n\nExamples:\n"
      "  chiron train --dataset fmnist-train --recipe lenet --model fmnist-lenet --epochs 2\n"
      "  chiron train --dataset fmnist-train --recipe mlp --model quick --detach");
  train_cmd->add_option("--dataset", args->dataset, "your dataset's name (chiron dataset list)")
      ->required();
  train_cmd->add_option("--recipe", args->recipe, "recipe name or id (chiron recipe list)")
      ->required();
  train_cmd->add_option("--model", args->model, "name for the trained model")->required();
  train_cmd->add_option("--epochs", args->epochs, "epochs to train (default: the recipe's)")
      ->check(CLI::Range(1u, 1000u));
  train_cmd->add_option("--validation", args->validation,
                        "fraction of the dataset held out for validation, in (0, 0.5)")
      ->check(CLI::Range(0.001, 0.499))
      ->capture_default_str();
  train_cmd->add_option("--seed", args->seed, "seed for the shuffling and initialisation");
  train_cmd->add_option("--provider-view", args->provider_view,
                        "what the recipe's provider may see of the job, revealed only when its "
                        "time budget has run out: 'coarse' (state, failure category, epochs, a "
                        "coarse memory bucket) or 'done-only' (that it ended, nothing else)")
      ->check(CLI::IsMember({"coarse", "done-only"}))
      ->capture_default_str();
  train_cmd
      ->add_option("--nodes", args->nodes,
                   "train on this many nodes of the server's cluster (default 1: the server "
                   "alone); each node must pass YOUR policy and receives one shard of the "
                   "dataset (docs/distributed.md)")
      ->check(CLI::Range(1u, 64u));
  train_cmd
      ->add_option("--staleness", args->staleness,
                   "with --nodes: 0 synchronous (default); 1 to 4 asynchronous, each node "
                   "computing its next gradients on parameters at most this many steps old "
                   "while the exchange runs (docs/distributed.md)")
      ->check(CLI::Range(0u, 4u));
  train_cmd->add_flag("--detach", args->detach, "start the job and return at once");
  train_cmd->add_flag("--json", args->json, "print the finished job as JSON (no progress lines)");
  train_cmd->callback([&global, &action, args] {
    action = [&global, args] { return RunTrain(global, *args); };
  });
}

}  // namespace chiron::client
