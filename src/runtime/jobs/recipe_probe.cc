#include "runtime/jobs/recipe_probe.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "shared/worker_abi/worker_protocol.h"

namespace chiron::jobs {
namespace {

using json = nlohmann::json;

struct RefusalText {
  RecipeRefusal refusal;
  std::string_view message;
};

constexpr std::array<RefusalText, 13> kRefusals{{
    {RecipeRefusal::kNoEntryPoint,
     "it exports no chiron_recipe_v1 entry point: end the recipe's source with "
     "CHIRON_RECIPE(ClassName) and build it with chiron_recipe() (docs/recipes.md)"},
    {RecipeRefusal::kRecipeAbi,
     "it was built for another recipe ABI, libtorch or C++ ABI: rebuild it against this "
     "Chiron's include/chiron/recipe.h and the runtime's libtorch"},
    {RecipeRefusal::kNotLoadable,
     "the worker cannot load it (not a shared object for this machine, or it needs a library "
     "the worker does not have): link only against libtorch and the C++ runtime"},
    {RecipeRefusal::kCrashed,
     "it crashed or threw while loading or describing itself (no data was involved): run "
     "`chiron-operator recipe check FILE.so` on your machine"},
    {RecipeRefusal::kSandboxViolation,
     "it made a system call the sandbox forbids while loading (files, sockets, processes): see "
     "docs/sandbox.md"},
    {RecipeRefusal::kOutOfMemory, "it ran out of memory while loading or building its model"},
    {RecipeRefusal::kTimeLimit,
     "loading or describing it took longer than the worker's start "
     "timeout"},
    {RecipeRefusal::kInvalidOutput, "the worker broke the protocol while describing it"},
    {RecipeRefusal::kDeclarations,
     "its declared hyper-parameters or output policy break the runtime's limits "
     "(docs/recipes.md, \"Hyper-parameters\")"},
    {RecipeRefusal::kOutputClasses,
     "its outputs per sample are not the schema's class count (OutputSize must return "
     "class_count)"},
    {RecipeRefusal::kNoSchema,
     "it refused every schema of the probe set (docs/recipes.md, \"Checked at the door\"): "
     "register it with the schemas it is for (--shape, --classes, --type)"},
    {RecipeRefusal::kSchemaRefused,
     "it refused a schema it was registered for (BuildModel returned null): run "
     "`chiron-operator recipe check FILE.so --shape ... --classes ...` to see why"},
    {RecipeRefusal::kInternal, "the runtime could not start a worker to check it"},
}};

// What a failed DescribeRecipe means for the door: nullopt = the schema is not accepted.
std::optional<RecipeRefusal> RefusalFor(const Status& status, train::FailureCategory failure) {
  const std::string_view message = status.message();
  auto ends_with = [&](WorkerFailure reason) {
    return message.ends_with(WorkerFailureMessage(reason));
  };
  if (ends_with(WorkerFailure::kUnsupported)) return std::nullopt;
  if (ends_with(WorkerFailure::kNoEntryPoint)) return RecipeRefusal::kNoEntryPoint;
  if (ends_with(WorkerFailure::kRecipeAbi)) return RecipeRefusal::kRecipeAbi;
  if (ends_with(WorkerFailure::kNotLoadable)) return RecipeRefusal::kNotLoadable;
  if (auto refused = WorkerRefusalOf(status)) {
    if (*refused == WorkerRefusal::kDeclarations || *refused == WorkerRefusal::kHyperParameters) {
      return RecipeRefusal::kDeclarations;
    }
    return RecipeRefusal::kInvalidOutput;
  }
  switch (failure) {
    case train::FailureCategory::kSandboxViolation: return RecipeRefusal::kSandboxViolation;
    case train::FailureCategory::kOutOfMemory: return RecipeRefusal::kOutOfMemory;
    case train::FailureCategory::kTimeLimit: return RecipeRefusal::kTimeLimit;
    case train::FailureCategory::kInvalidOutput: return RecipeRefusal::kInvalidOutput;
    case train::FailureCategory::kInternal:
    case train::FailureCategory::kStopped:
    case train::FailureCategory::kNone: return RecipeRefusal::kInternal;
    default: return RecipeRefusal::kCrashed;  // died, threw, or a numerical error while loading
  }
}

struct Outcome {
  std::optional<AcceptedSchema> accepted;
  std::optional<RecipeRefusal> refusal;
};

Outcome Describe(ByteSpan recipe, const dataset::DatasetSchema& schema,
                 const train::WorkerSettings& settings) {
  Outcome out;
  train::FailureCategory failure = train::FailureCategory::kNone;
  auto description = train::DescribeRecipe(recipe, schema, settings, &failure);
  if (!description.ok()) {
    out.refusal = RefusalFor(description.status(), failure);
    return out;
  }
  if (description->output_size != schema.class_count()) {
    out.refusal = RecipeRefusal::kOutputClasses;
    return out;
  }
  auto training = train::SanitizeTrainingConfig(description->training);
  if (!training.ok()) {
    out.refusal = RecipeRefusal::kDeclarations;
    return out;
  }
  AcceptedSchema accepted;
  accepted.schema = schema;
  accepted.schema.sample_count = 0;
  accepted.training = *training;
  accepted.budget = description->budget;
  accepted.output = description->output;
  accepted.parameter_count = description->parameter_count;
  accepted.buffer_count = description->buffer_count;
  out.accepted = std::move(accepted);
  return out;
}

const char* OptimizerName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
  }
  return "unknown";
}

