#include "billing/charging/operator_billed_charging.h"

#include <boost/asio/post.hpp>

namespace donagate::billing {

OperatorBilledChargingBackend::OperatorBilledChargingBackend(boost::asio::any_io_executor executor,
                                                             std::string operator_name)
    : executor_(std::move(executor)), name_("operator_billed:" + operator_name) {}

void OperatorBilledChargingBackend::Charge(const ChargeRequest& request, ChargeCallback done) {
  ChargeResult result;
  if (std::string error = ValidateChargeRequest(request); !error.empty()) {
    result = ChargeResult::Of(ChargeOutcome::kRejected, std::move(error));
  } else {
    result = ChargeResult::Charged(std::string(kMoBilledReference), "billed by the operator on the MO");
  }
  boost::asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void OperatorBilledChargingBackend::Status(const std::string& idempotency_key, ChargeCallback done) {
  ChargeResult result = IsValidIdempotencyKey(idempotency_key)
                            ? ChargeResult::Charged(std::string(kMoBilledReference), "billed by the operator on the MO")
                            : ChargeResult::Of(ChargeOutcome::kRejected, "invalid idempotency key");
  boost::asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void OperatorBilledChargingBackend::Refund(const std::string&, int64_t, RefundCallback done) {
  boost::asio::post(executor_, [done = std::move(done)] {
    done(RefundResult{RefundOutcome::kRejected, "operator_billed backend cannot refund; the operator reverses MO charges", false});
  });
}

}  // namespace donagate::billing
