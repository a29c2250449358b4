#include "daemon/smpp_client_link.h"

#include <spdlog/spdlog.h>

#include "daemon/logging.h"

#include <algorithm>

namespace donagate::daemon {

bool ClientLinkOptionsFromConfig(const config::SmscLink& link, ClientLinkOptions* out,
                                 std::string* error) {
  ClientLinkOptions o;
  o.session = SessionOptionsFromConfig(link);
  o.session.role = SessionRole::kEsme;
  o.host = link.host;
  o.port = link.port;
  o.receiver_transmitter_pair = link.bind_type == config::BindType::kReceiverTransmitter;
  o.tps = link.tps;
  o.backoff_min = std::chrono::seconds(link.reconnect_backoff_min_s);
  o.backoff_max = std::chrono::seconds(std::max(link.reconnect_backoff_max_s,
                                                link.reconnect_backoff_min_s));
  o.connect_timeout = std::chrono::seconds(link.response_timeout_s);
  if (link.tls.enabled) {
    std::string tls_error;
    o.tls = MakeTlsContext(link.tls, TlsRole::kClient, &tls_error);
    if (!o.tls) {
      if (error) *error = "link " + link.name + ": " + tls_error;
      return false;
    }
    o.tls_server_name = link.tls.server_name.empty() ? link.host : link.tls.server_name;
    o.tls_verify_name = link.tls.verify_peer;
  }
  *out = std::move(o);
  return true;
}

Millis BackoffDelay(int attempt, Millis min, Millis max, std::mt19937_64& rng) {
  if (max < min) max = min;
  Millis base = min;
  for (int i = 0; i < attempt && base < max; ++i) base *= 2;
  base = std::min(base, max);
  const int64_t low = std::max<int64_t>(min.count(), base.count() / 2);
  const int64_t high = std::max<int64_t>(low, base.count());
  std::uniform_int_distribution<int64_t> pick(low, high);
  return Millis(pick(rng));
}

std::shared_ptr<SmppClientLink> SmppClientLink::Create(asio::any_io_executor executor,
                                                       ClientLinkOptions options,
                                                       InboundHandler* handler,
                                                       std::shared_ptr<LinkMetrics> metrics) {
  return std::shared_ptr<SmppClientLink>(
      new SmppClientLink(std::move(executor), std::move(options), handler, std::move(metrics)));
}

SmppClientLink::SmppClientLink(asio::any_io_executor executor, ClientLinkOptions options,
                               InboundHandler* handler, std::shared_ptr<LinkMetrics> metrics)
    : strand_(asio::make_strand(executor)),
      options_(std::move(options)),
      handler_(handler),
      metrics_(std::move(metrics)),
      pacer_(std::make_shared<SubmitPacer>(options_.tps)),
      rng_(std::random_device{}()) {
  options_.session.role = SessionRole::kEsme;
  auto add = [&](BindKind kind) {
    Channel ch;
    ch.kind = kind;
    ch.timer = std::make_unique<asio::steady_timer>(strand_);
    channels_.push_back(std::move(ch));
  };
  if (options_.receiver_transmitter_pair) {
    add(BindKind::kReceiver);
    add(BindKind::kTransmitter);
  } else {
    add(BindKind::kTransceiver);
  }
  status_.name = options_.session.link_name;
  status_.operator_name = options_.session.operator_name;
  status_.mode = "client";
  status_.state = LinkState::kStopped;
  status_.state_since = std::chrono::system_clock::now();
  metrics_->SetUp(false);
}

SmppClientLink::~SmppClientLink() = default;

void SmppClientLink::Start() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->running_) return;
    if (self->stopping_) {
      // Start after the stop completes.
      self->stop_done_.push_back([weak = std::weak_ptr<SmppClientLink>(self)] {
        if (auto s = weak.lock()) s->Start();
      });
      return;
    }
    self->running_ = true;
    LinkLog().info("event=start link={} mode=client host={} port={} bind={} tls={}",
                 self->name(), self->options_.host, self->options_.port,
                 self->options_.receiver_transmitter_pair ? "receiver_transmitter" : "transceiver",
                 self->options_.tls != nullptr);
    for (size_t i = 0; i < self->channels_.size(); ++i) {
      self->channels_[i].attempt = 0;
      self->Connect(i);
    }
    self->UpdateState();
  });
}

