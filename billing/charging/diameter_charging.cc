#include "billing/charging/diameter_charging.h"

#include "billing/charging/tls_client.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace donagate::billing {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using steady_clock = std::chrono::steady_clock;
using namespace diameter;

namespace diameter {

std::string SessionIdFor(const std::string& origin_host, const std::string& key, bool refund) {
  return origin_host + (refund ? ";refund;" : ";") + key;
}

namespace {

uint32_t PerCampaign(const std::map<std::string, uint32_t>& table, const std::string& campaign, uint32_t fallback) {
  auto it = table.find(campaign);
  return it == table.end() ? fallback : it->second;
}

Message BuildEvent(const DiameterChargingOptions& o, const std::string& session_id, const std::string& key,
                   const std::string& msisdn, const std::string& campaign, int64_t amount_vnd,
                   uint32_t requested_action, uint32_t end_to_end) {
  Message m;
  m.flags = kFlagRequest | kFlagProxiable;
  m.command = kCmdCreditControl;
  m.application = kAppCreditControl;
  m.end_to_end = end_to_end;
  m.avps.push_back(Avp::OctetString(kAvpSessionId, session_id));
  m.avps.push_back(Avp::OctetString(kAvpOriginHost, o.origin_host));
  m.avps.push_back(Avp::OctetString(kAvpOriginRealm, o.origin_realm));
  m.avps.push_back(Avp::OctetString(kAvpDestinationRealm, o.destination_realm));
  if (!o.destination_host.empty()) m.avps.push_back(Avp::OctetString(kAvpDestinationHost, o.destination_host));
  m.avps.push_back(Avp::Unsigned32(kAvpAuthApplicationId, kAppCreditControl));
  m.avps.push_back(Avp::OctetString(kAvpServiceContextId, o.service_context_id));
  m.avps.push_back(Avp::Unsigned32(kAvpCcRequestType, kCcRequestTypeEvent));
  m.avps.push_back(Avp::Unsigned32(kAvpCcRequestNumber, 0));
  m.avps.push_back(Avp::Unsigned32(kAvpRequestedAction, requested_action));
  // Event-Timestamp is deliberately absent: a retransmission must be byte-identical apart from
  // the T flag and the hop-by-hop id.
  if (!msisdn.empty()) {
    m.avps.push_back(Avp::Grouped(kAvpSubscriptionId, {Avp::Unsigned32(kAvpSubscriptionIdType, kSubscriptionIdTypeE164),
                                                       Avp::OctetString(kAvpSubscriptionIdData, msisdn)}));
  }
  const uint32_t service_id = PerCampaign(o.campaign_service_identifiers, campaign, o.service_identifier);
  if (service_id != 0) m.avps.push_back(Avp::Unsigned32(kAvpServiceIdentifier, service_id));
  const uint32_t rating_group = PerCampaign(o.campaign_rating_groups, campaign, o.rating_group);
  if (rating_group != 0) m.avps.push_back(Avp::Unsigned32(kAvpRatingGroup, rating_group));
  Avp unit_value = Avp::Grouped(kAvpUnitValue, {Avp::Integer64(kAvpValueDigits, amount_vnd)});
  Avp money = Avp::Grouped(kAvpCcMoney, {unit_value, Avp::Unsigned32(kAvpCurrencyCode, kCurrencyCodeVnd)});
  m.avps.push_back(Avp::Grouped(kAvpRequestedServiceUnit, {money}));
  m.avps.push_back(Avp::OctetString(o.idempotency_avp_code, key, o.idempotency_avp_vendor));
  return m;
}

}  // namespace

Message BuildDirectDebit(const DiameterChargingOptions& o, const ChargeRequest& r, uint32_t end_to_end) {
  return BuildEvent(o, SessionIdFor(o.origin_host, r.idempotency_key, false), r.idempotency_key, r.msisdn,
                    r.campaign, r.amount_vnd, kRequestedActionDirectDebiting, end_to_end);
}

Message BuildRefund(const DiameterChargingOptions& o, const std::string& key, int64_t amount_vnd, uint32_t end_to_end) {
  return BuildEvent(o, SessionIdFor(o.origin_host, key, true), key, {}, {}, amount_vnd, kRequestedActionRefundAccount,
                    end_to_end);
}

std::string_view ResultCodeName(uint32_t rc) {
  switch (rc) {
    case 2001: return "DIAMETER_SUCCESS";
    case 3001: return "DIAMETER_COMMAND_UNSUPPORTED";
    case 3002: return "DIAMETER_UNABLE_TO_DELIVER";
    case 3003: return "DIAMETER_REALM_NOT_SERVED";
    case 3004: return "DIAMETER_TOO_BUSY";
    case 4010: return "DIAMETER_END_USER_SERVICE_DENIED";
    case 4011: return "DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE";
    case 4012: return "DIAMETER_CREDIT_LIMIT_REACHED";
    case 5001: return "DIAMETER_AVP_UNSUPPORTED";
    case 5005: return "DIAMETER_MISSING_AVP";
    case 5030: return "DIAMETER_USER_UNKNOWN";
    case 5031: return "DIAMETER_RATING_FAILED";
    default: return "other";
  }
}

namespace {
std::string Describe(uint32_t rc) { return "Result-Code " + std::to_string(rc) + " " + std::string(ResultCodeName(rc)); }
}  // namespace

ChargeResult MapResultCode(uint32_t rc, const std::string& reference) {
  switch (rc) {
    case kResultSuccess: return ChargeResult::Charged(reference, Describe(rc));
    case kResultCreditLimitReached: return ChargeResult::Of(ChargeOutcome::kInsufficientFunds, Describe(rc));
    case kResultEndUserServiceDenied: return ChargeResult::Of(ChargeOutcome::kSubscriberBarred, Describe(rc));
    case kResultUserUnknown: return ChargeResult::Of(ChargeOutcome::kRejected, Describe(rc));
    case kResultTooBusy:
    case kResultUnableToDeliver: return ChargeResult::Of(ChargeOutcome::kUnavailable, Describe(rc), true);
    default: break;
  }
  // Protocol errors (3xxx) and transient failures (4xxx) mean "not performed now"; permanent
  // failures (5xxx) are a refusal; anything else (1xxx, unknown 2xxx) proves nothing.
  if (rc >= 3000 && rc < 5000) return ChargeResult::Of(ChargeOutcome::kUnavailable, Describe(rc), true);
  if (rc >= 5000 && rc < 6000) return ChargeResult::Of(ChargeOutcome::kRejected, Describe(rc));
  return ChargeResult::Of(ChargeOutcome::kUnknown, Describe(rc), true);
}

RefundResult MapRefundResultCode(uint32_t rc) {
  if (rc == kResultSuccess) return RefundResult{RefundOutcome::kRefunded, Describe(rc), false};
  if (rc == kResultUserUnknown) return RefundResult{RefundOutcome::kNotFound, Describe(rc), false};
  if (rc >= 3000 && rc < 5000) return RefundResult{RefundOutcome::kUnavailable, Describe(rc), true};
  if (rc >= 5000 && rc < 6000) return RefundResult{RefundOutcome::kRejected, Describe(rc), false};
  return RefundResult{RefundOutcome::kUnknown, Describe(rc), true};
}

}  // namespace diameter

