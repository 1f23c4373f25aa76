// The worker's math engine: runs a provider recipe (a shared object built against
// include/chiron/recipe.h) on flat float arrays, so the rest of Chiron never sees libtorch.
//
// Shape of the computation (Chiron's parameter-server split):
//   - the trusted runtime owns the parameters, the optimizer and the batch order;
//   - for each batch it hands the engine the current parameters and buffers (batch-norm running
//     statistics and the like), the batch's raw sample bytes and labels; the engine returns the
//     gradient of the recipe's loss, the updated buffers and the loss;
//   - for predictions it hands parameters, buffers and inputs; the engine returns logits.
// The engine keeps no training state between calls: everything that changes lives in the
// caller's arrays, so the same engine serves any number of jobs with the same recipe and schema,
// and a crashed worker loses nothing.
//
// Flat layout: ParameterLayout lists every trainable tensor (in the module's registration order)
// with its offset in one float array, and every buffer likewise in a second float array. Integer
// buffers (BatchNorm's num_batches_tracked) are carried as floats (exact up to 2^24). Each slot
// starts at a multiple of kTensorAlignment bytes; the floats between slots are padding (zero in
// InitialParameters, zero gradient, ignored otherwise). The engine computes directly on the
// caller's arrays, so allocate them kTensorAlignment-aligned (shared memory and AlignedFloats
// are): BLAS and oneDNN kernels run measurably slower on misaligned weights.
//
// This header includes no libtorch header (the implementation is behind a pimpl in engine.cc):
// keep it that way, every file including it would otherwise pay libtorch's ~15 s compile cost.
//
// Errors: every call returns a Status; exceptions from libtorch or the recipe are caught and
// turned into errors (Internal for a recipe that misbehaves, InvalidArgument for bad arguments).
// Thread safety: an Engine is not thread-safe; use one per thread. Load() sets libtorch's
// process-wide intra-op thread count (at::set_num_threads) to options.threads.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "chiron/recipe_types.h"
#include "shared/base/status.h"

namespace chiron::worker {

inline constexpr size_t kTensorAlignment = 64;  // bytes: one cache line, one AVX-512 vector

// A float array aligned for the engine (parameters, gradients, buffers, logits).
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kTensorAlignment)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(kTensorAlignment)); }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

struct TensorSlot {
  std::string name;  // dotted module path, e.g. "conv1.weight", "layer1.0.bn1.running_mean"
  std::vector<int64_t> shape;  // empty for a scalar
  size_t count = 0;            // elements (product of shape)
  size_t offset = 0;           // index of the first element in the flat array
};

struct ParameterLayout {
  std::vector<TensorSlot> parameters;  // trainable; gradients share this layout
  size_t parameter_count = 0;          // total floats in the parameter (and gradient) array
  std::vector<TensorSlot> buffers;     // non-trainable state updated by training-mode forward
  size_t buffer_count = 0;             // total floats in the buffer array (may be 0)
};

enum class LabelType : uint8_t { kI64 = 1, kU16 = 2 };

// A batch as the runtime lays it out: `count` samples back to back, each
// schema.SampleElementCount() elements of schema.element_type (f32 little endian), and `count`
// labels in [0, class_count). The memory is only read, and only during the call.
struct BatchView {
  std::span<const uint8_t> inputs;
  std::span<const uint8_t> labels;  // count × 8 (kI64) or count × 2 (kU16) bytes
  LabelType label_type = LabelType::kI64;
  size_t count = 0;
};

struct EngineOptions {
  int threads = 1;           // libtorch intra-op threads (NOTES.md: the default here is 1)
  uint64_t seed = 0;         // seeds libtorch's generator before the recipe builds its model
  size_t max_batch = 65536;  // larger batches are refused (InvalidArgument)
};

class Engine {
 public:
  virtual ~Engine() = default;

  // dlopens the recipe at `recipe_path`, checks its entry record (ABI version, libtorch version,
  // C++ string ABI), builds the model for `schema` and checks that a probe forward returns
  // [N, OutputSize] float logits. Errors: NotFound (no file), InvalidArgument (not a Chiron
  // recipe, or a schema the recipe refuses), FailedPrecondition (built for another ABI or
  // libtorch), Internal (the recipe threw or broke its contract). The recipe's shared object
  // stays loaded for the life of the process.
  static Result<std::unique_ptr<Engine>> Load(const std::string& recipe_path,
                                              const DatasetSchema& schema,
                                              const EngineOptions& options);

  virtual const ParameterLayout& layout() const = 0;
  virtual const DatasetSchema& schema() const = 0;
  // The recipe's declarations, untrusted: the runtime validates them before use.
  virtual const std::string& recipe_name() const = 0;
  virtual const TrainingConfig& training_config() const = 0;
  virtual const ResourceBudget& budget() const = 0;
  virtual const OutputPolicy& output_policy() const = 0;
  virtual int64_t output_size() const = 0;

  // The model's freshly initialised parameters and buffers (as built by Load with options.seed).
  // Spans must have exactly layout().parameter_count / buffer_count elements.
  virtual Status InitialParameters(std::span<float> params_out,
                                   std::span<float> buffers_out) const = 0;

  // Training-mode forward and backward on one batch at `params` / `buffers_in`:
  // grads_out ← d loss / d params, buffers_out ← the buffers after the forward (running
  // statistics), *loss_out ← the recipe's loss. buffers_out may alias buffers_in.
  // InvalidArgument on wrong sizes, a label outside [0, class_count) or an empty batch;
  // Internal if the recipe's forward or loss fails (shape errors and the like) or yields a
  // non-finite loss.
  virtual Status ComputeGradients(std::span<const float> params, std::span<const float> buffers_in,
                                  const BatchView& batch, std::span<float> grads_out,
                                  std::span<float> buffers_out, float* loss_out) = 0;

  // Eval-mode forward without autograd: logits_out ← count × output_size() logits.
  virtual Status Predict(std::span<const float> params, std::span<const float> buffers,
                         std::span<const uint8_t> inputs, size_t count,
                         std::span<float> logits_out) = 0;
};

}  // namespace chiron::worker
