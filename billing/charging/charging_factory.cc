#include "billing/charging/charging_factory.h"

#include <algorithm>

#include "billing/charging/http_charging.h"
#include "billing/charging/in_process_charging.h"
#include "billing/charging/operator_billed_charging.h"

namespace donagate::billing {

std::unique_ptr<ChargingBackend> MakeChargingBackend(const config::ChargingBackendConfig& config,
                                                     boost::asio::any_io_executor executor, std::string* error) {
  switch (config.backend) {
    case config::ChargingBackendKind::kHttp: {
      HttpChargingOptions o;
      o.operator_name = config.operator_name;
      o.url = config.url;
      o.timeout = std::chrono::milliseconds(config.timeout_ms);
      o.max_concurrency = config.max_concurrency;
      o.retries = config.retries;
      o.bearer_token = config.token.Reveal();
      o.tls_verify = config.tls_verify;
      o.ca_file = config.ca_file;
      std::string why;
      auto backend = HttpChargingBackend::Create(std::move(executor), std::move(o), &why);
      if (!backend) {
        if (error) *error = "charging backend for operator " + config.operator_name + ": " + why;
        return nullptr;
      }
      return backend;
    }
    case config::ChargingBackendKind::kOperatorBilled:
      return std::make_unique<OperatorBilledChargingBackend>(std::move(executor), config.operator_name);
    case config::ChargingBackendKind::kInProcess:
      return std::make_unique<InProcessChargingBackend>(std::move(executor), config.operator_name,
                                                        config.initial_balance_vnd);
  }
  if (error) *error = "charging backend for operator " + config.operator_name + ": unknown backend kind";
  return nullptr;
}

CircuitBreakerOptions BreakerOptionsFor(const config::ChargingBackendConfig& config) {
  CircuitBreakerOptions o;
  o.failure_threshold = std::max(1, config.breaker_failure_threshold);
  o.cool_off = std::chrono::seconds(std::max(1, config.breaker_cooloff_s));
  return o;
}

DonationChargerOptions ChargerOptionsFor(const config::ChargingBackendConfig& config) {
  DonationChargerOptions o;
  o.status_backoff_min = std::chrono::milliseconds(std::max(1, config.status_backoff_min_ms));
  o.status_backoff_max = std::chrono::milliseconds(std::max(config.status_backoff_min_ms, config.status_backoff_max_ms));
  o.status_max_wait = std::max(std::chrono::milliseconds(10000), o.status_backoff_max * 2);
  return o;
}

}  // namespace donagate::billing
