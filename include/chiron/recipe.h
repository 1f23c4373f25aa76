// The provider SDK: the one header a Chiron recipe implements.
//
// A recipe is the provider's model-creation code. It says, for a dataset schema chosen by the data
// owner, which network to train (ordinary torch::nn modules), how to turn raw samples into the
// network's input, which loss to minimise, and which hyper-parameters the trusted runtime should
// use. It is compiled into a shared object (see cmake/ChironRecipe.cmake and docs/recipes.md) that
// the sandboxed worker loads with dlopen.
//
// What a recipe does NOT do: it never sees the optimizer, never picks batches, never owns the
// parameters. The trusted runtime keeps the parameters, picks every batch, and applies every
// update; the worker only asks the recipe's model for a loss on a batch (to compute gradients)
// and for logits (predictions). Anything a recipe tries beyond that (files, sockets, threads that
// outlive a call, clocks as a side channel) is confined or denied by the sandbox.
//
// Minimal recipe:
//
//   #include <chiron/recipe.h>
//   namespace {
//   class Net : public chiron::RecipeModel {
//    public:
//     explicit Net(const chiron::DatasetSchema& s)
//         : fc_(register_module("fc", torch::nn::Linear(s.SampleElementCount(), s.class_count))) {}
//     torch::Tensor forward(torch::Tensor x) override { return fc_(x.flatten(1)); }
//    private:
//     torch::nn::Linear fc_;
//   };
//   class Linear : public chiron::Recipe {
//    public:
//     const char* name() const override { return "linear"; }
//     std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& s,
//                                                     std::string* error) const override {
//       return std::make_shared<Net>(s);
//     }
//   };
//   }  // namespace
//   CHIRON_RECIPE(Linear)
//
// Contract (the worker relies on every point; breaking one makes the job fail with an error):
//   - Parameters and buffers are whatever BuildModel's module registers (recursively). Their
//     names, shapes and order must be a pure function of the schema: the worker builds the
//     model again in every process and the flat layout must match. Trainable parameters must be
//     float32; floating buffers (batch-norm running statistics) are carried by the runtime between
//     calls; integer buffers (num_batches_tracked) are carried too, converted to float.
//   - forward() takes the output of TransformInput, shape [N, ...], and returns float32 logits of
//     shape [N, OutputSize(schema)]. It must not keep references to its input or output.
//   - Calls are made from one thread at a time; the worker sets libtorch's thread count itself,
//     so a recipe must not call at::set_num_threads or start threads of its own.
//   - Randomness: parameter initialisation must use libtorch's default generator (as torch::nn
//     modules do); the worker seeds it before BuildModel so initial parameters are reproducible.
//   - Errors: return null from BuildModel with a message in *error. Exceptions thrown by libtorch
//     inside forward/loss/TransformInput are caught by the worker and reported as a failed call;
//     they must not escape in any other way (no exceptions from destructors).
//   - Ownership: the worker owns the Recipe (released through the entry record's destroy) and the
//     model (a shared_ptr, released before the recipe). The shared object stays loaded for the
//     life of the worker process.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "chiron/recipe_types.h"

namespace chiron {

// The network a recipe builds: an ordinary torch::nn::Module with a virtual forward and a loss.
class RecipeModel : public torch::nn::Module {
 public:
  ~RecipeModel() override = default;

  // Logits for a batch. `input` is TransformInput's result (float32 [N, ...input_shape] by
  // default). Called in train mode for gradients and in eval mode (under torch::NoGradGuard) for
  // predictions; modules such as Dropout and BatchNorm follow is_training() as usual.
  virtual torch::Tensor forward(torch::Tensor input) = 0;

  // Scalar loss to minimise for logits [N, OutputSize] and int64 labels [N]. Default: the mean
  // cross-entropy (torch::nn::functional::cross_entropy).
  virtual torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels) {
    return torch::nn::functional::cross_entropy(logits, labels);
  }
};

// A recipe: a factory of models plus the hyper-parameters the trusted runtime will use.
// Every method must be a pure function of its arguments (the worker may call each several times).
class Recipe {
 public:
  virtual ~Recipe() = default;

  // Short identifier ("mlp", "lenet"): letters, digits, '-' and '_'.
  virtual const char* name() const = 0;

  // Builds a fresh model for `schema` with freshly initialised parameters. On a schema the
  // recipe cannot handle (wrong rank, too few classes...), returns null and says why in *error
  // (error is never null).
  virtual std::shared_ptr<RecipeModel> BuildModel(const DatasetSchema& schema,
                                                  std::string* error) const = 0;

  // Turns a raw batch into the model's input. `raw` has shape [N, ...input_shape] and the
  // schema's element type (torch::kUInt8 or torch::kFloat32); it views memory the worker owns and
  // must not be modified in place. Default: u8 → float32 divided by 255 (values in [0, 1]);
  // f32 unchanged.
  virtual torch::Tensor TransformInput(const torch::Tensor& raw,
                                       const DatasetSchema& schema) const {
    if (raw.scalar_type() == torch::kUInt8) return raw.to(torch::kFloat32).div_(255.0);
    return raw;
  }

  // Number of logits per sample. Default: one per class.
  virtual int64_t OutputSize(const DatasetSchema& schema) const { return schema.class_count; }

  // Hyper-parameters for the trusted optimizer, schedule and batch picker. Default: plain SGD,
  // lr 0.01, momentum 0.9, batch 64, one epoch.
  virtual TrainingConfig Training(const DatasetSchema& schema) const {
    TrainingConfig config;
    config.optimizer.kind = OptimizerKind::kSgd;
    config.optimizer.learning_rate = 0.01;
    config.optimizer.momentum = 0.9;
    config.epochs = 1;
    config.batch_size = 64;
    return config;
  }

  // What the recipe expects to need (0 = the runtime's default limit).
  virtual ResourceBudget Budget(const DatasetSchema& schema) const { return ResourceBudget{}; }

  // What owners may see of each prediction (recipe_types.h): scores (optionally the top k,
  // rounded) or the label only. The runtime enforces it on every Predict; an owner may narrow it
  // for a model, never widen it. Default: every class with probabilities rounded to 4 decimals.
  // Example, label only:  return {.kind = chiron::OutputKind::kLabelOnly};
  virtual OutputPolicy Output(const DatasetSchema& schema) const { return OutputPolicy{}; }
};

}  // namespace chiron

#ifndef _GLIBCXX_USE_CXX11_ABI
#define CHIRON_RECIPE_CXX11_ABI_ 0u
#else
#define CHIRON_RECIPE_CXX11_ABI_ static_cast<uint32_t>(_GLIBCXX_USE_CXX11_ABI)
#endif

// CHIRON_RECIPE(ClassName): exports the entry point of a recipe shared object. Use it exactly once
// per shared object, at namespace scope, after ClassName (default-constructible, derived from
// chiron::Recipe) is complete.
#define CHIRON_RECIPE(ClassName)                                                               \
  extern "C" __attribute__((visibility("default"))) const ChironRecipeV1* chiron_recipe_v1() { \
    static const ChironRecipeV1 kEntry = {                                                     \
        CHIRON_RECIPE_ABI_VERSION,                                                             \
        static_cast<uint32_t>(sizeof(ChironRecipeV1)),                                         \
        CHIRON_RECIPE_CXX11_ABI_,                                                              \
        TORCH_VERSION,                                                                         \
        #ClassName,                                                                            \
        []() -> ::chiron::Recipe* { return new (std::nothrow) ClassName(); },                  \
        [](::chiron::Recipe* recipe) { delete recipe; },                                       \
    };                                                                                         \
    return &kEntry;                                                                            \
  }
