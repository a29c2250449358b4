// Money: int64 VND, overflow refused rather than wrapped, Vietnamese display form.
#include "billing/domain/money.h"

#include <gtest/gtest.h>

#include <limits>

namespace donagate::billing {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(MoneyTest, CheckedMultiply) {
  EXPECT_EQ(CheckedMultiply(5, 20000), 100000);
  EXPECT_EQ(CheckedMultiply(0, 20000), 0);
  EXPECT_EQ(CheckedMultiply(-3, 20000), -60000);
  EXPECT_EQ(CheckedMultiply(1000000, 100000000), 100000000000000);
  EXPECT_EQ(CheckedMultiply(kMax, 1), kMax);
  EXPECT_EQ(CheckedMultiply(kMax, 2), std::nullopt);
  EXPECT_EQ(CheckedMultiply(kMin, -1), std::nullopt);
  EXPECT_EQ(CheckedMultiply(int64_t{1} << 32, int64_t{1} << 31), std::nullopt);
  EXPECT_EQ(CheckedMultiply(461168601842738790, 20), 9223372036854775800);
  EXPECT_EQ(CheckedMultiply(461168601842738791, 20), std::nullopt);
}

TEST(MoneyTest, CheckedAdd) {
  EXPECT_EQ(CheckedAdd(100000, 20000), 120000);
  EXPECT_EQ(CheckedAdd(kMax, 0), kMax);
  EXPECT_EQ(CheckedAdd(kMax, 1), std::nullopt);
  EXPECT_EQ(CheckedAdd(kMin, -1), std::nullopt);
  EXPECT_EQ(CheckedAdd(kMin, kMax), -1);
}

TEST(MoneyTest, FormatVnd) {
  EXPECT_EQ(FormatVnd(0), "0");
  EXPECT_EQ(FormatVnd(5), "5");
  EXPECT_EQ(FormatVnd(999), "999");
  EXPECT_EQ(FormatVnd(1000), "1.000");
  EXPECT_EQ(FormatVnd(20000), "20.000");
  EXPECT_EQ(FormatVnd(100000), "100.000");
  EXPECT_EQ(FormatVnd(1234567), "1.234.567");
  EXPECT_EQ(FormatVnd(2000000000), "2.000.000.000");
  EXPECT_EQ(FormatVnd(-1), "-1");
  EXPECT_EQ(FormatVnd(-1000), "-1.000");
  EXPECT_EQ(FormatVnd(-1234567), "-1.234.567");
  EXPECT_EQ(FormatVnd(kMax), "9.223.372.036.854.775.807");
  EXPECT_EQ(FormatVnd(kMin), "-9.223.372.036.854.775.808");
}

}  // namespace
}  // namespace donagate::billing
