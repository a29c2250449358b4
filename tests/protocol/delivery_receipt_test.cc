#include "protocol/delivery_receipt.h"

#include <gtest/gtest.h>

#include <random>
#include <ostream>
#include <string>

namespace donagate::smpp {
namespace {

const char kStandard[] =
    "id:0123456789 sub:001 dlvrd:001 submit date:2611281759 done date:2611281800 stat:DELIVRD err:000 "
    "text:Cam on Quy khach da ung ho";

TEST(ParseDeliveryReceipt, AppendixBFormat) {
  ReceiptParse p = ParseDeliveryReceipt(kStandard);
  ASSERT_TRUE(p.ok()) << ToString(p.status);
  const DeliveryReceipt& r = p.receipt;
  EXPECT_EQ(r.message_id, "0123456789");
  EXPECT_EQ(r.text_message_id, "0123456789");
  EXPECT_EQ(r.state, MessageState::kDelivered);
  EXPECT_EQ(r.stat_raw, "DELIVRD");
  EXPECT_TRUE(r.final);
  EXPECT_EQ(r.submitted, 1);
  EXPECT_EQ(r.delivered, 1);
  EXPECT_EQ(r.submit_date, (ReceiptTime{2026, 11, 28, 17, 59, 0}));
  EXPECT_EQ(r.done_date, (ReceiptTime{2026, 11, 28, 18, 0, 0}));
  EXPECT_EQ(r.err_raw, "000");
  EXPECT_EQ(r.err, 0u);
  EXPECT_EQ(r.text, "Cam on Quy khach da ung ho");
  EXPECT_FALSE(r.id_from_tlv);
  EXPECT_FALSE(r.state_from_tlv);
  EXPECT_FALSE(r.network_error.has_value());
}

struct ReceiptCase {
  const char* name;
  std::string text;
  ReceiptStatus status;
  std::string id;
  MessageState state;
  bool final;
  std::string err_raw;
  std::string body;
};

// Test names carry the case; print just the name instead of the raw bytes.
void PrintTo(const ReceiptCase& c, std::ostream* os) { *os << c.name; }

class ReceiptTable : public ::testing::TestWithParam<ReceiptCase> {};

TEST_P(ReceiptTable, Parses) {
  const ReceiptCase& c = GetParam();
  ReceiptParse p = ParseDeliveryReceipt(c.text);
  EXPECT_EQ(p.status, c.status) << ToString(p.status);
  EXPECT_EQ(p.receipt.message_id, c.id);
  EXPECT_EQ(p.receipt.state, c.state) << ToString(p.receipt.state);
  EXPECT_EQ(p.receipt.final, c.final);
  EXPECT_EQ(p.receipt.err_raw, c.err_raw);
  EXPECT_EQ(p.receipt.text, c.body);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ReceiptTable,
    ::testing::Values(
        ReceiptCase{"capital_text_key",
                    "id:77 sub:001 dlvrd:000 submit date:2611281759 done date:2611281800 stat:UNDELIV err:006 "
                    "Text:hello there",
                    ReceiptStatus::kOk, "77", MessageState::kUndeliverable, true, "006", "hello there"},
        ReceiptCase{"uppercase_keys", "ID:AbC123 SUB:001 DLVRD:001 STAT:EXPIRED ERR:001 TEXT:x",
                    ReceiptStatus::kOk, "AbC123", MessageState::kExpired, true, "001", "x"},
        ReceiptCase{"extra_spaces", "  id: 12345   sub:001  stat : ACCEPTD   err:  002  text:  hi  ",
                    ReceiptStatus::kOk, "12345", MessageState::kAccepted, true, "002", "hi"},
        ReceiptCase{"missing_fields", "id:12 stat:DELIVRD", ReceiptStatus::kOk, "12", MessageState::kDelivered,
                    true, "", ""},
        ReceiptCase{"hex_id", "id:7f3a2b10 stat:REJECTD err:0x0b", ReceiptStatus::kOk, "7f3a2b10",
                    MessageState::kRejected, true, "0x0b", ""},
        ReceiptCase{"empty_err_before_text", "id:5 stat:DELIVRD err: text:hi", ReceiptStatus::kOk, "5",
                    MessageState::kDelivered, true, "", "hi"},
        ReceiptCase{"enroute_is_not_final", "id:5 stat:ENROUTE", ReceiptStatus::kOk, "5",
                    MessageState::kEnroute, false, "", ""},
        ReceiptCase{"unknown_is_not_final", "id:5 stat:UNKNOWN", ReceiptStatus::kOk, "5",
                    MessageState::kUnknown, false, "", ""},
        ReceiptCase{"long_state_names", "id:5 stat:delivered", ReceiptStatus::kOk, "5",
                    MessageState::kDelivered, true, "", ""},
        ReceiptCase{"failed_means_undeliverable", "id:5 stat:FAILED", ReceiptStatus::kOk, "5",
                    MessageState::kUndeliverable, true, "", ""},
        ReceiptCase{"fields_in_other_order", "stat:DELETED err:000 id:99", ReceiptStatus::kOk, "99",
                    MessageState::kDeleted, true, "000", ""},
        ReceiptCase{"unknown_keys_skipped", "foo:bar id:1 ext:zz stat:ACCEPTD", ReceiptStatus::kOk, "1",
                    MessageState::kAccepted, true, "", ""},
        ReceiptCase{"text_containing_keys_does_not_override", "id:1 stat:DELIVRD text:id:2 stat:REJECTD",
                    ReceiptStatus::kOk, "1", MessageState::kDelivered, true, "", "id:2 stat:REJECTD"},
        ReceiptCase{"first_occurrence_wins", "id:1 id:2 stat:DELIVRD stat:UNDELIV", ReceiptStatus::kOk, "1",
                    MessageState::kDelivered, true, "", ""},
        ReceiptCase{"keys_need_word_start", "xid:1 stat:DELIVRD", ReceiptStatus::kNoMessageId, "",
                    MessageState::kDelivered, true, "", ""},
        ReceiptCase{"unrecognised_stat", "id:1 stat:WEIRD", ReceiptStatus::kNoState, "1",
                    MessageState::kUnrecognised, false, "", ""},
        ReceiptCase{"not_a_receipt", "CV 5", ReceiptStatus::kNoMessageId, "", MessageState::kUnrecognised,
                    false, "", ""},
        ReceiptCase{"empty", "", ReceiptStatus::kNoMessageId, "", MessageState::kUnrecognised, false, "", ""},
        ReceiptCase{"key_without_colon_at_end", "id:3 stat", ReceiptStatus::kNoState, "3",
                    MessageState::kUnrecognised, false, "", ""},
        ReceiptCase{"colon_at_end", "id:", ReceiptStatus::kNoMessageId, "", MessageState::kUnrecognised, false,
                    "", ""}),
    [](const ::testing::TestParamInfo<ReceiptCase>& info) { return std::string(info.param.name); });

TEST(ParseDeliveryReceipt, DatesWithSecondsFourDigitYearsAndGarbage) {
  ReceiptParse p = ParseDeliveryReceipt(
      "id:1 submit date:261128175901 done date:20261128180059 stat:DELIVRD");
  EXPECT_EQ(p.receipt.submit_date, (ReceiptTime{2026, 11, 28, 17, 59, 1}));
  EXPECT_EQ(p.receipt.done_date, (ReceiptTime{2026, 11, 28, 18, 0, 59}));

  p = ParseDeliveryReceipt("id:1 submit_date:2611281759 DONE DATE:2611281800 stat:DELIVRD");
  EXPECT_TRUE(p.receipt.submit_date.has_value());
  EXPECT_TRUE(p.receipt.done_date.has_value());

  for (const char* bad : {"2613281759", "2611321759", "2611282459", "2611281760", "26112817", "26112817591",
                          "26112817a9", ""}) {
    p = ParseDeliveryReceipt(std::string("id:1 stat:DELIVRD done date:") + bad);
    EXPECT_FALSE(p.receipt.done_date.has_value()) << bad;
    EXPECT_TRUE(p.ok()) << "a bad date does not spoil the receipt: " << bad;
  }
  p = ParseDeliveryReceipt("id:1 sub:abc dlvrd:0000000001 stat:DELIVRD");
  EXPECT_FALSE(p.receipt.submitted.has_value());
  EXPECT_FALSE(p.receipt.delivered.has_value());  // more than 9 digits
}

TEST(ParseDeliveryReceipt, TlvsTakePrecedence) {
  ReceiptTlvs tlvs;
  tlvs.receipted_message_id = std::string_view("7F3A2B10\0", 9);
  tlvs.message_state = 5;
  tlvs.network_error_code = std::string_view("\x03\x00\x06", 3);
  ReceiptParse p = ParseDeliveryReceipt(kStandard, tlvs);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.receipt.message_id, "7F3A2B10");
  EXPECT_EQ(p.receipt.text_message_id, "0123456789");
  EXPECT_TRUE(p.receipt.id_from_tlv);
  EXPECT_EQ(p.receipt.state, MessageState::kUndeliverable);
  EXPECT_TRUE(p.receipt.state_from_tlv);
  EXPECT_EQ(p.receipt.stat_raw, "DELIVRD");  // what the text said is still visible
  EXPECT_EQ(p.receipt.network_error, (ReceiptNetworkError{3, 6}));
  EXPECT_TRUE(p.receipt.final);

