// Campaign rules applied to one MO: which campaign it is for (shortcode + keyword), whether the
// campaign is open, the subscriber's daily cap, and the price. Pure functions over config data;
// the pipeline supplies "now" and the units the subscriber already donated today (from the store).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "billing/domain/donation_parser.h"
#include "billing/domain/reply_template.h"
#include "config/config.h"

namespace donagate::billing {

// The Asia/Ho_Chi_Minh (UTC+7, no DST) calendar day containing `t`: finance days and the
// per-subscriber daily cap use this day.
std::chrono::sys_days FinanceDay(std::chrono::system_clock::time_point t);

// active_from <= now < active_to (absent bounds are open).
bool IsActive(const config::Campaign& campaign, std::chrono::system_clock::time_point now);

struct DonationMatch {
  // The campaign the MO is for; when no keyword matched, the first campaign on that shortcode
  // (its syntax reply is the help text); nullptr when no campaign uses the shortcode at all.
  const config::Campaign* campaign = nullptr;
  DonationParse parse;  // kWrongKeyword when no campaign's keyword matched
};

// `shortcode` is the MO's destination address, compared exactly (digits as the SMSC sends them).
DonationMatch MatchDonation(const std::vector<config::Campaign>& campaigns, std::string_view shortcode,
                            std::string_view text);

enum class DonationDecision {
  kCharge,          // charge amount_vnd for units
  kInactive,        // outside the active window: record, reply "inactive", no charge
  kDailyCap,        // would exceed max_units_per_day_per_msisdn: record, reply "daily_cap", no charge
  kAmountOverflow,  // units × price overflows int64 (cannot happen with loader ranges): no charge
};

std::string_view ToString(DonationDecision decision);  // "charge", "inactive", "daily_cap", "amount_overflow"

struct PricedDonation {
  DonationDecision decision = DonationDecision::kCharge;
  int32_t units = 0;
  int64_t amount_vnd = 0;  // units × unit_price_vnd (also filled for kInactive / kDailyCap, for the reply)
  ReplyKind reply_if_rejected = ReplyKind::kFailed;  // meaningful unless kCharge
};

// Applies the active window and the daily cap to a parsed donation of `units`.
// `units_today` = units this subscriber already donated to this campaign on FinanceDay(now)
// (accepted donations, charged or pending). A message that would go over the cap is refused as
// a whole: partial acceptance would charge for a different n than the subscriber typed.
PricedDonation PriceDonation(const config::Campaign& campaign, int32_t units, int64_t units_today,
                             std::chrono::system_clock::time_point now);

}  // namespace donagate::billing
