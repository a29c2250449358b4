// Reply rendering: the texts subscribers receive, with Vietnamese amount formatting.
#include "billing/domain/reply_template.h"

#include <gtest/gtest.h>

#include "billing/domain/campaign.h"
#include "config/loader.h"

namespace donagate::billing {
namespace {

config::Campaign MakeCampaign() {
  config::Campaign c;
  c.name = "Vi mien Trung";
  return c;
}

TEST(ReplyTemplateTest, DefaultSuccessReply) {
  config::Campaign c = MakeCampaign();
  ReplyValues v = CampaignReplyValues(c);
  v.amount_vnd = 100000;
  v.ref = "don-42";
  v.units = 5;
  v.charged_units = 5;
  EXPECT_EQ(RenderReply(TemplateFor(c.templates, ReplyKind::kSuccess), v),
            "Cam on Quy khach da ung ho 100.000 dong cho chuong trinh Vi mien Trung. Ma GD: don-42");
}

TEST(ReplyTemplateTest, DefaultPartialAndSyntaxReplies) {
  config::Campaign c = MakeCampaign();
  ReplyValues v = CampaignReplyValues(c);
  v.amount_vnd = 60000;
  v.units = 5;
  v.charged_units = 3;
  v.missing_units = 2;
  EXPECT_EQ(RenderReply(TemplateFor(c.templates, ReplyKind::kPartial), v),
            "Quy khach da ung ho 3/5 lan (60.000 dong). Tai khoan khong du cho 2 lan con lai.");
  EXPECT_EQ(RenderReply(TemplateFor(c.templates, ReplyKind::kSyntax), v),
            "Sai cu phap. De ung ho, soan CV n gui 1407 (n la so lan ung ho, moi lan 20.000 dong).");
}

TEST(ReplyTemplateTest, EveryPlaceholderAndBraces) {
  ReplyValues v;
  v.amount_vnd = 1234567;
  v.campaign = "C";
  v.ref = "don-1-2";
  v.units = 7;
  v.charged_units = 4;
  v.missing_units = 3;
  v.shortcode = "1407";
  v.keyword = "CV";
  v.unit_price_vnd = 20000;
  EXPECT_EQ(RenderReply("{amount}|{campaign}|{ref}|{units}|{charged_units}|{missing_units}|{shortcode}|"
                        "{keyword}|{unit_price}|{{literal}}|}}",
                        v),
            "1.234.567|C|don-1-2|7|4|3|1407|CV|20.000|{literal}|}");
}

TEST(ReplyTemplateTest, UnvalidatedUnknownPlaceholderIsCopiedVerbatim) {
  ReplyValues v;
  EXPECT_EQ(RenderReply("x {msisdn} {", v), "x {msisdn} {");
}

TEST(ReplyTemplateTest, AllDefaultTemplatesPassTheLoaderValidation) {
  config::ReplyTemplates t;
  for (ReplyKind k : {ReplyKind::kSuccess, ReplyKind::kPartial, ReplyKind::kInsufficient, ReplyKind::kSyntax,
                      ReplyKind::kDailyCap, ReplyKind::kInactive, ReplyKind::kFailed}) {
    EXPECT_EQ(config::ValidateTemplate(TemplateFor(t, k)), "") << ToString(k);
    // GSM 7-bit friendly and within one SMS.
    const std::string& text = TemplateFor(t, k);
    for (unsigned char ch : text) EXPECT_LT(ch, 0x80) << ToString(k);
    EXPECT_LE(text.size(), 160u) << ToString(k);
  }
}

}  // namespace
}  // namespace donagate::billing
