#include "tools/donagatectl/settlement.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/common/test_env.h"
#include "tools/donagatectl/time_util.h"

namespace donagate::ctl {
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
}

}  // namespace
}  // namespace donagate::ctl
