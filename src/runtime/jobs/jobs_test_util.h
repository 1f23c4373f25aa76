// Helpers of the jobs tests: a real sealed store in a temporary directory with an owner's
// uploaded dataset, and recipes run by the torch-free scripted worker (tests/workers), so the
// training queue and model access are tested through real sandboxed processes without libtorch
// (and under ASan, UBSan and TSan).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "runtime/jobs/recipe_registry.h"
#include "runtime/store/store.h"
#include "runtime/store/store_test_util.h"
#include "shared/dataset/container.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::jobs::testing {

inline const std::string kOwner(64, 'a');
inline const std::string kOtherOwner(64, 'b');
inline const std::string kProvider(64, 'c');

// An uploaded dataset of `count` 8x8 u8 samples in 3 classes whose label is learnable (the class
// is the brightest third of the image), sealed in `store` under `name`.
inline void UploadDataset(store::Store& store, const std::string& owner, const std::string& name,
                          uint64_t count, uint32_t seed = 7) {
  Bytes key = store::testing::SeededBytes(seed, dataset::kDatasetKeySize);
  dataset::DatasetId id;
  Bytes id_bytes = store::testing::SeededBytes(seed + 1000, id.size());
  std::copy(id_bytes.begin(), id_bytes.end(), id.begin());
  dataset::DatasetSchema schema;
  schema.shape = {1, 8, 8};
  schema.class_names = {"dark", "middle", "bright"};
  schema.sample_count = count;
  Bytes header;
  std::vector<Bytes> chunks;
  auto sink = [&](const dataset::ContainerPiece& piece) -> Status {
    Bytes bytes(piece.bytes.begin(), piece.bytes.end());
    if (piece.kind == dataset::ContainerPiece::Kind::kHeader) {
      header = std::move(bytes);
    } else {
      chunks.push_back(std::move(bytes));
    }
    return Status::Ok();
  };
  dataset::DatasetWriterOptions options;
  options.target_chunk_size = 4096;
  auto writer = dataset::DatasetWriter::Create(key, id, schema, sink, options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::mt19937 rng(seed);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t label = static_cast<uint32_t>(i % 3);
    Bytes sample(64);
    for (uint8_t& b : sample) b = static_cast<uint8_t>(label * 80 + rng() % 60);
    ASSERT_TRUE((*writer)->Add(label, sample).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
  auto record = store.BeginDataset(owner, name, header, key);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  for (uint64_t i = 0; i < chunks.size(); ++i) {
    auto progress = store.AppendChunk(record->id, i, i + 1 == chunks.size(), chunks[i]);
    ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  }
}

// A store with two owners and a provider registered.
class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::Open(dir_.path() + "/store",
                                    SecretBytes(store::testing::SeededBytes(99, 32)),
                                    FileSystem::Default());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->RegisterPrincipal(kOwner, store::Role::kOwner, "Owner").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kOtherOwner, store::Role::kOwner, "Other").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kProvider, store::Role::kProvider, "Provider").ok());
  }

  // Registers a scripted recipe of the provider's; returns its id.
  std::string RegisterScripted(RecipeRegistry& registry, const std::string& name,
                               const std::string& script) {
    std::string bytes = ::chiron::testing::ScriptedRecipe(script);
    auto record = registry.Register(kProvider, name, "1", "scripted test recipe",
                                    AsBytes(bytes));
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? record->id : std::string();
  }

  store::testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

inline train::WorkerSettings ScriptedWorkerSettings() {
  train::WorkerSettings settings;
  settings.worker_path = CHIRON_SCRIPTED_WORKER;
  settings.threads = 1;
  return settings;
}

// Polls `done` every 20 ms until it holds or `limit` passes (a liveness bound, not a timing
// assertion: generous on purpose).
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::seconds limit = std::chrono::seconds(120)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace chiron::jobs::testing
