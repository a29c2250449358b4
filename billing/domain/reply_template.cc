#include "billing/domain/reply_template.h"

#include "billing/domain/money.h"

namespace donagate::billing {

std::string_view ToString(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kSuccess: return "success";
    case ReplyKind::kPartial: return "partial";
    case ReplyKind::kInsufficient: return "insufficient";
    case ReplyKind::kSyntax: return "syntax";
    case ReplyKind::kDailyCap: return "daily_cap";
    case ReplyKind::kInactive: return "inactive";
    case ReplyKind::kFailed: return "failed";
    case ReplyKind::kHelp: return "help";
    case ReplyKind::kStop: return "stop";
    case ReplyKind::kStopAll: return "stop_all";
    case ReplyKind::kConfirmRequest: return "confirm_request";
    case ReplyKind::kConfirmNone: return "confirm_none";
    case ReplyKind::kStatus: return "status";
    case ReplyKind::kRateLimited: return "rate_limited";
  }
  return "unknown";
}

const std::string& TemplateFor(const config::ReplyTemplates& t, ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kSuccess: return t.success;
    case ReplyKind::kPartial: return t.partial;
    case ReplyKind::kInsufficient: return t.insufficient;
    case ReplyKind::kSyntax: return t.syntax;
    case ReplyKind::kDailyCap: return t.daily_cap;
    case ReplyKind::kInactive: return t.inactive;
    case ReplyKind::kFailed: return t.failed;
    case ReplyKind::kHelp: return t.help;
    case ReplyKind::kStop: return t.stop;
    case ReplyKind::kStopAll: return t.stop_all;
    case ReplyKind::kConfirmRequest: return t.confirm_request;
    case ReplyKind::kConfirmNone: return t.confirm_none;
    case ReplyKind::kStatus: return t.status;
    case ReplyKind::kRateLimited: return t.rate_limited;
  }
  return t.failed;
}

namespace {

// Appends the value of placeholder `name`; false when the name is not a placeholder.
bool AppendValue(std::string& out, std::string_view name, const ReplyValues& v) {
  if (name == "amount") out += FormatVnd(v.amount_vnd);
  else if (name == "unit_price") out += FormatVnd(v.unit_price_vnd);
  else if (name == "units") out += std::to_string(v.units);
  else if (name == "charged_units") out += std::to_string(v.charged_units);
  else if (name == "missing_units") out += std::to_string(v.missing_units);
  else if (name == "campaign") out += v.campaign;
  else if (name == "ref") out += v.ref;
  else if (name == "shortcode") out += v.shortcode;
  else if (name == "keyword") out += v.keyword;
  else if (name == "window_min") out += std::to_string(v.window_min);
  else if (name == "today_amount") out += FormatVnd(v.today_amount_vnd);
  else if (name == "today_count") out += std::to_string(v.today_count);
  else if (name == "total_amount") out += FormatVnd(v.total_amount_vnd);
  else if (name == "total_count") out += std::to_string(v.total_count);
  else return false;
  return true;
}

}  // namespace

std::string RenderReply(std::string_view text, const ReplyValues& values) {
  std::string out;
  out.reserve(text.size() + 32);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      out += c;  // "{{" or "}}"
      ++i;
      continue;
    }
    if (c == '{') {
      size_t close = text.find('}', i + 1);
      if (close != std::string_view::npos && AppendValue(out, text.substr(i + 1, close - i - 1), values)) {
        i = close;
        continue;
      }
    }
    out += c;
  }
  return out;
}

ReplyValues CampaignReplyValues(const config::Campaign& campaign) {
  ReplyValues v;
  v.campaign = campaign.name;
  v.shortcode = campaign.shortcode;
  v.keyword = campaign.keyword;
  v.unit_price_vnd = campaign.unit_price_vnd;
  return v;
}

}  // namespace donagate::billing
