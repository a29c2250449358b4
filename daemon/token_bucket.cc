#include "daemon/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace donagate::daemon {

TokenBucket::TokenBucket(double rate_per_second, double burst, Clock::time_point now)
    : rate_(rate_per_second), burst_(std::max(1.0, burst)), tokens_(burst_), last_(now) {}

double TokenBucket::DefaultBurst(double rate_per_second) {
  return std::max(1.0, std::floor(rate_per_second / 10.0));
}

void TokenBucket::Refill(Clock::time_point now) {
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

TokenBucket::Clock::duration TokenBucket::TryTake(Clock::time_point now) {
  if (unlimited()) return Clock::duration::zero();
  Refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return Clock::duration::zero();
  }
  const double missing_seconds = (1.0 - tokens_) / rate_;
  auto wait = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(missing_seconds));
  return std::max(wait, Clock::duration(1));
}

SubmitPacer::SubmitPacer(double tps, Clock::time_point now)
    : bucket_(tps, TokenBucket::DefaultBurst(tps), now) {}

SubmitPacer::Clock::duration SubmitPacer::Acquire(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (now < paused_until_) return paused_until_ - now;
  return bucket_.TryTake(now);
}

void SubmitPacer::PauseUntil(Clock::time_point until) {
  std::lock_guard lock(mu_);
  paused_until_ = std::max(paused_until_, until);
}

bool SubmitPacer::Paused(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return now < paused_until_;
}

}  // namespace donagate::daemon
