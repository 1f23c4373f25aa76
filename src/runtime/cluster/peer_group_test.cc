// Honest groups over real gRPC and real mutual RA-TLS (sim platform) on 127.0.0.1: exact values
// over many steps with 2 and 3 ranks, large simultaneous messages, bytes, Abort and timeouts.
#include "runtime/cluster/peer_group.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "runtime/cluster/cluster_test_support.h"

namespace chiron::cluster {
namespace {

using testing::BaseOptions;
using testing::Cluster;
using testing::Contains;
using testing::JoinCluster;
using testing::Local;
using testing::SimNodes;

// Value rank `from` sends to rank `to` at element i of step `step`: exact in float.
float Value(uint32_t from, uint32_t to, uint64_t step, size_t i) {
  return static_cast<float>((from * 7 + to * 3 + step * 11 + i) % 100003) - 50000.0f;
}

// Every rank sends `count(from, to)` floats to every other rank, `steps` times, and checks what
// it receives element by element.
void RunSteps(Cluster& cluster, uint64_t steps, size_t (*count)(uint32_t, uint32_t, uint64_t)) {
  const uint32_t size = static_cast<uint32_t>(cluster.groups.size());
  std::vector<std::thread> threads;
  for (uint32_t me = 0; me < size; ++me) {
    threads.emplace_back([&, me] {
      PeerGroup& group = *cluster.groups[me];
      for (uint64_t step = 1; step <= steps; ++step) {
        std::vector<std::vector<float>> out(size), in(size);
        std::vector<std::span<const float>> out_spans(size);
        std::vector<std::span<float>> in_spans(size);
        for (uint32_t j = 0; j < size; ++j) {
          if (j == me) continue;
          out[j].resize(count(me, j, step));
          for (size_t i = 0; i < out[j].size(); ++i) out[j][i] = Value(me, j, step, i);
          in[j].assign(count(j, me, step), -1.0f);
          out_spans[j] = out[j];
          in_spans[j] = in[j];
        }
        Status status = group.Exchange(step, 0, out_spans, in_spans);
        ASSERT_TRUE(status.ok()) << "rank " << me << " step " << step << ": " << status.ToString();
        for (uint32_t j = 0; j < size; ++j) {
          for (size_t i = 0; i < in[j].size(); ++i) {
            ASSERT_EQ(in[j][i], Value(j, me, step, i))
                << "rank " << me << " from " << j << " step " << step << " at " << i;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(PeerGroupTest, TwoRanksExchangeExactValuesOverManySteps) {
  SimNodes nodes;
  Cluster cluster = JoinCluster(nodes, 2);
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1]);
  EXPECT_EQ(cluster.groups[1]->rank(), 1u);
  EXPECT_EQ(cluster.groups[1]->size(), 2u);
  // Sizes vary per step and direction: empty, one frame, several frames with a partial last.
  RunSteps(cluster, 40, [](uint32_t from, uint32_t to, uint64_t step) -> size_t {
    const size_t sizes[] = {0, 1, 1000, 262144, 262145, 600001};
    return sizes[(step + from) % 6];
  });
  uint64_t payload = 0;
  for (uint64_t step = 1; step <= 40; ++step) {
    const size_t sizes[] = {0, 1, 1000, 262144, 262145, 600001};
    payload += sizes[step % 6] * 4;
  }
  EXPECT_EQ(cluster.groups[0]->payload_bytes_sent(), payload);
  EXPECT_GT(cluster.groups[0]->wire_bytes_sent(), payload);
  EXPECT_LT(cluster.groups[0]->wire_bytes_sent(), payload + payload / 100 + 40 * 4 * 100);
}

TEST(PeerGroupTest, ThreeRanksShardedExchangeAndBytes) {
  SimNodes nodes;
  Cluster cluster = JoinCluster(nodes, 3);
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1] && cluster.groups[2]);
  // Reduce-scatter shape: rank j owns a shard of its own size; every rank sends it that shard.
  RunSteps(cluster, 25, [](uint32_t from, uint32_t to, uint64_t step) -> size_t {
    return 20000 + to * 1001 + (step % 3) * 300000;
  });
  // Opaque bytes of different sizes both ways.
  std::vector<std::thread> threads;
  for (uint32_t me = 0; me < 3; ++me) {
    threads.emplace_back([&, me] {
      Bytes out(me * 100000 + 3, static_cast<uint8_t>(me + 1));
      std::vector<Bytes> in;
      Status status = cluster.groups[me]->ExchangeBytes(1000, 0, out, in);
      ASSERT_TRUE(status.ok()) << status.ToString();
      ASSERT_EQ(in.size(), 3u);
      for (uint32_t j = 0; j < 3; ++j) {
        EXPECT_EQ(in[j], Bytes(j * 100000 + 3, static_cast<uint8_t>(j + 1))) << me << " " << j;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(PeerGroupTest, LargeSimultaneousMessagesDoNotDeadlock) {
  SimNodes nodes;
  Cluster cluster = JoinCluster(nodes, 3);
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1] && cluster.groups[2]);
  // 16 MiB each way per pair, every rank writing at once: HTTP/2 windows are far smaller.
  RunSteps(cluster, 2, [](uint32_t, uint32_t, uint64_t) -> size_t { return 4 << 20; });
}

TEST(PeerGroupTest, SingleRankGroupAndStepOrder) {
  SimNodes nodes;
  auto listener = nodes.StartListener();
  PeerGroupOptions options = BaseOptions(nodes, 0, 1, {Local(listener->port())});
  auto group = PeerGroup::Join(*listener, options);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  std::vector<std::span<const float>> out(1);
  std::vector<std::span<float>> in(1);
  EXPECT_TRUE((*group)->Exchange(5, 1, out, in).ok());
  // (step, phase) must increase; a refused call leaves the group usable.
  EXPECT_EQ((*group)->Exchange(5, 1, out, in).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*group)->Exchange(4, 9, out, in).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*group)->Exchange(6, 0, out, std::span<const std::span<float>>()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE((*group)->Exchange(5, 2, out, in).ok());
  std::vector<Bytes> bytes;
  EXPECT_TRUE((*group)->ExchangeBytes(6, 0, Bytes{1, 2}, bytes).ok());
  EXPECT_EQ(bytes, std::vector<Bytes>{Bytes({1, 2})});
  // One group per job per listener.
  EXPECT_EQ(PeerGroup::Join(*listener, options).status().code(), StatusCode::kAlreadyExists);
}

TEST(PeerGroupTest, BadOptionsAreRefused) {
  SimNodes nodes;
  auto listener = nodes.StartListener();
  const PeerGroupOptions good = BaseOptions(nodes, 1, 2, {"127.0.0.1:1", "127.0.0.1:2"});
  struct Case {
    void (*edit)(PeerGroupOptions&);
    const char* field;
  } cases[] = {
      {[](PeerGroupOptions& o) { o.job_id = ""; }, "job_id"},
      {[](PeerGroupOptions& o) { o.job_id = std::string(129, 'j'); }, "job_id"},
      {[](PeerGroupOptions& o) { o.job_id = "a\nb"; }, "job_id"},
      {[](PeerGroupOptions& o) { o.size = 65; }, "size"},
      {[](PeerGroupOptions& o) { o.rank = 2; }, "rank"},
      {[](PeerGroupOptions& o) { o.addresses.pop_back(); }, "addresses"},
      {[](PeerGroupOptions& o) { o.addresses[0].clear(); }, "addresses"},
      {[](PeerGroupOptions& o) { o.identity = nullptr; }, "identity"},
      {[](PeerGroupOptions& o) { o.peer_verifier = nullptr; }, "peer_verifier"},
      {[](PeerGroupOptions& o) { o.exchange_timeout = std::chrono::milliseconds(0); }, "timeouts"},
      {[](PeerGroupOptions& o) { o.max_abs_value = std::numeric_limits<float>::infinity(); },
       "max_abs_value"},
      {[](PeerGroupOptions& o) { o.peer_keys = {Bytes{1}}; }, "peer_keys"},
      {[](PeerGroupOptions& o) { o.peer_keys = {Bytes{1}, Bytes{}}; }, "peer_keys"},
  };
  for (const Case& c : cases) {
    PeerGroupOptions options = good;
    c.edit(options);
    auto group = PeerGroup::Join(*listener, options);
    ASSERT_FALSE(group.ok()) << c.field;
    EXPECT_EQ(group.status().code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_TRUE(Contains(group.status().message(), c.field)) << group.status().message();
  }
}

TEST(PeerGroupTest, AbortUnblocksAnExchangeAndBreaksTheGroup) {
  SimNodes nodes;
  Cluster cluster = JoinCluster(nodes, 2);
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1]);
  std::vector<float> out(1000, 1.0f), in(1000);
  std::vector<std::span<const float>> out_spans = {{}, out};
  std::vector<std::span<float>> in_spans = {{}, in};
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cluster.groups[0]->Abort();
  });
  const auto start = std::chrono::steady_clock::now();
  Status status = cluster.groups[0]->Exchange(1, 0, out_spans, in_spans);  // rank 1 never sends
  aborter.join();
  EXPECT_EQ(status.code(), StatusCode::kAborted) << status.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(cluster.groups[0]->Exchange(2, 0, out_spans, in_spans).code(), StatusCode::kAborted);
  // The peer's stream was closed under it: it fails instead of hanging. Its step 1 may still
  // succeed (rank 0's frames for it were sent before the abort, and its own were accepted by the
  // transport before the close reached it); step 2 cannot.
  std::vector<std::span<const float>> out1 = {out, {}};
  std::vector<std::span<float>> in1 = {in, {}};
  Status peer = cluster.groups[1]->Exchange(1, 0, out1, in1);
  if (peer.ok()) peer = cluster.groups[1]->Exchange(2, 0, out1, in1);
  EXPECT_EQ(peer.code(), StatusCode::kUnavailable) << peer.ToString();
  EXPECT_TRUE(Contains(peer.message(), "rank 0")) << peer.ToString();
}

TEST(PeerGroupTest, ExchangeTimeoutNamesTheSilentRank) {
  SimNodes nodes;
  // Rank 0 gives up first; rank 1 then sees rank 0 leave.
  Cluster cluster = JoinCluster(nodes, 3, [](PeerGroupOptions& o) {
    o.exchange_timeout = std::chrono::milliseconds(o.rank == 0 ? 500 : 60000);
  });
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1] && cluster.groups[2]);
  // Ranks 0 and 1 exchange; rank 2 stays silent.
  std::vector<Status> statuses(2);
  std::vector<std::thread> threads;
  for (uint32_t me = 0; me < 2; ++me) {
    threads.emplace_back([&, me] {
      std::vector<float> out(10, 2.0f), in1(10), in2(10);
      std::vector<std::span<const float>> out_spans = {out, out, out};
      std::vector<std::span<float>> in_spans = {in1, in1, in2};
      in_spans[me] = {};
      statuses[me] = cluster.groups[me]->Exchange(1, 0, out_spans, in_spans);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(statuses[0].code(), StatusCode::kDeadlineExceeded) << statuses[0].ToString();
  EXPECT_TRUE(Contains(statuses[0].message(), "rank 2")) << statuses[0].ToString();
  EXPECT_EQ(statuses[1].code(), StatusCode::kUnavailable) << statuses[1].ToString();
  EXPECT_TRUE(Contains(statuses[1].message(), "rank 0")) << statuses[1].ToString();
}

TEST(PeerGroupTest, JoinTimesOutWhenALowerRankIsNotListening) {
  SimNodes nodes;
  auto listener = nodes.StartListener();
  auto unused = nodes.StartListener();
  const int dead_port = unused->port();
  unused.reset();  // nothing listens there any more
  PeerGroupOptions options =
      BaseOptions(nodes, 1, 2, {Local(dead_port), Local(listener->port())});
  options.connect_timeout = std::chrono::milliseconds(700);
  auto group = PeerGroup::Join(*listener, options);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), StatusCode::kDeadlineExceeded) << group.status().ToString();
  EXPECT_TRUE(Contains(group.status().message(), "rank 0")) << group.status().ToString();
  // The failed Join left no registration behind.
  options.addresses[0] = Local(listener->port());
  options.rank = 0;
  options.size = 1;
  options.addresses.resize(1);
  EXPECT_TRUE(PeerGroup::Join(*listener, options).ok());
}

TEST(PeerGroupTest, ListenerShutdownAbortsItsGroups) {
  SimNodes nodes;
  Cluster cluster = JoinCluster(nodes, 2);
  ASSERT_TRUE(cluster.groups[0] && cluster.groups[1]);
  std::vector<float> out(10), in(10);
  std::vector<std::span<const float>> out_spans = {{}, out};
  std::vector<std::span<float>> in_spans = {{}, in};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cluster.listeners[0]->Shutdown();
  });
  Status status = cluster.groups[0]->Exchange(1, 0, out_spans, in_spans);
  stopper.join();
  EXPECT_EQ(status.code(), StatusCode::kAborted) << status.ToString();
}

}  // namespace
}  // namespace chiron::cluster
