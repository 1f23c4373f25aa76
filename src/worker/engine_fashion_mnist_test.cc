// Real data: the LeNet recipe trained for one short epoch on a slice of Fashion-MNIST in Chiron's
// shape (trusted shuffler picks batches, engine computes gradients, trusted optimizer applies
// them, trusted metrics score the predictions). No libtorch include: only the engine's flat API.
#include "shared/testing/fashion_mnist.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "runtime/train/metrics.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/shuffler.h"
#include "worker/engine.h"

namespace chiron::worker {
namespace {

TEST(EngineFashionMnistTest, LeNetLearnsFromASlice) {
  auto train_set = testing::ReadFashionMnist("train", 16000);
  auto test_set = testing::ReadFashionMnist("t10k", 2000);
  // Fashion-MNIST is a declared dependency (scripts/install-deps.sh): missing, the test fails.
  ASSERT_TRUE(train_set.ok()) << train_set.status().ToString()
                              << " (install Debian's dataset-fashion-mnist)";
  ASSERT_TRUE(test_set.ok()) << test_set.status().ToString();

  DatasetSchema schema;
  schema.input_shape = {1, 28, 28};
  schema.element_type = ElementType::kU8;
  schema.class_count = 10;
  EngineOptions options;
  // One thread: the machines running the tests are shared, and OpenMP's spinning threads slow
  // down badly when the cores are oversubscribed (bench/train_bench measures two threads).
  options.threads = 1;
  options.seed = 42;
  auto engine = Engine::Load(CHIRON_RECIPE_LENET, schema, options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  Engine& e = **engine;
  const TrainingConfig config = e.training_config();
  ASSERT_TRUE(train::ValidateTrainingConfig(config).ok());

  AlignedFloats params(e.layout().parameter_count), buffers(e.layout().buffer_count);
  ASSERT_TRUE(e.InitialParameters(params, buffers).ok());
  auto optimizer = train::Optimizer::Create(config.optimizer, params.size());
  ASSERT_TRUE(optimizer.ok());
  auto shuffler = train::Shuffler::Create(7, train_set->count, config.batch_size, false);
  ASSERT_TRUE(shuffler.ok());

  const size_t image_size = 784;
  std::vector<uint8_t> batch_pixels;
  std::vector<int64_t> batch_labels;
  AlignedFloats grads(params.size());
  double first_losses = 0, last_losses = 0;
  const auto batches = shuffler->EpochBatches(0);
  const auto start = std::chrono::steady_clock::now();
  for (size_t b = 0; b < batches.size(); ++b) {
    batch_pixels.clear();
    batch_labels.clear();
    for (uint32_t index : batches[b]) {
      batch_pixels.insert(batch_pixels.end(), train_set->pixels.begin() + index * image_size,
                          train_set->pixels.begin() + (index + 1) * image_size);
      batch_labels.push_back(train_set->labels[index]);
    }
    BatchView view{batch_pixels,
                   {reinterpret_cast<const uint8_t*>(batch_labels.data()),
                    batch_labels.size() * sizeof(int64_t)},
                   LabelType::kI64,
                   batch_labels.size()};
    float loss = 0;
    ASSERT_TRUE(e.ComputeGradients(params, buffers, view, grads, buffers, &loss).ok());
    ASSERT_TRUE((*optimizer)->Step(params, grads, config.optimizer.learning_rate).ok());
    if (b < 10) first_losses += loss / 10;
    if (b >= batches.size() - 10) last_losses += loss / 10;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto metrics = train::MetricsAccumulator::Create(10);
  ASSERT_TRUE(metrics.ok());
  const size_t chunk = 500;
  std::vector<float> logits(chunk * 10);
  for (size_t at = 0; at < test_set->count; at += chunk) {
    const size_t n = std::min(chunk, test_set->count - at);
    ASSERT_TRUE(
        e.Predict(
             params, buffers,
             std::span<const uint8_t>(test_set->pixels).subspan(at * image_size, n * image_size), n,
             std::span<float>(logits).first(n * 10))
            .ok());
    ASSERT_TRUE(metrics
                    ->Add(std::span<const float>(logits).first(n * 10),
                          std::span<const int64_t>(test_set->labels).subspan(at, n))
                    .ok());
  }
  const train::ClassificationReport report = metrics->Report();
  std::printf(
      "LeNet, %zu training images, 1 epoch: %.0f img/s, loss %.3f -> %.3f, "
      "test accuracy %.3f (%llu images), test loss %.3f\n",
      train_set->count, train_set->count / seconds, first_losses, last_losses, report.accuracy,
      static_cast<unsigned long long>(report.example_count), report.mean_loss);
  EXPECT_LT(last_losses, 0.6 * first_losses);
  EXPECT_GT(report.accuracy, 0.70);
  EXPECT_EQ(report.example_count, test_set->count);
  uint64_t confusion_total = 0;
  for (uint64_t c : report.confusion) confusion_total += c;
  EXPECT_EQ(confusion_total, test_set->count);
  // Most classes are learnt well after one short epoch (shirts and pullovers lag behind).
  int good_classes = 0;
  for (double a : report.per_class_accuracy) good_classes += a > 0.5;
  EXPECT_GE(good_classes, 7);
}

}  // namespace
}  // namespace chiron::worker
