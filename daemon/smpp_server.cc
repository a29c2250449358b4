#include "daemon/smpp_server.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "daemon/logging.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace donagate::daemon {
namespace {

// Peer-supplied text made safe for one log line.
std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F && c != '"' && c != '\\' ? c : '?');
  }
  return out;
}

asio::ip::address Unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  constexpr size_t kWidth = 64;
  std::array<unsigned char, kWidth> pa{};
  std::array<unsigned char, kWidth> pb{};
  std::memcpy(pa.data(), a.data(), std::min(a.size(), kWidth));
  std::memcpy(pb.data(), b.data(), std::min(b.size(), kWidth));
  const int content = CRYPTO_memcmp(pa.data(), pb.data(), kWidth);
  const size_t length_diff = a.size() ^ b.size();
  const size_t too_long = (a.size() > kWidth) | (b.size() > kWidth);
  return (static_cast<size_t>(content != 0) | length_diff | too_long) == 0;
}

std::optional<IpAllowlist> IpAllowlist::Parse(const std::vector<std::string>& entries,
                                              std::string* error) {
  IpAllowlist list;
  for (const auto& entry : entries) {
    boost::system::error_code ec;
    if (entry.find('/') != std::string::npos) {
      auto v4 = asio::ip::make_network_v4(entry, ec);
      if (!ec) {
        list.v4_.push_back(v4.canonical());
        continue;
      }
      auto v6 = asio::ip::make_network_v6(entry, ec);
      if (!ec) {
        list.v6_.push_back(v6.canonical());
        continue;
      }
    } else {
      auto address = asio::ip::make_address(entry, ec);
      if (!ec) {
        address = Unmapped(address);
        if (address.is_v4()) list.v4_.emplace_back(address.to_v4(), 32);
        else list.v6_.emplace_back(address.to_v6(), 128);
        continue;
      }
    }
    if (error) *error = "allowed_ips: \"" + entry + "\" is not an IP address or CIDR block";
    return std::nullopt;
  }
  return list;
}

bool IpAllowlist::Allows(const asio::ip::address& raw) const {
  if (empty()) return true;
  const asio::ip::address address = Unmapped(raw);
  if (address.is_v4()) {
    const auto v4 = address.to_v4();
    for (const auto& net : v4_) {
      // is_subnet_of is strict, so a /32 entry is compared as an address.
      if (net.prefix_length() == 32 ? net.address() == v4
                                    : asio::ip::network_v4(v4, 32).is_subnet_of(net)) {
        return true;
      }
    }
    return false;
  }
  const auto v6 = address.to_v6();
  for (const auto& net : v6_) {
    if (net.prefix_length() == 128 ? net.address() == v6
                                   : asio::ip::network_v6(v6, 128).is_subnet_of(net)) {
      return true;
    }
  }
  return false;
}

void FailedBindTracker::Expire(std::deque<Clock::time_point>& times, Clock::time_point now) {
  while (!times.empty() && now - times.front() > std::chrono::minutes(1)) times.pop_front();
}

Millis FailedBindTracker::DelayFor(const std::string& ip, Clock::time_point now) {
  auto it = failures_.find(ip);
  if (it == failures_.end()) return Millis(0);
  Expire(it->second, now);
  const int failures = static_cast<int>(it->second.size());
  if (failures == 0) {
    failures_.erase(it);
    return Millis(0);
  }
  if (failures <= max_) return Millis(0);
  return unit_ * std::min(failures - max_, 6);
}

