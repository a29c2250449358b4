// donagated's HTTP endpoints: one Boost.Beast server on the daemon's io_context.
//
// Main listener ([http] listen):
//   GET /metrics  Prometheus text format 0.0.4 of the registry (prometheus-cpp TextSerializer)
//   GET /healthz  200 "ok" while the process serves requests
//   GET /readyz   200 {"ready":true} or 503 {"ready":false,"reasons":[...]} (daemon/health.h)
//   GET /status   200 JSON snapshot (daemon/health.h StatusJson); never contains secrets
// Admin listener ([admin] listen, loopback by default; only when enabled): the endpoints of
// daemon/admin.h, each requiring `Authorization: Bearer <token>` (compared in constant time).
// Every admin request that passes authentication is logged (logger "admin": action, link,
// remote address, result) and counted (donagate_admin_actions_total{action}); a refused token
// is logged (rate-limited) and answered 401.
//
// Why Beast and not prometheus-cpp's civetweb exposer: one server for metrics, health, status
// and admin, on the event loop the daemon already runs, with no extra thread pool, one set of
// limits and one place that logs requests.
//
// Limits: request header + body at most `max_request_bytes` (413 beyond), a whole request must
// arrive within `request_timeout` (slow-loris senders are closed), keep-alive connections idle
// longer than that are closed, at most `max_connections` open per listener (further accepts
// are closed at once). Malformed requests get 400, unknown paths 404, wrong methods 405.
//
// Threads: one object per connection, each on its own strand of the io_context; handlers and
// probes run on those strands and must not block.
#pragma once

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/admin.h"
#include "daemon/health.h"
#include "daemon/metrics.h"

namespace donagate::daemon {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:9464";  // host:port, [v6]:port; port 0 picks a free one
  bool admin_enabled = false;
  std::string admin_listen = "127.0.0.1:9465";
  std::string admin_token;                // required (non-empty) when admin_enabled
  size_t max_request_bytes = 16 * 1024;
  std::chrono::milliseconds request_timeout{10000};
  int max_connections = 64;
};

struct HttpServerHandlers {
  prometheus::Registry* registry = nullptr;  // required: serialized on GET /metrics
  ReadinessProbe readiness;                  // absent: always ready
  StatusProvider status;                     // absent: /status answers 503
  AdminActions* admin = nullptr;             // absent: admin endpoints answer 503
  Metrics* metrics = nullptr;                // optional: counts admin actions
};

class HttpServer {
 public:
  // Objects passed in `handlers` must outlive the server.
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, HttpServerHandlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listener(s) and starts accepting. False with *error set (e.g. "listen
  // 127.0.0.1:9464: Address already in use", "admin enabled without a token") on failure;
  // nothing is left listening then.
  bool Start(std::string* error);
  // Closes the listeners and every open connection. Idempotent; safe from any thread.
  void Stop();

  // The bound ports (useful with port 0); 0 before Start or for a disabled listener.
  uint16_t port() const;
  uint16_t admin_port() const;

  class Impl;  // implementation detail (daemon/http_server.cc)

 private:
  std::shared_ptr<Impl> impl_;
};

// Splits "host:port" / "[v6]:port" into its parts; false for anything else.
bool ParseListenAddress(const std::string& text, std::string* host, uint16_t* port);

}  // namespace donagate::daemon
