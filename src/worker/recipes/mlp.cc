// Built-in recipe "mlp": a two-layer perceptron over the flattened input (784-256-10 on
// Fashion-MNIST). Works for any input shape and element type.
#include <chiron/recipe.h>

namespace {

constexpr int64_t kHidden = 256;

class Mlp : public chiron::RecipeModel {
 public:
  Mlp(int64_t inputs, int64_t hidden, int64_t classes)
      : fc1_(register_module("fc1", torch::nn::Linear(inputs, hidden))),
        fc2_(register_module("fc2", torch::nn::Linear(hidden, classes))) {}

  torch::Tensor forward(torch::Tensor x) override { return fc2_(torch::relu(fc1_(x.flatten(1)))); }

 private:
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
};

class MlpRecipe : public chiron::Recipe {
 public:
  const char* name() const override { return "mlp"; }

  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& schema,
                                                  std::string* error) const override {
    const int64_t inputs = schema.SampleElementCount();
    if (inputs < 1 || inputs > (int64_t{1} << 22)) {
      *error = "mlp needs between 1 and 2^22 input values per sample";
      return nullptr;
    }
    if (schema.class_count < 2) {
      *error = "mlp needs at least two classes";
      return nullptr;
    }
    return std::make_shared<Mlp>(inputs, kHidden, schema.class_count);
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
    return {.max_memory_size = uint64_t{1} << 30, .max_training_seconds = 600};
  }

#ifdef CHIRON_MLP_LABEL_ONLY
  // The test variant chiron_test_recipe_mlp_label_only: owners get the predicted class only.
  chiron::OutputPolicy Output(const chiron::DatasetSchema& schema) const override {
    return {.kind = chiron::OutputKind::kLabelOnly};
  }
#endif
};

}  // namespace

CHIRON_RECIPE(MlpRecipe)
