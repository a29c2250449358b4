#include "daemon/smpp_session.h"

#include <spdlog/spdlog.h>

#include "daemon/logging.h"

#include <algorithm>
#include <cstring>

namespace donagate::daemon {
namespace {

using smpp::CommandId;
namespace st = smpp::status;

constexpr size_t kInitialBuffer = 4096;
constexpr size_t kReadChunk = 4096;

std::string_view CommandLabel(CommandId id) {
  std::string_view name = smpp::CommandIdName(id);
  return name.empty() ? std::string_view("unknown") : name;
}

std::string_view StatusLabel(uint32_t status) {
  std::string_view name = smpp::CommandStatusName(status);
  return name.empty() ? std::string_view("other") : name;
}

bool IsThrottleStatus(uint32_t status) {
  return status == st::kThrottled || status == st::kMsgQFul;
}

bool CanReceive(BindKind kind, SessionRole role) {
  // kEsme: we receive deliver_sm unless we bound as transmitter.
  // kSmsc: the peer sends us MO unless it bound as receiver.
  if (kind == BindKind::kTransceiver) return true;
  return role == SessionRole::kEsme ? kind == BindKind::kReceiver
                                    : kind == BindKind::kTransmitter;
}

bool CanTransmit(BindKind kind, SessionRole role) {
  if (kind == BindKind::kTransceiver) return true;
  return role == SessionRole::kEsme ? kind == BindKind::kTransmitter
                                    : kind == BindKind::kReceiver;
}

Millis TickPeriodFor(const SessionOptions& o) {
  Millis smallest{1000};
  for (Millis m : {o.enquire_link_interval, o.response_timeout, o.pdu_read_timeout,
                   o.bind_timeout, o.idle_timeout, o.unbind_timeout}) {
    if (m.count() > 0) smallest = std::min(smallest, m);
  }
  return std::clamp(smallest / 4, Millis(10), Millis(1000));
}

}  // namespace

std::string_view ToString(BindKind kind) {
  switch (kind) {
    case BindKind::kTransceiver: return "transceiver";
    case BindKind::kReceiver: return "receiver";
    case BindKind::kTransmitter: return "transmitter";
  }
  return "?";
}

CommandId BindCommand(BindKind kind) {
  switch (kind) {
    case BindKind::kTransceiver: return CommandId::kBindTransceiver;
    case BindKind::kReceiver: return CommandId::kBindReceiver;
    case BindKind::kTransmitter: return CommandId::kBindTransmitter;
  }
  return CommandId::kBindTransceiver;
}

std::optional<BindKind> BindKindOf(CommandId id) {
  switch (id) {
    case CommandId::kBindTransceiver: return BindKind::kTransceiver;
    case CommandId::kBindReceiver: return BindKind::kReceiver;
    case CommandId::kBindTransmitter: return BindKind::kTransmitter;
    default: return std::nullopt;
  }
}

std::string_view ToString(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed: return "peer_closed";
    case CloseReason::kIoError: return "io_error";
    case CloseReason::kBindRefused: return "bind_refused";
    case CloseReason::kBindFailed: return "bind_failed";
    case CloseReason::kBindTimeout: return "bind_timeout";
    case CloseReason::kLinkDead: return "link_dead";
    case CloseReason::kIdle: return "idle_timeout";
    case CloseReason::kSlowPdu: return "pdu_read_timeout";
    case CloseReason::kProtocolError: return "protocol_error";
    case CloseReason::kPeerUnbind: return "peer_unbind";
    case CloseReason::kLocalUnbind: return "local_unbind";
    case CloseReason::kAborted: return "aborted";
  }
  return "?";
}

SessionOptions SessionOptionsFromConfig(const config::SmscLink& link) {
  SessionOptions o;
  o.link_name = link.name;
  o.operator_name = link.operator_name;
  o.role = link.mode == config::LinkMode::kClient ? SessionRole::kEsme : SessionRole::kSmsc;
  o.bind_kind = BindKind::kTransceiver;
  o.system_id = link.system_id;
  o.password = link.password.Reveal();
  o.system_type = link.system_type;
  o.max_pdu_size = link.max_pdu_size;
  o.enquire_link_interval = std::chrono::seconds(link.enquire_link_interval_s);
  o.response_timeout = std::chrono::seconds(link.response_timeout_s);
  o.pdu_read_timeout = std::chrono::seconds(link.response_timeout_s);
  o.bind_timeout = std::chrono::seconds(link.bind_timeout_s);
  o.idle_timeout = link.mode == config::LinkMode::kServer
                       ? Millis(std::chrono::seconds(link.idle_timeout_s))
                       : Millis(0);
  o.window = link.window;
  o.max_queued_submits = static_cast<size_t>(std::max(100, link.window * 10));
  o.throttle_pause = std::chrono::seconds(link.throttle_pause_s);
  o.throttle_max_retries = link.throttle_max_retries;
  return o;
}

