#include "daemon/diameter_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>
#include <map>
#include <mutex>

namespace donagate::daemon {

using billing::DiameterChargingBackend;

namespace {

prometheus::Family<prometheus::Counter>& Counters(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

}  // namespace

struct DiameterMetricsExporter::State {
  std::mutex mu;
  std::string operator_name;
  Source source;
  prometheus::Family<prometheus::Gauge>* state = nullptr;
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Family<prometheus::Counter>* retransmissions = nullptr;
  prometheus::Family<prometheus::Counter>* timeouts = nullptr;
  prometheus::Family<prometheus::Counter>* watchdog_failures = nullptr;
  prometheus::Family<prometheus::Counter>* answers = nullptr;
  prometheus::Family<prometheus::Histogram>* latency = nullptr;
  // What was already exported, per peer, so each Sync adds only the difference.
  std::map<std::string, DiameterChargingBackend::PeerStats> exported;
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::chrono::milliseconds interval{1000};
};

namespace {

void Add(prometheus::Family<prometheus::Counter>& f, const std::map<std::string, std::string>& labels, uint64_t now,
         uint64_t before) {
  auto& c = f.Add(labels);
  if (now > before) c.Increment(static_cast<double>(now - before));
}

void Arm(const std::weak_ptr<DiameterMetricsExporter>& weak, DiameterMetricsExporter::State& s) {
  s.timer->expires_after(s.interval);
  s.timer->async_wait([weak](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self) return;
    self->Sync();
  });
}

}  // namespace

std::shared_ptr<DiameterMetricsExporter> DiameterMetricsExporter::Start(boost::asio::any_io_executor executor,
                                                                        prometheus::Registry& registry,
                                                                        std::string operator_name, Source source,
                                                                        std::chrono::milliseconds interval) {
  std::shared_ptr<DiameterMetricsExporter> self(new DiameterMetricsExporter());
  auto s = std::make_unique<State>();
  s->operator_name = std::move(operator_name);
  s->source = std::move(source);
  s->interval = interval;
  // Register() returns the existing family when another operator registered it already.
  s->state = &prometheus::BuildGauge()
                  .Name("donagate_diameter_peer_state")
                  .Help("Diameter peer state: 0 closed, 1 connecting, 2 waiting for CEA, 3 open")
                  .Register(registry);
  s->requests = &Counters(registry, "donagate_diameter_requests_total", "CCRs written to the peer (retransmissions included)");
  s->retransmissions = &Counters(registry, "donagate_diameter_retransmissions_total", "CCRs written with the T flag");
  s->timeouts = &Counters(registry, "donagate_diameter_timeouts_total", "CCRs without an answer within Tx");
  s->watchdog_failures = &Counters(registry, "donagate_diameter_watchdog_failures_total",
                                   "Links closed because a DWR went unanswered");
  s->answers = &Counters(registry, "donagate_diameter_answers_total", "CCAs by Result-Code");
  s->latency = &prometheus::BuildHistogram()
                    .Name("donagate_diameter_answer_seconds")
                    .Help("Time from writing a CCR to its CCA")
                    .Register(registry);
  s->timer = std::make_unique<boost::asio::steady_timer>(executor);
  self->state_ = std::move(s);
  self->Sync();
  return self;
}

DiameterMetricsExporter::~DiameterMetricsExporter() {
  if (state_ && state_->timer) state_->timer->cancel();
}

void DiameterMetricsExporter::Sync() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  const prometheus::Histogram::BucketBoundaries bounds(DiameterChargingBackend::kLatencyBounds.begin(),
                                                       DiameterChargingBackend::kLatencyBounds.end());
  for (const auto& now : s.source()) {
    const std::map<std::string, std::string> labels{{"operator", s.operator_name}, {"peer", now.peer}};
    const bool first = s.exported.count(now.peer) == 0;
    DiameterChargingBackend::PeerStats& before = s.exported[now.peer];
    // One log line per peer state change seen (at most one per interval; no MSISDNs here).
    // Only entering or leaving "open": a peer that stays down would otherwise flap between
    // closed and connecting in the log every reconnect interval.
    const bool open_now = now.state == DiameterChargingBackend::PeerState::kOpen;
    const bool open_before = !first && before.state == DiameterChargingBackend::PeerState::kOpen;
    if (open_now != open_before && (open_now || !first)) {
      static const char* kNames[] = {"closed", "connecting", "waiting for CEA", "open"};
      if (now.state == DiameterChargingBackend::PeerState::kOpen) {
        spdlog::info("charging: diameter peer {} of {} open (peer Origin-Host {})", now.peer, s.operator_name,
                     now.remote_origin_host);
      } else {
        spdlog::warn("charging: diameter peer {} of {} {} (was {}; watchdog failures {}, timeouts {})", now.peer,
                     s.operator_name, kNames[static_cast<int>(now.state)], kNames[static_cast<int>(before.state)],
                     now.watchdog_failures, now.timeouts);
      }
    }
    s.state->Add(labels).Set(static_cast<double>(static_cast<int>(now.state)));
    Add(*s.requests, labels, now.requests, before.requests);
    Add(*s.retransmissions, labels, now.retransmissions, before.retransmissions);
    Add(*s.timeouts, labels, now.timeouts, before.timeouts);
    Add(*s.watchdog_failures, labels, now.watchdog_failures, before.watchdog_failures);
    for (const auto& [rc, n] : now.answers_by_result_code) {
      auto with_code = labels;
      with_code["result_code"] = std::to_string(rc);
      Add(*s.answers, with_code, n, before.answers_by_result_code[rc]);
    }
    std::vector<double> increments(now.latency_buckets.size());
    bool any = false;
    for (size_t i = 0; i < increments.size(); ++i) {
      increments[i] = static_cast<double>(now.latency_buckets[i] - before.latency_buckets[i]);
      any = any || increments[i] > 0;
    }
    auto& histogram = s.latency->Add(labels, bounds);
    if (any) histogram.ObserveMultiple(increments, now.latency_sum_s - before.latency_sum_s);
    before = now;
  }
  // Re-armed through a weak reference: a pending wait must not keep the exporter alive.
  if (s.timer) Arm(weak_from_this(), s);
}

}  // namespace donagate::daemon
