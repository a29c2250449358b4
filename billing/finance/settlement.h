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
#include <string_view>
#include <vector>

namespace donagate::finance {

// How an operator writes amounts. The default is today's plain integer ("100000"); a
// Vietnamese spreadsheet export writes "100.000", "100.000,00" or "100.000 đ". VND has no minor
// unit, so a decimal part other than zeros is refused, never rounded. With a thousands
// separator, groups after the first must have exactly three digits ("100.5" is refused rather
// than read as 1005 when "." is the thousands separator).
struct AmountFormat {
  std::string thousands_separator;  // "" = none; e.g. ".", ",", " "
  std::string decimal_separator;    // "" = amounts have no decimal part at all
  std::string currency_prefix;      // e.g. "VND"; removed when present (with the spaces after it)
  std::string currency_suffix;      // e.g. "đ", "VND"; removed when present (with the spaces before it)
};

// Parses one amount written in `format` into whole VND. Returns false with `why` (a sentence
// naming the text) when it is not a non-negative whole number of VND in that format.
bool ParseVndAmount(std::string_view text, const AmountFormat& format, int64_t* vnd, std::string* why);

struct SettlementMapping {
  char delimiter = ',';
  std::string comment_prefix = "#";  // lines starting with it are skipped; "" = none
  bool header = true;                // first non-comment line names the columns
  // Columns by header name, or by 1-based position ("3") when the file has no header.
  std::string reference_column;      // our charge reference (idempotency key), required
  std::string msisdn_column;         // optional
  std::string amount_column;         // VND, required, written as `amount_format` says
  AmountFormat amount_format;
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
// The same from TOML text (the console's saved mappings); `source` names it in errors.
bool ParseSettlementMapping(std::string_view toml_text, const std::string& source, SettlementMapping* mapping,
                            std::string* error);
// The TOML text of a mapping, in the layout of mappings/*.toml; ParseSettlementMapping reads it
// back to an equal mapping. A reconcile run stores this text (and its hash) as its input.
std::string SettlementMappingToToml(const SettlementMapping& mapping);
// Checks that a mapping is usable (required columns named, zone known, delimiter set, amount
// separators distinct and not digits).
bool ValidateSettlementMapping(const SettlementMapping& mapping, std::string* error);

// Reads the whole file. Blank lines and comment lines are skipped. Returns false with the
// line number and reason of the first malformed line (wrong field count, missing column,
// non-integer or negative amount, unparsable time, empty reference).
bool ReadSettlement(std::istream& in, const SettlementMapping& mapping, std::vector<SettlementRow>* rows,
                    SettlementError* error);

// What a settlement file looks like, from its first lines, before any mapping exists: the
// console's mapping form previews it. Reads at most `max_rows` data rows (and at most 1 MiB).
struct SettlementLayout {
  bool bom = false;         // starts with the UTF-8 byte order mark (removed before parsing)
  bool valid_utf8 = true;   // every byte read is well-formed UTF-8
  std::string encoding;     // "UTF-8 with BOM", "UTF-8", or "not UTF-8 (...)" for a sentence
  char delimiter = ',';     // the candidate (, ; tab |) splitting the header into most fields
  size_t comment_lines = 0; // leading lines starting with the comment prefix
  std::vector<std::string> columns;              // the header's fields
  std::vector<std::vector<std::string>> rows;    // first data rows, split by `delimiter`
};
// `comment_prefix` as the mapping would have it ("#" by default). False with `error` when the
// file has no line at all or its header cannot be split.
bool DetectSettlementLayout(std::istream& in, const std::string& comment_prefix, size_t max_rows,
                            SettlementLayout* layout, std::string* error);

}  // namespace donagate::finance
