#include "billing/finance/time_util.h"

#include <gtest/gtest.h>

namespace donagate::finance {
namespace {

constexpr int kIct = 7 * 3600;

TEST(TimeUtil, ZoneOffsets) {
  EXPECT_EQ(ZoneOffsetSeconds("Asia/Ho_Chi_Minh"), kIct);
  EXPECT_EQ(ZoneOffsetSeconds("UTC"), 0);
  EXPECT_EQ(ZoneOffsetSeconds("+07:00"), kIct);
  EXPECT_EQ(ZoneOffsetSeconds("-0530"), -(5 * 3600 + 30 * 60));
  EXPECT_FALSE(ZoneOffsetSeconds("Mars/Olympus"));
  EXPECT_FALSE(ZoneOffsetSeconds("+7"));
}

TEST(TimeUtil, LocalDayIsUtcPlusSeven) {
  int64_t day = *ParseDate("2026-11-27");
  UtcRange r = LocalDayRange(day, kIct);
  // 2026-11-27 00:00:00+07:00 == 2026-11-26T17:00:00Z
  EXPECT_EQ(r.start, *ParseTimestamp("2026-11-26T17:00:00Z", "iso8601", 0));
  EXPECT_EQ(r.end - r.start, 86400);
  EXPECT_EQ(FormatDate(day), "2026-11-27");
}

TEST(TimeUtil, OperatorBEdgesFallOnTheRightLocalDay) {
  UtcRange d27 = LocalDayRange(*ParseDate("2026-11-27"), kIct);
  int64_t last_second = *ParseTimestamp("2026-11-27T16:59:59Z", "iso8601", 0);
  int64_t next_day = *ParseTimestamp("2026-11-27T17:00:01Z", "iso8601", 0);
  EXPECT_TRUE(last_second >= d27.start && last_second < d27.end);
  EXPECT_FALSE(next_day >= d27.start && next_day < d27.end);
}

TEST(TimeUtil, OperatorALocalFormat) {
  auto t = ParseTimestamp("27/11/2026 23:59:58", "%d/%m/%Y %H:%M:%S", kIct);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, *ParseTimestamp("2026-11-27T16:59:58Z", "iso8601", 0));
  EXPECT_EQ(FormatTimestamp(*t, kIct), "2026-11-27 23:59:58+07:00");
}

TEST(TimeUtil, RejectsMalformedTimes) {
  EXPECT_FALSE(ParseTimestamp("31/02/2026 10:00:00", "%d/%m/%Y %H:%M:%S", kIct));  // no 31 February
  EXPECT_FALSE(ParseTimestamp("27/11/2026 24:00:00", "%d/%m/%Y %H:%M:%S", kIct));
  EXPECT_FALSE(ParseTimestamp("27/11/2026", "%d/%m/%Y %H:%M:%S", kIct));
  EXPECT_FALSE(ParseTimestamp("2026-11-27T10:00:00Q", "iso8601", 0));
  EXPECT_FALSE(ParseDate("2026-13-01"));
  EXPECT_FALSE(ParseDate("27/11/2026"));
}

TEST(TimeUtil, IsoWithOffsetAndFraction) {
  EXPECT_EQ(*ParseTimestamp("2026-11-27T23:59:59.250+07:00", "iso8601", 0),
            *ParseTimestamp("2026-11-27T16:59:59Z", "iso8601", 0));
  // No offset in the text: the mapping's zone applies.
  EXPECT_EQ(*ParseTimestamp("2026-11-27 23:59:59", "iso8601", kIct),
            *ParseTimestamp("2026-11-27T16:59:59Z", "iso8601", 0));
}

}  // namespace
}  // namespace donagate::finance
