#include "protocol/udh.h"

namespace donagate::smpp {
namespace {

constexpr uint8_t kIeiConcat8 = 0x00;
constexpr uint8_t kIeiConcat16 = 0x08;

uint8_t Octet(std::string_view s, std::size_t i) { return static_cast<uint8_t>(s[i]); }

}  // namespace

bool IsValidConcat(const ConcatInfo& info) {
  return info.total != 0 && info.seq != 0 && info.seq <= info.total;
}

UdhParse ParseUdh(std::string_view short_message) {
  UdhParse parse;
  parse.user_data = short_message;
  if (short_message.empty()) {
    parse.status = UdhStatus::kEmpty;
    return parse;
  }
  std::size_t header_length = std::size_t{Octet(short_message, 0)} + 1;
  if (header_length > short_message.size()) {
    parse.status = UdhStatus::kTruncated;
    return parse;
  }
  std::optional<ConcatInfo> concat;
  for (std::size_t pos = 1; pos < header_length;) {
    if (pos + 2 > header_length) {  // an IEI without its length octet
      parse.status = UdhStatus::kTruncated;
      return parse;
    }
    uint8_t iei = Octet(short_message, pos);
    std::size_t length = Octet(short_message, pos + 1);
    std::size_t data = pos + 2;
    if (data + length > header_length) {
      parse.status = UdhStatus::kTruncated;
      return parse;
    }
    if (iei == kIeiConcat8 || iei == kIeiConcat16) {
      bool ref16 = iei == kIeiConcat16;
      if (length != (ref16 ? 4u : 3u)) {
        parse.status = UdhStatus::kBadElementLength;
        return parse;
      }
      ConcatInfo info;
      info.ref16 = ref16;
      if (ref16) {
        info.ref = static_cast<uint16_t>((Octet(short_message, data) << 8) | Octet(short_message, data + 1));
        data += 2;
      } else {
        info.ref = Octet(short_message, data);
        data += 1;
      }
      info.total = Octet(short_message, data);
      info.seq = Octet(short_message, data + 1);
      concat = info;
    }
    pos += 2 + length;
  }
  parse.header_length = header_length;
  parse.user_data = short_message.substr(header_length);
  if (concat && !IsValidConcat(*concat)) {
    parse.status = UdhStatus::kInvalidConcat;
    return parse;
  }
  parse.concat = concat;
  return parse;
}

std::optional<ConcatInfo> ConcatFromSar(uint16_t sar_msg_ref_num, uint8_t sar_total_segments,
                                        uint8_t sar_segment_seqnum) {
  ConcatInfo info{sar_msg_ref_num, sar_total_segments, sar_segment_seqnum, /*ref16=*/true};
  if (!IsValidConcat(info)) return std::nullopt;
  return info;
}

std::string BuildConcatUdh(const ConcatInfo& info) {
  if (info.ref16) {
    return std::string{0x06, static_cast<char>(kIeiConcat16), 0x04, static_cast<char>(info.ref >> 8),
                       static_cast<char>(info.ref & 0xFF), static_cast<char>(info.total),
                       static_cast<char>(info.seq)};
  }
  return std::string{0x05, static_cast<char>(kIeiConcat8), 0x03, static_cast<char>(info.ref & 0xFF),
                     static_cast<char>(info.total), static_cast<char>(info.seq)};
}

const char* ToString(UdhStatus status) {
  switch (status) {
    case UdhStatus::kOk: return "ok";
    case UdhStatus::kEmpty: return "empty short_message with UDHI set";
    case UdhStatus::kTruncated: return "user data header runs past the end of short_message";
    case UdhStatus::kBadElementLength: return "concatenation element has the wrong length";
    case UdhStatus::kInvalidConcat: return "concatenation total/sequence out of range";
  }
  return "unknown";
}

}  // namespace donagate::smpp
