// "CV n" parsing: what a subscriber types decides what they are charged, so every accepted and
// rejected form is pinned here.
#include "billing/domain/donation_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace donagate::billing {
namespace {

using S = DonationParseStatus;

struct Case {
  std::string text;
  S status;
  int32_t units;  // checked only for kOk
};

void PrintTo(const Case& c, std::ostream* os) { *os << "\"" << c.text << "\""; }

class DonationParserTable : public ::testing::TestWithParam<Case> {};

TEST_P(DonationParserTable, Parses) {
  const Case& c = GetParam();
  DonationParse p = ParseDonation(c.text, "CV", 100);
  EXPECT_EQ(ToString(p.status), ToString(c.status)) << "text: \"" << c.text << "\"";
  if (c.status == S::kOk) {
    EXPECT_EQ(p.units, c.units) << "text: \"" << c.text << "\"";
  }
}

const Case kCases[] = {
    // Plain forms and case.
    {"CV 5", S::kOk, 5},
    {"cv 5", S::kOk, 5},
    {"Cv 5", S::kOk, 5},
    {"cV 12", S::kOk, 12},
    {"CV5", S::kOk, 5},
    {"cv5", S::kOk, 5},
    {"CV", S::kOk, 1},
    {"cv", S::kOk, 1},
    {"CV 1", S::kOk, 1},
    {"CV 100", S::kOk, 100},
    // Separators.
    {"CV.5", S::kOk, 5},
    {"cv-5", S::kOk, 5},
    {"CV_5", S::kOk, 5},
    {"CV  5", S::kOk, 5},
    {"CV\t5", S::kOk, 5},
    {"CV - 5", S::kOk, 5},
    {"CV -5", S::kOk, 5},  // '-' is a separator, not a sign
    {"CV --5", S::kSyntaxError, 0},
    {"CV..5", S::kSyntaxError, 0},
    {"CV.-5", S::kSyntaxError, 0},
    {"CV\xC2\xA0" "5", S::kOk, 5},          // NBSP
    {"CV\xE3\x80\x80" "5", S::kOk, 5},      // ideographic space
    // Surrounding whitespace and one trailing mark.
    {"  CV 5  ", S::kOk, 5},
    {"\tCV 5\r\n", S::kOk, 5},
    {"\xC2\xA0" "CV 5\xC2\xA0", S::kOk, 5},
    {"\xE3\x80\x80" "CV 5\xE3\x80\x80", S::kOk, 5},
    {"\xEF\xBB\xBF" "CV 5", S::kOk, 5},     // BOM
    {"CV 5.", S::kOk, 5},
    {"CV 5!", S::kOk, 5},
    {"CV 5 ?", S::kOk, 5},
    {"CV 5\xEF\xBC\x81", S::kOk, 5},        // full-width !
    {"CV 5\xE3\x80\x82", S::kOk, 5},        // 。
    {"CV.", S::kOk, 1},
    {"CV 5!!", S::kSyntaxError, 0},
    {"CV 5.!", S::kSyntaxError, 0},
    {"CV 5-", S::kSyntaxError, 0},
    {"CV-", S::kSyntaxError, 0},
    // Digits: full-width, leading zeros, zero, overflow.
    {"cv\xEF\xBC\x95", S::kOk, 5},                          // cv５
    {"CV \xEF\xBC\x91\xEF\xBC\x90", S::kOk, 10},            // CV １０
    {"CV 1\xEF\xBC\x92", S::kOk, 12},                       // mixed ASCII / full-width
    {"CV 05", S::kOk, 5},
    {"CV 007", S::kOk, 7},
    {"CV 0", S::kZeroUnits, 0},
    {"CV 000", S::kZeroUnits, 0},
    {"CV -0", S::kZeroUnits, 0},
    {"CV 101", S::kTooManyUnits, 0},
    {"CV 99999999999999999999", S::kTooManyUnits, 0},
    {"CV 99999999999999999999999999999999999999999", S::kTooManyUnits, 0},
    {"CV 2147483648", S::kTooManyUnits, 0},
    // Letters, other numbers, junk.
    {"CV five", S::kSyntaxError, 0},
    {"CV 5a", S::kSyntaxError, 0},
    {"CV 5 5", S::kSyntaxError, 0},
    {"CV 1 0", S::kSyntaxError, 0},
    {"CV 1,5", S::kSyntaxError, 0},
    {"CV 1.5", S::kSyntaxError, 0},
    {"CV +5", S::kSyntaxError, 0},
    {"CV \xE2\x88\x92" "5", S::kSyntaxError, 0},            // U+2212 minus sign
    {"CV 5 ung ho", S::kSyntaxError, 0},
    {"CV 5 \xE1\xBB\xA7ng h\xE1\xBB\x99", S::kSyntaxError, 0},  // "CV 5 ủng hộ"
    {"CV 1'); DROP TABLE donations;--", S::kSyntaxError, 0},
    // Wrong keyword.
    {"CVX 5", S::kWrongKeyword, 0},
    {"CVV", S::kWrongKeyword, 0},
    {"C V 5", S::kWrongKeyword, 0},
    {"C", S::kWrongKeyword, 0},
    {"UH 5", S::kWrongKeyword, 0},
    {"5 CV", S::kWrongKeyword, 0},
    {"Ung ho CV 5", S::kWrongKeyword, 0},
    {"\xE1\xBB\xA6ng h\xE1\xBB\x99 CV 5", S::kWrongKeyword, 0},  // "Ủng hộ CV 5"
    {"\xEF\xBC\xA3\xEF\xBC\xB6 5", S::kWrongKeyword, 0},          // full-width ＣＶ
    {"\xC4\x86V 5", S::kWrongKeyword, 0},                          // Ć
    {".", S::kWrongKeyword, 0},
    {"\xFF\xFE\xFD", S::kWrongKeyword, 0},                         // invalid UTF-8
    {"CV\xFF" "5", S::kSyntaxError, 0},
    {"CV 5\xEF\xBC", S::kSyntaxError, 0},                          // truncated UTF-8 at the end
    // Empty.
    {"", S::kEmpty, 0},
    {"   ", S::kEmpty, 0},
    {"\t\r\n", S::kEmpty, 0},
    {"\xC2\xA0\xE3\x80\x80", S::kEmpty, 0},
};

INSTANTIATE_TEST_SUITE_P(Cases, DonationParserTable, ::testing::ValuesIn(kCases));

TEST(DonationParserTest, TableHasAtLeastFiftyCases) { EXPECT_GE(std::size(kCases), 50u); }

TEST(DonationParserTest, MaxUnitsIsTheCampaignLimit) {
  EXPECT_TRUE(ParseDonation("CV 100", "CV", 100).ok());
  EXPECT_EQ(ParseDonation("CV 101", "CV", 100).status, S::kTooManyUnits);
  EXPECT_TRUE(ParseDonation("CV 101", "CV", 1000).ok());
  EXPECT_EQ(ParseDonation("CV 2", "CV", 1).status, S::kTooManyUnits);
  EXPECT_EQ(ParseDonation("CV", "CV", 1).units, 1);
  DonationParse big = ParseDonation("CV 1000000", "CV", 1000000);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big.units, 1000000);
}

