// Built-in recipe "lenet": the LeNet-style CNN of the Chiron baseline (conv 5×5 ×20, max-pool,
// conv 5×5 ×50, max-pool, fc 500, fc classes). Input C×H×W (or H×W, read as one channel) with
// H and W of at least 12; 1×28×28 gives the classic 800-input fully connected layer.
#include <chiron/recipe.h>

namespace {

class LeNet : public chiron::RecipeModel {
 public:
  LeNet(int64_t channels, int64_t height, int64_t width, int64_t classes)
      : conv1_(
            register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 20, 5)))),
        conv2_(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(20, 50, 5)))),
        fc1_(register_module("fc1", torch::nn::Linear(50 * Pooled(height) * Pooled(width), 500))),
        fc2_(register_module("fc2", torch::nn::Linear(500, classes))),
        channels_(channels),
        height_(height),
        width_(width) {}

  // Spatial size after conv5, pool2, conv5, pool2.
  static int64_t Pooled(int64_t size) { return ((size - 4) / 2 - 4) / 2; }

  torch::Tensor forward(torch::Tensor x) override {
    x = x.reshape({x.size(0), channels_, height_, width_});
    x = torch::max_pool2d(torch::relu(conv1_(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2_(x)), 2);
    x = torch::relu(fc1_(x.flatten(1)));
    return fc2_(x);
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::Conv2d conv2_;
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
  int64_t channels_, height_, width_;
};

class LeNetRecipe : public chiron::Recipe {
 public:
  const char* name() const override { return "lenet"; }

  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& schema,
                                                  std::string* error) const override {
    const auto& s = schema.input_shape;
    if (s.size() != 2 && s.size() != 3) {
      *error = "lenet needs images shaped C×H×W or H×W";
      return nullptr;
    }
    const int64_t channels = s.size() == 3 ? s[0] : 1;
    const int64_t height = s[s.size() - 2];
    const int64_t width = s[s.size() - 1];
    if (channels < 1 || channels > 64 || height < 12 || width < 12 || height > 1024 ||
        width > 1024) {
      *error = "lenet needs 1 to 64 channels and images between 12×12 and 1024×1024";
      return nullptr;
    }
    if (schema.class_count < 2) {
      *error = "lenet needs at least two classes";
      return nullptr;
    }
    return std::make_shared<LeNet>(channels, height, width, schema.class_count);
  }

  chiron::TrainingConfig Training(const chiron::DatasetSchema& schema) const override {
    chiron::TrainingConfig config;
    config.optimizer.kind = chiron::OptimizerKind::kSgd;
    config.optimizer.learning_rate = 0.01;
    config.optimizer.momentum = 0.9;
    config.epochs = 5;
    config.batch_size = 64;
    return config;
  }

  chiron::ResourceBudget Budget(const chiron::DatasetSchema& schema) const override {
    return {.max_memory_size = uint64_t{2} << 30, .max_training_seconds = 3600};
  }
};

}  // namespace

CHIRON_RECIPE(LeNetRecipe)
