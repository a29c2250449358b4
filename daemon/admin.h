// The operator's remote controls: what the token-protected admin endpoints (daemon/http_server.h)
// and `donagatectl` can ask the running daemon to do. The pipeline implements AdminActions;
// the HTTP server only authenticates, parses, dispatches, logs and counts.
//
//   POST /admin/charging/pause        → PauseCharging()   keep receiving and recording
//   POST /admin/charging/resume       → ResumeCharging()
//   POST /admin/links/{name}/stop     → StopLink(name)    graceful stop (drain, unbind)
//   POST /admin/links/{name}/start    → StartLink(name)
//   POST /admin/templates/reload      → ReloadTemplates() re-read reply templates from config
//   GET  /admin/links                 → Links()
//
// Threads: methods are called on the HTTP server's I/O thread; they must be thread-safe and
// return promptly (start the work, e.g. post a link stop to its strand, and report that it
// was started; do not wait for an unbind to finish).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/link.h"

namespace donagate::daemon {

struct AdminResult {
  enum class Code {
    kOk,          // done or started                                  → 200
    kNotFound,    // no such link                                     → 404
    kConflict,    // not possible in the current state                → 409
    kInvalid,     // the request itself is wrong (e.g. templates bad)  → 400
    kUnavailable, // the daemon cannot do it now (starting, stopping) → 503
  };
  Code code = Code::kOk;
  // Human-readable, returned to the caller as {"ok":..,"message":..} and logged. No secrets.
  std::string message;

  static AdminResult Ok(std::string message = {}) { return {Code::kOk, std::move(message)}; }
  static AdminResult Of(Code code, std::string message) { return {code, std::move(message)}; }
  bool ok() const { return code == Code::kOk; }
};

class AdminActions {
 public:
  virtual ~AdminActions() = default;
  // The kill switch: stop claiming donations for charging; ingest, acks and recording go on.
  // Idempotent (pausing a paused daemon is kOk).
  virtual AdminResult PauseCharging() = 0;
  virtual AdminResult ResumeCharging() = 0;
  // kNotFound for an unknown link name. Idempotent.
  virtual AdminResult StopLink(std::string_view name) = 0;
  virtual AdminResult StartLink(std::string_view name) = 0;
  // Re-reads and validates the reply templates; on failure keeps the current ones and
  // answers kInvalid with the loader's diagnostics.
  virtual AdminResult ReloadTemplates() = 0;
  virtual std::vector<LinkStatus> Links() = 0;
};

}  // namespace donagate::daemon
