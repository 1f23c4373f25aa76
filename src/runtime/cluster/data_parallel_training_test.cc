// Data-parallel training (synchronous, and asynchronous with bounded staleness) end to end below
// the job manager: N real TrainingSessions, each driving its own sandboxed worker (the torch-free
// scripted worker: a real logistic regression, tests/workers/scripted_recipe.h) on its own shard,
// exchanging gradients and parameters through real PeerGroups over mutually attested TLS (sim
// platform) on loopback.
#include <gtest/gtest.h>

#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cluster/cluster_test_support.h"
#include "runtime/cluster/group_collective.h"
#include "runtime/train/training_session.h"
#include "tests/workers/scripted_recipe.h"

namespace chiron::cluster {
namespace {

using chiron::testing::ScriptedRecipe;

// Records (label byte, then 8×8 u8) of a learnable 4-class set: class c lights quadrant c.
struct Records {
  dataset::DatasetSchema schema;
  Bytes bytes;
  train::TrainingData data() const { return {schema, bytes}; }
};

Records Learnable(uint64_t count, uint32_t seed) {
  Records r;
  r.schema.element_type = dataset::ElementType::kUint8;
  r.schema.shape = {1, 8, 8};
  r.schema.label_type = dataset::LabelType::kUint8;
  r.schema.class_names = {"a", "b", "c", "d"};
  r.schema.sample_count = count;
  std::mt19937 random(seed);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t label = random() % 4;
    r.bytes.push_back(static_cast<uint8_t>(label));
    for (uint32_t y = 0; y < 8; ++y) {
      for (uint32_t x = 0; x < 8; ++x) {
        const uint32_t quadrant = (y / 4) * 2 + x / 4;
        const uint32_t base = quadrant == label ? 150 : 40;
        r.bytes.push_back(static_cast<uint8_t>(base + random() % 100));
      }
    }
  }
  return r;
}

// Records [begin, end) of `all`: one node's shard.
Records Shard(const Records& all, uint64_t begin, uint64_t end) {
  Records r = all;
  const uint64_t record = all.schema.record_size();
  r.schema.sample_count = end - begin;
  r.bytes.assign(all.bytes.begin() + static_cast<ptrdiff_t>(begin * record),
                 all.bytes.begin() + static_cast<ptrdiff_t>(end * record));
  return r;
}

train::TrainingOptions Options(uint32_t epochs, uint32_t batch) {
  train::TrainingOptions options;
  options.config.epochs = epochs;
  options.config.batch_size = batch;
  options.config.optimizer.learning_rate = 0.1;
  options.config.optimizer.momentum = 0.9;
  options.validation_fraction = 0.1;
  options.seed = 7;
  options.worker.worker_path = CHIRON_SCRIPTED_WORKER;
  options.worker.threads = 1;
  options.worker.request_timeout = std::chrono::seconds(120);
  options.worker.limits.address_space_size = 2ull << 30;
  return options;
}

struct RankOutcome {
  Status status;
  train::FailureCategory failure = train::FailureCategory::kNone;
  train::TrainingResult result;
  std::vector<Bytes> checkpoints;
  uint64_t payload_bytes = 0;
};

// Trains shards[r] on rank r, all ranks at once, each from its own thread; recipes[r] (or
// recipes[0] for every rank). `restore[r]`, when given, is the checkpoint rank r resumes from.
std::vector<RankOutcome> TrainTogether(const testing::SimNodes& nodes,
                                       const std::vector<Records>& shards,
                                       const train::TrainingOptions& base,
                                       const std::vector<std::string>& recipes,
                                       const std::vector<Bytes>& restore = {}) {
  const uint32_t size = static_cast<uint32_t>(shards.size());
  testing::Cluster cluster = testing::JoinCluster(nodes, size);
  std::vector<RankOutcome> outcomes(size);
  if (cluster.groups.size() != size) return outcomes;
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      GroupCollective collective(*cluster.groups[r]);
      train::TrainingOptions options = base;
      options.collective = &collective;
      RankOutcome& out = outcomes[r];
      auto session = train::TrainingSession::Create(
          shards[r].data(), ToBytes(recipes.size() > r ? recipes[r] : recipes[0]), options,
          &out.failure);
      if (!session.ok()) {
        out.status = session.status();
        return;
      }
      if (!restore.empty()) {
        if (Status s = (*session)->Restore(restore[r]); !s.ok()) {
          out.status = s;
          (*session)->Abort();
          return;
        }
      }
      auto result = (*session)->Run({}, [&](ByteSpan checkpoint, const train::EpochMetrics&) {
        out.checkpoints.emplace_back(checkpoint.begin(), checkpoint.end());
        return Status::Ok();
      });
      out.failure = (*session)->failure();
      out.payload_bytes = cluster.groups[r]->payload_bytes_sent();
      if (!result.ok()) {
        out.status = result.status();
        return;
      }
      out.result = std::move(*result);
    });
  }
  for (auto& t : threads) t.join();
  return outcomes;
}

