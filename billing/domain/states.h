// The names of every state and outcome donagate stores: the one place they are defined.
//
// Contract:
//  - Each enum's stable lower-case names are what the database stores and what logs, metrics
//    and the HTTP charging contract print. The schema's CHECK lists (billing/store/migrations)
//    must allow exactly the storable ones; tests/billing/store/state_names_test.cc compares
//    the two against a real PostgreSQL, so adding a state here without a migration (or the
//    other way round) fails a test, not a production insert.
//  - ToString never fails (an out-of-range value prints "invalid"); Parse* is its inverse and
//    returns false for an unknown name.
#pragma once

#include <span>
#include <string_view>

#include "config/config.h"

namespace donagate::billing {

// How an inbound message was classified (inbound_message.outcome).
enum class MessageOutcome {
  kDonation,          // a valid "CV n": a donation row is created
  kSyntaxError,       // not "CV n" for any campaign keyword → help reply
  kInvalidMsisdn,     // source address is not a Vietnamese MSISDN
  kUnknownCampaign,   // no campaign on this shortcode/keyword
  kCampaignInactive,  // outside the campaign's active window
  kDailyCap,          // over the per-subscriber daily cap (when decided at ingest)
  kBlocked,           // subscriber on the blocklist
  kIncompleteConcat,  // concatenated parts that never completed
  kTooManyUnits,      // n above max_units_per_message (or zero)
  kUndecodable,       // payload could not be decoded
  kReceipt,           // a delivery receipt (esm_class receipt bit)
  kOther,
  kRedelivery,        // the SMSC's redelivery of a stored MO whose ack may have been lost:
                      // recorded (redelivery_of = the original), acked, nothing else
  // Keyword flows and reply safety (billing/domain/keywords.h, docs/pipeline.md "Keywords"):
  // never a donation row of their own.
  kHelp,              // HELP: the help text
  kStop,              // STOP / STOP ALL: opt-out recorded, pending confirmations cancelled
  kConfirm,           // Y / CO: confirms this number's pending donation on the shortcode
  kStatus,            // TRA: the subscriber's donations, as one reply
  kRateLimited,       // over max_mos_per_minute_per_msisdn: recorded, not processed
  kReplyLoop,         // reads as one of our own replies coming back: recorded, never answered
};

// donation.state.
enum class DonationState {
  kReceived,          // waiting to be charged (also after a deferral)
  kCharging,          // claimed by an instance (lease)
  kCharged,           // final: every unit charged
  kPartiallyCharged,  // final: per_unit stopped early, charged_units < units
  kFailed,            // final: nothing charged; failure_reason says why
  kUnknown,           // a charge key has an unknown outcome; resolved by Status later
  kReversed,          // final: reversed by finance (reverse_donation)
  // A "CV n" above the campaign's confirm_above_units: not charged until a confirming MO from
  // the same number to the same shortcode arrives before confirm_deadline (then kReceived);
  // replaced by a later "CV n", cancelled by STOP, expired after the deadline (each: kFailed
  // with failure_reason confirmation_replaced / opted_out / confirmation_expired).
  kAwaitingConfirmation,
};
bool IsFinal(DonationState state);

// outbox.state.
enum class ReplyState {
  kPending, kClaimed, kSubmitted, kDelivered, kUndeliverable, kExpired, kRejected, kFailed,
};

// What a charging backend answered for one idempotency key (charge.outcome stores the first
// five; kUnavailable and kNotFound mean "not performed" and are never stored).
enum class ChargeOutcome {
  kCharged,            // debited; operator_reference set
  kInsufficientFunds,  // balance too low (Diameter 4012 DIAMETER_CREDIT_LIMIT_REACHED)
  kSubscriberBarred,   // barred or unknown subscriber (Diameter 4010, 5030 USER_UNKNOWN)
  kRejected,           // our own error: bad price point, auth, malformed request, key conflict
  kUnknown,            // maybe charged (timeout after sending, 5xx, lost response): resolve by Status
  kUnavailable,        // definitely not performed (not sent / refused before processing)
  kNotFound,           // Status only: the backend never saw this key → safe to Charge with it
};
// True for outcomes that settle a key for good (charged, insufficient, barred, rejected).
bool IsFinal(ChargeOutcome outcome);
// The outcomes charge.outcome may hold.
bool IsStorable(ChargeOutcome outcome);

std::string_view ToString(MessageOutcome outcome);
std::string_view ToString(DonationState state);
std::string_view ToString(ReplyState state);
std::string_view ToString(ChargeOutcome outcome);
bool ParseMessageOutcome(std::string_view name, MessageOutcome* out);
bool ParseDonationState(std::string_view name, DonationState* out);
bool ParseReplyState(std::string_view name, ReplyState* out);
bool ParseChargeOutcome(std::string_view name, ChargeOutcome* out);
// "whole" | "per_unit" (donation.charging_mode).
std::string_view ChargingModeName(config::ChargingMode mode);

// Every name, in enum order (what the schema's CHECK lists are compared with).
std::span<const std::string_view> MessageOutcomeNames();
std::span<const std::string_view> DonationStateNames();
std::span<const std::string_view> ReplyStateNames();
std::span<const std::string_view> ChargeOutcomeNames();
std::span<const std::string_view> ChargingModeNames();

}  // namespace donagate::billing
