#include "billing/finance/csv.h"

#include <gtest/gtest.h>

#include <sstream>

namespace donagate::finance {
namespace {

TEST(Csv, RecordsEndWithCrlfAndQuoteWhatNeedsIt) {
  std::ostringstream out;
  WriteCsvRecord(out, {"kind", "detail"});
  WriteCsvRecord(out, {"a,b", "say \"hi\"", "two\nlines", ""});
  EXPECT_EQ(out.str(), "kind,detail\r\n\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
}

TEST(Csv, WhatWeWriteSplitsBack) {
  std::ostringstream out;
  WriteCsvRecord(out, {"don-1", "a;b", "\"q\""}, ';');
  std::string line = out.str();
  ASSERT_EQ(line.substr(line.size() - 2), "\r\n");
  line.pop_back();  // the reader's getline leaves the CR, which SplitCsvLine drops
  std::vector<std::string> fields;
  ASSERT_TRUE(SplitCsvLine(line, ';', &fields));
  EXPECT_EQ(fields, (std::vector<std::string>{"don-1", "a;b", "\"q\""}));
}

}  // namespace
}  // namespace donagate::finance
