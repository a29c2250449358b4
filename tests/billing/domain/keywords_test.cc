// Keyword classification (billing/domain/keywords.h) and its folding (config/text_fold.h):
// every keyword and tolerance form, table-driven.
#include "billing/domain/keywords.h"

#include <gtest/gtest.h>

#include "config/text_fold.h"

namespace donagate::billing {
namespace {

std::vector<config::Campaign> TwoCampaigns() {
  config::Campaign a;
  a.name = "Vi mien Trung";
  config::Campaign b;
  b.name = "Hoc bong";
  b.keyword = "HB";
  config::Campaign other;
  other.name = "Other shortcode";
  other.shortcode = "1408";
  return {a, b, other};
}

struct Case {
  const char* text;
  MoKind kind;
};

TEST(KeywordsTest, ClassifiesEveryDefaultKeywordWithTheCvTolerance) {
  const auto campaigns = TwoCampaigns();
  const Case cases[] = {
      // donations stay donations, whatever their parse
      {"CV 5", MoKind::kDonate}, {"cv", MoKind::kDonate}, {"CV-0", MoKind::kDonate},
      {"CV 5 ung ho", MoKind::kDonate}, {"HB 2", MoKind::kDonate},
      // help
      {"HELP", MoKind::kHelp}, {"help", MoKind::kHelp}, {" Help! ", MoKind::kHelp},
      {"HD", MoKind::kHelp}, {"hd.", MoKind::kHelp}, {"?", MoKind::kHelp}, {"??", MoKind::kHelp},
      {"\xEF\xBC\xA8\xEF\xBC\xA4", MoKind::kHelp},                    // full-width "ＨＤ"
      {"\xEF\xBC\x9F", MoKind::kHelp},                                // full-width "？"
      // stop
      {"STOP", MoKind::kStop}, {"stop", MoKind::kStop}, {"HUY", MoKind::kStop},
      {"H\xE1\xBB\xA6Y", MoKind::kStop},                              // "HỦY"
      {"hu\xCC\x89y", MoKind::kStop},                                 // "huỷ" decomposed (u + U+0309)
      {"D\xE1\xBB\xAANG", MoKind::kStop},                             // "DỪNG"
      {"dung", MoKind::kStop}, {"\xE3\x80\x80STOP\xE3\x80\x82", MoKind::kStop},  // ideographic space, "。"
      // stop all
      {"STOP ALL", MoKind::kStopAll}, {"stop-all", MoKind::kStopAll}, {"Stop_All", MoKind::kStopAll},
      {"STOP  ALL!", MoKind::kStopAll}, {"stop.all", MoKind::kStopAll},
      // confirm
      {"Y", MoKind::kConfirm}, {"y", MoKind::kConfirm}, {"CO", MoKind::kConfirm},
      {"C\xC3\x93", MoKind::kConfirm},                                // "CÓ"
      {"c\xC3\xb3.", MoKind::kConfirm},                               // "có."
      // status
      {"TRA", MoKind::kStatus}, {"tra", MoKind::kStatus}, {"TR\xC3\x80", MoKind::kStatus},  // "TRÀ"
      {"\xEF\xBC\xB4\xEF\xBC\xB2\xEF\xBC\xA1", MoKind::kStatus},      // "ＴＲＡ"
      // unknown
      {"", MoKind::kUnknown}, {"   ", MoKind::kUnknown}, {"STOPALL", MoKind::kUnknown},
      {"YES", MoKind::kUnknown}, {"HELP ME", MoKind::kUnknown}, {"Ung ho CV 5", MoKind::kUnknown},
      {"!", MoKind::kUnknown}, {"\xFF\xFE", MoKind::kUnknown},
  };
  for (const Case& c : cases) {
    MoClassification got = ClassifyMo(campaigns, "1407", c.text);
    EXPECT_EQ(ToString(got.kind), ToString(c.kind)) << "text: \"" << c.text << "\"";
    ASSERT_NE(got.campaign, nullptr) << c.text;
    EXPECT_EQ(got.campaign->shortcode, "1407") << c.text;
  }
}

TEST(KeywordsTest, NoCampaignOnTheShortcodeMeansNoCampaignAtAll) {
  const auto campaigns = TwoCampaigns();
  MoClassification got = ClassifyMo(campaigns, "9999", "HELP");
  EXPECT_EQ(got.kind, MoKind::kUnknown);
  EXPECT_EQ(got.campaign, nullptr);
}

TEST(KeywordsTest, StopListsEveryCampaignOfTheShortcodeAndStopAllEveryCampaign) {
  const auto campaigns = TwoCampaigns();
  MoClassification stop = ClassifyMo(campaigns, "1407", "HUY");
  ASSERT_EQ(stop.campaigns.size(), 2u);
  EXPECT_EQ(stop.campaigns[0]->name, "Vi mien Trung");
  EXPECT_EQ(stop.campaigns[1]->name, "Hoc bong");
  MoClassification all = ClassifyMo(campaigns, "1407", "STOP ALL");
  ASSERT_EQ(all.campaigns.size(), 3u);
  EXPECT_EQ(all.campaigns[2]->name, "Other shortcode");
}

TEST(KeywordsTest, PerCampaignAliasesReplaceTheDefaults) {
  auto campaigns = TwoCampaigns();
  campaigns[0].help_keywords = {"TRO GIUP"};
  campaigns[0].status_keywords = {"KT", "kiem tra"};
  campaigns[1].help_keywords = {};
  // "HELP" is no longer campaign 0's alias, and campaign 1 has none: unknown.
  EXPECT_EQ(ClassifyMo(campaigns, "1407", "HELP").kind, MoKind::kUnknown);
  EXPECT_EQ(ClassifyMo(campaigns, "1407", "tr\xE1\xBB\xA3 gi\xC3\xBAp").kind, MoKind::kHelp);  // "trợ giúp"
  EXPECT_EQ(ClassifyMo(campaigns, "1407", "KIEM-TRA").kind, MoKind::kStatus);
  EXPECT_EQ(ClassifyMo(campaigns, "1407", "TRA").kind, MoKind::kStatus);  // campaign 1 still has TRA
  EXPECT_EQ(ClassifyMo(campaigns, "1407", "TRA").campaign->name, "Hoc bong");
}

TEST(KeywordsTest, FoldingTable) {
  const std::pair<const char*, const char*> cases[] = {
      {"HELP", "help"}, {"  Stop  All  ", "stop all"}, {"stop-all", "stop all"}, {"?", "?"},
      {"HELP!", "help"}, {"HELP !", "help"}, {"a.b_c-d", "a b c d"},
      {"\xC4\x90\xE1\xBB\xAANG", "dung"},                             // "ĐỪNG"
      {"Vi\xE1\xBB\x87t Nam", "viet nam"},                            // "Việt Nam"
      {"\xC3\x81\xC3\x80\xE1\xBA\xA2\xC3\x83\xE1\xBA\xA0", "aaaaa"},  // ÁÀẢÃẠ
      {"\xC6\xA0\xC6\xAF\xC4\x82", "oua"},                            // ƠƯĂ
      {"\xEF\xBC\x9F\xEF\xBC\x9F", "?"},                              // "？？"
      {"\xFF", "\xEF\xBF\xBD"},                                       // invalid UTF-8
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(config::FoldForMatching(in), want) << in;
}

TEST(KeywordsTest, ConfirmationThresholdIsStrictlyAbove) {
  config::Campaign c;
  EXPECT_FALSE(NeedsConfirmation(c, 1000));  // default off
  c.confirm_above_units = 10;
  EXPECT_FALSE(NeedsConfirmation(c, 10));
  EXPECT_TRUE(NeedsConfirmation(c, 11));
}

TEST(KeywordsTest, OwnRepliesComingBackAreRecognised) {
  config::ReplyTemplates t;
  EXPECT_TRUE(LooksLikeOwnReply(t, "Cam on Quy khach da ung ho 20.000 dong cho chuong trinh X. Ma GD: don-1"));
  EXPECT_TRUE(LooksLikeOwnReply(t, "SAI CU PHAP. De ung ho, soan CV n gui 1407"));
  EXPECT_TRUE(LooksLikeOwnReply(t, "Khong co giao dich nao dang cho xac nhan. Soan CV n"));
  EXPECT_FALSE(LooksLikeOwnReply(t, "Cam on"));
  EXPECT_FALSE(LooksLikeOwnReply(t, "Toi muon ung ho mien Trung"));
  t.syntax = "{keyword}: sai";  // no fixed start long enough: never matches
  EXPECT_FALSE(LooksLikeOwnReply(t, "CV: sai"));
}

}  // namespace
}  // namespace donagate::billing
