// Idempotency keys: the name of ONE charge at an operator, stable across retries, restarts
// and instances (a retry reuses the key; the backend debits a key at most once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace donagate::billing {

// Keys: 1..30 printable ASCII characters (0x21..0x7e; no spaces), the Parlay X referenceCode
// limit. Ours are "don-<donation_id>" (whole) and "don-<donation_id>-<unit>" (per_unit, 1-based).
inline constexpr size_t kMaxIdempotencyKeyLength = 30;
bool IsValidIdempotencyKey(std::string_view key);
std::string WholeChargeKey(int64_t donation_id);
std::string UnitChargeKey(int64_t donation_id, int32_t unit);

}  // namespace donagate::billing