// ---------------------------------------------------------------------------------------------

namespace {

constexpr uint32_t kMaxMessage = 1 << 20;

// How one request ended (before mapping to a charge/refund outcome).
struct Reply {
  enum class Kind { kAnswer, kNotSent, kNoAnswer } kind = Kind::kNotSent;
  uint32_t result_code = 0;
  std::string detail;
};

struct Exchange {
  Message request;            // hop-by-hop filled per attempt
  bool sent = false;          // written to at least one peer (outcome may be unknown from here)
  uint32_t peers_tried = 0;   // bit mask of peers this exchange was written to
  steady_clock::time_point started;
  std::function<void(Reply)> done;  // on the strand
};

}  // namespace

class DiameterChargingBackend::Impl : public std::enable_shared_from_this<Impl> {
 public:
  // One connection's transport, TCP or TLS over TCP. Every handler of its operations holds it,
  // so a link closed (or replaced by a reconnect) while a read, write or handshake is pending
  // lives until they have completed: an ssl::stream must outlive its composed operations.
  struct Link {
    std::shared_ptr<ssl::context> context;  // outlives the stream
    tcp::socket plain;
    std::optional<ssl::stream<tcp::socket>> tls;
    Link(asio::strand<asio::any_io_executor>& strand, std::shared_ptr<ssl::context> ctx)
        : context(std::move(ctx)), plain(strand) {
      if (context) tls.emplace(strand, *context);
    }
    tcp::socket& socket() { return tls ? tls->next_layer() : plain; }
    template <class F>
    void With(F&& f) {
      if (tls) {
        f(*tls);
      } else {
        f(plain);
      }
    }
  };

  struct Peer {
    size_t index = 0;
    DiameterPeerAddress address;
    std::string label;
    std::shared_ptr<Link> link;  // null until the first connect
    std::unique_ptr<tcp::resolver> resolver;
    asio::steady_timer timer;  // CEA wait / watchdog / reconnect
    PeerState state = PeerState::kClosed;
    uint64_t generation = 0;   // bumped on every close: stale handlers check it
    std::array<char, 20> header{};
    std::string body;
    std::deque<std::string> out;
    bool writing = false;
    bool dwr_outstanding = false;
    steady_clock::time_point dwr_sent_at;  // Tw counts from here, whoever sent the DWR
    steady_clock::time_point last_rx;
    std::vector<std::function<void(uint32_t)>> dwa_waiters;  // Probe
    explicit Peer(asio::strand<asio::any_io_executor>& strand) : timer(strand) {}
  };

  struct Pending {
    std::shared_ptr<Exchange> exchange;
    size_t peer = 0;
    std::unique_ptr<asio::steady_timer> timer;
    steady_clock::time_point sent_at;
  };

