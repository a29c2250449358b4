// Prometheus metrics of a Carrier Billing charging backend (label operator), beside the
// per-operator charging metrics every backend has (requests by outcome, latency, breaker):
//   donagate_carrier_billing_api_requests_total       API attempts written or tried
//   donagate_carrier_billing_token_requests_total     OAuth token endpoint calls
//   donagate_carrier_billing_token_failures_total     token calls that gave no usable token (a
//                                                     wrong secret, the endpoint down): alert on it,
//                                                     every charge waits for a token
//   donagate_carrier_billing_token_refreshes_on_401_total  tokens the API refused before expiry
//   donagate_carrier_billing_timeouts_total           HTTP attempts without an answer in timeout_ms
//   donagate_carrier_billing_retrievals_total         payments looked up by clientCorrelator to
//                                                     resolve an unknown outcome
// The backend keeps plain atomic counters; this exporter adds their growth to the registry every
// `interval` (default 1 s), so a scrape is at most that stale.
#pragma once

#include <prometheus/registry.h>

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "billing/charging/carrier_billing_charging.h"

namespace donagate::daemon {

class CarrierBillingMetricsExporter : public std::enable_shared_from_this<CarrierBillingMetricsExporter> {
 public:
  using Source = std::function<billing::CarrierBillingChargingBackend::Stats()>;
  // `registry` must outlive the exporter; `source` must stay callable for its life
  // (CarrierBillingChargingBackend::StatsSource() does).
  static std::shared_ptr<CarrierBillingMetricsExporter> Start(boost::asio::any_io_executor executor,
                                                              prometheus::Registry& registry,
                                                              std::string operator_name, Source source,
                                                              std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~CarrierBillingMetricsExporter();
  void Sync();  // copies the current figures now (tests; the timer does it otherwise)

  struct State;

 private:
  CarrierBillingMetricsExporter() = default;
  std::unique_ptr<State> state_;
};

}  // namespace donagate::daemon
