#include "protocol/command_status.h"

#include <cstdio>

namespace donagate::smpp {
namespace {

struct StatusEntry {
  uint32_t code;
  std::string_view name;
  std::string_view description;
};

// SMPP 3.4 §5.1.3, in code order.
constexpr StatusEntry kStatusTable[] = {
    {0x00, "ESME_ROK", "No Error"},
    {0x01, "ESME_RINVMSGLEN", "Message Length is invalid"},
    {0x02, "ESME_RINVCMDLEN", "Command Length is invalid"},
    {0x03, "ESME_RINVCMDID", "Invalid Command ID"},
    {0x04, "ESME_RINVBNDSTS", "Incorrect BIND Status for given command"},
    {0x05, "ESME_RALYBND", "ESME Already in Bound State"},
    {0x06, "ESME_RINVPRTFLG", "Invalid Priority Flag"},
    {0x07, "ESME_RINVREGDLVFLG", "Invalid Registered Delivery Flag"},
    {0x08, "ESME_RSYSERR", "System Error"},
    {0x0A, "ESME_RINVSRCADR", "Invalid Source Address"},
    {0x0B, "ESME_RINVDSTADR", "Invalid Dest Addr"},
    {0x0C, "ESME_RINVMSGID", "Message ID is invalid"},
    {0x0D, "ESME_RBINDFAIL", "Bind Failed"},
    {0x0E, "ESME_RINVPASWD", "Invalid Password"},
    {0x0F, "ESME_RINVSYSID", "Invalid System ID"},
    {0x11, "ESME_RCANCELFAIL", "Cancel SM Failed"},
    {0x13, "ESME_RREPLACEFAIL", "Replace SM Failed"},
    {0x14, "ESME_RMSGQFUL", "Message Queue Full"},
    {0x15, "ESME_RINVSERTYP", "Invalid Service Type"},
    {0x33, "ESME_RINVNUMDESTS", "Invalid number of destinations"},
    {0x34, "ESME_RINVDLNAME", "Invalid Distribution List name"},
    {0x40, "ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)"},
    {0x42, "ESME_RINVSUBREP", "Invalid 'submit with replace' request"},
    {0x43, "ESME_RINVESMCLASS", "Invalid esm_class field data"},
    {0x44, "ESME_RCNTSUBDL", "Cannot Submit to Distribution List"},
    {0x45, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"},
    {0x48, "ESME_RINVSRCTON", "Invalid Source address TON"},
    {0x49, "ESME_RINVSRCNPI", "Invalid Source address NPI"},
    {0x50, "ESME_RINVDSTTON", "Invalid Destination address TON"},
    {0x51, "ESME_RINVDSTNPI", "Invalid Destination address NPI"},
    {0x53, "ESME_RINVSYSTYP", "Invalid system_type field"},
    {0x54, "ESME_RINVREPFLAG", "Invalid replace_if_present flag"},
    {0x55, "ESME_RINVNUMMSGS", "Invalid number of messages"},
    {0x58, "ESME_RTHROTTLED", "Throttling error (ESME has exceeded allowed message limits)"},
    {0x61, "ESME_RINVSCHED", "Invalid Scheduled Delivery Time"},
    {0x62, "ESME_RINVEXPIRY", "Invalid message validity period (Expiry time)"},
    {0x63, "ESME_RINVDFTMSGID", "Predefined Message Invalid or Not Found"},
    {0x64, "ESME_RX_T_APPN", "ESME Receiver Temporary App Error Code"},
    {0x65, "ESME_RX_P_APPN", "ESME Receiver Permanent App Error Code"},
    {0x66, "ESME_RX_R_APPN", "ESME Receiver Reject Message Error Code"},
    {0x67, "ESME_RQUERYFAIL", "query_sm request failed"},
    {0xC0, "ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU Body"},
    {0xC1, "ESME_ROPTPARNOTALLWD", "Optional Parameter not allowed"},
    {0xC2, "ESME_RINVPARLEN", "Invalid Parameter Length"},
    {0xC3, "ESME_RMISSINGOPTPARAM", "Expected Optional Parameter missing"},
    {0xC4, "ESME_RINVOPTPARAMVAL", "Invalid Optional Parameter Value"},
    {0xFE, "ESME_RDELIVERYFAILURE", "Delivery Failure (used for data_sm_resp)"},
    {0xFF, "ESME_RUNKNOWNERR", "Unknown Error"},
};

const StatusEntry* FindStatus(uint32_t code) {
  for (const StatusEntry& e : kStatusTable) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view CommandIdName(CommandId id) {
  switch (id) {
    case CommandId::kGenericNack: return "generic_nack";
    case CommandId::kBindReceiver: return "bind_receiver";
    case CommandId::kBindReceiverResp: return "bind_receiver_resp";
    case CommandId::kBindTransmitter: return "bind_transmitter";
    case CommandId::kBindTransmitterResp: return "bind_transmitter_resp";
    case CommandId::kQuerySm: return "query_sm";
    case CommandId::kQuerySmResp: return "query_sm_resp";
    case CommandId::kSubmitSm: return "submit_sm";
    case CommandId::kSubmitSmResp: return "submit_sm_resp";
    case CommandId::kDeliverSm: return "deliver_sm";
    case CommandId::kDeliverSmResp: return "deliver_sm_resp";
    case CommandId::kUnbind: return "unbind";
    case CommandId::kUnbindResp: return "unbind_resp";
    case CommandId::kReplaceSm: return "replace_sm";
    case CommandId::kReplaceSmResp: return "replace_sm_resp";
    case CommandId::kCancelSm: return "cancel_sm";
    case CommandId::kCancelSmResp: return "cancel_sm_resp";
    case CommandId::kBindTransceiver: return "bind_transceiver";
    case CommandId::kBindTransceiverResp: return "bind_transceiver_resp";
    case CommandId::kOutbind: return "outbind";
    case CommandId::kEnquireLink: return "enquire_link";
    case CommandId::kEnquireLinkResp: return "enquire_link_resp";
    case CommandId::kSubmitMulti: return "submit_multi";
    case CommandId::kSubmitMultiResp: return "submit_multi_resp";
    case CommandId::kAlertNotification: return "alert_notification";
    case CommandId::kDataSm: return "data_sm";
    case CommandId::kDataSmResp: return "data_sm_resp";
  }
  return {};
}

std::string_view CommandStatusName(uint32_t status) {
  const StatusEntry* e = FindStatus(status);
  return e ? e->name : std::string_view();
}

std::string_view CommandStatusDescription(uint32_t status) {
  if (const StatusEntry* e = FindStatus(status)) return e->description;
  if (status >= 0x400 && status <= 0x4FF) return "Reserved for SMSC vendor specific errors";
  if (status >= 0x100 && status <= 0x3FF) return "Reserved for SMPP extension";
  return "Reserved";
}

std::string FormatCommandStatus(uint32_t status) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%08X", status);
  std::string out;
  if (const StatusEntry* e = FindStatus(status)) {
    out.append(e->name).append(" (").append(hex).append(")");
  } else {
    out.append(hex).append(" (").append(CommandStatusDescription(status)).append(")");
  }
  return out;
}

}  // namespace donagate::smpp
