// A provider recipe that attacks the runtime from inside a training step (tests only; built with
// chiron_recipe() like any provider's recipe). It is an MLP that behaves until its forward runs
// in training mode; then, depending on MALICIOUS_MODE in its environment (set by the test through
// WorkerSettings::extra_environment; getenv reads memory, no system call):
//
//   nan-gradients  finite loss, NaN gradients (d sqrt(0·w)/dw = 0·∞)
//   nan-loss       a NaN loss
//   garbage-frame  writes 17 bytes of junk on the control channel, then returns normally
//   open-passwd    opens /etc/passwd; on failure throws with the errno text (which must never
//                  reach the runtime's error message)
//   socket         creates an AF_INET socket (seccomp kills the worker)
//   oom            allocates 512 MiB tensors until an allocation fails
//   spin           never returns
//   sleep          never returns, asleep (a slow step that burns no CPU)
//   grow-resident  fills 128 MiB tensors (resident, not just reserved) until it is stopped
//   sleep-at-load  never returns from BuildModel: the worker hangs while the recipe loads
//   none           an ordinary MLP
#include <chiron/recipe.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::string Mode() {
  const char* mode = std::getenv("MALICIOUS_MODE");
  return mode == nullptr ? "none" : mode;
}

class MaliciousMlp : public chiron::RecipeModel {
 public:
  MaliciousMlp(int64_t inputs, int64_t classes)
      : fc1_(register_module("fc1", torch::nn::Linear(inputs, 32))),
        fc2_(register_module("fc2", torch::nn::Linear(32, classes))) {}

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor logits = fc2_(torch::relu(fc1_(x.flatten(1))));
    if (!is_training()) return logits;
    const std::string mode = Mode();
    if (mode == "nan-gradients") {
      return logits + torch::sqrt(fc2_->bias * 0).sum();
    }
    if (mode == "nan-loss") return logits * std::numeric_limits<float>::quiet_NaN();
    if (mode == "garbage-frame") {
      const char junk[17] = "SECRET-DATA-LEAK";
      ssize_t ignored = write(3, junk, sizeof(junk));
      (void)ignored;
    }
    if (mode == "open-passwd") {
      int fd = open("/etc/passwd", O_RDONLY);
      if (fd < 0) throw std::runtime_error(std::string("LEAKED-TEXT ") + std::strerror(errno));
      close(fd);
    }
    if (mode == "socket") {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0) close(fd);
    }
    if (mode == "oom") {
      static std::vector<torch::Tensor> hoard;
      for (;;) hoard.push_back(torch::empty({int64_t{128} << 20}));
    }
    if (mode == "sleep") {
      for (;;) sleep(1000);
    }
    if (mode == "grow-resident") {
      static std::vector<torch::Tensor> hoard;
      for (;;) hoard.push_back(torch::ones({int64_t{32} << 20}));
    }
    if (mode == "spin") {
      volatile uint64_t x_ = 0;
      for (;;) x_ = x_ + 1;
    }
    return logits;
  }

 private:
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
};

class MaliciousRecipe : public chiron::Recipe {
 public:
  const char* name() const override { return "malicious"; }
  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema& schema,
                                                  std::string* error) const override {
    if (Mode() == "sleep-at-load") {
      for (;;) sleep(1000);
    }
    if (schema.SampleElementCount() < 1 || schema.class_count < 2) {
      *error = "bad schema";
      return nullptr;
    }
    return std::make_shared<MaliciousMlp>(schema.SampleElementCount(), schema.class_count);
  }
  chiron::TrainingConfig Training(const chiron::DatasetSchema&) const override {
    chiron::TrainingConfig config;
    config.optimizer.learning_rate = 0.05;
    config.epochs = 1;
    config.batch_size = 32;
    return config;
  }
};

}  // namespace

CHIRON_RECIPE(MaliciousRecipe)