void FailedBindTracker::RecordFailure(const std::string& ip, Clock::time_point now) {
  if (failures_.size() > 10000) {
    // Bounded memory under an address-spraying attack: drop addresses with nothing recent.
    for (auto it = failures_.begin(); it != failures_.end();) {
      Expire(it->second, now);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
  }
  auto& times = failures_[ip];
  Expire(times, now);
  times.push_back(now);
  if (times.size() > static_cast<size_t>(max_ + 16)) times.pop_front();
}

bool ServerOptionsFromConfig(const config::SmscLink& link, ServerOptions* out,
                             std::string* error) {
  ServerOptions o;
  o.session = SessionOptionsFromConfig(link);
  o.session.role = SessionRole::kSmsc;
  o.session.system_id = "donagate";
  o.session.password.clear();
  o.listen_host = link.host.empty() ? "0.0.0.0" : link.host;
  o.port = link.port;
  o.account_system_id = link.system_id;
  o.account_password = link.password.Reveal();
  o.allowed_ips = link.allowed_ips;
  o.max_binds_per_account = link.max_binds_per_account;
  o.max_failed_binds_per_ip = link.max_failed_binds_per_ip;
  o.failed_bind_delay = std::chrono::seconds(link.failed_bind_delay_s);
  o.tps = link.tps;
  if (link.tls.enabled) {
    std::string tls_error;
    o.tls = MakeTlsContext(link.tls, TlsRole::kServer, &tls_error);
    if (!o.tls) {
      if (error) *error = "link " + link.name + ": " + tls_error;
      return false;
    }
  }
  *out = std::move(o);
  return true;
}

std::shared_ptr<SmppServer> SmppServer::Create(asio::any_io_executor executor,
                                               ServerOptions options, InboundHandler* handler,
                                               std::shared_ptr<LinkMetrics> metrics,
                                               std::string* error) {
  auto allowlist = IpAllowlist::Parse(options.allowed_ips, error);
  if (!allowlist) return nullptr;
  return std::shared_ptr<SmppServer>(new SmppServer(std::move(executor), std::move(options),
                                                    std::move(*allowlist), handler,
                                                    std::move(metrics)));
}

SmppServer::SmppServer(asio::any_io_executor executor, ServerOptions options,
                       IpAllowlist allowlist, InboundHandler* handler,
                       std::shared_ptr<LinkMetrics> metrics)
    : executor_(executor),
      strand_(asio::make_strand(executor)),
      options_(std::move(options)),
      allowlist_(std::move(allowlist)),
      handler_(handler),
      metrics_(std::move(metrics)),
      pacer_(std::make_shared<SubmitPacer>(options_.tps)),
      failed_binds_(options_.max_failed_binds_per_ip, options_.failed_bind_delay) {
  options_.session.role = SessionRole::kSmsc;
  status_.name = options_.session.link_name;
  status_.operator_name = options_.session.operator_name;
  status_.mode = "server";
  status_.state = LinkState::kStopped;
  status_.state_since = std::chrono::system_clock::now();
  metrics_->SetUp(false);
}

SmppServer::~SmppServer() = default;

void SmppServer::Start() {
  std::string error;
  if (!StartListening(&error)) {
    LinkLog().error("event=listen_failed link={} error={}", name(), Quote(error));
    std::lock_guard lock(status_mu_);
    status_.last_error = error;
  }
}

bool SmppServer::StartListening(std::string* error) {
  // The socket is opened here, in the caller's thread, so that errors (port in use) are
  // returned to the caller and work before the io_context runs; the strand then adopts it.
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) {
    if (error) *error = "bad listen address " + options_.listen_host;
    return false;
  }
  auto acceptor = std::make_unique<tcp::acceptor>(strand_);
  tcp::endpoint endpoint(address, options_.port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (error) {
      *error = "listen on " + options_.listen_host + ":" + std::to_string(options_.port) + ": " +
               ec.message();
    }
    return false;
  }
  bound_port_ = acceptor->local_endpoint().port();
  std::shared_ptr<tcp::acceptor> shared(std::move(acceptor));
  asio::post(strand_, [self = shared_from_this(), shared]() mutable {
    if (self->running_) return;  // already listening: the new socket closes with `shared`
    if (self->stopping_) {
      self->stop_done_.push_back([weak = std::weak_ptr<SmppServer>(self)] {
        if (auto s = weak.lock()) s->Start();
      });
      return;
    }
    self->acceptor_ = std::make_unique<tcp::acceptor>(std::move(*shared));
    self->running_ = true;
    LinkLog().info("event=listening link={} mode=server address={}:{} tls={} allowlist={}",
                 self->name(), self->options_.listen_host, self->bound_port_.load(),
                 self->options_.tls != nullptr, !self->allowlist_.empty());
    self->UpdateState();
    self->Accept();
  });
  return true;
}

