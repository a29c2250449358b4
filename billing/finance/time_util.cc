#include "billing/finance/time_util.h"

#include <chrono>
#include <cstdio>

namespace donagate::finance {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

std::optional<int64_t> CivilToEpoch(int y, int mo, int d, int h, int mi, int s) {
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  int64_t days = sys_days{ymd}.time_since_epoch().count();
  return days * 86400 + h * 3600 + mi * 60 + s;
}

}  // namespace

std::optional<int> ZoneOffsetSeconds(std::string_view zone) {
  if (zone == "UTC" || zone == "Z" || zone == "Etc/UTC" || zone == "GMT") return 0;
  if (zone == "Asia/Ho_Chi_Minh" || zone == "Asia/Saigon" || zone == "Asia/Bangkok" ||
      zone == "Asia/Jakarta" || zone == "ICT")
    return 7 * 3600;
  if (zone.size() >= 5 && (zone[0] == '+' || zone[0] == '-')) {
    int h = 0, m = 0;
    std::string_view rest = zone.substr(1);
    if (rest.size() == 5 && rest[2] == ':' && Digits(rest, 0, 2, &h) && Digits(rest, 3, 2, &m)) {
    } else if (rest.size() == 4 && Digits(rest, 0, 2, &h) && Digits(rest, 2, 2, &m)) {
    } else {
      return std::nullopt;
    }
    if (h > 14 || m > 59) return std::nullopt;
    int off = h * 3600 + m * 60;
    return zone[0] == '-' ? -off : off;
  }
  return std::nullopt;
}

std::optional<int64_t> ParseDate(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !Digits(s, 0, 4, &y) || !Digits(s, 5, 2, &m) ||
      !Digits(s, 8, 2, &d))
    return std::nullopt;
  auto e = CivilToEpoch(y, m, d, 0, 0, 0);
  if (!e) return std::nullopt;
  return *e / 86400;
}

std::string FormatDate(int64_t days) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

UtcRange LocalDayRange(int64_t day, int offset_seconds) {
  int64_t start = day * 86400 - offset_seconds;
  return {start, start + 86400};
}

std::optional<int64_t> ParseTimestamp(std::string_view text, std::string_view format, int offset_seconds) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (format == "iso8601") {
    int y, mo, d, h, mi, s;
    if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != ' ') ||
        text[13] != ':' || text[16] != ':' || !Digits(text, 0, 4, &y) || !Digits(text, 5, 2, &mo) ||
        !Digits(text, 8, 2, &d) || !Digits(text, 11, 2, &h) || !Digits(text, 14, 2, &mi) ||
        !Digits(text, 17, 2, &s))
      return std::nullopt;
    size_t pos = 19;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    }
    int off = offset_seconds;
    if (pos < text.size()) {
      auto z = ZoneOffsetSeconds(text.substr(pos));
      if (!z) return std::nullopt;
      off = *z;
    }
    auto e = CivilToEpoch(y, mo, d, h, mi, s);
    if (!e) return std::nullopt;
    return *e - off;
  }
  int y = -1, mo = -1, d = -1, h = 0, mi = 0, s = 0;
  size_t ti = 0;
  for (size_t fi = 0; fi < format.size(); ++fi) {
    if (format[fi] == '%' && fi + 1 < format.size()) {
      char c = format[++fi];
      int* target = nullptr;
      size_t width = 2;
      switch (c) {
        case 'Y': target = &y; width = 4; break;
        case 'm': target = &mo; break;
        case 'd': target = &d; break;
        case 'H': target = &h; break;
        case 'M': target = &mi; break;
        case 'S': target = &s; break;
        case '%':
          if (ti >= text.size() || text[ti] != '%') return std::nullopt;
          ++ti;
          continue;
        default: return std::nullopt;
      }
      if (!Digits(text, ti, width, target)) return std::nullopt;
      ti += width;
    } else {
      if (ti >= text.size() || text[ti] != format[fi]) return std::nullopt;
      ++ti;
    }
  }
  if (ti != text.size() || y < 0 || mo < 0 || d < 0) return std::nullopt;
  auto e = CivilToEpoch(y, mo, d, h, mi, s);
  if (!e) return std::nullopt;
  return *e - offset_seconds;
}

std::string FormatTimestamp(int64_t epoch_seconds, int offset_seconds) {
  int64_t local = epoch_seconds + offset_seconds;
  int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int64_t rem = local - days * 86400;
  char buf[48];
  int off = offset_seconds < 0 ? -offset_seconds : offset_seconds;
  std::snprintf(buf, sizeof buf, "%s %02d:%02d:%02d%c%02d:%02d", FormatDate(days).c_str(),
                static_cast<int>(rem / 3600), static_cast<int>(rem % 3600 / 60), static_cast<int>(rem % 60),
                offset_seconds < 0 ? '-' : '+', off / 3600, off % 3600 / 60);
  return buf;
}

}  // namespace donagate::finance
