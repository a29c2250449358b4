#include "billing/charging/charging.h"

#include <string>

namespace donagate::billing {

std::string_view ToString(RefundOutcome outcome) {
  switch (outcome) {
    case RefundOutcome::kRefunded: return "refunded";
    case RefundOutcome::kNotFound: return "not_found";
    case RefundOutcome::kRejected: return "rejected";
    case RefundOutcome::kUnknown: return "unknown";
    case RefundOutcome::kUnavailable: return "unavailable";
  }
  return "invalid";
}

ChargeResult ChargeResult::Charged(std::string reference, std::string detail) {
  ChargeResult r;
  r.outcome = ChargeOutcome::kCharged;
  r.operator_reference = std::move(reference);
  r.detail = std::move(detail);
  return r;
}

ChargeResult ChargeResult::Of(ChargeOutcome outcome, std::string detail, bool backend_failure) {
  ChargeResult r;
  r.outcome = outcome;
  r.detail = std::move(detail);
  r.backend_failure = backend_failure;
  return r;
}


std::string ValidateChargeRequest(const ChargeRequest& request) {
  if (!IsValidIdempotencyKey(request.idempotency_key)) {
    return "invalid idempotency key (1..30 printable characters, no spaces)";
  }
  if (request.amount_vnd <= 0) return "amount_vnd must be positive";
  if (request.units <= 0) return "units must be positive";
  if (request.msisdn.empty()) return "msisdn is empty";
  for (char c : request.msisdn) {
    if (c < '0' || c > '9') return "msisdn must be digits only";
  }
  return {};
}

}  // namespace donagate::billing
