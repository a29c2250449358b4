// Delivery receipts as the store wants them: the receipt text and TLVs of an inbound
// deliver_sm/data_sm turned into billing::ReceiptInfo, with the SMSC message id normalised the
// same way the reply sender normalises submit_sm_resp ids, so the receipt finds its reply.
//
// (Kept in its own translation unit without protocol/pdu.h: pdu.h and delivery_receipt.h both
// declare smpp::NetworkErrorCode, so the two headers cannot be included together yet.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "billing/store/store.h"
#include "protocol/message_id.h"

namespace donagate::daemon {

struct ReceiptFields {
  std::string_view text;                                // short_message or message_payload
  std::optional<std::string_view> receipted_message_id; // TLV 0x001E
  std::optional<uint8_t> message_state;                 // TLV 0x0427
  std::optional<std::string_view> network_error_code;   // TLV 0x0423, raw
};

// True and *out filled when the receipt names a message id and a state; false (with
// *problem set, e.g. "no_message_id") otherwise — the MO is still recorded as a receipt.
bool ParseReceiptForStore(const ReceiptFields& fields, const std::string& operator_name,
                          smpp::MessageIdMode id_mode, billing::ReceiptInfo* out,
                          std::string* problem);

}  // namespace donagate::daemon
