// The Diameter Ro backend (backend = "diameter"): one-time event charging with direct debiting
// (RFC 4006 §6.3, 3GPP TS 32.299) against an operator's OCS, over our own small codec
// (diameter_codec.h) on Boost.Asio TCP, or TLS. docs/charging.md has the AVP and result-code tables.
//
//  - Peers: a list in preference order. Each is connected at start and kept open: CER/CEA
//    (Auth-Application-Id 4), DWR/DWA every watchdog_interval (Tw) when the link is quiet — a
//    DWR unanswered for one more Tw closes the link (pending requests fail over) and it is
//    reconnected every reconnect_interval. DPR/DPA on shutdown and when the OCS asks.
//  - TLS (tls = true): RFC 6733 §2.1 "TLS/TCP", the handshake right after the TCP connect and
//    before CER (default port 5658). The OCS's certificate is verified against ca_file (or the
//    system store) and the configured host name unless tls_verify is false; a client certificate
//    is presented when tls_cert_file / tls_key_file are set (operators often require mutual TLS).
//    A peer whose handshake fails is never opened: its charges are kUnavailable, never sent.
//  - Charge → CCR EVENT_REQUEST / DIRECT_DEBITING, sent to the first open peer. Session-Id is
//    "<origin_host>;<idempotency key>" and the key is also sent in idempotency_avp_code, so the
//    OCS can match a retransmission; Subscription-Id END_USER_E164 = the MSISDN;
//    Requested-Service-Unit/CC-Money/Unit-Value = amount, Currency-Code 704.
//    Refund → CCR EVENT_REQUEST / REFUND_ACCOUNT, Session-Id "<origin_host>;refund;<key>".
//  - Outcomes by Result-Code: see MapResultCode. DIAMETER_TOO_BUSY / UNABLE_TO_DELIVER are tried
//    once on the other open peer (the request was not processed), then kUnavailable.
//  - No answer within tx_timeout (Tx), or the link lost after the request was written: the
//    request is retransmitted with the T flag, the same Session-Id and the same End-to-End id
//    to the other open peer (unless Credit-Control-Failure-Handling is TERMINATE); still no
//    answer → kUnknown. Status(key) retransmits the stored request the same way (T flag, same
//    ids), relying on the OCS's duplicate detection: never a new charge. A key whose request is
//    no longer in memory (the daemon restarted) is answered kNotFound, and the donation
//    charger's following Charge(key) is then sent with the T flag and the same Session-Id.
//  - Credit-Control-Failure-Handling and Direct-Debiting-Failure-Handling from the latest CCA
//    override the configured values (RFC 4006 §5.7, §6.3). DDFH CONTINUE would let a service be
//    granted on no answer; a donation is never booked without a charged answer, so CONTINUE is
//    treated as TERMINATE_OR_BUFFER (buffer = resolve by T-flagged retransmission).
//  - Logs and details carry no MSISDN (only keys, peers and result codes).
// Threads: as ChargingBackend. All peer and request state lives on one strand.
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "billing/charging/charging.h"
#include "billing/charging/diameter_codec.h"