SmppSession::SmppSession(Strand strand, std::unique_ptr<Transport> transport,
                         SessionOptions options, InboundHandler* handler,
                         std::shared_ptr<LinkMetrics> metrics, std::shared_ptr<SubmitPacer> pacer,
                         std::weak_ptr<SessionOwner> owner, uint64_t session_id)
    : strand_(std::move(strand)),
      transport_(std::move(transport)),
      options_(std::move(options)),
      handler_(handler),
      metrics_(std::move(metrics)),
      pacer_(std::move(pacer)),
      owner_(std::move(owner)),
      session_id_(session_id),
      tick_timer_(strand_),
      tick_period_(TickPeriodFor(options_)),
      pump_timer_(strand_) {
  options_.window = std::max(1, options_.window);
  limits_.max_command_length = std::max<uint32_t>(options_.max_pdu_size, smpp::kHeaderLength);
  info_.link_name = options_.link_name;
  info_.operator_name = options_.operator_name;
  info_.system_id = options_.role == SessionRole::kEsme ? options_.system_id : "";
  info_.remote = transport_->RemoteEndpoint();
  info_.session_id = session_id_;
  buf_.resize(kInitialBuffer);
}

SmppSession::~SmppSession() = default;

std::optional<BindKind> SmppSession::bound_kind() const {
  // Written once on the strand before bound_ is released.
  if (!bound()) return std::nullopt;
  return bound_kind_;
}

void SmppSession::LogWarn(const std::string& event, const std::string& text) {
  uint64_t suppressed = 0;
  if (!LogLimiter::Links().Allow(options_.link_name + "/" + event, &suppressed)) return;
  if (suppressed > 0) {
    LinkLog().warn("event={} link={} session={} {} suppressed={}", event, options_.link_name,
                   session_id_, text, suppressed);
  } else {
    LinkLog().warn("event={} link={} session={} {}", event, options_.link_name, session_id_, text);
  }
}

// --- Lifecycle -----------------------------------------------------------------------------

void SmppSession::Start() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    if (self->state_ != State::kNew) return;
    self->state_ = State::kOpen;
    self->started_at_ = Clock::now();
    self->last_received_ = self->started_at_;
    self->ArmTick();
    self->transport_->AsyncHandshake([self](const boost::system::error_code& ec) {
      if (self->state_ == State::kClosed) return;
      if (ec) {
        self->CloseNow(CloseReason::kIoError, "tls handshake failed: " + ec.message());
        return;
      }
      self->ReadMore();
      if (self->options_.role == SessionRole::kEsme) self->BeginBind();
    });
  });
}

void SmppSession::BeginBind() {
  smpp::Pdu bind = smpp::MakePdu(BindCommand(options_.bind_kind), 0);
  auto& body = std::get<smpp::BindBody>(bind.body);
  body.system_id = options_.system_id;
  body.password = options_.password;
  body.system_type = options_.system_type;
  body.interface_version = smpp::kInterfaceVersion34;
  state_ = State::kBinding;
  LinkLog().info("event=binding link={} session={} bind={} system_id={} remote={}",
               options_.link_name, session_id_, ToString(options_.bind_kind),
               options_.system_id, info_.remote);
  SendRequest(std::move(bind), nullptr);
}

void SmppSession::SetBound(BindKind kind) {
  state_ = State::kBound;
  bound_kind_ = kind;
  bound_.store(true, std::memory_order_release);
  can_transmit_.store(CanTransmit(kind, options_.role), std::memory_order_release);
  last_enquire_sent_ = Clock::now();
  metrics_->Bound();
  LinkLog().info("event=bound link={} session={} bind={} system_id={} remote={} tls={}",
               options_.link_name, session_id_, ToString(kind), info_.system_id, info_.remote,
               transport_->is_tls());
  if (auto owner = owner_.lock()) owner->OnSessionBound(shared_from_this());
  Pump();
}

void SmppSession::Stop(Millis drain, std::function<void()> done) {
  asio::post(strand_, [self = shared_from_this(), drain, done = std::move(done)]() mutable {
    if (self->state_ == State::kClosed) {
      if (done) done();
      return;
    }
    if (done) self->stop_done_.push_back(std::move(done));
    if (self->state_ == State::kStopping || self->state_ == State::kUnbinding) return;
    if (self->state_ != State::kBound) {
      self->CloseNow(CloseReason::kLocalUnbind, "stopped before bound");
      return;
    }
    self->state_ = State::kStopping;
    self->can_transmit_.store(false, std::memory_order_release);
    self->drain_deadline_ = Clock::now() + drain;
    // Queued submits never left: the caller may hand them to another link.
    while (!self->submit_queue_.empty()) {
      auto job = std::move(self->submit_queue_.front());
      self->submit_queue_.pop_front();
      self->queued_.fetch_sub(1, std::memory_order_relaxed);
      self->FinishSubmit(std::move(job), SubmitOutcome::kLinkDown, 0, "");
    }
    LinkLog().info("event=stopping link={} session={} drain_ms={} in_flight={} pending_inbound={}",
                 self->options_.link_name, self->session_id_, drain.count(),
                 self->submits_in_flight_, self->pending_inbound_.load());
    self->MaybeFinishDrain();
  });
}

