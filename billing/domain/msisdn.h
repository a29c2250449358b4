// Subscriber numbers (MSISDN). Stored as E.164 digits without "+": 84 followed by the 9-digit
// Vietnamese mobile number (84xxxxxxxxx, 11 digits).
//
// Accepted input forms (surrounding ASCII whitespace ignored, nothing else):
//   84xxxxxxxxx, +84xxxxxxxxx, 0084xxxxxxxxx, 0xxxxxxxxx
// where xxxxxxxxx is exactly 9 digits whose first digit is a mobile range (3, 5, 7, 8 or 9, the
// plan in force since the 2018 renumbering). "00" is the international prefix dialled from
// Vietnam, so 0084… is as unambiguous as +84…. Anything else — other countries, landlines, the
// retired 11-digit 01xx numbers, spaces or dashes inside — is rejected; the caller records the
// MO and charges nothing.
#pragma once

#include <string>
#include <string_view>

namespace donagate::billing {

enum class MsisdnStatus {
  kOk,
  kEmpty,
  kInvalidCharacter,  // something other than digits (and one leading '+')
  kNotVietnamese,     // no 84 / +84 / 0 prefix
  kWrongLength,       // not 9 digits after the prefix
  kNotMobile,         // 9 digits, but not a mobile range
};

std::string_view ToString(MsisdnStatus status);  // "ok", "empty", "invalid_character", ...

struct NormalizedMsisdn {
  MsisdnStatus status = MsisdnStatus::kEmpty;
  std::string msisdn;  // 84xxxxxxxxx when status == kOk, else empty
  bool ok() const { return status == MsisdnStatus::kOk; }
};

NormalizedMsisdn NormalizeMsisdn(std::string_view raw);

// For logs: an input of 10 or more characters keeps its first 6 and the rest becomes "****"
// ("84912345678" → "849123****"); a shorter (invalid) input keeps only its first half. The
// mask is always four stars, so the number's length is not revealed either.
std::string MaskMsisdn(std::string_view msisdn);

}  // namespace donagate::billing
