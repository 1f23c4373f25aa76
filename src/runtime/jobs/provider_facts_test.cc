// ProviderFacts: the provider's view changes only at runtime-chosen moments. Every recipe-chosen
// quantity (end time, failure, epochs, memory) is checked to be invisible before the reveal time
// and coarse after it.
#include "runtime/jobs/provider_facts.h"

#include <gtest/gtest.h>

namespace chiron::jobs {
namespace {

JobRecord Started(int64_t started, uint64_t budget) {
  JobRecord r;
  r.state = JobState::kRunning;
  r.started_unix = started;
  r.budget_seconds = budget;
  r.attempts = 1;
  return r;
}

TEST(ProviderFactsTest, QueuedAndCancelledBeforeAnyRecipeCodeRan) {
  JobRecord r;
  EXPECT_EQ(ProviderFacts(r, 1000).state, static_cast<int>(JobState::kQueued));
  r.state = JobState::kCancelled;
  EXPECT_EQ(ProviderFacts(r, 1000).state, static_cast<int>(JobState::kCancelled));
}

TEST(ProviderFactsTest, AnEarlyEndIsHiddenUntilTheBudgetRunsOut) {
  // Two jobs that ended at different moments (the recipe's choice) look the same until the
  // reveal time, and the same after it.
  JobRecord early = Started(1000, 3600);
  early.state = JobState::kSucceeded;
  early.finished_unix = 1010;
  early.epochs_done = 3;
  JobRecord late = early;
  late.finished_unix = 4000;
  for (int64_t now : {1005, 1011, 2000, 3999, 4599}) {
    ProviderJobFacts a = ProviderFacts(early, now);
    ProviderJobFacts b = ProviderFacts(late.finished_unix <= now ? late : Started(1000, 3600),
                                       now);
    EXPECT_EQ(a.state, static_cast<int>(JobState::kRunning)) << now;
    EXPECT_EQ(a.state, b.state) << now;
    EXPECT_EQ(a.elapsed_minutes, b.elapsed_minutes) << now;
    EXPECT_EQ(a.epochs_done, 0u);
    EXPECT_EQ(a.failure, 0);
    EXPECT_EQ(a.peak_memory_bucket_log2, 0u);
  }
  ProviderJobFacts a = ProviderFacts(early, 4600);
  ProviderJobFacts b = ProviderFacts(late, 4600);
  EXPECT_EQ(a.state, static_cast<int>(JobState::kSucceeded));
  EXPECT_EQ(a.epochs_done, 3u);
  EXPECT_EQ(a.elapsed_minutes, 60u);  // the budget, not the 10 s the job took
  EXPECT_EQ(a.elapsed_minutes, b.elapsed_minutes);
  EXPECT_EQ(ProviderFacts(early, 100000).elapsed_minutes, 60u);
}

TEST(ProviderFactsTest, AnEndAfterTheBudgetIsShownAtTheEnd) {
  // Runs interrupted by restarts can end past started + budget: shown when they end.
  JobRecord r = Started(1000, 60);
  EXPECT_EQ(ProviderFacts(r, 5000).state, static_cast<int>(JobState::kRunning));
  r.state = JobState::kFailed;
  r.failure = 3;
  r.finished_unix = 5000;
  EXPECT_EQ(ProviderFacts(r, 4999).state, static_cast<int>(JobState::kRunning));
  EXPECT_EQ(ProviderFacts(r, 5000).state, static_cast<int>(JobState::kFailed));
  EXPECT_EQ(ProviderFacts(r, 5000).failure, 3);
}

TEST(ProviderFactsTest, DoneOnlyShowsNothingButTheEnd) {
  JobRecord r = Started(1000, 60);
  r.provider_view = ProviderView::kDoneOnly;
  r.state = JobState::kFailed;
  r.failure = 5;
  r.epochs_done = 7;
  r.peak_memory_log2 = 33;
  r.finished_unix = 1030;
  ProviderJobFacts facts = ProviderFacts(r, 2000);
  EXPECT_EQ(facts.state, kProviderStateEnded);
  EXPECT_EQ(facts.failure, 0);
  EXPECT_EQ(facts.epochs_done, 0u);
  EXPECT_EQ(facts.peak_memory_bucket_log2, 0u);
  EXPECT_EQ(facts.elapsed_minutes, 1u);
}

TEST(ProviderFactsTest, MemoryIsShownInPowersOfFourFrom256MiB) {
  EXPECT_EQ(CoarseMemoryBucketLog2(0), 0u);
  EXPECT_EQ(CoarseMemoryBucketLog2(20), 28u);
  EXPECT_EQ(CoarseMemoryBucketLog2(28), 28u);
  EXPECT_EQ(CoarseMemoryBucketLog2(29), 30u);
  EXPECT_EQ(CoarseMemoryBucketLog2(30), 30u);
  EXPECT_EQ(CoarseMemoryBucketLog2(31), 32u);
  JobRecord r = Started(1000, 60);
  r.state = JobState::kSucceeded;
  r.finished_unix = 1001;
  r.peak_memory_log2 = 29;
  EXPECT_EQ(ProviderFacts(r, 1060).peak_memory_bucket_log2, 30u);
}

TEST(ProviderFactsTest, RecordsOfEarlierBuildsAreShownAsThen) {
  JobRecord r;
  r.state = JobState::kSucceeded;
  r.attempts = 1;
  r.epochs_done = 2;
  r.elapsed_seconds = 600;
  EXPECT_EQ(ProviderFacts(r, 0).state, static_cast<int>(JobState::kSucceeded));
  EXPECT_EQ(ProviderFacts(r, 0).elapsed_minutes, 10u);
}

}  // namespace
}  // namespace chiron::jobs