const char* ScheduleName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kStep: return "step";
    case ScheduleKind::kCosine: return "cosine";
  }
  return "unknown";
}

}  // namespace

std::string_view RecipeRefusalMessage(RecipeRefusal refusal) {
  for (const RefusalText& row : kRefusals) {
    if (row.refusal == refusal) return row.message;
  }
  return "unknown reason";
}

Status RefuseRecipe(RecipeRefusal refusal) {
  std::string message =
      "recipe refused at registration: " + std::string(RecipeRefusalMessage(refusal));
  if (refusal == RecipeRefusal::kInternal) return InternalError(message);
  return InvalidArgumentError(message);
}

Result<dataset::DatasetSchema> MakeProbeSchema(const std::vector<uint32_t>& shape,
                                               dataset::ElementType element_type,
                                               uint32_t class_count) {
  dataset::DatasetSchema schema;
  schema.element_type = element_type;
  schema.shape = shape;
  if (class_count < 1 || class_count > 65536) {
    return InvalidArgumentError("a schema's class count must be in [1, 65536]");
  }
  if (shape.empty() || shape.size() > 4) {
    return InvalidArgumentError("a schema's shape must have 1 to 4 dimensions");
  }
  schema.label_type = class_count <= 256 ? dataset::LabelType::kUint8 : dataset::LabelType::kUint16;
  for (uint32_t i = 0; i < class_count; ++i) schema.class_names.push_back(std::to_string(i));
  schema.sample_count = 1;
  CHIRON_RETURN_IF_ERROR(schema.Validate());
  return schema;
}

const std::vector<dataset::DatasetSchema>& ProbeSchemas() {
  static const std::vector<dataset::DatasetSchema> kProbes = [] {
    std::vector<dataset::DatasetSchema> probes;
    const auto u8 = dataset::ElementType::kUint8;
    for (auto [shape, type, classes] :
         {std::tuple{std::vector<uint32_t>{1, 28, 28}, u8, 10u},
          std::tuple{std::vector<uint32_t>{3, 32, 32}, u8, 10u},
          std::tuple{std::vector<uint32_t>{28, 28}, u8, 10u},
          std::tuple{std::vector<uint32_t>{20}, dataset::ElementType::kFloat32, 2u}}) {
      probes.push_back(*MakeProbeSchema(shape, type, classes));
    }
    return probes;
  }();
  return kProbes;
}

