#include "billing/domain/donation_parser.h"

namespace donagate::billing {
namespace {

using u8 = unsigned char;

// Length in bytes of a whitespace character starting at s[i], or 0.
size_t WhitespaceAt(std::string_view s, size_t i) {
  const size_t n = s.size() - i;
  const u8 c = static_cast<u8>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c == 0xC2 && n >= 2 && static_cast<u8>(s[i + 1]) == 0xA0) return 2;  // U+00A0
  if (c == 0xE3 && n >= 3 && static_cast<u8>(s[i + 1]) == 0x80 && static_cast<u8>(s[i + 2]) == 0x80) return 3;  // U+3000
  if (c == 0xE2 && n >= 3) {
    const u8 b1 = static_cast<u8>(s[i + 1]), b2 = static_cast<u8>(s[i + 2]);
    if (b1 == 0x80 && (b2 <= 0x8B || b2 == 0xAF)) return 3;  // U+2000..U+200B, U+202F
    if (b1 == 0x81 && b2 == 0x9F) return 3;                   // U+205F
  }
  if (c == 0xEF && n >= 3 && static_cast<u8>(s[i + 1]) == 0xBB && static_cast<u8>(s[i + 2]) == 0xBF) return 3;  // U+FEFF
  return 0;
}

// Length in bytes of a whitespace character ending at s[end-1], or 0.
size_t WhitespaceBefore(std::string_view s, size_t end) {
  if (end >= 1 && WhitespaceAt(s, end - 1) == 1) return 1;
  if (end >= 2 && WhitespaceAt(s, end - 2) == 2) return 2;
  if (end >= 3 && WhitespaceAt(s, end - 3) == 3) return 3;
  return 0;
}

// Length in bytes of a tolerated trailing punctuation mark ending at s[end-1], or 0.
size_t PunctuationBefore(std::string_view s, size_t end) {
  if (end >= 1) {
    switch (s[end - 1]) {
      case '.': case ',': case '!': case '?': case ';': case ':': return 1;
      default: break;
    }
  }
  if (end >= 3) {
    const u8 b0 = static_cast<u8>(s[end - 3]), b1 = static_cast<u8>(s[end - 2]), b2 = static_cast<u8>(s[end - 1]);
    // Full-width ！，．：；？ (U+FF01 U+FF0C U+FF0E U+FF1A U+FF1B U+FF1F) and U+3002 "。".
    if (b0 == 0xEF && b1 == 0xBC && (b2 == 0x81 || b2 == 0x8C || b2 == 0x8E || b2 == 0x9A || b2 == 0x9B || b2 == 0x9F)) return 3;
    if (b0 == 0xE3 && b1 == 0x80 && b2 == 0x82) return 3;
  }
  return 0;
}

// Digit value of the character at s[i] and its byte length in *len, or -1.
int DigitAt(std::string_view s, size_t i, size_t* len) {
  const u8 c = static_cast<u8>(s[i]);
  if (c >= '0' && c <= '9') {
    *len = 1;
    return c - '0';
  }
  if (c == 0xEF && s.size() - i >= 3 && static_cast<u8>(s[i + 1]) == 0xBC) {
    const u8 b2 = static_cast<u8>(s[i + 2]);
    if (b2 >= 0x90 && b2 <= 0x99) {  // U+FF10..U+FF19
      *len = 3;
      return b2 - 0x90;
    }
  }
  return -1;
}

bool IsAsciiLetter(u8 c) { return static_cast<u8>((c | 0x20) - 'a') < 26; }

}  // namespace

std::string_view ToString(DonationParseStatus status) {
  switch (status) {
    case DonationParseStatus::kOk: return "ok";
    case DonationParseStatus::kEmpty: return "empty";
    case DonationParseStatus::kWrongKeyword: return "wrong_keyword";
    case DonationParseStatus::kSyntaxError: return "syntax_error";
    case DonationParseStatus::kZeroUnits: return "zero_units";
    case DonationParseStatus::kTooManyUnits: return "too_many_units";
  }
  return "unknown";
}

DonationParse ParseDonation(std::string_view text, std::string_view keyword, int32_t max_units) {
  DonationParse result;
  // Trim: leading whitespace; trailing whitespace, one punctuation mark, whitespace again.
  size_t begin = 0;
  while (begin < text.size()) {
    size_t w = WhitespaceAt(text, begin);
    if (w == 0) break;
    begin += w;
  }
  size_t end = text.size();
  while (end > begin) {
    size_t w = WhitespaceBefore(text, end);
    if (w == 0) break;
    end -= w;
  }
  if (begin == end) {
    result.status = DonationParseStatus::kEmpty;
    return result;
  }
  if (size_t p = PunctuationBefore(text, end); p != 0 && end - p >= begin) {
    end -= p;
    while (end > begin) {
      size_t w = WhitespaceBefore(text, end);
      if (w == 0) break;
      end -= w;
    }
  }

  // Keyword, ASCII case-insensitive, not followed by another letter.
  size_t i = begin;
  if (end - i < keyword.size()) {
    result.status = DonationParseStatus::kWrongKeyword;
    return result;
  }
  for (char k : keyword) {
    if ((static_cast<u8>(text[i]) | 0x20) != (static_cast<u8>(k) | 0x20) || !IsAsciiLetter(static_cast<u8>(text[i]))) {
      result.status = DonationParseStatus::kWrongKeyword;
      return result;
    }
    ++i;
  }
  if (i == end) {  // "CV" alone: one unit
    result.status = max_units >= 1 ? DonationParseStatus::kOk : DonationParseStatus::kTooManyUnits;
    result.units = max_units >= 1 ? 1 : 0;
    return result;
  }
  if (IsAsciiLetter(static_cast<u8>(text[i]))) {
    result.status = DonationParseStatus::kWrongKeyword;
    return result;
  }

  // Separator: whitespace, at most one of . - _, whitespace.
  bool marked = false;
  while (i < end) {
    if (size_t w = WhitespaceAt(text, i); w != 0) {
      i += w;
    } else if (!marked && (text[i] == '.' || text[i] == '-' || text[i] == '_')) {
      marked = true;
      ++i;
    } else {
      break;
    }
  }

  // n: one or more digits, saturating well above any allowed maximum.
  constexpr int64_t kSaturate = int64_t{1} << 40;
  int64_t value = 0;
  size_t digits = 0;
  while (i < end) {
    size_t len = 0;
    int d = DigitAt(text, i, &len);
    if (d < 0) break;
    value = value >= kSaturate ? kSaturate : value * 10 + d;
    i += len;
    ++digits;
  }
  if (digits == 0 || i != end) {
    result.status = DonationParseStatus::kSyntaxError;
    return result;
  }
  if (value == 0) {
    result.status = DonationParseStatus::kZeroUnits;
    return result;
  }
  if (value > max_units) {
    result.status = DonationParseStatus::kTooManyUnits;
    return result;
  }
  result.status = DonationParseStatus::kOk;
  result.units = static_cast<int32_t>(value);
  return result;
}

}  // namespace donagate::billing