void SmppSession::MaybeFinishDrain() {
  if (state_ != State::kStopping) return;
  const bool drained = submits_in_flight_ == 0 && pending_inbound_.load() == 0;
  if (!drained && Clock::now() < drain_deadline_) return;
  if (!drained) {
    LinkLog().warn("event=drain_timeout link={} session={} in_flight={} pending_inbound={}",
                 options_.link_name, session_id_, submits_in_flight_, pending_inbound_.load());
  }
  state_ = State::kUnbinding;
  SendRequest(smpp::MakePdu(CommandId::kUnbind, 0), nullptr);
}

void SmppSession::Close() {
  asio::post(strand_, [self = shared_from_this()] {
    self->CloseNow(CloseReason::kAborted, "closed by owner");
  });
}

void SmppSession::CloseAfterFlush(CloseReason reason, std::string detail) {
  if (state_ == State::kClosed) return;
  can_transmit_.store(false, std::memory_order_release);
  if (!write_in_progress_ && outq_.empty()) {
    CloseNow(reason, detail);
    return;
  }
  if (!close_after_flush_) {
    close_after_flush_.emplace(reason, std::move(detail));
    close_deadline_ = Clock::now() + std::max(options_.unbind_timeout, Millis(100));
  }
}

void SmppSession::CloseNow(CloseReason reason, std::string detail) {
  if (state_ == State::kClosed) return;
  const State previous = state_;
  state_ = State::kClosed;
  closed_.store(true, std::memory_order_release);
  bound_.store(false, std::memory_order_release);
  can_transmit_.store(false, std::memory_order_release);
  tick_timer_.cancel();
  pump_timer_.cancel();
  transport_->Close();

  // Every submit still ours fails now, exactly once; in-flight ones may have reached the SMSC.
  std::vector<std::unique_ptr<SubmitJob>> failed;
  for (auto& [seq, request] : pending_) {
    if (request.job) {
      failed.push_back(std::move(request.job));
      metrics_->WindowReleased();
    }
  }
  pending_.clear();
  submits_in_flight_ = 0;
  window_in_use_.store(0, std::memory_order_relaxed);
  while (!submit_queue_.empty()) {
    failed.push_back(std::move(submit_queue_.front()));
    submit_queue_.pop_front();
  }
  queued_.store(0, std::memory_order_relaxed);

  const bool expected = reason == CloseReason::kLocalUnbind || reason == CloseReason::kAborted;
  if (expected) {
    LinkLog().info("event=closed link={} session={} reason={} detail={}", options_.link_name,
                   session_id_, ToString(reason), Quote(detail));
  } else {
    LogWarn(std::string("closed_") + std::string(ToString(reason)),
            fmt::format("reason={} detail={} was_bound={} remote={}", ToString(reason),
                        Quote(detail), previous == State::kBound || previous == State::kStopping ||
                                    previous == State::kUnbinding,
                        info_.remote));
  }
  for (auto& job : failed) FinishSubmit(std::move(job), SubmitOutcome::kLinkDown, 0, "");
  if (handler_ != nullptr && bound_kind_) handler_->OnSessionClosed(info_, reason == CloseReason::kLocalUnbind);
  NotifyOwnerClosed(reason, detail);
  auto done = std::move(stop_done_);
  stop_done_.clear();
  for (auto& d : done) d();
}

void SmppSession::NotifyOwnerClosed(CloseReason reason, const std::string& detail) {
  if (owner_notified_) return;
  owner_notified_ = true;
  if (auto owner = owner_.lock()) owner->OnSessionClosed(shared_from_this(), reason, detail);
}

// --- Timers --------------------------------------------------------------------------------

void SmppSession::ArmTick() {
  tick_timer_.expires_after(tick_period_);
  tick_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->state_ == State::kClosed) return;
    self->Tick();
    if (self->state_ != State::kClosed) self->ArmTick();
  });
}

