// SMPP 3.4 PDU codec: the wire format of every PDU a gateway exchanges, no I/O.
//
// Model. A Pdu is a Header plus a Body. The Body is a std::variant over the body LAYOUTS,
// not over commands: commands that share a layout share an alternative (submit_sm and
// deliver_sm are both ShortMessageBody; the three binds are BindBody; unbind,
// enquire_link, their responses and generic_nack are EmptyBody). header.command_id says
// which command it is; the aliases below (DeliverSm, SubmitSmResp, ...) let code read as
// the spec does: `std::get<DeliverSm>(pdu.body)`. MakePdu(id, seq) gives the right one.
//
// Bytes. Every byte buffer (C-octet strings, short_message, TLV values) is a std::string
// holding raw octets (no encoding implied; text codecs live in text_codec.h). Strings are
// stored WITHOUT their NUL terminator; the codec adds and checks it.
//
// Reading a stream (what a link does):
//   1. FrameCheck f = CheckFrame(buffered, limits);      // needs >= 4 bytes, no allocation
//      kInvalid    -> send *AnswerFor(f.error), close.   // command_length < 16 or > max
//      kNeedMore   -> read more (f.command_length tells how much once 4 bytes are in).
//      kReady      -> the first f.command_length bytes are one PDU.
//   2. DecodeResult r = Decode(buffered.substr(0, f.command_length), &pdu, limits);
//      r.ok()      -> handle pdu.
//      otherwise   -> if (auto a = AnswerFor(r)) send *a; if (r.close_connection) close.
// Decode never throws, never reads outside its argument, and checks every length before
// allocating. Decoding into the same Pdu again reuses its buffers, so a link that keeps
// one Pdu per connection decodes steady-state traffic without allocating.
//
// Writing: Encode(pdu, &out) appends the wire bytes (command_length computed, the
// header's value ignored) with a single growth of `out`.
//
// What each malformed input is answered with is tabled in docs/smpp-pdu.md.
#ifndef DONAGATE_PROTOCOL_PDU_H_
#define DONAGATE_PROTOCOL_PDU_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/command_status.h"

namespace donagate::smpp {

inline constexpr uint32_t kHeaderLength = 16;
inline constexpr uint32_t kDefaultMaxCommandLength = 64 * 1024;
inline constexpr uint8_t kInterfaceVersion34 = 0x34;
// short_message is at most 254 octets (§5.2.21); longer text goes in message_payload.
inline constexpr size_t kMaxShortMessageLength = 254;

// Maximum sizes of C-octet strings INCLUDING the NUL terminator, as the spec states them
// (§4). A field of max N holds at most N-1 characters.
namespace max_len {
inline constexpr size_t kSystemId = 16;
inline constexpr size_t kPassword = 9;
inline constexpr size_t kSystemType = 13;
inline constexpr size_t kAddressRange = 41;
inline constexpr size_t kServiceType = 6;
inline constexpr size_t kAddress = 21;        // source_addr / destination_addr (submit, deliver, query)
inline constexpr size_t kDataSmAddress = 65;  // data_sm source_addr / destination_addr
inline constexpr size_t kTime = 17;           // schedule_delivery_time, validity_period, final_date
inline constexpr size_t kMessageId = 65;
}  // namespace max_len

struct Header {
  // Filled by Decode. Encode computes the real value and ignores this one.
  uint32_t command_length = 0;
  CommandId command_id = CommandId::kGenericNack;
  uint32_t command_status = status::kOk;
  uint32_t sequence_number = 0;
  bool operator==(const Header&) const = default;
};

// Optional parameter tags with typed access below (§5.3.2), plus sc_interface_version.
namespace tlv_tag {
inline constexpr uint16_t kReceiptedMessageId = 0x001E;
inline constexpr uint16_t kUserMessageReference = 0x0204;
inline constexpr uint16_t kSourcePort = 0x020A;
inline constexpr uint16_t kDestinationPort = 0x020B;
inline constexpr uint16_t kSarMsgRefNum = 0x020C;
inline constexpr uint16_t kSarTotalSegments = 0x020E;
inline constexpr uint16_t kSarSegmentSeqnum = 0x020F;
inline constexpr uint16_t kScInterfaceVersion = 0x0210;
inline constexpr uint16_t kNetworkErrorCode = 0x0423;
inline constexpr uint16_t kMessagePayload = 0x0424;
inline constexpr uint16_t kMessageState = 0x0427;
}  // namespace tlv_tag

struct Tlv {
  uint16_t tag = 0;
  std::string value;  // raw octets; at most 65535
  bool operator==(const Tlv&) const = default;
};

// network_error_code TLV (§5.3.2.31): network type (1 = ANSI-136, 2 = IS-95, 3 = GSM, ...)
// and the network's own error code.
struct NetworkErrorCode {
  uint8_t network_type = 0;
  uint16_t error_code = 0;
  bool operator==(const NetworkErrorCode&) const = default;
};

// The optional parameters of one PDU, in wire order. Unknown tags are kept and re-encoded
// unchanged. Decode guarantees that the tags with a typed getter have their spec length
// (otherwise the PDU was refused with ESME_RINVPARLEN); a getter returns nullopt when the
// tag is absent or, after a generic Set() of the wrong size, malformed. With duplicated
// tags the first wins.
class TlvList {
 public:
  const std::string* Find(uint16_t tag) const;
  bool Has(uint16_t tag) const { return Find(tag) != nullptr; }
  // Replaces the value of the first `tag`, or appends it.
  void Set(uint16_t tag, std::string_view value);
  void Append(uint16_t tag, std::string_view value);
  // Removes every `tag`; returns whether there was one.
  bool Remove(uint16_t tag);

