// The engine against plain libtorch autograd and finite differences, the recipe loader's
// refusals, the batch-norm buffer round trip, and a short training run through the trusted
// optimizer.
#include "worker/engine.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "runtime/train/optimizer.h"

namespace chiron::worker {
namespace {

DatasetSchema Schema(std::vector<int64_t> shape, ElementType type, int64_t classes) {
  DatasetSchema s;
  s.input_shape = std::move(shape);
  s.element_type = type;
  s.class_count = classes;
  return s;
}

std::unique_ptr<Engine> LoadOrDie(const char* path, const DatasetSchema& schema,
                                  uint64_t seed = 1) {
  EngineOptions options;
  options.threads = 2;
  options.seed = seed;
  auto engine = Engine::Load(path, schema, options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(*engine) : nullptr;
}

template <typename T>
std::span<const uint8_t> Bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

struct Model {
  std::vector<float> params, buffers;
};

Model Initial(const Engine& engine) {
  Model m{std::vector<float>(engine.layout().parameter_count),
          std::vector<float>(engine.layout().buffer_count)};
  EXPECT_TRUE(engine.InitialParameters(m.params, m.buffers).ok());
  return m;
}

TEST(EngineLoadTest, RefusesWhatIsNotACompatibleRecipe) {
  const DatasetSchema schema = Schema({1, 28, 28}, ElementType::kU8, 10);
  EngineOptions options;
  auto missing = Engine::Load("/nonexistent/recipe.so", schema, options);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  const std::string text_file = ::testing::TempDir() + "/not_a_library.so";
  std::ofstream(text_file) << "not an ELF file";
  auto garbage = Engine::Load(text_file, schema, options);
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.status().message().find("not a loadable shared object"), std::string::npos);

  auto no_entry = Engine::Load(CHIRON_RECIPE_NO_ENTRY, schema, options);
  EXPECT_EQ(no_entry.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_entry.status().message().find("not a Chiron recipe"), std::string::npos);

  auto future = Engine::Load(CHIRON_RECIPE_BAD_ABI, schema, options);
  EXPECT_EQ(future.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(future.status().message().find("recipe ABI"), std::string::npos);

  // A schema the recipe refuses: LeNet on table rows.
  auto refused = Engine::Load(CHIRON_RECIPE_LENET, Schema({20}, ElementType::kF32, 3), options);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("C×H×W"), std::string::npos)
      << refused.status().ToString();

  // Schemas the engine itself refuses.
  EXPECT_FALSE(Engine::Load(CHIRON_RECIPE_MLP, Schema({}, ElementType::kU8, 10), options).ok());
  EXPECT_FALSE(Engine::Load(CHIRON_RECIPE_MLP, Schema({4}, ElementType::kU8, 0), options).ok());
  EXPECT_FALSE(Engine::Load(CHIRON_RECIPE_MLP, Schema({0, 4}, ElementType::kU8, 2), options).ok());
}

TEST(EngineTest, MlpLayoutAndDeclarations) {
  auto engine = LoadOrDie(CHIRON_RECIPE_MLP, Schema({1, 28, 28}, ElementType::kU8, 10));
  ASSERT_NE(engine, nullptr);
  const ParameterLayout& layout = engine->layout();
  ASSERT_EQ(layout.parameters.size(), 4u);
  EXPECT_EQ(layout.parameters[0].name, "fc1.weight");
  EXPECT_EQ(layout.parameters[0].shape, (std::vector<int64_t>{256, 784}));
  EXPECT_EQ(layout.parameters[1].name, "fc1.bias");
  EXPECT_EQ(layout.parameters[1].offset, 256u * 784);
  EXPECT_EQ(layout.parameters[3].name, "fc2.bias");
  // Slots start on 64-byte boundaries; the total is padded likewise.
  size_t used = 0;
  for (const auto& slot : layout.parameters) {
    EXPECT_EQ(slot.offset % (kTensorAlignment / sizeof(float)), 0u) << slot.name;
    used += slot.count;
  }
  EXPECT_EQ(used, 784u * 256 + 256 + 256 * 10 + 10);
  EXPECT_EQ(layout.parameters[3].offset, 784u * 256 + 256 + 256 * 10);
  EXPECT_EQ(layout.parameter_count, 203536u);  // 203530 rounded up to 16 floats
  EXPECT_EQ(layout.buffer_count, 0u);
  EXPECT_EQ(engine->recipe_name(), "mlp");
  EXPECT_EQ(engine->output_size(), 10);
  EXPECT_EQ(engine->training_config().optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(engine->training_config().optimizer.momentum, 0.9);
  EXPECT_TRUE(train::ValidateTrainingConfig(engine->training_config()).ok());
  EXPECT_EQ(engine->budget().max_memory_size, uint64_t{1} << 30);
}

TEST(EngineTest, InitialParametersAreSeeded) {
  const DatasetSchema schema = Schema({12}, ElementType::kF32, 3);
  auto a = LoadOrDie(CHIRON_RECIPE_MLP, schema, 7);
  auto b = LoadOrDie(CHIRON_RECIPE_MLP, schema, 7);
  auto c = LoadOrDie(CHIRON_RECIPE_MLP, schema, 8);
  EXPECT_EQ(Initial(*a).params, Initial(*b).params);
  EXPECT_NE(Initial(*a).params, Initial(*c).params);
}

// The same MLP written directly in libtorch, loaded with the engine's flat parameters.
TEST(EngineTest, MlpGradientsMatchPlainAutograd) {
  const DatasetSchema schema = Schema({1, 28, 28}, ElementType::kU8, 10);
  auto engine = LoadOrDie(CHIRON_RECIPE_MLP, schema);
  ASSERT_NE(engine, nullptr);
  Model m = Initial(*engine);
  const size_t n = 32;
  std::mt19937 rng(5);
  std::vector<uint8_t> pixels(n * 784);
  for (auto& p : pixels) p = static_cast<uint8_t>(rng());
  std::vector<int64_t> labels(n);
  std::vector<uint16_t> labels16(n);
  for (size_t i = 0; i < n; ++i) labels16[i] = static_cast<uint16_t>(labels[i] = rng() % 10);

  std::vector<float> grads(m.params.size()), no_buffers;
  float loss = 0;
  ASSERT_TRUE(engine
                  ->ComputeGradients(m.params, m.buffers,
                                     {Bytes(pixels), Bytes(labels), LabelType::kI64, n}, grads,
                                     no_buffers, &loss)
                  .ok());

  auto flat = torch::from_blob(m.params.data(), {static_cast<int64_t>(m.params.size())});
  const auto& slots = engine->layout().parameters;
  auto view = [&](int i) {
    return flat.narrow(0, slots[i].offset, slots[i].count)
        .view(slots[i].shape)
        .clone()
        .requires_grad_(true);
  };
  torch::Tensor w1 = view(0), b1 = view(1), w2 = view(2), b2 = view(3);
  torch::Tensor x = torch::from_blob(pixels.data(), {static_cast<int64_t>(n), 784}, torch::kUInt8)
                        .to(torch::kFloat32) /
                    255.0;
  torch::Tensor y = torch::from_blob(labels.data(), {static_cast<int64_t>(n)}, torch::kInt64);
  torch::Tensor logits = torch::linear(torch::relu(torch::linear(x, w1, b1)), w2, b2);
  torch::Tensor ref_loss = torch::nn::functional::cross_entropy(logits, y);
  ref_loss.backward();
  EXPECT_NEAR(loss, ref_loss.item<float>(), 1e-6);
  std::vector<torch::Tensor> ref_grads = {w1.grad(), b1.grad(), w2.grad(), b2.grad()};
  double worst = 0;
  for (int i = 0; i < 4; ++i) {
    torch::Tensor ours =
        torch::from_blob(grads.data() + slots[i].offset, slots[i].shape, torch::kFloat32);
    worst = std::max(worst, (ours - ref_grads[i]).abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-6);
  // The padding after the last slot gets a zero gradient.
  for (size_t i = slots[3].offset + slots[3].count; i < grads.size(); ++i)
    EXPECT_EQ(grads[i], 0.0f);

  // u16 labels give the same result.
  std::vector<float> grads16(m.params.size());
  float loss16 = 0;
  ASSERT_TRUE(engine
                  ->ComputeGradients(m.params, m.buffers,
                                     {Bytes(pixels), Bytes(labels16), LabelType::kU16, n}, grads16,
                                     no_buffers, &loss16)
                  .ok());
  EXPECT_EQ(grads16, grads);
  EXPECT_EQ(loss16, loss);
}

TEST(EngineTest, MlpGradientsMatchFiniteDifferences) {
  const DatasetSchema schema = Schema({3}, ElementType::kF32, 2);
  auto engine = LoadOrDie(CHIRON_RECIPE_MLP, schema);
  ASSERT_NE(engine, nullptr);
  Model m = Initial(*engine);
  std::vector<float> inputs = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f, -2.0f, 1.0f, 0.1f};
  std::vector<int64_t> labels = {0, 1, 1};
  BatchView batch{Bytes(inputs), Bytes(labels), LabelType::kI64, 3};
  std::vector<float> grads(m.params.size()), none;
  float loss = 0;
  ASSERT_TRUE(engine->ComputeGradients(m.params, none, batch, grads, none, &loss).ok());

  auto loss_at = [&](std::vector<float>& p) {
    std::vector<float> g(p.size());
    float l = 0;
    EXPECT_TRUE(engine->ComputeGradients(p, none, batch, g, none, &l).ok());
    return static_cast<double>(l);
  };
  // A spread of coordinates in every tensor (fc1.weight, fc1.bias, fc2.weight, fc2.bias).
  std::mt19937 rng(3);
  int checked = 0;
  for (const TensorSlot& slot : engine->layout().parameters) {
    for (int k = 0; k < 6; ++k) {
      const size_t i = slot.offset + rng() % slot.count;
      const double h = 1e-2;
      std::vector<float> p = m.params;
      p[i] = m.params[i] + static_cast<float>(h);
      const double up = loss_at(p);
      p[i] = m.params[i] - static_cast<float>(h);
      const double down = loss_at(p);
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grads[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << slot.name << " element " << i - slot.offset;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 24);
}

TEST(EngineTest, TrainingStepsThroughTheTrustedOptimizerReduceTheLoss) {
  // Synthetic 4-class problem: the class is the arg-max of a fixed linear map of the input.
  const DatasetSchema schema = Schema({8}, ElementType::kF32, 4);
  auto engine = LoadOrDie(CHIRON_RECIPE_MLP, schema);
  ASSERT_NE(engine, nullptr);
  Model m = Initial(*engine);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const size_t n = 256;
  std::vector<float> w(4 * 8), x(n * 8);
  for (auto& v : w) v = normal(rng);
  for (auto& v : x) v = normal(rng);
  std::vector<int64_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    float best = -1e30f;
    for (int c = 0; c < 4; ++c) {
      float s = 0;
      for (int j = 0; j < 8; ++j) s += w[c * 8 + j] * x[i * 8 + j];
      if (s > best) best = s, labels[i] = c;
    }
  }
  OptimizerConfig config;
  config.kind = OptimizerKind::kSgd;
  config.learning_rate = 0.1;
  config.momentum = 0.9;
  auto opt = train::Optimizer::Create(config, m.params.size());
  ASSERT_TRUE(opt.ok());
  std::vector<float> grads(m.params.size()), none;
  BatchView batch{Bytes(x), Bytes(labels), LabelType::kI64, n};
  float first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    ASSERT_TRUE(engine->ComputeGradients(m.params, none, batch, grads, none, &last).ok());
    if (step == 0) first = last;
    ASSERT_TRUE((*opt)->Step(m.params, grads, config.learning_rate).ok());
  }
  EXPECT_LT(last, 0.5f * first) << "first " << first << " last " << last;

  std::vector<float> logits(n * 4);
  ASSERT_TRUE(engine->Predict(m.params, none, Bytes(x), n, logits).ok());
  size_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    auto row = logits.begin() + i * 4;
    correct += static_cast<int64_t>(std::max_element(row, row + 4) - row) == labels[i];
  }
  EXPECT_GT(correct, n * 8 / 10);
}

TEST(EngineTest, ResNetCarriesBatchNormBuffers) {
  const DatasetSchema schema = Schema({3, 32, 32}, ElementType::kU8, 10);
  auto engine = LoadOrDie(CHIRON_RECIPE_RESNET, schema);
  ASSERT_NE(engine, nullptr);
  const ParameterLayout& layout = engine->layout();
  std::vector<std::string> names;
  for (const auto& b : layout.buffers) names.push_back(b.name);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[0], "stem_bn.running_mean");
  EXPECT_EQ(names[1], "stem_bn.running_var");
  EXPECT_EQ(names[2], "stem_bn.num_batches_tracked");
  EXPECT_NE(std::find(names.begin(), names.end(), "layer2.shortcut.1.running_var"), names.end());
  // 9 batch norms (stem, 2 in each of 3 blocks, 2 shortcuts), each with mean, var, counter.
  EXPECT_EQ(layout.buffers.size(), 9u * 3);
  for (const auto& p : layout.parameters) EXPECT_EQ(p.name.find("running"), std::string::npos);

