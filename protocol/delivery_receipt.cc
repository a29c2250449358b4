#include "protocol/delivery_receipt.h"

#include <array>
#include <cctype>
#include <ctime>

namespace donagate::smpp {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0'; }
char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

enum class Key { kId, kSub, kDlvrd, kSubmitDate, kDoneDate, kStat, kErr, kText, kCount };

// Matches `word` case-insensitively at text[*pos]; advances on success.
bool MatchWord(std::string_view text, std::size_t* pos, std::string_view word) {
  if (text.size() - *pos < word.size()) return false;
  if (!EqualsIgnoreCase(text.substr(*pos, word.size()), word)) return false;
  *pos += word.size();
  return true;
}

// After a matched key word: blanks, then ':'. Sets *value_pos just after the colon.
bool MatchColon(std::string_view text, std::size_t p, std::size_t* value_pos) {
  while (p < text.size() && (text[p] == ' ' || text[p] == '\t')) ++p;
  if (p >= text.size() || text[p] != ':') return false;
  *value_pos = p + 1;
  return true;
}

// Recognises "<key><blanks>:" at text[pos]; on success returns the key and sets *value_pos just
// after the colon.
std::optional<Key> MatchKey(std::string_view text, std::size_t pos, std::size_t* value_pos) {
  static constexpr std::array<std::pair<std::string_view, Key>, 6> kSimple = {{
      {"id", Key::kId}, {"sub", Key::kSub}, {"dlvrd", Key::kDlvrd},
      {"stat", Key::kStat}, {"err", Key::kErr}, {"text", Key::kText},
  }};
  for (const auto& [word, key] : kSimple) {
    std::size_t p = pos;
    if (MatchWord(text, &p, word) && MatchColon(text, p, value_pos)) return key;
  }
  static constexpr std::array<std::pair<std::string_view, Key>, 2> kDates = {{
      {"submit", Key::kSubmitDate}, {"done", Key::kDoneDate},
  }};
  for (const auto& [word, key] : kDates) {
    std::size_t p = pos;
    if (!MatchWord(text, &p, word)) continue;
    while (p < text.size() && (text[p] == ' ' || text[p] == '_' || text[p] == '-')) ++p;
    if (MatchWord(text, &p, "date") && MatchColon(text, p, value_pos)) return key;
  }
  return std::nullopt;
}

template <typename T>
std::optional<T> ParseNumber(std::string_view digits, std::size_t max_digits) {
  if (digits.empty() || digits.size() > max_digits) return std::nullopt;
  T value = 0;
  for (char c : digits) {
    if (!IsDigit(c)) return std::nullopt;
    value = static_cast<T>(value * 10 + (c - '0'));
  }
  return value;
}

std::optional<ReceiptTime> ParseReceiptTime(std::string_view s) {
  if (s.size() != 10 && s.size() != 12 && s.size() != 14) return std::nullopt;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
  }
  auto two = [&](std::size_t i) { return (s[i] - '0') * 10 + (s[i + 1] - '0'); };
  ReceiptTime t;
  std::size_t i = 0;
  if (s.size() == 14) {
    t.year = two(0) * 100 + two(2);
    i = 4;
  } else {
    t.year = 2000 + two(0);
    i = 2;
  }
  t.month = two(i);
  t.day = two(i + 2);
  t.hour = two(i + 4);
  t.minute = two(i + 6);
  bool has_seconds = s.size() - i == 10;
  t.second = has_seconds ? two(i + 8) : 0;
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.second > 59) {
    return std::nullopt;
  }
  return t;
}

}  // namespace

bool IsFinal(MessageState state) {
  switch (state) {
    case MessageState::kDelivered:
    case MessageState::kExpired:
    case MessageState::kDeleted:
    case MessageState::kUndeliverable:
    case MessageState::kAccepted:
    case MessageState::kRejected:
    case MessageState::kSkipped:
      return true;
    default:
      return false;
  }
}

const char* ToString(MessageState state) {
  switch (state) {
    case MessageState::kUnrecognised: return "UNRECOGNISED";
    case MessageState::kEnroute: return "ENROUTE";
    case MessageState::kDelivered: return "DELIVRD";
    case MessageState::kExpired: return "EXPIRED";
    case MessageState::kDeleted: return "DELETED";
    case MessageState::kUndeliverable: return "UNDELIV";
    case MessageState::kAccepted: return "ACCEPTD";
    case MessageState::kUnknown: return "UNKNOWN";
    case MessageState::kRejected: return "REJECTD";
    case MessageState::kSkipped: return "SKIPPED";
  }
  return "UNRECOGNISED";
}

