#include "daemon/metrics.h"

#include <chrono>
#include <utility>

namespace donagate::daemon {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Label values for the closed enums, indexed by the enum's value. They repeat the names
// billing/ stores in the database (billing::ToString) so a dashboard and a SQL query agree.
constexpr std::string_view kMessageOutcomeNames[] = {
    "donation",          "syntax_error", "invalid_msisdn",  "unknown_campaign",
    "campaign_inactive", "daily_cap",    "blocked",         "incomplete_concat",
    "too_many_units",    "undecodable",  "receipt",         "other",
    "redelivery",        "help",         "stop",            "confirm",
    "status",            "rate_limited", "reply_loop"};
static_assert(std::size(kMessageOutcomeNames) == static_cast<size_t>(billing::MessageOutcome::kReplyLoop) + 1);
constexpr std::string_view kUnansweredNames[] = {"invalid_msisdn", "blocked", "unknown_campaign"};
constexpr std::string_view kReplySuppressedNames[] = {"reply_budget", "reply_loop", "rate_limited"};
constexpr std::string_view kRedeliveryReasonNames[] = {"in_doubt", "session_closed", "after_crash",
                                                        "late_ack"};
constexpr std::string_view kInDoubtResolutionNames[] = {"committed", "not_committed"};

constexpr std::string_view kDonationStateNames[] = {
    "received", "charging", "charged", "partially_charged", "failed", "unknown", "reversed"};
static_assert(std::size(kDonationStateNames) == static_cast<size_t>(billing::DonationState::kReversed) + 1);

constexpr std::string_view kChargeOutcomeNames[] = {
    "charged", "insufficient_funds", "subscriber_barred", "rejected",
    "unknown", "unavailable",        "not_found"};
static_assert(std::size(kChargeOutcomeNames) == static_cast<size_t>(billing::ChargeOutcome::kNotFound) + 1);

constexpr std::string_view kTempErrorNames[] = {
    "store_unavailable", "store_error", "backpressure", "shutting_down", "concat_unavailable",
    "in_doubt"};
constexpr std::string_view kReplyResultNames[] = {"sent", "throttled", "failed"};
constexpr std::string_view kAdminActionNames[] = {
    "pause_charging", "resume_charging", "stop_link", "start_link", "reload_templates", "list_links"};
constexpr std::string_view kReceiptStats[] = {
    "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE", "other"};
constexpr std::string_view kStoreErrorKinds[] = {"transient", "permanent"};

std::string S(std::string_view v) { return std::string(v); }

Family<Counter>& CounterFamily(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r);
}
Family<Gauge>& GaugeFamily(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r);
}
Family<Histogram>& HistogramFamily(prometheus::Registry& r, const char* name, const char* help) {
  return BuildHistogram().Name(name).Help(help).Register(r);
}

template <size_t N>
std::array<Counter*, N> ByLabel(Family<Counter>& family, const char* label,
                                const std::string_view (&values)[N],
                                const std::map<std::string, std::string>& fixed = {}) {
  std::array<Counter*, N> out{};
  for (size_t i = 0; i < N; ++i) {
    auto labels = fixed;
    labels[label] = S(values[i]);
    out[i] = &family.Add(labels);
  }
  return out;
}

}  // namespace

std::string_view ToString(TempErrorReason reason) { return kTempErrorNames[static_cast<size_t>(reason)]; }
std::string_view ToString(ReplyResult result) { return kReplyResultNames[static_cast<size_t>(result)]; }
std::string_view ToString(AdminAction action) { return kAdminActionNames[static_cast<size_t>(action)]; }

const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}
const Histogram::BucketBoundaries& ChargingLatencyBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return kBuckets;
}
const Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {1,  2,   4,   8,    16,   32,  64,
                                                       128, 256, 512, 1024, 2048, 4096};
  return kBuckets;
}

