// SMPP 3.4 command identifiers (§5.1.2.1) and command_status codes (§5.1.3).
//
// Pure tables: no I/O, no allocation except in FormatCommandStatus.
#ifndef DONAGATE_PROTOCOL_COMMAND_STATUS_H_
#define DONAGATE_PROTOCOL_COMMAND_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace donagate::smpp {

// Every command_id defined by SMPP 3.4. Only some have a PDU body in pdu.h; the others
// (replace_sm, cancel_sm, submit_multi, alert_notification) are named so that logs can
// say what an unsupported command was, and are answered with generic_nack ESME_RINVCMDID.
enum class CommandId : uint32_t {
  kGenericNack = 0x80000000,
  kBindReceiver = 0x00000001,
  kBindReceiverResp = 0x80000001,
  kBindTransmitter = 0x00000002,
  kBindTransmitterResp = 0x80000002,
  kQuerySm = 0x00000003,
  kQuerySmResp = 0x80000003,
  kSubmitSm = 0x00000004,
  kSubmitSmResp = 0x80000004,
  kDeliverSm = 0x00000005,
  kDeliverSmResp = 0x80000005,
  kUnbind = 0x00000006,
  kUnbindResp = 0x80000006,
  kReplaceSm = 0x00000007,
  kReplaceSmResp = 0x80000007,
  kCancelSm = 0x00000008,
  kCancelSmResp = 0x80000008,
  kBindTransceiver = 0x00000009,
  kBindTransceiverResp = 0x80000009,
  kOutbind = 0x0000000B,
  kEnquireLink = 0x00000015,
  kEnquireLinkResp = 0x80000015,
  kSubmitMulti = 0x00000021,
  kSubmitMultiResp = 0x80000021,
  kAlertNotification = 0x00000102,
  kDataSm = 0x00000103,
  kDataSmResp = 0x80000103,
};

// "submit_sm", "deliver_sm_resp", ...; empty for an id SMPP 3.4 does not define.
std::string_view CommandIdName(CommandId id);
// True for the ids with the response bit (0x80000000) set, generic_nack included.
inline bool IsResponse(CommandId id) { return (static_cast<uint32_t>(id) & 0x80000000u) != 0; }

