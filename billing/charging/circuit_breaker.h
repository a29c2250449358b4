// A circuit breaker per charging backend. Counts only backend failures (transport errors,
// timeouts, 5xx, 429 — ChargeResult::backend_failure), never business answers such as
// insufficient funds.
//
//   closed ──N consecutive failures──▶ open ──cool_off elapsed──▶ half_open
//     ▲                                  ▲                           │ one probe call admitted
//     └───────── probe succeeded ────────┼───── probe failed ────────┘
//
// While open (and in half_open while the probe is in flight) Admit() refuses; the donation
// charger then answers "deferred" so the donation stays pending and is retried later — a
// donation is never failed because the backend was down.
//
// Thread-safe (a small mutex: a breaker is shared by every charge for one operator, and the
// critical sections are a few integer updates). The clock is injectable for tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace donagate::billing {

struct ChargeResult;
struct RefundResult;

struct CircuitBreakerOptions {
  int failure_threshold = 5;                        // consecutive failures that open it, >= 1
  std::chrono::milliseconds cool_off{30000};        // open → half_open after this
};

class CircuitBreaker {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // Numeric values are exported as the metric donagate_charging_breaker_state.
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  // What Admit() granted; pass it back to Record().
  enum class Admission { kRefused, kAllowed, kProbe };

  struct Counts {
    uint64_t successes = 0;
    uint64_t failures = 0;
    uint64_t refused = 0;          // calls not made because the breaker was open
    uint64_t opened = 0;           // closed/half_open → open transitions
    int consecutive_failures = 0;
  };

  explicit CircuitBreaker(CircuitBreakerOptions options, Clock now = &std::chrono::steady_clock::now);

  // Asks to make one backend call. kRefused: do not call. kAllowed/kProbe: make the call and
  // then call Record() exactly once with the admission and whether the backend failed.
  Admission Admit();
  void Record(Admission admission, bool backend_failure);
  void Record(Admission admission, const ChargeResult& result);
  void Record(Admission admission, const RefundResult& result);

  // Current state; an open breaker whose cool-off has elapsed reports kHalfOpen.
  State state() const;
  Counts counts() const;

 private:
  void OpenLocked();
  State StateLocked() const;

  CircuitBreakerOptions options_;
  const Clock now_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;
  std::chrono::steady_clock::time_point opened_at_{};
  bool probe_in_flight_ = false;
  Counts counts_;
};

std::string_view ToString(CircuitBreaker::State state);

}  // namespace donagate::billing
