// Reconciliation of our ledger against an operator's settlement file for one finance day.
//
// Our side: every charge booked in the ledger (debit receivable:<operator>) during the day,
// keyed by its charge reference (the idempotency key operators echo back). Their side: the
// settlement rows of that day. Rows are matched by reference, wherever the other side dated
// them, so a charge booked at 23:59:59.9 that the operator dated 00:00:00.2 the next day is
// shown with both dates instead of disappearing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "billing/finance/settlement.h"
#include "billing/finance/time_util.h"

namespace donagate::finance {

struct OurCharge {
  std::string key;
  int64_t donation_id = 0;
  std::string msisdn;
  int64_t amount_vnd = 0;
  std::string outcome;       // charge.outcome: charged, insufficient_funds, unknown, ...
  bool booked = false;       // has a ledger journal (charged)
  int64_t booked_at = 0;     // UTC epoch seconds of the ledger journal
  // Finance reversed the donation (its reversing journal exists): an operator row saying
  // "refunded" for this reference is then expected, and the discrepancy says so.
  bool reversed = false;
  int64_t reversed_at = 0;   // UTC epoch seconds of the reversing journal
};

enum class DiscrepancyKind {
  kMissingAtOperator,   // we booked it, the operator's file does not charge it
  kMissingInLedger,     // the operator charged it, we have no such charge
  kAmountMismatch,      // both charged, amounts differ
  kStatusMismatch,      // one side charged, the other says failed / not charged / unknown
  kDuplicateAtOperator  // the same reference again in the operator's file (each repeat line)
};
const char* DiscrepancyKindName(DiscrepancyKind kind);

struct Discrepancy {
  DiscrepancyKind kind;
  std::string reference;
  std::string msisdn;
  int64_t our_amount_vnd = 0;
  int64_t their_amount_vnd = 0;
  std::string our_status;     // "" when we have nothing
  std::string their_status;   // "" when the operator has nothing
  size_t line = 0;            // line in the settlement file, 0 when absent there
  std::string detail;
};

struct ReconcileReport {
  int64_t matched = 0;             // charged on both sides, same amount
  int64_t agreed_not_charged = 0;  // operator row not charged, and we did not book it either
  int64_t their_rows_outside_day = 0;
  int64_t our_charged_count = 0;
  int64_t our_charged_vnd = 0;     // booked during the day
  // What the operator's file bills for the day: every charged row dated in the day, duplicates
  // included, so it equals the operator's invoice. The duplicates' share is counted apart: it is
  // the part of the difference to our side that the duplicate_at_operator lines explain.
  int64_t their_charged_count = 0;
  int64_t their_charged_vnd = 0;
  int64_t their_duplicate_count = 0;  // charged rows repeating a reference already in the day
  int64_t their_duplicate_vnd = 0;
  int64_t matched_vnd = 0;
  std::vector<Discrepancy> discrepancies;
  int64_t Count(DiscrepancyKind kind) const;
};

// `ours_in_day`: our booked charges of the day. `lookup`: our charge for any reference
// (booked or not, any day), std::nullopt when we never made it.
ReconcileReport Reconcile(const UtcRange& day, const std::vector<SettlementRow>& their_rows,
                          const std::vector<OurCharge>& ours_in_day,
                          const std::function<std::optional<OurCharge>(const std::string&)>& lookup,
                          int display_offset_seconds);

// The report's figures by name, in the order donagatectl reconcile --format json prints them
// (the console stores the same names as a run's totals): matched, matched_vnd, ours_charged,
// ours_vnd, theirs_charged, theirs_vnd, theirs_duplicate_charged, theirs_duplicate_vnd,
// agreed_not_charged, theirs_outside_day, then one count per DiscrepancyKindName.
std::vector<std::pair<std::string, int64_t>> ReconcileFigures(const ReconcileReport& report);

// The discrepancy CSV (RFC 4180, CRLF): a header, then one record per discrepancy with both
// sides. The same file from donagatectl reconcile --discrepancies and the console's download.
void WriteDiscrepancyCsv(std::ostream& out, const ReconcileReport& report);

}  // namespace donagate::finance