  Model m = Initial(*engine);
  const size_t mean_at = layout.buffers[0].offset, var_at = layout.buffers[1].offset;
  const size_t tracked_at = layout.buffers[2].offset;
  EXPECT_EQ(m.buffers[mean_at], 0.0f);
  EXPECT_EQ(m.buffers[var_at], 1.0f);
  EXPECT_EQ(m.buffers[tracked_at], 0.0f);

  const size_t n = 8;
  std::mt19937 rng(2);
  std::vector<uint8_t> images(n * 3 * 32 * 32);
  for (auto& v : images) v = static_cast<uint8_t>(rng());
  std::vector<int64_t> labels(n);
  for (auto& l : labels) l = rng() % 10;
  std::vector<float> grads(m.params.size()), buffers_out(m.buffers.size());
  float loss = 0;
  ASSERT_TRUE(engine
                  ->ComputeGradients(m.params, m.buffers,
                                     {Bytes(images), Bytes(labels), LabelType::kI64, n}, grads,
                                     buffers_out, &loss)
                  .ok());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NE(buffers_out[mean_at], 0.0f);  // running statistics moved towards the batch's
  EXPECT_EQ(buffers_out[tracked_at], 1.0f);
  double grad_norm = 0;
  for (float g : grads) grad_norm += g * g;
  EXPECT_GT(grad_norm, 0);

