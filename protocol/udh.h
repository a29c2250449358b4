// User Data Header (3GPP 23.040 §9.2.3.24) and SAR TLVs (SMPP 3.4 §5.3.2.22-24): the
// concatenation information of one part of a long message.
#ifndef DONAGATE_PROTOCOL_UDH_H_
#define DONAGATE_PROTOCOL_UDH_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace donagate::smpp {

struct ConcatInfo {
  uint16_t ref = 0;    // concatenated message reference
  uint8_t total = 0;   // number of parts, 1..255
  uint8_t seq = 0;     // this part, 1..total
  bool ref16 = false;  // reference came from a 16-bit field (IEI 0x08 or sar_msg_ref_num)

  friend bool operator==(const ConcatInfo&, const ConcatInfo&) = default;
};

// A concatenation with total 0, seq 0 or seq > total is meaningless (23.040 says such an IE is
// to be ignored); callers treat the part as malformed rather than guess.
bool IsValidConcat(const ConcatInfo& info);

enum class UdhStatus : uint8_t {
  kOk,
  kEmpty,               // esm_class said UDHI but short_message is empty
  kTruncated,           // UDHL or an element length runs past the end of short_message
  kBadElementLength,    // IEI 0x00 not 3 octets long, or IEI 0x08 not 4
  kInvalidConcat,       // concatenation IE with total 0, seq 0 or seq > total
};

struct UdhParse {
  UdhStatus status = UdhStatus::kOk;
  std::optional<ConcatInfo> concat;  // set only when status == kOk and a concat IE was present
  std::size_t header_length = 0;     // octets including the UDHL octet; 0 unless kOk / kInvalidConcat
  std::string_view user_data;        // points into short_message: after the header (whole input on kEmpty/kTruncated/
                                     // kBadElementLength, so the raw bytes can still be recorded)
};

// Parses the UDH at the start of `short_message` (call only when esm_class & 0x40). Understands
// IEI 0x00 (8-bit reference) and 0x08 (16-bit reference); other IEIs are skipped. If a
// concatenation IE occurs more than once the last one counts (23.040: last occurrence wins).
// On kInvalidConcat, header_length and user_data still describe a well-formed header.
UdhParse ParseUdh(std::string_view short_message);

// The SAR TLVs sar_msg_ref_num (2 octets), sar_total_segments and sar_segment_seqnum (1 octet
// each), as found in a deliver_sm / data_sm. nullopt when the combination is invalid.
std::optional<ConcatInfo> ConcatFromSar(uint16_t sar_msg_ref_num, uint8_t sar_total_segments,
                                        uint8_t sar_segment_seqnum);

// Builds the concatenation UDH (UDHL included): IEI 0x00 when !ref16 (ref must fit 8 bits;
// higher bits are dropped), else IEI 0x08.
std::string BuildConcatUdh(const ConcatInfo& info);

const char* ToString(UdhStatus status);

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_UDH_H_