  const std::vector<Tlv>& entries() const { return entries_; }
  std::vector<Tlv>& mutable_entries() { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }

  std::optional<std::string_view> message_payload() const;
  void set_message_payload(std::string_view octets) { Set(tlv_tag::kMessagePayload, octets); }
  std::optional<uint16_t> sar_msg_ref_num() const { return GetU16(tlv_tag::kSarMsgRefNum); }
  void set_sar_msg_ref_num(uint16_t v) { SetU16(tlv_tag::kSarMsgRefNum, v); }
  std::optional<uint8_t> sar_total_segments() const { return GetU8(tlv_tag::kSarTotalSegments); }
  void set_sar_total_segments(uint8_t v) { SetU8(tlv_tag::kSarTotalSegments, v); }
  std::optional<uint8_t> sar_segment_seqnum() const { return GetU8(tlv_tag::kSarSegmentSeqnum); }
  void set_sar_segment_seqnum(uint8_t v) { SetU8(tlv_tag::kSarSegmentSeqnum, v); }
  // The id without its NUL. Peers that omit the terminator are accepted.
  std::optional<std::string_view> receipted_message_id() const;
  // Stored NUL-terminated, as the spec defines it. `id` must be <= 64 characters.
  void set_receipted_message_id(std::string_view id);
  std::optional<uint8_t> message_state() const { return GetU8(tlv_tag::kMessageState); }
  void set_message_state(uint8_t v) { SetU8(tlv_tag::kMessageState, v); }
  std::optional<NetworkErrorCode> network_error_code() const;
  void set_network_error_code(NetworkErrorCode v);
  std::optional<uint16_t> user_message_reference() const { return GetU16(tlv_tag::kUserMessageReference); }
  void set_user_message_reference(uint16_t v) { SetU16(tlv_tag::kUserMessageReference, v); }
  std::optional<uint16_t> source_port() const { return GetU16(tlv_tag::kSourcePort); }
  void set_source_port(uint16_t v) { SetU16(tlv_tag::kSourcePort, v); }
  std::optional<uint16_t> destination_port() const { return GetU16(tlv_tag::kDestinationPort); }
  void set_destination_port(uint16_t v) { SetU16(tlv_tag::kDestinationPort, v); }
  std::optional<uint8_t> sc_interface_version() const { return GetU8(tlv_tag::kScInterfaceVersion); }
  void set_sc_interface_version(uint8_t v) { SetU8(tlv_tag::kScInterfaceVersion, v); }

