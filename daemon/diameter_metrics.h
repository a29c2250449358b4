// Prometheus metrics of a Diameter charging backend, one series set per peer
// (labels operator, peer): donagate_diameter_peer_state (0 closed, 1 connecting, 2 waiting for
// CEA, 3 open), donagate_diameter_requests_total, _retransmissions_total, _timeouts_total,
// _watchdog_failures_total, donagate_diameter_answers_total{result_code} and the answer
// latency histogram donagate_diameter_answer_seconds. The backend keeps plain counters on its
// strand; this exporter copies them into the registry every `interval` (default 1 s), so a
// scrape is at most that stale.
#pragma once

#include <prometheus/registry.h>

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "billing/charging/diameter_charging.h"

namespace donagate::daemon {

class DiameterMetricsExporter : public std::enable_shared_from_this<DiameterMetricsExporter> {
 public:
  using Source = std::function<std::vector<billing::DiameterChargingBackend::PeerStats>()>;
  // `registry` must outlive the exporter. `source` must stay callable for the exporter's life
  // (DiameterChargingBackend::StatsSource() keeps the backend's state alive by itself).
  static std::shared_ptr<DiameterMetricsExporter> Start(boost::asio::any_io_executor executor,
                                                        prometheus::Registry& registry, std::string operator_name,
                                                        Source source,
                                                        std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~DiameterMetricsExporter();
  void Sync();  // copies the current figures now (tests; the timer does it otherwise)

  struct State;

 private:
  DiameterMetricsExporter() = default;
  std::unique_ptr<State> state_;
};

}  // namespace donagate::daemon