void SmppSession::Tick() {
  const auto now = Clock::now();
  if (close_after_flush_ && now >= close_deadline_) {
    auto [reason, detail] = *close_after_flush_;
    CloseNow(reason, detail + " (write did not drain)");
    return;
  }
  if (partial_since_ && now - *partial_since_ > options_.pdu_read_timeout) {
    CloseNow(CloseReason::kSlowPdu,
             fmt::format("a PDU stayed incomplete for more than {} ms ({} bytes buffered)",
                         options_.pdu_read_timeout.count(), end_ - begin_));
    return;
  }
  if (options_.role == SessionRole::kSmsc &&
      (state_ == State::kOpen || state_ == State::kBinding) &&
      now - started_at_ > options_.bind_timeout) {
    metrics_->BindFailed("timeout");
    CloseNow(CloseReason::kBindTimeout,
             fmt::format("no bind within {} ms", options_.bind_timeout.count()));
    return;
  }
  if (options_.role == SessionRole::kEsme && state_ == State::kOpen &&
      now - started_at_ > options_.response_timeout) {
    // Still in the TLS handshake.
    metrics_->BindFailed("timeout");
    CloseNow(CloseReason::kBindTimeout, "TLS handshake did not complete");
    return;
  }
  if (options_.idle_timeout.count() > 0 && now - last_received_ > options_.idle_timeout) {
    CloseNow(CloseReason::kIdle, fmt::format("nothing received for {} ms",
                                             options_.idle_timeout.count()));
    return;
  }
  // Requests without an answer in time.
  std::vector<std::pair<uint32_t, CommandId>> expired;
  for (const auto& [seq, request] : pending_) {
    if (now >= request.deadline) expired.emplace_back(seq, request.command);
  }
  for (const auto& [seq, command] : expired) {
    auto it = pending_.find(seq);
    if (it == pending_.end()) continue;
    PendingRequest request = std::move(it->second);
    pending_.erase(it);
    switch (command) {
      case CommandId::kEnquireLink:
        enquire_pending_ = false;
        CloseNow(CloseReason::kLinkDead,
                 fmt::format("no enquire_link_resp within {} ms",
                             options_.response_timeout.count()));
        return;
      case CommandId::kBindTransceiver:
      case CommandId::kBindReceiver:
      case CommandId::kBindTransmitter:
        metrics_->BindFailed("timeout");
        CloseNow(CloseReason::kBindTimeout,
                 fmt::format("no bind_resp within {} ms", options_.response_timeout.count()));
        return;
      case CommandId::kUnbind:
        CloseNow(CloseReason::kLocalUnbind, "no unbind_resp in time");
        return;
      case CommandId::kSubmitSm:
        --submits_in_flight_;
        window_in_use_.fetch_sub(1, std::memory_order_relaxed);
        metrics_->WindowReleased();
        LogWarn("submit_timeout", fmt::format("sequence={} timeout_ms={}", seq,
                                              options_.response_timeout.count()));
        FinishSubmit(std::move(request.job), SubmitOutcome::kTimeout, 0, "");
        break;
      default:
        break;
    }
  }
  if (state_ == State::kClosed) return;
  if (state_ == State::kBound && options_.enquire_link_interval.count() > 0 &&
      !enquire_pending_ && now - last_enquire_sent_ >= options_.enquire_link_interval) {
    enquire_pending_ = true;
    last_enquire_sent_ = now;
    SendRequest(smpp::MakePdu(CommandId::kEnquireLink, 0), nullptr);
  }
  MaybeFinishDrain();
  Pump();
}

// --- Reading -------------------------------------------------------------------------------

void SmppSession::ReadMore() {
  if (reading_ || state_ == State::kClosed) return;
  // Room for at least one chunk after the unprocessed bytes; the buffer only grows to the
  // size of a PDU whose command_length CheckFrame accepted (<= max_pdu_size).
  if (begin_ > 0 && (begin_ == end_ || buf_.size() - end_ < kReadChunk)) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() - end_ < 16) buf_.resize(buf_.size() + kReadChunk);
  reading_ = true;
  transport_->AsyncReadSome(
      asio::buffer(buf_.data() + end_, buf_.size() - end_),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        self->OnRead(ec, n);
      });
}

void SmppSession::OnRead(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == ssl::error::stream_truncated) {
      CloseNow(CloseReason::kPeerClosed, "connection closed by peer");
    } else {
      CloseNow(CloseReason::kIoError, "read failed: " + ec.message());
    }
    return;
  }
  last_received_ = Clock::now();
  end_ += n;
  if (!ProcessBuffer()) return;
  ReadMore();
}

