#include "billing/domain/campaign.h"

#include "billing/domain/money.h"

namespace donagate::billing {

std::chrono::sys_days FinanceDay(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  return floor<days>(t + hours(7));
}

bool IsActive(const config::Campaign& campaign, std::chrono::system_clock::time_point now) {
  if (campaign.active_from && now < *campaign.active_from) return false;
  if (campaign.active_to && now >= *campaign.active_to) return false;
  return true;
}

DonationMatch MatchDonation(const std::vector<config::Campaign>& campaigns, std::string_view shortcode,
                            std::string_view text) {
  DonationMatch match;
  match.parse.status = DonationParseStatus::kWrongKeyword;
  for (const config::Campaign& c : campaigns) {
    if (c.shortcode != shortcode) continue;
    if (match.campaign == nullptr) match.campaign = &c;  // help-text fallback
    DonationParse parse = ParseDonation(text, c.keyword, c.max_units_per_message);
    if (parse.status == DonationParseStatus::kWrongKeyword) continue;
    match.campaign = &c;
    match.parse = parse;
    return match;
  }
  if (match.campaign != nullptr) {
    // Distinguish "nothing at all" from "something else" for the record.
    DonationParse parse = ParseDonation(text, match.campaign->keyword, match.campaign->max_units_per_message);
    if (parse.status == DonationParseStatus::kEmpty) match.parse = parse;
  }
  return match;
}

std::string_view ToString(DonationDecision decision) {
  switch (decision) {
    case DonationDecision::kCharge: return "charge";
    case DonationDecision::kInactive: return "inactive";
    case DonationDecision::kDailyCap: return "daily_cap";
    case DonationDecision::kAmountOverflow: return "amount_overflow";
  }
  return "unknown";
}

PricedDonation PriceDonation(const config::Campaign& campaign, int32_t units, int64_t units_today,
                             std::chrono::system_clock::time_point now) {
  PricedDonation out;
  out.units = units;
  std::optional<int64_t> amount = CheckedMultiply(units, campaign.unit_price_vnd);
  if (!amount || units <= 0) {
    out.decision = DonationDecision::kAmountOverflow;
    out.reply_if_rejected = ReplyKind::kFailed;
    return out;
  }
  out.amount_vnd = *amount;
  if (!IsActive(campaign, now)) {
    out.decision = DonationDecision::kInactive;
    out.reply_if_rejected = ReplyKind::kInactive;
    return out;
  }
  if (campaign.max_units_per_day_per_msisdn > 0) {
    std::optional<int64_t> total = CheckedAdd(units_today, units);
    if (!total || *total > campaign.max_units_per_day_per_msisdn) {
      out.decision = DonationDecision::kDailyCap;
      out.reply_if_rejected = ReplyKind::kDailyCap;
      return out;
    }
  }
  out.decision = DonationDecision::kCharge;
  return out;
}

}  // namespace donagate::billing
