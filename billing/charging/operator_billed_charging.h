// MO-billing: the operator already debited the subscriber for the MO itself (premium-rate
// short code), so "charging" is only recording that fact. Charge answers kCharged with
// operator_reference "mo-billed" without contacting anyone; Status answers the same for any
// valid key (every charge this backend ever answered was kCharged). No refunds: reversing an
// MO-billed charge is the operator's business, recorded in the ledger by finance.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <string>

#include "billing/charging/charging.h"

namespace donagate::billing {

inline constexpr std::string_view kMoBilledReference = "mo-billed";

class OperatorBilledChargingBackend final : public ChargingBackend {
 public:
  OperatorBilledChargingBackend(boost::asio::any_io_executor executor, std::string operator_name);

  std::string_view Name() const override { return name_; }
  void Charge(const ChargeRequest& request, ChargeCallback done) override;
  void Status(const std::string& idempotency_key, ChargeCallback done) override;
  bool SupportsRefund() const override { return false; }
  void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) override;

 private:
  boost::asio::any_io_executor executor_;
  std::string name_;
};

}  // namespace donagate::billing
