#include "runtime/jobs/records.h"

#include <chrono>

#include <nlohmann/json.hpp>

namespace chiron::jobs {
namespace {

using nlohmann::json;

Bytes Dump(const json& j) { return ToBytes(j.dump()); }

Result<json> Parse(ByteSpan bytes, std::string_view what) {
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return DataLossError(std::string(what) + " record is not a JSON object");
  }
  return j;
}

// Runs `fill` and turns nlohmann's type errors into DataLoss.
template <typename T, typename F>
Result<T> Decode(ByteSpan bytes, std::string_view what, F fill) {
  CHIRON_ASSIGN_OR_RETURN(json j, Parse(bytes, what));
  T out;
  try {
    fill(j, out);
  } catch (const json::exception& e) {
    return DataLossError(std::string(what) + " record: " + e.what());
  }
  return out;
}

}  // namespace

bool Finished(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Bytes EncodeRecipeRecord(const RecipeRecord& r) {
  return Dump({{"id", r.id}, {"name", r.name}, {"version", r.version},
               {"description", r.description}, {"provider_id", r.provider_id},
               {"built_in", r.built_in}, {"size", r.size}, {"created_unix", r.created_unix},
               {"accepted_schemas", r.accepted_schemas},
               {"schemas_from_provider", r.schemas_from_provider}});
}

Result<RecipeRecord> DecodeRecipeRecord(ByteSpan bytes) {
  return Decode<RecipeRecord>(bytes, "recipe", [](const json& j, RecipeRecord& r) {
    j.at("id").get_to(r.id);
    j.at("name").get_to(r.name);
    j.at("version").get_to(r.version);
    j.at("description").get_to(r.description);
    j.at("provider_id").get_to(r.provider_id);
    j.at("built_in").get_to(r.built_in);
    j.at("size").get_to(r.size);
    j.at("created_unix").get_to(r.created_unix);
    r.accepted_schemas = j.value("accepted_schemas", std::string());
    r.schemas_from_provider = j.value("schemas_from_provider", false);
  });
}

Bytes EncodeJobRecord(const JobRecord& r) {
  json node_list = json::array();
  for (const JobNodeRecord& n : r.node_list) {
    node_list.push_back(
        {{"rank", n.rank}, {"address", n.address}, {"key_id", n.key_id}, {"records", n.records}});
  }
  json history = json::array();
  for (const EpochRecord& e : r.history) {
    history.push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss},
                       {"validation_loss", e.validation_loss},
                       {"validation_accuracy", e.validation_accuracy}});
  }
  return Dump({{"id", r.id},
               {"owner_id", r.owner_id},
               {"provider_id", r.provider_id},
               {"recipe_id", r.recipe_id},
               {"dataset_id", r.dataset_id},
               {"dataset_name", r.dataset_name},
               {"model_name", r.model_name},
               {"state", static_cast<int>(r.state)},
               {"failure", r.failure},
               {"epochs_done", r.epochs_done},
               {"epochs_total", r.epochs_total},
               {"samples_done", r.samples_done},
               {"samples_total", r.samples_total},
               {"batches_done", r.batches_done},
               {"batches_total", r.batches_total},
               {"batches_per_epoch", r.batches_per_epoch},
               {"samples_per_second", r.samples_per_second},
               {"history", history},
               {"per_class_accuracy", r.per_class_accuracy},
               {"confusion", r.confusion},
               {"seed", r.seed},
               {"validation_fraction", r.validation_fraction},
               {"epochs_requested", r.epochs_requested},
               {"cancel_requested", r.cancel_requested},
               {"created_unix", r.created_unix},
               {"finished_unix", r.finished_unix},
               {"elapsed_seconds", r.elapsed_seconds},
               {"peak_memory_log2", r.peak_memory_log2},
               {"attempts", r.attempts},
               {"started_unix", r.started_unix},
               {"budget_seconds", r.budget_seconds},
               {"budget_memory_size", r.budget_memory_size},
               {"provider_view", static_cast<int>(r.provider_view)},
               {"nodes", r.nodes},
               {"node_policy", r.node_policy},
               {"node_list", node_list},
               {"dispatches", r.dispatches},
               {"staleness", r.staleness}});
}

