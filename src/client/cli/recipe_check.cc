// `chiron-operator recipe check FILE.so --shape 1x28x28 --classes 10 [--type u8|f32]`: the
// runtime's door, run on the provider's own machine (docs/guide-provider.md). The recipe is
// loaded in the real sandboxed chiron-worker (found next to this program) with no data, exactly
// as registration does (jobs::ProbeRecipe); then one forward/backward and one prediction on a
// random batch. Nothing here touches an owner's data, so when the recipe does not load, the
// worker is asked (`chiron-worker --explain-load`, outside the sandbox) for the loader's own
// message, BuildModel's error included, and it is shown in full.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "client/cli/recipe_card.h"
#include "runtime/jobs/recipe_probe.h"
#include "runtime/train/prediction_session.h"
#include "runtime/train/worker_client.h"
#include "shared/base/file_system.h"
#include "shared/worker_abi/worker_protocol.h"

namespace chiron::client {
namespace {

constexpr size_t kMaxRecipeSize = size_t{64} << 20;
constexpr uint64_t kCheckBatch = 8;

struct CheckArgs {
  std::string path;
  SchemaArgs schema;
  std::string worker;  // empty: chiron-worker next to this program
};

std::string DefaultWorkerPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::path(".") : self.parent_path()).string() + "/chiron-worker";
}

// Runs `chiron-worker --explain-load` and returns its first line of output (the loader's
// message), or an empty string if it could not run.
std::string ExplainLoad(const std::string& worker, const CheckArgs& args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "";
  const std::string classes = std::to_string(args.schema.classes);
  const pid_t pid = fork();
  if (pid < 0) return "";
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execl(worker.c_str(), worker.c_str(), "--explain-load", args.path.c_str(),
          args.schema.shape.c_str(), classes.c_str(), args.schema.type.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0 && out.size() < 65536) {
    out.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (const size_t end = out.find('\n'); end != std::string::npos) out.resize(end);
  if (WIFSIGNALED(status)) {
    return "the recipe crashed the loader (signal " + std::to_string(WTERMSIG(status)) + ", " +
           strsignal(WTERMSIG(status)) + "); debug it with gdb --args " + worker +
           " --explain-load " + args.path + " " + args.schema.shape + " " + classes + " " +
           args.schema.type;
  }
  return out;
}

// One forward/backward and one prediction on a random batch in a fresh sandboxed worker.
Status RandomStep(const Bytes& code, const dataset::DatasetSchema& schema,
                  const jobs::AcceptedSchema& accepted, const train::WorkerSettings& settings) {
  train::WorkerClientOptions options;
  CHIRON_ASSIGN_OR_RETURN(options.schema, train::RecipeSchemaFor(schema));
  options.seed = 1;
  options.max_batch = kCheckBatch;
  train::FailureCategory failure = train::FailureCategory::kNone;
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<train::WorkerClient> worker,
                          train::WorkerClient::Start(code, options, settings, &failure));
  std::vector<float> params, buffers;
  CHIRON_RETURN_IF_ERROR(worker->InitialParameters(params, buffers, 1e6f));
  std::span<float> state = worker->state();
  std::copy(params.begin(), params.end(), state.begin());
  std::copy(buffers.begin(), buffers.end(), state.begin() + static_cast<ptrdiff_t>(params.size()));
  std::mt19937 random(1);
  std::span<uint8_t> inputs = worker->inputs();
  const uint64_t sample_size = worker->sample_size();
  if (schema.element_type == dataset::ElementType::kUint8) {
    for (uint64_t i = 0; i < kCheckBatch * sample_size; ++i) inputs[i] = random() & 0xff;
  } else {
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (uint64_t i = 0; i < kCheckBatch * sample_size; i += sizeof(float)) {
      const float value = uniform(random);
      std::memcpy(&inputs[i], &value, sizeof value);
    }
  }
  const uint64_t labels_at = InputLabelOffset(kCheckBatch, sample_size);
  for (uint64_t i = 0; i < kCheckBatch; ++i) {
    const auto label = static_cast<uint16_t>(random() % schema.class_count());
    std::memcpy(&inputs[labels_at + i * sizeof(uint16_t)], &label, sizeof label);
  }
  std::vector<float> grads, new_buffers;
  double loss = 0;
  CHIRON_RETURN_IF_ERROR(
      worker->ComputeGradients(kCheckBatch, grads, new_buffers, &loss, 1e6f, 1e6f));
  std::printf("  forward/backward: a random batch of %llu, loss %.4f, every gradient finite\n",
              static_cast<unsigned long long>(kCheckBatch), loss);
  CHIRON_ASSIGN_OR_RETURN(std::vector<float> outputs, worker->Predict(kCheckBatch, 1e6f));
  const uint64_t output_size = worker->output_size();
  const train::OutputPolicy policy =
      train::EffectiveOutputPolicy(accepted.output, train::OutputLimits{}, 0, output_size);
  const auto scores =
      train::ApplyOutputPolicy(std::span<const float>(outputs.data(), output_size), policy);
  std::string shown;
  for (const train::ClassScore& s : scores) {
    char item[48];
    if (policy.label_only) {
      std::snprintf(item, sizeof item, "class %u", s.class_index);
    } else {
      std::snprintf(item, sizeof item, "%s%u: %.*f", shown.empty() ? "" : ", ", s.class_index,
                    std::max(policy.decimals, 0), s.probability);
    }
    shown += item;
  }
  std::printf(
      "  prediction:       %llu outputs per sample; an owner would see (default top-k): "
      "%s\n",
      static_cast<unsigned long long>(output_size), shown.c_str());
  worker->Shutdown();
  return Status::Ok();
}

