#include "billing/finance/settlement.h"

#include <toml++/toml.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "billing/finance/csv.h"
#include "billing/finance/time_util.h"

namespace donagate::finance {
namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// National (0…), international (84…, +84…, 0084…) -> 84…; anything else is kept as given so
// the discrepancy report shows what the operator wrote.
std::string NormaliseSettlementMsisdn(const std::string& raw) {
  std::string s = raw;
  if (s.rfind("+", 0) == 0) s.erase(0, 1);
  if (s.rfind("0084", 0) == 0) s.erase(0, 2);
  for (char c : s)
    if (c < '0' || c > '9') return raw;
  if (s.size() >= 2 && s[0] == '0' && s[1] != '0') return "84" + s.substr(1);
  return s;
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}

// Spaces an export may put between a number and its currency: ASCII space and tab, and the
// UTF-8 no-break spaces (U+00A0, U+202F) that locale-aware spreadsheets write.
std::string_view TrimAmountSpaces(std::string_view s) {
  static constexpr std::string_view kSpaces[] = {" ", "\t", "\xC2\xA0", "\xE2\x80\xAF"};
  for (bool trimmed = true; trimmed;) {
    trimmed = false;
    for (auto sp : kSpaces) {
      if (s.starts_with(sp)) s.remove_prefix(sp.size()), trimmed = true;
      if (s.ends_with(sp)) s.remove_suffix(sp.size()), trimmed = true;
    }
  }
  return s;
}

bool ContainsDigit(std::string_view s) {
  for (char c : s)
    if (c >= '0' && c <= '9') return true;
  return false;
}

// Resolves a column spec to a 0-based index: header name, or 1-based position.
bool ResolveColumn(const std::string& spec, const std::vector<std::string>& header, bool has_header,
                   int* index, std::string* error) {
  if (spec.empty()) {
    *index = -1;
    return true;
  }
  if (has_header) {
    for (size_t i = 0; i < header.size(); ++i)
      if (Trim(header[i]) == spec) {
        *index = static_cast<int>(i);
        return true;
      }
  }
  int pos = 0;
  auto [p, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), pos);
  if (ec == std::errc() && p == spec.data() + spec.size() && pos >= 1) {
    *index = pos - 1;
    return true;
  }
  *error = "column \"" + spec + "\" not found" + (has_header ? " in the header" : "");
  return false;
}

}  // namespace

bool ParseVndAmount(std::string_view text, const AmountFormat& f, int64_t* vnd, std::string* why) {
  const std::string quoted = "amount \"" + std::string(text) + "\"";
  std::string_view s = TrimAmountSpaces(text);
  if (!f.currency_prefix.empty() && s.starts_with(f.currency_prefix))
    s = TrimAmountSpaces(s.substr(f.currency_prefix.size()));
  if (!f.currency_suffix.empty() && s.ends_with(f.currency_suffix))
    s = TrimAmountSpaces(s.substr(0, s.size() - f.currency_suffix.size()));
  std::string_view integer = s;
  if (!f.decimal_separator.empty()) {
    if (size_t d = s.find(f.decimal_separator); d != std::string_view::npos) {
      integer = s.substr(0, d);
      std::string_view fraction = s.substr(d + f.decimal_separator.size());
      if (!AllDigits(fraction)) {
        *why = quoted + " is not a number in the mapping's format";
        return false;
      }
      // Rounding money silently is never right: a non-zero decimal part is the operator's
      // error (or a wrong mapping) for finance to look at.
      if (fraction.find_first_not_of('0') != std::string_view::npos) {
        *why = quoted + " has a decimal part: VND has no minor unit";
        return false;
      }
    }
  }
  std::string digits;
  const std::string& sep = f.thousands_separator;
  if (!sep.empty() && integer.find(sep) != std::string_view::npos) {
    for (size_t pos = 0, group_no = 0;; ++group_no) {
      size_t next = integer.find(sep, pos);
      std::string_view group = integer.substr(pos, next == std::string_view::npos ? next : next - pos);
      if (!AllDigits(group) || (group_no == 0 ? group.size() > 3 : group.size() != 3)) {
        *why = quoted + " is not grouped in thousands by \"" + sep + "\"";
        return false;
      }
      digits.append(group);
      if (next == std::string_view::npos) break;
      pos = next + sep.size();
    }
  } else {
    digits = integer;
  }
  // from_chars alone would accept a sign; an amount is digits only.
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *vnd);
  if (!AllDigits(digits) || p != digits.data() + digits.size() || ec != std::errc()) {
    *why = quoted + (ec == std::errc::result_out_of_range ? " is too large"
                                                          : " is not a non-negative integer number of VND");
    if (sep.empty() && digits.find_first_of(".,") != std::string::npos)
      *why += " (if the operator groups digits, say so with amount_thousands_separator in the mapping)";
    return false;
  }
  return true;
}

