// Recipes checked at the door: RecipeRegistry::Register loads each recipe in the real sandboxed
// chiron-worker (no data) before storing it. Refusals carry a fixed reason and store nothing; a
// good recipe's record keeps what it declares for the schemas it accepts.
#include "runtime/jobs/recipe_registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "runtime/jobs/jobs_test_util.h"
#include "runtime/jobs/recipe_probe.h"

namespace chiron::jobs {
namespace {

using testing::kProvider;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class RecipeRegistryTest : public testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    RecipeRegistryOptions options;
    options.worker.worker_path = CHIRON_WORKER_PATH;
    options.worker.threads = 1;
    registry_ = std::make_unique<RecipeRegistry>(store_.get(), options);
  }

  Result<RecipeRecord> Register(const std::string& path,
                                const std::vector<dataset::DatasetSchema>& schemas = {}) {
    const std::string code = ReadFile(path);
    EXPECT_FALSE(code.empty()) << path;
    return registry_->Register(kProvider, "acme", "1", "test", AsBytes(code), schemas);
  }

  void ExpectRefusedAndNothingStored(const Result<RecipeRecord>& record, RecipeRefusal reason) {
    ASSERT_FALSE(record.ok());
    EXPECT_EQ(record.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(record.status().message(),
              "recipe refused at registration: " + std::string(RecipeRefusalMessage(reason)));
    auto listed = registry_->List();
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->empty());
    auto blobs = store_->ListBlobs(store::BlobKind::kRecipe);
    ASSERT_TRUE(blobs.ok());
    EXPECT_TRUE(blobs->empty());
  }

  std::unique_ptr<RecipeRegistry> registry_;
};

TEST_F(RecipeRegistryTest, NoEntryPointIsRefusedAndNothingStored) {
  ExpectRefusedAndNothingStored(Register(CHIRON_TEST_RECIPE_NO_ENTRY),
                                RecipeRefusal::kNoEntryPoint);
}

TEST_F(RecipeRegistryTest, WrongAbiIsRefusedAndNothingStored) {
  ExpectRefusedAndNothingStored(Register(CHIRON_TEST_RECIPE_BAD_ABI), RecipeRefusal::kRecipeAbi);
}

TEST_F(RecipeRegistryTest, CrashWhileDescribingIsRefusedAndNothingStored) {
  ExpectRefusedAndNothingStored(Register(CHIRON_TEST_RECIPE_CRASH_DESCRIBE),
                                RecipeRefusal::kCrashed);
}

TEST_F(RecipeRegistryTest, RecipeRefusingEveryProbeSchemaIsRefused) {
  ExpectRefusedAndNothingStored(Register(CHIRON_TEST_RECIPE_BUILD_REFUSED),
                                RecipeRefusal::kNoSchema);
}

TEST_F(RecipeRegistryTest, ProviderSchemaTheRecipeRefusesIsRefused) {
  auto table = MakeProbeSchema({20}, dataset::ElementType::kFloat32, 2);
  ASSERT_TRUE(table.ok());
  ExpectRefusedAndNothingStored(Register(CHIRON_RECIPE_LENET, {*table}),
                                RecipeRefusal::kSchemaRefused);
}

