#include "billing/domain/states.h"

namespace donagate::billing {
namespace {

constexpr std::string_view kMessageOutcomeNames[] = {
    "donation", "syntax_error", "invalid_msisdn", "unknown_campaign", "campaign_inactive",
    "daily_cap", "blocked", "incomplete_concat", "too_many_units", "undecodable", "receipt",
    "other", "redelivery", "help", "stop", "confirm", "status", "rate_limited", "reply_loop"};
constexpr std::string_view kDonationStateNames[] = {
    "received", "charging", "charged", "partially_charged", "failed", "unknown", "reversed",
    "awaiting_confirmation"};
constexpr std::string_view kReplyStateNames[] = {
    "pending", "claimed", "submitted", "delivered", "undeliverable", "expired", "rejected", "failed"};
constexpr std::string_view kChargeOutcomeNames[] = {
    "charged", "insufficient_funds", "subscriber_barred", "rejected", "unknown", "unavailable",
    "not_found"};
constexpr std::string_view kChargingModeNames[] = {"whole", "per_unit"};

template <typename Enum, size_t N>
std::string_view NameOf(const std::string_view (&names)[N], Enum value) {
  const auto i = static_cast<size_t>(value);
  return i < N ? names[i] : std::string_view("invalid");
}

template <typename Enum, size_t N>
bool ParseName(const std::string_view (&names)[N], std::string_view name, Enum* out) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) {
      *out = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

bool IsFinal(DonationState state) {
  return state == DonationState::kCharged || state == DonationState::kPartiallyCharged ||
         state == DonationState::kFailed || state == DonationState::kReversed;
}

bool IsFinal(ChargeOutcome outcome) {
  return outcome == ChargeOutcome::kCharged || outcome == ChargeOutcome::kInsufficientFunds ||
         outcome == ChargeOutcome::kSubscriberBarred || outcome == ChargeOutcome::kRejected;
}

bool IsStorable(ChargeOutcome outcome) {
  return IsFinal(outcome) || outcome == ChargeOutcome::kUnknown;
}

std::string_view ToString(MessageOutcome outcome) { return NameOf(kMessageOutcomeNames, outcome); }
std::string_view ToString(DonationState state) { return NameOf(kDonationStateNames, state); }
std::string_view ToString(ReplyState state) { return NameOf(kReplyStateNames, state); }
std::string_view ToString(ChargeOutcome outcome) { return NameOf(kChargeOutcomeNames, outcome); }

bool ParseMessageOutcome(std::string_view name, MessageOutcome* out) {
  return ParseName(kMessageOutcomeNames, name, out);
}
bool ParseDonationState(std::string_view name, DonationState* out) {
  return ParseName(kDonationStateNames, name, out);
}
bool ParseReplyState(std::string_view name, ReplyState* out) {
  return ParseName(kReplyStateNames, name, out);
}
bool ParseChargeOutcome(std::string_view name, ChargeOutcome* out) {
  return ParseName(kChargeOutcomeNames, name, out);
}

std::string_view ChargingModeName(config::ChargingMode mode) {
  return mode == config::ChargingMode::kPerUnit ? kChargingModeNames[1] : kChargingModeNames[0];
}

std::span<const std::string_view> MessageOutcomeNames() { return kMessageOutcomeNames; }
std::span<const std::string_view> DonationStateNames() { return kDonationStateNames; }
std::span<const std::string_view> ReplyStateNames() { return kReplyStateNames; }
std::span<const std::string_view> ChargeOutcomeNames() { return kChargeOutcomeNames; }
std::span<const std::string_view> ChargingModeNames() { return kChargingModeNames; }

}  // namespace donagate::billing
