// Observability of SMPP links: the Prometheus series every link exports, and a limiter that
// keeps a flapping link from flooding the log.
//
// Metric names are a contract with dashboards and alert rules (deploy/); do not rename:
//   donagate_link_up{link}                                   gauge, 1 while transmit-capable
//   donagate_link_binds_total{link}                          successful binds
//   donagate_link_bind_failures_total{link,status}           refused or failed binds
//   donagate_link_reconnects_total{link}                     reconnect attempts (client mode)
//   donagate_link_pdus_total{link,direction,command,status}  direction "in"|"out"; command as
//                                                            "deliver_sm"; status as "ESME_ROK"
//   donagate_link_window_in_use{link}                        unacknowledged outgoing requests
//   donagate_link_throttled_total{link}                      ESME_RTHROTTLED/ESME_RMSGQFUL answers
// Labels stay bounded: link names come from the configuration, commands from the SMPP command
// table ("unknown" otherwise), statuses from the command_status table ("other" otherwise).
//
// Thread safety: every method may be called from any thread (prometheus-cpp metrics are atomic;
// Family::Add takes the family's own lock, which is off the per-byte hot path).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace donagate::daemon {

enum class PduDirection { kIn, kOut };

class LinkMetrics {
 public:
  // Registers (or reuses, for a registry shared by several links) the families in `registry`
  // and creates this link's series. The registry must outlive this object.
  LinkMetrics(prometheus::Registry& registry, std::string link_name);

  const std::string& link_name() const { return link_name_; }

  void SetUp(bool up) { up_.Set(up ? 1 : 0); }
  double up() const { return up_.Value(); }
  void Bound() { binds_.Increment(); }
  void BindFailed(std::string_view status_name);
  void Reconnecting() { reconnects_.Increment(); }
  void Pdu(PduDirection direction, std::string_view command_name, std::string_view status_name);
  void WindowAcquired() { window_.Increment(); }
  void WindowReleased() { window_.Decrement(); }
  void Throttled() { throttled_.Increment(); }

 private:
  std::string link_name_;
  prometheus::Family<prometheus::Counter>& bind_failures_family_;
  prometheus::Family<prometheus::Counter>& pdus_family_;
  prometheus::Gauge& up_;
  prometheus::Counter& binds_;
  prometheus::Counter& reconnects_;
  prometheus::Gauge& window_;
  prometheus::Counter& throttled_;
};

// The "link" component logger (daemon/logging.h), fetched once.
spdlog::logger& LinkLog();

// Decides whether a repeated log event should be written: at most one line per `period` for
// each key (e.g. "opa/connect_failed"), reporting how many were suppressed in between.
// Thread-safe; used only on error paths.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration period = std::chrono::seconds(10))
      : period_(period) {}

  // True when the caller should log now; *suppressed is set to the number of events for this
  // key that were swallowed since the last written line.
  bool Allow(const std::string& key, uint64_t* suppressed,
             std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  // The limiter shared by every link in the process.
  static LogLimiter& Links();

 private:
  struct Entry {
    std::chrono::steady_clock::time_point last_written{};
    uint64_t suppressed = 0;
    bool written = false;
  };
  std::chrono::steady_clock::duration period_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace donagate::daemon
