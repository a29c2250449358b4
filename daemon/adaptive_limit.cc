#include "daemon/adaptive_limit.h"

#include <algorithm>
#include <cmath>

namespace donagate::daemon {

AdaptiveLimit::AdaptiveLimit(Options options) : options_(options) {
  options_.min = std::max<int64_t>(1, options_.min);
  options_.max = std::max(options_.min, options_.max);
  limit_ = std::clamp(options_.initial, options_.min, options_.max);
}

void AdaptiveLimit::OnSample(Clock::duration latency) {
  sum_us_ += static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
  ++samples_;
}

int64_t AdaptiveLimit::Update(Clock::time_point now, bool saturated_now) {
  if (saturated_now) saturated_ = true;
  if (now < next_update_ || samples_ == 0) return limit_;
  next_update_ = now + options_.period;
  const bool saturated = saturated_;
  saturated_ = false;
  const double mean_us = sum_us_ / static_cast<double>(samples_);
  sum_us_ = 0;
  samples_ = 0;
  // The baseline is the lowest latency seen, except at the minimum limit: with almost nothing
  // of ours in flight, what the backend answers in is its own latency, not a queue we built.
  // So a backend that became slower for good costs one descent to the minimum (a few seconds),
  // after which its new latency is the baseline; a queue we cause never raises the baseline
  // (raising it as latency rises would let the limit ratchet up without bound).
  if (baseline_us_ < 0 || mean_us < baseline_us_ || limit_ == options_.min) baseline_us_ = mean_us;
  const double slack_us = static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(options_.slack).count());
  if (mean_us > options_.tolerance * baseline_us_ + slack_us) {
    limit_ = std::max(options_.min, static_cast<int64_t>(std::floor(static_cast<double>(limit_) * 0.9)));
  } else if (saturated) {
    limit_ = std::min(options_.max, limit_ + std::max<int64_t>(1, limit_ / 4));
  }
  return limit_;
}

}  // namespace donagate::daemon