// Two ranks started from checkpoints they must refuse: each fails; whichever refuses first
// breaks the group, so the other may fail on that instead, but one names the checkpoint.
void ExpectBothFailOneOnItsCheckpoint(const std::vector<RankOutcome>& outcomes) {
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_FALSE(outcomes[0].status.ok());
  EXPECT_FALSE(outcomes[1].status.ok());
  EXPECT_TRUE(outcomes[0].status.message().find("checkpoint") != std::string::npos ||
              outcomes[1].status.message().find("checkpoint") != std::string::npos)
      << outcomes[0].status.ToString() << " / " << outcomes[1].status.ToString();
}

TEST(DataParallelTrainingTest, TwoNodesEndWithTheSameModelAndLearnAsOneNodeDoes) {
  testing::SimNodes nodes;
  const Records all = Learnable(1024, 5);
  const std::string recipe = ScriptedRecipe({});
  const train::TrainingOptions options = Options(3, 32);
  auto outcomes = TrainTogether(nodes, {Shard(all, 0, 512), Shard(all, 512, 1024)}, options,
                                {recipe});
  ASSERT_EQ(outcomes.size(), 2u);
  for (const RankOutcome& o : outcomes) ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  // Synchronous: every step ends with the same model on every node, bit for bit.
  EXPECT_EQ(outcomes[0].result.model, outcomes[1].result.model);
  ASSERT_EQ(outcomes[0].result.epochs.size(), 3u);
  // The epoch metrics are over both shards' validation splits, the same on both nodes.
  const train::EpochMetrics& last = outcomes[0].result.epochs.back();
  ASSERT_TRUE(last.has_validation);
  EXPECT_EQ(last.validation.example_count, 51u + 51u);  // floor(0.1 × 512) per node
  EXPECT_EQ(last.validation.confusion, outcomes[1].result.epochs.back().validation.confusion);
  EXPECT_EQ(last.step, 3u * ((512 - 51 + 15) / 16));
  EXPECT_EQ(last.samples_seen, last.step * 32);

  // The same job on one node over all the data learns as well.
  auto alone = train::TrainingSession::Create(all.data(), ToBytes(recipe), options);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  auto single = (*alone)->Run();
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  const double single_accuracy = single->epochs.back().validation.accuracy;
  std::printf("validation accuracy: 2 nodes %.4f, 1 node %.4f\n", last.validation.accuracy,
              single_accuracy);
  EXPECT_GT(last.validation.accuracy, 0.9);
  EXPECT_GT(single_accuracy, 0.9);
}

// With one rank the data-parallel step (contribution × batch, sum, ÷ global batch, the
// optimizer over the whole shard) is the single-node step, bit for bit, when every batch is
// full (the single node's last short batch is the one difference: data-parallel batches wrap).
TEST(DataParallelTrainingTest, OneRankIsTheSingleNodeBitForBit) {
  testing::SimNodes nodes;
  const Records all = Learnable(320, 9);
  const std::string recipe = ScriptedRecipe({});
  train::TrainingOptions options = Options(2, 32);
  options.validation_fraction = 0.1;  // 32 held out, 288 = 9 full batches
  auto outcomes = TrainTogether(nodes, {all}, options, {recipe});
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_TRUE(outcomes[0].status.ok()) << outcomes[0].status.ToString();
  auto alone = train::TrainingSession::Create(all.data(), ToBytes(recipe), options);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  auto single = (*alone)->Run();
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ(outcomes[0].result.model, single->model);
  EXPECT_EQ(outcomes[0].result.epochs.back().validation.confusion,
            single->epochs.back().validation.confusion);
}

