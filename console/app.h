// The finance console's request handling, apart from the network (console/server.h feeds it
// requests; tests call Handle() directly).
//
// Pages (server-rendered HTML; they work without JavaScript except the chart):
//   GET  /login, POST /login, POST /logout
//   GET  /                 overview: finance::QueryReport for a range (default today), chart
//   GET  /lookup?q=        a donation's story by id, charge reference or phone number
//   GET  /reversals        requests; POST /reversals/request (finance), /reversals/decide (approver)
//   GET  /exports          links; GET /exports/donations.csv|ledger.csv?from=&to=[&progress=ID]
//                          (streamed); GET /exports/progress?id=ID rows written so far (JSON)
//   GET  /reconcile        upload form, saved runs; POST /reconcile/upload (multipart, spooled)
//                          previews the file and the mapping form; POST /reconcile/run runs
//                          finance::ReconcileWithLedger and saves the run; GET /reconcile/runs/N
//                          reopens it, /reconcile/runs/N/discrepancies.csv downloads it
//   GET  /operations       the daemon's links and charging state; POST /operations/pause|resume (ops)
//   GET  /static/chart.js, /static/console.js, /static/console.css (fixed files, no paths)
//
// Security: sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie (Secure
// with TLS), stored as SHA-256 in console_session, replaced at every login (no fixation); every
// POST carries the session's CSRF token (the login form a double-submit cookie); failed logins
// per address and per name slow down exponentially after five; every action and refusal is a
// console_audit row. Every stored or submitted text is HTML-escaped; a Content-Security-Policy
// allows scripts only from the console itself.
//
// Database: one connection per request (libpq). Reads run as donagate_finance (SET ROLE), the
// console's own tables as donagate_console, reversals as donagate_reverse through the shared
// finance::ReverseDonation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace donagate::config {
struct Config;
}

namespace donagate::console {

struct HttpRequest {
  std::string method;                          // "GET", "POST"
  std::string target;                          // path and query, as received
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // form bodies (small); uploads: see body_file
  std::string body_file;                       // path of a large body spooled to disk, or ""
  std::string remote_addr;                     // peer address, for the audit log and rate limits
  bool tls = false;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A streamed body (exports): called once with a sink that writes one chunk and returns false
  // when the client went away. Memory stays bounded whatever the size of the export.
  std::function<void(const std::function<bool(std::string_view)>& sink)> stream;
  std::string Header(const std::string& name) const;
};

struct ConsoleOptions {
  std::string conninfo;        // login role granted donagate_finance, donagate_console, donagate_reverse
  std::string admin_address;   // donagated's admin endpoint host:port ("" = Operations disabled)
  std::string admin_token;     // never rendered, never logged
  std::string chart_js_path = "/usr/share/javascript/chart.js/chart.min.js";
  std::chrono::minutes session_lifetime{8 * 60};
  size_t max_upload_bytes = 64 * 1024 * 1024;  // settlement files (413 beyond)
  std::string spool_dir = "/tmp";              // uploaded settlement files between preview and run
  // The daemon's configuration ([[charging]] backends), when the console is given it: an approved
  // reversal is then refunded at the operator first, as donagatectl reverse --refund does. Null:
  // the ledger only (docs/finance.md).
  std::shared_ptr<const config::Config> charging_config;
  int export_batch = 2000;
  int login_free_failures = 5;                 // failures before logins slow down
  std::chrono::seconds login_max_delay{900};
  // Overridable clock for the rate-limit tests.
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
};

// Failed-login accounting: per key (address, user name), failures within a window; after
// `free_failures` each attempt must wait 2^(n - free_failures) seconds (capped) after the last.
class LoginThrottle {
 public:
  LoginThrottle(int free_failures, std::chrono::seconds max_delay) : free_(free_failures), max_(max_delay) {}
  // Seconds the key must still wait (0: may try now).
  int64_t WaitSeconds(const std::string& key, std::chrono::steady_clock::time_point now);
  void Failed(const std::string& key, std::chrono::steady_clock::time_point now);
  void Succeeded(const std::string& key);

 private:
  struct Entry {
    int failures = 0;
    std::chrono::steady_clock::time_point last;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  int free_;
  std::chrono::seconds max_;
};

class ConsoleApp {
 public:
  explicit ConsoleApp(ConsoleOptions options);
  ~ConsoleApp();
  // Thread-safe: each call opens its own database connection.
  HttpResponse Handle(const HttpRequest& request);
  // POST paths whose bodies the server spools to a file (HttpRequest::body_file): uploads.
  static bool IsSpooledPath(const std::string& path) { return path == "/reconcile/upload"; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace donagate::console