TEST(DonationParserTest, KeywordComesFromTheCampaign) {
  EXPECT_EQ(ParseDonation("UH 3", "UH", 100).units, 3);
  EXPECT_EQ(ParseDonation("uh3", "Uh", 100).units, 3);
  EXPECT_EQ(ParseDonation("CV 3", "UH", 100).status, S::kWrongKeyword);
  EXPECT_EQ(ParseDonation("CVA 3", "CVA", 100).units, 3);
  EXPECT_EQ(ParseDonation("CVA 3", "CV", 100).status, S::kWrongKeyword);
}

TEST(DonationParserTest, NeverReadsPastTheView) {
  // The text is a view into a larger buffer; digits after its end must not be read.
  std::string buffer = "CV 5" "99999";
  std::string_view view(buffer.data(), 4);
  EXPECT_EQ(ParseDonation(view, "CV", 100).units, 5);
  std::string fw = "CV \xEF\xBC\x95";
  EXPECT_EQ(ParseDonation(std::string_view(fw.data(), fw.size() - 1), "CV", 100).status, S::kSyntaxError);
}

TEST(DonationParserTest, StatusNames) {
  EXPECT_EQ(ToString(S::kOk), "ok");
  EXPECT_EQ(ToString(S::kEmpty), "empty");
  EXPECT_EQ(ToString(S::kWrongKeyword), "wrong_keyword");
  EXPECT_EQ(ToString(S::kSyntaxError), "syntax_error");
  EXPECT_EQ(ToString(S::kZeroUnits), "zero_units");
  EXPECT_EQ(ToString(S::kTooManyUnits), "too_many_units");
}

}  // namespace
}  // namespace donagate::billing
