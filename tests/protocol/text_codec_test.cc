#include "protocol/text_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <ostream>
#include <string>
#include <vector>

#include "protocol/udh.h"

namespace donagate::smpp {
namespace {

std::string Bytes(std::initializer_list<int> octets) {
  std::string s;
  for (int o : octets) s.push_back(static_cast<char>(o));
  return s;
}

// Independent UTF-8 encoder for building expectations from code points.
std::string Utf8(std::u32string_view cps) {
  std::string out;
  for (char32_t cp : cps) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// The 23.038 default alphabet written out by hand, septet 0x00..0x7F (ESC at 0x1B shown as '?',
// skipped by the tests).
const std::u32string kGsmTable =
    U"@\u00A3$\u00A5\u00E8\u00E9\u00F9\u00EC\u00F2\u00C7\n\u00D8\u00F8\r\u00C5\u00E5"
    U"\u0394_\u03A6\u0393\u039B\u03A9\u03A0\u03A8\u03A3\u0398\u039E?\u00C6\u00E6\u00DF\u00C9"
    U" !\"#\u00A4%&'()*+,-./0123456789:;<=>?"
    U"\u00A1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00C4\u00D6\u00D1\u00DC\u00A7"
    U"\u00BFabcdefghijklmnopqrstuvwxyz\u00E4\u00F6\u00F1\u00FC\u00E0";
const std::u32string kGsmExtension = U"\f^{}\\[~]|\u20AC";

TEST(GsmTable, EverySeptetDecodesToTheCharacterOf23038) {
  ASSERT_EQ(kGsmTable.size(), 128u);
  for (int septet = 0; septet < 128; ++septet) {
    if (septet == 0x1B) continue;
    DecodedText d = DecodeSmsText(Bytes({septet}), 0x00);
    EXPECT_EQ(d.utf8, Utf8(kGsmTable.substr(septet, 1))) << "septet " << septet;
    EXPECT_TRUE(d.ok());
  }
}

struct DecodeCase {
  const char* name;
  std::string bytes;
  uint8_t data_coding;
  DefaultAlphabet default_alphabet;
  std::string expected;
  std::size_t replacements;
};

// Test names carry the case; print just the name instead of the raw bytes.
void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

class DecodeTable : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeTable, DecodesToUtf8) {
  const DecodeCase& c = GetParam();
  DecodeOptions options;
  options.default_alphabet = c.default_alphabet;
  DecodedText d = DecodeSmsText(c.bytes, c.data_coding, options);
  EXPECT_EQ(d.kind, TextKind::kText);
  EXPECT_EQ(d.utf8, c.expected);
  EXPECT_EQ(d.replacements, c.replacements);
}

const std::string kReplacementChar = "\xEF\xBF\xBD";
constexpr auto kUnpacked = DefaultAlphabet::kGsm7Unpacked;
constexpr auto kPacked = DefaultAlphabet::kGsm7Packed;

INSTANTIATE_TEST_SUITE_P(
    Vectors, DecodeTable,
    ::testing::Values(
        DecodeCase{"gsm_cv5", "CV 5", 0x00, kUnpacked, "CV 5", 0},
        DecodeCase{"gsm_at_pound_dollar", Bytes({0x00, 0x01, 0x02}), 0x00, kUnpacked, "@\u00A3$", 0},
        DecodeCase{"gsm_euro_escape", Bytes({0x1B, 0x65}), 0x00, kUnpacked, "\u20AC", 0},
        DecodeCase{"gsm_extension_table",
                   Bytes({0x1B, 0x14, 0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x2F, 0x1B, 0x3C, 0x1B, 0x3D, 0x1B,
                          0x3E, 0x1B, 0x40, 0x1B, 0x0A}),
                   0x00, kUnpacked, "^{}\\[~]|\f", 0},
        DecodeCase{"gsm_xin_chao", Bytes({'X', 'i', 'n', ' ', 'c', 'h', 0x7F, 'o'}), 0x00, kUnpacked,
                   "Xin ch\u00E0o", 0},
        DecodeCase{"gsm_escape_undefined_shows_base_char", Bytes({0x1B, 'A'}), 0x00, kUnpacked, "A", 0},
        DecodeCase{"gsm_escape_escape_is_space", Bytes({'a', 0x1B, 0x1B, 'b'}), 0x00, kUnpacked, "a b", 0},
        DecodeCase{"gsm_trailing_escape", Bytes({'A', 0x1B}), 0x00, kUnpacked, "A" + kReplacementChar, 1},
        DecodeCase{"gsm_high_octet_unpacked", Bytes({'A', 0x80, 'B'}), 0x00, kUnpacked,
                   "A" + kReplacementChar + "B", 1},
        DecodeCase{"gsm_packed_hellohello", Bytes({0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37}), 0x00,
                   kPacked, "hellohello", 0},
        DecodeCase{"gsm_class_f0", "CV 2", 0xF0, kUnpacked, "CV 2", 0},
        DecodeCase{"gsm_general_group_class1", "CV 2", 0x11, kUnpacked, "CV 2", 0},
        DecodeCase{"dc0_as_latin1_link", Bytes({'c', 'a', 'f', 0xE9}), 0x00, DefaultAlphabet::kLatin1,
                   "caf\u00E9", 0},
        DecodeCase{"ia5", "CV 10", 0x01, kUnpacked, "CV 10", 0},
        DecodeCase{"ia5_high_octet", Bytes({'A', 0xC3}), 0x01, kUnpacked, "A" + kReplacementChar, 1},
        DecodeCase{"latin1_cafe", Bytes({'c', 'a', 'f', 0xE9}), 0x03, kUnpacked, "caf\u00E9", 0},
        DecodeCase{"latin1_trailing_nul_dropped", Bytes({'a', 'b', 'c', 0x00}), 0x03, kUnpacked, "abc", 0},
        DecodeCase{"latin1_embedded_nul", Bytes({'a', 0x00, 'b'}), 0x03, kUnpacked,
                   "a" + kReplacementChar + "b", 1},
        DecodeCase{"ucs2_xin_chao",
                   Bytes({0x00, 0x58, 0x00, 0x69, 0x00, 0x6E, 0x00, 0x20, 0x00, 0x63, 0x00, 0x68, 0x00, 0xE0,
                          0x00, 0x6F}),
                   0x08, kUnpacked, "Xin ch\u00E0o", 0},
        DecodeCase{"ucs2_vietnamese_ung_ho",
                   Bytes({0x1E, 0xE6, 0x00, 0x6E, 0x00, 0x67, 0x00, 0x20, 0x00, 0x68, 0x1E, 0xD9}), 0x08,
                   kUnpacked, "\u1EE6ng h\u1ED9", 0},
        DecodeCase{"ucs2_surrogate_pair_emoji", Bytes({0xD8, 0x3D, 0xDE, 0x00}), 0x08, kUnpacked,
                   "\U0001F600", 0},
        DecodeCase{"ucs2_class0_0x18", Bytes({0x00, 0x43, 0x00, 0x56}), 0x18, kUnpacked, "CV", 0},
        DecodeCase{"ucs2_odd_length", Bytes({0x00, 0x41, 0x00}), 0x08, kUnpacked, "A" + kReplacementChar, 1},
        DecodeCase{"ucs2_unpaired_high_surrogate", Bytes({0xD8, 0x3D, 0x00, 0x41}), 0x08, kUnpacked,
                   kReplacementChar + "A", 1},
        DecodeCase{"ucs2_lone_low_surrogate", Bytes({0x00, 0x41, 0xDE, 0x00}), 0x08, kUnpacked,
                   "A" + kReplacementChar, 1},
        DecodeCase{"ucs2_trailing_nul_terminator", Bytes({0x00, 0x41, 0x00, 0x00}), 0x08, kUnpacked, "A", 0},
        DecodeCase{"empty_gsm", "", 0x00, kUnpacked, "", 0}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return std::string(info.param.name); });

struct CodingCase {
  uint8_t data_coding;
  TextAlphabet alphabet;
  int message_class;
};

TEST(ClassifyDataCoding, FollowsSmppTableAnd23038Groups) {
  const std::vector<CodingCase> cases = {
      {0x00, TextAlphabet::kGsm7, -1},        {0x01, TextAlphabet::kIa5, -1},
      {0x02, TextAlphabet::kBinary, -1},      {0x03, TextAlphabet::kLatin1, -1},
      {0x04, TextAlphabet::kBinary, -1},      {0x05, TextAlphabet::kUnsupported, -1},
      {0x06, TextAlphabet::kUnsupported, -1}, {0x07, TextAlphabet::kUnsupported, -1},
      {0x08, TextAlphabet::kUcs2, -1},        {0x09, TextAlphabet::kUnsupported, -1},
      {0x0E, TextAlphabet::kUnsupported, -1}, {0x10, TextAlphabet::kGsm7, 0},
      {0x11, TextAlphabet::kGsm7, 1},         {0x15, TextAlphabet::kBinary, 1},
      {0x18, TextAlphabet::kUcs2, 0},         {0x1C, TextAlphabet::kUnsupported, 0},
      {0x24, TextAlphabet::kUnsupported, -1} /* compressed */,
      {0x48, TextAlphabet::kUcs2, -1},        {0x80, TextAlphabet::kUnsupported, -1},
      {0xBF, TextAlphabet::kUnsupported, -1}, {0xC0, TextAlphabet::kGsm7, -1},
      {0xD3, TextAlphabet::kGsm7, -1},        {0xE0, TextAlphabet::kUcs2, -1},
      {0xF0, TextAlphabet::kGsm7, 0},         {0xF3, TextAlphabet::kGsm7, 3},
      {0xF4, TextAlphabet::kBinary, 0},       {0xF5, TextAlphabet::kBinary, 1},
      {0xF6, TextAlphabet::kBinary, 2},
  };
  for (const CodingCase& c : cases) {
    DataCodingInfo info = ClassifyDataCoding(c.data_coding);
    EXPECT_EQ(info.alphabet, c.alphabet) << "data_coding 0x" << std::hex << int(c.data_coding);
    EXPECT_EQ(info.message_class, c.message_class) << "data_coding 0x" << std::hex << int(c.data_coding);
  }
  EXPECT_TRUE(ClassifyDataCoding(0x24).compressed);
  EXPECT_EQ(ClassifyDataCoding(0x00, DefaultAlphabet::kIa5).alphabet, TextAlphabet::kIa5);
}

TEST(DecodeSmsText, BinaryAndUnsupportedCodingsCarryNoText) {
  for (uint8_t dc : {0x02, 0x04, 0xF4, 0xF7, 0x15}) {
    DecodedText d = DecodeSmsText(Bytes({0x06, 0x05, 0x04, 0x0B, 0x84}), dc);
    EXPECT_EQ(d.kind, TextKind::kBinary) << int(dc);
    EXPECT_EQ(d.alphabet, TextAlphabet::kBinary);
    EXPECT_TRUE(d.utf8.empty());
    EXPECT_FALSE(d.ok());
  }
  for (uint8_t dc : {0x05, 0x06, 0x0E, 0x24, 0x90}) {
    DecodedText d = DecodeSmsText("abc", dc);
    EXPECT_EQ(d.kind, TextKind::kUnsupported) << int(dc);
    EXPECT_TRUE(d.utf8.empty());
    EXPECT_FALSE(d.ok());
  }
}

TEST(PackedGsm, HelloHelloVectorPacksAndUnpacks) {
  const std::string packed = Bytes({0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37});
  EXPECT_EQ(PackGsm7("hellohello"), packed);
  EXPECT_EQ(UnpackGsm7(packed), "hellohello");
  EncodeOptions options;
  options.gsm_packed = true;
  EncodedText e = EncodeForSms("hellohello", options);
  EXPECT_EQ(e.data_coding, 0x00);
  EXPECT_EQ(e.payload, packed);
  EXPECT_EQ(e.units, 10u);
}

TEST(PackedGsm, SevenSpareBitsArePaddedWithCarriageReturnAndDroppedOnDecode) {
  std::string packed = PackGsm7("1234567");  // 49 bits -> 7 octets, 7 spare bits
  ASSERT_EQ(packed.size(), 7u);
  EXPECT_EQ(UnpackGsm7(packed), "1234567\r");
  DecodeOptions options;
  options.default_alphabet = DefaultAlphabet::kGsm7Packed;
  EXPECT_EQ(DecodeSmsText(packed, 0x00, options).utf8, "1234567");
  // Eight septets fill 7 octets exactly: nothing is padding.
  EXPECT_EQ(DecodeSmsText(PackGsm7("12345678"), 0x00, options).utf8, "12345678");
  // A non-compliant encoder's zero padding is dropped as well (documented ambiguity with a
  // real trailing '@' in an 8n-septet message).
  std::string zero_padded = packed;
  zero_padded.back() = static_cast<char>(static_cast<uint8_t>(zero_padded.back()) & 0x01);
  EXPECT_EQ(DecodeSmsText(zero_padded, 0x00, options).utf8, "1234567");
}

// Reference packer written bit by bit, to check PackGsm7/UnpackGsm7 against.
std::string ReferencePack(const std::string& septets, std::size_t fill) {
  std::vector<bool> bits(fill, false);
  for (char s : septets) {
    for (int b = 0; b < 7; ++b) bits.push_back((static_cast<uint8_t>(s) >> b) & 1);
  }
  std::string out((bits.size() + 7) / 8, '\0');
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits[i]) out[i / 8] = static_cast<char>(static_cast<uint8_t>(out[i / 8]) | (1u << (i % 8)));
  }
  return out;
}

