// SMSC message id normalisation. The SMSC returns an id in submit_sm_resp and repeats it in
// the delivery receipt, but not always in the same notation: hex in one and decimal in the
// other, with or without leading zeros, upper or lower case. Both sides are brought to one
// canonical string per link (operator) setting, so that a receipt finds its message with a plain
// equality lookup, whichever bind it arrives on and whether or not the submit_sm_resp was
// processed first. Numbers of any length are handled (no uint64 overflow): ids are converted as
// digit strings.
#ifndef DONAGATE_PROTOCOL_MESSAGE_ID_H_
#define DONAGATE_PROTOCOL_MESSAGE_ID_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace donagate::smpp {

// Mirrors config::MessageIdNormalization (names are the TOML values).
enum class MessageIdMode : uint8_t {
  kExact,                      // "exact": byte for byte (after trimming blanks and NULs)
  kTrimLeadingZeros,           // "trim_leading_zeros": leading zeros dropped, ASCII case folded
  kResponseHexReceiptDecimal,  // "resp_hex_dlr_decimal": submit_sm_resp id is hex, receipt decimal
  kResponseDecimalReceiptHex,  // "resp_decimal_dlr_hex": submit_sm_resp id is decimal, receipt hex
};

// Where the id was read. The receipted_message_id TLV is, per SMPP 3.4 §5.3.2.12, the id the
// SMSC allocated, i.e. the submit_sm_resp one: it is normalised in the response's notation.
enum class MessageIdSource : uint8_t { kSubmitResponse, kReceiptText, kReceiptTlv };

enum class MessageIdStatus : uint8_t {
  kOk,
  kEmpty,       // nothing left after trimming; canonical is ""
  kNotNumeric,  // a numeric mode got a non-hex/non-decimal id: canonical falls back to the
                // trim_leading_zeros form, which can never equal a numeric canonical form
  kTooLong,     // longer than kMaxMessageIdLength: canonical is the trimmed id, unconverted
};

inline constexpr std::size_t kMaxMessageIdLength = 128;  // SMPP allows 64 (65 with the NUL)

struct NormalizedMessageId {
  MessageIdStatus status = MessageIdStatus::kOk;
  std::string canonical;  // store and look up this
};

// Canonical forms: exact -> the trimmed id; trim_leading_zeros -> lower case without leading
// zeros ("0" for all zeros); the two numeric modes -> the decimal value without leading zeros.
NormalizedMessageId NormalizeMessageId(std::string_view id, MessageIdSource source, MessageIdMode mode);

// Arbitrary-length conversions of unsigned numbers; nullopt on an empty input or a bad digit.
// Results have no leading zeros ("0" for zero); hex output is lower case.
std::optional<std::string> HexToDecimal(std::string_view hex);
std::optional<std::string> DecimalToHex(std::string_view decimal);

std::optional<MessageIdMode> ParseMessageIdMode(std::string_view name);
const char* ToString(MessageIdMode mode);

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_MESSAGE_ID_H_
