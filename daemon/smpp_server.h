// Server mode: the operator's system connects to us and binds with the account configured in
// its [[smsc]] entry. Once bound, traffic flows as in client mode (MO arrive as deliver_sm or
// data_sm, replies leave as submit_sm on a session the peer bound as transceiver or receiver);
// docs/smpp.md explains the choice.
//
// Defences, in the order a connection meets them:
//   1. source-IP allowlist (allowed_ips): other addresses are closed right after accept, before
//      a byte is read;
//   2. bind_timeout: a connection that has not bound in time is closed; a PDU that does not
//      complete within response_timeout (slow-loris) closes the connection; idle_timeout closes
//      a bound session that went silent;
//   3. authentication: system_id and password compared in constant time (CRYPTO_memcmp over
//      fixed-size zero-padded buffers, lengths compared without branching on content); wrong
//      system_id → ESME_RINVSYSID, wrong password → ESME_RINVPASWD;
//   4. failed-bind slowdown: an address with more than max_failed_binds_per_ip failures in the
//      last minute has every further bind answer delayed by failed_bind_delay_s × (failures -
//      max + 1), at most 6×; a successful bind clears its record;
//   5. max_binds_per_account: binds beyond it are refused with ESME_RBINDFAIL.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "daemon/link.h"
#include "daemon/link_metrics.h"
#include "daemon/smpp_session.h"
#include "daemon/tls_context.h"
#include "daemon/token_bucket.h"

namespace donagate::daemon {

// Equal-time comparison of secrets up to 64 bytes (longer inputs compare unequal, still
// without early exit).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Addresses and CIDR blocks (IPv4 and IPv6; IPv4-mapped IPv6 peers match IPv4 entries).
class IpAllowlist {
 public:
  // nullopt with *error naming the bad entry.
  static std::optional<IpAllowlist> Parse(const std::vector<std::string>& entries,
                                          std::string* error);
  bool empty() const { return v4_.empty() && v6_.empty(); }
  // An empty list allows everyone.
  bool Allows(const asio::ip::address& address) const;

 private:
  std::vector<asio::ip::network_v4> v4_;
  std::vector<asio::ip::network_v6> v6_;
};

// Failed binds per source address over the last minute. Not thread-safe (server strand).
class FailedBindTracker {
 public:
  using Clock = std::chrono::steady_clock;
  FailedBindTracker(int max_failures_per_minute, Millis delay_unit)
      : max_(max_failures_per_minute), unit_(delay_unit) {}
  // How long to delay the answer to a bind from `ip` now (zero when not slowed).
  Millis DelayFor(const std::string& ip, Clock::time_point now = Clock::now());
  void RecordFailure(const std::string& ip, Clock::time_point now = Clock::now());
  void RecordSuccess(const std::string& ip) { failures_.erase(ip); }

 private:
  void Expire(std::deque<Clock::time_point>& times, Clock::time_point now);
  int max_;
  Millis unit_;
  std::unordered_map<std::string, std::deque<Clock::time_point>> failures_;
};

struct ServerOptions {
  SessionOptions session;  // role kSmsc; system_id is what our bind_resp says
  std::string listen_host = "0.0.0.0";
  uint16_t port = 0;       // 0 = any free port (tests); see bound_port()
  std::string account_system_id;
  std::string account_password;  // never logged
  std::vector<std::string> allowed_ips;
  int max_binds_per_account = 2;
  int max_failed_binds_per_ip = 5;
  Millis failed_bind_delay{10000};
  int tps = 0;
  std::shared_ptr<ssl::context> tls;  // null = plain TCP
};

bool ServerOptionsFromConfig(const config::SmscLink& link, ServerOptions* out,
                             std::string* error);

class SmppServer : public Link,
                   public SessionOwner,
                   public std::enable_shared_from_this<SmppServer> {
 public:
  // Returns nullptr with *error when allowed_ips does not parse.
  static std::shared_ptr<SmppServer> Create(asio::any_io_executor executor, ServerOptions options,
                                            InboundHandler* handler,
                                            std::shared_ptr<LinkMetrics> metrics,
                                            std::string* error);
  ~SmppServer() override;

  const std::string& name() const override { return options_.session.link_name; }
  const std::string& operator_name() const override { return options_.session.operator_name; }
  // Binds the listening socket synchronously (so a port conflict is reported at start-up and
  // tests know the port), then accepts in the background. Errors are logged and kept in
  // Status().last_error; see StartListening for a checked variant.
  void Start() override;
  bool StartListening(std::string* error);
  void Stop(std::chrono::milliseconds drain, std::function<void()> done) override;
  bool CanTransmit() const override { return transmitters_.load(std::memory_order_acquire) > 0; }
  // Round-robin over the bound sessions that can transmit.
  void Submit(smpp::SubmitSm pdu, SubmitCallback done) override;
  LinkStatus Status() const override;

  // The port actually listened on (after Start).
  uint16_t bound_port() const { return bound_port_.load(); }

  // SessionOwner (called on session strands; work is moved to the server strand).
  void OnSessionBound(const std::shared_ptr<SmppSession>& session) override;
  void OnSessionBindRefused(const std::shared_ptr<SmppSession>& session,
                            uint32_t status) override;
  void OnSessionClosed(const std::shared_ptr<SmppSession>& session, CloseReason reason,
                       const std::string& detail) override;
  void AuthenticateBind(const std::shared_ptr<SmppSession>& session, const smpp::BindBody& bind,
                        BindKind kind, std::function<void(uint32_t)> decide) override;

 private:
  struct SessionEntry {
    std::shared_ptr<SmppSession> session;
    std::string ip;
    bool admitted = false;  // counted against max_binds_per_account
  };

  SmppServer(asio::any_io_executor executor, ServerOptions options, IpAllowlist allowlist,
             InboundHandler* handler, std::shared_ptr<LinkMetrics> metrics);

  void Accept();
  void OnAccept(const Strand& session_strand, tcp::socket socket);
  SessionEntry* Find(const std::shared_ptr<SmppSession>& session);
  void Decide(const std::shared_ptr<SmppSession>& session, std::string system_id,
              std::string password, std::function<void(uint32_t)> decide);
  void UpdateState();
  void MaybeFinishStop();

  asio::any_io_executor executor_;
  Strand strand_;
  ServerOptions options_;
  IpAllowlist allowlist_;
  InboundHandler* handler_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SubmitPacer> pacer_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::atomic<uint16_t> bound_port_{0};
  FailedBindTracker failed_binds_;
  std::vector<SessionEntry> sessions_;
  size_t round_robin_ = 0;
  uint64_t next_session_id_ = 1;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<std::function<void()>> stop_done_;
  std::atomic<int> transmitters_{0};

  mutable std::mutex status_mu_;
  LinkStatus status_;
  std::vector<std::shared_ptr<SmppSession>> status_sessions_;
};

}  // namespace donagate::daemon