  // TLVs alone make a receipt (some SMSCs send an empty short_message).
  p = ParseDeliveryReceipt("", tlvs);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.receipt.message_id, "7F3A2B10");

  ReceiptTlvs invalid;
  invalid.message_state = 0;
  invalid.network_error_code = std::string_view("\x03\x00", 2);
  invalid.receipted_message_id = std::string_view("\0", 1);
  p = ParseDeliveryReceipt("id:9 stat:ENROUTE", invalid);
  EXPECT_EQ(p.receipt.state, MessageState::kEnroute);
  EXPECT_FALSE(p.receipt.state_from_tlv);
  EXPECT_FALSE(p.receipt.network_error.has_value());
  EXPECT_EQ(p.receipt.message_id, "9");
  EXPECT_FALSE(p.receipt.id_from_tlv);

  invalid.message_state = 10;
  EXPECT_FALSE(ParseDeliveryReceipt("id:9 stat:ENROUTE", invalid).receipt.state_from_tlv);
  invalid.message_state = 9;
  EXPECT_EQ(ParseDeliveryReceipt("id:9", invalid).receipt.state, MessageState::kSkipped);
}

TEST(FormatReceiptText, WritesAppendixBThatParsesBack) {
  EXPECT_EQ(FormatReceiptText("1A2B", "DELIVRD", "2611281800"),
            "id:1A2B sub:001 dlvrd:001 submit date:2611281800 done date:2611281800 stat:DELIVRD err:000 text:");
  ReceiptParse p = ParseDeliveryReceipt(FormatReceiptText("77", "UNDELIV", "2611281800"));
  ASSERT_TRUE(p.ok()) << ToString(p.status);
  EXPECT_EQ(p.receipt.message_id, "77");
  EXPECT_EQ(p.receipt.state, MessageState::kUndeliverable);
  EXPECT_EQ(p.receipt.delivered, 0);
  EXPECT_EQ(p.receipt.done_date, (ReceiptTime{2026, 11, 28, 18, 0, 0}));
  EXPECT_EQ(ReceiptDate10Now().size(), 10u);
}

