// In-memory charging for tests and the demo: per-MSISDN balances, barred subscribers, and the
// same idempotency rules as a real backend (same key → stored result, no second debit; same key
// with different parameters → kRejected). Everything is lost when the process exits, so it is
// not for production money. Thread-safe (one mutex).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "billing/charging/charging.h"

namespace donagate::billing {

class InProcessChargingBackend final : public ChargingBackend {
 public:
  InProcessChargingBackend(boost::asio::any_io_executor executor, std::string operator_name,
                           int64_t default_balance_vnd);

  std::string_view Name() const override { return name_; }
  void Charge(const ChargeRequest& request, ChargeCallback done) override;
  void Status(const std::string& idempotency_key, ChargeCallback done) override;
  bool SupportsRefund() const override { return true; }
  void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) override;

  // Test/demo controls.
  void SetBalance(const std::string& msisdn, int64_t balance_vnd);
  int64_t Balance(const std::string& msisdn) const;
  void SetBarred(const std::string& msisdn, bool barred);
  // Number of debits actually applied (idempotent replays are not debits).
  uint64_t debit_count() const;

 private:
  struct StoredCharge {
    ChargeRequest request;
    ChargeResult result;
    int64_t refunded_vnd = 0;
  };
  int64_t BalanceLocked(const std::string& msisdn) const;

  boost::asio::any_io_executor executor_;
  std::string name_;
  const int64_t default_balance_vnd_;
  mutable std::mutex mu_;
  std::map<std::string, int64_t> balances_;
  std::set<std::string> barred_;
  std::map<std::string, StoredCharge> charges_;
  uint64_t debit_count_ = 0;
  uint64_t next_reference_ = 1;
};

}  // namespace donagate::billing
