#include "billing/domain/money.h"

namespace donagate::billing {

std::optional<int64_t> CheckedMultiply(int64_t units, int64_t price) {
  int64_t out;
  if (__builtin_mul_overflow(units, price, &out)) return std::nullopt;
  return out;
}

std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::string FormatVnd(int64_t amount) {
  // Work on the magnitude as unsigned so INT64_MIN has a representable absolute value.
  const bool negative = amount < 0;
  uint64_t magnitude = negative ? uint64_t{0} - static_cast<uint64_t>(amount) : static_cast<uint64_t>(amount);
  char buf[32];
  char* end = buf + sizeof buf;
  char* p = end;
  int digits = 0;
  do {
    if (digits > 0 && digits % 3 == 0) *--p = '.';
    *--p = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
    ++digits;
  } while (magnitude != 0);
  if (negative) *--p = '-';
  return std::string(p, end);
}

}  // namespace donagate::billing
