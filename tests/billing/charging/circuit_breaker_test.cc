// CircuitBreaker state machine with an injected clock.
#include "billing/charging/circuit_breaker.h"

#include <gtest/gtest.h>

#include "billing/charging/charging.h"

namespace donagate::billing {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;
using Admission = CircuitBreaker::Admission;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerTest()
      : breaker_(CircuitBreakerOptions{3, 10s}, [this] { return now_; }) {}

  void Fail() {
    Admission a = breaker_.Admit();
    ASSERT_NE(a, Admission::kRefused);
    breaker_.Record(a, ChargeResult::Of(ChargeOutcome::kUnknown, "HTTP 503", /*backend_failure=*/true));
  }

  std::chrono::steady_clock::time_point now_{std::chrono::steady_clock::time_point{} + 1000s};
  CircuitBreaker breaker_;
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresOnly) {
  Fail();
  Fail();
  // A success in between resets the streak.
  breaker_.Record(breaker_.Admit(), false);
  Fail();
  Fail();
  EXPECT_EQ(breaker_.state(), State::kClosed);
  Fail();
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_EQ(static_cast<int>(breaker_.state()), 1);
  EXPECT_EQ(breaker_.Admit(), Admission::kRefused);
  EXPECT_EQ(breaker_.counts().opened, 1u);
  EXPECT_EQ(breaker_.counts().refused, 1u);
  EXPECT_EQ(breaker_.counts().failures, 5u);
}

TEST_F(CircuitBreakerTest, BusinessOutcomesAreNotFailures) {
  for (int i = 0; i < 10; ++i) {
    breaker_.Record(breaker_.Admit(), ChargeResult::Of(ChargeOutcome::kInsufficientFunds, "poor"));
    breaker_.Record(breaker_.Admit(), ChargeResult::Of(ChargeOutcome::kSubscriberBarred));
    breaker_.Record(breaker_.Admit(), ChargeResult::Of(ChargeOutcome::kRejected, "bad price point"));
  }
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_EQ(breaker_.counts().successes, 30u);
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsOneProbeThenClosesOnSuccess) {
  Fail();
  Fail();
  Fail();
  now_ += 9s;
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_EQ(breaker_.Admit(), Admission::kRefused);
  now_ += 1s;
  EXPECT_EQ(breaker_.state(), State::kHalfOpen);
  EXPECT_EQ(static_cast<int>(breaker_.state()), 2);
  Admission probe = breaker_.Admit();
  EXPECT_EQ(probe, Admission::kProbe);
  EXPECT_EQ(breaker_.Admit(), Admission::kRefused) << "only one probe at a time";
  breaker_.Record(probe, false);
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_EQ(breaker_.Admit(), Admission::kAllowed);
}

TEST_F(CircuitBreakerTest, FailedProbeReopensForAnotherCoolOff) {
  Fail();
  Fail();
  Fail();
  now_ += 10s;
  Admission probe = breaker_.Admit();
  ASSERT_EQ(probe, Admission::kProbe);
  breaker_.Record(probe, true);
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_EQ(breaker_.counts().opened, 2u);
  now_ += 5s;
  EXPECT_EQ(breaker_.Admit(), Admission::kRefused);
  now_ += 5s;
  EXPECT_EQ(breaker_.Admit(), Admission::kProbe);
}

TEST_F(CircuitBreakerTest, StaleAnswersDoNotDecideTheProbe) {
  Admission old_call = breaker_.Admit();  // admitted while closed, answers late
  Fail();
  Fail();
  Fail();
  now_ += 10s;
  Admission probe = breaker_.Admit();
  ASSERT_EQ(probe, Admission::kProbe);
  breaker_.Record(old_call, false);
  EXPECT_EQ(breaker_.state(), State::kHalfOpen) << "a late success from before the outage closed the breaker";
  breaker_.Record(probe, false);
  EXPECT_EQ(breaker_.state(), State::kClosed);
}

TEST(CircuitBreakerNamesTest, StatesHaveMetricNames) {
  EXPECT_EQ(ToString(State::kClosed), "closed");
  EXPECT_EQ(ToString(State::kOpen), "open");
  EXPECT_EQ(ToString(State::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace donagate::billing
