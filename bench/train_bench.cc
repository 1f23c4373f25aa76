// Training and prediction throughput of Chiron's split (trusted optimizer + trusted batch picker
// applying updates to flat parameters from the engine's gradients) against plain libtorch
// (the same recipe's model trained with torch::optim::SGD), on Fashion-MNIST, same batches, same
// hyper-parameters, same initial parameters, same thread count.
//
//   build-engine/bin/train_bench [--epochs N] [--threads N] [--train-limit N] [--seed N]
//
// The Chiron path runs in-process here: no sandbox, no process boundary, no copy through shared
// memory yet; the output says so. Goal: Chiron / libtorch training img/s >= 0.95.
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chiron/recipe.h"
#include "runtime/train/metrics.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/shuffler.h"
#include "worker/engine.h"
#include "worker/engine_fashion_mnist.h"

namespace chiron {
namespace {

using Clock = std::chrono::steady_clock;
using worker::testing::LabelledImages;

struct Flags {
  int epochs = 1;
  int threads = 2;
  size_t train_limit = 60000;
  uint64_t seed = 1;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--epochs")
      f.epochs = std::atoi(next());
    else if (a == "--threads")
      f.threads = std::atoi(next());
    else if (a == "--train-limit")
      f.train_limit = std::strtoull(next(), nullptr, 10);
    else if (a == "--seed")
      f.seed = std::strtoull(next(), nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: train_bench [--epochs N] [--threads N] [--train-limit N] [--seed N]\n");
      std::exit(2);
    }
  }
  if (f.epochs < 1 || f.threads < 1) {
    std::fprintf(stderr, "--epochs and --threads must be >= 1\n");
    std::exit(2);
  }
  return f;
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "train_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr size_t kImageSize = 784;

void Gather(const LabelledImages& data, const std::vector<uint32_t>& batch,
            std::vector<uint8_t>& pixels, std::vector<int64_t>& labels) {
  pixels.resize(batch.size() * kImageSize);
  labels.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    std::memcpy(pixels.data() + i * kImageSize, data.pixels.data() + batch[i] * kImageSize,
                kImageSize);
    labels[i] = data.labels[batch[i]];
  }
}

// Both trainers advance over the same batch list; the driver alternates them segment by segment
// (kSegment batches each) so a change in machine load hits both equally.
constexpr size_t kSegment = 25;

// ---- (a) Chiron's shape: engine gradients, trusted optimizer, flat parameters -------------------
class ChironTrainer {
 public:
  ChironTrainer(worker::Engine& engine, const LabelledImages& train, const OptimizerConfig& config,
                const worker::AlignedFloats& params, const worker::AlignedFloats& buffers)
      : engine_(engine),
        train_(train),
        config_(config),
        params_(params),
        buffers_(buffers),
        grads_(params.size()) {
    auto optimizer = train::Optimizer::Create(config, params.size());
    if (!optimizer.ok()) Die("optimizer", optimizer.status());
    optimizer_ = std::move(*optimizer);
  }

  void Run(const std::vector<uint32_t>& batch) {
    const auto start = Clock::now();
    Gather(train_, batch, pixels_, labels_);
    worker::BatchView view{
        pixels_,
        {reinterpret_cast<const uint8_t*>(labels_.data()), labels_.size() * sizeof(int64_t)},
        worker::LabelType::kI64,
        labels_.size()};
    float loss = 0;
    Status s = engine_.ComputeGradients(params_, buffers_, view, grads_, buffers_, &loss);
    if (!s.ok()) Die("ComputeGradients", s);
    s = optimizer_->Step(params_, grads_, config_.learning_rate);
    if (!s.ok()) Die("optimizer step", s);
    seconds += Seconds(start);
    images += batch.size();
  }

  double Accuracy(const LabelledImages& test) {
    auto metrics = train::MetricsAccumulator::Create(10);
    const size_t chunk = 500;
    worker::AlignedFloats logits(chunk * 10);
    for (size_t at = 0; at < test.count; at += chunk) {
      const size_t n = std::min(chunk, test.count - at);
      Status s = engine_.Predict(
          params_, buffers_,
          std::span<const uint8_t>(test.pixels).subspan(at * kImageSize, n * kImageSize), n,
          std::span<float>(logits).first(n * 10));
      if (!s.ok()) Die("Predict", s);
      s = metrics->Add(std::span<const float>(logits).first(n * 10),
                       std::span<const int64_t>(test.labels).subspan(at, n));
      if (!s.ok()) Die("metrics", s);
    }
    return metrics->Report().accuracy;
  }