  Impl(asio::any_io_executor executor, DiameterChargingOptions options, std::shared_ptr<ssl::context> tls)
      : executor_(executor), strand_(asio::make_strand(executor)), options_(std::move(options)),
        name_("diameter:" + options_.operator_name), tls_(std::move(tls)) {
    std::random_device rd;
    hop_by_hop_ = rd();
    // RFC 6733 §3: high 12 bits from the clock, low 20 random, so ids stay unique across restarts.
    end_to_end_ = (static_cast<uint32_t>(std::time(nullptr)) << 20) | (rd() & 0xfffff);
    origin_state_id_ = static_cast<uint32_t>(std::time(nullptr));
    for (size_t i = 0; i < options_.peers.size(); ++i) {
      auto p = std::make_unique<Peer>(strand_);
      p->index = i;
      p->address = options_.peers[i];
      p->label = p->address.host + ":" + p->address.port;
      peers_.push_back(std::move(p));
      PeerStats s;
      s.peer = peers_.back()->label;
      stats_.push_back(s);
    }
  }

  const std::string& name() const { return name_; }
  asio::any_io_executor executor() const { return executor_; }
  const DiameterChargingOptions& options() const { return options_; }

  void Start() {
    asio::post(strand_, [self = shared_from_this()] {
      for (auto& p : self->peers_) self->Connect(*p);
    });
  }

