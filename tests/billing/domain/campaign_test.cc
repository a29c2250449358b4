// Campaign rules: which campaign an MO is for, active window, daily cap, price.
#include "billing/domain/campaign.h"

#include <gtest/gtest.h>

namespace donagate::billing {
namespace {

using namespace std::chrono;

config::Campaign Make(std::string name, std::string keyword, std::string shortcode) {
  config::Campaign c;
  c.name = std::move(name);
  c.keyword = std::move(keyword);
  c.shortcode = std::move(shortcode);
  return c;
}

sys_seconds At(int y, unsigned m, unsigned d, int h, int min = 0) {
  return sys_days(year{y} / month{m} / day{d}) + hours(h) + minutes(min);
}

TEST(CampaignTest, FinanceDayIsHoChiMinhCalendarDay) {
  // 2026-11-30 16:59 UTC is 23:59 in Ho Chi Minh City; 17:00 UTC is the next day there.
  EXPECT_EQ(FinanceDay(At(2026, 11, 30, 16, 59)), sys_days(year{2026} / 11 / 30));
  EXPECT_EQ(FinanceDay(At(2026, 11, 30, 17, 0)), sys_days(year{2026} / 12 / 1));
  EXPECT_EQ(FinanceDay(At(2026, 12, 31, 20, 0)), sys_days(year{2027} / 1 / 1));
}

TEST(CampaignTest, MatchByShortcodeAndKeyword) {
  std::vector<config::Campaign> cs = {Make("a", "CV", "1407"), Make("b", "UH", "1407"), Make("c", "CV", "1408")};
  DonationMatch m = MatchDonation(cs, "1407", "uh 3");
  ASSERT_NE(m.campaign, nullptr);
  EXPECT_EQ(m.campaign->name, "b");
  EXPECT_EQ(m.parse.units, 3);
  m = MatchDonation(cs, "1408", "CV 2");
  EXPECT_EQ(m.campaign->name, "c");
  EXPECT_TRUE(m.parse.ok());
  m = MatchDonation(cs, "1407", "CV 0");
  EXPECT_EQ(m.campaign->name, "a");
  EXPECT_EQ(m.parse.status, DonationParseStatus::kZeroUnits);
  // No keyword matches: the first campaign on the shortcode answers with its help text.
  m = MatchDonation(cs, "1407", "hello");
  EXPECT_EQ(m.campaign->name, "a");
  EXPECT_EQ(m.parse.status, DonationParseStatus::kWrongKeyword);
  m = MatchDonation(cs, "1407", "  ");
  EXPECT_EQ(m.parse.status, DonationParseStatus::kEmpty);
  m = MatchDonation(cs, "9999", "CV 1");
  EXPECT_EQ(m.campaign, nullptr);
  EXPECT_EQ(m.parse.status, DonationParseStatus::kWrongKeyword);
}

TEST(CampaignTest, PriceIsUnitsTimesUnitPrice) {
  config::Campaign c = Make("a", "CV", "1407");
  PricedDonation p = PriceDonation(c, 5, 0, system_clock::now());
  EXPECT_EQ(p.decision, DonationDecision::kCharge);
  EXPECT_EQ(p.amount_vnd, 100000);
  EXPECT_EQ(p.units, 5);
}

TEST(CampaignTest, ActiveWindowFromInclusiveToExclusive) {
  config::Campaign c = Make("a", "CV", "1407");
  c.active_from = At(2026, 12, 1, 0);
  c.active_to = At(2026, 12, 2, 0);
  EXPECT_EQ(PriceDonation(c, 1, 0, At(2026, 11, 30, 23, 59)).decision, DonationDecision::kInactive);
  EXPECT_EQ(PriceDonation(c, 1, 0, At(2026, 11, 30, 23, 59)).reply_if_rejected, ReplyKind::kInactive);
  EXPECT_EQ(PriceDonation(c, 1, 0, At(2026, 12, 1, 0)).decision, DonationDecision::kCharge);
  EXPECT_EQ(PriceDonation(c, 1, 0, At(2026, 12, 1, 23, 59)).decision, DonationDecision::kCharge);
  EXPECT_EQ(PriceDonation(c, 1, 0, At(2026, 12, 2, 0)).decision, DonationDecision::kInactive);
}

TEST(CampaignTest, DailyCapRefusesTheWholeMessage) {
  config::Campaign c = Make("a", "CV", "1407");
  c.max_units_per_day_per_msisdn = 10;
  EXPECT_EQ(PriceDonation(c, 10, 0, system_clock::now()).decision, DonationDecision::kCharge);
  EXPECT_EQ(PriceDonation(c, 4, 6, system_clock::now()).decision, DonationDecision::kCharge);
  PricedDonation p = PriceDonation(c, 5, 6, system_clock::now());
  EXPECT_EQ(p.decision, DonationDecision::kDailyCap);
  EXPECT_EQ(p.reply_if_rejected, ReplyKind::kDailyCap);
  EXPECT_EQ(p.amount_vnd, 100000);
  c.max_units_per_day_per_msisdn = 0;  // no cap
  EXPECT_EQ(PriceDonation(c, 100, 1000000, system_clock::now()).decision, DonationDecision::kCharge);
}

TEST(CampaignTest, OverflowIsRefused) {
  config::Campaign c = Make("a", "CV", "1407");
  c.unit_price_vnd = int64_t{1} << 40;
  EXPECT_EQ(PriceDonation(c, 1 << 30, 0, system_clock::now()).decision, DonationDecision::kAmountOverflow);
}

}  // namespace
}  // namespace donagate::billing
