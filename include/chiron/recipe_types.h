// Plain, torch-free description of what a recipe declares: the dataset schema it is built for,
// its training hyper-parameters, its resource budget and its prediction output policy, plus the C entry point's version record.
//
// This header is shared by three parties and therefore depends on nothing but the C++ standard
// library:
//   - the provider's recipe (through include/chiron/recipe.h),
//   - the sandboxed worker's engine (src/worker/engine.h), which reads the values from the recipe,
//   - the trusted runtime (src/runtime/train), which never links libtorch and treats every value
//     here as untrusted input from the provider: it validates them before use
//     (train::ValidateTrainingConfig) and applies the optimizer and schedule itself.
//
// Units: sizes in bytes, counts in elements, times in seconds, steps are optimizer updates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chiron {

// Element type of one value of an input sample as stored in the dataset.
enum class ElementType : uint8_t {
  kU8 = 1,   // unsigned 8-bit, e.g. pixel intensities 0..255
  kF32 = 2,  // IEEE-754 binary32, little endian
};

// Size in bytes of one element.
constexpr size_t ElementSize(ElementType type) {
  return type == ElementType::kU8 ? 1 : 4;
}

// The shape of the data a model is built for. Every sample has `input_shape` (no batch dimension,
// e.g. {1, 28, 28} for Fashion-MNIST, {3, 32, 32} for CIFAR-style images, {20} for a table row)
// and one integer label in [0, class_count).
struct DatasetSchema {
  std::vector<int64_t> input_shape;
  ElementType element_type = ElementType::kU8;
  int64_t class_count = 0;

  // Elements per sample (the product of input_shape; 0 if the shape is empty or has a 0).
  int64_t SampleElementCount() const {
    if (input_shape.empty()) return 0;
    int64_t count = 1;
    for (int64_t d : input_shape) count *= d;
    return count;
  }
};

enum class OptimizerKind : uint8_t {
  kSgd = 1,    // SGD, optionally with momentum / dampening / Nesterov and L2 weight decay
  kAdam = 2,   // Adam with L2 weight decay added to the gradient (torch.optim.Adam)
  kAdamW = 3,  // Adam with decoupled weight decay (torch.optim.AdamW)
};

// Hyper-parameters with exactly the meaning of the PyTorch optimizer of the same name
// (torch.optim.SGD / Adam / AdamW, version 1.13). `learning_rate` is the base rate the schedule
// scales. Fields that do not apply to `kind` are ignored.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double learning_rate = 0.01;
  double weight_decay = 0.0;
  // SGD only.
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  // requires momentum > 0 and dampening == 0, as in PyTorch
  // Adam / AdamW only.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

enum class ScheduleKind : uint8_t {
  kConstant = 1,  // the base rate throughout
  kStep = 2,      // base * gamma^floor(epoch / step_epochs) (torch StepLR stepped once per epoch)
  kCosine = 3,    // cosine annealing from base to min_learning_rate over the steps after warm-up
};

// Learning-rate schedule, evaluated per optimizer step by the trusted runtime. A linear warm-up
// (warmup_steps > 0) applies first, whatever the kind: at step s < warmup_steps the rate is
// base * (s + 1) / warmup_steps, after which the kind's formula takes over.
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kConstant;
  uint32_t warmup_steps = 0;
  uint32_t step_epochs = 1;        // kStep: epochs between decays
  double gamma = 0.1;              // kStep: decay factor
  double min_learning_rate = 0.0;  // kCosine: final rate
};

struct TrainingConfig {
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  uint32_t epochs = 1;
  uint32_t batch_size = 64;
};

// What data owners may see of a prediction: the provider's output policy. The trusted runtime
// applies it to the logits the worker returns (they never reach a client unprocessed); an owner
// can narrow it further for a model, never widen it. Less output leaks less about the model
// (fewer, coarser scores make model extraction and membership inference harder).
enum class OutputKind : uint8_t {
  kScores = 1,     // class indices with softmax probabilities, best first
  kLabelOnly = 2,  // only the most probable class index: no scores at all
};

struct OutputPolicy {
  OutputKind kind = OutputKind::kScores;
  // kScores: at most this many classes per sample (0: every class). Range 0..65536.
  uint32_t max_top_k = 0;
  // kScores: probabilities rounded to this many decimal places. Range 0..6.
  uint32_t decimals = 4;
};
inline constexpr uint32_t kMaxOutputDecimals = 6;
inline constexpr uint32_t kMaxOutputTopK = 65536;

// What the recipe expects to need. The runtime enforces its own limits in the sandbox and refuses
// a job whose budget exceeds them; 0 means "the runtime's default".
struct ResourceBudget {
  uint64_t max_memory_size = 0;       // resident bytes of the worker
  uint64_t max_training_seconds = 0;  // wall-clock seconds for the whole training job
};

}  // namespace chiron

// ---- C entry point ---------------------------------------------------------------------------
// A recipe shared object exports one symbol, `chiron_recipe_v1`, returning a pointer to a static
// ChironRecipeV1 record (use the CHIRON_RECIPE macro of recipe.h; never write it by hand). The
// worker checks every field before it calls `create`, so a recipe built against another Chiron
// ABI, another libtorch or another C++ string ABI is refused with a clear error instead of
// crashing on a mismatched vtable.

// Version 2: Recipe gained the virtual Output() (a version-1 object's vtable lacks it).
#define CHIRON_RECIPE_ABI_VERSION 2u
#define CHIRON_RECIPE_ENTRY_SYMBOL "chiron_recipe_v1"

namespace chiron {
class Recipe;
}

extern "C" {
struct ChironRecipeV1 {
  uint32_t abi_version;       // CHIRON_RECIPE_ABI_VERSION the recipe was compiled with
  uint32_t record_size;       // sizeof(ChironRecipeV1) in the recipe's build
  uint32_t cxx11_abi;         // _GLIBCXX_USE_CXX11_ABI of the recipe's build
  const char* torch_version;  // TORCH_VERSION string of the headers the recipe was built with
  const char* recipe_name;    // short identifier, e.g. "lenet"
  // Creates the recipe object; the caller owns it and releases it with `destroy` (never with
  // delete: the object was allocated by the recipe's copy of the allocator). Returns null on
  // failure.
  chiron::Recipe* (*create)();
  void (*destroy)(chiron::Recipe*);
};
typedef const ChironRecipeV1* (*ChironRecipeEntryV1)();
}