  // In place (buffers_out aliases buffers_in): the counter keeps counting.
  std::vector<float> carried = buffers_out;
  ASSERT_TRUE(engine
                  ->ComputeGradients(m.params, carried,
                                     {Bytes(images), Bytes(labels), LabelType::kI64, n}, grads,
                                     carried, &loss)
                  .ok());
  EXPECT_EQ(carried[tracked_at], 2.0f);

  // Eval-mode predictions use the buffers they are given and change nothing.
  std::vector<float> a(n * 10), b(n * 10), c(n * 10);
  ASSERT_TRUE(engine->Predict(m.params, m.buffers, Bytes(images), n, a).ok());
  ASSERT_TRUE(engine->Predict(m.params, carried, Bytes(images), n, b).ok());
  ASSERT_TRUE(engine->Predict(m.params, m.buffers, Bytes(images), n, c).ok());
  EXPECT_NE(a, b);
  EXPECT_EQ(a, c);
}

TEST(EngineTest, PredictIsPerSampleAndChecksSizes) {
  const DatasetSchema schema = Schema({1, 28, 28}, ElementType::kU8, 10);
  auto engine = LoadOrDie(CHIRON_RECIPE_LENET, schema);
  ASSERT_NE(engine, nullptr);
  Model m = Initial(*engine);
  const size_t n = 5;
  std::mt19937 rng(9);
  std::vector<uint8_t> images(n * 784);
  for (auto& v : images) v = static_cast<uint8_t>(rng());
  std::vector<float> batched(n * 10);
  ASSERT_TRUE(engine->Predict(m.params, m.buffers, Bytes(images), n, batched).ok());
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> one(10);
    ASSERT_TRUE(engine
                    ->Predict(m.params, m.buffers,
                              std::span<const uint8_t>(images).subspan(i * 784, 784), 1, one)
                    .ok());
    for (int c = 0; c < 10; ++c) EXPECT_NEAR(one[c], batched[i * 10 + c], 1e-5);
  }
  std::vector<float> wrong(n * 10 - 1);
  EXPECT_EQ(engine->Predict(m.params, m.buffers, Bytes(images), n, wrong).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->Predict(m.params, m.buffers, Bytes(images), n + 1, batched).code(),
            StatusCode::kInvalidArgument);
  std::vector<float> short_params(m.params.size() - 1);
  EXPECT_EQ(engine->Predict(short_params, m.buffers, Bytes(images), n, batched).code(),
            StatusCode::kInvalidArgument);
}