Result<JobRecord> DecodeJobRecord(ByteSpan bytes) {
  auto result = Decode<JobRecord>(bytes, "job", [](const json& j, JobRecord& r) {
    j.at("id").get_to(r.id);
    j.at("owner_id").get_to(r.owner_id);
    j.at("provider_id").get_to(r.provider_id);
    j.at("recipe_id").get_to(r.recipe_id);
    j.at("dataset_id").get_to(r.dataset_id);
    j.at("dataset_name").get_to(r.dataset_name);
    j.at("model_name").get_to(r.model_name);
    r.state = static_cast<JobState>(j.at("state").get<int>());
    j.at("failure").get_to(r.failure);
    j.at("epochs_done").get_to(r.epochs_done);
    j.at("epochs_total").get_to(r.epochs_total);
    j.at("samples_done").get_to(r.samples_done);
    j.at("samples_total").get_to(r.samples_total);
    // Added later: absent from records written before live progress existed.
    r.batches_done = j.value("batches_done", uint64_t{0});
    r.batches_total = j.value("batches_total", uint64_t{0});
    r.batches_per_epoch = j.value("batches_per_epoch", uint64_t{0});
    r.samples_per_second = j.value("samples_per_second", 0.0);
    for (const json& e : j.at("history")) {
      EpochRecord epoch;
      e.at("epoch").get_to(epoch.epoch);
      e.at("train_loss").get_to(epoch.train_loss);
      e.at("validation_loss").get_to(epoch.validation_loss);
      e.at("validation_accuracy").get_to(epoch.validation_accuracy);
      r.history.push_back(epoch);
    }
    j.at("per_class_accuracy").get_to(r.per_class_accuracy);
    j.at("confusion").get_to(r.confusion);
    j.at("seed").get_to(r.seed);
    j.at("validation_fraction").get_to(r.validation_fraction);
    j.at("epochs_requested").get_to(r.epochs_requested);
    j.at("cancel_requested").get_to(r.cancel_requested);
    j.at("created_unix").get_to(r.created_unix);
    j.at("finished_unix").get_to(r.finished_unix);
    j.at("elapsed_seconds").get_to(r.elapsed_seconds);
    j.at("peak_memory_log2").get_to(r.peak_memory_log2);
    j.at("attempts").get_to(r.attempts);
    r.started_unix = j.value("started_unix", int64_t{0});
    r.budget_seconds = j.value("budget_seconds", uint64_t{0});
    r.budget_memory_size = j.value("budget_memory_size", uint64_t{0});
    r.provider_view = static_cast<ProviderView>(j.value("provider_view", 0));
    r.nodes = j.value("nodes", uint32_t{1});
    r.node_policy = j.value("node_policy", std::string());
    r.dispatches = j.value("dispatches", uint32_t{0});
    r.staleness = j.value("staleness", uint32_t{0});
    for (const json& n : j.value("node_list", json::array())) {
      JobNodeRecord node;
      n.at("rank").get_to(node.rank);
      n.at("address").get_to(node.address);
      n.at("key_id").get_to(node.key_id);
      n.at("records").get_to(node.records);
      r.node_list.push_back(std::move(node));
    }
  });
  if (result.ok()) {
    int state = static_cast<int>(result->state);
    if (state < 1 || state > 5) return DataLossError("job record: unknown state " +
                                                     std::to_string(state));
    int view = static_cast<int>(result->provider_view);
    if (view < 0 || view > 1) return DataLossError("job record: unknown provider view " +
                                                   std::to_string(view));
  }
  return result;
}

Bytes EncodeModelRecord(const ModelRecord& r) {
  Bytes schema;
  dataset::EncodeSchema(r.schema, schema);
  return Dump({{"id", r.id}, {"name", r.name}, {"owner_id", r.owner_id}, {"job_id", r.job_id},
               {"recipe_id", r.recipe_id}, {"dataset_id", r.dataset_id},
               {"schema", HexEncode(schema)}, {"output_size", r.output_size},
               {"queries_used", r.queries_used}, {"query_budget", r.query_budget},
               {"validation_accuracy", r.validation_accuracy},
               {"created_unix", r.created_unix},
               {"provider_output",
                {{"kind", static_cast<int>(r.provider_output.kind)},
                 {"max_top_k", r.provider_output.max_top_k},
                 {"decimals", r.provider_output.decimals}}},
               {"owner_output",
                {{"label_only", r.owner_output.label_only},
                 {"max_top_k", r.owner_output.max_top_k},
                 {"decimals", r.owner_output.decimals}}},
               {"rate_per_minute", r.rate_per_minute}});
}

Result<ModelRecord> DecodeModelRecord(ByteSpan bytes) {
  std::string schema_hex;
  int output_kind = static_cast<int>(chiron::OutputKind::kScores);
  auto result = Decode<ModelRecord>(bytes, "model", [&](const json& j, ModelRecord& r) {
    j.at("id").get_to(r.id);
    j.at("name").get_to(r.name);
    j.at("owner_id").get_to(r.owner_id);
    j.at("job_id").get_to(r.job_id);
    j.at("recipe_id").get_to(r.recipe_id);
    j.at("dataset_id").get_to(r.dataset_id);
    j.at("schema").get_to(schema_hex);
    j.at("output_size").get_to(r.output_size);
    j.at("queries_used").get_to(r.queries_used);
    j.at("query_budget").get_to(r.query_budget);
    j.at("validation_accuracy").get_to(r.validation_accuracy);
    j.at("created_unix").get_to(r.created_unix);
    // Absent from records written before output policies and limits existed.
    if (j.contains("provider_output")) {
      const json& p = j.at("provider_output");
      p.at("kind").get_to(output_kind);
      p.at("max_top_k").get_to(r.provider_output.max_top_k);
      p.at("decimals").get_to(r.provider_output.decimals);
    }
    if (j.contains("owner_output")) {
      const json& o = j.at("owner_output");
      o.at("label_only").get_to(r.owner_output.label_only);
      o.at("max_top_k").get_to(r.owner_output.max_top_k);
      o.at("decimals").get_to(r.owner_output.decimals);
    }
    if (j.contains("rate_per_minute")) j.at("rate_per_minute").get_to(r.rate_per_minute);
  });
  if (!result.ok()) return result;
  if (output_kind != static_cast<int>(chiron::OutputKind::kScores) &&
      output_kind != static_cast<int>(chiron::OutputKind::kLabelOnly)) {
    return DataLossError("model record: unknown output kind " + std::to_string(output_kind));
  }
  result->provider_output.kind = static_cast<chiron::OutputKind>(output_kind);
  CHIRON_ASSIGN_OR_RETURN(Bytes schema_bytes, HexDecode(schema_hex));
  ByteReader reader(schema_bytes);
  auto schema = dataset::ParseSchema(reader);
  if (!schema.ok()) return DataLossError("model record: " + schema.status().message());
  result->schema = std::move(*schema);
  return result;
}

Status ValidateName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 60;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError(std::string(what) + " '" + std::string(name) +
                              "' must be 1..60 characters of letters, digits, '.', '_' or '-'");
}

std::string ModelBlobId(const std::string& owner_id, const std::string& name) {
  return owner_id + "." + name;
}

}  // namespace chiron::jobs
