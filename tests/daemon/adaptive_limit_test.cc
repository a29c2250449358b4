// AdaptiveLimit: grows while saturated at a flat latency, backs off when latency climbs,
// stays within its bounds, and learns a backend that became slower for good.
#include "daemon/adaptive_limit.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace donagate::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = AdaptiveLimit::Clock;

// A backend with a fixed latency that starts queueing above `capacity` requests in flight.
std::chrono::microseconds SimulatedLatency(int64_t in_flight, std::chrono::microseconds base,
                                           int64_t capacity) {
  if (in_flight <= capacity) return base;
  return std::chrono::microseconds(base.count() * in_flight / capacity);
}

// Runs `periods` periods with `in_flight` = the limit (saturated), returns the final limit.
int64_t RunSaturated(AdaptiveLimit& limit, Clock::time_point& now, int periods, std::chrono::microseconds base,
            int64_t capacity, bool saturated = true) {
  for (int i = 0; i < periods; ++i) {
    for (int s = 0; s < 10; ++s) limit.OnSample(SimulatedLatency(limit.limit(), base, capacity));
    now += 100ms;
    limit.Update(now, saturated);
  }
  return limit.limit();
}

TEST(AdaptiveLimitTest, A200MsBackendWithRoomGrowsTheLimitToTheConfiguredMaximumWithinSeconds) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 32});
  Clock::time_point now{};
  // 200 ms, no queueing below 10,000 in flight: 32 in flight would be 160 charges/s.
  EXPECT_EQ(RunSaturated(limit, now, 20, 200000us, 10000), 1000);
  // At 1,000 in flight a 200 ms backend gives 5,000 charges/s.
}

TEST(AdaptiveLimitTest, ABackendThatQueuesAboveItsCapacityKeepsTheLimitNearThatCapacity) {
  AdaptiveLimit limit({.min = 8, .max = 5000, .initial = 32});
  Clock::time_point now{};
  RunSaturated(limit, now, 100, 20000us, 300);
  // From then on the limit oscillates around the point where the backend's queue doubles its
  // latency (2 × 20 ms + 5 ms at 675 in flight), never ratcheting up past one growth step above
  // it, never falling below the backend's capacity (the rate stays at capacity / latency).
  int64_t lowest = limit.limit(), highest = limit.limit();
  for (int i = 0; i < 500; ++i) {
    RunSaturated(limit, now, 1, 20000us, 300);
    lowest = std::min(lowest, limit.limit());
    highest = std::max(highest, limit.limit());
  }
  EXPECT_GE(lowest, 300);
  EXPECT_LE(highest, 675 * 5 / 4 + 1) << "far past the knee every request only waits longer";
}

TEST(AdaptiveLimitTest, WithoutWaitingWorkTheLimitDoesNotGrow) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 32});
  Clock::time_point now{};
  EXPECT_EQ(RunSaturated(limit, now, 50, 1000us, 10000, /*saturated=*/false), 32);
}

TEST(AdaptiveLimitTest, ALatencyJumpShrinksTheLimitButNeverBelowTheMinimum) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 400});
  Clock::time_point now{};
  RunSaturated(limit, now, 3, 10000us, 100000);
  const int64_t before = limit.limit();
  for (int i = 0; i < 3; ++i) {
    limit.OnSample(100ms);  // ten times the baseline: the backend queues
    now += 100ms;
    limit.Update(now, true);
  }
  EXPECT_LT(limit.limit(), before);
  for (int i = 0; i < 200; ++i) {
    limit.OnSample(1s);
    now += 100ms;
    limit.Update(now, true);
  }
  EXPECT_GE(limit.limit(), 8);
}

TEST(AdaptiveLimitTest, ABackendThatBecameSlowerForGoodIsLearnedAndTheLimitGrowsAgain) {
  AdaptiveLimit limit({.min = 8, .max = 2000, .initial = 64});
  Clock::time_point now{};
  RunSaturated(limit, now, 10, 5000us, 100000);
  // The operator's API now takes 50 ms for everyone: at first a gradient, then the new normal.
  RunSaturated(limit, now, 600, 50000us, 100000);
  EXPECT_GT(limit.baseline(), 20ms);
  EXPECT_EQ(limit.limit(), 2000);
}

TEST(AdaptiveLimitTest, UpdatesMoreOftenThanThePeriodOrWithoutSamplesChangeNothing) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 32});
  Clock::time_point now{};
  limit.OnSample(1ms);
  now += 100ms;
  EXPECT_EQ(limit.Update(now, true), 40);
  limit.OnSample(1ms);
  EXPECT_EQ(limit.Update(now + 10ms, true), 40) << "within the period";
  EXPECT_EQ(limit.Update(now + 200ms, true), 50);
  EXPECT_EQ(limit.Update(now + 400ms, true), 50) << "no samples";
}

// The charging lane refills its slots right after recording a batch of outcomes, so at the
// instant it updates, half of them may be free. What counts is whether the limit held work back
// at any moment of the period (a 200 ms backend took 30 s to reach 187 in flight when only the
// instant counted).
TEST(AdaptiveLimitTest, SaturationNotedDuringThePeriodCountsThoughTheUpdateInstantLooksIdle) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 32});
  Clock::time_point now{};
  for (int period = 0; period < 20; ++period) {
    for (int s = 0; s < 10; ++s) {
      limit.OnSample(200ms);
      if (s == 5) limit.NoteSaturated();  // a start found every slot busy, work waiting
    }
    now += 100ms;
    limit.Update(now, /*saturated_now=*/false);
  }
  EXPECT_EQ(limit.limit(), 1000) << "32 -> 1,000 takes 16 periods of 25 % growth: 1.6 s";
}

TEST(AdaptiveLimitTest, ASaturatedPeriodDoesNotCarryOverIntoTheNextOne) {
  AdaptiveLimit limit({.min = 8, .max = 1000, .initial = 32});
  Clock::time_point now{};
  limit.OnSample(10ms);
  limit.NoteSaturated();
  now += 100ms;
  EXPECT_EQ(limit.Update(now), 40);
  limit.OnSample(10ms);
  now += 100ms;
  EXPECT_EQ(limit.Update(now), 40) << "nothing held back in this period";
  limit.NoteSaturated();  // within the period but before any sample: kept for the next update
  now += 100ms;
  EXPECT_EQ(limit.Update(now), 40) << "no samples";
  limit.OnSample(10ms);
  EXPECT_EQ(limit.Update(now + 1ms), 50);
}

}  // namespace
}  // namespace donagate::daemon
