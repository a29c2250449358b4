#include "daemon/token_bucket.h"

#include <gtest/gtest.h>

namespace donagate::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

TEST(TokenBucketTest, BurstThenPacedAtRate) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(10.0, 3.0, t0);
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  auto wait = bucket.TryTake(t0);
  EXPECT_GT(wait, 99ms);
  EXPECT_LE(wait, 100ms);
  // Half a token later it is still refused, with the remaining half period to wait.
  wait = bucket.TryTake(t0 + 50ms);
  EXPECT_GT(wait, 49ms);
  EXPECT_LE(wait, 50ms);
  EXPECT_EQ(bucket.TryTake(t0 + 100ms), Clock::duration::zero());
  EXPECT_GT(bucket.TryTake(t0 + 100ms), Clock::duration::zero());
}

TEST(TokenBucketTest, SustainedRateOverTenSecondsOfSimulatedTime) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(50.0, TokenBucket::DefaultBurst(50.0), t0);
  int taken = 0;
  for (auto t = t0; t < t0 + 10s; t += 1ms) {
    while (bucket.TryTake(t) == Clock::duration::zero()) ++taken;
  }
  // 500 from the rate plus at most the initial burst of 5.
  EXPECT_GE(taken, 499);
  EXPECT_LE(taken, 505);
}

TEST(TokenBucketTest, IdleTimeDoesNotAccumulateBeyondBurst) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(100.0, TokenBucket::DefaultBurst(100.0), t0);
  int taken = 0;
  while (bucket.TryTake(t0 + 1h) == Clock::duration::zero()) ++taken;
  EXPECT_EQ(taken, 10);
}

TEST(TokenBucketTest, ZeroRateIsUnlimited) {
  TokenBucket bucket(0.0, 1.0);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(bucket.TryTake(), Clock::duration::zero());
}

TEST(TokenBucketTest, ClockGoingBackwardsGrantsNothingExtra) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(1.0, 1.0, t0);
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  EXPECT_GT(bucket.TryTake(t0 - 10s), Clock::duration::zero());
}

}  // namespace
}  // namespace donagate::daemon

namespace donagate::daemon {
namespace {

using namespace std::chrono_literals;

TEST(SubmitPacerTest, PauseBlocksUntilItEndsThenPacingResumes) {
  const auto t0 = SubmitPacer::Clock::time_point{} + 1h;
  SubmitPacer pacer(10.0, t0);
  EXPECT_EQ(pacer.Acquire(t0), SubmitPacer::Clock::duration::zero());
  pacer.PauseUntil(t0 + 60s);
  EXPECT_TRUE(pacer.Paused(t0 + 59s));
  EXPECT_EQ(pacer.Acquire(t0 + 30s), 30s);
  pacer.PauseUntil(t0 + 10s);  // a shorter pause does not cut the longer one
  EXPECT_EQ(pacer.Acquire(t0 + 50s), 10s);
  EXPECT_FALSE(pacer.Paused(t0 + 60s));
  EXPECT_EQ(pacer.Acquire(t0 + 60s), SubmitPacer::Clock::duration::zero());
}

}  // namespace
}  // namespace donagate::daemon
