// AdaptiveLimit: how many charges to keep in flight, learned from the backend's latency.
//
// A fixed limit is wrong for every backend but one: 32 in flight cap a 200 ms operator API at
// 160 charges/s, while 1,000 in flight against a backend that queues internally only add
// latency. By Little's law the rate is in-flight / latency, so the limit grows while work is
// waiting and latency stays near the backend's unloaded latency, and shrinks when latency
// climbs (the backend queues: more in flight buys nothing). The shape follows TCP Vegas and
// Netflix's gradient limiters: multiplicative growth while saturated and flat, multiplicative
// decrease on a latency gradient.
//
// Contract:
//  - limit() is always within [min, max] given at construction.
//  - OnSample is fed every completed charge's latency. NoteSaturated is called whenever the
//    limit held back work that was waiting (every slot, or nearly, busy when a start or a claim
//    wanted more). Update is called periodically (every `period` at most once has an effect):
//    the limit grows if the period saw saturation at any moment, not only at the instant of
//    the update: the owner refills its slots right after recording a batch of outcomes, so at
//    the moment it updates, half of them may be free although the limit set the rate all
//    period long (docs/performance.md, "200 ms charging latency"). Without samples in a period
//    the limit does not move.
//  - Not thread-safe: one owner (a charging lane) calls all methods.
#pragma once

#include <chrono>
#include <cstdint>

namespace donagate::daemon {

class AdaptiveLimit {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int64_t min = 8;
    int64_t max = 1024;
    int64_t initial = 32;
    std::chrono::milliseconds period{100};
    // Latency above tolerance × baseline + slack counts as the backend queueing.
    double tolerance = 2.0;
    std::chrono::milliseconds slack{5};
  };
  explicit AdaptiveLimit(Options options);

  int64_t limit() const { return limit_; }
  // The backend's latency when not loaded by us: the lowest per-period mean latency, or the
  // latest one measured at the minimum limit.
  std::chrono::microseconds baseline() const { return std::chrono::microseconds(static_cast<int64_t>(baseline_us_)); }

  void OnSample(Clock::duration latency);
  void NoteSaturated() { saturated_ = true; }
  // `saturated_now` counts as a NoteSaturated(). Returns the (possibly new) limit.
  int64_t Update(Clock::time_point now, bool saturated_now = false);

 private:
  Options options_;
  int64_t limit_;
  double baseline_us_ = -1;  // < 0: no sample yet
  double sum_us_ = 0;
  int64_t samples_ = 0;
  bool saturated_ = false;  // since the last update that had an effect
  Clock::time_point next_update_{};
};

}  // namespace donagate::daemon