TEST(IsDeliveryReceiptEsmClass, OnlyReceiptMessageTypes) {
  EXPECT_TRUE(IsDeliveryReceiptEsmClass(0x04));
  EXPECT_TRUE(IsDeliveryReceiptEsmClass(0x44));  // with UDHI
  EXPECT_TRUE(IsDeliveryReceiptEsmClass(0x20));  // intermediate notification
  EXPECT_FALSE(IsDeliveryReceiptEsmClass(0x00));
  EXPECT_FALSE(IsDeliveryReceiptEsmClass(0x40));  // concatenated MO
  EXPECT_FALSE(IsDeliveryReceiptEsmClass(0x08));  // SME delivery acknowledgement
  EXPECT_FALSE(IsDeliveryReceiptEsmClass(0x10));  // manual/user acknowledgement
  EXPECT_FALSE(IsDeliveryReceiptEsmClass(0x03));  // messaging mode bits only
}

TEST(MessageState, StatSpellingsAndFinality) {
  EXPECT_EQ(ParseStat("DELIVRD"), MessageState::kDelivered);
  EXPECT_EQ(ParseStat("undeliv"), MessageState::kUndeliverable);
  EXPECT_EQ(ParseStat("REJECTD"), MessageState::kRejected);
  EXPECT_EQ(ParseStat("ACCEPTD"), MessageState::kAccepted);
  EXPECT_EQ(ParseStat("DELIVR"), MessageState::kUnrecognised);
  for (int v = 1; v <= 9; ++v) {
    auto state = static_cast<MessageState>(v);
    EXPECT_EQ(ParseStat(ToString(state)), state) << v;
  }
  EXPECT_FALSE(IsFinal(MessageState::kEnroute));
  EXPECT_FALSE(IsFinal(MessageState::kUnknown));
  EXPECT_FALSE(IsFinal(MessageState::kUnrecognised));
  EXPECT_TRUE(IsFinal(MessageState::kRejected));
}

TEST(ParseDeliveryReceipt, ArbitraryBytesNeverCrash) {
  std::mt19937 rng(99);
  using namespace std::string_literals;
  const std::string alphabet = "id:sub dlvrd submit done date stat err text 0123456789ABCDEF\0\t\r\n:"s;
  for (int round = 0; round < 5000; ++round) {
    std::string input;
    std::size_t length = rng() % 200;
    bool printable = rng() % 2 == 0;
    for (std::size_t i = 0; i < length; ++i) {
      input.push_back(printable ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() % 256));
    }
    ReceiptParse p = ParseDeliveryReceipt(input);
    EXPECT_LE(p.receipt.text.size(), input.size());
    EXPECT_LE(p.receipt.message_id.size(), input.size());
  }
}

}  // namespace
}  // namespace donagate::smpp
