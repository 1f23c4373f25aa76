// A recipe's public card on the terminal and in JSON (`recipe list`, `recipe register`,
// `recipe check`), and the --shape/--classes/--type options that name a schema.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "chiron/v1/recipes.pb.h"
#include "client/cli/cli_common.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::client {

// "1x28x28 u8, 10 classes".
std::string SchemaText(const v1::RecipeSchema& schema);

nlohmann::json CardJson(const v1::RecipeCard& card);

// The card as owners see it: name, id, description, then each accepted schema with its
// hyper-parameters, output policy and budget.
void PrintCard(const v1::RecipeCard& card);

struct SchemaArgs {
  std::string shape;  // "1x28x28"
  uint32_t classes = 0;
  std::string type = "u8";  // "u8" or "f32"
  // InvalidArgument saying which option is wrong and its expected form.
  Result<dataset::DatasetSchema> ToSchema() const;
};

// `chiron-operator recipe check FILE.so --shape S --classes N [--type T]` (recipe_check.cc).
void AddRecipeCheckCommand(CLI::App& recipe_cmd, GlobalOptions& global, CommandAction& action);

}  // namespace chiron::client