  double seconds = 0;
  size_t images = 0;

 private:
  worker::Engine& engine_;
  const LabelledImages& train_;
  OptimizerConfig config_;
  worker::AlignedFloats params_, buffers_, grads_;
  std::unique_ptr<train::Optimizer> optimizer_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
};

// ---- (b) plain libtorch: the same recipe's model with torch::optim::SGD ------------------------
struct PlainRecipe {
  Recipe* recipe = nullptr;
  DatasetSchema schema;
};

PlainRecipe OpenRecipe(const char* path, const DatasetSchema& schema) {
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) Die("dlopen", InternalError(dlerror()));
  auto entry = reinterpret_cast<ChironRecipeEntryV1>(dlsym(handle, CHIRON_RECIPE_ENTRY_SYMBOL));
  if (entry == nullptr) Die("dlsym", InternalError("no entry point"));
  return {entry()->create(), schema};
}

// A fresh model holding the engine's flat parameters (slots in registration order).
std::shared_ptr<RecipeModel> BuildWith(const PlainRecipe& r, const worker::ParameterLayout& layout,
                                       const worker::AlignedFloats& params) {
  std::string error;
  auto model = r.recipe->BuildModel(r.schema, &error);
  if (model == nullptr) Die("BuildModel", InternalError(error));
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& p : model->parameters()) {
    const worker::TensorSlot& slot = layout.parameters.at(i++);
    p.copy_(torch::from_blob(const_cast<float*>(params.data()) + slot.offset, p.sizes()));
  }
  return model;
}

class PlainTrainer {
 public:
  PlainTrainer(const PlainRecipe& r, const LabelledImages& train, const OptimizerConfig& config,
               const worker::ParameterLayout& layout, const worker::AlignedFloats& initial)
      : r_(r),
        model_(BuildWith(r, layout, initial)),
        sgd_(model_->parameters(), torch::optim::SGDOptions(config.learning_rate)
                                       .momentum(config.momentum)
                                       .dampening(config.dampening)
                                       .nesterov(config.nesterov)
                                       .weight_decay(config.weight_decay)),
        images_(torch::from_blob(const_cast<uint8_t*>(train.pixels.data()),
                                 {static_cast<int64_t>(train.count), 1, 28, 28}, torch::kUInt8)),
        labels_(torch::from_blob(const_cast<int64_t*>(train.labels.data()),
                                 {static_cast<int64_t>(train.count)}, torch::kInt64)) {}

  void Run(const std::vector<uint32_t>& batch) {
    const auto start = Clock::now();
    model_->train();
    std::vector<int64_t> idx(batch.begin(), batch.end());
    torch::Tensor index =
        torch::from_blob(idx.data(), {static_cast<int64_t>(idx.size())}, torch::kInt64);
    torch::Tensor x = r_.recipe->TransformInput(images_.index_select(0, index), r_.schema);
    torch::Tensor y = labels_.index_select(0, index);
    sgd_.zero_grad();
    torch::Tensor loss = model_->loss(model_->forward(x), y);
    loss.backward();
    sgd_.step();
    seconds += Seconds(start);
    images += batch.size();
  }

  double Accuracy(const LabelledImages& test) {
    model_->eval();
    torch::NoGradGuard no_grad;
    int64_t correct = 0;
    for (size_t at = 0; at < test.count; at += 500) {
      const int64_t n = static_cast<int64_t>(std::min<size_t>(500, test.count - at));
      torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(test.pixels.data()) + at * kImageSize,
                                         {n, 1, 28, 28}, torch::kUInt8);
      torch::Tensor predicted = model_->forward(r_.recipe->TransformInput(x, r_.schema)).argmax(1);
      torch::Tensor y =
          torch::from_blob(const_cast<int64_t*>(test.labels.data()) + at, {n}, torch::kInt64);
      correct += predicted.eq(y).sum().item<int64_t>();
    }
    return static_cast<double>(correct) / static_cast<double>(test.count);
  }

  double seconds = 0;
  size_t images = 0;

 private:
  const PlainRecipe& r_;
  std::shared_ptr<RecipeModel> model_;
  torch::optim::SGD sgd_;
  torch::Tensor images_, labels_;
};

