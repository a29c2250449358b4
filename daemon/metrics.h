// The Prometheus series donagated exports besides the per-link ones (daemon/link_metrics.h).
//
// Metric names and labels are a contract with deploy/grafana and deploy/prometheus/alerts.yml
// (tests/deploy checks it); do not rename. Labels stay bounded: link, campaign, operator and
// backend names come from the configuration; every other label value comes from a closed enum
// below. Never an MSISDN, a message id or free text.
//
//   donagate_mo_received_total{link}                         deliver_sm/data_sm PDUs received
//                                                            (receipts and each concat part included)
//   donagate_mo_accepted_total{link}                         MOs committed and acknowledged ESME_ROK
//   donagate_mo_rejected_total{reason}                       committed but not a donation
//                                                            (billing::MessageOutcome names)
//   donagate_mo_temp_errors_total{reason}                    answered with a temporary error status
//   donagate_replies_suppressed_total{reason}                replies withheld by reply safety:
//                                                            reply_budget, reply_loop, rate_limited
//   donagate_concat_parts_pending                            gauge: parts waiting for siblings
//   donagate_donations_total{campaign,operator,state}        transitions into a final state
//                                                            (and into "unknown")
//   donagate_donations_units_charged_total{campaign,operator}
//   donagate_donations_vnd_charged_total{campaign,operator}  VND, what finance cross-checks
//   donagate_charges_unknown_outstanding                     gauge: keys with an unknown outcome
//   donagate_charging_requests_total{backend,outcome}        billing::ChargeOutcome names
//   donagate_charging_request_duration_seconds{backend}      histogram
//   donagate_charging_breaker_state{backend}                 0 closed, 1 half-open, 2 open
//   donagate_store_batch_size                                histogram: items per ingest commit
//   donagate_store_commit_duration_seconds                   histogram
//   donagate_store_errors_total{kind}                        "transient" | "permanent"
//   donagate_store_pool_in_use                               gauge: DB connections busy
//   donagate_replies_total{operator,result}                  "sent" | "throttled" | "failed"
//   donagate_receipts_total{stat}                            receipt stat (DELIVRD, ...; "other")
//   donagate_outbox_backlog                                  gauge: replies not yet submitted
//   donagate_ack_latency_seconds                             histogram: deliver_sm received →
//                                                            deliver_sm_resp sent
//   donagate_reply_latency_seconds                           histogram: deliver_sm received →
//                                                            reply submit_sm sent
//   donagate_admin_actions_total{action}                     AdminAction names
//   donagate_charging_paused                                 gauge: 1 while the kill switch is on
//   donagate_charging_yields_total                           claim rounds skipped because MOs
//                                                            were waiting for their commit
//   donagate_handoffs_total{stage,path}                      stage donation|reply; path memory
//                                                            (taken by a worker of this process)
//                                                            | store (left for the claim)
//   donagate_pending_receipts_purged_total                   parked receipts that never matched
//   donagate_charging_concurrency_limit                      gauge: charges allowed in flight now
//   donagate_db_server_info{host,port,role}                  gauge: 1 for the PostgreSQL server the
//                                                            daemon's connections last reached
//                                                            (role primary; multi-host failover)
//   donagate_db_connects_total{result}                       new DB connections: "primary" (used)
//                                                            | "standby_refused" (closed, retried)
//   donagate_donations_taken_over_total                      donations claimed after another
//                                                            instance's lease expired (it died)
//   donagate_build_info{version}                             gauge, always 1
//   donagate_process_start_time_seconds                      gauge: Unix time of start
//
// Cost model: everything with a closed label set is created in the constructor, so the hot
// path is one atomic add. Series keyed by configured names (link, campaign+operator, backend,
// operator) are created on first use and cached; callers on the hot path resolve the handle
// once (e.g. per link at start) and keep the reference — handles stay valid for the lifetime
// of the Metrics object.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "billing/charging/charging.h"
#include "billing/charging/circuit_breaker.h"
#include "billing/store/store.h"

