// The only engine file that includes libtorch (see engine.h for the contract).
#include "worker/engine.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>

#include "chiron/recipe.h"

namespace chiron::worker {
namespace {

// Runs `body`, turning any exception (libtorch's c10::Error or the recipe's own) into a Status so
// nothing thrown crosses the engine's boundary.
template <typename Body>
Status Guarded(const char* what, Body&& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return InternalError(std::string(what) + ": libtorch error: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return InternalError(std::string(what) + ": " + e.what());
  } catch (...) {
    return InternalError(std::string(what) + ": the recipe threw a non-standard exception");
  }
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

Status CheckSize(const char* what, size_t got, size_t want) {
  if (got == want) return Status::Ok();
  return InvalidArgumentError(std::string(what) + " has " + std::to_string(got) +
                              " elements, the layout needs " + std::to_string(want));
}

// Slot offsets are multiples of kTensorAlignment bytes (see engine.h).
size_t AlignUp(size_t count) {
  constexpr size_t kFloats = kTensorAlignment / sizeof(float);
  return (count + kFloats - 1) / kFloats * kFloats;
}

torch::Dtype TorchType(ElementType type) {
  return type == ElementType::kU8 ? torch::kUInt8 : torch::kFloat32;
}

struct RecipeDeleter {
  void (*destroy)(Recipe*) = nullptr;
  void operator()(Recipe* recipe) const {
    if (recipe != nullptr && destroy != nullptr) destroy(recipe);
  }
};

class TorchEngine final : public Engine {
 public:
  TorchEngine(std::unique_ptr<Recipe, RecipeDeleter> recipe, const DatasetSchema& schema,
              const EngineOptions& options)
      : recipe_(std::move(recipe)), schema_(schema), options_(options) {}

  // Builds the model and everything derived from it. Called once, from Load.
  Status Init() {
    const Recipe& recipe = *recipe_;
    recipe_name_ = recipe.name() != nullptr ? recipe.name() : "";
    training_ = recipe.Training(schema_);
    budget_ = recipe.Budget(schema_);
    output_policy_ = recipe.Output(schema_);
    output_size_ = recipe.OutputSize(schema_);
    if (output_size_ < 1 || output_size_ > (int64_t{1} << 20)) {
      return InternalError("recipe '" + recipe_name_ + "' declares output size " +
                           std::to_string(output_size_) + " (must be in [1, 2^20])");
    }
    torch::manual_seed(options_.seed);
    std::string error;
    model_ = recipe.BuildModel(schema_, &error);
    if (model_ == nullptr) {
      return InvalidArgumentError("recipe '" + recipe_name_ + "' cannot build a model for input " +
                                  ShapeString(schema_.input_shape) + " with " +
                                  std::to_string(schema_.class_count) +
                                  " classes: " + (error.empty() ? "no reason given" : error));
    }
    CHIRON_RETURN_IF_ERROR(CollectLayout());
    return ProbeForward();
  }

  const ParameterLayout& layout() const override { return layout_; }
  const DatasetSchema& schema() const override { return schema_; }
  const std::string& recipe_name() const override { return recipe_name_; }
  const TrainingConfig& training_config() const override { return training_; }
  const ResourceBudget& budget() const override { return budget_; }
  const OutputPolicy& output_policy() const override { return output_policy_; }
  int64_t output_size() const override { return output_size_; }

  Status InitialParameters(std::span<float> params_out,
                           std::span<float> buffers_out) const override {
    CHIRON_RETURN_IF_ERROR(
        CheckSize("parameter array", params_out.size(), layout_.parameter_count));
    CHIRON_RETURN_IF_ERROR(CheckSize("buffer array", buffers_out.size(), layout_.buffer_count));
    std::copy(initial_params_.begin(), initial_params_.end(), params_out.begin());
    std::copy(initial_buffers_.begin(), initial_buffers_.end(), buffers_out.begin());
    return Status::Ok();
  }

  Status ComputeGradients(std::span<const float> params, std::span<const float> buffers_in,
                          const BatchView& batch, std::span<float> grads_out,
                          std::span<float> buffers_out, float* loss_out) override {
    CHIRON_RETURN_IF_ERROR(CheckSize("parameter array", params.size(), layout_.parameter_count));
    CHIRON_RETURN_IF_ERROR(CheckSize("gradient array", grads_out.size(), layout_.parameter_count));
    CHIRON_RETURN_IF_ERROR(
        CheckSize("input buffer array", buffers_in.size(), layout_.buffer_count));
    CHIRON_RETURN_IF_ERROR(
        CheckSize("output buffer array", buffers_out.size(), layout_.buffer_count));
    if (loss_out == nullptr) return InvalidArgumentError("ComputeGradients: loss_out is null");
    CHIRON_RETURN_IF_ERROR(CheckInputs(batch.inputs, batch.count));
    std::vector<int64_t> labels;
    CHIRON_RETURN_IF_ERROR(DecodeLabels(batch, labels));

    return Guarded("ComputeGradients", [&]() -> Status {
      BindParameters(params);
      LoadBuffers(buffers_in);
      // Gradients accumulate in place into the caller's array (autograd adds into an existing
      // .grad when not building a double-backward graph), so there is no copy afterwards.
      std::fill(grads_out.begin(), grads_out.end(), 0.0f);
      for (size_t i = 0; i < params_.size(); ++i) {
        const TensorSlot& slot = layout_.parameters[i];
        params_[i].mutable_grad() =
            torch::from_blob(grads_out.data() + slot.offset, slot.shape, torch::kFloat32);
      }
      model_->train();
      torch::Tensor input =
          recipe_->TransformInput(InputTensor(batch.inputs, batch.count), schema_);
      torch::Tensor logits = model_->forward(input);
      CHIRON_RETURN_IF_ERROR(CheckLogits(logits, batch.count));
      torch::Tensor label_tensor =
          torch::from_blob(labels.data(), {static_cast<int64_t>(labels.size())}, torch::kInt64);
      torch::Tensor loss = model_->loss(logits, label_tensor);
      if (loss.numel() != 1 || !loss.is_floating_point()) {
        return InternalError("recipe '" + recipe_name_ + "': loss() must return a scalar");
      }
      loss.backward();
      const float loss_value = loss.item<float>();
      if (!std::isfinite(loss_value)) {
        return InternalError("recipe '" + recipe_name_ + "': the loss is NaN or infinite");
      }
      // Autograd replaces rather than accumulates a .grad only in modes the engine never uses;
      // copy defensively if it ever does, and detach the caller's memory either way.
      for (size_t i = 0; i < params_.size(); ++i) {
        const TensorSlot& slot = layout_.parameters[i];
        torch::Tensor grad = params_[i].grad();
        float* want = grads_out.data() + slot.offset;
        if (grad.defined() && grad.data_ptr<float>() != want) {
          torch::from_blob(want, slot.shape, torch::kFloat32).copy_(grad);
        }
        params_[i].mutable_grad() = torch::Tensor();
      }
      StoreBuffers(buffers_out);
      *loss_out = loss_value;
      return Status::Ok();
    });
  }

  Status Predict(std::span<const float> params, std::span<const float> buffers,
                 std::span<const uint8_t> inputs, size_t count,
                 std::span<float> logits_out) override {
    CHIRON_RETURN_IF_ERROR(CheckSize("parameter array", params.size(), layout_.parameter_count));
    CHIRON_RETURN_IF_ERROR(CheckSize("buffer array", buffers.size(), layout_.buffer_count));
    CHIRON_RETURN_IF_ERROR(CheckInputs(inputs, count));
    CHIRON_RETURN_IF_ERROR(
        CheckSize("logit array", logits_out.size(), count * static_cast<size_t>(output_size_)));
    return Guarded("Predict", [&]() -> Status {
      BindParameters(params);
      LoadBuffers(buffers);
      model_->eval();
      torch::NoGradGuard no_grad;
      torch::Tensor input = recipe_->TransformInput(InputTensor(inputs, count), schema_);
      torch::Tensor logits = model_->forward(input);
      CHIRON_RETURN_IF_ERROR(CheckLogits(logits, count));
      torch::Tensor contiguous = logits.contiguous();
      std::memcpy(logits_out.data(), contiguous.data_ptr<float>(),
                  logits_out.size() * sizeof(float));
      return Status::Ok();
    });
  }

 private:
  Status CollectLayout() {
    std::unordered_map<const void*, std::string> seen;
    size_t offset = 0;
    for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
      const torch::Tensor& p = item.value();
      if (p.scalar_type() != torch::kFloat32 || !p.device().is_cpu() || p.is_sparse()) {
        return InternalError("recipe '" + recipe_name_ + "': parameter '" + item.key() +
                             "' must be a dense float32 CPU tensor");
      }
      if (!p.requires_grad()) {
        return InternalError("recipe '" + recipe_name_ + "': parameter '" + item.key() +
                             "' does not require a gradient; register fixed tensors as buffers");
      }
      auto [it, fresh] = seen.emplace(p.unsafeGetTensorImpl(), item.key());
      if (!fresh) {
        return InternalError("recipe '" + recipe_name_ + "': parameter '" + item.key() +
                             "' is the same tensor as '" + it->second +
                             "' (shared weights are not supported)");
      }
      offset = AlignUp(offset);
      TensorSlot slot{item.key(), p.sizes().vec(), static_cast<size_t>(p.numel()), offset};
      offset += slot.count;
      layout_.parameters.push_back(std::move(slot));
      params_.push_back(p);
      torch::Tensor values = p.detach().contiguous();
      initial_params_.resize(layout_.parameters.back().offset, 0.0f);
      initial_params_.insert(initial_params_.end(), values.data_ptr<float>(),
                             values.data_ptr<float>() + values.numel());
    }
    layout_.parameter_count = AlignUp(offset);
    initial_params_.resize(layout_.parameter_count, 0.0f);
    if (offset == 0)
      return InternalError("recipe '" + recipe_name_ + "': the model has no parameters");

    offset = 0;
    for (const auto& item : model_->named_buffers(/*recurse=*/true)) {
      const torch::Tensor& b = item.value();
      if (!b.device().is_cpu() || b.is_sparse() || b.is_complex()) {
        return InternalError("recipe '" + recipe_name_ + "': buffer '" + item.key() +
                             "' must be a dense real CPU tensor");
      }
      offset = AlignUp(offset);
      TensorSlot slot{item.key(), b.sizes().vec(), static_cast<size_t>(b.numel()), offset};
      offset += slot.count;
      layout_.buffers.push_back(std::move(slot));
      buffers_.push_back(b);
      torch::Tensor values = b.detach().to(torch::kFloat32).contiguous();
      initial_buffers_.resize(layout_.buffers.back().offset, 0.0f);
      initial_buffers_.insert(initial_buffers_.end(), values.data_ptr<float>(),
                              values.data_ptr<float>() + values.numel());
    }
    layout_.buffer_count = AlignUp(offset);
    initial_buffers_.resize(layout_.buffer_count, 0.0f);
    return Status::Ok();
  }

  // Runs the fresh model once on two zero samples so a recipe whose forward does not fit the
  // schema fails at load time with a clear message rather than in the middle of a job.
  Status ProbeForward() {
    return Guarded("probe forward", [&]() -> Status {
      std::vector<int64_t> shape = {2};
      shape.insert(shape.end(), schema_.input_shape.begin(), schema_.input_shape.end());
      torch::Tensor raw = torch::zeros(shape, TorchType(schema_.element_type));
      torch::NoGradGuard no_grad;
      model_->eval();
      torch::Tensor logits = model_->forward(recipe_->TransformInput(raw, schema_));
      return CheckLogits(logits, 2);
    });
  }

  Status CheckLogits(const torch::Tensor& logits, size_t count) const {
    if (!logits.defined() || logits.scalar_type() != torch::kFloat32 || logits.dim() != 2 ||
        logits.size(0) != static_cast<int64_t>(count) || logits.size(1) != output_size_) {
      std::string got = logits.defined() ? ShapeString(logits.sizes().vec()) + " " +
                                               std::string(c10::toString(logits.scalar_type()))
                                         : "an undefined tensor";
      return InternalError("recipe '" + recipe_name_ + "': forward() returned " + got +
                           ", expected float [" + std::to_string(count) + ", " +
                           std::to_string(output_size_) + "]");
    }
    return Status::Ok();
  }

  Status CheckInputs(std::span<const uint8_t> inputs, size_t count) const {
    if (count == 0) return InvalidArgumentError("empty batch");
    if (count > options_.max_batch) {
      return InvalidArgumentError("batch of " + std::to_string(count) + " samples exceeds the " +
                                  std::to_string(options_.max_batch) + " the engine accepts");
    }
    const size_t sample_size =
        static_cast<size_t>(schema_.SampleElementCount()) * ElementSize(schema_.element_type);
    if (inputs.size() != count * sample_size) {
      return InvalidArgumentError("input holds " + std::to_string(inputs.size()) + " bytes, " +
                                  std::to_string(count) + " samples of " +
                                  std::to_string(sample_size) + " bytes need " +
                                  std::to_string(count * sample_size));
    }
    return Status::Ok();
  }

  Status DecodeLabels(const BatchView& batch, std::vector<int64_t>& labels) const {
    const size_t width = batch.label_type == LabelType::kI64   ? 8
                         : batch.label_type == LabelType::kU16 ? 2
                                                               : 0;
    if (width == 0) return InvalidArgumentError("unknown label type");
    if (batch.labels.size() != batch.count * width) {
      return InvalidArgumentError("labels hold " + std::to_string(batch.labels.size()) +
                                  " bytes for " + std::to_string(batch.count) + " samples of " +
                                  std::to_string(width) + "-byte labels");
    }
    labels.resize(batch.count);
    for (size_t i = 0; i < batch.count; ++i) {
      if (width == 8) {
        std::memcpy(&labels[i], batch.labels.data() + 8 * i, 8);
      } else {
        uint16_t v;
        std::memcpy(&v, batch.labels.data() + 2 * i, 2);
        labels[i] = v;
      }
      if (labels[i] < 0 || labels[i] >= schema_.class_count) {
        return InvalidArgumentError("label " + std::to_string(labels[i]) + " of sample " +
                                    std::to_string(i) + " is outside [0, " +
                                    std::to_string(schema_.class_count) + ")");
      }
    }
    return Status::Ok();
  }

  // A tensor over the caller's sample bytes (copied only if f32 data is misaligned).
  torch::Tensor InputTensor(std::span<const uint8_t> inputs, size_t count) const {
    std::vector<int64_t> shape = {static_cast<int64_t>(count)};
    shape.insert(shape.end(), schema_.input_shape.begin(), schema_.input_shape.end());
    const torch::Dtype dtype = TorchType(schema_.element_type);
    void* data = const_cast<uint8_t*>(inputs.data());
    if (schema_.element_type == ElementType::kF32 &&
        reinterpret_cast<uintptr_t>(data) % alignof(float) != 0) {
      torch::Tensor copy = torch::empty(shape, dtype);
      std::memcpy(copy.data_ptr(), data, inputs.size());
      return copy;
    }
    return torch::from_blob(data, shape, dtype);
  }

  // Points every parameter at its slice of the caller's array (no copy). The recipe's forward
  // only reads parameters; the array is the worker's own copy of the runtime's parameters.
  void BindParameters(std::span<const float> params) {
    for (size_t i = 0; i < params_.size(); ++i) {
      const TensorSlot& slot = layout_.parameters[i];
      params_[i].set_data(torch::from_blob(const_cast<float*>(params.data()) + slot.offset,
                                           slot.shape, torch::kFloat32));
    }
  }

  void LoadBuffers(std::span<const float> buffers) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers_.size(); ++i) {
      const TensorSlot& slot = layout_.buffers[i];
      buffers_[i].copy_(torch::from_blob(const_cast<float*>(buffers.data()) + slot.offset,
                                         slot.shape, torch::kFloat32));
    }
  }

