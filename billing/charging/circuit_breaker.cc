#include "billing/charging/circuit_breaker.h"

#include <string_view>

#include "billing/charging/charging.h"

namespace donagate::billing {

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Clock now)
    : options_(options), now_(std::move(now)) {
  if (options_.failure_threshold < 1) options_.failure_threshold = 1;
}

CircuitBreaker::State CircuitBreaker::StateLocked() const {
  if (state_ == State::kOpen && now_() - opened_at_ >= options_.cool_off) return State::kHalfOpen;
  return state_;
}

CircuitBreaker::Admission CircuitBreaker::Admit() {
  std::lock_guard lock(mu_);
  switch (StateLocked()) {
    case State::kClosed:
      return Admission::kAllowed;
    case State::kOpen:
      ++counts_.refused;
      return Admission::kRefused;
    case State::kHalfOpen:
      if (probe_in_flight_) {
        ++counts_.refused;
        return Admission::kRefused;
      }
      state_ = State::kHalfOpen;
      probe_in_flight_ = true;
      return Admission::kProbe;
  }
  return Admission::kRefused;
}

void CircuitBreaker::OpenLocked() {
  state_ = State::kOpen;
  opened_at_ = now_();
  probe_in_flight_ = false;
  ++counts_.opened;
}

void CircuitBreaker::Record(Admission admission, bool backend_failure) {
  if (admission == Admission::kRefused) return;
  std::lock_guard lock(mu_);
  if (backend_failure) {
    ++counts_.failures;
    ++counts_.consecutive_failures;
  } else {
    ++counts_.successes;
    counts_.consecutive_failures = 0;
  }
  if (admission == Admission::kProbe) {
    // Only the probe decides what half_open becomes; stale answers from calls admitted while
    // closed are counted but do not flip the state.
    probe_in_flight_ = false;
    if (backend_failure) {
      OpenLocked();
    } else {
      state_ = State::kClosed;
    }
    return;
  }
  if (state_ == State::kClosed && backend_failure &&
      counts_.consecutive_failures >= options_.failure_threshold) {
    OpenLocked();
  }
}

void CircuitBreaker::Record(Admission admission, const ChargeResult& result) {
  Record(admission, result.backend_failure);
}

void CircuitBreaker::Record(Admission admission, const RefundResult& result) {
  Record(admission, result.backend_failure);
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  return StateLocked();
}

CircuitBreaker::Counts CircuitBreaker::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

std::string_view ToString(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed: return "closed";
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half_open";
  }
  return "invalid";
}

}  // namespace donagate::billing