  void Shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->closed_ = true;
      for (auto& p : self->peers_) {
        if (p->state == PeerState::kOpen) {
          Message dpr = self->NewRequest(kCmdDisconnectPeer, kAppCommon);
          dpr.avps.push_back(Avp::Unsigned32(kAvpDisconnectCause, kDisconnectCauseRebooting));
          self->Write(*p, Encode(dpr));
        }
        p->timer.cancel();
      }
      // Give the DPRs a moment on the wire, then close everything.
      auto t = std::make_shared<asio::steady_timer>(self->strand_, std::chrono::milliseconds(100));
      t->async_wait([self, t](const boost::system::error_code&) {
        for (auto& p : self->peers_) self->Close(*p, "shutdown");
        self->FailWaiting("backend shut down");
      });
    });
  }

  // Sends `exchange` (new or a retransmission) on the strand.
  void Submit(std::shared_ptr<Exchange> exchange) {
    asio::post(strand_, [self = shared_from_this(), exchange = std::move(exchange)]() mutable {
      exchange->started = steady_clock::now();
      self->Send(std::move(exchange));
    });
  }

  // Remembers the CCR of a key for Status retransmissions (bounded; oldest dropped). Kept
  // encoded (about 250 bytes) rather than as a Message (a vector of AVP strings, ~4x that).
  void Remember(const std::string& key, const Message& request) {
    std::string bytes = Encode(request);
    std::lock_guard<std::mutex> lock(remembered_mutex_);
    auto [it, inserted] = remembered_.emplace(key, bytes);
    if (!inserted) {
      it->second = std::move(bytes);
      return;
    }
    remembered_order_.push_back(key);
    while (remembered_order_.size() > options_.remembered_requests) {
      remembered_.erase(remembered_order_.front());
      remembered_order_.pop_front();
    }
  }

  std::optional<Message> Remembered(const std::string& key) {
    std::string bytes;
    {
      std::lock_guard<std::mutex> lock(remembered_mutex_);
      auto it = remembered_.find(key);
      if (it == remembered_.end()) return std::nullopt;
      bytes = it->second;
    }
    std::string error;
    return Decode(bytes, &error);  // our own encoding: always decodes
  }

  // Keys Status() was asked about but had no request for: their next Charge is a retransmission.
  void MarkRetransmit(const std::string& key) {
    std::lock_guard<std::mutex> lock(remembered_mutex_);
    retransmit_keys_.insert(key);
  }
  bool TakeRetransmit(const std::string& key) {
    std::lock_guard<std::mutex> lock(remembered_mutex_);
    return retransmit_keys_.erase(key) > 0;
  }

  uint32_t NextEndToEnd() { return end_to_end_.fetch_add(1); }

  std::vector<PeerStats> peer_stats() const {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    return stats_;
  }

  void Probe(std::chrono::milliseconds wait, std::function<void(ProbeResult)> done) {
    auto timer = std::make_shared<asio::steady_timer>(strand_, wait);
    timer->async_wait([self = shared_from_this(), timer, done = std::move(done)](const boost::system::error_code&) mutable {
      struct Collect {
        ProbeResult result;
        size_t outstanding = 0;
        std::function<void(ProbeResult)> done;
        std::vector<std::string> lines;
      };
      auto c = std::make_shared<Collect>();
      c->done = std::move(done);
      c->lines.resize(self->peers_.size());
      auto finish = [self, c] {
        for (auto& l : c->lines) c->result.lines.push_back(l);
        asio::post(self->executor_, [c] { c->done(c->result); });
      };
      for (auto& p : self->peers_) {
        std::string origin, tls, last_close;
        {
          std::lock_guard<std::mutex> lock(self->stats_mutex_);
          origin = self->stats_[p->index].remote_origin_host;
          tls = self->stats_[p->index].tls_version;
          last_close = self->stats_[p->index].last_close_reason;
        }
        if (p->state != PeerState::kOpen) {
          c->lines[p->index] = p->label + ": not open (capabilities exchange did not complete" +
                               (last_close.empty() ? std::string() : "; last: " + last_close) + ")";
          continue;
        }
        ++c->outstanding;
        const auto sent = steady_clock::now();
        const std::string transport = tls.empty() ? std::string() : " over " + tls;
        p->dwa_waiters.push_back([c, finish, sent, index = p->index, label = p->label, origin, transport](uint32_t rc) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - sent).count();
          if (rc == kResultSuccess) c->result.ok = true;
          c->lines[index] = label + transport + ": CEA ok (peer Origin-Host " + origin + "), DWA " +
                            (rc == 0 ? std::string("not received") : Describe(rc)) + " in " + std::to_string(ms) + " ms";
          if (--c->outstanding == 0) finish();
        });
        self->SendWatchdog(*p);
      }
      if (c->outstanding == 0) finish();
    });
  }

 private:
  static std::string Describe(uint32_t rc) {
    return std::to_string(rc) + " " + std::string(ResultCodeName(rc));
  }

  Message NewRequest(uint32_t command, uint32_t application) {
    Message m;
    m.flags = kFlagRequest;
    m.command = command;
    m.application = application;
    m.end_to_end = NextEndToEnd();
    m.avps.push_back(Avp::OctetString(kAvpOriginHost, options_.origin_host));
    m.avps.push_back(Avp::OctetString(kAvpOriginRealm, options_.origin_realm));
    return m;
  }

  PeerStats& StatsOf(const Peer& p) { return stats_[p.index]; }

  void SetState(Peer& p, PeerState s) {
    p.state = s;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    StatsOf(p).state = s;
  }

  // --- connections -------------------------------------------------------------------------

  void Connect(Peer& p) {
    if (closed_) return;
    SetState(p, PeerState::kConnecting);
    p.link = std::make_shared<Link>(strand_, tls_);
    p.resolver = std::make_unique<tcp::resolver>(strand_);
    const uint64_t gen = p.generation;
    // The whole connect + CER/CEA is bounded by Tx.
    p.timer.expires_after(options_.tx_timeout);
    p.timer.async_wait([self = shared_from_this(), &p, gen](const boost::system::error_code& ec) {
      if (ec || gen != p.generation || p.state == PeerState::kOpen) return;
      self->Close(p, "capabilities exchange timed out");
    });
    p.resolver->async_resolve(p.address.host, p.address.port,
        [self = shared_from_this(), &p, gen](const boost::system::error_code& ec, tcp::resolver::results_type results) {
          if (gen != p.generation) return;
          if (ec) return self->Close(p, "resolve: " + ec.message());
          auto link = p.link;
          asio::async_connect(link->socket(), results, [self, &p, gen, link](const boost::system::error_code& ec, const tcp::endpoint&) {
            if (gen != p.generation) return;
            if (ec) return self->Close(p, "connect: " + ec.message());
            boost::system::error_code ignored;
            link->socket().set_option(tcp::no_delay(true), ignored);
            if (link->tls) return self->Handshake(p, link);
            self->OnTransportUp(p);
          });
        });
  }

  // RFC 6733 §2.1: on a TLS/TCP connection the handshake comes first, then CER/CEA inside it.
  // Still bounded by the connect's Tx timer.
  void Handshake(Peer& p, const std::shared_ptr<Link>& link) {
    const uint64_t gen = p.generation;
    const std::string& host = p.address.host;
    boost::system::error_code not_an_address;
    asio::ip::make_address(host, not_an_address);
    // SNI carries host names only (RFC 6066 §3).
    if (not_an_address && !SSL_set_tlsext_host_name(link->tls->native_handle(), host.c_str())) {
      return Close(p, "TLS: cannot set the server name " + host);
    }
    if (options_.tls_verify) link->tls->set_verify_callback(ssl::host_name_verification(host));
    link->tls->async_handshake(ssl::stream_base::client,
                               [self = shared_from_this(), &p, gen, link](const boost::system::error_code& ec) {
                                 if (gen != p.generation) return;
                                 if (ec) return self->Close(p, "TLS handshake: " + ec.message());
                                 {
                                   std::lock_guard<std::mutex> lock(self->stats_mutex_);
                                   self->StatsOf(p).tls_version = SSL_get_version(link->tls->native_handle());
                                 }
                                 self->OnTransportUp(p);
                               });
  }

  void OnTransportUp(Peer& p) {
    SetState(p, PeerState::kWaitCea);
    SendCer(p);
    ReadHeader(p);
  }

  void SendCer(Peer& p) {
    Message cer = NewRequest(kCmdCapabilitiesExchange, kAppCommon);
    boost::system::error_code ec;
    auto local = p.link->socket().local_endpoint(ec);
    cer.avps.push_back(Avp::Address(kAvpHostIpAddress, ec ? "127.0.0.1" : local.address().to_string()));
    cer.avps.push_back(Avp::Unsigned32(kAvpVendorId, 0));
    cer.avps.push_back(Avp::OctetString(kAvpProductName, "donagate"));
    cer.avps.push_back(Avp::Unsigned32(kAvpOriginStateId, origin_state_id_));
    cer.avps.push_back(Avp::Unsigned32(kAvpAuthApplicationId, kAppCreditControl));
    cer.avps.push_back(Avp::Unsigned32(kAvpFirmwareRevision, 1));
    Write(p, Encode(cer));
  }

  // At most one DWR is outstanding per peer: a probe arriving while the watchdog's own DWR waits
  // shares its answer, and the watchdog never mistakes a just-sent probe DWR for a stale one.
  void SendWatchdog(Peer& p) {
    if (p.dwr_outstanding) return;
    p.dwr_sent_at = steady_clock::now();
    Message dwr = NewRequest(kCmdDeviceWatchdog, kAppCommon);
    dwr.avps.push_back(Avp::Unsigned32(kAvpOriginStateId, origin_state_id_));
    p.dwr_outstanding = true;
    Write(p, Encode(dwr));
  }

  void ArmWatchdog(Peer& p) { ArmWatchdog(p, options_.watchdog_interval); }
  void ArmWatchdog(Peer& p, steady_clock::duration delay) {
    const uint64_t gen = p.generation;
    p.timer.expires_after(delay);
    p.timer.async_wait([self = shared_from_this(), &p, gen](const boost::system::error_code& ec) {
      if (ec || gen != p.generation || p.state != PeerState::kOpen) return;
      const auto waited = steady_clock::now() - p.dwr_sent_at;
      if (p.dwr_outstanding && waited < self->options_.watchdog_interval) {
        return self->ArmWatchdog(p, self->options_.watchdog_interval - waited);
      }
      if (p.dwr_outstanding) {
        {
          std::lock_guard<std::mutex> lock(self->stats_mutex_);
          ++self->StatsOf(p).watchdog_failures;
        }
        return self->Close(p, "watchdog: no DWA within Tw");
      }
      if (steady_clock::now() - p.last_rx >= self->options_.watchdog_interval * 9 / 10) self->SendWatchdog(p);
      self->ArmWatchdog(p);
    });
  }

  void Write(Peer& p, std::string bytes) {
    if (!p.link || !p.link->socket().is_open()) return;
    p.out.push_back(std::move(bytes));
    if (!p.writing) WriteNext(p);
  }

  void WriteNext(Peer& p) {
    if (p.out.empty()) {
      p.writing = false;
      return;
    }
    p.writing = true;
    const uint64_t gen = p.generation;
    p.link->With([&](auto& stream) {
      asio::async_write(stream, asio::buffer(p.out.front()),
                        [self = shared_from_this(), &p, gen, link = p.link](const boost::system::error_code& ec, size_t) {
                          if (gen != p.generation) return;
                          if (ec) return self->Close(p, "write: " + ec.message());
                          p.out.pop_front();
                          self->WriteNext(p);
                        });
    });
  }

  void ReadHeader(Peer& p) {
    const uint64_t gen = p.generation;
    p.link->With([&](auto& stream) {
      asio::async_read(stream, asio::buffer(p.header),
                       [self = shared_from_this(), &p, gen, link = p.link](const boost::system::error_code& ec, size_t) {
                         if (gen != p.generation) return;
                         if (ec) return self->Close(p, "read: " + ec.message());
                         const uint32_t length = MessageLength(std::string_view(p.header.data(), 4));
                         if (length < 20 || length > kMaxMessage) return self->Close(p, "bad message header");
                         p.body.assign(p.header.data(), p.header.size());
                         p.body.resize(length);
                         if (length == 20) return self->OnMessage(p);
                         self->ReadBody(p, length);
                       });
    });
  }

  void ReadBody(Peer& p, uint32_t length) {
    const uint64_t gen = p.generation;
    p.link->With([&](auto& stream) {
      asio::async_read(stream, asio::buffer(p.body.data() + 20, length - 20),
                       [self = shared_from_this(), &p, gen, link = p.link](const boost::system::error_code& ec, size_t) {
                         if (gen != p.generation) return;
                         if (ec) return self->Close(p, "read: " + ec.message());
                         self->OnMessage(p);
                       });
    });
  }

  void OnMessage(Peer& p) {
    std::string error;
    std::optional<Message> m = Decode(p.body, &error);
    if (!m) return Close(p, "malformed message: " + error);
    p.last_rx = steady_clock::now();
    const uint64_t gen = p.generation;
    Dispatch(p, *m);
    if (gen == p.generation && p.link) ReadHeader(p);
  }

  void Dispatch(Peer& p, const Message& m) {
    if (m.is_request()) {
      Message a = AnswerTo(m);
      a.avps.push_back(Avp::Unsigned32(kAvpResultCode, kResultSuccess));
      a.avps.push_back(Avp::OctetString(kAvpOriginHost, options_.origin_host));
      a.avps.push_back(Avp::OctetString(kAvpOriginRealm, options_.origin_realm));
      if (m.command == kCmdDeviceWatchdog) {
        Write(p, Encode(a));
      } else if (m.command == kCmdDisconnectPeer) {
        Write(p, Encode(a));
        // The peer is leaving: stop using it now; reconnect later (it may come back).
        FailOver(p, "peer sent DPR");
      } else {
        a.flags |= kFlagError;
        a.avps[0] = Avp::Unsigned32(kAvpResultCode, 3001);
        Write(p, Encode(a));
      }
      return;
    }
    switch (m.command) {
      case kCmdCapabilitiesExchange: {
        const uint32_t rc = m.ResultCode().value_or(0);
        if (rc != kResultSuccess) return Close(p, "CEA " + Describe(rc));
        {
          std::lock_guard<std::mutex> lock(stats_mutex_);
          StatsOf(p).remote_origin_host = m.FindString(kAvpOriginHost);
          ++StatsOf(p).connects;
        }
        SetState(p, PeerState::kOpen);
        p.dwr_outstanding = false;
        p.timer.cancel();
        ArmWatchdog(p);
        FlushWaiting();
        return;
      }
      case kCmdDeviceWatchdog: {
        p.dwr_outstanding = false;
        auto waiters = std::move(p.dwa_waiters);
        for (auto& w : waiters) w(m.ResultCode().value_or(0));
        return;
      }
      case kCmdDisconnectPeer:
        return Close(p, "DPA");
      case kCmdCreditControl:
        return OnCreditControlAnswer(p, m);
      default:
        return;
    }
  }

  // Stops using `p` (pending requests fail over) and closes it.
  void FailOver(Peer& p, const std::string& why) { Close(p, why); }

  void Close(Peer& p, const std::string& why) {
    if (p.state == PeerState::kClosed && !p.link) return;
    ++p.generation;
    p.timer.cancel();
    if (p.link) {
      boost::system::error_code ignored;
      p.link->socket().shutdown(tcp::socket::shutdown_both, ignored);
      p.link->socket().close(ignored);
    }
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      StatsOf(p).tls_version.clear();
      StatsOf(p).last_close_reason = why;
    }
    p.out.clear();
    p.writing = false;
    p.dwr_outstanding = false;
    auto waiters = std::move(p.dwa_waiters);
    for (auto& w : waiters) w(0);
    SetState(p, PeerState::kClosed);
    // Requests written to this peer got no answer: they may have been processed.
    std::vector<uint32_t> lost;
    for (auto& [hbh, pending] : pending_) {
      if (pending.peer == p.index) lost.push_back(hbh);
    }
    for (uint32_t hbh : lost) OnNoAnswer(hbh, "link to " + p.label + " lost: " + why);
    if (!AnyUsablePeer()) FailWaiting("no Diameter peer open: " + why);
    if (closed_) return;
    const uint64_t gen = p.generation;
    p.timer.expires_after(options_.reconnect_interval);
    p.timer.async_wait([self = shared_from_this(), &p, gen](const boost::system::error_code& ec) {
      if (ec || gen != p.generation) return;
      self->Connect(p);
    });
  }

  bool AnyUsablePeer() const {
    for (const auto& p : peers_) {
      if (p->state != PeerState::kClosed) return true;
    }
    return false;
  }

  // --- requests ----------------------------------------------------------------------------

  Peer* PickPeer(const Exchange& ex) {
    for (auto& p : peers_) {
      if (p->state == PeerState::kOpen && (ex.peers_tried & (1u << p->index)) == 0) return p.get();
    }
    return nullptr;
  }

  bool AnyPeerConnecting() const {
    for (const auto& p : peers_) {
      if (p->state == PeerState::kConnecting || p->state == PeerState::kWaitCea) return true;
    }
    return false;
  }

  void Send(std::shared_ptr<Exchange> ex) {
    if (closed_) return Complete(ex, Reply{Reply::Kind::kNotSent, 0, "backend shut down"});
    Peer* p = PickPeer(*ex);
    if (!p) {
      if (ex->peers_tried == 0 && AnyPeerConnecting() && waiting_.size() < options_.max_pending) {
        // Start-up or reconnect in progress: wait (bounded by Tx) for a capabilities exchange.
        waiting_.push_back(ex);
        auto t = std::make_shared<asio::steady_timer>(strand_, options_.tx_timeout);
        t->async_wait([self = shared_from_this(), t, ex](const boost::system::error_code&) {
          auto it = std::find(self->waiting_.begin(), self->waiting_.end(), ex);
          if (it == self->waiting_.end()) return;
          self->waiting_.erase(it);
          self->Complete(ex, Reply{Reply::Kind::kNotSent, 0, "no Diameter peer open within Tx"});
        });
        return;
      }
      return Complete(ex, Reply{ex->sent ? Reply::Kind::kNoAnswer : Reply::Kind::kNotSent, 0,
                                ex->sent ? "no answer and no other peer open" : "no Diameter peer open"});
    }
    if (pending_.size() >= options_.max_pending) {
      return Complete(ex, Reply{ex->sent ? Reply::Kind::kNoAnswer : Reply::Kind::kNotSent, 0, "too many pending requests"});
    }
    const uint32_t hbh = hop_by_hop_++;
    ex->request.hop_by_hop = hbh;
    const bool retransmission = (ex->request.flags & kFlagRetransmit) != 0;
    ex->peers_tried |= 1u << p->index;
    ex->sent = true;
    Pending pending;
    pending.exchange = ex;
    pending.peer = p->index;
    pending.sent_at = steady_clock::now();
    pending.timer = std::make_unique<asio::steady_timer>(strand_, options_.tx_timeout);
    pending.timer->async_wait([self = shared_from_this(), hbh](const boost::system::error_code& ec) {
      if (ec) return;
      self->CountTimeout(hbh);
      self->OnNoAnswer(hbh, "no answer within Tx");
    });
    pending_.emplace(hbh, std::move(pending));
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      ++StatsOf(*p).requests;
      if (retransmission) ++StatsOf(*p).retransmissions;
    }
    Write(*p, Encode(ex->request));
  }

  void CountTimeout(uint32_t hbh) {
    auto it = pending_.find(hbh);
    if (it == pending_.end()) return;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_[it->second.peer].timeouts;
  }

  // A written request got no answer: retransmit with the T flag (same Session-Id, same
  // End-to-End id) to another open peer, unless CCFH says TERMINATE; else report it unknown.
  void OnNoAnswer(uint32_t hbh, const std::string& why) {
    auto it = pending_.find(hbh);
    if (it == pending_.end()) return;
    std::shared_ptr<Exchange> ex = std::move(it->second.exchange);
    it->second.timer->cancel();
    pending_.erase(it);
    if (EffectiveFailureHandling() != CreditControlFailureHandling::kTerminate && PickPeer(*ex)) {
      ex->request.flags |= kFlagRetransmit;
      return Send(std::move(ex));
    }
    Complete(ex, Reply{Reply::Kind::kNoAnswer, 0, why});
  }

  CreditControlFailureHandling EffectiveFailureHandling() const {
    return answered_ccfh_ ? *answered_ccfh_ : options_.failure_handling;
  }

  void OnCreditControlAnswer(Peer& p, const Message& m) {
    auto it = pending_.find(m.hop_by_hop);
    if (it == pending_.end() || it->second.exchange->request.end_to_end != m.end_to_end) return;  // late/unknown
    Pending pending = std::move(it->second);
    pending_.erase(it);
    pending.timer->cancel();
    const uint32_t rc = m.ResultCode().value_or(0);
    const double seconds = std::chrono::duration<double>(steady_clock::now() - pending.sent_at).count();
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      PeerStats& s = StatsOf(p);
      ++s.answers_by_result_code[rc];
      size_t b = 0;
      while (b < kLatencyBounds.size() && seconds > kLatencyBounds[b]) ++b;
      ++s.latency_buckets[b];
      s.latency_sum_s += seconds;
    }
    if (auto ccfh = m.FindUnsigned32(kAvpCreditControlFailureHandling); ccfh && *ccfh <= 2) {
      answered_ccfh_ = static_cast<CreditControlFailureHandling>(*ccfh);
    }
    std::shared_ptr<Exchange> ex = std::move(pending.exchange);
    if ((rc == kResultTooBusy || rc == kResultUnableToDeliver) && PickPeer(*ex)) {
      // Refused unprocessed: the other peer may take it. Keep the T flag if an earlier attempt
      // had no answer (that one may still have been processed).
      return Send(std::move(ex));
    }
    Complete(ex, Reply{Reply::Kind::kAnswer, rc, {}});
  }

  void Complete(const std::shared_ptr<Exchange>& ex, Reply reply) {
    auto done = std::move(ex->done);
    if (done) done(std::move(reply));
  }

  void FlushWaiting() {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& ex : waiting) Send(ex);
  }

  void FailWaiting(const std::string& why) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& ex : waiting) Complete(ex, Reply{Reply::Kind::kNotSent, 0, why});
  }

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  DiameterChargingOptions options_;
  std::string name_;
  std::shared_ptr<ssl::context> tls_;  // null: plain TCP
  std::vector<std::unique_ptr<Peer>> peers_;
  // Strand-only state.
  bool closed_ = false;
  uint32_t hop_by_hop_ = 0;
  uint32_t origin_state_id_ = 0;
  std::unordered_map<uint32_t, Pending> pending_;
  std::deque<std::shared_ptr<Exchange>> waiting_;
  std::optional<CreditControlFailureHandling> answered_ccfh_;
  // Any thread.
  std::atomic<uint32_t> end_to_end_{0};
  mutable std::mutex stats_mutex_;
  std::vector<PeerStats> stats_;
  std::mutex remembered_mutex_;
  std::unordered_map<std::string, std::string> remembered_;  // key -> encoded CCR
  std::deque<std::string> remembered_order_;
  std::unordered_set<std::string> retransmit_keys_;
};

