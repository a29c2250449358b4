// libFuzzer target for the "CV n" parser (billing/donation_parser.h) and MSISDN
// normalisation (billing/msisdn.h): arbitrary bytes (not only valid UTF-8, since a broken
// decoder upstream could pass anything) must never crash, and an accepted donation always has
// 1 <= units <= max_units. A text that parses must still parse with surrounding spaces
// (whitespace is tolerated by the grammar), with the same units.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "billing/domain/donation_parser.h"
#include "billing/domain/msisdn.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int32_t max_units = 1 + data[0] % 200;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::string_view keyword : {"CV", "UNGHO"}) {
    auto p = donagate::billing::ParseDonation(text, keyword, max_units);
    if (p.ok()) {
      Check(p.units >= 1 && p.units <= max_units);
      auto padded = donagate::billing::ParseDonation(" " + std::string(text) + " ", keyword, max_units);
      Check(padded.ok() && padded.units == p.units);
    }
    Check(!donagate::billing::ToString(p.status).empty());
  }
  (void)donagate::billing::NormalizeMsisdn(text);
  return 0;
}
