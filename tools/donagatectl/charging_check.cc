#include "tools/donagatectl/charging_check.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "billing/charging/carrier_billing_charging.h"
#include "billing/charging/charging_factory.h"
#include "billing/charging/diameter_charging.h"

namespace donagate::ctl {

int ChargingCheck(const config::Config& config, const std::string& operator_name, std::ostream& out,
                  std::ostream& err) {
  const config::ChargingBackendConfig* cfg = config::FindCharging(config, operator_name);
  if (!cfg) {
    err << "donagatectl: no [[charging]] entry for operator " << operator_name << "\n";
    return 2;
  }
  boost::asio::io_context ioc;
  std::string error;
  int rc = 1;
  if (cfg->backend == config::ChargingBackendKind::kDiameter) {
    auto backend = billing::DiameterChargingBackend::Create(ioc.get_executor(), billing::DiameterOptionsFor(*cfg), &error);
    if (!backend) {
      err << "donagatectl: " << error << "\n";
      return 2;
    }
    // Tx bounds each capabilities exchange; wait a little longer than that before the DWRs.
    backend->Probe(std::chrono::milliseconds(cfg->timeout_ms + 200), [&](billing::DiameterChargingBackend::ProbeResult r) {
      out << "diameter:" << operator_name << " (Origin-Host " << cfg->origin_host << ", Destination-Realm "
          << cfg->destination_realm << ")\n";
      for (const auto& line : r.lines) out << "  " << line << "\n";
      out << (r.ok ? "OK: at least one peer answered CEA and DWA\n" : "FAILED: no peer completed CER/CEA and DWR/DWA\n");
      rc = r.ok ? 0 : 1;
      ioc.stop();  // the backend keeps its links (and timers) alive otherwise
    });
    ioc.run();
    return rc;
  }
  if (cfg->backend == config::ChargingBackendKind::kCarrierBilling) {
    std::string why;
    auto backend =
        billing::CarrierBillingChargingBackend::Create(ioc.get_executor(), billing::CarrierBillingOptionsFor(*cfg), &why);
    if (!backend) {
      err << "donagatectl: charging backend for operator " << operator_name << ": " << why << "\n";
      return 2;
    }
    // A client-credentials grant, then retrievePayments of a clientCorrelator no donation has.
    backend->Probe([&](billing::CarrierBillingChargingBackend::ProbeResult r) {
      out << backend->Name() << " " << cfg->url << " (token_url " << cfg->token_url << ", client_id " << cfg->client_id
          << ")\n  " << r.detail << "\n";
      out << (r.ok ? "OK: token granted, the API answered not found, nobody was charged\n"
                   : "FAILED: expected a token and a not-found retrieval\n");
      rc = r.ok ? 0 : 1;
      ioc.stop();
    });
    ioc.run();
    return rc;
  }
  if (cfg->backend == config::ChargingBackendKind::kHttp) {
    auto backend = billing::MakeChargingBackend(*cfg, ioc.get_executor(), &error);
    if (!backend) {
      err << "donagatectl: " << error << "\n";
      return 2;
    }
    // A key of our shape that no donation can have (donation ids are positive).
    const std::string key = "don-0-" + std::to_string(getpid() % 100000);
    backend->Status(key, [&](billing::ChargeResult r) {
      out << backend->Name() << " " << cfg->url << ": status of probe key " << key << " -> "
          << billing::ToString(r.outcome) << (r.detail.empty() ? "" : " (" + r.detail + ")") << "\n";
      rc = r.outcome == billing::ChargeOutcome::kNotFound ? 0 : 1;
      out << (rc == 0 ? "OK: the backend answered per contract and charged nobody\n"
                      : "FAILED: expected not_found for a key that was never charged\n");
      ioc.stop();
    });
    ioc.run();
    return rc;
  }
  out << "operator " << operator_name << " uses backend = \"" << config::ToString(cfg->backend)
      << "\": there is no remote charging system to check\n";
  return 0;
}

}  // namespace donagate::ctl