// ---------------------------------------------------------------------------------------------

namespace {

ChargeResult MapChargeReply(const Reply& reply, const std::string& reference) {
  switch (reply.kind) {
    case Reply::Kind::kNotSent:
      return ChargeResult::Of(ChargeOutcome::kUnavailable, "not sent: " + reply.detail, true);
    case Reply::Kind::kNoAnswer:
      return ChargeResult::Of(ChargeOutcome::kUnknown, reply.detail, true);
    case Reply::Kind::kAnswer:
      break;
  }
  return MapResultCode(reply.result_code, reference);
}

}  // namespace

std::unique_ptr<DiameterChargingBackend> DiameterChargingBackend::Create(asio::any_io_executor executor,
                                                                         DiameterChargingOptions options,
                                                                         std::string* error) {
  if (options.peers.empty()) {
    *error = "diameter backend needs at least one peer";
    return nullptr;
  }
  if (options.peers.size() > 32) {
    *error = "diameter backend supports at most 32 peers";
    return nullptr;
  }
  if (options.origin_host.empty() || options.origin_realm.empty() || options.destination_realm.empty()) {
    *error = "diameter backend needs origin_host, origin_realm and destination_realm";
    return nullptr;
  }
  if (options.tx_timeout.count() <= 0 || options.watchdog_interval.count() <= 0) {
    *error = "diameter tx_timeout and watchdog_interval must be positive";
    return nullptr;
  }
  std::shared_ptr<ssl::context> tls;
  if (options.tls) {
    tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    if (!ConfigureTlsClient(*tls,
                            {.verify = options.tls_verify, .ca_file = options.ca_file,
                             .cert_file = options.tls_cert_file, .key_file = options.tls_key_file},
                            "diameter", error)) {
      return nullptr;
    }
  } else if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    *error = "diameter tls_cert_file / tls_key_file need tls = true";
    return nullptr;
  }
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options), std::move(tls));
  impl->Start();
  return std::unique_ptr<DiameterChargingBackend>(new DiameterChargingBackend(std::move(impl)));
}