TEST(EngineTest, ComputeGradientsRefusesBadBatches) {
  const DatasetSchema schema = Schema({4}, ElementType::kF32, 3);
  auto engine = LoadOrDie(CHIRON_RECIPE_MLP, schema);
  ASSERT_NE(engine, nullptr);
  Model m = Initial(*engine);
  std::vector<float> x(8, 0.5f), grads(m.params.size()), none;
  float loss = 0;
  std::vector<int64_t> out_of_range = {0, 3};
  Status s = engine->ComputeGradients(
      m.params, none, {Bytes(x), Bytes(out_of_range), LabelType::kI64, 2}, grads, none, &loss);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("outside [0, 3)"), std::string::npos);
  std::vector<int64_t> negative = {-1, 0};
  EXPECT_FALSE(engine
                   ->ComputeGradients(m.params, none,
                                      {Bytes(x), Bytes(negative), LabelType::kI64, 2}, grads, none,
                                      &loss)
                   .ok());
  std::vector<int64_t> labels = {0, 1};
  EXPECT_FALSE(engine
                   ->ComputeGradients(m.params, none, {Bytes(x), Bytes(labels), LabelType::kI64, 0},
                                      grads, none, &loss)
                   .ok());
  EXPECT_FALSE(engine
                   ->ComputeGradients(m.params, none, {Bytes(x), Bytes(labels), LabelType::kU16, 2},
                                      grads, none, &loss)
                   .ok());
  std::vector<float> short_grads(grads.size() - 1);
  EXPECT_FALSE(engine
                   ->ComputeGradients(m.params, none, {Bytes(x), Bytes(labels), LabelType::kI64, 2},
                                      short_grads, none, &loss)
                   .ok());
  // A good batch still works after the refusals.
  EXPECT_TRUE(engine
                  ->ComputeGradients(m.params, none, {Bytes(x), Bytes(labels), LabelType::kI64, 2},
                                     grads, none, &loss)
                  .ok());
}

}  // namespace
}  // namespace chiron::worker
