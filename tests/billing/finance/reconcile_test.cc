#include "billing/finance/reconcile.h"

#include <gtest/gtest.h>

#include <map>

namespace donagate::finance {
namespace {

constexpr int kIct = 7 * 3600;

struct Fixture {
  UtcRange day = LocalDayRange(*ParseDate("2026-11-27"), kIct);
  std::map<std::string, OurCharge> all;
  std::vector<OurCharge> in_day;

  void Ours(const std::string& key, int64_t amount, const std::string& outcome, int64_t at) {
    OurCharge c;
    c.key = key;
    c.donation_id = 1;
    c.msisdn = "84900000000";
    c.amount_vnd = amount;
    c.outcome = outcome;
    c.booked = outcome == "charged";
    c.booked_at = at;
    all[key] = c;
    if (c.booked && at >= day.start && at < day.end) in_day.push_back(c);
  }
  ReconcileReport Run(const std::vector<SettlementRow>& theirs) {
    return Reconcile(day, theirs, in_day, [&](const std::string& k) -> std::optional<OurCharge> {
      auto it = all.find(k);
      if (it == all.end()) return std::nullopt;
      return it->second;
    }, kIct);
  }
  SettlementRow Theirs(const std::string& ref, int64_t amount, bool charged, int64_t at, size_t line) {
    SettlementRow r;
    r.reference = ref;
    r.amount_vnd = amount;
    r.charged = charged;
    r.status = charged ? "SUCCESS" : "FAILED";
    r.has_time = true;
    r.charged_at = at;
    r.line = line;
    return r;
  }
};

TEST(Reconcile, EverythingMatches) {
  Fixture f;
  f.Ours("don-1", 20000, "charged", f.day.start + 10);
  f.Ours("don-2", 100000, "charged", f.day.start + 20);
  auto r = f.Run({f.Theirs("don-1", 20000, true, f.day.start + 11, 2), f.Theirs("don-2", 100000, true, f.day.start + 21, 3)});
  EXPECT_EQ(r.matched, 2);
  EXPECT_EQ(r.matched_vnd, 120000);
  EXPECT_EQ(r.our_charged_vnd, r.their_charged_vnd);
  EXPECT_TRUE(r.discrepancies.empty());
}

TEST(Reconcile, EachKindOfDiscrepancy) {
  Fixture f;
  const int64_t t = f.day.start + 3600;
  f.Ours("don-1", 20000, "charged", t);             // matched
  f.Ours("don-2", 40000, "charged", t);             // operator lacks it
  f.Ours("don-3", 60000, "charged", t);             // amount differs
  f.Ours("don-4", 20000, "charged", t);             // operator says failed
  f.Ours("don-5", 20000, "insufficient_funds", t);  // operator says charged
  f.Ours("don-6", 20000, "insufficient_funds", t);  // both say not charged
  auto r = f.Run({
      f.Theirs("don-1", 20000, true, t, 2),
      f.Theirs("don-3", 80000, true, t, 3),
      f.Theirs("don-4", 20000, false, t, 4),
      f.Theirs("don-5", 20000, true, t, 5),
      f.Theirs("don-6", 20000, false, t, 6),
      f.Theirs("don-99", 20000, true, t, 7),   // we never made it
      f.Theirs("don-1", 20000, true, t, 8),    // duplicate line
  });
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.agreed_not_charged, 1);
  EXPECT_EQ(r.Count(DiscrepancyKind::kMissingAtOperator), 1);
  EXPECT_EQ(r.Count(DiscrepancyKind::kMissingInLedger), 1);
  EXPECT_EQ(r.Count(DiscrepancyKind::kAmountMismatch), 1);
  EXPECT_EQ(r.Count(DiscrepancyKind::kStatusMismatch), 2);
  EXPECT_EQ(r.Count(DiscrepancyKind::kDuplicateAtOperator), 1);
  for (auto& d : r.discrepancies) {
    if (d.kind == DiscrepancyKind::kAmountMismatch) {
      EXPECT_EQ(d.reference, "don-3");
      EXPECT_EQ(d.our_amount_vnd, 60000);
      EXPECT_EQ(d.their_amount_vnd, 80000);
      EXPECT_EQ(d.line, 3u);
    }
    if (d.kind == DiscrepancyKind::kMissingInLedger) {
      EXPECT_EQ(d.reference, "don-99");
    }
    if (d.kind == DiscrepancyKind::kMissingAtOperator) {
      EXPECT_EQ(d.reference, "don-2");
    }
  }
  EXPECT_EQ(r.our_charged_vnd, 20000 + 40000 + 60000 + 20000);
  // The operator bills the duplicate line too (don-1 twice): their total is the file's.
  EXPECT_EQ(r.their_charged_count, 5);
  EXPECT_EQ(r.their_charged_vnd, 20000 + 80000 + 20000 + 20000 + 20000);
  EXPECT_EQ(r.their_duplicate_vnd, 20000);
}

// 90 charges booked, the operator's file bills one of them twice: 91 charges, 3,460,000 VND,
// as on its invoice; the duplicate is the whole difference and shows both sides.
TEST(Reconcile, DuplicateRowIsBilledAndExplainsTheDifference) {
  Fixture f;
  std::vector<SettlementRow> theirs;
  size_t line = 1;
  for (int i = 0; i < 90; ++i) {
    const int64_t amount = i < 85 ? 40000 : 10000;  // 85 x 40,000 + 5 x 10,000 = 3,450,000
    const std::string key = "don-" + std::to_string(i + 1);
    f.Ours(key, amount, "charged", f.day.start + 60 * i);
    theirs.push_back(f.Theirs(key, amount, true, f.day.start + 60 * i + 1, ++line));
  }
  theirs.push_back(f.Theirs("don-88", 10000, true, f.day.start + 7200, ++line));  // line 92
  auto r = f.Run(theirs);
  EXPECT_EQ(r.our_charged_count, 90);
  EXPECT_EQ(r.our_charged_vnd, 3450000);
  EXPECT_EQ(r.their_charged_count, 91);
  EXPECT_EQ(r.their_charged_vnd, 3460000);
  EXPECT_EQ(r.their_duplicate_count, 1);
  EXPECT_EQ(r.their_charged_vnd - r.our_charged_vnd, r.their_duplicate_vnd);
  EXPECT_EQ(r.matched, 90);
  ASSERT_EQ(r.discrepancies.size(), 1u);
  const Discrepancy& d = r.discrepancies[0];
  EXPECT_EQ(d.kind, DiscrepancyKind::kDuplicateAtOperator);
  EXPECT_EQ(d.reference, "don-88");
  EXPECT_EQ(d.our_amount_vnd, 10000);  // we booked it once: our side is shown, not 0
  EXPECT_EQ(d.our_status, "charged");
  EXPECT_EQ(d.their_amount_vnd, 10000);
  EXPECT_EQ(d.their_status, "SUCCESS");
  EXPECT_EQ(d.line, 92u);
  EXPECT_NE(d.detail.find("first on line 89"), std::string::npos) << d.detail;
}

// A repeated line the operator does not charge is still reported, but it is not money.
TEST(Reconcile, RepeatedNotChargedLineIsReportedButNotBilled) {
  Fixture f;
  f.Ours("don-1", 20000, "charged", f.day.start + 10);
  auto r = f.Run({f.Theirs("don-1", 20000, true, f.day.start + 11, 2),
                  f.Theirs("don-1", 20000, false, f.day.start + 12, 3)});
  EXPECT_EQ(r.their_charged_count, 1);
  EXPECT_EQ(r.their_charged_vnd, 20000);
  EXPECT_EQ(r.their_duplicate_count, 0);
  ASSERT_EQ(r.Count(DiscrepancyKind::kDuplicateAtOperator), 1);
  EXPECT_EQ(r.discrepancies[0].our_amount_vnd, 20000);
  EXPECT_EQ(r.discrepancies[0].their_status, "FAILED");
}

// Refunded at the operator and reversed by us: still a status mismatch of the charge's day (our
// booking stays), but the detail says we reversed it, so finance can close it.
TEST(Reconcile, RefundedRowOfAReversedDonationSaysItWasReversed) {
  Fixture f;
  f.Ours("don-1", 20000, "charged", f.day.start + 10);
  f.Ours("don-2", 20000, "charged", f.day.start + 20);
  f.all["don-1"].reversed = true;
  f.all["don-1"].reversed_at = f.day.end + 3600;  // 01:00 the next local day
  SettlementRow refunded = f.Theirs("don-1", 20000, false, f.day.start + 11, 2);
  refunded.status = "REFUNDED";
  SettlementRow refunded_not_reversed = f.Theirs("don-2", 20000, false, f.day.start + 21, 3);
  refunded_not_reversed.status = "REFUNDED";
  auto r = f.Run({refunded, refunded_not_reversed});
  ASSERT_EQ(r.Count(DiscrepancyKind::kStatusMismatch), 2);
  EXPECT_EQ(r.our_charged_vnd - r.their_charged_vnd, 40000);
  EXPECT_EQ(r.discrepancies[0].our_status, "charged");
  EXPECT_EQ(r.discrepancies[0].their_status, "REFUNDED");
  EXPECT_EQ(r.discrepancies[0].detail,
            "we booked a charge the operator reports as REFUNDED; the donation was reversed 2026-11-28 01:00:00+07:00");
  EXPECT_EQ(r.discrepancies[1].detail, "we booked a charge the operator reports as REFUNDED");
}

TEST(Reconcile, DayEdgesUseTheOperatorsDateAndExplainTheOtherSide) {
  Fixture f;
  f.Ours("don-a", 20000, "charged", f.day.end - 1);  // 23:59:59 local, ours
  f.Ours("don-b", 20000, "charged", f.day.end - 1);  // operator dated it the next day
  auto r = f.Run({
      f.Theirs("don-a", 20000, true, f.day.end - 1, 2),
      f.Theirs("don-b", 20000, true, f.day.end + 1, 3),  // 00:00:01 next day: not this day's row
      f.Theirs("don-c", 20000, true, f.day.start - 1, 4),  // previous day: ignored
  });
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.their_rows_outside_day, 2);
  ASSERT_EQ(r.discrepancies.size(), 1u);
  EXPECT_EQ(r.discrepancies[0].kind, DiscrepancyKind::kMissingAtOperator);
  EXPECT_NE(r.discrepancies[0].detail.find("00:00:01"), std::string::npos) << r.discrepancies[0].detail;
}

}  // namespace
}  // namespace donagate::finance