bool SmppSession::ProcessBuffer() {
  while (begin_ < end_ && state_ != State::kClosed && !close_after_flush_) {
    std::string_view buffered(buf_.data() + begin_, end_ - begin_);
    smpp::FrameCheck frame = smpp::CheckFrame(buffered, limits_);
    if (frame.state == smpp::FrameState::kInvalid) {
      const uint32_t command_length =
          (uint32_t{static_cast<uint8_t>(buffered[0])} << 24) |
          (uint32_t{static_cast<uint8_t>(buffered[1])} << 16) |
          (uint32_t{static_cast<uint8_t>(buffered[2])} << 8) | static_cast<uint8_t>(buffered[3]);
      if (buffered.size() < smpp::kHeaderLength && command_length > smpp::kHeaderLength) {
        // Wait for the rest of the header so the generic_nack can carry the sequence number;
        // the slow-PDU timer bounds the wait.
        if (!partial_since_) partial_since_ = Clock::now();
        return true;
      }
      if (auto answer = smpp::AnswerFor(frame.error)) Send(*answer);
      metrics_->Pdu(PduDirection::kIn, "unknown", "ESME_RINVCMDLEN");
      LogWarn("bad_command_length",
              fmt::format("command_length={} max={} action=generic_nack_and_close",
                          command_length, limits_.max_command_length));
      CloseAfterFlush(CloseReason::kProtocolError,
                      fmt::format("command_length {} out of range", command_length));
      return state_ != State::kClosed;
    }
    if (frame.state == smpp::FrameState::kNeedMore) {
      if (frame.command_length > 0 && begin_ + frame.command_length > buf_.size()) {
        // Make room for exactly this PDU (bounded by max_pdu_size).
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        if (frame.command_length > buf_.size()) buf_.resize(frame.command_length);
      }
      if (!partial_since_) partial_since_ = Clock::now();
      return true;
    }
    // kReady.
    std::string_view wire = buffered.substr(0, frame.command_length);
    smpp::DecodeResult result = smpp::Decode(wire, &pdu_, limits_);
    begin_ += frame.command_length;
    partial_since_.reset();
    if (result.ok()) {
      HandlePdu();
    } else {
      HandleDecodeFailure(result);
    }
  }
  if (begin_ == end_) {
    begin_ = end_ = 0;
    partial_since_.reset();
    // Give back a buffer that grew for one large PDU.
    if (buf_.size() > 4 * kInitialBuffer) {
      buf_.resize(kInitialBuffer);
      buf_.shrink_to_fit();
    }
  } else if (!partial_since_) {
    partial_since_ = Clock::now();
  }
  return state_ != State::kClosed;
}

void SmppSession::HandleDecodeFailure(const smpp::DecodeResult& result) {
  metrics_->Pdu(PduDirection::kIn, CommandLabel(result.header.command_id),
                StatusLabel(result.status));
  LogWarn("bad_pdu",
          fmt::format("command={} sequence={} error={} field={} answer_status={}",
                      CommandLabel(result.header.command_id), result.header.sequence_number,
                      Quote(smpp::DecodeErrorName(result.error)), Quote(result.field),
                      StatusLabel(result.status)));
  if (auto answer = smpp::AnswerFor(result)) {
    Send(*answer);
  } else if (smpp::IsResponse(result.header.command_id) && result.sequence_known) {
    // A malformed response: its request's fate is unknown.
    auto it = pending_.find(result.header.sequence_number);
    if (it != pending_.end() && it->second.job) {
      auto job = std::move(it->second.job);
      pending_.erase(it);
      --submits_in_flight_;
      window_in_use_.fetch_sub(1, std::memory_order_relaxed);
      metrics_->WindowReleased();
      FinishSubmit(std::move(job), SubmitOutcome::kTimeout, result.status, "");
      Pump();
    }
  }
  if (result.close_connection) {
    CloseAfterFlush(CloseReason::kProtocolError,
                    std::string("framing lost: ") +
                        std::string(smpp::DecodeErrorName(result.error)));
  }
}

void SmppSession::HandlePdu() {
  metrics_->Pdu(PduDirection::kIn, CommandLabel(pdu_.header.command_id),
                StatusLabel(pdu_.header.command_status));
  if (smpp::IsResponse(pdu_.header.command_id)) {
    HandleResponse();
  } else {
    HandleRequest();
  }
}

void SmppSession::HandleRequest() {
  const smpp::Header& h = pdu_.header;
  switch (h.command_id) {
    case CommandId::kEnquireLink:
      SendResponse(h, st::kOk);
      return;
    case CommandId::kUnbind:
      if (state_ == State::kBound || state_ == State::kStopping || state_ == State::kUnbinding) {
        SendResponse(h, st::kOk);
        LinkLog().info("event=peer_unbind link={} session={}", options_.link_name, session_id_);
        CloseAfterFlush(CloseReason::kPeerUnbind, "peer sent unbind");
      } else {
        SendResponse(h, st::kInvBndSts);
      }
      return;
    case CommandId::kBindTransceiver:
    case CommandId::kBindReceiver:
    case CommandId::kBindTransmitter:
      HandleBind();
      return;
    case CommandId::kOutbind:
      // We never wait for outbind (client mode always binds on its own), so there is nothing
      // to answer: outbind has no response PDU.
      LogWarn("outbind_ignored", "reason=outbind_not_supported");
      return;
    case CommandId::kDeliverSm:
    case CommandId::kDataSm:
      HandleInboundMessage();
      return;
    default:
      // submit_sm, query_sm, ...: valid PDUs we do not serve on this link.
      if (state_ == State::kBound || state_ == State::kStopping) {
        SendResponse(h, st::kInvCmdId);
      } else {
        SendResponse(h, st::kInvBndSts);
      }
      return;
  }
}

