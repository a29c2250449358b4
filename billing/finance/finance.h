// Finance queries behind donagatectl: day reports, streamed CSV exports, the data for
// reconciliation, a donation's full story, and reversals. All read queries use only SELECT
// (the donagate_finance role suffices); reversal goes through reverse_donation() (the
// donagate_reverse role).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "billing/store/pg.h"
#include "billing/finance/reconcile.h"
#include "billing/finance/time_util.h"

namespace donagate::finance {

// One report line: one operator and campaign ("-" for messages that were not donations).
struct ReportRow {
  std::string operator_name;
  std::string campaign;
  int64_t messages = 0;          // inbound messages (receipts excluded)
  int64_t invalid_messages = 0;  // recorded but not a donation (syntax, msisdn, inactive, ...)
  int64_t donations = 0;
  int64_t units = 0;             // units asked for
  int64_t units_charged = 0;
  int64_t vnd_charged = 0;       // gross, from the ledger
  int64_t charged = 0;           // donations fully charged
  int64_t partial = 0;
  int64_t failed = 0;
  // Failed donations by reason code: the stored failure_reason up to its first ':' (the daemon
  // stores "<code>" or "<code>: <backend's detail>", e.g. "insufficient_funds: HTTP 402: balance
  // too low"), so one reason is one bucket whatever a backend's wording.
  std::map<std::string, int64_t> failed_by_reason;
  // The backend's wordings apart: code -> detail (the text after the first ':') -> count.
  // Failures stored without a detail are not listed here.
  std::map<std::string, std::map<std::string, int64_t>> failed_details;
  int64_t unknown = 0;
  int64_t pending = 0;           // received or charging (not final yet)
  int64_t awaiting = 0;          // awaiting_confirmation (a large "CV n" not confirmed yet; not charged)
  int64_t reversed = 0;
  int64_t vnd_reversed = 0;
  int64_t vnd_net() const { return vnd_charged - vnd_reversed; }
};

// Donations and messages received in [range.start, range.end) (UTC epoch seconds), grouped
// by operator and campaign, money from the ledger rows of those donations.
billing::StoreStatus QueryReport(billing::pg::Connection& conn, const UtcRange& range, std::vector<ReportRow>* rows);

enum class ReportFormat { kTable, kCsv, kJson };
// `zone` names the finance zone the days were computed in (--zone as given): the output is
// labelled with it, so a UTC report never reads as a local one.
void PrintReport(std::ostream& out, const std::vector<ReportRow>& rows, ReportFormat format,
                 const std::string& from_day, const std::string& to_day, const std::string& zone);

// Streams donations (by received_at) or ledger entries (by created_at) of a range as CSV with
// a header row, through a server-side cursor `batch` rows at a time. `progress` (may be
// empty) is called after each batch with the rows written so far.
enum class ExportKind { kDonations, kLedger };
billing::StoreStatus ExportCsv(billing::pg::Connection& conn, ExportKind kind, const UtcRange& range,
                               std::ostream& out, int display_offset_seconds, int batch,
                               const std::function<void(int64_t)>& progress, int64_t* rows_written);

// Our ledger-booked charges of `operator_name` during `range`, and a lookup of any charge by
// reference (batched by the caller through `LookupCharges`).
billing::StoreStatus QueryBookedCharges(billing::pg::Connection& conn, const std::string& operator_name,
                                        const UtcRange& range, std::vector<OurCharge>* out);
billing::StoreStatus LookupCharges(billing::pg::Connection& conn, const std::vector<std::string>& keys,
                                   std::map<std::string, OurCharge>* out);
// One reconciliation against the ledger: our booked charges of `operator_name` in `day`, every
// reference of `their_rows` looked up, then Reconcile(). donagatectl reconcile and the
// console's Reconcile page both run exactly this.
billing::StoreStatus ReconcileWithLedger(billing::pg::Connection& conn, const std::string& operator_name,
                                         const UtcRange& day, const std::vector<SettlementRow>& their_rows,
                                         int display_offset_seconds, ReconcileReport* report);

// A donation's story as data: sections (donation, message, transitions, charges, ledger,
// replies; or a subscriber's messages and replies), each with its column names and rows (NULL
// cells as std::nullopt). ShowDonation/ShowSubscriber print them; the console renders them.
struct StorySection {
  std::string title;
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};
billing::StoreStatus QueryDonationStory(billing::pg::Connection& conn, int64_t donation_id, int display_offset_seconds,
                                        std::vector<StorySection>* story, bool* found);
billing::StoreStatus QuerySubscriberStory(billing::pg::Connection& conn, const std::string& msisdn,
                                          int display_offset_seconds, std::vector<StorySection>* story, bool* found);
// The donation a charge reference (idempotency key) belongs to; *donation_id = 0 when none.
billing::StoreStatus FindDonationByChargeKey(billing::pg::Connection& conn, const std::string& key,
                                             int64_t* donation_id);

// Donations received and VND charged (gross, from the ledger, as QueryReport counts them) per
// bucket of `bucket_seconds` (3600 or 86400) aligned to the finance zone, every bucket of the
// range listed (zeros included).
struct SeriesPoint {
  int64_t bucket_start = 0;  // UTC epoch seconds
  int64_t donations = 0;
  int64_t vnd_charged = 0;
};
billing::StoreStatus QuerySeries(billing::pg::Connection& conn, const UtcRange& range, int64_t bucket_seconds,
                                 int display_offset_seconds, std::vector<SeriesPoint>* points);

// Prints everything known about one donation, or about every donation and message of one
// subscriber: messages, state transitions, charges, ledger rows, replies and receipts.
billing::StoreStatus ShowDonation(billing::pg::Connection& conn, int64_t donation_id, std::ostream& out,
                                  int display_offset_seconds, bool* found);
billing::StoreStatus ShowSubscriber(billing::pg::Connection& conn, const std::string& msisdn, std::ostream& out,
                                    int display_offset_seconds, bool* found);

struct ReversalOutcome {
  int64_t journal_id = 0;
  int64_t amount_vnd = 0;
  bool already_reversed = false;
};
// Appends the reversing journal (idempotent). A donation that is not charged is refused with
// a permanent status carrying the database's reason.
billing::StoreStatus ReverseDonation(billing::pg::Connection& conn, int64_t donation_id, const std::string& reason,
                                     const std::string& actor, ReversalOutcome* outcome);
// The one sentence a finance user reads when ReverseDonation refused (`refusal` is its status):
// "donation 123 cannot be reversed: it is not charged (state failed)". Built from the SQLSTATE
// reverse_donation() raises, never showing the server's PL/pgSQL context (the raw message stays
// in `refusal.message()`, for --verbose).
std::string ExplainReversalRefusal(int64_t donation_id, const billing::StoreStatus& refusal);

}  // namespace donagate::finance

