// RFC 4180 CSV: writing (quote when needed, every record ended by CRLF as the RFC says:
// spreadsheet imports expect it) and splitting one record with a configurable delimiter.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace donagate::finance {

// Appends `field` to `out`, quoted when it contains the delimiter, a quote, CR or LF.
void AppendCsvField(std::string* out, std::string_view field, char delimiter = ',');
// Ends one record. Every CSV donagatectl writes ends its records with this, never with '\n'.
inline constexpr std::string_view kCsvRecordEnd = "\r\n";
// Writes one record (fields joined by `delimiter`, terminated by kCsvRecordEnd).
void WriteCsvRecord(std::ostream& out, const std::vector<std::string>& fields, char delimiter = ',');

// Splits one line into fields. Quoted fields may contain the delimiter and doubled quotes;
// a quoted field with a newline is not supported (operators' files are line-oriented).
// Returns false on an unterminated quote or text after a closing quote.
bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* fields);

}  // namespace donagate::finance
