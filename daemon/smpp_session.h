// One SMPP connection, either side of the bind: the engine shared by client links and the
// server. It owns the transport (TCP or TLS), the read buffer and the write queue, and runs on
// one strand: no locks on the per-PDU path.
//
// What it does, once Start() is called on a connected transport:
//   - role kEsme (client mode): TLS handshake, sends bind_<kind>, waits response_timeout for the
//     bind_resp; a refusal is reported to the owner and the session closes.
//   - role kSmsc (server mode): TLS handshake, waits bind_timeout for a bind, asks the owner to
//     authenticate it (the owner may delay its answer), answers bind_resp. A second bind gets
//     ESME_RALYBND; other requests before the bind get their _resp (or generic_nack) with
//     ESME_RINVBNDSTS; enquire_link is answered in every state.
//   - bound, either role: inbound deliver_sm/data_sm go to the InboundHandler and are answered
//     ONLY through its completion; submit_sm go out within the window, paced by the link's
//     SubmitPacer, with throttle pause/retry and response timeouts; enquire_link every
//     enquire_link_interval, and no enquire_link_resp within response_timeout = link dead →
//     close; peer unbind → unbind_resp, close; Stop() → drain, unbind, close.
//   - bad input: the protocol codec decides the answer (docs/smpp-pdu.md); a command_length out
//     of range is refused before any allocation and closes the connection; a PDU that does not
//     complete within pdu_read_timeout (slow-loris) and, if configured, a connection silent for
//     idle_timeout are closed.
//
// Threads: every public method may be called from any thread; owner callbacks, InboundHandler
// calls and SubmitCallbacks run on the session's strand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/link.h"
#include "daemon/link_metrics.h"
#include "daemon/tls_context.h"
#include "daemon/token_bucket.h"
#include "protocol/pdu.h"

namespace donagate::daemon {

using Millis = std::chrono::milliseconds;

enum class SessionRole {
  kEsme,  // we bound to the peer (client mode)
  kSmsc,  // the peer bound to us (server mode)
};

// The bind, named from the side that sends the bind PDU.
enum class BindKind { kTransceiver, kReceiver, kTransmitter };
std::string_view ToString(BindKind kind);
smpp::CommandId BindCommand(BindKind kind);
std::optional<BindKind> BindKindOf(smpp::CommandId bind_command);

enum class CloseReason {
  kPeerClosed,      // EOF or reset
  kIoError,         // read/write/TLS error
  kBindRefused,     // kEsme: bind_resp with an error
  kBindFailed,      // kSmsc: we refused the peer's bind
  kBindTimeout,     // no bind / bind_resp in time (includes a stuck TLS handshake)
  kLinkDead,        // enquire_link unanswered
  kIdle,            // nothing received for idle_timeout
  kSlowPdu,         // a PDU did not complete within pdu_read_timeout
  kProtocolError,   // framing lost (bad command_length)
  kPeerUnbind,      // the peer sent unbind
  kLocalUnbind,     // Stop(): we unbound
  kAborted,         // Close() by the owner
};
std::string_view ToString(CloseReason reason);

struct SessionOptions {
  std::string link_name;
  std::string operator_name;
  SessionRole role = SessionRole::kEsme;
  // kEsme: the bind we send.
  BindKind bind_kind = BindKind::kTransceiver;
  std::string system_id;
  std::string password;  // never logged
  std::string system_type;
  uint32_t max_pdu_size = smpp::kDefaultMaxCommandLength;
  Millis enquire_link_interval{30000};  // 0 = never send enquire_link
  Millis response_timeout{10000};       // for every request we send
  Millis pdu_read_timeout{10000};       // a started PDU must be complete within this
  Millis bind_timeout{10000};           // kSmsc: bind within this after accept, or closed
  Millis idle_timeout{0};               // close after this long without receiving; 0 = never
  Millis unbind_timeout{2000};          // wait for unbind_resp at most this long
  int window = 10;                      // max submit_sm awaiting submit_sm_resp
  size_t max_queued_submits = 1000;     // beyond window + queue: SubmitOutcome::kBusy
  Millis throttle_pause{60000};
  int throttle_max_retries = 5;
  // The answer to a deliver_sm that arrives while we are stopping (temporary: SMSC redelivers).
  uint32_t stopping_inbound_status = smpp::status::kXTAppn;
};

// The session settings of one [[smsc]] entry (durations converted; role from its mode).
SessionOptions SessionOptionsFromConfig(const config::SmscLink& link);

class SmppSession;

// Whoever created the session: a client link or the server. Called on the session's strand.
class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  virtual void OnSessionBound(const std::shared_ptr<SmppSession>& session) = 0;
  // kEsme: the peer refused our bind with `status` (the session closes right after).
  virtual void OnSessionBindRefused(const std::shared_ptr<SmppSession>& session,
                                    uint32_t status) = 0;
  virtual void OnSessionClosed(const std::shared_ptr<SmppSession>& session, CloseReason reason,
                               const std::string& detail) = 0;
  // kSmsc: decide a bind request. Call `decide(status)` exactly once, from any thread, possibly
  // later (failed-bind slowdown); status::kOk accepts.
  virtual void AuthenticateBind(const std::shared_ptr<SmppSession>& session,
                                const smpp::BindBody& bind, BindKind kind,
                                std::function<void(uint32_t status)> decide) = 0;
};

class SmppSession : public std::enable_shared_from_this<SmppSession> {
 public:
  enum class State { kNew, kOpen, kBinding, kBound, kStopping, kUnbinding, kClosed };

