#include "daemon/health.h"

#include <nlohmann/json.hpp>

#include "daemon/logging.h"
#include "daemon/metrics.h"

#include <ctime>
#include <utility>

namespace donagate::daemon {
namespace {

std::string Iso8601(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return {};
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json LinkJson(const LinkStatus& link) {
  return {
      {"name", link.name},
      {"operator", link.operator_name},
      {"mode", link.mode},
      {"state", std::string(ToString(link.state))},
      {"state_since", Iso8601(link.state_since)},
      {"bound_sessions", link.bound_sessions},
      {"can_transmit", link.can_transmit},
      {"throttled", link.throttled},
      {"window_in_use", link.window_in_use},
      {"queued_submits", link.queued_submits},
      {"pending_inbound", link.pending_inbound},
      {"last_error", link.last_error},
  };
}

// Text from the daemon may carry bytes from a peer; never let invalid UTF-8 turn a status
// page into an exception.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "<what>: <reason>", without repeating <what> when the reporter already wrote it.
std::string Reason(const std::string& what, const std::string& reason) {
  if (reason.empty()) return what;
  if (reason.rfind(what, 0) == 0) return reason;
  return what + ": " + reason;
}

}  // namespace

std::string ReadyJson(const ReadyState& state) {
  nlohmann::json j{{"ready", state.ready()}};
  if (!state.ready()) j["reasons"] = state.reasons;
  return Dump(j);
}

HealthMonitor::HealthMonitor(std::function<int()> bound_links) : bound_links_(std::move(bound_links)) {}

void HealthMonitor::SetDatabase(bool reachable, std::string reason) {
  std::lock_guard lock(mu_);
  db_known_ = true;
  db_reachable_ = reachable;
  db_reason_ = std::move(reason);
}

void HealthMonitor::SetMigrations(bool current, std::string reason) {
  std::lock_guard lock(mu_);
  migrations_known_ = true;
  migrations_current_ = current;
  migrations_reason_ = std::move(reason);
}

ReadyState HealthMonitor::Evaluate() const {
  ReadyState state;
  {
    std::lock_guard lock(mu_);
    if (!db_known_) {
      state.reasons.push_back("database not checked yet");
    } else if (!db_reachable_) {
      state.reasons.push_back(Reason("database unreachable", db_reason_));
    }
    if (!migrations_known_) {
      state.reasons.push_back("schema version not checked yet");
    } else if (!migrations_current_) {
      state.reasons.push_back(Reason("migrations not current", migrations_reason_));
    }
  }
  const int bound = bound_links_ ? bound_links_() : 0;
  if (bound <= 0) state.reasons.push_back("no link bound");
  return state;
}

void DbServerTracker::OnConnect(const std::string& connection, const billing::DbServer& server,
                                const billing::StoreStatus& status) {
  static const auto log = Logger("store");
  const bool refused = !status.ok();
  if (metrics_) metrics_->DbConnected(server, refused);
  if (refused) {
    {
      std::lock_guard lock(mu_);
      ++status_.standby_refusals;
    }
    log->error("event=db_standby_refused conn={} host={} port={} in_recovery=true {}", connection,
               Quote(server.host), Quote(server.port),
               Kv("effect", "refusing to write to a standby; closed, reconnecting with backoff to find the primary "
                            "(target_session_attrs=read-write)"));
    return;
  }
  std::string previous;
  {
    std::lock_guard lock(mu_);
    ++status_.connects;
    if (status_.host != server.host || status_.port != server.port || status_.role != server.role()) {
      if (!status_.host.empty()) previous = status_.host + ":" + status_.port;
      status_.host = server.host;
      status_.port = server.port;
      status_.role = server.role();
      status_.since = std::chrono::system_clock::now();
    }
  }
  if (!previous.empty()) {
    log->warn("event=db_server_changed conn={} from={} host={} port={} in_recovery=false", connection,
              Quote(previous), Quote(server.host), Quote(server.port));
  } else {
    log->info("event=db_connected conn={} host={} port={} in_recovery=false", connection, Quote(server.host),
              Quote(server.port));
  }
}

std::function<void(const billing::DbServer&, const billing::StoreStatus&)> DbServerTracker::Hook(
    std::string connection) {
  return [this, connection = std::move(connection)](const billing::DbServer& server,
                                                    const billing::StoreStatus& status) {
    OnConnect(connection, server, status);
  };
}

DbServerStatus DbServerTracker::Snapshot() const {
  std::lock_guard lock(mu_);
  return status_;
}

std::string LinksJson(const std::vector<LinkStatus>& links) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& link : links) j.push_back(LinkJson(link));
  return Dump(j);
}

std::string StatusJson(const StatusSnapshot& status, std::chrono::system_clock::time_point now) {
  nlohmann::json links = nlohmann::json::array();
  for (const auto& link : status.links) links.push_back(LinkJson(link));
  const auto uptime = status.started_at == std::chrono::system_clock::time_point{}
                          ? 0
                          : std::chrono::duration_cast<std::chrono::seconds>(now - status.started_at).count();
  nlohmann::json j{
      {"version", status.version},
      {"instance_id", status.instance_id},
      {"started_at", Iso8601(status.started_at)},
      {"uptime_seconds", uptime < 0 ? 0 : uptime},
      {"ready", status.readiness.ready()},
      {"reasons", status.readiness.reasons},
      {"charging_paused", status.charging_paused},
      {"unknown_charges", status.unknown_charges},
      {"queues", status.queues},
      {"database",
       {{"host", status.database.host},
        {"port", status.database.port},
        {"role", status.database.role},
        {"since", Iso8601(status.database.since)},
        {"connects", status.database.connects},
        {"standby_refusals", status.database.standby_refusals}}},
      {"links", std::move(links)},
  };
  return Dump(j);
}

}  // namespace donagate::daemon