Result<std::vector<uint32_t>> ParseShapeText(std::string_view text) {
  const Status bad = InvalidArgumentError(
      "a shape is 1 to 4 dimensions separated by 'x', each in [1, 16777216], e.g. 1x28x28 or 20");
  std::vector<uint32_t> shape;
  size_t at = 0;
  while (true) {
    if (shape.size() == 4) return bad;
    const size_t end = std::min(text.find('x', at), text.size());
    const std::string_view part = text.substr(at, end - at);
    uint32_t value = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || value < 1 ||
        value > (1u << 24)) {
      return bad;
    }
    shape.push_back(value);
    if (end == text.size()) return shape;
    at = end + 1;
  }
}

Result<RecipeProbeResult> ProbeRecipe(ByteSpan recipe,
                                      const std::vector<dataset::DatasetSchema>& schemas,
                                      const train::WorkerSettings& settings,
                                      RecipeRefusal* refusal) {
  auto refuse = [&](RecipeRefusal why) -> Status {
    if (refusal != nullptr) *refusal = why;
    return RefuseRecipe(why);
  };
  RecipeProbeResult result;
  result.schemas_from_provider = !schemas.empty();
  const std::vector<dataset::DatasetSchema>& checked = schemas.empty() ? ProbeSchemas() : schemas;
  if (checked.size() > kMaxRegisteredSchemas) {
    return InvalidArgumentError("at most " + std::to_string(kMaxRegisteredSchemas) +
                                " schemas per registration");
  }
  // One worker per schema, two at a time (each loads libtorch; the machine may have 2 cores).
  std::vector<Outcome> outcomes(checked.size());
  for (size_t first = 0; first < checked.size(); first += 2) {
    std::vector<std::thread> threads;
    for (size_t i = first; i < std::min(first + 2, checked.size()); ++i) {
      threads.emplace_back([&, i] { outcomes[i] = Describe(recipe, checked[i], settings); });
    }
    for (std::thread& t : threads) t.join();
  }
  // The first schema's reason is the one reported: the order is the caller's, not the worker's.
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i].refusal) return refuse(*outcomes[i].refusal);
    if (outcomes[i].accepted) {
      result.accepted.push_back(std::move(*outcomes[i].accepted));
    } else if (result.schemas_from_provider) {
      return refuse(RecipeRefusal::kSchemaRefused);
    }
  }
  if (result.accepted.empty()) return refuse(RecipeRefusal::kNoSchema);
  return result;
}

void FillAcceptances(const std::vector<AcceptedSchema>& accepted,
                     google::protobuf::RepeatedPtrField<v1::RecipeAcceptance>* out) {
  for (const AcceptedSchema& a : accepted) {
    v1::RecipeAcceptance* card = out->Add();
    for (uint32_t d : a.schema.shape) card->mutable_schema()->add_input_shape(d);
    card->mutable_schema()->set_input_type(
        a.schema.element_type == dataset::ElementType::kUint8 ? "u8" : "f32");
    card->mutable_schema()->set_class_count(static_cast<uint32_t>(a.schema.class_count()));
    v1::RecipeHyperParameters* t = card->mutable_training();
    t->set_optimizer(OptimizerName(a.training.optimizer.kind));
    t->set_learning_rate(a.training.optimizer.learning_rate);
    t->set_momentum(a.training.optimizer.momentum);
    t->set_nesterov(a.training.optimizer.nesterov);
    t->set_weight_decay(a.training.optimizer.weight_decay);
    t->set_batch_size(a.training.batch_size);
    t->set_epochs(a.training.epochs);
    t->set_schedule(ScheduleName(a.training.schedule.kind));
    t->set_warmup_steps(a.training.schedule.warmup_steps);
    v1::RecipeOutputPolicy* p = card->mutable_output_policy();
    p->set_label_only(a.output.kind == OutputKind::kLabelOnly);
    p->set_max_top_k(a.output.max_top_k);
    p->set_decimals(a.output.decimals);
    card->set_memory_budget_bytes(a.budget.max_memory_size);
    card->set_time_budget_seconds(a.budget.max_training_seconds);
  }
}

