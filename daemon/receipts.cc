#include "daemon/receipts.h"

#include "protocol/delivery_receipt.h"

namespace donagate::daemon {

bool ParseReceiptForStore(const ReceiptFields& fields, const std::string& operator_name,
                          smpp::MessageIdMode id_mode, billing::ReceiptInfo* out,
                          std::string* problem) {
  smpp::ReceiptTlvs tlvs;
  tlvs.receipted_message_id = fields.receipted_message_id;
  tlvs.message_state = fields.message_state;
  tlvs.network_error_code = fields.network_error_code;
  smpp::ReceiptParse parsed = smpp::ParseDeliveryReceipt(fields.text, tlvs);
  if (!parsed.ok()) {
    if (problem) *problem = smpp::ToString(parsed.status);
    return false;
  }
  out->operator_name = operator_name;
  out->smsc_message_id =
      smpp::NormalizeMessageId(parsed.receipt.message_id,
                               parsed.receipt.id_from_tlv ? smpp::MessageIdSource::kReceiptTlv
                                                          : smpp::MessageIdSource::kReceiptText,
                               id_mode)
          .canonical;
  out->stat = parsed.receipt.state == smpp::MessageState::kUnrecognised
                  ? parsed.receipt.stat_raw
                  : std::string(smpp::ToString(parsed.receipt.state));
  out->err = parsed.receipt.err_raw;
  return true;
}

}  // namespace donagate::daemon
