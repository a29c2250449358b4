#include "billing/charging/charging_factory.h"

#include <algorithm>

#include "billing/charging/carrier_billing_charging.h"
#include "billing/charging/diameter_charging.h"
#include "billing/charging/http_charging.h"
#include "billing/charging/in_process_charging.h"
#include "billing/charging/operator_billed_charging.h"

namespace donagate::billing {

DiameterChargingOptions DiameterOptionsFor(const config::ChargingBackendConfig& config) {
  DiameterChargingOptions o;
  o.operator_name = config.operator_name;
  for (const std::string& peer : config.peers) {
    DiameterPeerAddress a;
    const size_t colon = peer.rfind(':');
    a.host = peer.substr(0, colon);
    if (colon != std::string::npos) {
      a.port = peer.substr(colon + 1);
    } else if (config.tls) {
      a.port = "5658";  // RFC 6733 §11.4: Diameter over TLS/TCP
    }
    o.peers.push_back(std::move(a));
  }
  o.origin_host = config.origin_host;
  o.origin_realm = config.origin_realm;
  o.destination_realm = config.destination_realm;
  o.destination_host = config.destination_host;
  o.service_context_id = config.service_context_id;
  o.service_identifier = config.service_identifier;
  o.rating_group = config.rating_group;
  o.campaign_service_identifiers = config.campaign_service_identifiers;
  o.campaign_rating_groups = config.campaign_rating_groups;
  o.idempotency_avp_code = config.idempotency_avp_code;
  o.idempotency_avp_vendor = config.idempotency_avp_vendor;
  o.tx_timeout = std::chrono::milliseconds(config.timeout_ms);
  o.watchdog_interval = std::chrono::milliseconds(config.watchdog_interval_ms);
  o.reconnect_interval = std::chrono::milliseconds(config.reconnect_interval_ms);
  o.failure_handling = static_cast<CreditControlFailureHandling>(config.failure_handling);
  o.tls = config.tls;
  o.tls_verify = config.tls_verify;
  o.ca_file = config.ca_file;
  o.tls_cert_file = config.tls_cert_file;
  o.tls_key_file = config.tls_key_file;
  return o;
}

CarrierBillingOptions CarrierBillingOptionsFor(const config::ChargingBackendConfig& config) {
  CarrierBillingOptions o;
  o.operator_name = config.operator_name;
  o.url = config.url;
  o.token_url = config.token_url;
  o.client_id = config.client_id;
  o.client_secret = config.client_secret.Reveal();
  o.scope = config.scope;
  o.two_step = config.two_step;
  o.merchant_identifier = config.merchant_identifier;
  o.description = config.payment_description;
  o.timeout = std::chrono::milliseconds(config.timeout_ms);
  o.max_concurrency = config.max_concurrency;
  o.retries = config.retries;
  o.refresh_margin = std::chrono::seconds(config.token_refresh_margin_s);
  o.tls_verify = config.tls_verify;
  o.ca_file = config.ca_file;
  return o;
}

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
    case config::ChargingBackendKind::kDiameter: {
      std::string why;
      auto backend = DiameterChargingBackend::Create(std::move(executor), DiameterOptionsFor(config), &why);
      if (!backend) {
        if (error) *error = "charging backend for operator " + config.operator_name + ": " + why;
        return nullptr;
      }
      return backend;
    }
    case config::ChargingBackendKind::kCarrierBilling: {
      std::string why;
      auto backend = CarrierBillingChargingBackend::Create(std::move(executor), CarrierBillingOptionsFor(config), &why);
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
