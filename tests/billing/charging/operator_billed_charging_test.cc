// OperatorBilledChargingBackend: MO-billed charges are recorded as charged, nothing is called.
#include "billing/charging/operator_billed_charging.h"

#include "billing/charging/charging_factory.h"

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

TEST(ChargingFactoryTest, BuildsEachKindFromConfig) {
  boost::asio::io_context io;
  config::ChargingBackendConfig c;
  c.operator_name = "viettel";
  std::string error;
  c.backend = config::ChargingBackendKind::kOperatorBilled;
  auto mo = MakeChargingBackend(c, io.get_executor(), &error);
  ASSERT_TRUE(mo);
  EXPECT_EQ(mo->Name(), "operator_billed:viettel");
  c.backend = config::ChargingBackendKind::kInProcess;
  EXPECT_EQ(MakeChargingBackend(c, io.get_executor(), &error)->Name(), "in_process:viettel");
  c.backend = config::ChargingBackendKind::kHttp;
  c.url = "https://charging.example.net:8443/api";
  EXPECT_EQ(MakeChargingBackend(c, io.get_executor(), &error)->Name(), "http:viettel");
  c.url = "charging.example.net";
  EXPECT_FALSE(MakeChargingBackend(c, io.get_executor(), &error));
  EXPECT_NE(error.find("operator viettel"), std::string::npos) << error;

  c.breaker_failure_threshold = 7;
  c.breaker_cooloff_s = 12;
  c.status_backoff_min_ms = 100;
  c.status_backoff_max_ms = 20000;
  EXPECT_EQ(BreakerOptionsFor(c).failure_threshold, 7);
  EXPECT_EQ(BreakerOptionsFor(c).cool_off, std::chrono::seconds(12));
  DonationChargerOptions o = ChargerOptionsFor(c);
  EXPECT_EQ(o.status_backoff_min, std::chrono::milliseconds(100));
  EXPECT_EQ(o.status_backoff_max, std::chrono::milliseconds(20000));
  EXPECT_EQ(o.status_max_wait, std::chrono::milliseconds(40000));
}

}  // namespace
}  // namespace donagate::billing
