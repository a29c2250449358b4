#include "billing/domain/charge_key.h"

namespace donagate::billing {

bool IsValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyLength) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string WholeChargeKey(int64_t donation_id) { return "don-" + std::to_string(donation_id); }

std::string UnitChargeKey(int64_t donation_id, int32_t unit) {
  return "don-" + std::to_string(donation_id) + "-" + std::to_string(unit);
}
}  // namespace donagate::billing
