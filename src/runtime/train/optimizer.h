// Trusted optimizers over flat float32 parameter arrays (no libtorch).
//
// The runtime owns the parameters; the sandboxed worker only returns gradients. These classes
// apply the update with exactly the arithmetic of PyTorch 1.13's torch.optim.SGD, Adam and AdamW
// (same operation order, float32 state, scalars computed in double and rounded once, fused
// multiply-add where ATen's kernels use one), so a model trained through Chiron matches one trained
// with plain libtorch step for step; src/worker/optimizer_reference_test.cc checks that against
// torch::optim on random gradients.
//
// State (momentum buffers, Adam moments, the step counter) is checkpointable: SaveState() returns
// a self-describing byte string (format below) and LoadState() restores it after checking that it
// was written by an optimizer of the same kind, configuration and size.
//
//   state  := magic "CHOPTST1" | u32 version (1) | u8 kind | u8 nesterov | u16 reserved (0)
//             | f64 lr | f64 weight_decay | f64 momentum | f64 dampening | f64 beta1 | f64 beta2
//             | f64 epsilon | u64 parameter_count | u64 step_count | u32 buffer_count
//             | buffer_count × (u8 present | parameter_count × f32 if present)
//   all integers and floats little endian.
//
// Thread safety: an Optimizer is not thread-safe; one training job owns one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "chiron/recipe_types.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::train {

// Checks an optimizer configuration coming from a recipe (untrusted): finite, in range, and
// consistent (Nesterov needs momentum > 0 and zero dampening, as PyTorch requires). The error
// names the field and the accepted range.
Status ValidateOptimizerConfig(const OptimizerConfig& config);

// Checks a whole training configuration from a recipe: the optimizer (above), epochs in
// [1, 10000], batch size in [1, 65536], and the schedule's static fields (the schedule's
// run-dependent checks happen in LearningRateSchedule::Create).
Status ValidateTrainingConfig(const TrainingConfig& config);

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Validates `config` and returns an optimizer for `parameter_count` parameters with empty state.
  static Result<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config,
                                                   size_t parameter_count);

  // One update: params -= f(grads, state) at learning rate `learning_rate` (the schedule's value
  // for this step; the config's learning_rate is the schedule's base). Fails closed, before any
  // parameter or state is touched, when a span has the wrong size (InvalidArgument) or a gradient
  // is NaN or infinite (InvalidArgument: a faulty or hostile recipe cannot poison the model).
  // The caller copies gradients out of worker-shared memory before calling (copy, then check).
  Status Step(std::span<float> params, std::span<const float> grads, double learning_rate) {
    return StepAndCopy(params, grads, learning_rate, {});
  }
  // The same update, and the updated parameters also written to `copy` (empty, or as many
  // elements as params) in the same pass over memory: the runtime's training step writes them
  // straight into the worker's parameter arena. `copy` must not overlap params or grads.
  virtual Status StepAndCopy(std::span<float> params, std::span<const float> grads,
                             double learning_rate, std::span<float> copy) = 0;

  // Updates applied so far.
  virtual uint64_t step_count() const = 0;
  virtual size_t parameter_count() const = 0;
  virtual const OptimizerConfig& config() const = 0;

  // Checkpoint of the state (format in the header comment).
  virtual Bytes SaveState() const = 0;
  // Restores a checkpoint. DataLoss if the bytes are truncated, malformed or carry trailing
  // garbage; FailedPrecondition if they belong to another kind, configuration or size. On error
  // the optimizer is unchanged.
  virtual Status LoadState(ByteSpan state) = 0;
};

}  // namespace chiron::train
