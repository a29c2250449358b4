// The ChargingBackend interface: how a subscriber is debited through an operator's charging
// system. One backend instance per operator (config [[charging]]); implementations are
// http_charging.h (HTTP/JSON, the contract in docs/charging.md), operator_billed_charging.h
// (MO-billing: nothing to call) and in_process_charging.h (in-memory balances for tests/demo).
// diameter_charging.h is the Diameter Ro implementation (direct debiting, docs/charging.md);
// carrier_billing_charging.h the GSMA Open Gateway / CAMARA Carrier Billing one.
//
// Money rules every implementation keeps:
//  - The idempotency key identifies ONE charge. Sending the same key again (a retry, or after
//    Status said kNotFound) never debits twice; the backend answers with the stored result.
//    The same key is never used for a different charge (different amount/msisdn → rejected).
//  - kUnknown means "maybe charged". It is resolved with Status(key), never by charging with a
//    new key.
//  - kUnavailable means "definitely not performed" (the request never reached the backend, or
//    the backend refused it before processing: connection refused, TLS failure, queue full,
//    HTTP 429). Safe to send again later with the same key.
//
// Threads: every callback is invoked exactly once, on the executor given to the backend at
// construction, never inline inside Charge()/Status()/Refund(). The methods themselves are
// thread-safe (they may be called from any thread). The backend must outlive all callbacks:
// destroy it only after its executor's io_context has stopped or every callback has run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "billing/domain/charge_key.h"
#include "billing/domain/states.h"

namespace donagate::billing {

// ChargeOutcome, its names and IsFinal(ChargeOutcome) live in billing/domain/states.h.

struct ChargeRequest {
  std::string idempotency_key;  // see IsValidIdempotencyKey
  std::string msisdn;           // normalised 84xxxxxxxxx
  std::string operator_name;    // the operator whose link delivered the MO
  int64_t amount_vnd = 0;       // > 0
  int32_t units = 1;            // donation units this charge covers (1 for per_unit charges)
  std::string campaign;         // campaign name (fund:<campaign>)
};

struct ChargeResult {
  ChargeOutcome outcome = ChargeOutcome::kUnknown;
  std::string operator_reference;  // kCharged: the backend's transaction id
  std::string detail;              // human-readable reason/diagnostic; never contains secrets
  // True when this result says the backend is unhealthy (transport error, timeout, 5xx, 429),
  // as opposed to a business answer. Circuit breakers count only these as failures.
  bool backend_failure = false;

  static ChargeResult Charged(std::string reference, std::string detail = {});
  static ChargeResult Of(ChargeOutcome outcome, std::string detail = {}, bool backend_failure = false);
};

enum class RefundOutcome {
  kRefunded,     // the charge is reversed at the backend (idempotent: a second call says so too)
  kNotFound,     // the backend has no charged key of that name
  kRejected,     // refused (amount exceeds the charge, not refundable, unsupported)
  kUnknown,      // maybe refunded: ask again with the same key
  kUnavailable,  // not performed
};
std::string_view ToString(RefundOutcome outcome);

struct RefundResult {
  RefundOutcome outcome = RefundOutcome::kUnknown;
  std::string detail;
  bool backend_failure = false;
};

using ChargeCallback = std::function<void(ChargeResult)>;
using RefundCallback = std::function<void(RefundResult)>;

class ChargingBackend {
 public:
  virtual ~ChargingBackend() = default;

  // Short name for logs and metrics labels, e.g. "http:viettel".
  virtual std::string_view Name() const = 0;

  // Debits request.amount_vnd. An invalid request (bad key, amount <= 0, empty msisdn) is
  // answered kRejected without contacting anyone.
  virtual void Charge(const ChargeRequest& request, ChargeCallback done) = 0;

  // What the backend knows about `idempotency_key`: the stored charge result (kCharged with the
  // same operator_reference, kInsufficientFunds, ...), kNotFound if it never saw the key, or
  // kUnknown/kUnavailable if it could not be asked.
  virtual void Status(const std::string& idempotency_key, ChargeCallback done) = 0;

  virtual bool SupportsRefund() const = 0;
  // Reverses (part of) a charged key, at most once per key: repeating the same refund answers
  // kRefunded again without paying twice. Backends without refunds answer kRejected.
  virtual void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) = 0;
};

// Idempotency keys (IsValidIdempotencyKey, WholeChargeKey, UnitChargeKey): billing/domain/charge_key.h.

// Checks a request before it is sent; empty string when valid, else the reason.
std::string ValidateChargeRequest(const ChargeRequest& request);

}  // namespace donagate::billing
