#include "console/html.h"

#include <unordered_map>

namespace donagate::console {

std::string Esc(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string JsonForScript(std::string_view json) {
  std::string out;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xE2' && i + 2 < json.size() && json[i + 1] == '\x80' && (json[i + 2] == '\xA8' || json[i + 2] == '\xA9')) {
      out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatCount(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back('.');
    out.push_back(digits[i]);
  }
  return (n < 0 ? "-" : "") + out;
}

std::string FormatVnd(int64_t vnd) { return FormatCount(vnd) + " \xC4\x91"; }

std::string MaskMsisdn(std::string_view m) {
  if (m.size() >= 9) return std::string(m.substr(0, 5)) + "***" + std::string(m.substr(m.size() - 3));
  if (m.size() > 4) return std::string(m.substr(0, 2)) + std::string(m.size() - 4, '*') + std::string(m.substr(m.size() - 2));
  return std::string(m.size(), '*');
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string Decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::map<std::string, std::string> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t amp = body.find('&', pos);
    std::string_view pair = body.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    size_t eq = pair.find('=');
    if (!pair.empty()) out[Decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

const std::string& T(Lang lang, const std::string& key) {
  static const std::unordered_map<std::string, std::string> kVi = {
      {"Overview", "T\xE1\xBB\x95ng quan"},
      {"Donation lookup", "Tra c\xE1\xBB\xA9u quy\xC3\xAAn g\xC3\xB3p"},
      {"Reversals", "Ho\xC3\xA0n ti\xE1\xBB\x81n"},
      {"Exports", "Xu\xE1\xBA\xA5t d\xE1\xBB\xAF li\xE1\xBB\x87u"},
      {"Reconcile", "\xC4\x90\xE1\xBB\x91i so\xC3\xA1t"},
      {"Operations", "V\xE1\xBA\xADn h\xC3\xA0nh"},
      {"Log in", "\xC4\x90\xC4\x83ng nh\xE1\xBA\xADp"},
      {"Log out", "\xC4\x90\xC4\x83ng xu\xE1\xBA\xA5t"},
      {"User name", "T\xC3\xAAn ng\xC6\xB0\xE1\xBB\x9Di d\xC3\xB9ng"},
      {"Password", "M\xE1\xBA\xADt kh\xE1\xBA\xA9u"},
      {"Operator", "Nh\xC3\xA0 m\xE1\xBA\xA1ng"},
      {"Campaign", "Chi\xE1\xBA\xBFn d\xE1\xBB\x8B\x63h"},
      {"Messages", "Tin nh\xE1\xBA\xAFn"},
      {"Donations", "L\xC6\xB0\xE1\xBB\xA3t quy\xC3\xAAn g\xC3\xB3p"},
      {"Units", "\xC4\x90\xC6\xA1n v\xE1\xBB\x8B"},
      {"Charged", "\xC4\x90\xC3\xA3 tr\xE1\xBB\xAB ti\xE1\xBB\x81n"},
      {"Failed", "Th\xE1\xBA\xA5t b\xE1\xBA\xA1i"},
      {"Unknown", "Ch\xC6\xB0\x61 r\xC3\xB5"},
      {"Pending", "\xC4\x90\x61ng x\xE1\xBB\xAD l\xC3\xBD"},
      {"Reversed", "\xC4\x90\xC3\xA3 ho\xC3\xA0n"},
      {"Net", "Th\xE1\xBB\xB1\x63 thu"},
      {"Total", "T\xE1\xBB\x95ng"},
      {"From", "T\xE1\xBB\xAB ng\xC3\xA0y"},
      {"To", "\xC4\x90\xE1\xBA\xBFn ng\xC3\xA0y"},
      {"Show", "Xem"},
      {"Reason", "L\xC3\xBD do"},
      {"Request reversal", "Y\xC3\xAAu \x63\xE1\xBA\xA7u ho\xC3\xA0n ti\xE1\xBB\x81n"},
      {"Approve", "Duy\xE1\xBB\x87t"},
      {"Reject", "T\xE1\xBB\xAB \x63h\xE1\xBB\x91i"},
      {"Search", "T\xC3\xACm"},
      {"Donation id, charge reference or phone number", "M\xC3\xA3 quy\xC3\xAAn g\xC3\xB3p, m\xC3\xA3 giao d\xE1\xBB\x8B\x63h ho\xE1\xBA\xB7\x63 s\xE1\xBB\x91 \xC4\x91i\xE1\xBB\x87n tho\xE1\xBA\xA1i"},
      {"Wrong user name or password.", "Sai t\xC3\xAAn ng\xC6\xB0\xE1\xBB\x9Di d\xC3\xB9ng ho\xE1\xBA\xB7\x63 m\xE1\xBA\xADt kh\xE1\xBA\xA9u."},
      {"Too many failed logins; wait and try again.", "\xC4\x90\xC4\x83ng nh\xE1\xBA\xADp sai qu\xC3\xA1 nhi\xE1\xBB\x81u l\xE1\xBA\xA7n; h\xC3\xA3y \xC4\x91\xE1\xBB\xA3i r\xE1\xBB\x93i th\xE1\xBB\xAD l\xE1\xBA\xA1i."},
      {"Your role does not allow this.", "Vai tr\xC3\xB2 \x63\xE1\xBB\xA7\x61 b\xE1\xBA\xA1n kh\xC3\xB4ng \xC4\x91\xC6\xB0\xE1\xBB\xA3\x63 ph\xC3\xA9p thao t\xC3\xA1\x63 n\xC3\xA0y."},
      {"Download donations CSV", "T\xE1\xBA\xA3i CSV quy\xC3\xAAn g\xC3\xB3p"},
      {"Download ledger CSV", "T\xE1\xBA\xA3i CSV s\xE1\xBB\x95 \x63\xC3\xA1i"},
      {"Pause charging", "T\xE1\xBA\xA1m d\xE1\xBB\xABng tr\xE1\xBB\xAB ti\xE1\xBB\x81n"},
      {"Resume charging", "Ti\xE1\xBA\xBFp t\xE1\xBB\xA5\x63 tr\xE1\xBB\xAB ti\xE1\xBB\x81n"},
      {"Not found.", "Kh\xC3\xB4ng t\xC3\xACm th\xE1\xBA\xA5y."},
      {"Run", "\xC4\x90\xE1\xBB\x91i so\xC3\xA1t"},
      {"Reconcile a settlement file", "\xC4\x90\xE1\xBB\x91i so\xC3\xA1t t\xE1\xBB\x87p quy\xE1\xBA\xBFt to\xC3\xA1n"},
      {"Settlement file", "T\xE1\xBB\x87p quy\xE1\xBA\xBFt to\xC3\xA1n"},
      {"Mapping", "\xC3\x81nh x\xE1\xBA\xA1 c\xE1\xBB\x99t"},
      {"Upload and preview", "T\xE1\xBA\xA3i l\xC3\xAAn v\xC3\xA0 xem tr\xC6\xB0\xE1\xBB\x9B\x63"},
      {"Build a new mapping from the file", "T\xE1\xBA\xA1o \xC3\xA1nh x\xE1\xBA\xA1 m\xE1\xBB\x9Bi t\xE1\xBB\xAB t\xE1\xBB\x87p"},
      {"Saved runs", "C\xC3\xA1\x63 l\xE1\xBA\xA7n \xC4\x91\xE1\xBB\x91i so\xC3\xA1t \xC4\x91\xC3\xA3 l\xC6\xB0u"},
      {"Day", "Ng\xC3\xA0y"},
      {"Run at", "Ch\xE1\xBA\xA1y l\xC3\xBA\x63"},
      {"By", "Ng\xC6\xB0\xE1\xBB\x9Di ch\xE1\xBA\xA1y"},
      {"by", "b\xE1\xBB\x9Fi"},
      {"Matched", "Kh\xE1\xBB\x9Bp"},
      {"Discrepancies", "Ch\xC3\xAAnh l\xE1\xBB\x87\x63h"},
      {"Discrepancy", "Ch\xC3\xAAnh l\xE1\xBB\x87\x63h"},
      {"Count", "S\xE1\xBB\x91 l\xC6\xB0\xE1\xBB\xA3ng"},
      {"Charges", "Giao d\xE1\xBB\x8B\x63h tr\xE1\xBB\xAB ti\xE1\xBB\x81n"},
      {"Our ledger", "S\xE1\xBB\x95 c\xC3\xA1i c\xE1\xBB\xA7\x61 ch\xC3\xBAng t\xC3\xB4i"},
      {"Operator's file", "T\xE1\xBB\x87p c\xE1\xBB\xA7\x61 nh\xC3\xA0 m\xE1\xBA\xA1ng"},
      {"of which billed twice", "trong \xC4\x91\xC3\xB3 t\xC3\xADnh ti\xE1\xBB\x81n hai l\xE1\xBA\xA7n"},
      {"Encoding", "M\xC3\xA3 h\xC3\xB3\x61"},
      {"Delimiter", "D\xE1\xBA\xA5u ph\xC3\xA2n c\xC3\xA1\x63h"},
      {"Columns", "S\xE1\xBB\x91 c\xE1\xBB\x99t"},
      {"First rows", "C\xC3\xA1\x63 d\xC3\xB2ng \xC4\x91\xE1\xBA\xA7u"},
      {"Column mapping", "\xC3\x81nh x\xE1\xBA\xA1 c\xE1\xBB\x99t"},
      {"Run the reconciliation", "Ch\xE1\xBA\xA1y \xC4\x91\xE1\xBB\x91i so\xC3\xA1t"},
      {"Download discrepancy CSV", "T\xE1\xBA\xA3i CSV ch\xC3\xAAnh l\xE1\xBB\x87\x63h"},
      {"Discrepancy CSV", "CSV ch\xC3\xAAnh l\xE1\xBB\x87\x63h"},
      {"Back", "Quay l\xE1\xBA\xA1i"},
      {"Charge reference", "M\xC3\xA3 giao d\xE1\xBB\x8B\x63h"},
      {"Amount", "S\xE1\xBB\x91 ti\xE1\xBB\x81n"},
      {"Phone number", "S\xE1\xBB\x91 \xC4\x91i\xE1\xBB\x87n tho\xE1\xBA\xA1i"},
      {"Time", "Th\xE1\xBB\x9Di gian"},
      {"Status", "Tr\xE1\xBA\xA1ng th\xC3\xA1i"},
      {"Times in Asia/Ho_Chi_Minh", "Gi\xE1\xBB\x9D Vi\xE1\xBB\x87t Nam (Asia/Ho_Chi_Minh)"},
  };
  if (lang == Lang::kVi) {
    auto it = kVi.find(key);
    if (it != kVi.end()) return it->second;
  }
  return key;
}

}  // namespace donagate::console