void SmppClientLink::Connect(size_t index) {
  Channel& ch = channels_[index];
  ch.state = LinkState::kConnecting;
  ch.bind_refused = false;
  const uint64_t generation = generation_;
  ch.resolver = std::make_unique<tcp::resolver>(strand_);
  ch.resolver->async_resolve(
      options_.host, std::to_string(options_.port),
      [self = shared_from_this(), index, generation](const boost::system::error_code& ec,
                                                     tcp::resolver::results_type results) {
        if (generation != self->generation_ || !self->running_) return;
        Channel& ch = self->channels_[index];
        if (ec) {
          self->ScheduleReconnect(index, "resolve " + self->options_.host + ": " + ec.message());
          return;
        }
        ch.connecting = std::make_unique<tcp::socket>(self->strand_);
        ch.timer->expires_after(self->options_.connect_timeout);
        ch.timer->async_wait([self, index, generation](const boost::system::error_code& ec) {
          if (ec || generation != self->generation_) return;
          Channel& ch = self->channels_[index];
          if (ch.connecting) {
            boost::system::error_code ignored;
            ch.connecting->close(ignored);  // the connect handler reports the failure
          }
        });
        asio::async_connect(
            *ch.connecting, results,
            [self, index, generation](const boost::system::error_code& ec, const tcp::endpoint&) {
              if (generation != self->generation_ || !self->running_) return;
              Channel& ch = self->channels_[index];
              ch.timer->cancel();
              if (ec) {
                ch.connecting.reset();
                self->ScheduleReconnect(index, "connect " + self->options_.host + ":" +
                                                   std::to_string(self->options_.port) + ": " +
                                                   ec.message());
                return;
              }
              self->OnConnected(index, generation);
            });
      });
  UpdateState();
}

void SmppClientLink::OnConnected(size_t index, uint64_t generation) {
  Channel& ch = channels_[index];
  tcp::socket socket = std::move(*ch.connecting);
  ch.connecting.reset();
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  std::unique_ptr<Transport> transport;
  if (options_.tls) {
    transport = std::make_unique<Transport>(std::move(socket), options_.tls, TlsRole::kClient,
                                            options_.tls_server_name, options_.tls_verify_name);
  } else {
    transport = std::make_unique<Transport>(std::move(socket));
  }
  SessionOptions session_options = options_.session;
  session_options.bind_kind = ch.kind;
  ch.session = std::make_shared<SmppSession>(strand_, std::move(transport),
                                             std::move(session_options), handler_, metrics_,
                                             pacer_, weak_from_this(), next_session_id_++);
  ch.state = LinkState::kBinding;
  ch.ever_connected = true;
  {
    std::lock_guard lock(status_mu_);
    status_sessions_.push_back(ch.session);
  }
  ch.session->Start();
  UpdateState();
}

void SmppClientLink::ScheduleReconnect(size_t index, const std::string& why) {
  Channel& ch = channels_[index];
  if (!running_ || stopping_) return;
  Millis delay = ch.bind_refused
                     ? options_.backoff_max
                     : BackoffDelay(ch.attempt++, options_.backoff_min, options_.backoff_max, rng_);
  ch.state = ch.bind_refused ? LinkState::kBindRefused : LinkState::kBackoff;
  if (!ch.bind_refused) {
    uint64_t suppressed = 0;
    if (LogLimiter::Links().Allow(name() + "/reconnect", &suppressed)) {
      LinkLog().warn("event=reconnect_scheduled link={} bind={} why={} delay_ms={} attempt={} "
                   "suppressed={}",
                   name(), ToString(ch.kind), Quote(why), delay.count(), ch.attempt, suppressed);
    }
  }
  UpdateState(why);
  const uint64_t generation = generation_;
  ch.timer->expires_after(delay);
  ch.timer->async_wait([self = shared_from_this(), index, generation](
                           const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || !self->running_) return;
    self->metrics_->Reconnecting();
    self->Connect(index);
  });
}

SmppClientLink::Channel* SmppClientLink::ChannelOf(const std::shared_ptr<SmppSession>& session,
                                                   size_t* index) {
  for (size_t i = 0; i < channels_.size(); ++i) {
    if (channels_[i].session == session) {
      if (index) *index = i;
      return &channels_[i];
    }
  }
  return nullptr;
}

void SmppClientLink::OnSessionBound(const std::shared_ptr<SmppSession>& session) {
  Channel* ch = ChannelOf(session, nullptr);
  if (!ch) return;
  ch->attempt = 0;
  ch->bind_refused = false;
  ch->state = LinkState::kBound;
  UpdateState();
}

void SmppClientLink::OnSessionBindRefused(const std::shared_ptr<SmppSession>& session,
                                          uint32_t status) {
  Channel* ch = ChannelOf(session, nullptr);
  if (!ch) return;
  ch->bind_refused = true;
  const bool credentials = status == smpp::status::kInvSysId ||
                           status == smpp::status::kInvPaswd ||
                           status == smpp::status::kBindFail;
  // Loud on purpose, every time: a wrong password is an outage until someone fixes it.
  LinkLog().error("event=bind_refused link={} bind={} status={} system_id={} credentials={} "
                "retry_in_ms={} action={}",
                name(), ToString(ch->kind), Quote(smpp::FormatCommandStatus(status)),
                options_.session.system_id, credentials, options_.backoff_max.count(),
                Quote(credentials ? "check system_id and password with the operator"
                                  : "check the bind settings with the operator"));
}

