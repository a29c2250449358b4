// What a subscriber's MO asks for: a donation ("CV n"), or one of the keyword flows (HELP, STOP,
// STOP ALL, a confirmation, a status query), plus the reply-safety rules that decide whether an
// MO may be answered at all. Pure functions over config data (docs/pipeline.md "Keywords").
//
// Classification of an MO to shortcode S with text T:
//  1. T is a "CV n" attempt for a campaign on S (ParseDonation says anything but wrong_keyword
//     or empty): kDonate, with that campaign and the parse (which may be an error: the caller
//     answers those with the help text as before). An ordinary "CV n" is decided here without
//     folding anything, so the hot path costs what it did.
//  2. Else FoldForMatching(T) (config/text_fold.h: case, separators, full-width forms,
//     Vietnamese diacritics) is compared with the aliases of the campaigns on S, in campaign
//     order: stop_all, stop, help, confirm, status. The first campaign with a matching alias
//     decides the kind; for kStop every campaign on S whose stop alias matches is listed;
//     for kStopAll every configured campaign (any shortcode) is listed.
//  3. Else kUnknown: the first campaign on S answers with its help (syntax) text; no campaign
//     on S at all leaves `campaign` nullptr.
// The loader guarantees an alias is at most one kind per campaign and never reads as a donation.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "billing/domain/donation_parser.h"
#include "config/config.h"

namespace donagate::billing {

enum class MoKind { kDonate, kHelp, kStop, kStopAll, kConfirm, kStatus, kUnknown };

// "donate", "help", "stop", "stop_all", "confirm", "status", "unknown".
std::string_view ToString(MoKind kind);

struct MoClassification {
  MoKind kind = MoKind::kUnknown;
  // kDonate: the campaign whose keyword matched; keyword kinds: the first campaign with a
  // matching alias; kUnknown: the first campaign on the shortcode (nullptr: none).
  const config::Campaign* campaign = nullptr;
  // kStop / kStopAll: every campaign the opt-out applies to (campaign is the first of them).
  std::vector<const config::Campaign*> campaigns;
  DonationParse parse;  // kDonate: the parse; otherwise kWrongKeyword or kEmpty
};

MoClassification ClassifyMo(const std::vector<config::Campaign>& campaigns, std::string_view shortcode,
                            std::string_view text);

// Whether a donation of `units` to `campaign` waits for a confirming MO before it is charged:
// confirm_above_units > 0 and units > confirm_above_units.
bool NeedsConfirmation(const config::Campaign& campaign, int32_t units);

// Reply safety: true when `text` reads as one of our own replies coming back (a phone or
// gateway that echoes what it receives): its folded form starts with the folded fixed start
// (the text before the first placeholder, when that is at least 16 characters after folding) of
// one of `templates`. Such an MO is recorded and never answered, so one message cannot start a
// reply loop. Only called for texts that are not a "CV n" (a donation is never refused for this).
bool LooksLikeOwnReply(const config::ReplyTemplates& templates, std::string_view text);

}  // namespace donagate::billing
