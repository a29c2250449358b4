#include "billing/domain/msisdn.h"

#include <algorithm>

namespace donagate::billing {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

std::string_view ToString(MsisdnStatus status) {
  switch (status) {
    case MsisdnStatus::kOk: return "ok";
    case MsisdnStatus::kEmpty: return "empty";
    case MsisdnStatus::kInvalidCharacter: return "invalid_character";
    case MsisdnStatus::kNotVietnamese: return "not_vietnamese";
    case MsisdnStatus::kWrongLength: return "wrong_length";
    case MsisdnStatus::kNotMobile: return "not_mobile";
  }
  return "unknown";
}

NormalizedMsisdn NormalizeMsisdn(std::string_view raw) {
  NormalizedMsisdn out;
  while (!raw.empty() && IsSpace(raw.front())) raw.remove_prefix(1);
  while (!raw.empty() && IsSpace(raw.back())) raw.remove_suffix(1);
  if (raw.empty()) {
    out.status = MsisdnStatus::kEmpty;
    return out;
  }
  std::string_view digits = raw;
  const bool plus = digits.front() == '+';
  if (plus) digits.remove_prefix(1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    out.status = MsisdnStatus::kInvalidCharacter;
    return out;
  }
  std::string_view national;
  if (digits.substr(0, 2) == "84") {
    national = digits.substr(2);
  } else if (!plus && digits.substr(0, 4) == "0084") {
    national = digits.substr(4);
  } else if (!plus && digits.front() == '0') {
    national = digits.substr(1);
  } else {
    out.status = MsisdnStatus::kNotVietnamese;
    return out;
  }
  if (national.size() != 9) {
    out.status = MsisdnStatus::kWrongLength;
    return out;
  }
  switch (national.front()) {
    case '3': case '5': case '7': case '8': case '9': break;
    default:
      out.status = MsisdnStatus::kNotMobile;
      return out;
  }
  out.status = MsisdnStatus::kOk;
  out.msisdn.reserve(11);
  out.msisdn.append("84").append(national);
  return out;
}

std::string MaskMsisdn(std::string_view msisdn) {
  if (msisdn.empty()) return {};
  size_t keep = msisdn.size() >= 10 ? 6 : msisdn.size() / 2;
  std::string out(msisdn.substr(0, keep));
  out += "****";
  return out;
}

}  // namespace donagate::billing
