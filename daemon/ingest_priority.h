// Acks first: the charging lanes and the reply sender ask before each claim round whether to
// leave the database to the ingest writer. While MOs wait for their commit (`busy` returns
// true) a claimer may still claim once per `floor` — a floor, so that a sustained overload
// slows charging down without stopping it; otherwise it claims freely.
//
// Not thread-safe: one per claiming thread (it remembers that thread's last claim).
#pragma once

#include <chrono>
#include <functional>
#include <utility>

namespace donagate::daemon {

class IngestPriority {
 public:
  using Clock = std::chrono::steady_clock;

  // A null `busy` never yields.
  IngestPriority(std::function<bool()> busy, std::chrono::milliseconds floor)
      : busy_(std::move(busy)), floor_(floor) {}

  // True: skip this claim round. A round that is not skipped while busy starts a new floor
  // period.
  bool ShouldYield(Clock::time_point now = Clock::now()) {
    if (!busy_ || !busy_()) return false;
    if (now < next_claim_while_busy_) return true;
    next_claim_while_busy_ = now + floor_;
    return false;
  }

 private:
  std::function<bool()> busy_;
  std::chrono::milliseconds floor_;
  Clock::time_point next_claim_while_busy_{};
};

}  // namespace donagate::daemon
