#include "daemon/carrier_billing_metrics.h"

#include <prometheus/counter.h>

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

namespace donagate::daemon {

using Stats = billing::CarrierBillingChargingBackend::Stats;

namespace {

// name, help, and the Stats field it exports.
struct Series {
  const char* name;
  const char* help;
  uint64_t Stats::*field;
};
constexpr std::array<Series, 6> kSeries = {{
    {"donagate_carrier_billing_api_requests_total", "Carrier Billing API attempts written or tried", &Stats::requests},
    {"donagate_carrier_billing_token_requests_total", "OAuth token endpoint calls", &Stats::token_requests},
    {"donagate_carrier_billing_token_failures_total", "Token endpoint calls that gave no usable token",
     &Stats::token_failures},
    {"donagate_carrier_billing_token_refreshes_on_401_total", "Tokens refreshed because the API answered 401",
     &Stats::token_refreshes_on_401},
    {"donagate_carrier_billing_timeouts_total", "HTTP attempts without an answer within timeout_ms", &Stats::timeouts},
    {"donagate_carrier_billing_retrievals_total", "Payments retrieved by clientCorrelator to resolve an unknown outcome",
     &Stats::retrievals},
}};

}  // namespace

struct CarrierBillingMetricsExporter::State {
  std::mutex mu;
  Source source;
  std::array<prometheus::Counter*, kSeries.size()> counters{};
  Stats exported;  // what the counters already hold
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::chrono::milliseconds interval{1000};
};

std::shared_ptr<CarrierBillingMetricsExporter> CarrierBillingMetricsExporter::Start(
    boost::asio::any_io_executor executor, prometheus::Registry& registry, std::string operator_name, Source source,
    std::chrono::milliseconds interval) {
  std::shared_ptr<CarrierBillingMetricsExporter> self(new CarrierBillingMetricsExporter());
  auto s = std::make_unique<State>();
  s->source = std::move(source);
  s->interval = interval;
  for (size_t i = 0; i < kSeries.size(); ++i) {
    // Register() returns the existing family when another operator registered it already.
    s->counters[i] = &prometheus::BuildCounter()
                          .Name(kSeries[i].name)
                          .Help(kSeries[i].help)
                          .Register(registry)
                          .Add({{"operator", operator_name}});
  }
  s->timer = std::make_unique<boost::asio::steady_timer>(executor);
  self->state_ = std::move(s);
  self->Sync();
  return self;
}

CarrierBillingMetricsExporter::~CarrierBillingMetricsExporter() {
  if (state_ && state_->timer) state_->timer->cancel();
}

void CarrierBillingMetricsExporter::Sync() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  const Stats now = s.source();
  for (size_t i = 0; i < kSeries.size(); ++i) {
    const uint64_t after = now.*kSeries[i].field, before = s.exported.*kSeries[i].field;
    if (after > before) s.counters[i]->Increment(static_cast<double>(after - before));
  }
  s.exported = now;
  // Re-armed through a weak reference: a pending wait must not keep the exporter alive.
  s.timer->expires_after(s.interval);
  s.timer->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->Sync();
  });
}

}  // namespace donagate::daemon
