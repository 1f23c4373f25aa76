#include "client/cli/recipe_card.h"

#include <cstdio>
#include <vector>

#include "runtime/jobs/recipe_probe.h"

namespace chiron::client {
namespace {

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

std::string TrainingText(const v1::RecipeHyperParameters& t) {
  std::string out = t.optimizer() + " lr " + Number(t.learning_rate());
  if (t.optimizer() == "sgd" && t.momentum() > 0) {
    out += " momentum " + Number(t.momentum()) + (t.nesterov() ? " (Nesterov)" : "");
  }
  if (t.weight_decay() > 0) out += " weight decay " + Number(t.weight_decay());
  out += ", batch " + std::to_string(t.batch_size()) + ", " + std::to_string(t.epochs()) +
         (t.epochs() == 1 ? " epoch" : " epochs") + ", " + t.schedule() + " schedule";
  if (t.warmup_steps() > 0) out += " after " + std::to_string(t.warmup_steps()) + " warm-up steps";
  return out;
}

std::string PolicyText(const v1::RecipeOutputPolicy& p) {
  if (p.label_only()) return "label only (no scores)";
  std::string k = p.max_top_k() == 0 ? "every class" : "top " + std::to_string(p.max_top_k());
  return "scores, " + k + ", " + std::to_string(p.decimals()) + " decimals";
}

std::string BudgetText(const v1::RecipeAcceptance& a) {
  std::string memory =
      a.memory_budget_bytes() == 0 ? "runtime default" : FormatBytes(a.memory_budget_bytes());
  std::string time = a.time_budget_seconds() == 0 ? "runtime default time"
                                                  : std::to_string(a.time_budget_seconds()) + " s";
  return memory + " memory, " + time;
}

}  // namespace

std::string SchemaText(const v1::RecipeSchema& schema) {
  std::string shape;
  for (uint32_t d : schema.input_shape()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  return shape + " " + schema.input_type() + ", " + std::to_string(schema.class_count()) +
         (schema.class_count() == 1 ? " class" : " classes");
}

nlohmann::json CardJson(const v1::RecipeCard& card) {
  nlohmann::json accepts = nlohmann::json::array();
  for (const v1::RecipeAcceptance& a : card.accepts()) {
    const v1::RecipeHyperParameters& t = a.training();
    accepts.push_back({{"input_shape", std::vector<uint32_t>(a.schema().input_shape().begin(),
                                                             a.schema().input_shape().end())},
                       {"input_type", a.schema().input_type()},
                       {"class_count", a.schema().class_count()},
                       {"training",
                        {{"optimizer", t.optimizer()},
                         {"learning_rate", t.learning_rate()},
                         {"momentum", t.momentum()},
                         {"nesterov", t.nesterov()},
                         {"weight_decay", t.weight_decay()},
                         {"batch_size", t.batch_size()},
                         {"epochs", t.epochs()},
                         {"schedule", t.schedule()},
                         {"warmup_steps", t.warmup_steps()}}},
                       {"output_policy",
                        {{"label_only", a.output_policy().label_only()},
                         {"max_top_k", a.output_policy().max_top_k()},
                         {"decimals", a.output_policy().decimals()}}},
                       {"memory_budget_bytes", a.memory_budget_bytes()},
                       {"time_budget_seconds", a.time_budget_seconds()}});
  }
  return {{"recipe_id", card.recipe_id()},
          {"name", card.name()},
          {"version", card.version()},
          {"memory_budget_bytes", card.memory_budget_bytes()},
          {"time_budget_minutes", card.time_budget_minutes()},
          {"built_in", card.built_in()},
          {"description", card.description()},
          {"accepts", accepts},
          {"schemas_from_provider", card.schemas_from_provider()}};
}

void PrintCard(const v1::RecipeCard& card) {
  std::printf("recipe %s %s%s\n", card.name().c_str(), card.version().c_str(),
              card.built_in() ? " (built in)" : "");
  if (!card.recipe_id().empty()) std::printf("  id:          %s\n", card.recipe_id().c_str());
  if (!card.description().empty()) std::printf("  description: %s\n", card.description().c_str());
  if (card.accepts().empty()) {
    std::printf("  accepts:     not checked (registered before the runtime checked recipes)\n");
    return;
  }
  std::printf("  accepts:     %s\n",
              card.schemas_from_provider()
                  ? "the schemas it was registered for"
                  : "these schemas of the probe set (docs/recipes.md; others may work too)");
  for (const v1::RecipeAcceptance& a : card.accepts()) {
    std::printf("    %s\n", SchemaText(a.schema()).c_str());
    std::printf("      training: %s\n", TrainingText(a.training()).c_str());
    std::printf("      output:   %s\n", PolicyText(a.output_policy()).c_str());
    std::printf("      budget:   %s\n", BudgetText(a).c_str());
  }
}

Result<dataset::DatasetSchema> SchemaArgs::ToSchema() const {
  auto dims = jobs::ParseShapeText(shape);
  if (!dims.ok()) return dims.status().WithContext("--shape");
  if (classes < 1 || classes > 65536) {
    return InvalidArgumentError("--classes: give the number of classes, 1..65536");
  }
  const dataset::ElementType element =
      type == "f32" ? dataset::ElementType::kFloat32 : dataset::ElementType::kUint8;
  return jobs::MakeProbeSchema(*dims, element, classes);
}

}  // namespace chiron::client