std::string EncodeAcceptedSchemas(const std::vector<AcceptedSchema>& accepted) {
  json list = json::array();
  for (const AcceptedSchema& a : accepted) {
    const OptimizerConfig& o = a.training.optimizer;
    const ScheduleConfig& s = a.training.schedule;
    list.push_back(
        {{"shape", a.schema.shape},
         {"type", static_cast<int>(a.schema.element_type)},
         {"classes", a.schema.class_count()},
         {"optimizer",
          {static_cast<int>(o.kind), o.learning_rate, o.weight_decay, o.momentum, o.dampening,
           o.nesterov, o.beta1, o.beta2, o.epsilon}},
         {"schedule",
          {static_cast<int>(s.kind), s.warmup_steps, s.step_epochs, s.gamma, s.min_learning_rate}},
         {"epochs", a.training.epochs},
         {"batch", a.training.batch_size},
         {"budget", {a.budget.max_memory_size, a.budget.max_training_seconds}},
         {"output", {static_cast<int>(a.output.kind), a.output.max_top_k, a.output.decimals}}});
  }
  return list.dump();
}

Result<std::vector<AcceptedSchema>> DecodeAcceptedSchemas(std::string_view json_text) {
  std::vector<AcceptedSchema> out;
  try {
    const json list = json::parse(json_text);
    for (const json& j : list) {
      AcceptedSchema a;
      std::vector<uint32_t> shape = j.at("shape").get<std::vector<uint32_t>>();
      auto schema =
          MakeProbeSchema(shape, static_cast<dataset::ElementType>(j.at("type").get<int>()),
                          j.at("classes").get<uint32_t>());
      if (!schema.ok()) return schema.status().WithContext("a recipe record's schema");
      a.schema = *schema;
      a.schema.sample_count = 0;
      const json& o = j.at("optimizer");
      OptimizerConfig& oc = a.training.optimizer;
      oc.kind = static_cast<OptimizerKind>(o.at(0).get<int>());
      o.at(1).get_to(oc.learning_rate);
      o.at(2).get_to(oc.weight_decay);
      o.at(3).get_to(oc.momentum);
      o.at(4).get_to(oc.dampening);
      o.at(5).get_to(oc.nesterov);
      o.at(6).get_to(oc.beta1);
      o.at(7).get_to(oc.beta2);
      o.at(8).get_to(oc.epsilon);
      const json& s = j.at("schedule");
      ScheduleConfig& sc = a.training.schedule;
      sc.kind = static_cast<ScheduleKind>(s.at(0).get<int>());
      s.at(1).get_to(sc.warmup_steps);
      s.at(2).get_to(sc.step_epochs);
      s.at(3).get_to(sc.gamma);
      s.at(4).get_to(sc.min_learning_rate);
      j.at("epochs").get_to(a.training.epochs);
      j.at("batch").get_to(a.training.batch_size);
      j.at("budget").at(0).get_to(a.budget.max_memory_size);
      j.at("budget").at(1).get_to(a.budget.max_training_seconds);
      a.output.kind = static_cast<OutputKind>(j.at("output").at(0).get<int>());
      j.at("output").at(1).get_to(a.output.max_top_k);
      j.at("output").at(2).get_to(a.output.decimals);
      out.push_back(std::move(a));
    }
  } catch (const json::exception& e) {
    return DataLossError(std::string("a recipe record's accepted schemas are damaged: ") +
                         e.what());
  }
  return out;
}

}  // namespace chiron::jobs
