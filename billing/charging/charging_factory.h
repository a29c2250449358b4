// Builds a charging backend, its circuit breaker settings and the donation charger's settings
// from one [[charging]] config entry, so every caller maps config the same way.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "billing/charging/carrier_billing_charging.h"
#include "billing/charging/charging.h"
#include "billing/charging/circuit_breaker.h"
#include "billing/charging/diameter_charging.h"
#include "billing/charging/donation_charger.h"
#include "config/config.h"

namespace donagate::billing {

// nullptr and *error ("charging backend for operator X: reason") when the entry is unusable
// (bad URL, unreadable ca_file). The token is revealed only into the backend's header.
std::unique_ptr<ChargingBackend> MakeChargingBackend(const config::ChargingBackendConfig& config,
                                                     boost::asio::any_io_executor executor, std::string* error);

// The Diameter backend's options from a backend = "diameter" entry (timeout_ms is Tx).
DiameterChargingOptions DiameterOptionsFor(const config::ChargingBackendConfig& config);

// The Carrier Billing backend's options from a backend = "carrier_billing" entry (the client
// secret is revealed into the options only).
CarrierBillingOptions CarrierBillingOptionsFor(const config::ChargingBackendConfig& config);

CircuitBreakerOptions BreakerOptionsFor(const config::ChargingBackendConfig& config);

// status_max_wait is not a config key: one run keeps asking for max(10 s, 2 × backoff max),
// then reports kUnknown so the donation's state is visible and the slot is freed; the
// pipeline resumes it later (Status first, same key).
DonationChargerOptions ChargerOptionsFor(const config::ChargingBackendConfig& config);

}  // namespace donagate::billing