namespace donagate::daemon {

// Why an MO was answered with a temporary error (the SMSC will redeliver it).
enum class TempErrorReason {
  kStoreUnavailable,  // the ingest commit failed transiently (database down, read-only, ...)
  kStoreError,        // the ingest commit failed permanently (alert: schema, bug)
  kBackpressure,      // the ingest queue is full
  kShuttingDown,      // the daemon is stopping and will not commit new work
  kConcatUnavailable, // a concatenated part could not be stored
  kInDoubt,           // a redelivery of an MO whose commit outcome is not known yet
};
// "store_unavailable" "store_error" "backpressure" "shutting_down" "concat_unavailable"
// "in_doubt".
std::string_view ToString(TempErrorReason reason);

enum class ReplyResult { kSent, kThrottled, kFailed };  // "sent" "throttled" "failed"
std::string_view ToString(ReplyResult result);

enum class AdminAction {
  kPauseCharging, kResumeCharging, kStopLink, kStartLink, kReloadTemplates, kListLinks,
};
// "pause_charging" "resume_charging" "stop_link" "start_link" "reload_templates" "list_links".
std::string_view ToString(AdminAction action);

// Histogram bucket boundaries, in the metric's unit. Latency buckets span 0.5 ms .. 10 s
// (acks are expected in single-digit ms, a stalled commit in seconds).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();
const prometheus::Histogram::BucketBoundaries& ChargingLatencyBuckets();  // 1 ms .. 30 s
const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets();        // 1 .. 4096

namespace metrics_internal {
// The pre-created series for an enum label value.
template <size_t N, typename Enum>
prometheus::Counter& At(const std::array<prometheus::Counter*, N>& series, Enum e) {
  return *series[static_cast<size_t>(e)];
}
}  // namespace metrics_internal

class Metrics {
 public:
  // Registers every family in `registry` (which must outlive this object) and records the
  // build version and the process start time (now).
  Metrics(prometheus::Registry& registry, std::string_view version);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- messages
  struct LinkCounters {
    prometheus::Counter& mo_received;
    prometheus::Counter& mo_accepted;
  };
  // The MO counters of a link (created on first call; the reference stays valid).
  LinkCounters& ForLink(std::string_view link);
  void MoRejected(billing::MessageOutcome reason) { metrics_internal::At(mo_rejected_, reason).Increment(); }
  void MoTempError(TempErrorReason reason) { metrics_internal::At(mo_temp_errors_, reason).Increment(); }
  prometheus::Gauge& concat_parts_pending() { return concat_parts_pending_; }
  // A committed MO recorded without any reply (nobody to answer, blocked, no campaign).
  // `reason` is kInvalidMsisdn, kBlocked or kUnknownCampaign (others are ignored).
  void MoUnanswered(billing::MessageOutcome reason);
  // A reply the reply-safety rules withheld: 0 over the per-number hourly budget, 1 a reply
  // loop, 2 a rate-limited MO after the one notice (donagate_replies_suppressed_total{reason}).
  void ReplySuppressed(size_t reason) { replies_suppressed_.at(reason)->Increment(); }
  // A redelivery of a stored MO recognised (recorded as such, acked, not charged); `reason` is
  // redelivery_guard.h's UncertainReason as an index: 0 in_doubt, 1 session_closed, 2 after_crash,
  // 3 late_ack.
  void MoRedelivery(size_t reason) { mo_redeliveries_.at(reason)->Increment(); }
  prometheus::Gauge& redelivery_guard_entries() { return redelivery_guard_entries_; }
  // MOs whose batch is held in doubt now; MOs of resolved in-doubt batches by resolution.
  prometheus::Gauge& ingest_in_doubt_held() { return ingest_in_doubt_held_; }
  void IngestInDoubtResolved(bool committed, double mos) { in_doubt_resolved_[committed ? 0 : 1]->Increment(mos); }