MessageState ParseStat(std::string_view stat) {
  static constexpr std::array<std::pair<std::string_view, MessageState>, 15> kNames = {{
      {"DELIVRD", MessageState::kDelivered},     {"DELIVERED", MessageState::kDelivered},
      {"EXPIRED", MessageState::kExpired},       {"DELETED", MessageState::kDeleted},
      {"UNDELIV", MessageState::kUndeliverable}, {"UNDELIVERABLE", MessageState::kUndeliverable},
      {"FAILED", MessageState::kUndeliverable},  {"ACCEPTD", MessageState::kAccepted},
      {"ACCEPTED", MessageState::kAccepted},     {"UNKNOWN", MessageState::kUnknown},
      {"REJECTD", MessageState::kRejected},      {"REJECTED", MessageState::kRejected},
      {"ENROUTE", MessageState::kEnroute},       {"SKIPPED", MessageState::kSkipped},
      {"UNDELIVRD", MessageState::kUndeliverable},
  }};
  stat = Trim(stat);
  for (const auto& [name, state] : kNames) {
    if (EqualsIgnoreCase(stat, name)) return state;
  }
  return MessageState::kUnrecognised;
}

ReceiptParse ParseDeliveryReceipt(std::string_view text, const ReceiptTlvs& tlvs) {
  ReceiptParse parse;
  DeliveryReceipt& r = parse.receipt;
  std::array<bool, static_cast<std::size_t>(Key::kCount)> seen{};

  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && IsBlank(text[pos])) ++pos;
    if (pos >= text.size()) break;
    std::size_t value_pos = 0;
    std::optional<Key> key = MatchKey(text, pos, &value_pos);
    if (!key) {  // not a field we know: skip the word
      while (pos < text.size() && !IsBlank(text[pos])) ++pos;
      continue;
    }
    if (*key == Key::kText) {
      if (!seen[static_cast<std::size_t>(Key::kText)]) r.text = std::string(Trim(text.substr(value_pos)));
      break;
    }
    std::size_t start = value_pos;
    while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
    std::size_t ignored = 0;
    std::size_t end = start;
    if (!MatchKey(text, start, &ignored)) {  // "err: text:..." means err is empty
      while (end < text.size() && !IsBlank(text[end])) ++end;
    }
    std::string_view value = text.substr(start, end - start);
    pos = end;
    auto& already = seen[static_cast<std::size_t>(*key)];
    if (already) continue;  // the first occurrence counts
    already = true;
    switch (*key) {
      case Key::kId: r.text_message_id = std::string(Trim(value)); break;
      case Key::kSub: r.submitted = ParseNumber<int>(value, 9); break;
      case Key::kDlvrd: r.delivered = ParseNumber<int>(value, 9); break;
      case Key::kSubmitDate: r.submit_date = ParseReceiptTime(value); break;
      case Key::kDoneDate: r.done_date = ParseReceiptTime(value); break;
      case Key::kStat:
        r.stat_raw = std::string(value);
        r.state = ParseStat(value);
        break;
      case Key::kErr:
        r.err_raw = std::string(value);
        r.err = ParseNumber<uint32_t>(value, 9);
        break;
      case Key::kText:
      case Key::kCount: break;
    }
  }

  r.message_id = r.text_message_id;
  if (tlvs.receipted_message_id) {
    std::string_view id = Trim(*tlvs.receipted_message_id);
    if (!id.empty()) {
      r.message_id = std::string(id);
      r.id_from_tlv = true;
    }
  }
  if (tlvs.message_state && *tlvs.message_state >= 1 && *tlvs.message_state <= 9) {
    r.state = static_cast<MessageState>(*tlvs.message_state);
    r.state_from_tlv = true;
  }
  if (tlvs.network_error_code && tlvs.network_error_code->size() == 3) {
    std::string_view v = *tlvs.network_error_code;
    r.network_error = ReceiptNetworkError{
        static_cast<uint8_t>(v[0]),
        static_cast<uint16_t>((static_cast<uint8_t>(v[1]) << 8) | static_cast<uint8_t>(v[2]))};
  }
  r.final = IsFinal(r.state);

  if (r.message_id.empty()) {
    parse.status = ReceiptStatus::kNoMessageId;
  } else if (r.state == MessageState::kUnrecognised) {
    parse.status = ReceiptStatus::kNoState;
  }
  return parse;
}

const char* ToString(ReceiptStatus status) {
  switch (status) {
    case ReceiptStatus::kOk: return "ok";
    case ReceiptStatus::kNoMessageId: return "receipt carries no message id";
    case ReceiptStatus::kNoState: return "receipt carries no recognisable state";
  }
  return "unknown";
}

std::string FormatReceiptText(std::string_view message_id, std::string_view stat,
                              std::string_view date10) {
  std::string out = "id:";
  out.append(message_id);
  out += stat == "DELIVRD" ? " sub:001 dlvrd:001" : " sub:001 dlvrd:000";
  out += " submit date:";
  out.append(date10);
  out += " done date:";
  out.append(date10);
  out += " stat:";
  out.append(stat);
  out += " err:000 text:";
  return out;
}

std::string ReceiptDate10Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%y%m%d%H%M", &tm);
  return buf;
}

}  // namespace donagate::smpp