TEST(PackedGsm, MatchesBitByBitReferenceForRandomSeptetsAndFillBits) {
  std::mt19937 rng(20261128);
  for (int round = 0; round < 500; ++round) {
    std::size_t length = rng() % 170;
    std::size_t fill = rng() % 7;
    std::string septets;
    for (std::size_t i = 0; i < length; ++i) septets.push_back(static_cast<char>(rng() % 128));
    std::string reference = ReferencePack(septets, fill);
    std::string packed = PackGsm7(septets, fill);
    ASSERT_EQ(packed.size(), reference.size());
    // PackGsm7 adds a CR in 7 spare bits; the reference leaves zeros there.
    bool padded = packed.size() * 8 - (fill + 7 * length) == 7;
    if (!padded) {
      ASSERT_EQ(packed, reference) << "length " << length << " fill " << fill;
    }
    std::string unpacked = UnpackGsm7(packed, fill);
    if (padded) {
      ASSERT_EQ(unpacked, septets + "\r");
    } else {
      ASSERT_EQ(unpacked, septets);
    }
  }
}

TEST(PackedGsm, UserDataAfterUdhStartsAfterFillBits) {
  EXPECT_EQ(GsmFillBits(0), 0u);
  EXPECT_EQ(GsmFillBits(6), 1u);  // 48 bits -> next septet boundary at 49
  EXPECT_EQ(GsmFillBits(7), 0u);
  EXPECT_EQ(GsmFillBits(5), 2u);
  std::string udh = Bytes({0x05, 0x00, 0x03, 0x2A, 0x02, 0x01});
  std::string short_message = udh + PackGsm7("hello", GsmFillBits(udh.size()));
  UdhParse parse = ParseUdh(short_message);
  ASSERT_EQ(parse.status, UdhStatus::kOk);
  DecodeOptions options;
  options.default_alphabet = DefaultAlphabet::kGsm7Packed;
  options.udh_length = parse.header_length;
  EXPECT_EQ(DecodeSmsText(parse.user_data, 0x00, options).utf8, "hello");
  // The same octets read without the fill bits are garbage: the option matters.
  options.udh_length = 0;
  EXPECT_NE(DecodeSmsText(parse.user_data, 0x00, options).utf8, "hello");
}

