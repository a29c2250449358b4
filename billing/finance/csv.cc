#include "billing/finance/csv.h"

namespace donagate::finance {

void AppendCsvField(std::string* out, std::string_view field, char delimiter) {
  bool quote = field.find_first_of(std::string{delimiter, '"', '\r', '\n'}) != std::string_view::npos;
  if (!quote) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void WriteCsvRecord(std::ostream& out, const std::vector<std::string>& fields, char delimiter) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) line.push_back(delimiter);
    AppendCsvField(&line, fields[i], delimiter);
  }
  line.append(kCsvRecordEnd);
  out << line;
}

bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* fields) {
  fields->clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string cur;
  size_t i = 0;
  while (true) {
    cur.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return false;  // unterminated quote
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cur.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cur.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != delimiter) return false;
    } else {
      while (i < line.size() && line[i] != delimiter) cur.push_back(line[i++]);
    }
    fields->push_back(cur);
    if (i >= line.size()) break;
    ++i;  // delimiter
  }
  return true;
}

}  // namespace donagate::finance