void SmppServer::Accept() {
  if (!acceptor_ || !running_) return;
  Strand session_strand = asio::make_strand(executor_);
  acceptor_->async_accept(
      session_strand, [self = shared_from_this(), session_strand](
                          const boost::system::error_code& ec, tcp::socket socket) mutable {
        asio::dispatch(self->strand_, [self, ec, session_strand,
                                       socket = std::move(socket)]() mutable {
          if (!self->running_) return;
          if (ec) {
            if (ec != asio::error::operation_aborted) {
              uint64_t suppressed = 0;
              if (LogLimiter::Links().Allow(self->name() + "/accept", &suppressed)) {
                LinkLog().warn("event=accept_failed link={} error={} suppressed={}",
                             self->name(), Quote(ec.message()), suppressed);
              }
              // Back off briefly (e.g. out of file descriptors) instead of spinning.
              auto timer = std::make_shared<asio::steady_timer>(self->strand_, Millis(100));
              timer->async_wait([self, timer](const boost::system::error_code&) { self->Accept(); });
            }
            return;
          }
          self->OnAccept(session_strand, std::move(socket));
          self->Accept();
        });
      });
}

void SmppServer::OnAccept(const Strand& session_strand, tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const std::string ip = Unmapped(remote.address()).to_string();
  if (!allowlist_.Allows(remote.address())) {
    // Counted before the close: whoever sees the connection refused also sees it counted.
    metrics_->BindFailed("ip_not_allowed");
    socket.close(ec);
    uint64_t suppressed = 0;
    if (LogLimiter::Links().Allow(name() + "/ip_refused/" + ip, &suppressed)) {
      LinkLog().warn("event=connection_refused link={} reason=ip_not_allowed ip={} suppressed={}",
                   name(), ip, suppressed);
    }
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  std::unique_ptr<Transport> transport;
  if (options_.tls) {
    transport = std::make_unique<Transport>(std::move(socket), options_.tls, TlsRole::kServer,
                                            "", false);
  } else {
    transport = std::make_unique<Transport>(std::move(socket));
  }
  auto session = std::make_shared<SmppSession>(session_strand, std::move(transport),
                                               options_.session, handler_, metrics_, pacer_,
                                               weak_from_this(), next_session_id_++);
  sessions_.push_back(SessionEntry{session, ip, false});
  {
    std::lock_guard lock(status_mu_);
    status_sessions_.push_back(session);
  }
  LinkLog().info("event=accepted link={} session={} ip={}", name(), session->id(), ip);
  session->Start();
}

SmppServer::SessionEntry* SmppServer::Find(const std::shared_ptr<SmppSession>& session) {
  for (auto& e : sessions_) {
    if (e.session == session) return &e;
  }
  return nullptr;
}

void SmppServer::AuthenticateBind(const std::shared_ptr<SmppSession>& session,
                                  const smpp::BindBody& bind, BindKind kind,
                                  std::function<void(uint32_t)> decide) {
  asio::post(strand_, [self = shared_from_this(), session, system_id = bind.system_id,
                       password = bind.password, kind, decide = std::move(decide)]() mutable {
    (void)kind;
    self->Decide(session, std::move(system_id), std::move(password), std::move(decide));
  });
}

void SmppServer::Decide(const std::shared_ptr<SmppSession>& session, std::string system_id,
                        std::string password, std::function<void(uint32_t)> decide) {
  SessionEntry* entry = Find(session);
  if (!entry || stopping_ || !running_) {
    decide(smpp::status::kSysErr);
    return;
  }
  const std::string ip = entry->ip;
  const Millis delay = failed_binds_.DelayFor(ip);
  // Both comparisons always run, so timing does not reveal which one failed.
  const bool system_id_ok = ConstantTimeEquals(system_id, options_.account_system_id);
  const bool password_ok = ConstantTimeEquals(password, options_.account_password);
  uint32_t status = smpp::status::kOk;
  std::string reason;
  if (!system_id_ok) {
    status = smpp::status::kInvSysId;
    reason = "unknown system_id";
  } else if (!password_ok) {
    status = smpp::status::kInvPaswd;
    reason = "wrong password";
  } else {
    int admitted = 0;
    for (const auto& e : sessions_) admitted += e.admitted ? 1 : 0;
    if (admitted >= options_.max_binds_per_account) {
      status = smpp::status::kBindFail;
      reason = "max_binds_per_account reached";
    }
  }
  if (status == smpp::status::kOk) {
    failed_binds_.RecordSuccess(ip);
    entry->admitted = true;
  } else {
    if (status != smpp::status::kBindFail) failed_binds_.RecordFailure(ip);
    uint64_t suppressed = 0;
    if (LogLimiter::Links().Allow(name() + "/bind_rejected/" + ip, &suppressed)) {
      LinkLog().warn("event=bind_rejected link={} session={} ip={} system_id={} status={} "
                   "reason={} answer_delay_ms={} suppressed={}",
                   name(), session->id(), ip, Quote(Printable(system_id)),
                   smpp::CommandStatusName(status), Quote(reason), delay.count(), suppressed);
    }
  }
  if (delay.count() <= 0) {
    decide(status);
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
  timer->async_wait([timer, status, decide = std::move(decide)](const boost::system::error_code&) {
    decide(status);
  });
}

void SmppServer::OnSessionBound(const std::shared_ptr<SmppSession>& session) {
  asio::post(strand_, [self = shared_from_this()] { self->UpdateState(); });
}

void SmppServer::OnSessionBindRefused(const std::shared_ptr<SmppSession>&, uint32_t) {}

void SmppServer::OnSessionClosed(const std::shared_ptr<SmppSession>& session, CloseReason,
                                 const std::string&) {
  asio::post(strand_, [self = shared_from_this(), session] {
    std::erase_if(self->sessions_, [&](const SessionEntry& e) { return e.session == session; });
    {
      std::lock_guard lock(self->status_mu_);
      std::erase(self->status_sessions_, session);
    }
    self->UpdateState();
    self->MaybeFinishStop();
  });
}

void SmppServer::Submit(smpp::SubmitSm pdu, SubmitCallback done) {
  asio::post(strand_, [self = shared_from_this(), pdu = std::move(pdu),
                       done = std::move(done)]() mutable {
    const size_t n = self->sessions_.size();
    for (size_t i = 0; i < n && self->running_; ++i) {
      auto& entry = self->sessions_[(self->round_robin_ + i) % n];
      if (entry.session->can_transmit()) {
        self->round_robin_ = (self->round_robin_ + i + 1) % n;
        entry.session->Submit(std::move(pdu), std::move(done));
        return;
      }
    }
    SubmitResult result;
    result.outcome = SubmitOutcome::kLinkDown;
    result.link_name = self->name();
    done(result);
  });
}

void SmppServer::Stop(std::chrono::milliseconds drain, std::function<void()> done) {
  asio::post(strand_, [self = shared_from_this(), drain, done = std::move(done)]() mutable {
    if (done) self->stop_done_.push_back(std::move(done));
    if (!self->running_ && !self->stopping_) {
      self->MaybeFinishStop();
      return;
    }
    if (self->stopping_) return;
    self->running_ = false;
    self->stopping_ = true;
    LinkLog().info("event=stop link={} drain_ms={} sessions={}", self->name(), drain.count(),
                 self->sessions_.size());
    if (self->acceptor_) {
      boost::system::error_code ignored;
      self->acceptor_->close(ignored);
      self->acceptor_.reset();
    }
    for (auto& e : self->sessions_) e.session->Stop(drain, nullptr);
    self->UpdateState();
    self->MaybeFinishStop();
  });
}

void SmppServer::MaybeFinishStop() {
  if (!sessions_.empty() || running_) return;
  stopping_ = false;
  UpdateState();
  auto done = std::move(stop_done_);
  stop_done_.clear();
  for (auto& d : done) d();
}

void SmppServer::UpdateState() {
  int bound = 0;
  int transmitters = 0;
  for (const auto& e : sessions_) {
    if (e.session->bound()) {
      ++bound;
      if (e.session->can_transmit()) ++transmitters;
    }
  }
  transmitters_.store(running_ ? transmitters : 0, std::memory_order_release);
  metrics_->SetUp(running_ && bound > 0);
  LinkState state = stopping_  ? LinkState::kStopping
                    : !running_ ? LinkState::kStopped
                    : bound > 0 ? LinkState::kBound
                                : LinkState::kConnecting;
  std::lock_guard lock(status_mu_);
  if (status_.state != state) {
    status_.state = state;
    status_.state_since = std::chrono::system_clock::now();
  }
  status_.bound_sessions = bound;
  status_.can_transmit = transmitters_.load() > 0;
}

LinkStatus SmppServer::Status() const {
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