DiameterChargingBackend::DiameterChargingBackend(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DiameterChargingBackend::~DiameterChargingBackend() { impl_->Shutdown(); }

std::string_view DiameterChargingBackend::Name() const { return impl_->name(); }

std::vector<DiameterChargingBackend::PeerStats> DiameterChargingBackend::peer_stats() const {
  return impl_->peer_stats();
}

std::function<std::vector<DiameterChargingBackend::PeerStats>()> DiameterChargingBackend::StatsSource() const {
  return [impl = impl_] { return impl->peer_stats(); };
}

void DiameterChargingBackend::Probe(std::chrono::milliseconds wait, std::function<void(ProbeResult)> done) {
  impl_->Probe(wait, std::move(done));
}

void DiameterChargingBackend::Charge(const ChargeRequest& request, ChargeCallback done) {
  auto executor = impl_->executor();
  if (std::string error = ValidateChargeRequest(request); !error.empty()) {
    asio::post(executor, [done = std::move(done), error = std::move(error)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, error));
    });
    return;
  }
  auto ex = std::make_shared<Exchange>();
  // The same key again (a retry after kUnavailable, or after Status said kNotFound) is the same
  // Diameter request: same Session-Id and End-to-End id when we still have it, T flag when it
  // may have been received before.
  if (std::optional<Message> previous = impl_->Remembered(request.idempotency_key)) {
    ex->request = std::move(*previous);
    ex->request.flags |= kFlagRetransmit;
  } else {
    ex->request = BuildDirectDebit(impl_->options(), request, impl_->NextEndToEnd());
    if (impl_->TakeRetransmit(request.idempotency_key)) ex->request.flags |= kFlagRetransmit;
    impl_->Remember(request.idempotency_key, ex->request);
  }
  const std::string reference = SessionIdFor(impl_->options().origin_host, request.idempotency_key, false);
  ex->done = [executor, reference, done = std::move(done)](Reply reply) mutable {
    asio::post(executor, [done = std::move(done), result = MapChargeReply(reply, reference)]() mutable {
      done(std::move(result));
    });
  };
  impl_->Submit(std::move(ex));
}

