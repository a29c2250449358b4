#include "billing/finance/settlement.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "tests/common/test_env.h"
#include "billing/finance/time_util.h"

namespace donagate::finance {
namespace {

SettlementMapping MappingFromFile(const std::string& name) {
  SettlementMapping m;
  std::string error;
  EXPECT_TRUE(LoadSettlementMapping(testing::SourcePath("tools/donagatectl/mappings/" + name), &m, &error)) << error;
  return m;
}

TEST(Settlement, OperatorALayout) {
  std::istringstream in(
      "# Operator A daily settlement\n"
      "TRANS_ID,MSISDN,AMOUNT,CHARGE_TIME,RESULT,CP_REF\n"
      "A1,84961234501,100000,27/11/2026 08:15:02,SUCCESS,don-1\n"
      "A4,84961234504,40000,27/11/2026 08:17:10,FAILED_BALANCE,don-4\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  ASSERT_TRUE(ReadSettlement(in, MappingFromFile("operator-a.toml"), &rows, &err)) << err.line << ": " << err.message;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].reference, "don-1");
  EXPECT_EQ(rows[0].amount_vnd, 100000);
  EXPECT_TRUE(rows[0].charged);
  EXPECT_EQ(rows[0].line, 3u);
  EXPECT_EQ(rows[0].charged_at, *ParseTimestamp("2026-11-27T01:15:02Z", "iso8601", 0));
  EXPECT_FALSE(rows[1].charged);  // a failed row is never money
  EXPECT_EQ(rows[1].status, "FAILED_BALANCE");
}

TEST(Settlement, OperatorBLayoutNormalisesNationalNumbers) {
  std::istringstream in(
      "msisdn;cp_transaction;charged_at_utc;amount_vnd;status\n"
      "0912345601;don-101;2026-11-27T01:15:02Z;20000;0\n"
      "0912345604;don-104;2026-11-27T17:00:01Z;20000;3\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  ASSERT_TRUE(ReadSettlement(in, MappingFromFile("operator-b.toml"), &rows, &err)) << err.message;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].msisdn, "84912345601");
  EXPECT_TRUE(rows[0].charged);
  EXPECT_FALSE(rows[1].charged);
}

TEST(Settlement, MalformedLinesAreReportedWithTheirNumber) {
  SettlementMapping b = MappingFromFile("operator-b.toml");
  struct Case {
    std::string body;
    size_t line;
    std::string words;
  } cases[] = {
      {"0912345601;don-1;2026-11-27T01:15:02Z;20k;0\n", 2, "amount"},
      {"0912345601;don-1;2026-11-27T01:15:02Z;20000\n", 2, "fields"},
      {"0912345601;don-1;2026-11-27T01:15:02Z;20000;0\n0912345601;don-2;27/11/2026;20000;0\n", 3, "time"},
      {"0912345601;;2026-11-27T01:15:02Z;20000;0\n", 2, "reference"},
      {"0912345601;don-1;2026-11-27T01:15:02Z;-5;0\n", 2, "amount"},
      {"0912345601;\"don-1;2026-11-27T01:15:02Z;20000;0\n", 2, "quoting"},
  };
  for (auto& c : cases) {
    std::istringstream in("msisdn;cp_transaction;charged_at_utc;amount_vnd;status\n" + c.body);
    std::vector<SettlementRow> rows;
    SettlementError err;
    EXPECT_FALSE(ReadSettlement(in, b, &rows, &err)) << c.body;
    EXPECT_EQ(err.line, c.line) << c.body;
    EXPECT_NE(err.message.find(c.words), std::string::npos) << err.message;
  }
}

TEST(Settlement, MissingColumnInHeaderIsAnError) {
  SettlementMapping m = MappingFromFile("operator-a.toml");
  std::istringstream in("TRANS_ID,MSISDN,AMOUNT\nA1,849,1\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  EXPECT_FALSE(ReadSettlement(in, m, &rows, &err));
  EXPECT_EQ(err.line, 1u);
  EXPECT_NE(err.message.find("CP_REF"), std::string::npos);
}

TEST(Settlement, HeaderlessFileByPosition) {
  SettlementMapping m;
  m.header = false;
  m.delimiter = '\t';
  m.reference_column = "2";
  m.amount_column = "3";
  std::istringstream in("x\tdon-9\t60000\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  ASSERT_TRUE(ReadSettlement(in, m, &rows, &err)) << err.message;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reference, "don-9");
  EXPECT_EQ(rows[0].amount_vnd, 60000);
  EXPECT_TRUE(rows[0].charged);
}

// A Vietnamese spreadsheet export: dot thousands, comma decimals, a đ suffix on some cells.
TEST(Settlement, MappingNumberFormatReadsSpreadsheetAmounts) {
  const std::string dir = testing::MakeTempDir("mapping");
  std::ofstream(dir + "/vn.toml") << "delimiter = \";\"\n"
                                     "amount_thousands_separator = \".\"\n"
                                     "amount_decimal_separator = \",\"\n"
                                     "amount_currency_suffix = \"đ\"\n"
                                     "[columns]\nreference = \"ref\"\namount = \"amount\"\n";
  SettlementMapping m;
  std::string error;
  ASSERT_TRUE(LoadSettlementMapping(dir + "/vn.toml", &m, &error)) << error;
  std::istringstream in(
      "ref;amount\n"
      "don-1;100.000\n"
      "don-2;1.234.000 đ\n"
      "don-3;20.000,00\n"
      "don-4;500\n"
      "don-5;\"60.000đ\"\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  ASSERT_TRUE(ReadSettlement(in, m, &rows, &err)) << err.line << ": " << err.message;
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].amount_vnd, 100000);
  EXPECT_EQ(rows[1].amount_vnd, 1234000);
  EXPECT_EQ(rows[2].amount_vnd, 20000);
  EXPECT_EQ(rows[3].amount_vnd, 500);
  EXPECT_EQ(rows[4].amount_vnd, 60000);

  // VND has no minor unit: a real decimal part is refused with its line, never rounded.
  std::istringstream cents("ref;amount\ndon-1;100.000\ndon-2;100.000,50\n");
  rows.clear();
  EXPECT_FALSE(ReadSettlement(cents, m, &rows, &err));
  EXPECT_EQ(err.line, 3u);
  EXPECT_NE(err.message.find("decimal part"), std::string::npos) << err.message;
  // "100.5" is not 1005: groups after the first have three digits.
  std::istringstream short_group("ref;amount\ndon-1;100.5\n");
  EXPECT_FALSE(ReadSettlement(short_group, m, &rows, &err));
  EXPECT_EQ(err.line, 2u);
  EXPECT_NE(err.message.find("grouped"), std::string::npos) << err.message;
}

TEST(Settlement, AmountFormats) {
  struct Case {
    std::string text;
    AmountFormat format;
    std::optional<int64_t> vnd;
  } cases[] = {
      {"100000", {}, 100000},
      {"10.000", {}, std::nullopt},  // the default is today's plain integer
      {"20000.00", {}, std::nullopt},
      {"100,000", {",", ".", "", ""}, 100000},
      {"1,000,000.000", {",", ".", "", ""}, 1000000},
      {"VND 50.000", {".", ",", "VND", ""}, 50000},
      {"50.000 VND", {".", ",", "", "VND"}, 50000},
      {"50 000", {" ", "", "", ""}, 50000},
      {"50\xC2\xA0" "000\xC2\xA0" "đ", {"\xC2\xA0", "", "", "đ"}, 50000},  // no-break spaces
      {"1.0000", {".", "", "", ""}, std::nullopt},
      {".000", {".", "", "", ""}, std::nullopt},
      {"1..000", {".", "", "", ""}, std::nullopt},
      {"-20.000", {".", "", "", ""}, std::nullopt},
      {"+20000", {}, std::nullopt},
      {"20.000,", {".", ",", "", ""}, std::nullopt},
      {"20.000,0", {".", ",", "", ""}, 20000},
      {"đ", {".", ",", "", "đ"}, std::nullopt},
      {"99999999999999999999", {}, std::nullopt},
  };
  for (auto& c : cases) {
    int64_t vnd = -1;
    std::string why;
    bool ok = ParseVndAmount(c.text, c.format, &vnd, &why);
    EXPECT_EQ(ok, c.vnd.has_value()) << c.text << ": " << why;
    if (ok && c.vnd) {
      EXPECT_EQ(vnd, *c.vnd) << c.text;
    }
    if (!ok) {
      EXPECT_NE(why.find("\"" + c.text + "\""), std::string::npos) << why;
    }
  }
}

TEST(Settlement, DefaultMappingStillRefusesGroupedAmountsAndSaysWhatToSet) {
  SettlementMapping b = MappingFromFile("operator-b.toml");
  std::istringstream in("msisdn;cp_transaction;charged_at_utc;amount_vnd;status\n"
                        "0912345601;don-1;2026-11-27T01:15:02Z;10.000;0\n");
  std::vector<SettlementRow> rows;
  SettlementError err;
  EXPECT_FALSE(ReadSettlement(in, b, &rows, &err));
  EXPECT_EQ(err.line, 2u);
  EXPECT_NE(err.message.find("amount \"10.000\" is not a non-negative integer number of VND"), std::string::npos)
      << err.message;
  EXPECT_NE(err.message.find("amount_thousands_separator"), std::string::npos) << err.message;
}

TEST(Settlement, MappingValidation) {
  SettlementMapping m;
  std::string error;
  EXPECT_FALSE(ValidateSettlementMapping(m, &error));
  m.reference_column = "ref";
  m.amount_column = "amount";
  m.status_column = "status";
  EXPECT_FALSE(ValidateSettlementMapping(m, &error));
  EXPECT_NE(error.find("charged"), std::string::npos);
  m.charged_values = {"OK"};
  m.time_zone = "Nowhere/Else";
  EXPECT_FALSE(ValidateSettlementMapping(m, &error));
  m.time_zone = "UTC";
  EXPECT_TRUE(ValidateSettlementMapping(m, &error));
  m.amount_format.thousands_separator = ".";
  m.amount_format.decimal_separator = ".";
  EXPECT_FALSE(ValidateSettlementMapping(m, &error));
  EXPECT_NE(error.find("differ"), std::string::npos) << error;
  m.amount_format.decimal_separator = "0";
  EXPECT_FALSE(ValidateSettlementMapping(m, &error));
  m.amount_format.decimal_separator = ",";
  EXPECT_TRUE(ValidateSettlementMapping(m, &error));
}

}  // namespace
}  // namespace donagate::finance

namespace donagate::finance {
namespace {

TEST(SettlementLayout, DetectsBomDelimiterColumnsAndFirstRows) {
  std::istringstream in("\xEF\xBB\xBF# comment\r\nmsisdn;cp_transaction;amount_vnd;status\r\n"
                        "0912345601;don-1;20.000;0\r\n0912345602;don-2;40.000;0\r\n0912345603;don-3;60.000;1\r\n");
  SettlementLayout layout;
  std::string error;
  ASSERT_TRUE(DetectSettlementLayout(in, "#", 2, &layout, &error)) << error;
  EXPECT_TRUE(layout.bom);
  EXPECT_EQ(layout.encoding, "UTF-8 with BOM");
  EXPECT_EQ(layout.delimiter, ';');
  EXPECT_EQ(layout.comment_lines, 1u);
  EXPECT_EQ(layout.columns, (std::vector<std::string>{"msisdn", "cp_transaction", "amount_vnd", "status"}));
  ASSERT_EQ(layout.rows.size(), 2u) << "at most max_rows";
  EXPECT_EQ(layout.rows[1][1], "don-2");

  std::istringstream tsv("a\tb,c\tn\n1\t2\t3\n");
  SettlementLayout t;
  ASSERT_TRUE(DetectSettlementLayout(tsv, "#", 10, &t, &error));
  EXPECT_EQ(t.delimiter, '\t') << "the candidate giving most columns";
  EXPECT_EQ(t.encoding, "UTF-8");

  std::istringstream latin1("ref,t\xEAn\n1,2\n");  // "tên" in Latin-1
  SettlementLayout l;
  ASSERT_TRUE(DetectSettlementLayout(latin1, "#", 10, &l, &error));
  EXPECT_FALSE(l.valid_utf8);
  EXPECT_EQ(l.encoding.rfind("not UTF-8", 0), 0u);

  std::istringstream empty("# only a comment\n");
  SettlementLayout e;
  EXPECT_FALSE(DetectSettlementLayout(empty, "#", 10, &e, &error));
}

TEST(SettlementMappingToml, RoundTripsEveryField) {
  SettlementMapping m;
  m.delimiter = '\t';
  m.comment_prefix = "//";
  m.header = false;
  m.reference_column = "6";
  m.msisdn_column = "2";
  m.amount_column = "3";
  m.time_column = "4";
  m.status_column = "5";
  m.time_format = "%d/%m/%Y %H:%M:%S";
  m.time_zone = "Asia/Ho_Chi_Minh";
  m.charged_values = {"SUCCESS", "OK \"quoted\"", "back\\slash"};
  m.amount_format = {".", ",", "VND", "\xC4\x91"};
  const std::string toml = SettlementMappingToToml(m);
  SettlementMapping back;
  std::string error;
  ASSERT_TRUE(ParseSettlementMapping(toml, "round trip", &back, &error)) << error << "\n" << toml;
  EXPECT_EQ(back.delimiter, '\t');
  EXPECT_EQ(back.comment_prefix, "//");
  EXPECT_FALSE(back.header);
  EXPECT_EQ(back.reference_column, "6");
  EXPECT_EQ(back.status_column, "5");
  EXPECT_EQ(back.time_format, m.time_format);
  EXPECT_EQ(back.time_zone, m.time_zone);
  EXPECT_EQ(back.charged_values, m.charged_values);
  EXPECT_EQ(back.amount_format.thousands_separator, ".");
  EXPECT_EQ(back.amount_format.decimal_separator, ",");
  EXPECT_EQ(back.amount_format.currency_prefix, "VND");
  EXPECT_EQ(back.amount_format.currency_suffix, "\xC4\x91");
  EXPECT_EQ(SettlementMappingToToml(back), toml);
  // The saved operator-a mapping file reads the same from text as from its path.
  SettlementMapping from_text;
  std::ifstream f(testing::SourcePath("tools/donagatectl/mappings/operator-a.toml"));
  std::stringstream text;
  text << f.rdbuf();
  ASSERT_TRUE(ParseSettlementMapping(text.str(), "operator-a", &from_text, &error)) << error;
  EXPECT_EQ(SettlementMappingToToml(from_text), SettlementMappingToToml(MappingFromFile("operator-a.toml")));
}

}  // namespace
}  // namespace donagate::finance