TEST_F(RecipeRegistryTest, GoodRecipeKeepsItsDeclarationsForTheSchemasItAccepts) {
  auto record = Register(CHIRON_RECIPE_LENET);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  auto accepted = DecodeAcceptedSchemas(record->accepted_schemas);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  // LeNet takes images (C×H×W or H×W) and refuses the probe set's table of 20 features.
  ASSERT_EQ(accepted->size(), 3u);
  EXPECT_EQ((*accepted)[0].schema.shape, (std::vector<uint32_t>{1, 28, 28}));
  EXPECT_EQ((*accepted)[1].schema.shape, (std::vector<uint32_t>{3, 32, 32}));
  EXPECT_EQ((*accepted)[2].schema.shape, (std::vector<uint32_t>{28, 28}));
  EXPECT_FALSE(record->schemas_from_provider);
  const AcceptedSchema& a = accepted->front();
  EXPECT_EQ(a.schema.class_count(), 10u);
  EXPECT_EQ(a.training.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(a.training.optimizer.learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(a.training.optimizer.momentum, 0.9);
  EXPECT_EQ(a.training.epochs, 5u);
  EXPECT_EQ(a.training.batch_size, 64u);
  EXPECT_EQ(a.budget.max_memory_size, uint64_t{2} << 30);
  EXPECT_EQ(a.budget.max_training_seconds, 3600u);
  EXPECT_EQ(a.output.kind, OutputKind::kScores);
  EXPECT_EQ(a.output.decimals, 4u);
  // Layout facts stay out of the stored record (the card is public).
  EXPECT_EQ(a.parameter_count, 0u);

  // The card carries the same, and it survives a reload of the record.
  auto listed = registry_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  v1::RecipeCard card;
  FillAcceptances(*DecodeAcceptedSchemas(listed->front().accepted_schemas), card.mutable_accepts());
  ASSERT_EQ(card.accepts_size(), 3);
  EXPECT_EQ(card.accepts(0).schema().input_type(), "u8");
  EXPECT_EQ(card.accepts(0).schema().class_count(), 10u);
  EXPECT_EQ(card.accepts(0).training().optimizer(), "sgd");
  EXPECT_EQ(card.accepts(0).training().schedule(), "constant");
  EXPECT_EQ(card.accepts(0).training().epochs(), 5u);
  EXPECT_FALSE(card.accepts(0).output_policy().label_only());
  EXPECT_EQ(card.accepts(0).memory_budget_bytes(), uint64_t{2} << 30);
  EXPECT_EQ(card.accepts(0).time_budget_seconds(), 3600u);
}

TEST_F(RecipeRegistryTest, ProviderSchemasReplaceTheProbeSet) {
  auto table = MakeProbeSchema({20}, dataset::ElementType::kFloat32, 3);
  ASSERT_TRUE(table.ok());
  auto record = Register(CHIRON_RECIPE_MLP, {*table});
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_TRUE(record->schemas_from_provider);
  auto accepted = DecodeAcceptedSchemas(record->accepted_schemas);
  ASSERT_TRUE(accepted.ok());
  ASSERT_EQ(accepted->size(), 1u);
  EXPECT_EQ((*accepted)[0].schema.shape, std::vector<uint32_t>{20});
  EXPECT_EQ((*accepted)[0].schema.element_type, dataset::ElementType::kFloat32);
  EXPECT_EQ((*accepted)[0].schema.class_count(), 3u);
}

TEST_F(RecipeRegistryTest, BuiltInTheDoorRefusesIsLeftOutAndTheOthersServed) {
  const std::string dir = dir_.path() + "/recipes";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(CHIRON_TEST_RECIPE_NO_ENTRY, dir + "/chiron_recipe_broken.so");
  std::filesystem::copy_file(CHIRON_RECIPE_LENET, dir + "/chiron_recipe_lenet.so");
  RecipeRegistryOptions options;
  options.recipes_dir = dir;
  options.worker.worker_path = CHIRON_WORKER_PATH;
  RecipeRegistry registry(store_.get(), options);
  ASSERT_TRUE(registry.RegisterBuiltins().ok());
  auto listed = registry.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().name, "lenet");
  EXPECT_TRUE(listed->front().built_in);
  EXPECT_FALSE(listed->front().accepted_schemas.empty());
}

TEST(RecipeProbeTest, ShapeText) {
  EXPECT_EQ(*ParseShapeText("1x28x28"), (std::vector<uint32_t>{1, 28, 28}));
  EXPECT_EQ(*ParseShapeText("20"), std::vector<uint32_t>{20});
  for (const char* bad : {"", "x", "1x", "x1", "0", "1x0", "1x2x3x4x5", "-1", "1,28", "28X28",
                          "16777217", "99999999999", "1 x 2"}) {
    EXPECT_FALSE(ParseShapeText(bad).ok()) << bad;
  }
}

TEST(RecipeProbeTest, RefusalMessagesAreDistinct) {
  std::set<std::string_view> seen;
  for (int i = 0; i <= static_cast<int>(RecipeRefusal::kInternal); ++i) {
    std::string_view m = RecipeRefusalMessage(static_cast<RecipeRefusal>(i));
    EXPECT_NE(m, "unknown reason");
    EXPECT_TRUE(seen.insert(m).second) << m;
  }
}

}  // namespace
}  // namespace chiron::jobs
