#include "billing/domain/keywords.h"

#include <string>

#include "billing/domain/campaign.h"
#include "config/text_fold.h"

namespace donagate::billing {
namespace {

bool AnyAliasMatches(const std::vector<std::string>& aliases, const std::string& folded) {
  for (const std::string& a : aliases) {
    if (config::FoldForMatching(a) == folded) return true;
  }
  return false;
}

}  // namespace

std::string_view ToString(MoKind kind) {
  switch (kind) {
    case MoKind::kDonate: return "donate";
    case MoKind::kHelp: return "help";
    case MoKind::kStop: return "stop";
    case MoKind::kStopAll: return "stop_all";
    case MoKind::kConfirm: return "confirm";
    case MoKind::kStatus: return "status";
    case MoKind::kUnknown: return "unknown";
  }
  return "unknown";
}

MoClassification ClassifyMo(const std::vector<config::Campaign>& campaigns, std::string_view shortcode,
                            std::string_view text) {
  MoClassification out;
  DonationMatch match = MatchDonation(campaigns, shortcode, text);
  out.campaign = match.campaign;
  out.parse = match.parse;
  if (match.campaign == nullptr) return out;
  if (match.parse.status != DonationParseStatus::kWrongKeyword &&
      match.parse.status != DonationParseStatus::kEmpty) {
    out.kind = MoKind::kDonate;
    return out;
  }
  const std::string folded = config::FoldForMatching(text);
  if (folded.empty()) return out;
  for (const config::Campaign& c : campaigns) {
    if (c.shortcode != shortcode) continue;
    MoKind kind = MoKind::kUnknown;
    if (AnyAliasMatches(c.stop_all_keywords, folded)) kind = MoKind::kStopAll;
    else if (AnyAliasMatches(c.stop_keywords, folded)) kind = MoKind::kStop;
    else if (AnyAliasMatches(c.help_keywords, folded)) kind = MoKind::kHelp;
    else if (AnyAliasMatches(c.confirm_keywords, folded)) kind = MoKind::kConfirm;
    else if (AnyAliasMatches(c.status_keywords, folded)) kind = MoKind::kStatus;
    if (kind == MoKind::kUnknown) continue;
    out.kind = kind;
    out.campaign = &c;
    if (kind == MoKind::kStopAll) {
      for (const config::Campaign& any : campaigns) out.campaigns.push_back(&any);
    } else if (kind == MoKind::kStop) {
      for (const config::Campaign& same : campaigns) {
        if (same.shortcode == shortcode && AnyAliasMatches(same.stop_keywords, folded))
          out.campaigns.push_back(&same);
      }
    }
    return out;
  }
  return out;
}

bool NeedsConfirmation(const config::Campaign& campaign, int32_t units) {
  return campaign.confirm_above_units > 0 && units > campaign.confirm_above_units;
}

bool LooksLikeOwnReply(const config::ReplyTemplates& t, std::string_view text) {
  constexpr size_t kMinPrefix = 16;
  const std::string folded = config::FoldForMatching(text);
  if (folded.size() < kMinPrefix) return false;
  const std::string* all[] = {&t.success, &t.partial, &t.insufficient, &t.syntax, &t.daily_cap,
                              &t.inactive, &t.failed, &t.help, &t.stop, &t.stop_all,
                              &t.confirm_request, &t.confirm_none, &t.status, &t.rate_limited};
  for (const std::string* tpl : all) {
    const std::string prefix = config::FoldForMatching(std::string_view(*tpl).substr(0, tpl->find('{')));
    if (prefix.size() >= kMinPrefix && folded.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

}  // namespace donagate::billing