  // ---- donations
  class DonationCounters {
   public:
    // A donation moved into `state` (charged, partially_charged, failed, reversed, unknown).
    void Entered(billing::DonationState state) { metrics_internal::At(by_state_, state).Increment(); }
    // Units and VND actually debited (per charge or per donation, as long as each is counted
    // once).
    void Charged(int64_t units, int64_t vnd) {
      units_.Increment(static_cast<double>(units));
      vnd_.Increment(static_cast<double>(vnd));
    }
    prometheus::Counter& units() { return units_; }
    prometheus::Counter& vnd() { return vnd_; }

   private:
    friend class Metrics;
    DonationCounters(std::array<prometheus::Counter*, 7> by_state, prometheus::Counter& units,
                     prometheus::Counter& vnd)
        : by_state_(by_state), units_(units), vnd_(vnd) {}
    std::array<prometheus::Counter*, 7> by_state_;
    prometheus::Counter& units_;
    prometheus::Counter& vnd_;
  };
  DonationCounters& ForCampaign(std::string_view campaign, std::string_view operator_name);
  prometheus::Gauge& charges_unknown_outstanding() { return charges_unknown_outstanding_; }

  // ---- charging
  class ChargingCounters {
   public:
    // One backend call (Charge or Status) and how long it took.
    void Request(billing::ChargeOutcome outcome, double seconds) {
      metrics_internal::At(by_outcome_, outcome).Increment();
      duration_.Observe(seconds);
    }
    void SetBreaker(billing::CircuitBreaker::State state);
    prometheus::Histogram& duration() { return duration_; }

   private:
    friend class Metrics;
    ChargingCounters(std::array<prometheus::Counter*, 7> by_outcome,
                     prometheus::Histogram& duration, prometheus::Gauge& breaker)
        : by_outcome_(by_outcome), duration_(duration), breaker_(breaker) {}
    std::array<prometheus::Counter*, 7> by_outcome_;
    prometheus::Histogram& duration_;
    prometheus::Gauge& breaker_;
  };
  // `backend` is the charging backend's configured name (usually the operator's).
  ChargingCounters& ForBackend(std::string_view backend);
  prometheus::Gauge& charging_paused() { return charging_paused_; }
  prometheus::Counter& charging_yields() { return charging_yields_; }
  // stage: 0 donation, 1 reply; in_memory: taken by a worker of this process.
  prometheus::Counter& handoffs(int stage, bool in_memory) { return *handoffs_[stage * 2 + (in_memory ? 0 : 1)]; }
  prometheus::Counter& pending_receipts_purged() { return pending_receipts_purged_; }
  prometheus::Gauge& charging_concurrency_limit() { return *charging_concurrency_limit_; }

  // ---- store
  prometheus::Histogram& store_batch_size() { return store_batch_size_; }
  prometheus::Histogram& store_commit_duration() { return store_commit_duration_; }
  // Counts a failed store call; ok statuses are ignored.
  void StoreError(const billing::StoreStatus& status);
  prometheus::Gauge& store_pool_in_use() { return store_pool_in_use_; }

  // ---- replies and receipts
  class ReplyCounters {
   public:
    void Add(ReplyResult result) { metrics_internal::At(by_result_, result).Increment(); }

   private:
    friend class Metrics;
    explicit ReplyCounters(std::array<prometheus::Counter*, 3> by_result) : by_result_(by_result) {}
    std::array<prometheus::Counter*, 3> by_result_;
  };
  ReplyCounters& ForOperator(std::string_view operator_name);
  // `stat` is the receipt's stat field (SMPP 3.4 Appendix B: DELIVRD EXPIRED DELETED UNDELIV
  // ACCEPTD UNKNOWN REJECTD ENROUTE); anything else is counted as "other".
  void Receipt(std::string_view stat);
  prometheus::Gauge& outbox_backlog() { return outbox_backlog_; }

