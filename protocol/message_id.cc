#include "protocol/message_id.h"

#include <vector>

namespace donagate::smpp {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

int DigitValue(char c, int base) {
  int v = -1;
  if (c >= '0' && c <= '9') v = c - '0';
  else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
  else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
  return v < base ? v : -1;
}

// Converts an unsigned number written in base `from` to base `to` (both <= 16), digit string to
// digit string, without any fixed-width integer in between.
std::optional<std::string> ConvertBase(std::string_view digits, int from, int to) {
  if (digits.empty()) return std::nullopt;
  std::vector<uint8_t> out;  // little-endian digits in base `to`
  for (char c : digits) {
    int d = DigitValue(c, from);
    if (d < 0) return std::nullopt;
    unsigned carry = static_cast<unsigned>(d);
    for (uint8_t& digit : out) {
      unsigned v = digit * static_cast<unsigned>(from) + carry;
      digit = static_cast<uint8_t>(v % static_cast<unsigned>(to));
      carry = v / static_cast<unsigned>(to);
    }
    while (carry != 0) {
      out.push_back(static_cast<uint8_t>(carry % static_cast<unsigned>(to)));
      carry /= static_cast<unsigned>(to);
    }
  }
  if (out.empty()) return std::string("0");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(out.size());
  for (auto it = out.rbegin(); it != out.rend(); ++it) text.push_back(kDigits[*it]);
  return text;
}

std::string TrimLeadingZerosFolded(std::string_view id) {
  std::size_t first = id.find_first_not_of('0');
  std::string folded(first == std::string_view::npos ? std::string_view("0") : id.substr(first));
  for (char& c : folded) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return folded;
}

}  // namespace

std::optional<std::string> HexToDecimal(std::string_view hex) { return ConvertBase(hex, 16, 10); }
std::optional<std::string> DecimalToHex(std::string_view decimal) { return ConvertBase(decimal, 10, 16); }

NormalizedMessageId NormalizeMessageId(std::string_view id, MessageIdSource source, MessageIdMode mode) {
  NormalizedMessageId result;
  id = Trim(id);
  if (id.empty()) {
    result.status = MessageIdStatus::kEmpty;
    return result;
  }
  if (id.size() > kMaxMessageIdLength) {
    result.status = MessageIdStatus::kTooLong;
    result.canonical = std::string(id);
    return result;
  }
  switch (mode) {
    case MessageIdMode::kExact:
      result.canonical = std::string(id);
      return result;
    case MessageIdMode::kTrimLeadingZeros:
      result.canonical = TrimLeadingZerosFolded(id);
      return result;
    case MessageIdMode::kResponseHexReceiptDecimal:
    case MessageIdMode::kResponseDecimalReceiptHex: {
      bool response_notation = source != MessageIdSource::kReceiptText;
      bool hex = (mode == MessageIdMode::kResponseHexReceiptDecimal) == response_notation;
      std::optional<std::string> decimal = ConvertBase(id, hex ? 16 : 10, 10);
      if (!decimal) {
        result.status = MessageIdStatus::kNotNumeric;
        result.canonical = TrimLeadingZerosFolded(id);  // contains a non-digit, so never numeric
        return result;
      }
      result.canonical = std::move(*decimal);
      return result;
    }
  }
  result.canonical = std::string(id);
  return result;
}

std::optional<MessageIdMode> ParseMessageIdMode(std::string_view name) {
  for (MessageIdMode mode : {MessageIdMode::kExact, MessageIdMode::kTrimLeadingZeros,
                             MessageIdMode::kResponseHexReceiptDecimal,
                             MessageIdMode::kResponseDecimalReceiptHex}) {
    if (name == ToString(mode)) return mode;
  }
  return std::nullopt;
}

const char* ToString(MessageIdMode mode) {
  switch (mode) {
    case MessageIdMode::kExact: return "exact";
    case MessageIdMode::kTrimLeadingZeros: return "trim_leading_zeros";
    case MessageIdMode::kResponseHexReceiptDecimal: return "resp_hex_dlr_decimal";
    case MessageIdMode::kResponseDecimalReceiptHex: return "resp_decimal_dlr_hex";
  }
  return "unknown";
}

}  // namespace donagate::smpp
