#include "billing/finance/reconcile.h"

#include "billing/finance/csv.h"

#include <unordered_map>
#include <unordered_set>

namespace donagate::finance {

const char* DiscrepancyKindName(DiscrepancyKind kind) {
  switch (kind) {
    case DiscrepancyKind::kMissingAtOperator: return "missing_at_operator";
    case DiscrepancyKind::kMissingInLedger: return "missing_in_ledger";
    case DiscrepancyKind::kAmountMismatch: return "amount_mismatch";
    case DiscrepancyKind::kStatusMismatch: return "status_mismatch";
    case DiscrepancyKind::kDuplicateAtOperator: return "duplicate_at_operator";
  }
  return "?";
}

int64_t ReconcileReport::Count(DiscrepancyKind kind) const {
  int64_t n = 0;
  for (auto& d : discrepancies) n += (d.kind == kind);
  return n;
}

ReconcileReport Reconcile(const UtcRange& day, const std::vector<SettlementRow>& their_rows,
                          const std::vector<OurCharge>& ours_in_day,
                          const std::function<std::optional<OurCharge>(const std::string&)>& lookup,
                          int display_offset_seconds) {
  ReconcileReport r;
  for (auto& o : ours_in_day) {
    ++r.our_charged_count;
    r.our_charged_vnd += o.amount_vnd;
  }
  std::unordered_set<std::string> seen_ours;             // our references the file accounted for
  std::unordered_map<std::string, const SettlementRow*> theirs_by_ref;  // every row, any day
  for (auto& row : their_rows) theirs_by_ref.emplace(row.reference, &row);

  std::unordered_map<std::string, size_t> first_line_of_ref;  // references of the day -> first line
  for (auto& row : their_rows) {
    const bool in_day = !row.has_time || (row.charged_at >= day.start && row.charged_at < day.end);
    if (!in_day) {
      ++r.their_rows_outside_day;
      continue;
    }
    // The operator bills every charged row, a repeated one too: their total is the invoice's.
    if (row.charged) {
      ++r.their_charged_count;
      r.their_charged_vnd += row.amount_vnd;
    }
    std::optional<OurCharge> ours = lookup(row.reference);
    auto [first, is_first] = first_line_of_ref.emplace(row.reference, row.line);
    if (!is_first) {
      // Matched once already (from its first line); this line is the discrepancy. Both sides are
      // shown, so finance sees what we booked next to what the operator billed again.
      if (row.charged) {
        ++r.their_duplicate_count;
        r.their_duplicate_vnd += row.amount_vnd;
      }
      r.discrepancies.push_back({DiscrepancyKind::kDuplicateAtOperator, row.reference, row.msisdn,
                                 ours ? ours->amount_vnd : 0, row.amount_vnd, ours ? ours->outcome : "", row.status,
                                 row.line,
                                 "reference appears more than once (first on line " + std::to_string(first->second) +
                                     ")" + (row.charged ? "; this line bills it again" : "")});
      continue;
    }
    if (ours) seen_ours.insert(row.reference);
    const bool we_booked = ours && ours->booked;
    if (row.charged) {
      if (!ours) {
        r.discrepancies.push_back({DiscrepancyKind::kMissingInLedger, row.reference, row.msisdn, 0,
                                   row.amount_vnd, "", row.status, row.line, "no charge with this reference"});
      } else if (!we_booked) {
        r.discrepancies.push_back({DiscrepancyKind::kStatusMismatch, row.reference, row.msisdn, ours->amount_vnd,
                                   row.amount_vnd, ours->outcome, row.status, row.line,
                                   "operator charged, our charge is " + ours->outcome});
      } else if (ours->amount_vnd != row.amount_vnd) {
        r.discrepancies.push_back({DiscrepancyKind::kAmountMismatch, row.reference, row.msisdn, ours->amount_vnd,
                                   row.amount_vnd, ours->outcome, row.status, row.line, ""});
      } else {
        ++r.matched;
        r.matched_vnd += row.amount_vnd;
      }
    } else {
      if (we_booked) {
        // Still a discrepancy of the day (the booking stays, the reversal is its own journal),
        // but one finance can close by reading it: the detail says we reversed it too.
        std::string detail = "we booked a charge the operator reports as " + row.status;
        if (ours->reversed)
          detail += "; the donation was reversed " + FormatTimestamp(ours->reversed_at, display_offset_seconds);
        r.discrepancies.push_back({DiscrepancyKind::kStatusMismatch, row.reference, row.msisdn, ours->amount_vnd,
                                   row.amount_vnd, ours->outcome, row.status, row.line, detail});
      } else {
        ++r.agreed_not_charged;
      }
    }
  }
  for (auto& o : ours_in_day) {
    if (seen_ours.count(o.key)) continue;
    std::string detail = "not in the operator's file";
    auto it = theirs_by_ref.find(o.key);
    if (it != theirs_by_ref.end() && it->second->has_time)
      detail = "operator dated it " + FormatTimestamp(it->second->charged_at, display_offset_seconds) +
               ", outside the day";
    r.discrepancies.push_back({DiscrepancyKind::kMissingAtOperator, o.key, o.msisdn, o.amount_vnd, 0, o.outcome,
                               "", 0, detail});
  }
  return r;
}

std::vector<std::pair<std::string, int64_t>> ReconcileFigures(const ReconcileReport& r) {
  std::vector<std::pair<std::string, int64_t>> f = {
      {"matched", r.matched},
      {"matched_vnd", r.matched_vnd},
      {"ours_charged", r.our_charged_count},
      {"ours_vnd", r.our_charged_vnd},
      {"theirs_charged", r.their_charged_count},
      {"theirs_vnd", r.their_charged_vnd},
      {"theirs_duplicate_charged", r.their_duplicate_count},
      {"theirs_duplicate_vnd", r.their_duplicate_vnd},
      {"agreed_not_charged", r.agreed_not_charged},
      {"theirs_outside_day", r.their_rows_outside_day}};
  for (DiscrepancyKind k : {DiscrepancyKind::kMissingAtOperator, DiscrepancyKind::kMissingInLedger,
                            DiscrepancyKind::kAmountMismatch, DiscrepancyKind::kStatusMismatch,
                            DiscrepancyKind::kDuplicateAtOperator})
    f.emplace_back(DiscrepancyKindName(k), r.Count(k));
  return f;
}

void WriteDiscrepancyCsv(std::ostream& out, const ReconcileReport& report) {
  WriteCsvRecord(out, {"kind", "reference", "msisdn", "our_amount_vnd", "their_amount_vnd", "our_status",
                       "their_status", "settlement_line", "detail"});
  for (auto& x : report.discrepancies)
    WriteCsvRecord(out, {DiscrepancyKindName(x.kind), x.reference, x.msisdn, std::to_string(x.our_amount_vnd),
                         std::to_string(x.their_amount_vnd), x.our_status, x.their_status,
                         x.line ? std::to_string(x.line) : "", x.detail});
}

}  // namespace donagate::finance