void SmppClientLink::OnSessionClosed(const std::shared_ptr<SmppSession>& session,
                                     CloseReason reason, const std::string& detail) {
  {
    std::lock_guard lock(status_mu_);
    std::erase(status_sessions_, session);
  }
  size_t index = 0;
  Channel* ch = ChannelOf(session, &index);
  if (!ch) return;
  ch->session.reset();
  if (stopping_) {
    ch->state = LinkState::kStopped;
    MaybeFinishStop();
    return;
  }
  std::string why = std::string(ToString(reason)) + ": " + detail;
  if (ch->bind_refused) why = detail;
  ScheduleReconnect(index, why);
}

void SmppClientLink::AuthenticateBind(const std::shared_ptr<SmppSession>&, const smpp::BindBody&,
                                      BindKind, std::function<void(uint32_t)> decide) {
  decide(smpp::status::kInvBndSts);  // never called for kEsme sessions
}

void SmppClientLink::Stop(std::chrono::milliseconds drain, std::function<void()> done) {
  asio::post(strand_, [self = shared_from_this(), drain, done = std::move(done)]() mutable {
    if (done) self->stop_done_.push_back(std::move(done));
    if (!self->running_ && !self->stopping_) {
      self->MaybeFinishStop();
      return;
    }
    if (self->stopping_) return;
    self->running_ = false;
    self->stopping_ = true;
    ++self->generation_;
    LinkLog().info("event=stop link={} drain_ms={}", self->name(), drain.count());
    for (auto& ch : self->channels_) {
      ch.timer->cancel();
      if (ch.resolver) ch.resolver->cancel();
      if (ch.connecting) {
        boost::system::error_code ignored;
        ch.connecting->close(ignored);
        ch.connecting.reset();
      }
      if (ch.session) ch.session->Stop(drain, nullptr);
      else ch.state = LinkState::kStopped;
    }
    self->UpdateState();
    self->MaybeFinishStop();
  });
}

void SmppClientLink::MaybeFinishStop() {
  for (const auto& ch : channels_) {
    if (ch.session) return;
  }
  stopping_ = false;
  UpdateState();
  auto done = std::move(stop_done_);
  stop_done_.clear();
  for (auto& d : done) d();
}

void SmppClientLink::UpdateState(const std::string& error) {
  bool all_bound = true;
  bool transmit = false;
  int bound = 0;
  LinkState worst = LinkState::kBound;
  auto rank = [](LinkState s) {
    switch (s) {
      case LinkState::kBindRefused: return 5;
      case LinkState::kBackoff: return 4;
      case LinkState::kConnecting: return 3;
      case LinkState::kBinding: return 2;
      default: return 0;
    }
  };
  for (const auto& ch : channels_) {
    const bool ch_bound = ch.session && ch.session->bound();
    if (ch_bound) {
      ++bound;
      if (ch.session->can_transmit()) transmit = true;
    } else {
      all_bound = false;
      if (rank(ch.state) > rank(worst)) worst = ch.state;
    }
  }
  LinkState state;
  if (stopping_) state = LinkState::kStopping;
  else if (!running_) state = LinkState::kStopped;
  else if (all_bound) state = LinkState::kBound;
  else state = worst;
  can_transmit_.store(transmit && running_ && !stopping_, std::memory_order_release);
  metrics_->SetUp(all_bound && running_ && !stopping_);
  std::lock_guard lock(status_mu_);
  if (status_.state != state) {
    status_.state = state;
    status_.state_since = std::chrono::system_clock::now();
  }
  status_.bound_sessions = bound;
  status_.can_transmit = can_transmit_.load();
  if (!error.empty()) status_.last_error = error;
}

void SmppClientLink::Submit(smpp::SubmitSm pdu, SubmitCallback done) {
  asio::post(strand_, [self = shared_from_this(), pdu = std::move(pdu),
                       done = std::move(done)]() mutable {
    for (auto& ch : self->channels_) {
      if (ch.session && ch.session->can_transmit()) {
        ch.session->Submit(std::move(pdu), std::move(done));
        return;
      }
    }
    SubmitResult result;
    result.outcome = SubmitOutcome::kLinkDown;
    result.link_name = self->name();
    done(result);
  });
}

LinkStatus SmppClientLink::Status() const {
  std::lock_guard lock(status_mu_);
  LinkStatus s = status_;
  s.throttled = pacer_->Paused();
  for (const auto& session : status_sessions_) {
    s.window_in_use += session->window_in_use();
    s.queued_submits += session->queued_submits();
    s.pending_inbound += session->pending_inbound();
  }
  return s;
}

}  // namespace donagate::daemon
