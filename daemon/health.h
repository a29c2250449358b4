// What /readyz and /status report, decoupled from where the facts come from.
//
// Readiness (GET /readyz): 200 {"ready":true} when the daemon can do its job, else 503
// {"ready":false,"reasons":[...]}. The daemon is ready when the database is reachable, the
// schema migrations are current, and at least one link is bound. Liveness (GET /healthz) is
// only "the process answers": never tie it to the database or restarts would not help.
//
// Probes run on the HTTP server's I/O thread, so they must not block: HealthMonitor holds the
// last known facts, which the daemon refreshes from where it already talks to the database
// (e.g. a periodic Store::Ping on a DB thread) and from its links.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "billing/store/store.h"
#include "daemon/link.h"

namespace donagate::daemon {

struct ReadyState {
  std::vector<std::string> reasons;  // empty = ready; each a short sentence, no secrets
  bool ready() const { return reasons.empty(); }
};
using ReadinessProbe = std::function<ReadyState()>;

// The body of /readyz.
std::string ReadyJson(const ReadyState& state);

// Thread-safe holder of the facts readiness depends on. Until the first report the database
// and migrations count as "not yet checked" (not ready).
class HealthMonitor {
 public:
  // `bound_links` returns how many links are bound right now (cheap, non-blocking).
  explicit HealthMonitor(std::function<int()> bound_links);

  // reason: e.g. the libpq error when !reachable (must not contain the password).
  void SetDatabase(bool reachable, std::string reason = {});
  // reason: e.g. "schema version 2, binary expects 3".
  void SetMigrations(bool current, std::string reason = {});

  ReadyState Evaluate() const;
  ReadinessProbe Probe() const {
    return [this] { return Evaluate(); };
  }

 private:
  std::function<int()> bound_links_;
  mutable std::mutex mu_;
  bool db_known_ = false, db_reachable_ = false;
  bool migrations_known_ = false, migrations_current_ = false;
  std::string db_reason_, migrations_reason_;
};

// Which PostgreSQL server the daemon writes to, for /status, the metrics and the log. Every
// Store of the daemon reports its new connections here (StoreOptions::on_connect); after a
// failover the connections move one by one to the new primary, each logging where it landed.
struct DbServerStatus {
  std::string host, port, role;  // of the latest accepted connection; empty before the first
  std::chrono::system_clock::time_point since{};  // when a connection first reached it
  int64_t connects = 0;          // accepted connections so far
  int64_t standby_refusals = 0;  // connections that landed on a standby and were closed
};

class Metrics;

class DbServerTracker {
 public:
  explicit DbServerTracker(Metrics* metrics) : metrics_(metrics) {}
  // For StoreOptions::on_connect of the connection called `connection` (its
  // application_name). Logs `event=db_connected` (info) with host, port and
  // in_recovery=false, or `event=db_standby_refused` (error: the server is in recovery,
  // nothing is written, the caller reconnects with backoff); a move to another server
  // than the previous connection's is logged as `event=db_server_changed` (warn).
  void OnConnect(const std::string& connection, const billing::DbServer& server,
                 const billing::StoreStatus& status);
  // The hook for one connection, ready to put into StoreOptions::on_connect.
  std::function<void(const billing::DbServer&, const billing::StoreStatus&)> Hook(std::string connection);
  DbServerStatus Snapshot() const;

 private:
  Metrics* metrics_;
  mutable std::mutex mu_;
  DbServerStatus status_;
};

// The body of /status. Built from typed fields only, so nothing the daemon does not list here
// (passwords, tokens, connection strings) can reach it.
struct StatusSnapshot {
  std::string version;
  std::chrono::system_clock::time_point started_at;
  std::string instance_id;
  bool charging_paused = false;
  std::vector<LinkStatus> links;
  // Named queue depths, e.g. "ingest_queue", "outbox_backlog", "concat_parts_pending",
  // "donations_waiting".
  std::map<std::string, int64_t> queues;
  int64_t unknown_charges = 0;
  ReadyState readiness;
  DbServerStatus database;
};
using StatusProvider = std::function<StatusSnapshot()>;

// {"version":..,"started_at":"2026-11-28T18:00:00Z","uptime_seconds":..,"instance_id":..,
//  "ready":..,"reasons":[..],"charging_paused":..,"unknown_charges":..,"queues":{..},
//  "database":{"host","port","role","since","connects","standby_refusals"},
//  "links":[{"name","operator","mode","state","state_since","bound_sessions","can_transmit",
//            "throttled","window_in_use","queued_submits","pending_inbound","last_error"}]}
std::string StatusJson(const StatusSnapshot& status,
                       std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// A link snapshot as JSON (shared by /status and GET /admin/links).
std::string LinksJson(const std::vector<LinkStatus>& links);

}  // namespace donagate::daemon