Metrics::Metrics(prometheus::Registry& registry, std::string_view version)
    : registry_(registry),
      mo_received_family_(CounterFamily(registry, "donagate_mo_received_total",
                                        "deliver_sm/data_sm PDUs received per link (receipts and concatenated parts included)")),
      mo_accepted_family_(CounterFamily(registry, "donagate_mo_accepted_total",
                                        "MOs committed to the store and acknowledged with ESME_ROK")),
      donations_family_(CounterFamily(registry, "donagate_donations_total",
                                      "Donations entering a final state (or unknown)")),
      units_family_(CounterFamily(registry, "donagate_donations_units_charged_total",
                                  "Donation units successfully charged")),
      vnd_family_(CounterFamily(registry, "donagate_donations_vnd_charged_total",
                                "VND successfully charged (finance cross-check)")),
      charging_requests_family_(CounterFamily(registry, "donagate_charging_requests_total",
                                              "Charging backend calls by outcome")),
      charging_duration_family_(HistogramFamily(registry, "donagate_charging_request_duration_seconds",
                                                "Charging backend call duration")),
      breaker_family_(GaugeFamily(registry, "donagate_charging_breaker_state",
                                  "Charging circuit breaker: 0 closed, 1 half-open, 2 open")),
      replies_family_(CounterFamily(registry, "donagate_replies_total",
                                    "Reply submit_sm attempts by result")),
      concat_parts_pending_(GaugeFamily(registry, "donagate_concat_parts_pending",
                                        "Concatenated MO parts waiting for their siblings")
                                .Add({})),
      redelivery_guard_entries_(GaugeFamily(registry, "donagate_redelivery_guard_entries",
                                            "Committed or in-doubt MOs whose redelivery would be "
                                            "recognised (no MO-id TLV)")
                                    .Add({})),
      ingest_in_doubt_held_(GaugeFamily(registry, "donagate_ingest_in_doubt_mos",
                                        "MOs held unanswered because their commit outcome is unknown")
                                .Add({})),
      charges_unknown_outstanding_(GaugeFamily(registry, "donagate_charges_unknown_outstanding",
                                               "Charge keys whose outcome is unknown and unresolved")
                                       .Add({})),
      charging_paused_(GaugeFamily(registry, "donagate_charging_paused",
                                   "1 while charging is paused (kill switch), else 0")
                           .Add({})),
      charging_yields_(CounterFamily(registry, "donagate_charging_yields_total",
                                     "Charging claim rounds skipped to give the database to "
                                     "MOs waiting for their commit")
                           .Add({})),
      pending_receipts_purged_(CounterFamily(registry, "donagate_pending_receipts_purged_total",
                                             "Parked delivery receipts deleted because no reply "
                                             "matched them within pending_receipt_max_age_s")
                                   .Add({})),
      store_batch_size_(HistogramFamily(registry, "donagate_store_batch_size",
                                        "Items per ingest group commit")
                            .Add({}, BatchSizeBuckets())),
      store_commit_duration_(HistogramFamily(registry, "donagate_store_commit_duration_seconds",
                                             "Ingest group commit duration")
                                 .Add({}, LatencyBuckets())),
      store_pool_in_use_(GaugeFamily(registry, "donagate_store_pool_in_use",
                                     "Database connections currently executing a call")
                             .Add({})),
      outbox_backlog_(GaugeFamily(registry, "donagate_outbox_backlog",
                                  "Replies waiting in the outbox (pending or claimed)")
                          .Add({})),
      ack_latency_(HistogramFamily(registry, "donagate_ack_latency_seconds",
                                   "deliver_sm received to deliver_sm_resp sent")
                       .Add({}, LatencyBuckets())),
      reply_latency_(HistogramFamily(registry, "donagate_reply_latency_seconds",
                                     "deliver_sm received to reply submit_sm sent")
                         .Add({}, LatencyBuckets())) {
  mo_rejected_ = ByLabel(CounterFamily(registry, "donagate_mo_rejected_total",
                                       "MOs committed but not donations, by reason"),
                         "reason", kMessageOutcomeNames);
  mo_temp_errors_ = ByLabel(CounterFamily(registry, "donagate_mo_temp_errors_total",
                                          "MOs answered with a temporary error (redelivered later)"),
                            "reason", kTempErrorNames);
  replies_suppressed_ = ByLabel(CounterFamily(registry, "donagate_replies_suppressed_total",
                                              "Ingest-time replies not sent by the reply-safety "
                                              "rules (docs/pipeline.md \"Reply safety\"), by rule"),
                                "reason", kReplySuppressedNames);
  mo_unanswered_ = ByLabel(CounterFamily(registry, "donagate_mo_unanswered_total",
                                         "MOs recorded without any reply, by reason"),
                           "reason", kUnansweredNames);
  mo_redeliveries_ = ByLabel(CounterFamily(registry, "donagate_mo_redeliveries_total",
                                           "Redeliveries of stored MOs recognised without an MO id "
                                           "(recorded, acked, not charged), by why the ack was uncertain"),
                             "reason", kRedeliveryReasonNames);
  in_doubt_resolved_ = ByLabel(CounterFamily(registry, "donagate_ingest_in_doubt_total",
                                             "MOs of batches whose commit outcome was unknown, by "
                                             "how it was resolved"),
                               "resolution", kInDoubtResolutionNames);
  admin_actions_ = ByLabel(CounterFamily(registry, "donagate_admin_actions_total",
                                         "Admin actions performed"),
                           "action", kAdminActionNames);
  receipts_ = ByLabel(CounterFamily(registry, "donagate_receipts_total",
                                    "Delivery receipts received by stat"),
                      "stat", kReceiptStats);
  store_errors_ = ByLabel(CounterFamily(registry, "donagate_store_errors_total",
                                        "Failed store calls by kind"),
                          "kind", kStoreErrorKinds);
  db_server_family_ = &GaugeFamily(registry, "donagate_db_server_info",
                                   "1 for the PostgreSQL server (host, port, role) the daemon's "
                                   "connections last reached");
  auto& db_connects = CounterFamily(registry, "donagate_db_connects_total",
                                    "New database connections: to the primary (used) or to a "
                                    "standby (refused, reconnected)");
  db_connects_[0] = &db_connects.Add({{"result", "primary"}});
  db_connects_[1] = &db_connects.Add({{"result", "standby_refused"}});
  donations_taken_over_ = &CounterFamily(registry, "donagate_donations_taken_over_total",
                                         "Donations claimed after another instance's lease "
                                         "expired (that instance died or stalled)")
                               .Add({});
  auto& handoffs = CounterFamily(registry, "donagate_handoffs_total",
                                 "Committed donations and replies by who takes them on: a worker "
                                 "of this process from memory, or a claim from the store");
  const char* kStages[] = {"donation", "reply"};
  for (int stage = 0; stage < 2; ++stage) {
    handoffs_[stage * 2] = &handoffs.Add({{"stage", kStages[stage]}, {"path", "memory"}});
    handoffs_[stage * 2 + 1] = &handoffs.Add({{"stage", kStages[stage]}, {"path", "store"}});
  }
  charging_concurrency_limit_ = &GaugeFamily(registry, "donagate_charging_concurrency_limit",
                                             "Charges allowed in flight now (adaptive or fixed)")
                                     .Add({});
  GaugeFamily(registry, "donagate_build_info", "Build information; always 1")
      .Add({{"version", S(version)}})
      .Set(1);
  const auto start = std::chrono::duration<double>(
      std::chrono::system_clock::now().time_since_epoch());
  GaugeFamily(registry, "donagate_process_start_time_seconds", "Process start, Unix seconds")
      .Add({})
      .Set(start.count());
}