namespace donagate::billing {

enum class CreditControlFailureHandling : uint32_t { kTerminate = 0, kContinue = 1, kRetryAndTerminate = 2 };

struct DiameterPeerAddress {
  std::string host;
  std::string port = "3868";
};

struct DiameterChargingOptions {
  std::string operator_name;
  std::vector<DiameterPeerAddress> peers;   // preference order; >= 1
  std::string origin_host;                  // our Diameter identity, e.g. donagate.example.vn
  std::string origin_realm;
  std::string destination_realm;
  std::string destination_host;             // empty: not sent
  std::string service_context_id = "32274@3gpp.org";  // 3GPP TS 32.274 (SMS charging)
  uint32_t service_identifier = 0;          // 0: not sent
  uint32_t rating_group = 0;                // 0: not sent
  std::map<std::string, uint32_t> campaign_service_identifiers;  // override per campaign
  std::map<std::string, uint32_t> campaign_rating_groups;
  uint32_t idempotency_avp_code = diameter::kAvpCcCorrelationId;  // our key, OctetString
  uint32_t idempotency_avp_vendor = 0;
  std::chrono::milliseconds tx_timeout{3000};           // Tx, per attempt
  std::chrono::milliseconds watchdog_interval{30000};   // Tw
  std::chrono::milliseconds reconnect_interval{2000};
  CreditControlFailureHandling failure_handling = CreditControlFailureHandling::kRetryAndTerminate;
  size_t max_pending = 100000;                          // requests waiting for an answer
  size_t remembered_requests = 200000;                  // kept for T-flag retransmission
  bool tls = false;                                     // TLS/TCP to every peer
  bool tls_verify = true;                               // verify the OCS certificate and host name
  std::string ca_file;                                  // empty: system trust store
  std::string tls_cert_file;                            // client certificate chain (PEM), optional
  std::string tls_key_file;                             // its key (PEM); required with tls_cert_file
};

namespace diameter {

// Settings the message builders need (a view of DiameterChargingOptions).
std::string SessionIdFor(const std::string& origin_host, const std::string& key, bool refund);
Message BuildDirectDebit(const DiameterChargingOptions& o, const ChargeRequest& request, uint32_t end_to_end);
Message BuildRefund(const DiameterChargingOptions& o, const std::string& key, int64_t amount_vnd, uint32_t end_to_end);
// The outcome a CCA Result-Code stands for (charge and status). `reference` is used for kCharged.
ChargeResult MapResultCode(uint32_t result_code, const std::string& reference);
RefundResult MapRefundResultCode(uint32_t result_code);
// "2001 DIAMETER_SUCCESS" style name for logs/metrics; "other" for codes we do not name.
std::string_view ResultCodeName(uint32_t result_code);

}  // namespace diameter

class DiameterChargingBackend final : public ChargingBackend {
 public:
  enum class PeerState { kClosed = 0, kConnecting = 1, kWaitCea = 2, kOpen = 3 };
  static constexpr std::array<double, 12> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,   0.25,   0.5,   1,    2.5,   10};
  struct PeerStats {
    std::string peer;                 // host:port as configured
    std::string remote_origin_host;   // from the CEA
    std::string tls_version;          // "TLSv1.3" while open over TLS, else empty
    std::string last_close_reason;    // why the link last closed or failed to open
    PeerState state = PeerState::kClosed;
    uint64_t requests = 0;            // CCRs written (retransmissions included)
    uint64_t retransmissions = 0;     // of those, with the T flag
    uint64_t timeouts = 0;            // no answer within Tx
    uint64_t watchdog_failures = 0;   // links closed because a DWR went unanswered
    uint64_t connects = 0;            // capabilities exchanges that succeeded
    std::map<uint32_t, uint64_t> answers_by_result_code;
    std::array<uint64_t, kLatencyBounds.size() + 1> latency_buckets{};  // last = +Inf
    double latency_sum_s = 0;
  };

  // nullptr and *error when the options are unusable (no peer, no identity, an unreadable
  // ca_file / tls_cert_file / tls_key_file).
  static std::unique_ptr<DiameterChargingBackend> Create(boost::asio::any_io_executor executor,
                                                         DiameterChargingOptions options, std::string* error);
  ~DiameterChargingBackend() override;  // DPR to open peers; in-flight calls complete (kUnknown)

  std::string_view Name() const override;
  void Charge(const ChargeRequest& request, ChargeCallback done) override;
  void Status(const std::string& idempotency_key, ChargeCallback done) override;
  bool SupportsRefund() const override { return true; }
  void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) override;

  // Snapshot, thread-safe.
  std::vector<PeerStats> peer_stats() const;
  // The same snapshot as a callable that keeps the backend's internal state alive on its own
  // (for exporters that may outlive this object by a timer tick).
  std::function<std::vector<PeerStats>()> StatsSource() const;

  // Health check without charging anyone: waits up to `wait` for the capabilities exchanges,
  // then sends a DWR on every open peer. One line per peer in the report.
  struct ProbeResult {
    bool ok = false;  // at least one peer answered CEA and DWA with DIAMETER_SUCCESS
    std::vector<std::string> lines;
  };
  void Probe(std::chrono::milliseconds wait, std::function<void(ProbeResult)> done);

  class Impl;

 private:
  explicit DiameterChargingBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace donagate::billing