  // `transport` must be connected, its socket bound to `strand`. `handler` and `metrics` must
  // outlive the session; `pacer` is shared by the link's sessions.
  SmppSession(Strand strand, std::unique_ptr<Transport> transport, SessionOptions options,
              InboundHandler* handler, std::shared_ptr<LinkMetrics> metrics,
              std::shared_ptr<SubmitPacer> pacer, std::weak_ptr<SessionOwner> owner,
              uint64_t session_id);
  ~SmppSession();

  SmppSession(const SmppSession&) = delete;
  SmppSession& operator=(const SmppSession&) = delete;

  void Start();
  // See Link::Submit. Reports kLinkDown if this session cannot transmit.
  void Submit(smpp::SubmitSm pdu, SubmitCallback done);
  // Graceful: see Link::Stop. `done` runs on the strand once the session is closed.
  void Stop(Millis drain, std::function<void()> done);
  // Immediate close (no unbind).
  void Close();

  // Lock-free snapshots, readable from any thread.
  bool bound() const { return bound_.load(std::memory_order_acquire); }
  bool can_transmit() const { return can_transmit_.load(std::memory_order_acquire); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  int window_in_use() const { return window_in_use_.load(std::memory_order_relaxed); }
  int queued_submits() const { return queued_.load(std::memory_order_relaxed); }
  int pending_inbound() const { return pending_inbound_.load(std::memory_order_relaxed); }
  std::optional<BindKind> bound_kind() const;

  uint64_t id() const { return session_id_; }
  const LinkInfo& info() const { return info_; }
  const Strand& strand() const { return strand_; }
  const SessionOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct SubmitJob {
    smpp::SubmitSm pdu;
    SubmitCallback done;
    int attempts = 0;
    int throttle_retries = 0;
    bool sent = false;
  };
  struct PendingRequest {
    smpp::CommandId command;
    Clock::time_point deadline;
    std::unique_ptr<SubmitJob> job;  // submit_sm only
  };

  // Reading and framing.
  void ReadMore();
  void OnRead(const boost::system::error_code& ec, size_t n);
  bool ProcessBuffer();  // false when the session closed
  void HandlePdu();
  void HandleDecodeFailure(const smpp::DecodeResult& result);
  void HandleRequest();
  void HandleResponse();
  void HandleBind();
  void HandleInboundMessage();
  void CompleteInbound(uint32_t sequence, smpp::CommandId response_id, uint32_t status);

  // Writing.
  bool Send(const smpp::Pdu& pdu);  // false: closed, or the PDU could not be encoded
  void SendResponse(const smpp::Header& request, uint32_t status);
  uint32_t SendRequest(smpp::Pdu pdu, std::unique_ptr<SubmitJob> job);
  void Flush();
  void CloseAfterFlush(CloseReason reason, std::string detail);

  // Submits.
  void EnqueueSubmit(std::unique_ptr<SubmitJob> job, bool front);
  void Pump();
  void ArmPump(Clock::duration wait);
  void FinishSubmit(std::unique_ptr<SubmitJob> job, SubmitOutcome outcome, uint32_t status,
                    std::string message_id);
  void OnSubmitResponse(std::unique_ptr<SubmitJob> job, const smpp::Pdu& response);

  // Lifecycle.
  void BeginBind();
  void OnBindDecision(uint32_t status, smpp::Header request, BindKind kind,
                      std::string peer_system_id);
  void SetBound(BindKind kind);
  void Tick();
  void ArmTick();
  void MaybeFinishDrain();
  void CloseNow(CloseReason reason, std::string detail);
  void NotifyOwnerClosed(CloseReason reason, const std::string& detail);

  void LogWarn(const std::string& event, const std::string& text);

  Strand strand_;
  std::unique_ptr<Transport> transport_;
  SessionOptions options_;
  InboundHandler* handler_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SubmitPacer> pacer_;
  std::weak_ptr<SessionOwner> owner_;
  uint64_t session_id_;
  LinkInfo info_;
  smpp::DecodeLimits limits_;

  State state_ = State::kNew;
  std::optional<BindKind> bound_kind_;
  std::atomic<bool> bound_{false};
  std::atomic<bool> can_transmit_{false};
  std::atomic<bool> closed_{false};
  std::atomic<int> window_in_use_{0};
  std::atomic<int> queued_{0};
  std::atomic<int> pending_inbound_{0};

  // Read side: buf_[begin_, end_) holds unprocessed bytes.
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool reading_ = false;
  smpp::Pdu pdu_;  // reused for every decode
  Clock::time_point started_at_;
  Clock::time_point last_received_;
  std::optional<Clock::time_point> partial_since_;

  // Write side.
  std::deque<std::string> outq_;
  std::vector<std::string> writing_;
  bool write_in_progress_ = false;
  std::optional<std::pair<CloseReason, std::string>> close_after_flush_;
  Clock::time_point close_deadline_{};

  // Requests we sent, by sequence number.
  uint32_t next_sequence_ = 1;
  std::unordered_map<uint32_t, PendingRequest> pending_;
  std::deque<std::unique_ptr<SubmitJob>> submit_queue_;
  int submits_in_flight_ = 0;
  bool enquire_pending_ = false;
  Clock::time_point last_enquire_sent_;

  asio::steady_timer tick_timer_;
  Millis tick_period_;
  asio::steady_timer pump_timer_;
  uint64_t pump_generation_ = 0;
  bool pump_armed_ = false;
  Clock::time_point pump_at_{};

  // Stop().
  Clock::time_point drain_deadline_{};
  std::vector<std::function<void()>> stop_done_;
  bool owner_notified_ = false;
};

}  // namespace donagate::daemon