Metrics::LinkCounters& Metrics::ForLink(std::string_view link) {
  std::lock_guard lock(mu_);
  auto it = links_.find(link);
  if (it == links_.end()) {
    const std::map<std::string, std::string> labels{{"link", S(link)}};
    auto counters = std::unique_ptr<LinkCounters>(
        new LinkCounters{mo_received_family_.Add(labels), mo_accepted_family_.Add(labels)});
    it = links_.emplace(S(link), std::move(counters)).first;
  }
  return *it->second;
}

Metrics::DonationCounters& Metrics::ForCampaign(std::string_view campaign,
                                                std::string_view operator_name) {
  std::string key;
  key.reserve(campaign.size() + operator_name.size() + 1);
  key.append(campaign).push_back('\0');
  key.append(operator_name);
  std::lock_guard lock(mu_);
  auto it = campaigns_.find(key);
  if (it == campaigns_.end()) {
    const std::map<std::string, std::string> labels{{"campaign", S(campaign)},
                                                    {"operator", S(operator_name)}};
    auto by_state = ByLabel(donations_family_, "state", kDonationStateNames, labels);
    auto counters = std::unique_ptr<DonationCounters>(
        new DonationCounters(by_state, units_family_.Add(labels), vnd_family_.Add(labels)));
    it = campaigns_.emplace(std::move(key), std::move(counters)).first;
  }
  return *it->second;
}