  // ---- latency
  prometheus::Histogram& ack_latency() { return ack_latency_; }
  prometheus::Histogram& reply_latency() { return reply_latency_; }

  // ---- admin
  void Admin(AdminAction action) { metrics_internal::At(admin_actions_, action).Increment(); }

  // ---- database server (failover)
  // A new connection reached `server`; `refused`: it was a standby and was closed. The info
  // series moves to the server of the latest accepted connection (the old series is removed).
  void DbConnected(const billing::DbServer& server, bool refused);
  // Donations this instance claimed from another instance's expired lease.
  prometheus::Counter& donations_taken_over() { return *donations_taken_over_; }
  // The registry given at construction (for exporters that register families of their own,
  // e.g. daemon/diameter_metrics.h).
  prometheus::Registry& registry() const { return registry_; }

  // Every donagate_* metric name this object registers (without _bucket/_sum/_count).
  static const std::vector<std::string>& Names();

 private:
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& mo_received_family_;
  prometheus::Family<prometheus::Counter>& mo_accepted_family_;
  prometheus::Family<prometheus::Counter>& donations_family_;
  prometheus::Family<prometheus::Counter>& units_family_;
  prometheus::Family<prometheus::Counter>& vnd_family_;
  prometheus::Family<prometheus::Counter>& charging_requests_family_;
  prometheus::Family<prometheus::Histogram>& charging_duration_family_;
  prometheus::Family<prometheus::Gauge>& breaker_family_;
  prometheus::Family<prometheus::Counter>& replies_family_;

  std::array<prometheus::Counter*, 19> mo_rejected_{};
  std::array<prometheus::Counter*, 3> replies_suppressed_{};
  std::array<prometheus::Counter*, 6> mo_temp_errors_{};
  std::array<prometheus::Counter*, 3> mo_unanswered_{};
  std::array<prometheus::Counter*, 4> mo_redeliveries_{};
  std::array<prometheus::Counter*, 2> in_doubt_resolved_{};
  std::array<prometheus::Counter*, 6> admin_actions_{};
  std::array<prometheus::Counter*, 9> receipts_{};  // 8 standard stats + "other"
  std::array<prometheus::Counter*, 2> store_errors_{};

  prometheus::Gauge& concat_parts_pending_;
  prometheus::Gauge& redelivery_guard_entries_;
  prometheus::Gauge& ingest_in_doubt_held_;
  prometheus::Gauge& charges_unknown_outstanding_;
  prometheus::Gauge& charging_paused_;
  prometheus::Counter& charging_yields_;
  prometheus::Counter* handoffs_[4] = {};
  prometheus::Gauge* charging_concurrency_limit_ = nullptr;
  prometheus::Counter& pending_receipts_purged_;
  prometheus::Histogram& store_batch_size_;
  prometheus::Histogram& store_commit_duration_;
  prometheus::Gauge& store_pool_in_use_;
  prometheus::Gauge& outbox_backlog_;
  prometheus::Histogram& ack_latency_;
  prometheus::Histogram& reply_latency_;

  prometheus::Family<prometheus::Gauge>* db_server_family_ = nullptr;
  prometheus::Gauge* db_server_ = nullptr;  // guarded by mu_
  std::string db_server_key_;               // guarded by mu_: host|port|role of db_server_
  std::array<prometheus::Counter*, 2> db_connects_{};
  prometheus::Counter* donations_taken_over_ = nullptr;

  std::mutex mu_;  // guards the caches below (not the metrics, which are atomic)
  std::map<std::string, std::unique_ptr<LinkCounters>, std::less<>> links_;
  std::map<std::string, std::unique_ptr<DonationCounters>, std::less<>> campaigns_;
  std::map<std::string, std::unique_ptr<ChargingCounters>, std::less<>> backends_;
  std::map<std::string, std::unique_ptr<ReplyCounters>, std::less<>> operators_;
};

}  // namespace donagate::daemon