// p50 latencies of two calls, alternated call by call so both see the same machine load.
template <typename A, typename B>
std::pair<double, double> InterleavedMedianMicros(int iterations, A&& a, B&& b) {
  for (int i = 0; i < iterations / 10; ++i) a(), b();
  std::vector<double> ta(iterations), tb(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto start = Clock::now();
    a();
    ta[i] = Seconds(start) * 1e6;
    start = Clock::now();
    b();
    tb[i] = Seconds(start) * 1e6;
  }
  std::nth_element(ta.begin(), ta.begin() + iterations / 2, ta.end());
  std::nth_element(tb.begin(), tb.begin() + iterations / 2, tb.end());
  return {ta[iterations / 2], tb[iterations / 2]};
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  auto train_set = worker::testing::ReadFashionMnist("train", flags.train_limit);
  if (!train_set.ok()) Die("Fashion-MNIST train", train_set.status());
  auto test_set = worker::testing::ReadFashionMnist("t10k", 10000);
  if (!test_set.ok()) Die("Fashion-MNIST test", test_set.status());

  DatasetSchema schema;
  schema.input_shape = {1, 28, 28};
  schema.element_type = ElementType::kU8;
  schema.class_count = 10;
  worker::EngineOptions options;
  options.threads = flags.threads;
  options.seed = flags.seed;
  auto engine = worker::Engine::Load(CHIRON_RECIPE_LENET, schema, options);
  if (!engine.ok()) Die("Engine::Load", engine.status());
  worker::Engine& e = **engine;
  at::set_num_threads(flags.threads);

  const TrainingConfig config = e.training_config();
  if (Status s = train::ValidateTrainingConfig(config); !s.ok()) Die("recipe config", s);
  auto shuffler = train::Shuffler::Create(flags.seed, train_set->count, config.batch_size, false);
  if (!shuffler.ok()) Die("shuffler", shuffler.status());
  worker::AlignedFloats params(e.layout().parameter_count), buffers(e.layout().buffer_count);
  if (Status s = e.InitialParameters(params, buffers); !s.ok()) Die("InitialParameters", s);
  PlainRecipe plain = OpenRecipe(CHIRON_RECIPE_LENET, schema);

  std::printf(
      "train_bench: LeNet (conv20-conv50-fc500, %zu parameters) on Fashion-MNIST, "
      "%zu train / %zu test images, %d epoch(s), batch %u, SGD lr %g momentum %g, "
      "%d thread(s), OpenMP BLAS\n",
      params.size(), train_set->count, test_set->count, flags.epochs, config.batch_size,
      config.optimizer.learning_rate, config.optimizer.momentum, flags.threads);
  std::printf(
      "Chiron path runs IN-PROCESS (trusted optimizer + shuffler + engine in one "
      "process; no sandbox or IPC yet); the two paths alternate every %zu batches\n",
      kSegment);

  // Warm-up (oneDNN JIT, allocator) on a few batches with throwaway state.
  {
    ChironTrainer warm_chiron(e, *train_set, config.optimizer, params, buffers);
    PlainTrainer warm_plain(plain, *train_set, config.optimizer, e.layout(), params);
    auto batches = shuffler->EpochBatches(1000);
    for (size_t b = 0; b < 10; ++b) {
      warm_chiron.Run(batches[b]);
      warm_plain.Run(batches[b]);
    }
  }

  ChironTrainer chiron(e, *train_set, config.optimizer, params, buffers);
  PlainTrainer torch_run(plain, *train_set, config.optimizer, e.layout(), params);
  std::vector<double> segment_ratios;  // libtorch time / chiron time, per segment
  for (int epoch = 0; epoch < flags.epochs; ++epoch) {
    const auto batches = shuffler->EpochBatches(epoch);
    for (size_t begin = 0; begin < batches.size(); begin += kSegment) {
      const size_t end = std::min(batches.size(), begin + kSegment);
      const double chiron_before = chiron.seconds, torch_before = torch_run.seconds;
      for (size_t b = begin; b < end; ++b) chiron.Run(batches[b]);
      for (size_t b = begin; b < end; ++b) torch_run.Run(batches[b]);
      segment_ratios.push_back((torch_run.seconds - torch_before) /
                               (chiron.seconds - chiron_before));
    }
  }
  std::sort(segment_ratios.begin(), segment_ratios.end());
  const double median_segment_ratio = segment_ratios[segment_ratios.size() / 2];
  const double chiron_accuracy = chiron.Accuracy(*test_set);
  const double torch_accuracy = torch_run.Accuracy(*test_set);
  const double chiron_rate = chiron.images / chiron.seconds;
  const double torch_rate = torch_run.images / torch_run.seconds;
  std::printf("\ntraining           img/s     test accuracy   seconds\n");
  std::printf("  chiron        %9.0f     %.4f          %.2f\n", chiron_rate, chiron_accuracy,
              chiron.seconds);
  std::printf("  libtorch      %9.0f     %.4f          %.2f\n", torch_rate, torch_accuracy,
              torch_run.seconds);
  std::printf(
      "  ratio chiron/libtorch: %.3f overall, %.3f median over %zu segments (goal >= 0.95)\n",
      chiron_rate / torch_rate, median_segment_ratio, segment_ratios.size());

  // Prediction: one image, p50 latency; and batched throughput over the test set.
  auto model = BuildWith(plain, e.layout(), params);
  model->eval();
  worker::AlignedFloats one(10);
  std::span<const uint8_t> first_image(test_set->pixels.data(), kImageSize);
  auto engine_one = [&] {
    if (Status s = e.Predict(params, buffers, first_image, 1, one); !s.ok()) Die("Predict", s);
  };
  auto direct_one = [&] {
    torch::NoGradGuard no_grad;
    torch::Tensor x =
        torch::from_blob(const_cast<uint8_t*>(first_image.data()), {1, 1, 28, 28}, torch::kUInt8);
    torch::Tensor logits = model->forward(plain.recipe->TransformInput(x, schema));
    std::memcpy(one.data(), logits.data_ptr<float>(), sizeof(float) * 10);
  };
  const auto [engine_p50, direct_p50] = InterleavedMedianMicros(3000, engine_one, direct_one);
  const size_t chunk = 500;
  worker::AlignedFloats logits(chunk * 10);
  auto engine_all = [&] {
    for (size_t at = 0; at + chunk <= test_set->count; at += chunk) {
      Status s = e.Predict(
          params, buffers,
          std::span<const uint8_t>(test_set->pixels).subspan(at * kImageSize, chunk * kImageSize),
          chunk, logits);
      if (!s.ok()) Die("Predict", s);
    }
  };
  auto direct_all = [&] {
    torch::NoGradGuard no_grad;
    for (size_t at = 0; at + chunk <= test_set->count; at += chunk) {
      torch::Tensor x =
          torch::from_blob(const_cast<uint8_t*>(test_set->pixels.data()) + at * kImageSize,
                           {static_cast<int64_t>(chunk), 1, 28, 28}, torch::kUInt8);
      torch::Tensor out = model->forward(plain.recipe->TransformInput(x, schema));
      std::memcpy(logits.data(), out.data_ptr<float>(), logits.size() * sizeof(float));
    }
  };
  engine_all();
  direct_all();
  double engine_batched = 0, direct_batched = 0;
  for (int round = 0; round < 3; ++round) {  // interleaved, best of 3
    auto start = Clock::now();
    engine_all();
    const double engine_s = Seconds(start);
    start = Clock::now();
    direct_all();
    const double direct_s = Seconds(start);
    const double images = static_cast<double>(test_set->count / chunk * chunk);
    engine_batched = std::max(engine_batched, images / engine_s);
    direct_batched = std::max(direct_batched, images / direct_s);
  }
  std::printf("\nprediction\n");
  std::printf("  1 image p50:   engine Predict %.0f us, direct forward %.0f us (ratio %.3f)\n",
              engine_p50, direct_p50, direct_p50 / engine_p50);
  std::printf("  batched (%zu, best of 3): engine %.0f img/s, direct %.0f img/s, ratio %.3f\n",
              chunk, engine_batched, direct_batched, engine_batched / direct_batched);
  return 0;
}

}  // namespace
}  // namespace chiron

int main(int argc, char** argv) {
  return chiron::Main(argc, argv);
}