// The sharded parameter server's traffic: per step a node sends (N−1)/N of the gradients and
// (N−1)/N of the parameters (V = parameters + buffers), plus the start and each epoch's end.
TEST(DataParallelTrainingTest, ANodeSendsTwoShardsWorthOfValuesPerStep) {
  testing::SimNodes nodes;
  const Records all = Learnable(960, 3);
  const train::TrainingOptions options = Options(1, 48);
  std::vector<Records> shards = {Shard(all, 0, 320), Shard(all, 320, 640), Shard(all, 640, 960)};
  auto outcomes = TrainTogether(nodes, shards, options, {ScriptedRecipe({})});
  ASSERT_EQ(outcomes.size(), 3u);
  const uint64_t values = 4 * 64 + 4 + 1;  // weights, biases, one buffer
  for (uint32_t r = 0; r < 3; ++r) {
    ASSERT_TRUE(outcomes[r].status.ok()) << outcomes[r].status.ToString();
    const uint64_t steps = outcomes[r].result.epochs.back().step;
    const uint64_t shard = values * (r + 1) / 3 - values * r / 3;
    // Reduce-scatter: every other shard once; all-gather: its own shard to each of 2 peers;
    // the start: its own shard to each peer once more.
    const uint64_t floats = steps * ((values - shard) + 2 * shard) + 2 * shard;
    const uint64_t bytes = outcomes[r].payload_bytes;
    EXPECT_GE(bytes, floats * 4);
    EXPECT_LE(bytes, floats * 4 + 4096) << "control data beyond shard sizes and metrics";
    const double ideal = 2.0 * static_cast<double>(values) * 4 * 2 / 3;
    std::printf("rank %u: %.1f bytes per step, ideal 2·V·4·(N−1)/N = %.1f\n", r,
                static_cast<double>(bytes) / static_cast<double>(steps), ideal);
  }
}

TEST(DataParallelTrainingTest, ANodeWhoseWorkerCrashesStopsEveryNodePromptly) {
  testing::SimNodes nodes;
  const Records all = Learnable(1024, 5);
  auto start = std::chrono::steady_clock::now();
  auto outcomes =
      TrainTogether(nodes, {Shard(all, 0, 512), Shard(all, 512, 1024)}, Options(3, 32),
                    {ScriptedRecipe({}), ScriptedRecipe({"fail_at_step 5 crash"})});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_FALSE(outcomes[1].status.ok());
  EXPECT_EQ(outcomes[1].failure, train::FailureCategory::kCrashed);
  // The healthy node does not wait for the exchange timeout (120 s) nor train on alone.
  EXPECT_FALSE(outcomes[0].status.ok());
  EXPECT_EQ(outcomes[0].failure, train::FailureCategory::kInternal)
      << "the healthy node's own worker did not fail: the runtime's group did";
  EXPECT_LT(seconds, 60) << "liveness: the healthy node waited for its timeout";
  std::printf("healthy node: %s (after %.1f s)\n", outcomes[0].status.ToString().c_str(), seconds);
}

TEST(DataParallelTrainingTest, AGlobalBatchSmallerThanTheNodesIsRefusedWithTheReason) {
  testing::SimNodes nodes;
  const Records all = Learnable(64, 5);
  auto outcomes = TrainTogether(nodes, {Shard(all, 0, 32), Shard(all, 32, 64)}, Options(1, 1),
                                {ScriptedRecipe({})});
  ASSERT_EQ(outcomes.size(), 2u);
  for (const RankOutcome& o : outcomes) {
    ASSERT_FALSE(o.status.ok());
    EXPECT_EQ(o.status.code(), StatusCode::kInvalidArgument) << o.status.ToString();
    EXPECT_NE(o.status.message().find("smaller than the 2 nodes"), std::string::npos)
        << o.status.ToString();
  }
}

// Every node seals a checkpoint at each epoch's end; a job whose nodes all restart resumes from
// them and ends with the model of a run that never stopped.
TEST(DataParallelTrainingTest, AllNodesRestartedResumeFromTheirCheckpointsExactly) {
  testing::SimNodes nodes;
  const Records all = Learnable(512, 13);
  const std::vector<Records> shards = {Shard(all, 0, 256), Shard(all, 256, 512)};
  const std::string recipe = ScriptedRecipe({});
  auto whole = TrainTogether(nodes, shards, Options(3, 32), {recipe});
  ASSERT_TRUE(whole[0].status.ok() && whole[1].status.ok()) << whole[0].status.ToString();
  ASSERT_EQ(whole[0].checkpoints.size(), 3u);
  // "Restart" after epoch 1: new groups, new workers, each node from its own checkpoint.
  auto resumed = TrainTogether(nodes, shards, Options(3, 32), {recipe},
                               {whole[0].checkpoints[0], whole[1].checkpoints[0]});
  ASSERT_TRUE(resumed[0].status.ok()) << resumed[0].status.ToString();
  ASSERT_TRUE(resumed[1].status.ok()) << resumed[1].status.ToString();
  EXPECT_EQ(resumed[0].result.model, whole[0].result.model);
  EXPECT_EQ(resumed[1].result.model, whole[1].result.model);
  // Checkpoints are per rank: rank 1's does not restore rank 0.
  auto swapped = TrainTogether(nodes, shards, Options(3, 32), {recipe},
                               {whole[1].checkpoints[0], whole[0].checkpoints[0]});
  // Each refuses the other's checkpoint.
  ExpectBothFailOneOnItsCheckpoint(swapped);
}

