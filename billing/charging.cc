#include "billing/charging.h"

#include <string>

namespace donagate::billing {

namespace {
constexpr std::pair<ChargeOutcome, std::string_view> kOutcomeNames[] = {
    {ChargeOutcome::kCharged, "charged"},
    {ChargeOutcome::kInsufficientFunds, "insufficient_funds"},
    {ChargeOutcome::kSubscriberBarred, "subscriber_barred"},
    {ChargeOutcome::kRejected, "rejected"},
    {ChargeOutcome::kUnknown, "unknown"},
    {ChargeOutcome::kUnavailable, "unavailable"},
    {ChargeOutcome::kNotFound, "not_found"},
};
}  // namespace

std::string_view ToString(ChargeOutcome outcome) {
  for (const auto& [value, name] : kOutcomeNames) {
    if (value == outcome) return name;
  }
  return "invalid";
}

bool ParseChargeOutcome(std::string_view name, ChargeOutcome* out) {
  for (const auto& [value, text] : kOutcomeNames) {
    if (text == name) {
      *out = value;
      return true;
    }
  }
  return false;
}

bool IsFinal(ChargeOutcome outcome) {
  switch (outcome) {
    case ChargeOutcome::kCharged:
    case ChargeOutcome::kInsufficientFunds:
    case ChargeOutcome::kSubscriberBarred:
    case ChargeOutcome::kRejected:
      return true;
    default:
      return false;
  }
}

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

bool IsValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyLength) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string WholeChargeKey(int64_t donation_id) { return "don-" + std::to_string(donation_id); }

std::string UnitChargeKey(int64_t donation_id, int32_t unit) {
  return "don-" + std::to_string(donation_id) + "-" + std::to_string(unit);
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
