// Money: VND has no minor unit, so amounts are int64 đồng. Arithmetic that can overflow is
// checked and returns nullopt instead of wrapping; a wrong amount is worse than no amount.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace donagate::billing {

// units × price, or nullopt on int64 overflow.
std::optional<int64_t> CheckedMultiply(int64_t units, int64_t price);
// a + b, or nullopt on int64 overflow.
std::optional<int64_t> CheckedAdd(int64_t a, int64_t b);

// Vietnamese display form with dot thousands separators: 100000 → "100.000",
// -1234567 → "-1.234.567", 0 → "0". Every int64 value (INT64_MIN included) is formatted.
// (CSV and the database carry raw integers; this is for replies and people.)
std::string FormatVnd(int64_t amount);

}  // namespace donagate::billing