bool ValidateSettlementMapping(const SettlementMapping& m, std::string* error) {
  if (m.reference_column.empty()) {
    *error = "mapping: columns.reference is required";
    return false;
  }
  if (m.amount_column.empty()) {
    *error = "mapping: columns.amount is required";
    return false;
  }
  if (!ZoneOffsetSeconds(m.time_zone)) {
    *error = "mapping: time.zone \"" + m.time_zone + "\" is not a known zone or offset";
    return false;
  }
  if (!m.status_column.empty() && m.charged_values.empty()) {
    *error = "mapping: status.charged must list the values that mean charged";
    return false;
  }
  const AmountFormat& a = m.amount_format;
  if (ContainsDigit(a.thousands_separator) || ContainsDigit(a.decimal_separator)) {
    *error = "mapping: amount separators cannot contain digits";
    return false;
  }
  if (!a.thousands_separator.empty() && a.thousands_separator == a.decimal_separator) {
    *error = "mapping: amount_thousands_separator and amount_decimal_separator must differ";
    return false;
  }
  if (ContainsDigit(a.currency_prefix) || ContainsDigit(a.currency_suffix)) {
    *error = "mapping: amount currency prefix and suffix cannot contain digits";
    return false;
  }
  return true;
}

bool LoadSettlementMapping(const std::string& path, SettlementMapping* m, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot read the mapping file";
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseSettlementMapping(text.str(), path, m, error);
}

bool ParseSettlementMapping(std::string_view toml_text, const std::string& path, SettlementMapping* m,
                            std::string* error) {
  toml::table t;
  try {
    t = toml::parse(toml_text, path);
  } catch (const toml::parse_error& e) {
    *error = path + ":" + std::to_string(e.source().begin.line) + ":" +
             std::to_string(e.source().begin.column) + ": " + std::string(e.description());
    return false;
  }
  static const char* kKnownTop[] = {"delimiter", "comment_prefix", "header", "columns", "time", "status",
                                    "amount_thousands_separator", "amount_decimal_separator",
                                    "amount_currency_prefix", "amount_currency_suffix"};
  for (auto& [k, v] : t) {
    bool known = false;
    for (auto* name : kKnownTop) known |= (k.str() == name);
    if (!known) {
      *error = path + ": unknown key \"" + std::string(k.str()) + "\"";
      return false;
    }
  }
  if (auto d = t["delimiter"].value<std::string>()) {
    if (*d == "\\t" || *d == "tab") *d = "\t";
    if (d->size() != 1) {
      *error = path + ": delimiter must be one character";
      return false;
    }
    m->delimiter = (*d)[0];
  }
  m->comment_prefix = t["comment_prefix"].value_or(m->comment_prefix);
  m->header = t["header"].value_or(m->header);
  AmountFormat& a = m->amount_format;
  a.thousands_separator = t["amount_thousands_separator"].value_or(a.thousands_separator);
  a.decimal_separator = t["amount_decimal_separator"].value_or(a.decimal_separator);
  a.currency_prefix = t["amount_currency_prefix"].value_or(a.currency_prefix);
  a.currency_suffix = t["amount_currency_suffix"].value_or(a.currency_suffix);
  auto col = [&](const char* key, std::string* out) {
    if (auto v = t["columns"][key].value<std::string>()) *out = *v;
    if (auto v = t["columns"][key].value<int64_t>()) *out = std::to_string(*v);
  };
  col("reference", &m->reference_column);
  col("msisdn", &m->msisdn_column);
  col("amount", &m->amount_column);
  col("time", &m->time_column);
  col("status", &m->status_column);
  m->time_format = t["time"]["format"].value_or(m->time_format);
  m->time_zone = t["time"]["zone"].value_or(m->time_zone);
  if (auto arr = t["status"]["charged"].as_array()) {
    m->charged_values.clear();
    for (auto& v : *arr) {
      if (auto s = v.value<std::string>()) m->charged_values.push_back(*s);
      else if (auto i = v.value<int64_t>()) m->charged_values.push_back(std::to_string(*i));
    }
  }
  std::string why;
  if (!ValidateSettlementMapping(*m, &why)) {
    *error = path + ": " + why;
    return false;
  }
  return true;
}

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

}  // namespace

