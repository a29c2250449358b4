#include "config/config.h"

#include <algorithm>
#include <cctype>

namespace donagate::config {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const Campaign* FindCampaign(const Config& config, std::string_view shortcode, std::string_view keyword) {
  for (const Campaign& c : config.campaigns) {
    if (c.shortcode == shortcode && EqualsIgnoreCase(c.keyword, keyword)) return &c;
  }
  return nullptr;
}

const ChargingBackendConfig* FindCharging(const Config& config, std::string_view operator_name) {
  for (const ChargingBackendConfig& b : config.charging) {
    if (b.operator_name == operator_name) return &b;
  }
  return nullptr;
}

const SmscLink* FindLink(const Config& config, std::string_view name) {
  for (const SmscLink& l : config.links) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

std::string_view ToString(LinkMode v) { return v == LinkMode::kClient ? "client" : "server"; }
std::string_view ToString(BindType v) {
  return v == BindType::kTransceiver ? "transceiver" : "receiver_transmitter";
}
std::string_view ToString(ReplyLongMode v) { return v == ReplyLongMode::kUdh ? "udh" : "message_payload"; }
std::string_view ToString(MessageIdNormalization v) {
  switch (v) {
    case MessageIdNormalization::kExact: return "exact";
    case MessageIdNormalization::kTrimLeadingZeros: return "trim_leading_zeros";
    case MessageIdNormalization::kResponseHexReceiptDecimal: return "resp_hex_dlr_decimal";
    case MessageIdNormalization::kResponseDecimalReceiptHex: return "resp_decimal_dlr_hex";
  }
  return "?";
}
std::string_view ToString(ChargingMode v) { return v == ChargingMode::kWhole ? "whole" : "per_unit"; }
std::string_view ToString(ChargingBackendKind v) {
  switch (v) {
    case ChargingBackendKind::kHttp: return "http";
    case ChargingBackendKind::kOperatorBilled: return "operator_billed";
    case ChargingBackendKind::kInProcess: return "in_process";
    case ChargingBackendKind::kDiameter: return "diameter";
    case ChargingBackendKind::kCarrierBilling: return "carrier_billing";
  }
  return "?";
}
std::string_view ToString(TempErrorStatus v) {
  return v == TempErrorStatus::kAppn ? "ESME_RX_T_APPN" : "ESME_RTHROTTLED";
}
std::string_view ToString(ConcatOnTimeout v) {
  return v == ConcatOnTimeout::kRecordRejected ? "record_rejected" : "process_available";
}
std::string_view ToString(LogLevel v) {
  switch (v) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kCritical: return "critical";
    case LogLevel::kOff: return "off";
  }
  return "?";
}
std::string_view ToString(LogFormat v) { return v == LogFormat::kKeyValue ? "keyvalue" : "json"; }
std::string_view ToString(ReplyEncoding v) { return v == ReplyEncoding::kUcs2 ? "ucs2" : "gsm7_ascii"; }

}  // namespace donagate::config
