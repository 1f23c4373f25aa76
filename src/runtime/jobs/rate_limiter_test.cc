// The token bucket under a hand-driven clock: no sleeping, no timing flakiness.
#include "runtime/jobs/rate_limiter.h"

#include <gtest/gtest.h>

namespace chiron::jobs {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class RateLimiterTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now_{seconds(1000)};
  RateLimiter limiter_{[this] { return now_; }};
};

TEST_F(RateLimiterTest, BurstUpToTheLimitThenRefusedWithRetryTime) {
  // 60 per minute: a full bucket of 60, refilled at one per second.
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(limiter_.Take("m/a", 60, 10, "model 'm'").ok()) << i;
  Status refused = limiter_.Take("m/a", 60, 1, "model 'm'");
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("model 'm' allows 60 queries per minute"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("retry in 1 s"), std::string::npos) << refused.message();
  // Asking for 10 now means waiting 10 s.
  EXPECT_NE(limiter_.Take("m/a", 60, 10, "model 'm'").message().find("retry in 10 s"),
            std::string::npos);
  now_ += milliseconds(999);
  EXPECT_FALSE(limiter_.Take("m/a", 60, 1, "model 'm'").ok());
  now_ += milliseconds(1);
  EXPECT_TRUE(limiter_.Take("m/a", 60, 1, "model 'm'").ok());
  EXPECT_FALSE(limiter_.Take("m/a", 60, 1, "model 'm'").ok());
}

TEST_F(RateLimiterTest, ARefusalSaysHowLongToWaitInMillisecondsAndTheRetryThenPasses) {
  milliseconds retry_after(-1);
  ASSERT_TRUE(limiter_.Take("m/a", 120, 100, "model 'm'", &retry_after).ok());
  EXPECT_EQ(retry_after, milliseconds(0));
  // 20 tokens left, refilled at 2 per second: 21 more need 0.5 s.
  Status refused = limiter_.Take("m/a", 120, 21, "model 'm'", &retry_after);
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(retry_after, milliseconds(500));
  EXPECT_NE(refused.message().find("retry in 1 s"), std::string::npos) << refused.message();
  now_ += retry_after - milliseconds(1);
  EXPECT_FALSE(limiter_.Take("m/a", 120, 21, "model 'm'", &retry_after).ok());
  EXPECT_EQ(retry_after, milliseconds(1));  // never 0 for a request that can pass later
  now_ += retry_after;
  EXPECT_TRUE(limiter_.Take("m/a", 120, 21, "model 'm'", &retry_after).ok());
  EXPECT_EQ(retry_after, milliseconds(0));
  // Too large to ever pass: no wait helps, so none is given.
  EXPECT_FALSE(limiter_.Take("m/a", 120, 121, "model 'm'", &retry_after).ok());
  EXPECT_EQ(retry_after, milliseconds(0));
  // An unlimited model never refuses.
  EXPECT_TRUE(limiter_.Take("free", 0, 1000, "m", &retry_after).ok());
  EXPECT_EQ(retry_after, milliseconds(0));
}

TEST_F(RateLimiterTest, RefusedRequestsTakeNothingAndTheBucketCaps) {
  ASSERT_TRUE(limiter_.Take("k", 120, 120, "x").ok());
  now_ += seconds(5);  // 10 tokens back
  EXPECT_FALSE(limiter_.Take("k", 120, 11, "x").ok());
  EXPECT_TRUE(limiter_.Take("k", 120, 10, "x").ok());  // the refusal took nothing
  now_ += std::chrono::hours(5);                        // refill caps at the limit
  EXPECT_TRUE(limiter_.Take("k", 120, 120, "x").ok());
  EXPECT_FALSE(limiter_.Take("k", 120, 1, "x").ok());
}

TEST_F(RateLimiterTest, KeysAreIndependentAndZeroMeansUnlimited) {
  ASSERT_TRUE(limiter_.Take("m/owner", 5, 5, "m").ok());
  EXPECT_FALSE(limiter_.Take("m/owner", 5, 1, "m").ok());
  EXPECT_TRUE(limiter_.Take("m/grantee", 5, 5, "m").ok());  // its own bucket
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter_.Take("free", 0, 1000, "m").ok());
}

TEST_F(RateLimiterTest, ARequestLargerThanTheLimitCanNeverPass) {
  Status s = limiter_.Take("k", 10, 11, "model 'm'");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("send at most 10 per request"), std::string::npos) << s.message();
}

TEST_F(RateLimiterTest, ANewLimitStartsFullAndForgetDropsAModelsBuckets) {
  ASSERT_TRUE(limiter_.Take("m1/a", 10, 10, "m").ok());
  EXPECT_FALSE(limiter_.Take("m1/a", 10, 1, "m").ok());
  EXPECT_TRUE(limiter_.Take("m1/a", 20, 20, "m").ok());  // the owner changed the limit
  ASSERT_TRUE(limiter_.Take("m1/b", 10, 10, "m").ok());
  ASSERT_TRUE(limiter_.Take("m2/a", 10, 10, "m").ok());
  EXPECT_EQ(limiter_.bucket_count(), 3u);
  limiter_.Forget("m1/");
  EXPECT_EQ(limiter_.bucket_count(), 1u);
  EXPECT_TRUE(limiter_.Take("m1/b", 10, 10, "m").ok());  // a recreated model starts afresh
}

}  // namespace
}  // namespace chiron::jobs