std::string SettlementMappingToToml(const SettlementMapping& m) {
  std::string s;
  s += "delimiter = " + TomlString(std::string(1, m.delimiter)) + "\n";
  s += "comment_prefix = " + TomlString(m.comment_prefix) + "\n";
  s += std::string("header = ") + (m.header ? "true" : "false") + "\n";
  const AmountFormat& a = m.amount_format;
  if (!a.thousands_separator.empty()) s += "amount_thousands_separator = " + TomlString(a.thousands_separator) + "\n";
  if (!a.decimal_separator.empty()) s += "amount_decimal_separator = " + TomlString(a.decimal_separator) + "\n";
  if (!a.currency_prefix.empty()) s += "amount_currency_prefix = " + TomlString(a.currency_prefix) + "\n";
  if (!a.currency_suffix.empty()) s += "amount_currency_suffix = " + TomlString(a.currency_suffix) + "\n";
  s += "\n[columns]\n";
  auto col = [&](const char* key, const std::string& v) {
    if (!v.empty()) s += std::string(key) + " = " + TomlString(v) + "\n";
  };
  col("reference", m.reference_column);
  col("msisdn", m.msisdn_column);
  col("amount", m.amount_column);
  col("time", m.time_column);
  col("status", m.status_column);
  s += "\n[time]\nformat = " + TomlString(m.time_format) + "\nzone = " + TomlString(m.time_zone) + "\n";
  if (!m.charged_values.empty()) {
    s += "\n[status]\ncharged = [";
    for (size_t i = 0; i < m.charged_values.size(); ++i) s += (i ? ", " : "") + TomlString(m.charged_values[i]);
    s += "]\n";
  }
  return s;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i], 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace

bool DetectSettlementLayout(std::istream& in, const std::string& comment_prefix, size_t max_rows,
                            SettlementLayout* layout, std::string* error) {
  std::string line;
  size_t lineno = 0, bytes = 0;
  bool have_header = false;
  std::vector<std::string> fields;
  while (layout->rows.size() < max_rows && bytes < (1u << 20) && std::getline(in, line)) {
    ++lineno;
    bytes += line.size() + 1;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) {
      layout->bom = true;
      line.erase(0, 3);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    layout->valid_utf8 &= IsUtf8(line);
    if (Trim(line).empty()) continue;
    if (!comment_prefix.empty() && line.rfind(comment_prefix, 0) == 0) {
      if (!have_header) ++layout->comment_lines;
      continue;
    }
    if (!have_header) {
      // The header decides: the candidate giving most fields (ties: the earlier, comma first).
      size_t best = 0;
      for (char d : {',', ';', '\t', '|'}) {
        if (!SplitCsvLine(line, d, &fields)) continue;
        if (fields.size() > best) {
          best = fields.size();
          layout->delimiter = d;
        }
      }
      if (best == 0 || !SplitCsvLine(line, layout->delimiter, &fields)) {
        *error = "line " + std::to_string(lineno) + ": the header cannot be split into columns";
        return false;
      }
      for (auto& f : fields) layout->columns.push_back(Trim(f));
      have_header = true;
      continue;
    }
    if (!SplitCsvLine(line, layout->delimiter, &fields)) fields = {line};
    for (auto& f : fields) f = Trim(f);
    layout->rows.push_back(fields);
  }
  if (!have_header) {
    *error = "the file has no header line";
    return false;
  }
  layout->encoding = !layout->valid_utf8 ? "not UTF-8 (convert the file to UTF-8 first)"
                     : layout->bom      ? "UTF-8 with BOM"
                                        : "UTF-8";
  return true;
}

