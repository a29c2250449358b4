// Delivery receipts (SMPP 3.4 Appendix B and §5.3.2.12/.35/.31 TLVs). A deliver_sm / data_sm is
// a receipt when its esm_class says so (IsDeliveryReceiptEsmClass below); this parser is only
// called for those, never used to guess from the text.
#ifndef DONAGATE_PROTOCOL_DELIVERY_RECEIPT_H_
#define DONAGATE_PROTOCOL_DELIVERY_RECEIPT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace donagate::smpp {

// True when esm_class marks a deliver_sm / data_sm as an SMSC delivery receipt (message type
// bits 5..2 = 0001, 0x04) or an intermediate delivery notification (1000, 0x20), which uses the
// same format. SME acknowledgements (0x08, 0x10) and ordinary MOs are not receipts.
constexpr bool IsDeliveryReceiptEsmClass(uint8_t esm_class) {
  uint8_t message_type = esm_class & 0x3C;
  return message_type == 0x04 || message_type == 0x20;
}

// message_state values (§5.2.28); kSkipped is SMPP 5.0's 9. kUnrecognised: a stat text we do
// not know (kept in stat_raw).
enum class MessageState : uint8_t {
  kUnrecognised = 0,
  kEnroute = 1,
  kDelivered = 2,
  kExpired = 3,
  kDeleted = 4,
  kUndeliverable = 5,
  kAccepted = 6,
  kUnknown = 7,
  kRejected = 8,
  kSkipped = 9,
};

// Final states end the message's life at the SMSC (§2.8): DELIVERED, EXPIRED, DELETED,
// UNDELIVERABLE, ACCEPTED, REJECTED, SKIPPED. ENROUTE, UNKNOWN and unrecognised are not.
bool IsFinal(MessageState state);
const char* ToString(MessageState state);  // "DELIVRD", "UNDELIV", ... the Appendix B spelling

// Recognises the Appendix B stat spellings (DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD,
// UNKNOWN, REJECTD, ENROUTE, SKIPPED), the long forms (DELIVERED, UNDELIVERABLE, ACCEPTED,
// REJECTED) and FAILED (= UNDELIVERABLE), case-insensitively.
MessageState ParseStat(std::string_view stat);

// A YYMMDDhhmm[ss] (or YYYYMMDDhhmm[ss]) timestamp as written by the SMSC, in its local time.
struct ReceiptTime {
  int year = 0;  // four digits; YY is 20YY
  int month = 0, day = 0, hour = 0, minute = 0, second = 0;
  friend bool operator==(const ReceiptTime&, const ReceiptTime&) = default;
};

// network_error_code TLV (§5.3.2.31): network type (1 ANSI-136, 2 IS-95, 3 GSM, ...) + code.
// (Same content as pdu.h NetworkErrorCode; kept separate so this parser takes plain values.)
struct ReceiptNetworkError {
  uint8_t network_type = 0;
  uint16_t error_code = 0;
  friend bool operator==(const ReceiptNetworkError&, const ReceiptNetworkError&) = default;
};

// The optional TLVs of the receipt PDU, as raw values (empty optional = TLV absent).
struct ReceiptTlvs {
  std::optional<std::string_view> receipted_message_id;  // C-octet string; a trailing NUL is ignored
  std::optional<uint8_t> message_state;
  std::optional<std::string_view> network_error_code;    // must be exactly 3 octets
};

struct DeliveryReceipt {
  std::string message_id;            // SMSC id as given (TLV if present, else text); normalise
                                     // with message_id.h (MessageIdSource::kReceiptTlv when
                                     // id_from_tlv, else kReceiptText) before looking it up
  std::string text_message_id;       // the id: field even when the TLV won ("" if absent)
  MessageState state = MessageState::kUnrecognised;
  std::string stat_raw;              // stat: field as written ("" if absent)
  bool final = false;                // IsFinal(state)
  std::optional<int> submitted;      // sub:
  std::optional<int> delivered;      // dlvrd:
  std::optional<ReceiptTime> submit_date;
  std::optional<ReceiptTime> done_date;
  std::string err_raw;               // err: field as written
  std::optional<uint32_t> err;       // err: when numeric
  std::optional<ReceiptNetworkError> network_error;  // from the TLV
  std::string text;                  // text: field (the start of the original message)
  bool id_from_tlv = false;
  bool state_from_tlv = false;
};

enum class ReceiptStatus : uint8_t {
  kOk,
  kNoMessageId,  // neither receipted_message_id nor an id: field
  kNoState,      // neither message_state nor a recognisable stat: field
};

struct ReceiptParse {
  ReceiptStatus status = ReceiptStatus::kOk;
  DeliveryReceipt receipt;  // filled as far as possible even when status != kOk
  bool ok() const { return status == ReceiptStatus::kOk; }
};

// Parses the receipt text (short_message or message_payload, as bytes) and merges the TLVs,
// which take precedence when present and valid (a message_state outside 1..9 or a
// network_error_code not 3 octets long is ignored). Keys are matched case-insensitively at
// word starts, in any order, with any amount of blanks around ':' ("submit date", "submit_date"
// and "submitdate" all work); unknown keys are skipped; `text:` takes the rest of the input.
// A date that is not 10, 12 or 14 digits of a valid timestamp is left empty. Never throws,
// never reads outside `text`.
ReceiptParse ParseDeliveryReceipt(std::string_view text, const ReceiptTlvs& tlvs = {});

const char* ToString(ReceiptStatus status);

// The Appendix B text an SMSC sends for one single-part message, as the simulators send it:
// "id:<id> sub:001 dlvrd:<001 when stat is DELIVRD, else 000> submit date:<date10>
// done date:<date10> stat:<stat> err:000 text:" (date10 = YYMMDDhhmm, UTC).
// ParseDeliveryReceipt reads it back.
std::string FormatReceiptText(std::string_view message_id, std::string_view stat,
                              std::string_view date10);
// Now as YYMMDDhhmm (UTC), for FormatReceiptText.
std::string ReceiptDate10Now();

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_DELIVERY_RECEIPT_H_
