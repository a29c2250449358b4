#include "daemon/link_metrics.h"

#include "daemon/logging.h"

namespace donagate::daemon {
namespace {

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

LinkMetrics::LinkMetrics(prometheus::Registry& registry, std::string link_name)
    : link_name_(std::move(link_name)),
      bind_failures_family_(CounterFamily(registry, "donagate_link_bind_failures_total",
                                          "SMPP binds refused by the peer or failed, by status")),
      pdus_family_(CounterFamily(registry, "donagate_link_pdus_total",
                                 "SMPP PDUs by direction, command and command_status")),
      up_(GaugeFamily(registry, "donagate_link_up", "1 while the link is bound and can transmit")
              .Add({{"link", link_name_}})),
      binds_(CounterFamily(registry, "donagate_link_binds_total", "Successful SMPP binds")
                 .Add({{"link", link_name_}})),
      reconnects_(CounterFamily(registry, "donagate_link_reconnects_total",
                                "SMPP reconnect attempts")
                      .Add({{"link", link_name_}})),
      window_(GaugeFamily(registry, "donagate_link_window_in_use",
                          "Outgoing SMPP requests awaiting a response")
                  .Add({{"link", link_name_}})),
      throttled_(CounterFamily(registry, "donagate_link_throttled_total",
                               "ESME_RTHROTTLED / ESME_RMSGQFUL answers received")
                     .Add({{"link", link_name_}})) {}

void LinkMetrics::BindFailed(std::string_view status_name) {
  bind_failures_family_.Add({{"link", link_name_}, {"status", std::string(status_name)}})
      .Increment();
}

void LinkMetrics::Pdu(PduDirection direction, std::string_view command_name,
                      std::string_view status_name) {
  pdus_family_
      .Add({{"link", link_name_},
            {"direction", direction == PduDirection::kIn ? "in" : "out"},
            {"command", std::string(command_name)},
            {"status", std::string(status_name)}})
      .Increment();
}

bool LogLimiter::Allow(const std::string& key, uint64_t* suppressed,
                       std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  if (e.written && now - e.last_written < period_) {
    ++e.suppressed;
    return false;
  }
  if (suppressed) *suppressed = e.suppressed;
  e.suppressed = 0;
  e.written = true;
  e.last_written = now;
  return true;
}

spdlog::logger& LinkLog() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("link");
  return *logger;
}

LogLimiter& LogLimiter::Links() {
  static LogLimiter* limiter = new LogLimiter();
  return *limiter;
}

}  // namespace donagate::daemon
