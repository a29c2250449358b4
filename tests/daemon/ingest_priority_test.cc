// IngestPriority: while MOs wait for their commit a claimer claims once per floor period;
// otherwise it never yields.
#include "daemon/ingest_priority.h"

#include <gtest/gtest.h>

namespace donagate::daemon {
namespace {

using std::chrono::milliseconds;
using Clock = IngestPriority::Clock;

TEST(IngestPriorityTest, NeverYieldsWhenIngestIsIdleOrNoProbeIsGiven) {
  IngestPriority idle([] { return false; }, milliseconds(1000));
  IngestPriority none(nullptr, milliseconds(1000));
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(idle.ShouldYield(t0 + milliseconds(i)));
    EXPECT_FALSE(none.ShouldYield(t0 + milliseconds(i)));
  }
}

TEST(IngestPriorityTest, WhileBusyOneClaimPerFloorPeriod) {
  bool busy = true;
  IngestPriority p([&] { return busy; }, milliseconds(1000));
  const Clock::time_point t0 = Clock::now();
  EXPECT_FALSE(p.ShouldYield(t0));                       // the floor: one round goes ahead
  EXPECT_TRUE(p.ShouldYield(t0 + milliseconds(1)));
  EXPECT_TRUE(p.ShouldYield(t0 + milliseconds(999)));
  EXPECT_FALSE(p.ShouldYield(t0 + milliseconds(1000)));  // next period
  EXPECT_TRUE(p.ShouldYield(t0 + milliseconds(1500)));
  busy = false;                                          // the burst is over: claim freely
  EXPECT_FALSE(p.ShouldYield(t0 + milliseconds(1501)));
  EXPECT_FALSE(p.ShouldYield(t0 + milliseconds(1502)));
}

}  // namespace
}  // namespace donagate::daemon
