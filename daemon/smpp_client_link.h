// Client mode: we connect to the operator's SMSC and bind, as one transceiver or as a
// receiver + transmitter pair (two connections), and keep the bind alive.
//
// Contract:
//   - Each connection ("channel") reconnects on its own after any close, waiting an
//     exponential backoff with jitter between backoff_min and backoff_max (reset after a
//     successful bind). A bind refused with ESME_RINVSYSID / ESME_RINVPASWD / ESME_RBINDFAIL
//     (or any other status) waits backoff_max before the next try and is logged at error level
//     every time: wrong credentials must be noticed, not hammered.
//   - CanTransmit() is true while the transmitting channel is bound; donagate_link_up is 1 while
//     every channel is bound.
//   - Submit goes to the bound transmitting session; see Link::Submit.
//   - Stop() unbinds every channel (see Link::Stop); Start() after Stop() reconnects.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/link.h"
#include "daemon/link_metrics.h"
#include "daemon/smpp_session.h"
#include "daemon/tls_context.h"
#include "daemon/token_bucket.h"

namespace donagate::daemon {

struct ClientLinkOptions {
  SessionOptions session;  // role kEsme; bind_kind is set per channel
  std::string host;
  uint16_t port = 0;
  bool receiver_transmitter_pair = false;  // false: one transceiver
  int tps = 0;                             // 0 = unlimited
  Millis backoff_min{1000};
  Millis backoff_max{60000};
  Millis connect_timeout{10000};
  std::shared_ptr<ssl::context> tls;       // null = plain TCP
  std::string tls_server_name;             // SNI and name check; empty = host
  bool tls_verify_name = true;
};

// Converts one client-mode [[smsc]] entry. Returns false with *error (no secrets in it) when
// its TLS files cannot be loaded.
bool ClientLinkOptionsFromConfig(const config::SmscLink& link, ClientLinkOptions* out,
                                 std::string* error);

// The wait before reconnect attempt `attempt` (0-based): min * 2^attempt capped at max, then a
// uniformly random point in its upper half (never below min), so that many links dropped at
// once do not reconnect in lockstep.
Millis BackoffDelay(int attempt, Millis min, Millis max, std::mt19937_64& rng);

class SmppClientLink : public Link,
                       public SessionOwner,
                       public std::enable_shared_from_this<SmppClientLink> {
 public:
  // `handler` must outlive the link; `metrics` is this link's series.
  static std::shared_ptr<SmppClientLink> Create(asio::any_io_executor executor,
                                                ClientLinkOptions options,
                                                InboundHandler* handler,
                                                std::shared_ptr<LinkMetrics> metrics);
  ~SmppClientLink() override;

  const std::string& name() const override { return options_.session.link_name; }
  const std::string& operator_name() const override { return options_.session.operator_name; }
  void Start() override;
  void Stop(std::chrono::milliseconds drain, std::function<void()> done) override;
  bool CanTransmit() const override { return can_transmit_.load(std::memory_order_acquire); }
  void Submit(smpp::SubmitSm pdu, SubmitCallback done) override;
  LinkStatus Status() const override;

  // SessionOwner.
  void OnSessionBound(const std::shared_ptr<SmppSession>& session) override;
  void OnSessionBindRefused(const std::shared_ptr<SmppSession>& session,
                            uint32_t status) override;
  void OnSessionClosed(const std::shared_ptr<SmppSession>& session, CloseReason reason,
                       const std::string& detail) override;
  void AuthenticateBind(const std::shared_ptr<SmppSession>& session, const smpp::BindBody& bind,
                        BindKind kind, std::function<void(uint32_t)> decide) override;

 private:
  struct Channel {
    BindKind kind;
    std::shared_ptr<SmppSession> session;
    std::unique_ptr<tcp::resolver> resolver;
    std::unique_ptr<tcp::socket> connecting;
    std::unique_ptr<asio::steady_timer> timer;  // connect timeout and reconnect wait
    int attempt = 0;
    bool bind_refused = false;
    bool ever_connected = false;
    LinkState state = LinkState::kStopped;
  };

  SmppClientLink(asio::any_io_executor executor, ClientLinkOptions options,
                 InboundHandler* handler, std::shared_ptr<LinkMetrics> metrics);

  void Connect(size_t index);
  void OnConnected(size_t index, uint64_t generation);
  void ScheduleReconnect(size_t index, const std::string& why);
  Channel* ChannelOf(const std::shared_ptr<SmppSession>& session, size_t* index);
  void UpdateState(const std::string& error = "");
  void MaybeFinishStop();

  Strand strand_;
  ClientLinkOptions options_;
  InboundHandler* handler_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SubmitPacer> pacer_;
  std::vector<Channel> channels_;
  std::mt19937_64 rng_;
  uint64_t generation_ = 0;  // bumped by Stop() so stale connect callbacks do nothing
  uint64_t next_session_id_ = 1;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<std::function<void()>> stop_done_;
  std::atomic<bool> can_transmit_{false};

  mutable std::mutex status_mu_;  // guards the snapshot below (status pages, not traffic)
  LinkStatus status_;
  std::vector<std::shared_ptr<SmppSession>> status_sessions_;
};

}  // namespace donagate::daemon
