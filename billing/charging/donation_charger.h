// The donation charger: charges ONE donation through a ChargingBackend, in `whole` mode (one
// charge of units × unit price, key don-<id>) or `per_unit` mode (n sequential charges of the
// unit price, keys don-<id>-<u>, u = 1..n). It is restart-safe: it is given the charge rows the
// store already holds for the donation and never re-charges a settled key; an unknown key is
// first resolved with Status().
//
// Policy (docs/charging.md has the long version):
//  - A key already known as charged is counted and skipped; a known business refusal ends the
//    sequence as it did before; a known unknown key is resolved by Status() first.
//  - kUnknown answer → Status() with exponential backoff (status_backoff_min..max) for at most
//    status_max_wait. Status kNotFound → the backend never saw the key → Charge again with the
//    SAME key. Still unknown at the deadline → the donation ends kUnknown; the caller persists
//    that and later calls ChargeDonation again with the stored rows (resolution via Status again).
//  - Breaker refuses, or the backend answers kUnavailable → kDeferred: nothing new was charged
//    for the current key; the donation stays pending. Keys charged earlier in the same run are
//    still reported (they must be persisted).
//  - per_unit: the first insufficient_funds stops the sequence → kPartiallyCharged if some units
//    were charged, else kFailed(insufficient_funds). Barred/rejected likewise stop it.
//
// Threads: ChargeDonation may be called from any thread; `done` runs exactly once on the
// charger's executor (or on the backend's executor). Each donation runs as one sequential
// operation; many donations may run concurrently. The charger must outlive its operations.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "billing/charging/charging.h"
#include "billing/charging/circuit_breaker.h"
#include "config/config.h"

namespace donagate::billing {

using ChargingMode = config::ChargingMode;

// One charge key's state, as stored by the store (one row per key) and as reported back.
struct ChargeRecord {
  std::string key;                 // don-<id> or don-<id>-<unit>
  int32_t unit_index = 0;          // 0 for whole, 1..n for per_unit
  int32_t units = 1;               // donation units covered (units for whole, 1 for per_unit)
  int64_t amount_vnd = 0;
  // Reported records only ever hold kCharged, kInsufficientFunds, kSubscriberBarred, kRejected
  // or kUnknown ("not performed" answers leave no record). Stored rows passed back in may also
  // say kUnavailable/kNotFound; those keys are simply sent again.
  ChargeOutcome outcome = ChargeOutcome::kUnknown;
  std::string operator_reference;  // for kCharged
  std::string detail;
  // True when this run learned something new about the key (outcome differs from the row the
  // caller passed in, or there was no row). The caller persists exactly the changed records;
  // a newly charged record needs its ledger rows.
  bool changed = false;
};

struct DonationChargeInput {
  int64_t donation_id = 0;
  std::string campaign;
  std::string operator_name;
  std::string msisdn;
  int32_t units = 0;               // >= 1
  int64_t unit_price_vnd = 0;      // > 0
  int64_t amount_vnd = 0;          // must equal units × unit_price_vnd
  ChargingMode mode = ChargingMode::kWhole;
  std::vector<ChargeRecord> known_charges;  // rows already in the store for this donation
};

enum class DonationChargeState {
  kCharged,           // every unit charged
  kPartiallyCharged,  // per_unit: some units charged, then a refusal (usually insufficient funds)
  kFailed,            // nothing charged; failure_reason says why
  kUnknown,           // a key is still unresolved; retry later (Status first, same key)
  kDeferred,          // backend down / breaker open; nothing ambiguous; retry later
};
std::string_view ToString(DonationChargeState state);

enum class ChargeFailureReason {
  kNone,
  kInsufficientFunds,
  kSubscriberBarred,
  kRejected,        // the backend refused for our error (detail says why)
  kInvalidRequest,  // the input itself is wrong (bad amount, msisdn, key); nothing was sent
};
std::string_view ToString(ChargeFailureReason reason);

struct DonationChargeOutcome {
  DonationChargeState state = DonationChargeState::kDeferred;
  // Why the sequence stopped: the failure for kFailed, the refusal that cut a
  // kPartiallyCharged sequence short; kNone otherwise.
  ChargeFailureReason failure_reason = ChargeFailureReason::kNone;
  std::string detail;
  int32_t charged_units = 0;
  int64_t charged_amount_vnd = 0;
  // Every key of this donation the charger knows about (known rows and new ones), in unit
  // order. Persist the ones with changed == true.
  std::vector<ChargeRecord> charges;
};

struct DonationChargerOptions {
  std::chrono::milliseconds status_backoff_min{500};
  std::chrono::milliseconds status_backoff_max{60000};
  // How long one ChargeDonation call keeps asking Status for an unknown key before it reports
  // kUnknown and lets the caller retry later.
  std::chrono::milliseconds status_max_wait{120000};
};

class DonationCharger {
 public:
  using Callback = std::function<void(DonationChargeOutcome)>;

  // `backend` and `breaker` must outlive the charger; the breaker may be null (no breaker).
  DonationCharger(boost::asio::any_io_executor executor, ChargingBackend& backend,
                  CircuitBreaker* breaker, DonationChargerOptions options);

  void ChargeDonation(DonationChargeInput input, Callback done);

  ChargingBackend& backend() const { return backend_; }
  CircuitBreaker* breaker() const { return breaker_; }

 private:
  class Operation;
  boost::asio::any_io_executor executor_;
  ChargingBackend& backend_;
  CircuitBreaker* breaker_;
  DonationChargerOptions options_;
};

}  // namespace donagate::billing