int RunCheck(const CheckArgs& args) {
  auto schema = args.schema.ToSchema();
  if (!schema.ok()) {
    std::fprintf(stderr, "%s\n", schema.status().message().c_str());
    return kExitUsage;
  }
  auto code = FileSystem::Default()->ReadFile(args.path, kMaxRecipeSize);
  if (!code.ok()) return Fail(code.status().WithContext("reading the recipe (at most 64 MiB)"));
  const std::string worker = args.worker.empty() ? DefaultWorkerPath() : args.worker;
  if (access(worker.c_str(), X_OK) != 0) {
    return Fail(NotFoundError("no chiron-worker at " + worker +
                              ": install it next to chiron-operator or pass --worker PATH"));
  }
  train::WorkerSettings settings;
  settings.worker_path = std::filesystem::absolute(worker).string();
  settings.threads = 1;
  std::printf(
      "checking %s for %s %s, %u classes in a local sandboxed chiron-worker (random "
      "data only)\n",
      args.path.c_str(), args.schema.shape.c_str(), args.schema.type.c_str(), args.schema.classes);
  jobs::RecipeRefusal refusal = jobs::RecipeRefusal::kInternal;
  auto probe = jobs::ProbeRecipe(*code, {*schema}, settings, &refusal);
  if (!probe.ok()) {
    std::printf("  refused: %s\n", refusal == jobs::RecipeRefusal::kSchemaRefused
                                       ? "BuildModel returned null for this schema"
                                       : std::string(jobs::RecipeRefusalMessage(refusal)).c_str());
    if (refusal != jobs::RecipeRefusal::kInternal) {
      const std::string said = ExplainLoad(worker, args);
      if (!said.empty() && said != "loaded") std::printf("  the loader said: %s\n", said.c_str());
    }
    std::printf("FAILED: the runtime would refuse this recipe for this schema\n");
    return kExitError;
  }
  const jobs::AcceptedSchema& accepted = probe->accepted.front();
  std::printf("  parameters:       %llu floats (%s), buffers: %llu floats\n",
              static_cast<unsigned long long>(accepted.parameter_count),
              FormatBytes(accepted.parameter_count * sizeof(float)).c_str(),
              static_cast<unsigned long long>(accepted.buffer_count));
  if (Status step = RandomStep(*code, *schema, accepted, settings); !step.ok()) {
    std::printf("  forward/backward: %s\n", step.message().c_str());
    std::printf("FAILED: the recipe loads but cannot train on this schema\n");
    return kExitError;
  }
  v1::RecipeCard card;
  card.set_name(std::filesystem::path(args.path).stem().string());
  card.set_version("(as it would be published)");
  card.set_schemas_from_provider(true);
  jobs::FillAcceptances(probe->accepted, card.mutable_accepts());
  std::printf("\n");
  PrintCard(card);
  std::printf("\npassed: registration would accept it for this schema\n");
  return kExitOk;
}

}  // namespace

void AddRecipeCheckCommand(CLI::App& recipe_cmd, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<CheckArgs>();
  auto* check = recipe_cmd.add_subcommand(
      "check", "Check a recipe on this machine as the runtime will (random data, no server)");
  check->footer(
      "Loads the recipe in a local sandboxed chiron-worker with no data, as registration does, "
      "then runs one forward/backward and one prediction on a random batch. Prints BuildModel's "
      "error if the recipe refuses the schema, the parameter count, the output policy and the "
      "card as it would be published.\n\nExample:\n  chiron-operator recipe check "
      "build/my_cnn.so --shape 1x28x28 --classes 10");
  check->add_option("FILE", args->path, "the recipe's .so")->required();
  check->add_option("--shape", args->schema.shape, "sample shape, e.g. 1x28x28 or 20")->required();
  check->add_option("--classes", args->schema.classes, "number of classes")->required();
  check->add_option("--type", args->schema.type, "element type: u8 (default) or f32")
      ->check(CLI::IsMember({"u8", "f32"}));
  check->add_option("--worker", args->worker,
                    "chiron-worker to use (default: the one next to this program)");
  check->callback([&action, args] { action = [args] { return RunCheck(*args); }; });
  (void)global;
}

}  // namespace chiron::client
