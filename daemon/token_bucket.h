// A token bucket that paces outgoing submits to a link's TPS limit.
//
// Contract: not thread-safe; a link owns one and uses it on its strand only. Time is passed in
// explicitly so the pacing arithmetic is testable without sleeping. A rate of 0 means
// "unlimited": every Take succeeds.
#pragma once

#include <chrono>
#include <mutex>

namespace donagate::daemon {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // rate_per_second: sustained rate; burst: how many tokens may accumulate while idle
  // (at least 1). The bucket starts full.
  TokenBucket(double rate_per_second, double burst, Clock::time_point now = Clock::now());

  // The burst a link uses for a given TPS: 100 ms worth of tokens, at least 1, so that an
  // operator measuring over any 1-second window never sees more than tps * 1.1.
  static double DefaultBurst(double rate_per_second);

  // Takes one token if available and returns zero; otherwise takes nothing and returns how long
  // until one will be available.
  Clock::duration TryTake(Clock::time_point now = Clock::now());

  bool unlimited() const { return rate_ <= 0; }
  double rate() const { return rate_; }

 private:
  void Refill(Clock::time_point now);

  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

// What a link's sessions consult before each submit_sm: the TPS bucket plus the pause imposed
// by ESME_RTHROTTLED / ESME_RMSGQFUL. One per link, shared by its sessions (server mode may have
// several binds of one account, and the operator's limits are per account), so it is
// thread-safe; the lock is held for a few arithmetic operations per submit.
class SubmitPacer {
 public:
  using Clock = TokenBucket::Clock;
  explicit SubmitPacer(double tps, Clock::time_point now = Clock::now());

  // Zero when the caller may send one PDU now (its token is taken); otherwise how long to
  // wait (until the pause ends, or until the next token).
  Clock::duration Acquire(Clock::time_point now = Clock::now());
  // Pauses every submit of the link until `until` (a later pause extends, never shortens).
  void PauseUntil(Clock::time_point until);
  bool Paused(Clock::time_point now = Clock::now()) const;

 private:
  mutable std::mutex mu_;
  TokenBucket bucket_;
  Clock::time_point paused_until_{};
};

}  // namespace donagate::daemon
