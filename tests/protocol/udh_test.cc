#include "protocol/udh.h"

#include <gtest/gtest.h>

#include <random>
#include <ostream>
#include <string>
#include <vector>

namespace donagate::smpp {
namespace {

std::string Bytes(std::initializer_list<int> octets) {
  std::string s;
  for (int o : octets) s.push_back(static_cast<char>(o));
  return s;
}

struct UdhCase {
  const char* name;
  std::string short_message;
  UdhStatus status;
  std::optional<ConcatInfo> concat;
  std::size_t header_length;
  std::string user_data;
};

// Test names carry the case; print just the name instead of the raw bytes.
void PrintTo(const UdhCase& c, std::ostream* os) { *os << c.name; }

class UdhTable : public ::testing::TestWithParam<UdhCase> {};

TEST_P(UdhTable, Parses) {
  const UdhCase& c = GetParam();
  UdhParse parse = ParseUdh(c.short_message);
  EXPECT_EQ(parse.status, c.status) << ToString(parse.status);
  EXPECT_EQ(parse.concat, c.concat);
  EXPECT_EQ(parse.header_length, c.header_length);
  EXPECT_EQ(parse.user_data, c.user_data);
}

INSTANTIATE_TEST_SUITE_P(
    Vectors, UdhTable,
    ::testing::Values(
        UdhCase{"concat_8bit", Bytes({0x05, 0x00, 0x03, 0x2A, 0x03, 0x01}) + "abc", UdhStatus::kOk,
                ConcatInfo{0x2A, 3, 1, false}, 6, "abc"},
        UdhCase{"concat_16bit", Bytes({0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02}) + "x", UdhStatus::kOk,
                ConcatInfo{0x1234, 2, 2, true}, 7, "x"},
        UdhCase{"other_iei_skipped_before_concat",
                Bytes({0x09, 0x0A, 0x02, 0xAA, 0xBB, 0x00, 0x03, 0x07, 0x02, 0x01}) + "hi", UdhStatus::kOk,
                ConcatInfo{7, 2, 1, false}, 10, "hi"},
        UdhCase{"language_shift_only", Bytes({0x03, 0x24, 0x01, 0x01}) + "hi", UdhStatus::kOk, std::nullopt, 4,
                "hi"},
        UdhCase{"last_concat_ie_wins",
                Bytes({0x0A, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00, 0x03, 0x09, 0x03, 0x02}), UdhStatus::kOk,
                ConcatInfo{9, 3, 2, false}, 11, ""},
        UdhCase{"header_only", Bytes({0x05, 0x00, 0x03, 0x01, 0x01, 0x01}), UdhStatus::kOk,
                ConcatInfo{1, 1, 1, false}, 6, ""},
        UdhCase{"empty", "", UdhStatus::kEmpty, std::nullopt, 0, ""},
        UdhCase{"udhl_past_end", Bytes({0x05, 0x00, 0x03, 0x01}), UdhStatus::kTruncated, std::nullopt, 0,
                Bytes({0x05, 0x00, 0x03, 0x01})},
        UdhCase{"element_past_udhl", Bytes({0x03, 0x00, 0x03, 0x01, 0x02, 0x01}), UdhStatus::kTruncated,
                std::nullopt, 0, Bytes({0x03, 0x00, 0x03, 0x01, 0x02, 0x01})},
        UdhCase{"iei_without_length", Bytes({0x01, 0x00, 'a'}), UdhStatus::kTruncated, std::nullopt, 0,
                Bytes({0x01, 0x00, 'a'})},
        UdhCase{"concat8_wrong_length", Bytes({0x04, 0x00, 0x02, 0x01, 0x02}), UdhStatus::kBadElementLength,
                std::nullopt, 0, Bytes({0x04, 0x00, 0x02, 0x01, 0x02})},
        UdhCase{"concat16_wrong_length", Bytes({0x05, 0x08, 0x03, 0x01, 0x02, 0x01}),
                UdhStatus::kBadElementLength, std::nullopt, 0, Bytes({0x05, 0x08, 0x03, 0x01, 0x02, 0x01})},
        UdhCase{"total_zero", Bytes({0x05, 0x00, 0x03, 0x01, 0x00, 0x01}) + "a", UdhStatus::kInvalidConcat,
                std::nullopt, 6, "a"},
        UdhCase{"seq_zero", Bytes({0x05, 0x00, 0x03, 0x01, 0x02, 0x00}) + "a", UdhStatus::kInvalidConcat,
                std::nullopt, 6, "a"},
        UdhCase{"seq_above_total", Bytes({0x05, 0x00, 0x03, 0x01, 0x02, 0x03}) + "a", UdhStatus::kInvalidConcat,
                std::nullopt, 6, "a"}),
    [](const ::testing::TestParamInfo<UdhCase>& info) { return std::string(info.param.name); });

TEST(ConcatFromSar, ValidatesLikeTheUdh) {
  EXPECT_EQ(ConcatFromSar(0xBEEF, 3, 2), (ConcatInfo{0xBEEF, 3, 2, true}));
  EXPECT_EQ(ConcatFromSar(1, 0, 1), std::nullopt);
  EXPECT_EQ(ConcatFromSar(1, 2, 0), std::nullopt);
  EXPECT_EQ(ConcatFromSar(1, 2, 3), std::nullopt);
  EXPECT_EQ(ConcatFromSar(1, 255, 255), (ConcatInfo{1, 255, 255, true}));
}

TEST(BuildConcatUdh, ParsesBackToTheSameInfo) {
  for (ConcatInfo info : {ConcatInfo{0x7F, 4, 3, false}, ConcatInfo{0xA55A, 2, 1, true}}) {
    std::string udh = BuildConcatUdh(info);
    EXPECT_EQ(udh.size(), info.ref16 ? 7u : 6u);
    const std::string short_message = udh + "payload";  // UdhParse views it
    UdhParse parse = ParseUdh(short_message);
    ASSERT_EQ(parse.status, UdhStatus::kOk);
    EXPECT_EQ(parse.concat, info);
    EXPECT_EQ(parse.user_data, "payload");
  }
  EXPECT_EQ(BuildConcatUdh(ConcatInfo{0x2A, 2, 1, false}), Bytes({0x05, 0x00, 0x03, 0x2A, 0x02, 0x01}));
}

TEST(ParseUdh, NeverReadsPastTheInputForAnyShortPrefix) {
  // Every prefix of a valid header, and every UDHL value over a small buffer: no crash, and a
  // non-ok status whenever the header cannot be complete.
  std::string full = Bytes({0x09, 0x0A, 0x02, 0xAA, 0xBB, 0x00, 0x03, 0x07, 0x02, 0x01});
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_NE(ParseUdh(full.substr(0, n)).status, UdhStatus::kOk) << n;
  }
  for (int udhl = 0; udhl < 256; ++udhl) {
    std::string sm = Bytes({udhl, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00});
    UdhParse parse = ParseUdh(sm);
    EXPECT_LE(parse.header_length, sm.size());
  }
}

}  // namespace
}  // namespace donagate::smpp

namespace donagate::smpp {
namespace {

TEST(ParseUdh, ArbitraryBytesStayWithinTheInput) {
  std::mt19937 rng(77);
  for (int round = 0; round < 20000; ++round) {
    std::string sm;
    for (std::size_t i = 0, n = rng() % 40; i < n; ++i) sm.push_back(static_cast<char>(rng() % 256));
    if (!sm.empty() && rng() % 2) sm[0] = static_cast<char>(rng() % 12);  // plausible UDHL
    UdhParse parse = ParseUdh(sm);
    ASSERT_LE(parse.header_length, sm.size());
    ASSERT_EQ(parse.header_length + parse.user_data.size(), sm.size());  // header + rest = input
    if (parse.concat) {
      ASSERT_TRUE(IsValidConcat(*parse.concat));
    }
  }
}

}  // namespace
}  // namespace donagate::smpp