// command_status values of SMPP 3.4 §5.1.3. Plain constants rather than an enum class
// because the field is an open uint32_t on the wire: peers send vendor codes
// (0x400..0x4FF) and the link must carry them through untouched.
namespace status {
inline constexpr uint32_t kOk = 0x00000000;                   // ESME_ROK
inline constexpr uint32_t kInvMsgLen = 0x00000001;            // ESME_RINVMSGLEN
inline constexpr uint32_t kInvCmdLen = 0x00000002;            // ESME_RINVCMDLEN
inline constexpr uint32_t kInvCmdId = 0x00000003;             // ESME_RINVCMDID
inline constexpr uint32_t kInvBndSts = 0x00000004;            // ESME_RINVBNDSTS
inline constexpr uint32_t kAlyBnd = 0x00000005;               // ESME_RALYBND
inline constexpr uint32_t kInvPrtFlg = 0x00000006;            // ESME_RINVPRTFLG
inline constexpr uint32_t kInvRegDlvFlg = 0x00000007;         // ESME_RINVREGDLVFLG
inline constexpr uint32_t kSysErr = 0x00000008;               // ESME_RSYSERR
inline constexpr uint32_t kInvSrcAdr = 0x0000000A;            // ESME_RINVSRCADR
inline constexpr uint32_t kInvDstAdr = 0x0000000B;            // ESME_RINVDSTADR
inline constexpr uint32_t kInvMsgId = 0x0000000C;             // ESME_RINVMSGID
inline constexpr uint32_t kBindFail = 0x0000000D;             // ESME_RBINDFAIL
inline constexpr uint32_t kInvPaswd = 0x0000000E;             // ESME_RINVPASWD
inline constexpr uint32_t kInvSysId = 0x0000000F;             // ESME_RINVSYSID
inline constexpr uint32_t kCancelFail = 0x00000011;           // ESME_RCANCELFAIL
inline constexpr uint32_t kReplaceFail = 0x00000013;          // ESME_RREPLACEFAIL
inline constexpr uint32_t kMsgQFul = 0x00000014;              // ESME_RMSGQFUL
inline constexpr uint32_t kInvSerTyp = 0x00000015;            // ESME_RINVSERTYP
inline constexpr uint32_t kInvNumDests = 0x00000033;          // ESME_RINVNUMDESTS
inline constexpr uint32_t kInvDlName = 0x00000034;            // ESME_RINVDLNAME
inline constexpr uint32_t kInvDestFlag = 0x00000040;          // ESME_RINVDESTFLAG
inline constexpr uint32_t kInvSubRep = 0x00000042;            // ESME_RINVSUBREP
inline constexpr uint32_t kInvEsmClass = 0x00000043;          // ESME_RINVESMCLASS
inline constexpr uint32_t kCntSubDl = 0x00000044;             // ESME_RCNTSUBDL
inline constexpr uint32_t kSubmitFail = 0x00000045;           // ESME_RSUBMITFAIL
inline constexpr uint32_t kInvSrcTon = 0x00000048;            // ESME_RINVSRCTON
inline constexpr uint32_t kInvSrcNpi = 0x00000049;            // ESME_RINVSRCNPI
inline constexpr uint32_t kInvDstTon = 0x00000050;            // ESME_RINVDSTTON
inline constexpr uint32_t kInvDstNpi = 0x00000051;            // ESME_RINVDSTNPI
inline constexpr uint32_t kInvSysTyp = 0x00000053;            // ESME_RINVSYSTYP
inline constexpr uint32_t kInvRepFlag = 0x00000054;           // ESME_RINVREPFLAG
inline constexpr uint32_t kInvNumMsgs = 0x00000055;           // ESME_RINVNUMMSGS
inline constexpr uint32_t kThrottled = 0x00000058;            // ESME_RTHROTTLED
inline constexpr uint32_t kInvSched = 0x00000061;             // ESME_RINVSCHED
inline constexpr uint32_t kInvExpiry = 0x00000062;            // ESME_RINVEXPIRY
inline constexpr uint32_t kInvDftMsgId = 0x00000063;          // ESME_RINVDFTMSGID
inline constexpr uint32_t kXTAppn = 0x00000064;               // ESME_RX_T_APPN
inline constexpr uint32_t kXPAppn = 0x00000065;               // ESME_RX_P_APPN
inline constexpr uint32_t kXRAppn = 0x00000066;               // ESME_RX_R_APPN
inline constexpr uint32_t kQueryFail = 0x00000067;            // ESME_RQUERYFAIL
inline constexpr uint32_t kInvOptParStream = 0x000000C0;      // ESME_RINVOPTPARSTREAM
inline constexpr uint32_t kOptParNotAllwd = 0x000000C1;       // ESME_ROPTPARNOTALLWD
inline constexpr uint32_t kInvParLen = 0x000000C2;            // ESME_RINVPARLEN
inline constexpr uint32_t kMissingOptParam = 0x000000C3;      // ESME_RMISSINGOPTPARAM
inline constexpr uint32_t kInvOptParamVal = 0x000000C4;       // ESME_RINVOPTPARAMVAL
inline constexpr uint32_t kDeliveryFailure = 0x000000FE;      // ESME_RDELIVERYFAILURE
inline constexpr uint32_t kUnknownErr = 0x000000FF;           // ESME_RUNKNOWNERR
}  // namespace status

// "ESME_RTHROTTLED" for a code defined by SMPP 3.4, empty otherwise.
std::string_view CommandStatusName(uint32_t status);
// The spec's one-line meaning ("Throttling error (ESME has exceeded allowed message
// limits)"); for undefined codes the range it falls in ("Reserved for SMSC vendor
// specific errors", "Reserved").
std::string_view CommandStatusDescription(uint32_t status);
// For logs and error messages: "ESME_RTHROTTLED (0x00000058)" or, for a code the spec
// does not name, "0x00000401 (Reserved for SMSC vendor specific errors)".
std::string FormatCommandStatus(uint32_t status);

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_COMMAND_STATUS_H_
