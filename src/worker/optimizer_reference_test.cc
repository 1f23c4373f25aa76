// The trusted optimizers (src/runtime/train/optimizer.h, no libtorch) against torch::optim on the
// same parameters and the same random gradients, step by step, to 1e-6 relative.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "runtime/train/optimizer.h"

namespace chiron::train {
namespace {

// Several tensors (odd sizes, so ATen's vector loops and scalar tails both run) viewed as one
// flat array in registration order, as the engine's layout does.
const std::vector<std::vector<int64_t>> kShapes = {{37, 29}, {29}, {3, 5, 7}, {1}};

struct Case {
  const char* name;
  OptimizerConfig config;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto sgd = [](double momentum, double dampening, bool nesterov, double wd) {
    OptimizerConfig c;
    c.kind = OptimizerKind::kSgd;
    c.learning_rate = 0.05;
    c.momentum = momentum;
    c.dampening = dampening;
    c.nesterov = nesterov;
    c.weight_decay = wd;
    return c;
  };
  cases.push_back({"sgd", sgd(0, 0, false, 0)});
  cases.push_back({"sgd_weight_decay", sgd(0, 0, false, 1e-2)});
  cases.push_back({"momentum", sgd(0.9, 0, false, 0)});
  cases.push_back({"momentum_dampening_wd", sgd(0.9, 0.1, false, 5e-4)});
  cases.push_back({"nesterov_wd", sgd(0.9, 0, true, 5e-4)});
  for (OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
    for (double wd : {0.0, 1e-2}) {
      OptimizerConfig c;
      c.kind = kind;
      c.learning_rate = 1e-3;
      c.weight_decay = wd;
      c.beta1 = 0.85;
      c.beta2 = 0.995;
      c.epsilon = 1e-7;
      cases.push_back(
          {kind == OptimizerKind::kAdam ? (wd ? "adam_wd" : "adam") : (wd ? "adamw_wd" : "adamw"),
           c});
    }
  }
  return cases;
}

std::unique_ptr<torch::optim::Optimizer> TorchOptimizer(const OptimizerConfig& c,
                                                        std::vector<torch::Tensor> params) {
  switch (c.kind) {
    case OptimizerKind::kSgd:
      return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(c.learning_rate)
                                                             .momentum(c.momentum)
                                                             .dampening(c.dampening)
                                                             .nesterov(c.nesterov)
                                                             .weight_decay(c.weight_decay));
    case OptimizerKind::kAdam:
      return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(c.learning_rate)
                                                              .betas({c.beta1, c.beta2})
                                                              .eps(c.epsilon)
                                                              .weight_decay(c.weight_decay));
    case OptimizerKind::kAdamW:
      return std::make_unique<torch::optim::AdamW>(params,
                                                   torch::optim::AdamWOptions(c.learning_rate)
                                                       .betas({c.beta1, c.beta2})
                                                       .eps(c.epsilon)
                                                       .weight_decay(c.weight_decay));
  }
  return nullptr;
}

// The learning rate of the torch optimizer's only param group (as a scheduler would set it).
void SetTorchLearningRate(torch::optim::Optimizer& opt, OptimizerKind kind, double lr) {
  auto& options = opt.param_groups()[0].options();
  switch (kind) {
    case OptimizerKind::kSgd: static_cast<torch::optim::SGDOptions&>(options).lr(lr); break;
    case OptimizerKind::kAdam: static_cast<torch::optim::AdamOptions&>(options).lr(lr); break;
    case OptimizerKind::kAdamW: static_cast<torch::optim::AdamWOptions&>(options).lr(lr); break;
  }
}

class OptimizerReferenceTest : public testing::TestWithParam<Case> {};

TEST_P(OptimizerReferenceTest, MatchesTorchOptimStepByStep) {
  const Case& c = GetParam();
  torch::manual_seed(1234);
  std::vector<torch::Tensor> torch_params;
  size_t total = 0;
  for (const auto& shape : kShapes) {
    torch_params.push_back(torch::randn(shape).requires_grad_(true));
    total += static_cast<size_t>(torch_params.back().numel());
  }
  std::vector<float> flat;
  for (const auto& p : torch_params) {
    auto* data = p.data_ptr<float>();
    flat.insert(flat.end(), data, data + p.numel());
  }
  auto reference = TorchOptimizer(c.config, torch_params);
  auto ours = Optimizer::Create(c.config, total);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();

  const int kSteps = 25;
  double worst = 0;
  for (int step = 0; step < kSteps; ++step) {
    // A schedule-like learning rate that changes every step.
    const double lr = c.config.learning_rate * (0.5 + 0.5 * std::cos(step * 0.3));
    std::vector<float> grads;
    for (auto& p : torch_params) {
      torch::Tensor g = torch::randn(p.sizes()) * (step % 3 == 0 ? 10.0 : 0.1);
      p.mutable_grad() = g;
      grads.insert(grads.end(), g.data_ptr<float>(), g.data_ptr<float>() + g.numel());
    }
    SetTorchLearningRate(*reference, c.config.kind, lr);
    reference->step();
    ASSERT_TRUE((*ours)->Step(flat, grads, lr).ok());

    size_t i = 0;
    for (const auto& p : torch_params) {
      const float* want = p.data_ptr<float>();
      for (int64_t k = 0; k < p.numel(); ++k, ++i) {
        const double scale = std::max(std::fabs(static_cast<double>(want[k])), 1e-3);
        const double rel = std::fabs(static_cast<double>(flat[i]) - want[k]) / scale;
        worst = std::max(worst, rel);
        ASSERT_LE(rel, 1e-6) << c.name << " step " << step << " element " << i << ": ours "
                             << flat[i] << " torch " << want[k];
      }
    }
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
  std::printf("%-22s worst relative difference over %d steps: %.3g\n", c.name, kSteps, worst);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, OptimizerReferenceTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace chiron::train
