// OperatorBilledChargingBackend: MO-billed charges are recorded as charged, nothing is called.
#include "billing/operator_billed_charging.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace donagate::billing {
namespace {

TEST(OperatorBilledChargingTest, ChargesAreRecordedAsMoBilled) {
  boost::asio::io_context io;
  OperatorBilledChargingBackend backend(io.get_executor(), "vinaphone");
  EXPECT_EQ(backend.Name(), "operator_billed:vinaphone");
  ChargeRequest r;
  r.idempotency_key = "don-77";
  r.msisdn = "84944444444";
  r.operator_name = "vinaphone";
  r.amount_vnd = 100000;
  r.units = 5;
  r.campaign = "c";
  ChargeResult charged, status, invalid;
  RefundResult refund;
  backend.Charge(r, [&](ChargeResult x) { charged = x; });
  backend.Status("don-77", [&](ChargeResult x) { status = x; });
  r.amount_vnd = 0;
  backend.Charge(r, [&](ChargeResult x) { invalid = x; });
  backend.Refund("don-77", 100000, [&](RefundResult x) { refund = x; });
  EXPECT_EQ(charged.outcome, ChargeOutcome::kUnknown) << "callback ran inline";
  io.run();
  EXPECT_EQ(charged.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(charged.operator_reference, "mo-billed");
  EXPECT_EQ(status.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(status.operator_reference, "mo-billed");
  EXPECT_EQ(invalid.outcome, ChargeOutcome::kRejected);
  EXPECT_FALSE(backend.SupportsRefund());
  EXPECT_EQ(refund.outcome, RefundOutcome::kRejected);
}

}  // namespace
}  // namespace donagate::billing