struct EncodeCase {
  const char* name;
  std::string utf8;
  uint8_t data_coding;
  std::string payload;
  std::size_t units;
};

// Test names carry the case; print just the name instead of the raw bytes.
void PrintTo(const EncodeCase& c, std::ostream* os) { *os << c.name; }

class EncodeTable : public ::testing::TestWithParam<EncodeCase> {};

TEST_P(EncodeTable, ChoosesGsmWhenEverythingFitsElseUcs2) {
  const EncodeCase& c = GetParam();
  EncodedText e = EncodeForSms(c.utf8);
  EXPECT_EQ(e.data_coding, c.data_coding);
  EXPECT_EQ(e.payload, c.payload);
  EXPECT_EQ(e.units, c.units);
  EXPECT_EQ(e.replacements, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Vectors, EncodeTable,
    ::testing::Values(
        EncodeCase{"ascii_reply", "Cam on", 0x00, "Cam on", 6},
        EncodeCase{"euro_is_two_septets", "5\u20AC", 0x00, Bytes({'5', 0x1B, 0x65}), 3},
        EncodeCase{"braces", "{x}", 0x00, Bytes({0x1B, 0x28, 'x', 0x1B, 0x29}), 5},
        EncodeCase{"xin_chao_fits_gsm", "Xin ch\u00E0o", 0x00, Bytes({'X', 'i', 'n', ' ', 'c', 'h', 0x7F, 'o'}), 8},
        EncodeCase{"greek_and_at", "@\u0394", 0x00, Bytes({0x00, 0x10}), 2},
        EncodeCase{"vietnamese_needs_ucs2", "\u1EE6ng h\u1ED9",
                   0x08, Bytes({0x1E, 0xE6, 0x00, 0x6E, 0x00, 0x67, 0x00, 0x20, 0x00, 0x68, 0x1E, 0xD9}), 6},
        EncodeCase{"a_acute_is_not_gsm", "Gi\u00E1", 0x08, Bytes({0x00, 'G', 0x00, 'i', 0x00, 0xE1}), 3},
        EncodeCase{"lower_c_cedilla_is_not_gsm", "\u00E7", 0x08, Bytes({0x00, 0xE7}), 1},
        EncodeCase{"emoji_surrogate_pair", "\U0001F600", 0x08, Bytes({0xD8, 0x3D, 0xDE, 0x00}), 2},
        EncodeCase{"empty", "", 0x00, "", 0}),
    [](const ::testing::TestParamInfo<EncodeCase>& info) { return std::string(info.param.name); });

TEST(EncodeForSms, MalformedUtf8IsSentAsReplacementCharacter) {
  EncodedText e = EncodeForSms("a\xFF" "b\xE1\x80");
  EXPECT_EQ(e.data_coding, 0x08);
  EXPECT_EQ(e.replacements, 2u);
  EXPECT_EQ(DecodeSmsText(e.payload, e.data_coding).utf8, "a" + kReplacementChar + "b" + kReplacementChar);
  // Overlong encodings and encoded surrogates are malformed too.
  EXPECT_EQ(EncodeForSms("\xC0\xAF").replacements, 2u);
  EXPECT_EQ(EncodeForSms("\xED\xA0\x80").data_coding, 0x08);
}

// Decodes the parts SplitForSms produced the way a handset would.
std::string Reassemble(const SplitMessage& split, bool packed) {
  std::vector<TextSegment> segments;
  for (const std::string& part : split.parts) {
    TextSegment segment{part, split.data_coding, {}};
    if (packed) segment.options.default_alphabet = DefaultAlphabet::kGsm7Packed;
    if (split.esm_class_flags & kEsmClassUdhi) {
      UdhParse parse = ParseUdh(part);
      EXPECT_EQ(parse.status, UdhStatus::kOk);
      segment.user_data = parse.user_data;
      segment.options.udh_length = parse.header_length;
    }
    segments.push_back(segment);
  }
  DecodedText d = DecodeConcatenatedText(segments);
  EXPECT_EQ(d.replacements, 0u);
  return d.utf8;
}

TEST(SplitForSms, SinglePartHasNoUdh) {
  SplitMessage split = SplitForSms(std::string(160, 'a'), 7);
  ASSERT_EQ(split.status, SplitStatus::kOk);
  ASSERT_EQ(split.parts.size(), 1u);
  EXPECT_EQ(split.esm_class_flags, 0);
  EXPECT_EQ(split.parts[0], std::string(160, 'a'));

  split = SplitForSms(std::string(70, 'x') + "\u1EE6", 7);  // 71 units
  EXPECT_EQ(split.parts.size(), 2u);
  split = SplitForSms(std::string(69, 'x') + "\u1EE6", 7);  // 70 units
  ASSERT_EQ(split.parts.size(), 1u);
  EXPECT_EQ(split.parts[0].size(), 140u);

  split = SplitForSms("", 1);
  ASSERT_EQ(split.parts.size(), 1u);
  EXPECT_TRUE(split.parts[0].empty());
}

TEST(SplitForSms, LongGsmTextBecomes153SeptetPartsWithConcatUdh) {
  SplitMessage split = SplitForSms(std::string(161, 'a'), 0x2A);
  ASSERT_EQ(split.status, SplitStatus::kOk);
  ASSERT_EQ(split.parts.size(), 2u);
  EXPECT_EQ(split.esm_class_flags, kEsmClassUdhi);
  EXPECT_EQ(split.data_coding, 0x00);
  EXPECT_EQ(split.parts[0], Bytes({0x05, 0x00, 0x03, 0x2A, 0x02, 0x01}) + std::string(153, 'a'));
  EXPECT_EQ(split.parts[1], Bytes({0x05, 0x00, 0x03, 0x2A, 0x02, 0x02}) + std::string(8, 'a'));
  EXPECT_EQ(SplitForSms(std::string(306, 'a'), 1).parts.size(), 2u);
  EXPECT_EQ(SplitForSms(std::string(307, 'a'), 1).parts.size(), 3u);
}

TEST(SplitForSms, NeverSplitsAnEscapePair) {
  std::string text = std::string(152, 'a') + "\u20AC" + std::string(10, 'b');  // euro at septets 153-154
  SplitMessage split = SplitForSms(text, 3);
  ASSERT_EQ(split.parts.size(), 2u);
  EXPECT_EQ(split.parts[0].size(), 6u + 152u);
  EXPECT_EQ(split.parts[1].substr(6, 2), Bytes({0x1B, 0x65}));
  EXPECT_EQ(Reassemble(split, false), text);
}

TEST(SplitForSms, LongUcs2TextBecomes67UnitPartsAndKeepsSurrogatePairs) {
  std::string text;
  for (int i = 0; i < 66; ++i) text += "\u1EE6";
  text += "\U0001F600";  // units 67-68 would straddle the boundary
  text += "xyz";
  SplitMessage split = SplitForSms(text, 9);
  ASSERT_EQ(split.parts.size(), 2u);
  EXPECT_EQ(split.data_coding, 0x08);
  EXPECT_EQ(split.units, 71u);
  EXPECT_EQ(split.parts[0].size(), 6u + 66u * 2u);
  EXPECT_EQ(split.parts[1].substr(0, 8), Bytes({0x05, 0x00, 0x03, 0x09, 0x02, 0x02, 0xD8, 0x3D}));
  EXPECT_EQ(Reassemble(split, false), text);

  std::string exact;
  for (int i = 0; i < 134; ++i) exact += "\u1EE6";
  split = SplitForSms(exact, 9);
  ASSERT_EQ(split.parts.size(), 2u);
  EXPECT_EQ(split.parts[0].size(), 140u);
  EXPECT_EQ(split.parts[1].size(), 140u);
}

TEST(SplitForSms, PackedPartsFit140Octets) {
  SplitOptions options;
  options.gsm_packed = true;
  SplitMessage split = SplitForSms(std::string(200, 'z'), 5, options);
  ASSERT_EQ(split.parts.size(), 2u);
  EXPECT_EQ(split.parts[0].size(), 140u);
  EXPECT_EQ(Reassemble(split, true), std::string(200, 'z'));
  split = SplitForSms(std::string(160, 'z'), 5, options);
  ASSERT_EQ(split.parts.size(), 1u);
  EXPECT_EQ(split.parts[0].size(), 140u);
}

TEST(SplitForSms, RefusesMoreThanMaxParts) {
  EXPECT_EQ(SplitForSms(std::string(255 * 153, 'a'), 1).parts.size(), 255u);
  SplitMessage split = SplitForSms(std::string(255 * 153 + 1, 'a'), 1);
  EXPECT_EQ(split.status, SplitStatus::kTooManyParts);
  EXPECT_TRUE(split.parts.empty());
  SplitOptions options;
  options.max_parts = 3;
  EXPECT_EQ(SplitForSms(std::string(4 * 153, 'a'), 1, options).status, SplitStatus::kTooManyParts);
  EXPECT_EQ(SplitForSms(std::string(3 * 153, 'a'), 1, options).parts.size(), 3u);
}

TEST(DecodeConcatenatedText, JoinsEscapeAndSurrogateSplitAcrossParts) {
  // TextSegment views its bytes: keep them alive.
  const std::string a_esc = Bytes({'a', 0x1B}), e_b = Bytes({0x65, 'b'});
  std::vector<TextSegment> gsm = {{a_esc, 0x00, {}}, {e_b, 0x00, {}}};
  EXPECT_EQ(DecodeConcatenatedText(gsm).utf8, "a\u20ACb");
  const std::string a_high = Bytes({0x00, 'a', 0xD8, 0x3D}), low = Bytes({0xDE, 0x00});
  std::vector<TextSegment> ucs2 = {{a_high, 0x08, {}}, {low, 0x08, {}}};
  DecodedText d = DecodeConcatenatedText(ucs2);
  EXPECT_EQ(d.utf8, "a\U0001F600");
  EXPECT_TRUE(d.ok());
  const std::string five = Bytes({0x00, '5'});
  std::vector<TextSegment> mixed = {{"CV ", 0x00, {}}, {five, 0x08, {}}};
  EXPECT_EQ(DecodeConcatenatedText(mixed).utf8, "CV 5");
  std::vector<TextSegment> with_binary = {{"CV ", 0x00, {}}, {"\x01", 0x04, {}}};
  EXPECT_EQ(DecodeConcatenatedText(with_binary).kind, TextKind::kBinary);
}

// Property: any text over the GSM repertoire encodes as GSM 7-bit and decodes back, packed or
// not, whole or split.
TEST(RoundTrip, RandomGsmText) {
  std::u32string repertoire;
  for (std::size_t i = 0; i < kGsmTable.size(); ++i) {
    if (i != 0x1B) repertoire += kGsmTable[i];
  }
  repertoire += kGsmExtension;
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::u32string cps;
    std::size_t length = rng() % 400;
    std::size_t extension_chars = 0;
    for (std::size_t i = 0; i < length; ++i) {
      char32_t cp = repertoire[rng() % repertoire.size()];
      if (kGsmExtension.find(cp) != std::u32string::npos) ++extension_chars;
      cps += cp;
    }
    std::string text = Utf8(cps);
    EncodedText e = EncodeForSms(text);
    ASSERT_EQ(e.data_coding, 0x00);
    ASSERT_EQ(e.units, length + extension_chars);
    ASSERT_EQ(DecodeSmsText(e.payload, 0x00).utf8, text);

    EncodeOptions packed;
    packed.gsm_packed = true;
    EncodedText p = EncodeForSms(text, packed);
    DecodeOptions packed_decode;
    packed_decode.default_alphabet = DefaultAlphabet::kGsm7Packed;
    // The one documented ambiguity: a text of 8n septets ending in '@' or CR loses that char.
    bool ambiguous = e.units % 8 == 0 && !cps.empty() && (cps.back() == U'@' || cps.back() == U'\r');
    if (!ambiguous) {
      ASSERT_EQ(DecodeSmsText(p.payload, 0x00, packed_decode).utf8, text);
    }

    SplitMessage split = SplitForSms(text, static_cast<uint8_t>(round));
    ASSERT_EQ(split.status, SplitStatus::kOk);
    for (const std::string& part : split.parts) {
      ASSERT_LE(part.size(), 160u);
    }
    ASSERT_EQ(Reassemble(split, false), text);
  }
}