// Asynchronous mode (staleness S): the worker computes the next gradients while the previous
// steps' exchange runs on another thread. Every rank still ends with the same model, it learns,
// its schedule is fixed by S (so two runs agree bit for bit), and it is not the synchronous run.
TEST(DataParallelTrainingTest, AsynchronousNodesEndWithTheSameModelLearnAndRepeatExactly) {
  testing::SimNodes nodes;
  const Records all = Learnable(1024, 5);
  const std::vector<Records> shards = {Shard(all, 0, 512), Shard(all, 512, 1024)};
  const std::string recipe = ScriptedRecipe({});
  train::TrainingOptions synchronous = Options(3, 32);
  auto sync = TrainTogether(nodes, shards, synchronous, {recipe});
  ASSERT_TRUE(sync[0].status.ok()) << sync[0].status.ToString();
  std::vector<train::TrainedModel> models;
  for (uint32_t staleness : {1u, 1u, 2u}) {
    train::TrainingOptions options = synchronous;
    options.staleness = staleness;
    auto outcomes = TrainTogether(nodes, shards, options, {recipe});
    ASSERT_EQ(outcomes.size(), 2u);
    for (const RankOutcome& o : outcomes) ASSERT_TRUE(o.status.ok()) << o.status.ToString();
    EXPECT_EQ(outcomes[0].result.model, outcomes[1].result.model) << "staleness " << staleness;
    ASSERT_EQ(outcomes[0].result.epochs.size(), 3u);
    const train::EpochMetrics& last = outcomes[0].result.epochs.back();
    EXPECT_EQ(last.step, 3u * ((512 - 51 + 15) / 16));
    EXPECT_EQ(last.samples_seen, last.step * 32);
    ASSERT_TRUE(last.has_validation);
    EXPECT_EQ(last.validation.confusion, outcomes[1].result.epochs.back().validation.confusion);
    std::printf("staleness %u: validation accuracy %.4f (synchronous %.4f)\n", staleness,
                last.validation.accuracy, sync[0].result.epochs.back().validation.accuracy);
    EXPECT_GT(last.validation.accuracy, 0.9) << "4 classes: chance is 0.25";
    // Stale gradients change the updates: not the synchronous model.
    EXPECT_NE(outcomes[0].result.model, sync[0].result.model) << "staleness " << staleness;
    models.push_back(outcomes[0].result.model);
  }
  EXPECT_EQ(models[0], models[1]) << "two runs with the same seed and staleness differ";
  EXPECT_NE(models[0], models[2]) << "staleness 2 ran staleness 1's schedule";
}

// The pipeline's machinery (gradient slots, parameter snapshots, the exchange on its own thread)
// does the synchronous arithmetic: with a drain after every step no gradient is ever stale, and
// the asynchronous run is the synchronous one, bit for bit.
TEST(DataParallelTrainingTest, AsynchronousWithADrainEveryStepIsTheSynchronousRunBitForBit) {
  testing::SimNodes nodes;
  const Records all = Learnable(512, 21);
  const std::vector<Records> shards = {Shard(all, 0, 256), Shard(all, 256, 512)};
  const std::string recipe = ScriptedRecipe({});
  train::TrainingOptions synchronous = Options(2, 32);
  synchronous.checkpoint_every_steps = 1;
  train::TrainingOptions asynchronous = synchronous;
  asynchronous.staleness = 1;
  auto sync = TrainTogether(nodes, shards, synchronous, {recipe});
  auto async = TrainTogether(nodes, shards, asynchronous, {recipe});
  for (uint32_t r = 0; r < 2; ++r) {
    ASSERT_TRUE(sync[r].status.ok()) << sync[r].status.ToString();
    ASSERT_TRUE(async[r].status.ok()) << async[r].status.ToString();
    EXPECT_EQ(async[r].result.model, sync[r].result.model) << "rank " << r;
    EXPECT_EQ(async[r].checkpoints.size(), sync[r].checkpoints.size());
  }
}