bool ReadSettlement(std::istream& in, const SettlementMapping& m, std::vector<SettlementRow>* rows,
                    SettlementError* error) {
  std::string why;
  if (!ValidateSettlementMapping(m, &why)) {
    *error = {0, why};
    return false;
  }
  const int offset = *ZoneOffsetSeconds(m.time_zone);
  std::string line;
  size_t lineno = 0;
  bool have_header = !m.header;
  std::vector<std::string> header, fields;
  int ref_i = -1, msisdn_i = -1, amount_i = -1, time_i = -1, status_i = -1;
  size_t width = 0;
  auto fail = [&](const std::string& msg) {
    *error = {lineno, msg};
    return false;
  };
  auto resolve_all = [&]() {
    std::string err;
    if (!ResolveColumn(m.reference_column, header, m.header, &ref_i, &err) ||
        !ResolveColumn(m.msisdn_column, header, m.header, &msisdn_i, &err) ||
        !ResolveColumn(m.amount_column, header, m.header, &amount_i, &err) ||
        !ResolveColumn(m.time_column, header, m.header, &time_i, &err) ||
        !ResolveColumn(m.status_column, header, m.header, &status_i, &err))
      return fail(err);
    return true;
  };
  if (!m.header && !resolve_all()) return false;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (Trim(line).empty()) continue;
    if (!m.comment_prefix.empty() && line.rfind(m.comment_prefix, 0) == 0) continue;
    if (!SplitCsvLine(line, m.delimiter, &fields)) return fail("malformed quoting");
    if (!have_header) {
      header = fields;
      width = header.size();
      have_header = true;
      if (!resolve_all()) return false;
      continue;
    }
    if (width == 0) width = fields.size();
    if (fields.size() != width)
      return fail("expected " + std::to_string(width) + " fields, found " + std::to_string(fields.size()));
    auto field = [&](int i) { return i >= 0 && static_cast<size_t>(i) < fields.size() ? Trim(fields[i]) : std::string(); };
    for (int i : {ref_i, msisdn_i, amount_i, time_i, status_i})
      if (i >= 0 && static_cast<size_t>(i) >= fields.size())
        return fail("column " + std::to_string(i + 1) + " is beyond the " + std::to_string(fields.size()) + " fields");
    SettlementRow row;
    row.line = lineno;
    row.reference = field(ref_i);
    if (row.reference.empty()) return fail("empty reference");
    if (!ParseVndAmount(field(amount_i), m.amount_format, &row.amount_vnd, &why)) return fail(why);
    if (msisdn_i >= 0) row.msisdn = NormaliseSettlementMsisdn(field(msisdn_i));
    if (time_i >= 0) {
      std::string ts = field(time_i);
      auto t = ParseTimestamp(ts, m.time_format, offset);
      if (!t) return fail("time \"" + ts + "\" does not match format \"" + m.time_format + "\"");
      row.has_time = true;
      row.charged_at = *t;
    }
    if (status_i >= 0) {
      row.status = field(status_i);
      row.charged = false;
      for (auto& v : m.charged_values) row.charged |= (row.status == v);
    }
    rows->push_back(std::move(row));
  }
  if (!have_header) return fail("file has no header line");
  return true;
}

}  // namespace donagate::finance