TEST(RoundTrip, RandomUnicodeText) {
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E}, {0xA0, 0x2FF}, {0x1EA0, 0x1EF9}, {0x4E00, 0x9FFF}, {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}};
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::u32string cps;
    std::size_t length = rng() % 200;
    std::size_t utf16_units = 0;
    for (std::size_t i = 0; i < length; ++i) {
      auto [lo, hi] = ranges[rng() % ranges.size()];
      char32_t cp = lo + rng() % (hi - lo + 1);
      utf16_units += cp >= 0x10000 ? 2 : 1;
      cps += cp;
    }
    cps += U'\u1EE6';  // at least one non-GSM character
    ++utf16_units;
    std::string text = Utf8(cps);
    EncodedText e = EncodeForSms(text);
    ASSERT_EQ(e.data_coding, 0x08);
    ASSERT_EQ(e.units, utf16_units);
    ASSERT_EQ(e.payload.size(), utf16_units * 2);
    DecodedText d = DecodeSmsText(e.payload, 0x08);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d.utf8, text);

    SplitMessage split = SplitForSms(text, 1);
    ASSERT_EQ(split.status, SplitStatus::kOk);
    for (const std::string& part : split.parts) {
      ASSERT_LE(part.size(), 140u);
    }
    ASSERT_EQ(Reassemble(split, false), text);
  }
}

}  // namespace
}  // namespace donagate::smpp

namespace donagate::smpp {
namespace {

// Arbitrary bytes under every data_coding and link setting: no crash (the sanitizer build runs
// this too), text only for text codings, and never a NUL or invalid UTF-8 in the output.
bool IsValidUtf8WithoutNul(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<uint8_t>(s[i]);
    if (b == 0) return false;
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(DecodeSmsText, ArbitraryBytesGiveValidUtf8ForEveryCoding) {
  std::mt19937 rng(31337);
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    for (std::size_t i = 0, n = rng() % 300; i < n; ++i) bytes.push_back(static_cast<char>(rng() % 256));
    auto dc = static_cast<uint8_t>(rng() % 256);
    DecodeOptions options;
    options.default_alphabet = static_cast<DefaultAlphabet>(rng() % 4);
    options.udh_length = rng() % 20;
    DecodedText d = DecodeSmsText(bytes, dc, options);
    ASSERT_TRUE(IsValidUtf8WithoutNul(d.utf8)) << "dc " << int(dc);
    if (d.kind != TextKind::kText) {
      ASSERT_TRUE(d.utf8.empty());
    }
  }
}

}  // namespace
}  // namespace donagate::smpp
