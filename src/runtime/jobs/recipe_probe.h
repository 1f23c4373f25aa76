// Checking a recipe at the door: what registration (RecipeRegistry::Register) and the
// provider's `chiron-operator recipe check` learn of a recipe by loading it in a sandboxed
// chiron-worker with no data, once per schema (docs/recipes.md, "Checked at the door").
//
// For each schema the recipe is described by train::DescribeRecipe: the worker loads it, builds
// the model for that schema and hands back its declarations (hyper-parameters, budget, output
// policy) as numbers. A recipe that refuses a schema (BuildModel returned null) simply does not
// accept it; any other failure (no entry point, another ABI, a crash, a forbidden system call,
// memory, time, declarations the runtime refuses) refuses the recipe with a RecipeRefusal, one
// of a closed list of fixed texts: nothing the worker chose reaches the message.
//
// The schemas are the provider's own list (at registration, up to kMaxRegisteredSchemas) or the
// documented probe set (ProbeSchemas()); the recipe ABI has no way to declare accepted schemas,
// so what a card shows is what the runtime saw the recipe accept.
//
// Thread safety: pure functions (each call starts and stops its own workers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chiron/recipe_types.h"
#include "chiron/v1/recipes.pb.h"
#include "runtime/train/worker_settings.h"
#include "shared/base/status.h"
#include "shared/dataset/schema.h"

namespace chiron::jobs {

// Why a recipe was refused at the door: a closed list.
enum class RecipeRefusal : uint8_t {
  kNoEntryPoint,      // no chiron_recipe_v1 entry point (or an incomplete one)
  kRecipeAbi,         // built for another recipe ABI, libtorch or C++ ABI
  kNotLoadable,       // dlopen refused it in the worker
  kCrashed,           // the worker died (signal, abnormal exit) or the recipe threw
  kSandboxViolation,  // a forbidden system call
  kOutOfMemory,       // an allocation failed or the memory limit was reached
  kTimeLimit,         // loading or describing took longer than the start timeout
  kInvalidOutput,     // the worker broke the protocol
  kDeclarations,      // declarations (hyper-parameters, output policy) the runtime refuses
  kOutputClasses,     // outputs per sample other than the class count
  kNoSchema,          // the recipe refused every schema it was checked with
  kSchemaRefused,     // the recipe refused a schema the provider listed
  kInternal,          // the runtime could not run the check (worker missing, launch failed)
};

// The fixed text of a refusal (says what to do).
std::string_view RecipeRefusalMessage(RecipeRefusal refusal);
// InvalidArgument "recipe refused at registration: <text>" (kInternal: Internal). The only way
// a RecipeRefusal becomes a Status.
Status RefuseRecipe(RecipeRefusal refusal);

// One schema a recipe accepted, with its declarations for it (sanitised: what the runtime would
// use) and the layout facts `recipe check` prints (never published: they describe the model).
struct AcceptedSchema {
  dataset::DatasetSchema schema;  // shape, element type, class_count() classes
  TrainingConfig training;
  ResourceBudget budget;
  OutputPolicy output;
  uint64_t parameter_count = 0;  // floats, with alignment padding (recipe check only)
  uint64_t buffer_count = 0;     // recipe check only
};

struct RecipeProbeResult {
  std::vector<AcceptedSchema> accepted;  // in the order checked
  bool schemas_from_provider = false;
};

inline constexpr size_t kMaxRegisteredSchemas = 8;

// The documented probe set (docs/recipes.md): u8 1x28x28 10 classes, u8 3x32x32 10 classes,
// u8 28x28 10 classes, f32 20 features 2 classes.
const std::vector<dataset::DatasetSchema>& ProbeSchemas();

// A schema for `shape` (1..4 dimensions), `element_type` and `class_count` classes (named
// "0", "1", ...), validated. InvalidArgument naming the bad value.
Result<dataset::DatasetSchema> MakeProbeSchema(const std::vector<uint32_t>& shape,
                                               dataset::ElementType element_type,
                                               uint32_t class_count);

// "1x28x28" → {1, 28, 28}: 1..4 dimensions in [1, 2^24], separated by 'x'. InvalidArgument
// saying the expected form. (Parses command-line text; fuzz/shape_text_fuzz.cc.)
Result<std::vector<uint32_t>> ParseShapeText(std::string_view text);

// Describes `recipe` for each of `schemas` (ProbeSchemas() if empty) in sandboxed workers.
// `require_every` (the provider's own list): a refused schema refuses the recipe
// (kSchemaRefused); otherwise at least one must be accepted (kNoSchema). Errors: RefuseRecipe.
// `refusal`, if non-null, receives the reason on error.
Result<RecipeProbeResult> ProbeRecipe(ByteSpan recipe,
                                      const std::vector<dataset::DatasetSchema>& schemas,
                                      const train::WorkerSettings& settings,
                                      RecipeRefusal* refusal = nullptr);

// The card's view of accepted schemas (no layout facts) and back, for the stored record.
void FillAcceptances(const std::vector<AcceptedSchema>& accepted,
                     google::protobuf::RepeatedPtrField<v1::RecipeAcceptance>* out);
std::string EncodeAcceptedSchemas(const std::vector<AcceptedSchema>& accepted);  // JSON text
Result<std::vector<AcceptedSchema>> DecodeAcceptedSchemas(std::string_view json_text);

}  // namespace chiron::jobs
