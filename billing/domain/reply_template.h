// Reply texts: the campaign's templates (config [campaign.templates]) with their placeholders
// filled in. The loader has already refused templates with unknown placeholders or unbalanced
// braces (config::ValidateTemplate), so rendering cannot fail; should an unvalidated template
// reach it anyway, unknown placeholders are copied verbatim rather than dropped.
//
// Placeholders: {amount} and {unit_price} are formatted "100.000" (FormatVnd); {units},
// {charged_units}, {missing_units} are plain integers; {campaign} {ref} {shortcode} {keyword}
// are copied as given. "{{" and "}}" render as literal braces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace donagate::billing {

// Which reply a donation outcome gets.
enum class ReplyKind {
  kSuccess,       // charged in full
  kPartial,       // per_unit: some units charged before the balance ran out
  kInsufficient,  // nothing charged: balance too low
  kSyntax,        // text not understood (help reply)
  kDailyCap,      // per-subscriber daily cap reached: recorded, not charged
  kInactive,      // outside the campaign's active window
  kFailed,        // charge refused for another reason (barred, rejected): nothing charged
  // Keyword flows (billing/domain/keywords.h); none of them is charged.
  kHelp,            // HELP: the campaign's help text
  kStop,            // STOP: opt-out of the campaign acknowledged
  kStopAll,         // STOP ALL: opt-out of every campaign acknowledged
  kConfirmRequest,  // a "CV n" above confirm_above_units: answer Y within the window
  kConfirmNone,     // a confirming MO with nothing (left) to confirm
  kStatus,          // TRA: the subscriber's donations today and in the campaign
  kRateLimited,     // more MOs than max_mos_per_minute_per_msisdn: the rest are not processed
};

std::string_view ToString(ReplyKind kind);  // "success", "partial", ...

const std::string& TemplateFor(const config::ReplyTemplates& templates, ReplyKind kind);

struct ReplyValues {
  int64_t amount_vnd = 0;         // {amount}: what was (or would have been) charged
  std::string_view campaign;      // {campaign}: the campaign name
  std::string_view ref;           // {ref}: our transaction reference, e.g. "don-123"
  int32_t units = 0;              // {units}: units requested
  int32_t charged_units = 0;      // {charged_units}
  int32_t missing_units = 0;      // {missing_units}: units - charged_units
  std::string_view shortcode;     // {shortcode}
  std::string_view keyword;       // {keyword}
  int64_t unit_price_vnd = 0;     // {unit_price}
  int64_t window_min = 0;         // {window_min}: confirm_window_s in minutes, rounded up
  int64_t today_amount_vnd = 0;   // {today_amount}: charged today (Asia/Ho_Chi_Minh day)
  int64_t today_count = 0;        // {today_count}
  int64_t total_amount_vnd = 0;   // {total_amount}: charged in the campaign
  int64_t total_count = 0;        // {total_count}
};

std::string RenderReply(std::string_view text, const ReplyValues& values);

// Convenience: the values every reply of `campaign` shares (campaign, shortcode, keyword,
// unit_price); the caller fills in the rest.
ReplyValues CampaignReplyValues(const config::Campaign& campaign);

}  // namespace donagate::billing