void SmppSession::HandleBind() {
  const smpp::Header h = pdu_.header;
  if (options_.role == SessionRole::kEsme) {
    // An SMSC does not bind to its ESME.
    SendResponse(h, st::kInvBndSts);
    return;
  }
  if (state_ != State::kOpen) {
    SendResponse(h, st::kAlyBnd);
    return;
  }
  const BindKind kind = *BindKindOf(h.command_id);
  const auto& body = std::get<smpp::BindBody>(pdu_.body);
  state_ = State::kBinding;
  auto owner = owner_.lock();
  if (!owner) {
    SendResponse(h, st::kSysErr);
    CloseAfterFlush(CloseReason::kBindFailed, "server gone");
    return;
  }
  std::weak_ptr<SmppSession> weak = weak_from_this();
  std::string peer_system_id = body.system_id;
  owner->AuthenticateBind(
      shared_from_this(), body, kind,
      [weak, h, kind, peer_system_id](uint32_t status) {
        if (auto self = weak.lock()) {
          asio::post(self->strand_, [self, status, h, kind, peer_system_id] {
            self->OnBindDecision(status, h, kind, peer_system_id);
          });
        }
      });
}

void SmppSession::OnBindDecision(uint32_t status, smpp::Header request, BindKind kind,
                                 std::string peer_system_id) {
  if (state_ != State::kBinding) return;
  smpp::Pdu resp = smpp::MakeResponseFor(request, status);
  if (status == st::kOk) {
    if (auto* body = std::get_if<smpp::BindRespBody>(&resp.body)) {
      body->system_id = options_.system_id.empty() ? "donagate" : options_.system_id;
      body->tlvs.set_sc_interface_version(smpp::kInterfaceVersion34);
    }
  }
  Send(resp);
  info_.system_id = peer_system_id;
  if (status == st::kOk) {
    SetBound(kind);
  } else {
    metrics_->BindFailed(StatusLabel(status));
    CloseAfterFlush(CloseReason::kBindFailed,
                    fmt::format("bind refused: {} system_id={}", smpp::FormatCommandStatus(status),
                                peer_system_id));
  }
}

void SmppSession::HandleInboundMessage() {
  const smpp::Header h = pdu_.header;
  if (state_ == State::kStopping || state_ == State::kUnbinding) {
    SendResponse(h, options_.stopping_inbound_status);
    return;
  }
  if (state_ != State::kBound || !bound_kind_ || !CanReceive(*bound_kind_, options_.role)) {
    SendResponse(h, st::kInvBndSts);
    return;
  }
  if (handler_ == nullptr) {
    // Nobody can commit it: a temporary error makes the SMSC keep it.
    SendResponse(h, st::kXTAppn);
    return;
  }
  pending_inbound_.fetch_add(1, std::memory_order_relaxed);
  const CommandId response_id = *smpp::ResponseIdFor(h.command_id);
  const uint32_t sequence = h.sequence_number;
  auto once = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<SmppSession> weak = weak_from_this();
  InboundCompletion done = [weak, once, sequence, response_id](uint32_t status) {
    if (once->exchange(true)) return;
    if (auto self = weak.lock()) {
      asio::post(self->strand_, [self, sequence, response_id, status] {
        self->CompleteInbound(sequence, response_id, status);
      });
    }
  };
  handler_->OnMessage(info_, pdu_, std::move(done));
}

void SmppSession::CompleteInbound(uint32_t sequence, CommandId response_id, uint32_t status) {
  pending_inbound_.fetch_sub(1, std::memory_order_relaxed);
  if (state_ == State::kClosed || close_after_flush_) {
    // Too late: the SMSC will redeliver what it did not see acknowledged.
    return;
  }
  Send(smpp::MakePdu(response_id, sequence, status));
  MaybeFinishDrain();
}

