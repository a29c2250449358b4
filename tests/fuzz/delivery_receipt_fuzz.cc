// libFuzzer target: the delivery-receipt parser and message id normalisation must accept any
// bytes without crashing, reading out of bounds or breaking their stated invariants.
//
// Input layout: byte 0 = flags (bit 0: receipted_message_id TLV present, bit 1: message_state
// TLV present, bit 2: network_error_code TLV present), byte 1 = message_state value; then, if
// bit 0, the TLV id up to the first NUL; then, if bit 2, 3 octets of network_error_code; the
// rest is the short_message text. Seeds: tests/fuzz/corpus/delivery_receipt/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/delivery_receipt.h"
#include "protocol/message_id.h"

using namespace donagate::smpp;

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ReceiptTlvs tlvs;
  if (input.size() >= 2) {
    uint8_t flags = static_cast<uint8_t>(input[0]);
    uint8_t state = static_cast<uint8_t>(input[1]);
    input.remove_prefix(2);
    if (flags & 0x01) {
      std::size_t nul = input.find('\0');
      std::size_t length = nul == std::string_view::npos ? input.size() : nul + 1;
      tlvs.receipted_message_id = input.substr(0, length);
      input.remove_prefix(length);
    }
    if (flags & 0x02) tlvs.message_state = state;
    if ((flags & 0x04) && input.size() >= 3) {
      tlvs.network_error_code = input.substr(0, 3);
      input.remove_prefix(3);
    }
  }

  ReceiptParse parse = ParseDeliveryReceipt(input, tlvs);
  const DeliveryReceipt& r = parse.receipt;
  Check(r.final == IsFinal(r.state));
  Check(r.text.size() <= input.size());
  Check(parse.ok() == (!r.message_id.empty() && r.state != MessageState::kUnrecognised));
  if (r.submit_date) Check(r.submit_date->month >= 1 && r.submit_date->month <= 12);
  if (r.done_date) Check(r.done_date->second <= 59);

  for (MessageIdMode mode : {MessageIdMode::kExact, MessageIdMode::kTrimLeadingZeros,
                             MessageIdMode::kResponseHexReceiptDecimal, MessageIdMode::kResponseDecimalReceiptHex}) {
    for (MessageIdSource source : {MessageIdSource::kSubmitResponse, MessageIdSource::kReceiptText,
                                   MessageIdSource::kReceiptTlv}) {
      NormalizedMessageId id = NormalizeMessageId(r.message_id, source, mode);
      Check((id.status == MessageIdStatus::kEmpty) == id.canonical.empty());
      if (id.status == MessageIdStatus::kOk && mode != MessageIdMode::kExact) {
        // Canonical forms have no leading zero (except "0" itself) and no upper case.
        Check(id.canonical == "0" || id.canonical.front() != '0');
        for (char c : id.canonical) Check(!(c >= 'A' && c <= 'Z'));
        if (mode != MessageIdMode::kTrimLeadingZeros) {
          for (char c : id.canonical) Check(c >= '0' && c <= '9');
        }
      }
    }
  }
  return 0;
}