Metrics::ChargingCounters& Metrics::ForBackend(std::string_view backend) {
  std::lock_guard lock(mu_);
  auto it = backends_.find(backend);
  if (it == backends_.end()) {
    const std::map<std::string, std::string> labels{{"backend", S(backend)}};
    auto by_outcome = ByLabel(charging_requests_family_, "outcome", kChargeOutcomeNames, labels);
    auto counters = std::unique_ptr<ChargingCounters>(new ChargingCounters(
        by_outcome, charging_duration_family_.Add(labels, ChargingLatencyBuckets()),
        breaker_family_.Add(labels)));
    it = backends_.emplace(S(backend), std::move(counters)).first;
  }
  return *it->second;
}

void Metrics::ChargingCounters::SetBreaker(billing::CircuitBreaker::State state) {
  // The exported scale orders states by severity, independent of the enum's numbering.
  switch (state) {
    case billing::CircuitBreaker::State::kClosed: breaker_.Set(0); break;
    case billing::CircuitBreaker::State::kHalfOpen: breaker_.Set(1); break;
    case billing::CircuitBreaker::State::kOpen: breaker_.Set(2); break;
  }
}

Metrics::ReplyCounters& Metrics::ForOperator(std::string_view operator_name) {
  std::lock_guard lock(mu_);
  auto it = operators_.find(operator_name);
  if (it == operators_.end()) {
    auto by_result = ByLabel(replies_family_, "result", kReplyResultNames,
                             {{"operator", S(operator_name)}});
    it = operators_.emplace(S(operator_name), std::unique_ptr<ReplyCounters>(new ReplyCounters(by_result)))
             .first;
  }
  return *it->second;
}

void Metrics::MoUnanswered(billing::MessageOutcome reason) {
  switch (reason) {
    case billing::MessageOutcome::kInvalidMsisdn: mo_unanswered_[0]->Increment(); break;
    case billing::MessageOutcome::kBlocked: mo_unanswered_[1]->Increment(); break;
    case billing::MessageOutcome::kUnknownCampaign: mo_unanswered_[2]->Increment(); break;
    default: break;
  }
}

void Metrics::Receipt(std::string_view stat) {
  size_t i = 0;
  while (i + 1 < std::size(kReceiptStats) && kReceiptStats[i] != stat) ++i;
  receipts_[i]->Increment();
}

void Metrics::StoreError(const billing::StoreStatus& status) {
  if (status.ok()) return;
  store_errors_[status.permanent() ? 1 : 0]->Increment();
}

void Metrics::DbConnected(const billing::DbServer& server, bool refused) {
  db_connects_[refused ? 1 : 0]->Increment();
  if (refused) return;
  const std::string key = server.host + "|" + server.port + "|" + server.role();
  std::lock_guard<std::mutex> lock(mu_);
  if (key == db_server_key_) return;
  if (db_server_) db_server_family_->Remove(db_server_);
  db_server_ = &db_server_family_->Add({{"host", server.host}, {"port", server.port}, {"role", server.role()}});
  db_server_->Set(1);
  db_server_key_ = key;
}

const std::vector<std::string>& Metrics::Names() {
  static const std::vector<std::string> kNames = {
      "donagate_mo_received_total",
      "donagate_mo_accepted_total",
      "donagate_mo_rejected_total",
      "donagate_mo_temp_errors_total",
      "donagate_concat_parts_pending",
      "donagate_mo_unanswered_total",
      "donagate_replies_suppressed_total",
      "donagate_mo_redeliveries_total",
      "donagate_redelivery_guard_entries",
      "donagate_ingest_in_doubt_mos",
      "donagate_ingest_in_doubt_total",
      "donagate_donations_total",
      "donagate_donations_units_charged_total",
      "donagate_donations_vnd_charged_total",
      "donagate_charges_unknown_outstanding",
      "donagate_charging_requests_total",
      "donagate_charging_request_duration_seconds",
      "donagate_charging_breaker_state",
      "donagate_store_batch_size",
      "donagate_store_commit_duration_seconds",
      "donagate_store_errors_total",
      "donagate_store_pool_in_use",
      "donagate_replies_total",
      "donagate_receipts_total",
      "donagate_outbox_backlog",
      "donagate_ack_latency_seconds",
      "donagate_reply_latency_seconds",
      "donagate_admin_actions_total",
      "donagate_charging_paused",
      "donagate_charging_yields_total",
      "donagate_handoffs_total",
      "donagate_charging_concurrency_limit",
      "donagate_pending_receipts_purged_total",
      "donagate_db_server_info",
      "donagate_db_connects_total",
      "donagate_donations_taken_over_total",
      "donagate_build_info",
      "donagate_process_start_time_seconds",
  };
  return kNames;
}

}  // namespace donagate::daemon
