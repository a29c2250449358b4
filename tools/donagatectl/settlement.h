// Operators' daily settlement files, read through a column mapping.
//
// Every operator sends its own layout (delimiter, column names, time format and zone, MSISDN
// format, status codes): see ../shared/data/ and tools/donagatectl/mappings/. A mapping says
// where each field is; the reader turns the file into SettlementRows or stops at the first
// malformed line with its line number (a settlement file is money: a line we cannot read is
// not skipped silently).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace donagate::ctl {

struct SettlementMapping {
  char delimiter = ',';
  std::string comment_prefix = "#";  // lines starting with it are skipped; "" = none
  bool header = true;                // first non-comment line names the columns
  // Columns by header name, or by 1-based position ("3") when the file has no header.
  std::string reference_column;      // our charge reference (idempotency key), required
  std::string msisdn_column;         // optional
  std::string amount_column;         // VND, integer, required
  std::string time_column;           // optional
  std::string status_column;         // optional; without it every row counts as charged
  std::string time_format = "iso8601";  // or strftime-like "%d/%m/%Y %H:%M:%S"
  std::string time_zone = "UTC";        // zone of times without their own offset
  std::vector<std::string> charged_values;  // status values meaning "charged" (exact match)
};

struct SettlementRow {
  size_t line = 0;            // 1-based line number in the file
  std::string reference;
  std::string msisdn;         // normalised to 84xxxxxxxxx when recognisable, else as given
  int64_t amount_vnd = 0;
  bool has_time = false;
  int64_t charged_at = 0;     // UTC epoch seconds
  std::string status;         // as in the file
  bool charged = true;        // status is one of charged_values (or no status column)
};

struct SettlementError {
  size_t line = 0;
  std::string message;
};

// Reads a mapping from a TOML file (see mappings/*.toml). Returns false with `error` set.
bool LoadSettlementMapping(const std::string& path, SettlementMapping* mapping, std::string* error);
// Checks that a mapping is usable (required columns named, zone known, delimiter set).
bool ValidateSettlementMapping(const SettlementMapping& mapping, std::string* error);

// Reads the whole file. Blank lines and comment lines are skipped. Returns false with the
// line number and reason of the first malformed line (wrong field count, missing column,
// non-integer or negative amount, unparsable time, empty reference).
bool ReadSettlement(std::istream& in, const SettlementMapping& mapping, std::vector<SettlementRow>* rows,
                    SettlementError* error);

}  // namespace donagate::ctl
