#include "runtime/jobs/recipe_registry.h"

#include <algorithm>
#include <optional>

#include "shared/base/file_system.h"
#include "shared/base/log.h"
#include "shared/crypto/hash.h"

namespace chiron::jobs {
using store::BlobKind;

Status RecipeRegistry::RegisterBuiltins() {
  auto existing = store_->GetPrincipal(kBuiltinPrincipal);
  if (!existing.ok()) {
    CHIRON_RETURN_IF_ERROR(store_
                               ->RegisterPrincipal(kBuiltinPrincipal, store::Role::kProvider,
                                                   "Chiron built-in recipes")
                               .status());
  }
  if (options_.recipes_dir.empty()) return Status::Ok();
  auto names = FileSystem::Default()->ListDirectory(options_.recipes_dir);
  if (!names.ok()) {
    LogWarning("recipes.builtin_missing",
               {{"dir", options_.recipes_dir}, {"error", names.status().message()}});
    return Status::Ok();
  }
  for (const std::string& file : *names) {
    constexpr std::string_view kPrefix = "chiron_recipe_";
    constexpr std::string_view kSuffix = ".so";
    if (file.size() <= kPrefix.size() + kSuffix.size() || !file.starts_with(kPrefix) ||
        !file.ends_with(kSuffix)) {
      continue;
    }
    std::string name = file.substr(kPrefix.size(), file.size() - kPrefix.size() - kSuffix.size());
    CHIRON_ASSIGN_OR_RETURN(Bytes bytes,
                            FileSystem::Default()->ReadFile(JoinPath(options_.recipes_dir, file),
                                                            options_.max_recipe_size));
    auto record = Register(kBuiltinPrincipal, name, "builtin", "Chiron built-in " + name, bytes);
    if (!record.ok()) {
      // A built-in the configured worker cannot load (another worker binary, a broken file) is
      // left out, loudly: chirond still serves the other recipes. Store errors stop the start.
      if (record.status().code() != StatusCode::kInvalidArgument) {
        return record.status().WithContext("built-in recipe " + file);
      }
      LogWarning("recipes.builtin_refused", {{"file", file}, {"error", record.status().message()}});
      continue;
    }
    LogInfo("recipes.builtin", {{"name", name}, {"id", record->id}});
  }
  return Status::Ok();
}

Result<RecipeRecord> RecipeRegistry::Register(const std::string& provider_id,
                                              const std::string& name, const std::string& version,
                                              const std::string& description,
                                              ByteSpan shared_object,
                                              const std::vector<dataset::DatasetSchema>& schemas) {
  CHIRON_RETURN_IF_ERROR(ValidateName("recipe name", name));
  CHIRON_RETURN_IF_ERROR(ValidateName("recipe version", version));
  if (description.size() > 200) {
    return InvalidArgumentError("recipe description must be at most 200 characters");
  }
  for (char c : description) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("recipe description must be printable text");
    }
  }
  if (shared_object.empty() || shared_object.size() > options_.max_recipe_size) {
    return InvalidArgumentError("a recipe must be a shared object of 1.." +
                                std::to_string(options_.max_recipe_size) + " bytes");
  }
  static constexpr uint8_t kElfMagic[] = {0x7f, 'E', 'L', 'F'};
  if (shared_object.size() < 4 || !std::equal(kElfMagic, kElfMagic + 4, shared_object.begin())) {
    return InvalidArgumentError(
        "a recipe must be an ELF shared object built against include/chiron/recipe.h "
        "(see docs/recipes.md)");
  }
  if (schemas.size() > kMaxRegisteredSchemas) {
    return InvalidArgumentError("a recipe is registered with at most " +
                                std::to_string(kMaxRegisteredSchemas) + " schemas");
  }
  RecipeRecord record;
  // The commitment owners see: the code and its manifest (who registered it, under which name
  // and version), so the same bytes registered by two providers are two recipes.
  Bytes commitment = ToBytes("chiron-recipe-v1");
  for (const std::string* field : {&provider_id, &name, &version}) {
    commitment.push_back(0);
    Append(commitment, AsBytes(*field));
  }
  commitment.push_back(0);
  Append(commitment, shared_object);
  record.id = HexEncode(crypto::Sha256(commitment));
  record.name = name;
  record.version = version;
  record.description = description;
  record.provider_id = provider_id;
  record.built_in = provider_id == kBuiltinPrincipal;
  record.size = shared_object.size();
  record.created_unix = NowUnix();
  auto existing = store_->GetBlobInfo(BlobKind::kRecipe, record.id);
  if (existing.ok()) {
    CHIRON_ASSIGN_OR_RETURN(RecipeRecord old, DecodeRecipeRecord(existing->metadata));
    return old;  // the same provider, name, version and code: idempotent
  }
  if (!options_.worker.worker_path.empty()) {
    // At the door: nothing is stored unless a sandboxed worker could load and describe it.
    RecipeRefusal refusal = RecipeRefusal::kInternal;
    train::WorkerSettings settings = options_.worker;
    settings.threads = 1;  // no data: nothing to compute in parallel
    auto probe = ProbeRecipe(shared_object, schemas, settings, &refusal);
    if (!probe.ok()) {
      LogInfo("recipes.refused", {{"provider", provider_id},
                                  {"name", name},
                                  {"reason", std::string(RecipeRefusalMessage(refusal))}});
      return probe.status();
    }
    record.accepted_schemas = EncodeAcceptedSchemas(probe->accepted);
    record.schemas_from_provider = probe->schemas_from_provider;
  }
  std::optional<store::AuditEvent> audit;
  if (!record.built_in) audit = store::AuditEvent{provider_id, "recipe.register", record.id};
  CHIRON_RETURN_IF_ERROR(store_
                             ->PutBlob(BlobKind::kRecipe, record.id, provider_id, shared_object,
                                       EncodeRecipeRecord(record), audit)
                             .status());
  return record;
}

Result<std::vector<RecipeRecord>> RecipeRegistry::List() {
  CHIRON_ASSIGN_OR_RETURN(std::vector<store::BlobInfo> blobs, store_->ListBlobs(BlobKind::kRecipe));
  std::vector<RecipeRecord> out;
  for (const store::BlobInfo& info : blobs) {
    CHIRON_ASSIGN_OR_RETURN(RecipeRecord record, DecodeRecipeRecord(info.metadata));
    out.push_back(std::move(record));
  }
  return out;
}

Result<RecipeRecord> RecipeRegistry::Find(const std::string& id_or_name) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<RecipeRecord> recipes, List());
  std::optional<RecipeRecord> by_name;
  for (const RecipeRecord& r : recipes) {
    if (r.id == id_or_name) return r;
    if (r.name == id_or_name && (!by_name || r.created_unix >= by_name->created_unix)) by_name = r;
  }
  if (by_name) return *by_name;
  return NotFoundError("no recipe '" + id_or_name +
                       "': list the registered ones with `chiron recipe list`");
}

}  // namespace chiron::jobs
