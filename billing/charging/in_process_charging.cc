#include "billing/charging/in_process_charging.h"

#include <boost/asio/post.hpp>

namespace donagate::billing {

namespace {
bool SameCharge(const ChargeRequest& a, const ChargeRequest& b) {
  return a.msisdn == b.msisdn && a.amount_vnd == b.amount_vnd && a.units == b.units &&
         a.campaign == b.campaign && a.operator_name == b.operator_name;
}
}  // namespace

InProcessChargingBackend::InProcessChargingBackend(boost::asio::any_io_executor executor,
                                                   std::string operator_name, int64_t default_balance_vnd)
    : executor_(std::move(executor)),
      name_("in_process:" + operator_name),
      default_balance_vnd_(default_balance_vnd) {}

int64_t InProcessChargingBackend::BalanceLocked(const std::string& msisdn) const {
  auto it = balances_.find(msisdn);
  return it == balances_.end() ? default_balance_vnd_ : it->second;
}

void InProcessChargingBackend::Charge(const ChargeRequest& request, ChargeCallback done) {
  ChargeResult result;
  if (std::string error = ValidateChargeRequest(request); !error.empty()) {
    result = ChargeResult::Of(ChargeOutcome::kRejected, std::move(error));
  } else {
    std::lock_guard lock(mu_);
    auto it = charges_.find(request.idempotency_key);
    if (it != charges_.end()) {
      result = SameCharge(it->second.request, request)
                   ? it->second.result
                   : ChargeResult::Of(ChargeOutcome::kRejected, "idempotency key reused with different parameters");
    } else {
      if (barred_.count(request.msisdn)) {
        result = ChargeResult::Of(ChargeOutcome::kSubscriberBarred, "subscriber barred");
      } else if (BalanceLocked(request.msisdn) < request.amount_vnd) {
        result = ChargeResult::Of(ChargeOutcome::kInsufficientFunds, "balance too low");
      } else {
        balances_[request.msisdn] = BalanceLocked(request.msisdn) - request.amount_vnd;
        ++debit_count_;
        result = ChargeResult::Charged("ip-" + std::to_string(next_reference_++));
      }
      charges_[request.idempotency_key] = StoredCharge{request, result, 0};
    }
  }
  boost::asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void InProcessChargingBackend::Status(const std::string& idempotency_key, ChargeCallback done) {
  ChargeResult result;
  if (!IsValidIdempotencyKey(idempotency_key)) {
    result = ChargeResult::Of(ChargeOutcome::kRejected, "invalid idempotency key");
  } else {
    std::lock_guard lock(mu_);
    auto it = charges_.find(idempotency_key);
    result = it == charges_.end() ? ChargeResult::Of(ChargeOutcome::kNotFound, "key never seen")
                                  : it->second.result;
  }
  boost::asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void InProcessChargingBackend::Refund(const std::string& idempotency_key, int64_t amount_vnd,
                                      RefundCallback done) {
  RefundResult result;
  {
    std::lock_guard lock(mu_);
    auto it = charges_.find(idempotency_key);
    if (it == charges_.end() || it->second.result.outcome != ChargeOutcome::kCharged) {
      result = RefundResult{RefundOutcome::kNotFound, "no charged key " + idempotency_key, false};
    } else if (it->second.refunded_vnd > 0) {
      // One refund per key, so a retried refund is recognised instead of paid twice.
      result = it->second.refunded_vnd == amount_vnd
                   ? RefundResult{RefundOutcome::kRefunded, "already refunded", false}
                   : RefundResult{RefundOutcome::kRejected, "key already refunded with another amount", false};
    } else if (amount_vnd <= 0 || amount_vnd > it->second.request.amount_vnd) {
      result = RefundResult{RefundOutcome::kRejected, "refund exceeds the charged amount", false};
    } else {
      it->second.refunded_vnd += amount_vnd;
      balances_[it->second.request.msisdn] = BalanceLocked(it->second.request.msisdn) + amount_vnd;
      result = RefundResult{RefundOutcome::kRefunded, {}, false};
    }
  }
  boost::asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void InProcessChargingBackend::SetBalance(const std::string& msisdn, int64_t balance_vnd) {
  std::lock_guard lock(mu_);
  balances_[msisdn] = balance_vnd;
}

int64_t InProcessChargingBackend::Balance(const std::string& msisdn) const {
  std::lock_guard lock(mu_);
  return BalanceLocked(msisdn);
}

void InProcessChargingBackend::SetBarred(const std::string& msisdn, bool barred) {
  std::lock_guard lock(mu_);
  if (barred) {
    barred_.insert(msisdn);
  } else {
    barred_.erase(msisdn);
  }
}

uint64_t InProcessChargingBackend::debit_count() const {
  std::lock_guard lock(mu_);
  return debit_count_;
}

}  // namespace donagate::billing
