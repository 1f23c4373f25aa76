// RecipeRegistry: the providers' recipes in the sealed store (docs/recipes.md).
//
// A recipe is stored sealed (store::BlobKind::kRecipe) under the hex SHA-256 of its manifest and
// code ("chiron-recipe-v1", provider id, name, version, shared object): the public commitment
// owners see. chirond's built-in recipes belong to kBuiltinPrincipal and are registered from a
// directory at start. Registering the same provider, name, version and code again is idempotent.
// Nobody can read a recipe's code back through any API: only the training queue and model access
// load it, into a sandboxed worker.
//
// Checked at the door (recipe_probe.h, docs/recipes.md): before a new recipe is stored, the
// registry loads it in a sandboxed worker with no data for each schema it checks (the
// provider's list, else the documented probe set) and keeps what the recipe declares for the
// schemas it accepts: the public card shows them. A recipe with no entry point, built for
// another ABI, that crashes while describing itself or accepts no schema is refused with a fixed
// reason (RecipeRefusal) and nothing is stored. Built-ins are checked the same way.
//
// Thread safety: all methods are safe to call concurrently (the store serialises writes).
#pragma once

#include <string>
#include <vector>

#include "runtime/jobs/records.h"
#include "runtime/jobs/recipe_probe.h"
#include "runtime/train/worker_settings.h"
#include "runtime/store/store.h"
#include "shared/base/status.h"

namespace chiron::jobs {

struct RecipeRegistryOptions {
  // Built-in recipes: every chiron_recipe_<name>.so in this directory is registered as <name>.
  std::string recipes_dir;
  uint64_t max_recipe_size = uint64_t{64} << 20;
  // The worker that checks recipes at the door. An empty worker_path stores recipes unchecked
  // (with no accepted schemas on their cards): only unit tests of the queue and model access,
  // which register scripted recipes, do that; chirond always sets it.
  train::WorkerSettings worker;
};

class RecipeRegistry {
 public:
  RecipeRegistry(store::Store* store, RecipeRegistryOptions options)
      : store_(store), options_(std::move(options)) {}

  // Registers kBuiltinPrincipal and every built-in recipe of options.recipes_dir (a missing
  // directory is logged and skipped; so is a built-in the door refuses, e.g. one the configured
  // worker cannot load: a warning "recipes.builtin_refused" with its fixed reason). Errors: the
  // store's, or a worker that could not be started at all (Internal).
  Status RegisterBuiltins();

  // InvalidArgument for a bad name, version or description, or bytes that are not an ELF object
  // of 1..max_recipe_size bytes, or more than kMaxRegisteredSchemas schemas; then the door's
  // RefuseRecipe() errors (InvalidArgument with a fixed reason; Internal if no worker could run),
  // with nothing stored. The record of an identical registration if there is one (not checked
  // again; its card keeps the schemas of the first registration).
  Result<RecipeRecord> Register(const std::string& provider_id, const std::string& name,
                                const std::string& version, const std::string& description,
                                ByteSpan shared_object,
                                const std::vector<dataset::DatasetSchema>& schemas = {});
  Result<std::vector<RecipeRecord>> List();
  // By id, else the newest registration of that name. NotFound saying how to list recipes.
  Result<RecipeRecord> Find(const std::string& id_or_name);

 private:
  store::Store* store_;
  RecipeRegistryOptions options_;
};

}  // namespace chiron::jobs