void SmppSession::HandleResponse() {
  const smpp::Header& h = pdu_.header;
  auto it = pending_.find(h.sequence_number);
  if (it == pending_.end()) {
    LogWarn("unexpected_response", fmt::format("command={} sequence={} status={}",
                                               CommandLabel(h.command_id), h.sequence_number,
                                               StatusLabel(h.command_status)));
    return;
  }
  PendingRequest request = std::move(it->second);
  pending_.erase(it);
  const bool nack = h.command_id == CommandId::kGenericNack;
  if (!nack && smpp::ResponseIdFor(request.command) != h.command_id) {
    LogWarn("mismatched_response",
            fmt::format("sequence={} request={} response={}", h.sequence_number,
                        CommandLabel(request.command), CommandLabel(h.command_id)));
  }
  switch (request.command) {
    case CommandId::kBindTransceiver:
    case CommandId::kBindReceiver:
    case CommandId::kBindTransmitter: {
      if (h.command_status == st::kOk && !nack) {
        if (auto* body = std::get_if<smpp::BindRespBody>(&pdu_.body)) {
          LinkLog().debug("event=bind_resp link={} session={} smsc_system_id={}",
                        options_.link_name, session_id_, body->system_id);
        }
        SetBound(options_.bind_kind);
      } else {
        const uint32_t status = h.command_status == st::kOk ? st::kBindFail : h.command_status;
        metrics_->BindFailed(StatusLabel(status));
        if (auto owner = owner_.lock()) owner->OnSessionBindRefused(shared_from_this(), status);
        CloseNow(CloseReason::kBindRefused,
                 fmt::format("bind refused: {}", smpp::FormatCommandStatus(status)));
      }
      return;
    }
    case CommandId::kEnquireLink:
      enquire_pending_ = false;
      return;
    case CommandId::kUnbind:
      CloseNow(CloseReason::kLocalUnbind, "unbind acknowledged");
      return;
    case CommandId::kSubmitSm:
      --submits_in_flight_;
      window_in_use_.fetch_sub(1, std::memory_order_relaxed);
      metrics_->WindowReleased();
      OnSubmitResponse(std::move(request.job), pdu_);
      MaybeFinishDrain();
      Pump();
      return;
    default:
      return;
  }
}

// --- Writing -------------------------------------------------------------------------------

bool SmppSession::Send(const smpp::Pdu& pdu) {
  if (state_ == State::kClosed) return false;
  std::string wire;
  smpp::EncodeError err = smpp::Encode(pdu, &wire);
  if (err != smpp::EncodeError::kNone) {
    LinkLog().error("event=encode_failed link={} session={} command={} error={}",
                  options_.link_name, session_id_, CommandLabel(pdu.header.command_id),
                  Quote(smpp::EncodeErrorName(err)));
    return false;
  }
  metrics_->Pdu(PduDirection::kOut, CommandLabel(pdu.header.command_id),
                StatusLabel(pdu.header.command_status));
  outq_.push_back(std::move(wire));
  Flush();
  return true;
}

void SmppSession::SendResponse(const smpp::Header& request, uint32_t status) {
  Send(smpp::MakeResponseFor(request, status));
}

uint32_t SmppSession::SendRequest(smpp::Pdu pdu, std::unique_ptr<SubmitJob> job) {
  const uint32_t sequence = next_sequence_;
  next_sequence_ = next_sequence_ >= 0x7FFFFFFF ? 1 : next_sequence_ + 1;
  pdu.header.sequence_number = sequence;
  PendingRequest request{pdu.header.command_id, Clock::now() + options_.response_timeout,
                         std::move(job)};
  if (pdu.header.command_id == CommandId::kUnbind) {
    request.deadline = Clock::now() + options_.unbind_timeout;
  }
  if (state_ == State::kClosed) {
    if (request.job) FinishSubmit(std::move(request.job), SubmitOutcome::kLinkDown, 0, "");
    return sequence;
  }
  if (!Send(pdu)) {
    // Could not be encoded (e.g. a short_message over 254 octets): final, nothing sent.
    if (request.job) FinishSubmit(std::move(request.job), SubmitOutcome::kRejected, 0, "");
    return sequence;
  }
  if (request.job) {
    ++request.job->attempts;
    request.job->sent = true;
    ++submits_in_flight_;
    window_in_use_.fetch_add(1, std::memory_order_relaxed);
    metrics_->WindowAcquired();
  }
  pending_.emplace(sequence, std::move(request));
  return sequence;
}

void SmppSession::Flush() {
  if (write_in_progress_ || outq_.empty() || state_ == State::kClosed) return;
  writing_.clear();
  while (!outq_.empty() && writing_.size() < 64) {
    writing_.push_back(std::move(outq_.front()));
    outq_.pop_front();
  }
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const auto& w : writing_) buffers.push_back(asio::buffer(w));
  write_in_progress_ = true;
  transport_->AsyncWrite(buffers, [self = shared_from_this()](
                                      const boost::system::error_code& ec, size_t) {
    self->write_in_progress_ = false;
    self->writing_.clear();
    if (self->state_ == State::kClosed) return;
    if (ec) {
      self->CloseNow(CloseReason::kIoError, "write failed: " + ec.message());
      return;
    }
    if (self->outq_.empty() && self->close_after_flush_) {
      auto [reason, detail] = *self->close_after_flush_;
      self->CloseNow(reason, detail);
      return;
    }
    self->Flush();
  });
}

