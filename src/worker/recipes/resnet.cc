// Built-in recipe "resnet": a small residual network for C×32×32 images (CIFAR-style), ResNet-8:
// a 3×3 stem and three stages of one basic block each (16, 32, 64 channels; stride 2 between
// stages), batch normalisation after every convolution, global average pooling, one linear layer.
// Trained with Nesterov SGD, weight decay and a cosine schedule with warm-up.
#include <chiron/recipe.h>

namespace {

torch::nn::Conv2d Conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1_(register_module("conv1", Conv3x3(in, out, stride))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(out))),
        conv2_(register_module("conv2", Conv3x3(out, out, 1))),
        bn2_(register_module("bn2", torch::nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      shortcut_ = register_module(
          "shortcut",
          torch::nn::Sequential(
              torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
              torch::nn::BatchNorm2d(out)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor y = torch::relu(bn1_(conv1_(x)));
    y = bn2_(conv2_(y));
    return torch::relu(y + (shortcut_.is_empty() ? x : shortcut_->forward(x)));
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  torch::nn::BatchNorm2d bn2_;
  torch::nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet8 : public chiron::RecipeModel {
 public:
  ResNet8(int64_t channels, int64_t classes)
      : stem_(register_module("stem", Conv3x3(channels, 16, 1))),
        stem_bn_(register_module("stem_bn", torch::nn::BatchNorm2d(16))),
        layer1_(register_module("layer1", BasicBlock(16, 16, 1))),
        layer2_(register_module("layer2", BasicBlock(16, 32, 2))),
        layer3_(register_module("layer3", BasicBlock(32, 64, 2))),
        fc_(register_module("fc", torch::nn::Linear(64, classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn_(stem_(x)));
    x = layer3_(layer2_(layer1_(x)));
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc_(x);
  }

 private:
  torch::nn::Conv2d stem_;
  torch::nn::BatchNorm2d stem_bn_;
  BasicBlock layer1_, layer2_, layer3_;
  torch::nn::Linear fc_;
};

class ResNetRecipe : public chiron::Recipe {
 public:
  const char* name() const override { return "resnet"; }

  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& schema,
                                                  std::string* error) const override {
    const auto& s = schema.input_shape;
    if (s.size() != 3 || s[0] < 1 || s[0] > 16 || s[1] < 8 || s[2] < 8 || s[1] > 512 ||
        s[2] > 512) {
      *error = "resnet needs images shaped C×H×W with 1 to 16 channels and sides of 8 to 512";
      return nullptr;
    }
    if (schema.class_count < 2) {
      *error = "resnet needs at least two classes";
      return nullptr;
    }
    return std::make_shared<ResNet8>(s[0], schema.class_count);
  }

  // Per-channel standardisation of 8-bit images to roughly zero mean, unit variance.
  torch::Tensor TransformInput(const torch::Tensor& raw,
                               const chiron::DatasetSchema& schema) const override {
    torch::Tensor x = raw.to(torch::kFloat32);
    if (raw.scalar_type() == torch::kUInt8) x = x.div_(255.0).sub_(0.5).div_(0.25);
    return x;
  }

  chiron::TrainingConfig Training(const chiron::DatasetSchema& schema) const override {
    chiron::TrainingConfig config;
    config.optimizer.kind = chiron::OptimizerKind::kSgd;
    config.optimizer.learning_rate = 0.1;
    config.optimizer.momentum = 0.9;
    config.optimizer.nesterov = true;
    config.optimizer.weight_decay = 5e-4;
    config.schedule.kind = chiron::ScheduleKind::kCosine;
    config.schedule.warmup_steps = 200;
    config.epochs = 30;
    config.batch_size = 128;
    return config;
  }

  chiron::ResourceBudget Budget(const chiron::DatasetSchema& schema) const override {
    return {.max_memory_size = uint64_t{3} << 30, .max_training_seconds = 4 * 3600};
  }
};

}  // namespace

CHIRON_RECIPE(ResNetRecipe)