  bool operator==(const TlvList&) const = default;

 private:
  std::optional<uint8_t> GetU8(uint16_t tag) const;
  std::optional<uint16_t> GetU16(uint16_t tag) const;
  void SetU8(uint16_t tag, uint8_t v);
  void SetU16(uint16_t tag, uint16_t v);

  std::vector<Tlv> entries_;
};

// --- Body layouts ---------------------------------------------------------------------

// unbind, unbind_resp, enquire_link, enquire_link_resp, generic_nack: header only.
struct EmptyBody {
  bool operator==(const EmptyBody&) const = default;
};

// bind_transmitter, bind_receiver, bind_transceiver (§4.1).
struct BindBody {
  std::string system_id;      // max_len::kSystemId
  std::string password;       // max_len::kPassword
  std::string system_type;    // max_len::kSystemType
  uint8_t interface_version = kInterfaceVersion34;
  uint8_t addr_ton = 0;
  uint8_t addr_npi = 0;
  std::string address_range;  // max_len::kAddressRange
  bool operator==(const BindBody&) const = default;
};

// bind_*_resp. With a non-zero command_status the body is omitted on the wire (§4.1.2)
// and decodes as empty.
struct BindRespBody {
  std::string system_id;  // max_len::kSystemId
  TlvList tlvs;           // sc_interface_version
  bool operator==(const BindRespBody&) const = default;
};

// outbind (§4.1.7).
struct OutbindBody {
  std::string system_id;  // max_len::kSystemId
  std::string password;   // max_len::kPassword
  bool operator==(const OutbindBody&) const = default;
};

// submit_sm (§4.4.1) and deliver_sm (§4.6.1): the same layout. In deliver_sm the spec
// sets schedule_delivery_time, validity_period, replace_if_present_flag and
// sm_default_msg_id to NULL/0; the codec carries whatever the peer sent.
struct ShortMessageBody {
  std::string service_type;  // max_len::kServiceType
  uint8_t source_addr_ton = 0;
  uint8_t source_addr_npi = 0;
  std::string source_addr;  // max_len::kAddress
  uint8_t dest_addr_ton = 0;
  uint8_t dest_addr_npi = 0;
  std::string destination_addr;  // max_len::kAddress
  uint8_t esm_class = 0;
  uint8_t protocol_id = 0;
  uint8_t priority_flag = 0;
  std::string schedule_delivery_time;  // max_len::kTime
  std::string validity_period;         // max_len::kTime
  uint8_t registered_delivery = 0;
  uint8_t replace_if_present_flag = 0;
  uint8_t data_coding = 0;
  uint8_t sm_default_msg_id = 0;
  std::string short_message;  // sm_length = size(), at most kMaxShortMessageLength
  TlvList tlvs;
  bool operator==(const ShortMessageBody&) const = default;
};

// submit_sm_resp, deliver_sm_resp (message_id unused: empty), data_sm_resp. TLVs are
// accepted on all three (data_sm_resp defines some; SMPP 5.0 peers add them to the
// others). A submit_sm_resp with a non-zero command_status has no body on the wire
// (§4.4.2) and decodes as empty.
struct MessageIdRespBody {
  std::string message_id;  // max_len::kMessageId
  TlvList tlvs;
  bool operator==(const MessageIdRespBody&) const = default;
};

// data_sm (§4.7.1).
struct DataSmBody {
  std::string service_type;  // max_len::kServiceType
  uint8_t source_addr_ton = 0;
  uint8_t source_addr_npi = 0;
  std::string source_addr;  // max_len::kDataSmAddress
  uint8_t dest_addr_ton = 0;
  uint8_t dest_addr_npi = 0;
  std::string destination_addr;  // max_len::kDataSmAddress
  uint8_t esm_class = 0;
  uint8_t registered_delivery = 0;
  uint8_t data_coding = 0;
  TlvList tlvs;  // the text normally arrives in message_payload
  bool operator==(const DataSmBody&) const = default;
};

// query_sm (§4.8.1).
struct QuerySmBody {
  std::string message_id;  // max_len::kMessageId
  uint8_t source_addr_ton = 0;
  uint8_t source_addr_npi = 0;
  std::string source_addr;  // max_len::kAddress
  bool operator==(const QuerySmBody&) const = default;
};

// query_sm_resp (§4.8.2).
struct QuerySmRespBody {
  std::string message_id;  // max_len::kMessageId
  std::string final_date;  // max_len::kTime
  uint8_t message_state = 0;
  uint8_t error_code = 0;
  bool operator==(const QuerySmRespBody&) const = default;
};

using Body = std::variant<EmptyBody, BindBody, BindRespBody, OutbindBody, ShortMessageBody,
                          MessageIdRespBody, DataSmBody, QuerySmBody, QuerySmRespBody>;

// Spec names for the layouts, for readability at call sites.
using BindTransmitter = BindBody;
using BindReceiver = BindBody;
using BindTransceiver = BindBody;
using BindResp = BindRespBody;
using Outbind = OutbindBody;
using SubmitSm = ShortMessageBody;
using DeliverSm = ShortMessageBody;
using SubmitSmResp = MessageIdRespBody;
using DeliverSmResp = MessageIdRespBody;
using DataSm = DataSmBody;
using DataSmResp = MessageIdRespBody;
using QuerySm = QuerySmBody;
using QuerySmResp = QuerySmRespBody;

struct Pdu {
  Header header;
  Body body;
  bool operator==(const Pdu&) const = default;
};

// --- Command helpers ------------------------------------------------------------------

// Whether this codec has a body layout for `id` (the 23 PDUs listed in docs/smpp-pdu.md).
bool IsSupported(CommandId id);
// The response id of a request that has one (e.g. submit_sm -> submit_sm_resp); nullopt
// for responses, outbind, alert_notification and unknown ids.
std::optional<CommandId> ResponseIdFor(CommandId request);
// Whether `body` holds the layout `id` uses. Encode refuses a mismatch.
bool BodyMatches(CommandId id, const Body& body);
// A PDU of command `id` with a default body of the right layout.
Pdu MakePdu(CommandId id, uint32_t sequence_number, uint32_t command_status = status::kOk);
// The response to `request` carrying `command_status` (same sequence number, default
// body). For a request that has no response (outbind) or that is itself a response it
// returns a generic_nack instead.
Pdu MakeResponseFor(const Header& request, uint32_t command_status);
Pdu MakeGenericNack(uint32_t sequence_number, uint32_t command_status);

// One line for logs and tests, e.g. "deliver_sm seq 9 ESME_ROK src 1/1/84912345678
// dst 0/0/1407 esm 0x00 dc 0x00 sm 4 octets tlvs 020C,020E". Never prints a password
// (shown as "***") nor message content (only its length), so it is safe to log.
std::string Summarize(const Pdu& pdu);

// --- Decoding -------------------------------------------------------------------------

struct DecodeLimits {
  // Largest command_length accepted. PDUs are refused (and the connection closed) before
  // any buffer of that size is allocated.
  uint32_t max_command_length = kDefaultMaxCommandLength;
};

// What went wrong. The answer to send is in DecodeResult, not derived by callers.
enum class DecodeError : uint8_t {
  kNone = 0,
  kTruncatedHeader,         // fewer than 16 bytes (or 4 for CheckFrame) to read
  kCommandLengthTooSmall,   // command_length < 16
  kCommandLengthTooLarge,   // command_length > DecodeLimits::max_command_length
  kCommandLengthMismatch,   // the bytes given to Decode are not exactly command_length long
  kUnknownCommandId,        // an id this codec has no layout for (see IsSupported)
  kBodyTruncated,           // a mandatory field runs past command_length
  kStringNotTerminated,     // a C-octet string reaches the end of the body without its NUL
  kStringTooLong,           // a C-octet string exceeds its spec maximum
  kSmLengthTooLong,         // sm_length > 254
  kSmLengthBeyondBody,      // sm_length runs past command_length
  kTlvTruncated,            // a TLV header or value runs past command_length
  kTlvBadLength,            // a typed TLV (e.g. sar_msg_ref_num) with the wrong length
  kTrailingBytes,           // bytes after the last field of a body that has no TLVs
};
std::string_view DecodeErrorName(DecodeError error);

// How the receiver answers a malformed PDU.
enum class Answer : uint8_t {
  kNone,          // decoded fine, or a malformed RESPONSE (responses are never answered;
                  // the link fails the pending request with that sequence number)
  kGenericNack,   // header-level problem: generic_nack
  kResponse,      // body-level problem in a request: the command's own _resp
};

struct DecodeResult {
  DecodeError error = DecodeError::kNone;
  Answer answer = Answer::kNone;
  uint32_t status = status::kOk;  // command_status to answer with
  // Framing is lost (command_length unusable): after answering, close the connection.
  bool close_connection = false;
  // The header as far as it could be read: command_id when >= 8 bytes were given,
  // sequence_number when >= 16 (sequence_known).
  Header header;
  bool sequence_known = false;
  // The field at fault, for logs ("source_addr", "tlv", "command_length"); static storage.
  std::string_view field;

