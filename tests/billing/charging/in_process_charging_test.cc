// InProcessChargingBackend: balances, barred subscribers, idempotency and refunds.
#include "billing/charging/in_process_charging.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace donagate::billing {
namespace {

ChargeRequest Request(std::string key, int64_t amount, std::string msisdn = "84911111111") {
  ChargeRequest r;
  r.idempotency_key = std::move(key);
  r.msisdn = std::move(msisdn);
  r.operator_name = "mobifone";
  r.amount_vnd = amount;
  r.campaign = "c";
  return r;
}

class InProcessChargingTest : public ::testing::Test {
 protected:
  ChargeResult Charge(const ChargeRequest& r) {
    ChargeResult out;
    bool called = false;
    backend_.Charge(r, [&](ChargeResult result) { out = result, called = true; });
    EXPECT_FALSE(called) << "callbacks must not run inline";
    io_.run();
    io_.restart();
    EXPECT_TRUE(called);
    return out;
  }
  ChargeResult Status(const std::string& key) {
    ChargeResult out;
    backend_.Status(key, [&](ChargeResult result) { out = result; });
    io_.run();
    io_.restart();
    return out;
  }
  RefundResult Refund(const std::string& key, int64_t amount) {
    RefundResult out;
    backend_.Refund(key, amount, [&](RefundResult result) { out = result; });
    io_.run();
    io_.restart();
    return out;
  }

  boost::asio::io_context io_;
  InProcessChargingBackend backend_{io_.get_executor(), "mobifone", 50000};
};

TEST_F(InProcessChargingTest, DebitsUntilTheBalanceRunsOut) {
  EXPECT_EQ(Charge(Request("don-1-1", 20000)).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(Charge(Request("don-1-2", 20000)).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(Charge(Request("don-1-3", 20000)).outcome, ChargeOutcome::kInsufficientFunds);
  EXPECT_EQ(backend_.Balance("84911111111"), 10000);
  EXPECT_EQ(backend_.debit_count(), 2u);
}

TEST_F(InProcessChargingTest, SameKeyReplaysAndConflictingKeyIsRejected) {
  ChargeResult first = Charge(Request("don-2", 20000));
  ChargeResult replay = Charge(Request("don-2", 20000));
  EXPECT_EQ(replay.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(replay.operator_reference, first.operator_reference);
  EXPECT_EQ(Charge(Request("don-2", 30000)).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(backend_.debit_count(), 1u);
  EXPECT_EQ(Status("don-2").operator_reference, first.operator_reference);
  EXPECT_EQ(Status("don-3").outcome, ChargeOutcome::kNotFound);
  // A stored refusal stays the answer for that key even after a top-up.
  backend_.SetBalance("84922222222", 0);
  EXPECT_EQ(Charge(Request("don-4", 1000, "84922222222")).outcome, ChargeOutcome::kInsufficientFunds);
  backend_.SetBalance("84922222222", 5000);
  EXPECT_EQ(Charge(Request("don-4", 1000, "84922222222")).outcome, ChargeOutcome::kInsufficientFunds);
  EXPECT_EQ(Charge(Request("don-5", 1000, "84922222222")).outcome, ChargeOutcome::kCharged);
}

TEST_F(InProcessChargingTest, BarredAndInvalidRequests) {
  backend_.SetBarred("84933333333", true);
  EXPECT_EQ(Charge(Request("don-6", 1000, "84933333333")).outcome, ChargeOutcome::kSubscriberBarred);
  EXPECT_EQ(Charge(Request("", 1000)).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(Request("don-7", -5)).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(Request("don-8", 5, "")).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(backend_.debit_count(), 0u);
}

TEST_F(InProcessChargingTest, RefundOncePerKey) {
  ASSERT_EQ(Charge(Request("don-9", 20000)).outcome, ChargeOutcome::kCharged);
  EXPECT_TRUE(backend_.SupportsRefund());
  EXPECT_EQ(Refund("don-9", 30000).outcome, RefundOutcome::kRejected);
  EXPECT_EQ(Refund("don-9", 20000).outcome, RefundOutcome::kRefunded);
  EXPECT_EQ(Refund("don-9", 20000).outcome, RefundOutcome::kRefunded);
  EXPECT_EQ(backend_.Balance("84911111111"), 50000);
  EXPECT_EQ(Refund("don-10", 100).outcome, RefundOutcome::kNotFound);
}

TEST(ChargingKeysTest, KeyRules) {
  EXPECT_EQ(WholeChargeKey(42), "don-42");
  EXPECT_EQ(UnitChargeKey(42, 3), "don-42-3");
  // Ids up to 18 digits fit with the largest unit index config allows (1,000,000); a 19-digit
  // id with a 7-digit unit does not, and the donation charger refuses it instead of truncating.
  EXPECT_TRUE(IsValidIdempotencyKey(UnitChargeKey(999999999999999999LL, 1000000)));
  EXPECT_FALSE(IsValidIdempotencyKey(UnitChargeKey(9223372036854775807LL, 1000000)));
  EXPECT_TRUE(IsValidIdempotencyKey(WholeChargeKey(9223372036854775807LL)));
  EXPECT_FALSE(IsValidIdempotencyKey(""));
  EXPECT_FALSE(IsValidIdempotencyKey(std::string(31, 'a')));
  EXPECT_TRUE(IsValidIdempotencyKey(std::string(30, 'a')));
  EXPECT_FALSE(IsValidIdempotencyKey("don 1"));
  EXPECT_FALSE(IsValidIdempotencyKey("don-\x01"));
  EXPECT_FALSE(IsValidIdempotencyKey("don-\xc3\xa9"));
  ChargeOutcome parsed;
  for (ChargeOutcome o : {ChargeOutcome::kCharged, ChargeOutcome::kInsufficientFunds, ChargeOutcome::kSubscriberBarred,
                          ChargeOutcome::kRejected, ChargeOutcome::kUnknown, ChargeOutcome::kUnavailable,
                          ChargeOutcome::kNotFound}) {
    ASSERT_TRUE(ParseChargeOutcome(ToString(o), &parsed));
    EXPECT_EQ(parsed, o);
  }
  EXPECT_FALSE(ParseChargeOutcome("maybe", &parsed));
}

}  // namespace
}  // namespace donagate::billing