  void StoreBuffers(std::span<float> buffers) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers_.size(); ++i) {
      const TensorSlot& slot = layout_.buffers[i];
      torch::from_blob(buffers.data() + slot.offset, slot.shape, torch::kFloat32)
          .copy_(buffers_[i]);
    }
  }

  // Declaration order matters: the model (code from the recipe's object) goes before the recipe.
  std::unique_ptr<Recipe, RecipeDeleter> recipe_;
  DatasetSchema schema_;
  EngineOptions options_;
  std::string recipe_name_;
  TrainingConfig training_;
  ResourceBudget budget_;
  OutputPolicy output_policy_;
  int64_t output_size_ = 0;
  std::shared_ptr<RecipeModel> model_;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> buffers_;
  ParameterLayout layout_;
  std::vector<float> initial_params_;
  std::vector<float> initial_buffers_;
};

Status ValidateSchema(const DatasetSchema& schema) {
  if (schema.input_shape.empty() || schema.input_shape.size() > 8) {
    return InvalidArgumentError("schema: input shape must have 1 to 8 dimensions");
  }
  int64_t count = 1;
  for (int64_t d : schema.input_shape) {
    if (d < 1 || d > (int64_t{1} << 24) || count > (int64_t{1} << 30) / d) {
      return InvalidArgumentError("schema: input shape " + ShapeString(schema.input_shape) +
                                  " has a dimension < 1 or more than 2^30 elements");
    }
    count *= d;
  }
  if (schema.element_type != ElementType::kU8 && schema.element_type != ElementType::kF32) {
    return InvalidArgumentError("schema: unknown element type");
  }
  if (schema.class_count < 1 || schema.class_count > 65536) {
    return InvalidArgumentError("schema: class count must be in [1, 65536]");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Load(const std::string& recipe_path,
                                             const DatasetSchema& schema,
                                             const EngineOptions& options) {
  CHIRON_RETURN_IF_ERROR(ValidateSchema(schema));
  if (options.threads < 1 || options.threads > 256) {
    return InvalidArgumentError("engine: threads must be in [1, 256]");
  }
  struct stat st;
  if (::stat(recipe_path.c_str(), &st) != 0) {
    return NotFoundError("recipe '" + recipe_path + "': " + std::strerror(errno));
  }
  // RTLD_LOCAL: two recipes defining the same symbols do not see each other's.
  void* handle = ::dlopen(recipe_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return InvalidArgumentError("recipe '" + recipe_path + "' is not a loadable shared object: " +
                                (why ? why : "unknown dlopen error"));
  }
  // The handle is never closed: libtorch objects created by the recipe's code may outlive any
  // single engine, and unloading code they point into would be a use-after-free.
  auto entry_fn =
      reinterpret_cast<ChironRecipeEntryV1>(::dlsym(handle, CHIRON_RECIPE_ENTRY_SYMBOL));
  if (entry_fn == nullptr) {
    return InvalidArgumentError("'" + recipe_path +
                                "' is not a Chiron recipe: it does not export " +
                                CHIRON_RECIPE_ENTRY_SYMBOL + " (use CHIRON_RECIPE(ClassName))");
  }
  const ChironRecipeV1* entry = entry_fn();
  if (entry == nullptr)
    return InvalidArgumentError("recipe '" + recipe_path + "': null entry record");
  if (entry->abi_version != CHIRON_RECIPE_ABI_VERSION ||
      entry->record_size != sizeof(ChironRecipeV1)) {
    return FailedPreconditionError("recipe '" + recipe_path + "' was built for recipe ABI " +
                                   std::to_string(entry->abi_version) + "; this worker speaks " +
                                   std::to_string(CHIRON_RECIPE_ABI_VERSION) +
                                   " (rebuild it against this Chiron's include/chiron/recipe.h)");
  }
  if (entry->cxx11_abi != CHIRON_RECIPE_CXX11_ABI_) {
    return FailedPreconditionError("recipe '" + recipe_path +
                                   "' was built with another _GLIBCXX_USE_CXX11_ABI setting");
  }
  if (entry->torch_version == nullptr || std::strcmp(entry->torch_version, TORCH_VERSION) != 0) {
    return FailedPreconditionError("recipe '" + recipe_path + "' was built against libtorch " +
                                   (entry->torch_version ? entry->torch_version : "(unknown)") +
                                   "; this worker runs libtorch " + TORCH_VERSION);
  }
  if (entry->create == nullptr || entry->destroy == nullptr) {
    return InvalidArgumentError("recipe '" + recipe_path + "': entry record lacks create/destroy");
  }

  at::set_num_threads(options.threads);
  std::unique_ptr<TorchEngine> engine;
  Status status = Guarded("loading the recipe", [&]() -> Status {
    std::unique_ptr<Recipe, RecipeDeleter> recipe(entry->create(), RecipeDeleter{entry->destroy});
    if (recipe == nullptr) return InternalError("recipe '" + recipe_path + "': create() failed");
    engine = std::make_unique<TorchEngine>(std::move(recipe), schema, options);
    return engine->Init();
  });
  if (!status.ok()) return status;
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace chiron::worker
