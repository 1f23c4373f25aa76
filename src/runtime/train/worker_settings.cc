#include "runtime/train/worker_settings.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "runtime/train/optimizer.h"
#include "runtime/train/worker_client.h"

namespace chiron::train {

std::string_view FailureCategoryName(FailureCategory category) {
  switch (category) {
    case FailureCategory::kNone: return "none";
    case FailureCategory::kRecipeRejected: return "recipe rejected";
    case FailureCategory::kCrashed: return "crashed";
    case FailureCategory::kSandboxViolation: return "sandbox violation";
    case FailureCategory::kOutOfMemory: return "out of memory";
    case FailureCategory::kTimeLimit: return "time limit";
    case FailureCategory::kInvalidOutput: return "invalid output";
    case FailureCategory::kNumericalError: return "numerical error";
    case FailureCategory::kInternal: return "internal error";
    case FailureCategory::kStopped: return "stopped by the runtime";
  }
  return "unknown";
}

bool MachineHasIdleCpus(const std::vector<std::string>& runnable_samples, int cpus, int threads) {
  if (runnable_samples.empty() || cpus < 1) return false;
  double others = 0;
  for (const std::string& sample : runnable_samples) {
    // "0.52 0.58 0.59 3/467 12345": the fourth field's numerator.
    size_t at = 0;
    for (int field = 0; field < 3; ++field) {
      at = sample.find(' ', at);
      if (at == std::string::npos) return false;
      ++at;
    }
    char* end = nullptr;
    const long running = std::strtol(sample.c_str() + at, &end, 10);
    if (end == sample.c_str() + at || *end != '/' || running < 1) return false;
    others += static_cast<double>(running - 1);  // the reader itself is running
  }
  others /= static_cast<double>(runnable_samples.size());
  return others + static_cast<double>(threads) <= static_cast<double>(cpus) + 0.25;
}

bool MachineHasIdleCpusNow(int threads) {
  cpu_set_t set;
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0
                       ? CPU_COUNT(&set)
                       : static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::string> samples;
  for (int i = 0; i < 10; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::ifstream in("/proc/loadavg");
    std::string line;
    if (!std::getline(in, line)) return false;
    samples.push_back(line);
  }
  return MachineHasIdleCpus(samples, cpus, threads);
}

std::vector<std::string> WorkerEnvironment(const WorkerSettings& settings) {
  const bool spin =
      settings.spin == WorkerSpinPolicy::kSpin ||
      (settings.spin == WorkerSpinPolicy::kAuto && MachineHasIdleCpusNow(settings.threads));
  // glibc returns large freed blocks to the kernel and faults them back in on the next training
  // step (~2,500 page faults per step for LeNet; docs/training.md, Performance): keep them.
  std::vector<std::string> environment = {
      "DNNL_JIT_PROFILE=0", "GOMP_SPINCOUNT=" + std::to_string(spin ? kWorkerSpinCount : 0),
      "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold="
      "536870912"};
  // An extra setting replaces a fixed one of the same name (getenv returns the first match, so a
  // second entry would be ignored).
  for (const std::string& extra : settings.extra_environment) {
    const std::string name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(environment, [&](const std::string& e) { return e.starts_with(name); });
    environment.push_back(extra);
  }
  return environment;
}

Result<DatasetSchema> RecipeSchemaFor(const dataset::DatasetSchema& schema) {
  DatasetSchema out;
  if (schema.shape.empty() || schema.shape.size() > 4) {
    return InvalidArgumentError("schema: rank must be 1..4");
  }
  for (uint32_t d : schema.shape) {
    if (d == 0) return InvalidArgumentError("schema: a dimension is 0");
    out.input_shape.push_back(d);
  }
  switch (schema.element_type) {
    case dataset::ElementType::kUint8: out.element_type = ElementType::kU8; break;
    case dataset::ElementType::kFloat32: out.element_type = ElementType::kF32; break;
    default: return InvalidArgumentError("schema: unknown element type");
  }
  if (schema.class_count() < 1 || schema.class_count() > 65536) {
    return InvalidArgumentError("schema: class count must be in [1, 65536]");
  }
  out.class_count = static_cast<int64_t>(schema.class_count());
  return out;
}

Result<TrainingConfig> SanitizeTrainingConfig(const TrainingConfig& declared) {
  TrainingConfig config = declared;
  const OptimizerConfig& o = declared.optimizer;
  for (double v : {o.learning_rate, o.weight_decay, o.momentum, o.dampening, o.beta1, o.beta2,
                   o.epsilon, declared.schedule.gamma, declared.schedule.min_learning_rate}) {
    if (!std::isfinite(v)) return RefuseWorker(WorkerRefusal::kHyperParameters);
  }
  config.epochs = std::clamp<uint32_t>(declared.epochs, 1, kMaxEpochs);
  config.batch_size = std::clamp<uint32_t>(declared.batch_size, 1, kMaxBatchSize);
  if (!(o.learning_rate > 0)) return RefuseWorker(WorkerRefusal::kHyperParameters);
  config.optimizer.learning_rate = std::min(o.learning_rate, kMaxLearningRate);
  config.schedule.min_learning_rate =
      std::min(declared.schedule.min_learning_rate, config.optimizer.learning_rate);
  // ValidateTrainingConfig's messages quote the value they refuse, which here is the recipe's:
  // only the fixed reason leaves.
  if (!ValidateTrainingConfig(config).ok()) return RefuseWorker(WorkerRefusal::kHyperParameters);
  return config;
}

Result<RecipeDescription> DescribeRecipe(ByteSpan recipe, const dataset::DatasetSchema& schema,
                                         const WorkerSettings& settings,
                                         FailureCategory* failure) {
  if (failure != nullptr) *failure = FailureCategory::kInternal;
  WorkerClientOptions options;
  CHIRON_ASSIGN_OR_RETURN(options.schema, RecipeSchemaFor(schema));
  options.max_batch = 1;
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> worker,
                          WorkerClient::Start(recipe, options, settings, failure));
  RecipeDescription description;
  Status described = worker->Describe(description.training, description.budget, description.output);
  if (!described.ok()) {
    if (failure != nullptr) *failure = worker->failure();
    return described;
  }
  description.parameter_count = worker->parameter_count();
  description.buffer_count = worker->buffer_count();
  description.output_size = worker->output_size();
  worker->Shutdown();
  description.peak_resident_size = worker->peak_resident_size();
  if (failure != nullptr) *failure = FailureCategory::kNone;
  return description;
}

}  // namespace chiron::train