// Asynchronous checkpoints are taken where the pipeline is drained (every checkpoint_every_steps
// steps, and at each epoch's end); nodes restarted from one, mid-epoch or at an epoch's end, end
// with the model of the run that never stopped. A synchronous checkpoint does not restore into
// an asynchronous job.
TEST(DataParallelTrainingTest, AsynchronousNodesResumeFromTheirCheckpointsExactly) {
  testing::SimNodes nodes;
  const Records all = Learnable(512, 13);
  const std::vector<Records> shards = {Shard(all, 0, 256), Shard(all, 256, 512)};
  const std::string recipe = ScriptedRecipe({});
  train::TrainingOptions options = Options(3, 32);
  options.staleness = 1;
  options.checkpoint_every_steps = 5;
  auto whole = TrainTogether(nodes, shards, options, {recipe});
  ASSERT_TRUE(whole[0].status.ok() && whole[1].status.ok()) << whole[0].status.ToString();
  ASSERT_EQ(whole[0].result.model, whole[1].result.model);
  // 15 steps per epoch (231 training samples per node, 16 per step): checkpoints at steps 5, 10,
  // 15 (the epoch's end), 20, 25, 30, 35, 40, 45.
  ASSERT_EQ(whole[0].checkpoints.size(), 9u);
  for (size_t at : {size_t{3}, size_t{2}}) {  // step 20 (mid-epoch), step 15 (an epoch's end)
    auto step = train::CheckpointStep(whole[0].checkpoints[at]);
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    EXPECT_EQ(*step, 5u * (at + 1));
    auto resumed = TrainTogether(nodes, shards, options, {recipe},
                                 {whole[0].checkpoints[at], whole[1].checkpoints[at]});
    ASSERT_TRUE(resumed[0].status.ok()) << resumed[0].status.ToString();
    ASSERT_TRUE(resumed[1].status.ok()) << resumed[1].status.ToString();
    EXPECT_EQ(resumed[0].result.model, whole[0].result.model) << "from step " << *step;
    EXPECT_EQ(resumed[1].result.model, whole[1].result.model) << "from step " << *step;
  }
  // A synchronous run's checkpoint holds another schedule's history: refused.
  train::TrainingOptions synchronous = options;
  synchronous.staleness = 0;
  auto sync = TrainTogether(nodes, shards, synchronous, {recipe});
  ASSERT_TRUE(sync[0].status.ok()) << sync[0].status.ToString();
  auto mixed = TrainTogether(nodes, shards, options, {recipe},
                             {sync[0].checkpoints[3], sync[1].checkpoints[3]});
  ExpectBothFailOneOnItsCheckpoint(mixed);
}

TEST(DataParallelTrainingTest, AnAsynchronousNodeWhoseWorkerCrashesStopsEveryNodePromptly) {
  testing::SimNodes nodes;
  const Records all = Learnable(1024, 5);
  train::TrainingOptions options = Options(3, 32);
  options.staleness = 1;
  auto start = std::chrono::steady_clock::now();
  auto outcomes = TrainTogether(nodes, {Shard(all, 0, 512), Shard(all, 512, 1024)}, options,
                                {ScriptedRecipe({}), ScriptedRecipe({"fail_at_step 5 crash"})});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_FALSE(outcomes[1].status.ok());
  EXPECT_EQ(outcomes[1].failure, train::FailureCategory::kCrashed);
  EXPECT_FALSE(outcomes[0].status.ok()) << "the healthy node trained on alone";
  EXPECT_EQ(outcomes[0].failure, train::FailureCategory::kInternal)
      << "the healthy node's own worker did not fail: the runtime's group did";
  EXPECT_LT(seconds, 60) << "liveness: the healthy node waited for its timeout";
  std::printf("healthy node: %s (after %.1f s)\n", outcomes[0].status.ToString().c_str(), seconds);
}

TEST(DataParallelTrainingTest, InvalidStalenessIsRefusedWithTheReason) {
  const Records all = Learnable(64, 5);
  train::TrainingOptions alone = Options(1, 8);
  alone.staleness = 1;
  auto session = train::TrainingSession::Create(all.data(), ToBytes(ScriptedRecipe({})), alone);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(session.status().message().find("on one node set staleness to 0"), std::string::npos)
      << session.status().ToString();

  testing::SimNodes nodes;
  train::TrainingOptions too_stale = Options(1, 8);
  too_stale.staleness = train::kMaxStaleness + 1;
  auto outcomes = TrainTogether(nodes, {Shard(all, 0, 32), Shard(all, 32, 64)}, too_stale,
                                {ScriptedRecipe({})});
  ASSERT_EQ(outcomes.size(), 2u);
  for (const RankOutcome& o : outcomes) {
    ASSERT_FALSE(o.status.ok());
    EXPECT_EQ(o.status.code(), StatusCode::kInvalidArgument) << o.status.ToString();
    EXPECT_NE(o.status.message().find("above the maximum of 4"), std::string::npos)
        << o.status.ToString();
  }
}

}  // namespace
}  // namespace chiron::cluster
