// A small Diameter (RFC 6733) message codec: the header, AVPs (flat and grouped) and the handful
// of base and credit-control (RFC 4006) codes the Ro backend speaks. It knows no dictionary:
// callers say which AVP is Unsigned32, grouped, ... by the accessor they use.
//
// Contract:
//  - Encode() produces a wire-ready message (length fields filled, AVPs padded to 4 bytes).
//  - Decode() accepts exactly one message; malformed input (bad version, length that does not
//    match, an AVP running past its parent) is refused with a reason, never read past the end.
//  - The codec is pure (no I/O, no globals) and is tested against node-diameter through
//    tools/ocs_sim and on fixed byte strings in tests/billing/charging/diameter_codec_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace donagate::billing::diameter {

// Header flags.
inline constexpr uint8_t kFlagRequest = 0x80;
inline constexpr uint8_t kFlagProxiable = 0x40;
inline constexpr uint8_t kFlagError = 0x20;
inline constexpr uint8_t kFlagRetransmit = 0x10;  // "T": possibly a retransmission (RFC 6733 §3)

// AVP flags.
inline constexpr uint8_t kAvpVendor = 0x80;
inline constexpr uint8_t kAvpMandatory = 0x40;

// Command codes.
inline constexpr uint32_t kCmdCapabilitiesExchange = 257;
inline constexpr uint32_t kCmdDeviceWatchdog = 280;
inline constexpr uint32_t kCmdDisconnectPeer = 282;
inline constexpr uint32_t kCmdCreditControl = 272;

// Application ids.
inline constexpr uint32_t kAppCommon = 0;
inline constexpr uint32_t kAppCreditControl = 4;

// AVP codes (base protocol, RFC 6733).
inline constexpr uint32_t kAvpHostIpAddress = 257;
inline constexpr uint32_t kAvpAuthApplicationId = 258;
inline constexpr uint32_t kAvpSessionId = 263;
inline constexpr uint32_t kAvpOriginHost = 264;
inline constexpr uint32_t kAvpSupportedVendorId = 265;
inline constexpr uint32_t kAvpVendorId = 266;
inline constexpr uint32_t kAvpFirmwareRevision = 267;
inline constexpr uint32_t kAvpResultCode = 268;
inline constexpr uint32_t kAvpProductName = 269;
inline constexpr uint32_t kAvpDisconnectCause = 273;
inline constexpr uint32_t kAvpOriginStateId = 278;
inline constexpr uint32_t kAvpErrorMessage = 281;
inline constexpr uint32_t kAvpDestinationRealm = 283;
inline constexpr uint32_t kAvpDestinationHost = 293;
inline constexpr uint32_t kAvpOriginRealm = 296;
inline constexpr uint32_t kAvpExperimentalResult = 297;
inline constexpr uint32_t kAvpExperimentalResultCode = 298;
inline constexpr uint32_t kAvpEventTimestamp = 55;
inline constexpr uint32_t kAvpUserName = 1;
// Credit control (RFC 4006).
inline constexpr uint32_t kAvpCcCorrelationId = 411;
inline constexpr uint32_t kAvpCcMoney = 413;
inline constexpr uint32_t kAvpCcRequestNumber = 415;
inline constexpr uint32_t kAvpCcRequestType = 416;
inline constexpr uint32_t kAvpCurrencyCode = 425;
inline constexpr uint32_t kAvpCreditControlFailureHandling = 427;
inline constexpr uint32_t kAvpDirectDebitingFailureHandling = 428;
inline constexpr uint32_t kAvpExponent = 429;
inline constexpr uint32_t kAvpRatingGroup = 432;
inline constexpr uint32_t kAvpRequestedAction = 436;
inline constexpr uint32_t kAvpRequestedServiceUnit = 437;
inline constexpr uint32_t kAvpServiceIdentifier = 439;
inline constexpr uint32_t kAvpSubscriptionId = 443;
inline constexpr uint32_t kAvpSubscriptionIdData = 444;
inline constexpr uint32_t kAvpUnitValue = 445;
inline constexpr uint32_t kAvpValueDigits = 447;
inline constexpr uint32_t kAvpSubscriptionIdType = 450;
inline constexpr uint32_t kAvpServiceContextId = 461;

// Enumerated values.
inline constexpr uint32_t kCcRequestTypeEvent = 4;         // EVENT_REQUEST
inline constexpr uint32_t kRequestedActionDirectDebiting = 0;
inline constexpr uint32_t kRequestedActionRefundAccount = 1;
inline constexpr uint32_t kSubscriptionIdTypeE164 = 0;     // END_USER_E164
inline constexpr uint32_t kCurrencyCodeVnd = 704;          // ISO 4217 numeric
inline constexpr uint32_t kDisconnectCauseRebooting = 0;

// Result codes.
inline constexpr uint32_t kResultSuccess = 2001;
inline constexpr uint32_t kResultUnableToDeliver = 3002;
inline constexpr uint32_t kResultTooBusy = 3004;
inline constexpr uint32_t kResultEndUserServiceDenied = 4010;
inline constexpr uint32_t kResultCreditLimitReached = 4012;
inline constexpr uint32_t kResultUserUnknown = 5030;

struct Avp {
  uint32_t code = 0;
  uint8_t flags = kAvpMandatory;
  uint32_t vendor_id = 0;  // used when flags has kAvpVendor
  std::string data;        // raw payload (for grouped AVPs: the encoded children)

  static Avp OctetString(uint32_t code, std::string_view value, uint32_t vendor = 0);
  static Avp Unsigned32(uint32_t code, uint32_t value, uint32_t vendor = 0);
  static Avp Integer32(uint32_t code, int32_t value);
  static Avp Integer64(uint32_t code, int64_t value);
  static Avp Unsigned64(uint32_t code, uint64_t value);
  static Avp Address(uint32_t code, const std::string& ipv4);  // dotted quad
  static Avp Grouped(uint32_t code, const std::vector<Avp>& children);

  std::optional<uint32_t> AsUnsigned32() const;
  std::optional<int64_t> AsInteger64() const;
  std::optional<int32_t> AsInteger32() const;
  // Children of a grouped AVP; nullopt when the payload is not a valid AVP sequence.
  std::optional<std::vector<Avp>> Children() const;
};

struct Message {
  uint8_t flags = 0;
  uint32_t command = 0;
  uint32_t application = 0;
  uint32_t hop_by_hop = 0;
  uint32_t end_to_end = 0;
  std::vector<Avp> avps;

  bool is_request() const { return (flags & kFlagRequest) != 0; }
  // First top-level AVP with `code` (vendor 0 unless given), or nullptr.
  const Avp* Find(uint32_t code, uint32_t vendor = 0) const;
  std::string FindString(uint32_t code) const;  // empty when absent
  std::optional<uint32_t> FindUnsigned32(uint32_t code) const;
  // Result-Code, or Experimental-Result/Experimental-Result-Code when only that is present.
  std::optional<uint32_t> ResultCode() const;
};

std::string Encode(const Message& message);

// Length of the message that starts at `header` (its first 4 bytes), or 0 if not a Diameter v1
// header. Used by the stream reader to know how much to read.
uint32_t MessageLength(std::string_view header);

// Parses one whole message; nullopt and *error when malformed.
std::optional<Message> Decode(std::string_view bytes, std::string* error);

// Builds an answer skeleton for `request` (same command, application, ids; R cleared).
Message AnswerTo(const Message& request);

}  // namespace donagate::billing::diameter