  bool ok() const { return error == DecodeError::kNone; }
};

// One line for logs: "submit_sm seq 5: C-octet string too long (source_addr); answer
// submit_sm_resp ESME_RINVSRCADR (0x0000000A)".
std::string Describe(const DecodeResult& result);

// Decodes exactly one PDU; `wire` must be the whole PDU (see CheckFrame). On success *out
// holds it; on error *out is unspecified (but valid) and the result says what to answer.
DecodeResult Decode(std::string_view wire, Pdu* out, const DecodeLimits& limits = {});

// The PDU to send for a failed decode (generic_nack or the command's _resp with
// result.status), or nullopt when nothing should be sent (success, malformed response).
// A generic_nack whose sequence number could not be read carries 0.
std::optional<Pdu> AnswerFor(const DecodeResult& result);

enum class FrameState : uint8_t {
  kNeedMore,  // read more bytes; command_length is set once 4 bytes are buffered
  kReady,     // the first command_length bytes are one PDU
  kInvalid,   // command_length out of range: answer with AnswerFor(error) and close
};
struct FrameCheck {
  FrameState state = FrameState::kNeedMore;
  uint32_t command_length = 0;  // 0 until 4 bytes are buffered
  DecodeResult error;           // set when kInvalid
};
// Looks only at the first 4 (and, for the answer's sequence number, 16) bytes of
// `buffered`. Never allocates. Pass at least 16 bytes when you have them so that the
// generic_nack can carry the offender's sequence number.
FrameCheck CheckFrame(std::string_view buffered, const DecodeLimits& limits = {});

// --- Encoding -------------------------------------------------------------------------

enum class EncodeError : uint8_t {
  kNone = 0,
  kBodyMismatch,         // body alternative is not the layout of header.command_id
  kUnsupportedCommand,   // no layout for header.command_id
  kStringTooLong,        // a C-octet string longer than its maximum - 1
  kStringHasNul,         // a C-octet string containing a NUL octet
  kShortMessageTooLong,  // short_message longer than 254 octets
  kTlvTooLong,           // a TLV value longer than 65535 octets
  kPduTooLong,           // total length does not fit command_length (2^32 - 1)
};
std::string_view EncodeErrorName(EncodeError error);

// Appends the wire form of `pdu` to *out. On error *out is left as it was.
EncodeError Encode(const Pdu& pdu, std::string* out);

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_PDU_H_
