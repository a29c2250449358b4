// Finance days and timestamps. Finance works on calendar days of a fixed-offset zone
// (Asia/Ho_Chi_Minh, UTC+7, no daylight saving since 1975); operators' files carry local or
// UTC times in their own formats. Everything is converted to UTC seconds since the epoch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace donagate::finance {

// Offset east of UTC in seconds for "UTC", "Z", "Asia/Ho_Chi_Minh" (and its alias
// "Asia/Saigon"), "Asia/Bangkok", "Asia/Jakarta", or a literal "+07:00" / "-0530".
std::optional<int> ZoneOffsetSeconds(std::string_view zone);

// "2026-11-27" -> days since 1970-01-01.
std::optional<int64_t> ParseDate(std::string_view yyyy_mm_dd);
std::string FormatDate(int64_t days_since_epoch);

// [start, end) of a local calendar day, as UTC epoch seconds.
struct UtcRange {
  int64_t start = 0;
  int64_t end = 0;
};
UtcRange LocalDayRange(int64_t day, int offset_seconds);

// Parses a timestamp with a strftime-like `format` made of %Y %m %d %H %M %S (any literal
// text in between must match), interpreted in `offset_seconds`; or format "iso8601", which
// accepts "2026-11-27T16:59:59Z", "...+07:00" and fractional seconds, using the string's own
// offset when it has one. Returns UTC epoch seconds.
std::optional<int64_t> ParseTimestamp(std::string_view text, std::string_view format, int offset_seconds);

// "2026-11-27 23:59:59+07:00" rendering of an epoch second in a zone, for CSV and tables.
std::string FormatTimestamp(int64_t epoch_seconds, int offset_seconds);

}  // namespace donagate::finance
