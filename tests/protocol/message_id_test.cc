#include "protocol/message_id.h"

#include <gtest/gtest.h>

#include <charconv>
#include <random>
#include <ostream>
#include <string>

namespace donagate::smpp {
namespace {

using Source = MessageIdSource;
using Mode = MessageIdMode;

std::string Canonical(std::string_view id, Source source, Mode mode) {
  return NormalizeMessageId(id, source, mode).canonical;
}

struct IdCase {
  const char* name;
  Mode mode;
  std::string response_id;  // as given in submit_sm_resp
  std::string receipt_id;   // as given in the receipt text
  std::string canonical;
};

// Test names carry the case; print just the name instead of the raw bytes.
void PrintTo(const IdCase& c, std::ostream* os) { *os << c.name; }

class SameMessage : public ::testing::TestWithParam<IdCase> {};

// The property that matters: both notations of one message land on the same canonical string.
TEST_P(SameMessage, ResponseAndReceiptMeet) {
  const IdCase& c = GetParam();
  NormalizedMessageId resp = NormalizeMessageId(c.response_id, Source::kSubmitResponse, c.mode);
  NormalizedMessageId dlr = NormalizeMessageId(c.receipt_id, Source::kReceiptText, c.mode);
  EXPECT_EQ(resp.status, MessageIdStatus::kOk);
  EXPECT_EQ(dlr.status, MessageIdStatus::kOk);
  EXPECT_EQ(resp.canonical, c.canonical);
  EXPECT_EQ(dlr.canonical, c.canonical);
  // The receipted_message_id TLV repeats the response's notation.
  EXPECT_EQ(Canonical(c.response_id, Source::kReceiptTlv, c.mode), c.canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, SameMessage,
    ::testing::Values(
        IdCase{"exact", Mode::kExact, "AbC-123", " AbC-123\0", "AbC-123"},
        IdCase{"trim_zeros", Mode::kTrimLeadingZeros, "000123", "123", "123"},
        IdCase{"trim_zeros_hex_case", Mode::kTrimLeadingZeros, "00007F3A2B10", "7f3a2b10", "7f3a2b10"},
        IdCase{"trim_zeros_all_zero", Mode::kTrimLeadingZeros, "0000", "0", "0"},
        IdCase{"hex_resp_decimal_dlr", Mode::kResponseHexReceiptDecimal, "7F3A2B10", "2134518544", "2134518544"},
        IdCase{"hex_resp_decimal_dlr_zeros", Mode::kResponseHexReceiptDecimal, "007f3a2b10", "0002134518544",
               "2134518544"},
        IdCase{"decimal_resp_hex_dlr", Mode::kResponseDecimalReceiptHex, "2134518544", "7F3A2B10", "2134518544"},
        IdCase{"beyond_uint64", Mode::kResponseHexReceiptDecimal, "10000000000000000", "18446744073709551616",
               "18446744073709551616"},
        IdCase{"72_bit", Mode::kResponseDecimalReceiptHex, "4722366482869645213695", "FFFFFFFFFFFFFFFFFF",
               "4722366482869645213695"}),
    [](const ::testing::TestParamInfo<IdCase>& info) { return std::string(info.param.name); });

TEST(NormalizeMessageId, DifferentMessagesStayDifferent) {
  // "10" hex is 16: it must not meet receipt id "10".
  EXPECT_NE(Canonical("10", Source::kSubmitResponse, Mode::kResponseHexReceiptDecimal),
            Canonical("10", Source::kReceiptText, Mode::kResponseHexReceiptDecimal));
  EXPECT_NE(Canonical("abc", Source::kSubmitResponse, Mode::kExact),
            Canonical("ABC", Source::kReceiptText, Mode::kExact));
  EXPECT_NE(Canonical("0123", Source::kSubmitResponse, Mode::kExact),
            Canonical("123", Source::kReceiptText, Mode::kExact));
}

TEST(NormalizeMessageId, BadInputIsReportedNotGuessed) {
  NormalizedMessageId n = NormalizeMessageId("  \0", Source::kReceiptText, Mode::kTrimLeadingZeros);
  EXPECT_EQ(n.status, MessageIdStatus::kEmpty);
  EXPECT_EQ(n.canonical, "");

  n = NormalizeMessageId("msg-0042", Source::kSubmitResponse, Mode::kResponseHexReceiptDecimal);
  EXPECT_EQ(n.status, MessageIdStatus::kNotNumeric);
  EXPECT_EQ(n.canonical, "msg-0042");
  // Hex digits where decimal is expected: not numeric, and cannot collide with a decimal form.
  n = NormalizeMessageId("1a", Source::kReceiptText, Mode::kResponseHexReceiptDecimal);
  EXPECT_EQ(n.status, MessageIdStatus::kNotNumeric);
  EXPECT_NE(n.canonical, Canonical("1a", Source::kSubmitResponse, Mode::kResponseHexReceiptDecimal));

  std::string long_id(kMaxMessageIdLength + 1, '7');
  n = NormalizeMessageId(long_id, Source::kReceiptText, Mode::kResponseDecimalReceiptHex);
  EXPECT_EQ(n.status, MessageIdStatus::kTooLong);
  EXPECT_EQ(n.canonical, long_id);
}

TEST(BaseConversion, MatchesStdForUint64AndRoundTripsBeyond) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    char dec[32], hex[32];
    auto d = std::to_chars(dec, dec + sizeof dec, v);
    auto h = std::to_chars(hex, hex + sizeof hex, v, 16);
    std::string decimal(dec, d.ptr), hexadecimal(hex, h.ptr);
    ASSERT_EQ(HexToDecimal(hexadecimal), decimal);
    ASSERT_EQ(DecimalToHex(decimal), hexadecimal);
    ASSERT_EQ(HexToDecimal("000" + hexadecimal), decimal);
  }
  std::mt19937 rng32(6);
  for (int i = 0; i < 200; ++i) {
    std::string hex = "1";
    for (int k = 0, n = 20 + rng32() % 40; k < n; ++k) hex.push_back("0123456789abcdef"[rng32() % 16]);
    std::optional<std::string> decimal = HexToDecimal(hex);
    ASSERT_TRUE(decimal.has_value());
    ASSERT_EQ(DecimalToHex(*decimal), hex);
  }
  EXPECT_EQ(HexToDecimal(""), std::nullopt);
  EXPECT_EQ(HexToDecimal("12g"), std::nullopt);
  EXPECT_EQ(DecimalToHex("12a"), std::nullopt);
  EXPECT_EQ(HexToDecimal("0"), "0");
  EXPECT_EQ(DecimalToHex("000"), "0");
}

TEST(MessageIdMode, NamesMatchTheConfigValues) {
  for (Mode mode : {Mode::kExact, Mode::kTrimLeadingZeros, Mode::kResponseHexReceiptDecimal,
                    Mode::kResponseDecimalReceiptHex}) {
    EXPECT_EQ(ParseMessageIdMode(ToString(mode)), mode);
  }
  EXPECT_EQ(ParseMessageIdMode("resp_hex_dlr_decimal"), Mode::kResponseHexReceiptDecimal);
  EXPECT_EQ(ParseMessageIdMode("hex"), std::nullopt);
}

}  // namespace
}  // namespace donagate::smpp
