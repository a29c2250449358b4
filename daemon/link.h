// The contract between SMPP links and the pipeline.
//
// A Link is one configured [[smsc]] entry: in client mode the connection(s) we open to the
// operator's SMSC, in server mode the listener the operator binds to (all its sessions).
// Either way, once bound, the message flow is the same: the operator sends MO as deliver_sm
// or data_sm, we answer each one only when the pipeline says so, and we send replies as
// submit_sm. docs/smpp.md explains the modes and every setting.
//
// Threads: Link methods may be called from any thread. InboundHandler::OnMessage and
// SubmitCallback are called on the link's strand: they must not block (post heavy work).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/pdu.h"

namespace donagate::daemon {

// Who a PDU came from; copied into every OnMessage call (cheap, stable for the session).
struct LinkInfo {
  std::string link_name;      // the [[smsc]] name: metrics label, logs
  std::string operator_name;  // bill through this operator
  std::string system_id;      // the bound account
  std::string remote;         // "ip:port" of the peer
  uint64_t session_id = 0;    // distinguishes reconnects and parallel binds in logs
};

// Completes one inbound deliver_sm/data_sm: the link sends its _resp with `command_status`
// (status::kOk only after the message is durably committed; a temporary error such as
// ESME_RX_T_APPN makes the SMSC redeliver). May be called from any thread, at any time later.
// Only the first call counts. If the session has closed meanwhile nothing is sent: the SMSC
// will redeliver the unacknowledged message. Dropping it uncalled sends nothing either.
using InboundCompletion = std::function<void(uint32_t command_status)>;

// The pipeline's side of inbound traffic. The link NEVER answers a deliver_sm/data_sm on its
// own: no call to `done`, no deliver_sm_resp.
class InboundHandler {
 public:
  virtual ~InboundHandler() = default;
  // `pdu.header.command_id` is kDeliverSm (body smpp::DeliverSm) or kDataSm (smpp::DataSm);
  // in server mode an inbound submit_sm is refused by the link and never reaches here.
  // `pdu` is valid only during the call: copy what you keep.
  virtual void OnMessage(const LinkInfo& link, const smpp::Pdu& pdu, InboundCompletion done) = 0;
  // The session `link.session_id` closed. `orderly` is true after our own unbind (every
  // answer was written and the SMSC answered the unbind); otherwise answers written shortly
  // before, and those completed after, may never reach the SMSC, which will redeliver.
  virtual void OnSessionClosed(const LinkInfo& link, bool orderly) {
    (void)link;
    (void)orderly;
  }
};

enum class SubmitOutcome {
  kOk,        // submit_sm_resp ESME_ROK; message_id set
  kRejected,  // submit_sm_resp (or generic_nack) with a non-throttling error, or a PDU that
              // cannot be encoded (command_status 0, sent = false): final for this PDU
  kThrottled, // still ESME_RTHROTTLED/ESME_RMSGQFUL after throttle_max_retries pauses
  kTimeout,   // sent, no response within response_timeout: the SMSC MAY have accepted it
  kLinkDown,  // no bound transmitter, or the session closed; `sent` says whether it had left
  kBusy,      // window full and the link's queue full: nothing sent, try later
};
std::string_view ToString(SubmitOutcome outcome);

struct SubmitResult {
  SubmitOutcome outcome = SubmitOutcome::kLinkDown;
  uint32_t command_status = 0;   // the last answer's status (0 when none arrived)
  std::string message_id;        // as the SMSC wrote it in submit_sm_resp (not normalised)
  int attempts = 0;              // submit_sm PDUs written for this request (retries included)
  bool sent = false;             // the last attempt was written and got no throttle answer:
                                 // for kTimeout/kLinkDown the SMSC MAY have accepted it;
                                 // false means it certainly did not
  std::string link_name;         // which link handled it
};
using SubmitCallback = std::function<void(const SubmitResult&)>;

enum class LinkState {
  kStopped,     // not started, or stopped by Stop()
  kConnecting,  // client: resolving/connecting/TLS; server: listening, nobody bound
  kBinding,     // bind sent (client) and awaiting bind_resp
  kBound,       // at least one bound session can transmit or receive
  kBackoff,     // client: waiting before the next reconnect attempt
  kBindRefused, // client: last bind refused for credentials; retrying at the maximum backoff
  kStopping,    // draining and unbinding
};
std::string_view ToString(LinkState state);

// A snapshot for /status and the admin API.
struct LinkStatus {
  std::string name;
  std::string operator_name;
  std::string mode;            // "client" | "server"
  LinkState state = LinkState::kStopped;
  int bound_sessions = 0;      // server mode: parallel binds; client: 1, or 2 for rx+tx
  bool can_transmit = false;
  bool throttled = false;      // submits paused after ESME_RTHROTTLED
  int window_in_use = 0;
  int queued_submits = 0;
  int pending_inbound = 0;     // deliver_sm handed to the pipeline, not yet answered
  std::string last_error;      // e.g. "bind refused: ESME_RINVPASWD (0x0000000E)"; no secrets
  std::chrono::system_clock::time_point state_since;
};

class Link {
 public:
  virtual ~Link() = default;

  virtual const std::string& name() const = 0;
  virtual const std::string& operator_name() const = 0;

  // Starts connecting (client) or listening (server). Idempotent; a stopped link may be
  // started again (admin "start link").
  virtual void Start() = 0;
  // Graceful stop: refuse new submits (kLinkDown), answer new inbound deliver_sm with
  // ESME_RX_T_APPN, wait up to `drain` for in-flight submit responses and inbound
  // completions, send unbind, wait briefly for unbind_resp, close. `done` runs once, on the
  // link's strand, when every session is closed.
  virtual void Stop(std::chrono::milliseconds drain, std::function<void()> done) = 0;

  // True while a bound session can send submit_sm. Lock-free; may be stale by the time
  // Submit runs (Submit then reports kLinkDown).
  virtual bool CanTransmit() const = 0;
  // Sends `pdu` as submit_sm (sequence number assigned by the link), within the window and TPS
  // limit, with throttle pause/retry. `done` is called exactly once.
  virtual void Submit(smpp::SubmitSm pdu, SubmitCallback done) = 0;

  virtual LinkStatus Status() const = 0;
};

}  // namespace donagate::daemon