void DiameterChargingBackend::Status(const std::string& key, ChargeCallback done) {
  auto executor = impl_->executor();
  if (!IsValidIdempotencyKey(key)) {
    asio::post(executor, [done = std::move(done)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, "invalid idempotency key"));
    });
    return;
  }
  std::optional<Message> previous = impl_->Remembered(key);
  if (!previous) {
    // Not in memory (restart): the charger will Charge the same key again, which we send as a
    // retransmission (T flag, same Session-Id) so the OCS answers from its duplicate detection.
    impl_->MarkRetransmit(key);
    asio::post(executor, [done = std::move(done)] {
      done(ChargeResult::Of(ChargeOutcome::kNotFound,
                            "request not in memory; the next charge of this key is sent as a T-flagged retransmission"));
    });
    return;
  }
  auto ex = std::make_shared<Exchange>();
  ex->request = std::move(*previous);
  ex->request.flags |= kFlagRetransmit;
  const std::string reference = SessionIdFor(impl_->options().origin_host, key, false);
  ex->done = [executor, reference, done = std::move(done)](Reply reply) mutable {
    ChargeResult result = MapChargeReply(reply, reference);
    // A status query that could not be sent proves nothing about the original request.
    if (result.outcome == ChargeOutcome::kUnavailable) result.outcome = ChargeOutcome::kUnknown;
    asio::post(executor, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
  };
  impl_->Submit(std::move(ex));
}

void DiameterChargingBackend::Refund(const std::string& key, int64_t amount_vnd, RefundCallback done) {
  auto executor = impl_->executor();
  if (!IsValidIdempotencyKey(key) || amount_vnd <= 0) {
    asio::post(executor, [done = std::move(done)] {
      done(RefundResult{RefundOutcome::kRejected, "invalid idempotency key or amount", false});
    });
    return;
  }
  auto ex = std::make_shared<Exchange>();
  ex->request = BuildRefund(impl_->options(), key, amount_vnd, impl_->NextEndToEnd());
  ex->done = [executor, done = std::move(done)](Reply reply) mutable {
    RefundResult r;
    if (reply.kind == Reply::Kind::kNotSent) {
      r = RefundResult{RefundOutcome::kUnavailable, "not sent: " + reply.detail, true};
    } else if (reply.kind == Reply::Kind::kNoAnswer) {
      r = RefundResult{RefundOutcome::kUnknown, reply.detail, true};
    } else {
      r = MapRefundResultCode(reply.result_code);
    }
    asio::post(executor, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  impl_->Submit(std::move(ex));
}

}  // namespace donagate::billing