// --- Submits -------------------------------------------------------------------------------

void SmppSession::Submit(smpp::SubmitSm pdu, SubmitCallback done) {
  auto job = std::make_unique<SubmitJob>();
  job->pdu = std::move(pdu);
  job->done = std::move(done);
  asio::post(strand_, [self = shared_from_this(), job = std::move(job)]() mutable {
    if (self->state_ != State::kBound || !self->can_transmit()) {
      self->FinishSubmit(std::move(job), SubmitOutcome::kLinkDown, 0, "");
      return;
    }
    if (self->submit_queue_.size() >= self->options_.max_queued_submits &&
        self->submits_in_flight_ >= self->options_.window) {
      self->FinishSubmit(std::move(job), SubmitOutcome::kBusy, 0, "");
      return;
    }
    self->EnqueueSubmit(std::move(job), false);
    self->Pump();
  });
}

void SmppSession::EnqueueSubmit(std::unique_ptr<SubmitJob> job, bool front) {
  if (front) submit_queue_.push_front(std::move(job));
  else submit_queue_.push_back(std::move(job));
  queued_.fetch_add(1, std::memory_order_relaxed);
}

void SmppSession::Pump() {
  while (state_ == State::kBound && can_transmit() && !submit_queue_.empty() &&
         submits_in_flight_ < options_.window) {
    auto wait = pacer_->Acquire();
    if (wait > Clock::duration::zero()) {
      ArmPump(wait);
      return;
    }
    auto job = std::move(submit_queue_.front());
    submit_queue_.pop_front();
    queued_.fetch_sub(1, std::memory_order_relaxed);
    smpp::Pdu pdu{smpp::Header{0, CommandId::kSubmitSm, st::kOk, 0}, job->pdu};
    SendRequest(std::move(pdu), std::move(job));
  }
}

void SmppSession::ArmPump(Clock::duration wait) {
  const auto at = Clock::now() + wait;
  if (pump_armed_ && pump_at_ <= at) return;
  pump_armed_ = true;
  pump_at_ = at;
  const uint64_t generation = ++pump_generation_;
  pump_timer_.expires_at(at);
  pump_timer_.async_wait(
      [self = shared_from_this(), generation](const boost::system::error_code& ec) {
        if (ec || generation != self->pump_generation_) return;
        self->pump_armed_ = false;
        self->Pump();
      });
}

void SmppSession::OnSubmitResponse(std::unique_ptr<SubmitJob> job, const smpp::Pdu& response) {
  const uint32_t status = response.header.command_status;
  if (status == st::kOk && response.header.command_id == CommandId::kSubmitSmResp) {
    std::string message_id;
    if (auto* body = std::get_if<smpp::MessageIdRespBody>(&response.body)) {
      message_id = body->message_id;
    }
    FinishSubmit(std::move(job), SubmitOutcome::kOk, status, std::move(message_id));
    return;
  }
  if (IsThrottleStatus(status)) {
    metrics_->Throttled();
    if (job->throttle_retries < options_.throttle_max_retries &&
        (state_ == State::kBound)) {
      ++job->throttle_retries;
      job->sent = false;  // a throttle answer is definite: this attempt was not accepted
      pacer_->PauseUntil(Clock::now() + options_.throttle_pause);
      LogWarn("throttled", fmt::format("status={} pause_ms={} retry={} max_retries={}",
                                       StatusLabel(status), options_.throttle_pause.count(),
                                       job->throttle_retries, options_.throttle_max_retries));
      EnqueueSubmit(std::move(job), true);
      return;
    }
    FinishSubmit(std::move(job), SubmitOutcome::kThrottled, status, "");
    return;
  }
  if (status == st::kOk) {
    // A generic_nack with status 0 is not an acceptance.
    FinishSubmit(std::move(job), SubmitOutcome::kRejected, st::kSysErr, "");
    return;
  }
  FinishSubmit(std::move(job), SubmitOutcome::kRejected, status, "");
}

void SmppSession::FinishSubmit(std::unique_ptr<SubmitJob> job, SubmitOutcome outcome,
                               uint32_t status, std::string message_id) {
  if (!job || !job->done) return;
  SubmitResult result;
  result.outcome = outcome;
  result.command_status = status;
  result.message_id = std::move(message_id);
  result.attempts = job->attempts;
  result.sent = job->sent;
  result.link_name = options_.link_name;
  auto done = std::move(job->done);
  done(result);
}

}  // namespace donagate::daemon