namespace donagate::config {
struct Config;
}

namespace donagate::finance {

struct RefundLine {
  std::string key;
  int64_t amount_vnd = 0;
  std::string outcome;  // billing::RefundOutcome name ("refunded", "unknown", ...)
  std::string detail;
};

// Asks the operator's charging backend (from `config`'s [[charging]] for the donation's
// operator) to refund every charged key of the donation, waiting for all answers.
// *supported=false when that backend has no refunds (nothing is called). Never writes to the
// database: the caller reverses the ledger only once every key says refunded.
billing::StoreStatus RefundAtOperator(billing::pg::Connection& conn, const config::Config& config, int64_t donation_id,
                                      bool* supported, std::vector<RefundLine>* lines);

// The refund step of a reversal, as donagatectl reverse --refund and the console's approval
// run it: RefundAtOperator, then the decision. `may_reverse` is true when the ledger may now be
// reversed (the backend has no refunds, or every key answered "refunded"); `reason_suffix` is
// appended to the reversal's reason (" (refunded at the operator)" when money went back).
// A non-ok status (no [[charging]] entry, database) means: do not reverse.
struct RefundForReversal {
  bool supported = false;
  bool may_reverse = false;
  std::vector<RefundLine> lines;
  std::string reason_suffix;
};
billing::StoreStatus RefundBeforeReversal(billing::pg::Connection& conn, const config::Config& config,
                                          int64_t donation_id, RefundForReversal* out);

}  // namespace donagate::finance
