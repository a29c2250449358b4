// The loader's checks of the keyword flows' settings (aliases, confirmation, reply encoding,
// per-subscriber limits) and of every template's worst-case part count: each refusal is one
// file:line:col: key: reason diagnostic.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"

namespace donagate::config {
namespace {

using ::testing::HasSubstr;

// Line 13 is the [[campaign]] header; appended campaign keys start at line 15.
const char* kBase = R"([[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = 2775
system_id = "donagate"
password_env = "P"
[database]
conninfo = "host=/tmp dbname=donagate"
[[charging]]
operator = "opa"
backend = "in_process"
[[campaign]]
name = "Vi mien Trung"
)";

LoadResult Load(const std::string& extra) {
  LoadOptions o;
  o.getenv = [](const std::string&) -> std::optional<std::string> { return std::string("pw"); };
  o.hostname = [] { return std::string("h"); };
  return LoadConfigFromString(std::string(kBase) + extra, "t.toml", "/nonexistent", o);
}

std::string Only(const LoadResult& r) {
  EXPECT_EQ(r.diagnostics.size(), 1u);
  std::string all;
  for (const auto& d : r.diagnostics) all += d.ToString() + "\n";
  return r.diagnostics.size() == 1 ? r.diagnostics[0].ToString() : all;
}

TEST(KeywordConfigTest, DefaultsAreTheIssuesKeywords) {
  LoadResult r = Load("");
  ASSERT_TRUE(r.ok()) << Only(r);
  const Campaign& c = r.config.campaigns[0];
  EXPECT_EQ(c.help_keywords, (std::vector<std::string>{"HELP", "HD", "?"}));
  EXPECT_EQ(c.stop_keywords, (std::vector<std::string>{"STOP", "HUY", "DUNG"}));
  EXPECT_EQ(c.stop_all_keywords, (std::vector<std::string>{"STOP ALL"}));
  EXPECT_EQ(c.confirm_keywords, (std::vector<std::string>{"Y", "CO"}));
  EXPECT_EQ(c.status_keywords, (std::vector<std::string>{"TRA"}));
  EXPECT_EQ(c.confirm_above_units, 0);
  EXPECT_EQ(c.reply_encoding, ReplyEncoding::kGsm7Ascii);
  EXPECT_EQ(r.config.pipeline.max_mos_per_minute_per_msisdn, 10);
  EXPECT_EQ(r.config.pipeline.max_replies_per_hour_per_msisdn, 20);
}

TEST(KeywordConfigTest, AliasesAreRead) {
  LoadResult r = Load("help_keywords = [\"TRO GIUP\"]\nstatus_keywords = [\"KT\", \"TRA\"]\n"
                      "confirm_above_units = 10\nconfirm_window_s = 120\n");
  ASSERT_TRUE(r.ok()) << Only(r);
  EXPECT_EQ(r.config.campaigns[0].help_keywords, (std::vector<std::string>{"TRO GIUP"}));
  EXPECT_EQ(r.config.campaigns[0].confirm_above_units, 10);
  EXPECT_EQ(r.config.campaigns[0].confirm_window_s, 120);
}

TEST(KeywordConfigTest, AnAliasOfTwoKindsIsRefusedEvenWithDifferentSpelling) {
  EXPECT_EQ(Only(Load("stop_keywords = [\"STOP\"]\nhelp_keywords = [\"stop!\"]\n")),
            "t.toml:15:17: campaign[0].stop_keywords: 'STOP' is also in help_keywords "
            "(aliases are compared without case, separators or diacritics)");
  EXPECT_THAT(Only(Load("confirm_keywords = [\"C\xC3\x93\"]\nstatus_keywords = [\"co\"]\n")),
              HasSubstr("t.toml:16:19: campaign[0].status_keywords: 'co' is also in confirm_keywords"));
}

TEST(KeywordConfigTest, AnAliasThatReadsAsADonationIsRefused) {
  EXPECT_EQ(Only(Load("help_keywords = [\"cv 1\"]\n")),
            "t.toml:15:17: campaign[0].help_keywords: 'cv 1' reads as the donation keyword 'CV'");
  EXPECT_THAT(Only(Load("status_keywords = [\"CV\"]\n")), HasSubstr("reads as the donation keyword"));
  EXPECT_TRUE(Load("status_keywords = [\"CVX\"]\n").ok());  // "CVX 5" is not "CV 5" either
}

TEST(KeywordConfigTest, EmptyOrWrongAliasesAreRefused) {
  EXPECT_THAT(Only(Load("stop_keywords = [\" - \"]\n")), HasSubstr("campaign[0].stop_keywords: ' - ' must be 1..40 bytes"));
  EXPECT_THAT(Only(Load("stop_keywords = [1]\n")), HasSubstr("campaign[0].stop_keywords[0]: expected a string"));
  EXPECT_THAT(Only(Load("stop_keywords = \"STOP\"\n")), HasSubstr("expected an array of strings"));
}

TEST(KeywordConfigTest, ConfirmationSettingsAreChecked) {
  EXPECT_EQ(Only(Load("confirm_above_units = 5\nconfirm_keywords = []\n")),
            "t.toml:15:23: campaign[0].confirm_above_units: needs at least one confirm_keywords "
            "alias (nothing could confirm)");
  EXPECT_THAT(Only(Load("confirm_window_s = 5\n")), HasSubstr("campaign[0].confirm_window_s: 5 is outside 10..86400"));
  EXPECT_THAT(Only(Load("confirm_above_units = 100\n")), HasSubstr("is not below max_units_per_message (100)"));
  EXPECT_THAT(Only(Load("reply_encoding = \"utf8\"\n")),
              HasSubstr("campaign[0].reply_encoding: \"utf8\" is not one of \"gsm7_ascii\", \"ucs2\""));
}

TEST(KeywordConfigTest, DiacriticsNeedUcs2) {
  const std::string tpl = "[campaign.templates]\nhelp = \"Soạn {keyword} n gửi {shortcode}\"\n";
  EXPECT_EQ(Only(Load(tpl)),
            "t.toml:16:8: campaign[0].templates.help: uses characters outside printable ASCII; set "
            "reply_encoding = \"ucs2\" to send Vietnamese with diacritics");
  EXPECT_TRUE(Load("reply_encoding = \"ucs2\"\n" + tpl).ok());
}

TEST(KeywordConfigTest, ATemplateThatCanExceedTwoPartsNamesItsWorstCase) {
  // 134 UCS-2 characters fit in two parts. "{amount}" is at most 100 x 20,000 = "2.000.000"
  // (9), "{ref}" 23: 100 literal characters + 32 = 132 fits, 103 + 32 = 135 does not.
  const std::string ok100(99, 'a');
  const std::string bad103(102, 'a');
  EXPECT_TRUE(Load("reply_encoding = \"ucs2\"\n[campaign.templates]\nsuccess = \"\xC3\xA1" + ok100 +
                   "{amount}{ref}\"\n").ok());
  EXPECT_EQ(Only(Load("reply_encoding = \"ucs2\"\n[campaign.templates]\nsuccess = \"\xC3\xA1" +
                      bad103 + "{amount}{ref}\"\n")),
            "t.toml:17:11: campaign[0].templates.success: worst case 135 UCS-2 characters needs 3 "
            "parts (134 fit in 2); at most 2 parts are allowed");
  // GSM 7-bit: 306 fit in two parts; the extension characters count twice.
  EXPECT_THAT(Only(Load("[campaign.templates]\nsyntax = \"" + std::string(152, '[') + "{units}\"\n")),
              HasSubstr("campaign[0].templates.syntax: worst case 307 GSM 7-bit characters needs 3 parts (306 fit in 2)"));
  EXPECT_TRUE(Load("[campaign.templates]\nsyntax = \"" + std::string(151, '[') + "{units}\"\n").ok());
}

TEST(KeywordConfigTest, EveryDefaultTemplateFitsInBothEncodings) {
  EXPECT_TRUE(Load("").ok());
  LoadResult r = Load("reply_encoding = \"ucs2\"\n");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.diagnostics[0].ToString());
}

TEST(KeywordConfigTest, PerSubscriberLimitsAreRead) {
  LoadResult r = Load("[pipeline]\nmax_mos_per_minute_per_msisdn = 0\nmax_replies_per_hour_per_msisdn = 3\n");
  ASSERT_TRUE(r.ok()) << Only(r);
  EXPECT_EQ(r.config.pipeline.max_mos_per_minute_per_msisdn, 0);
  EXPECT_EQ(r.config.pipeline.max_replies_per_hour_per_msisdn, 3);
  EXPECT_THAT(Only(Load("[pipeline]\nmax_mos_per_minute_per_msisdn = -1\n")),
              HasSubstr("pipeline.max_mos_per_minute_per_msisdn: -1 is outside 0..100000"));
}

}  // namespace
}  // namespace donagate::config
