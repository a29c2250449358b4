// Logging for donagated: spdlog, one line per event, configured from [log].
//
// Convention: a message is a sequence of key=value pairs starting with event=..., e.g.
//   log->info("event=bound link={} system_id={}", link, system_id);
//   log->warn("event=ingest_failed {}", Kv("reason", status.message()));
// Values containing spaces, quotes or '=' must go through Kv()/Quote(). The configured format
// then renders the same call as either
//   ts=2026-11-28T18:00:00.123Z level=info component=link event=bound link=opa
// or
//   {"ts":"2026-11-28T18:00:00.123Z","level":"info","component":"link","event":"bound","link":"opa"}
// A message that is not key=value text is rendered as msg="..." / "msg":"...".
//
// Components are named loggers ("main", "link", "pipeline", "store", "charging", "reply",
// "http", "admin"; config::kLogComponents), each with its own level ([log.components]).
//
// Privacy: pass MSISDNs through Masked() (849123**** when [log] mask_msisdn, the default).
// As a safety net the formatter also masks any 84xxxxxxxxx / 0xxxxxxxxx digit run that reaches
// it. Secrets (config::Secret) must never be logged; log Secret::source() instead.
//
// Flood control: identical messages (same component, level and text) beyond
// max_repeats_per_minute within a minute are counted, not written; the next written occurrence
// carries suppressed=K.
//
// Threads: everything here is thread-safe. ReopenLogFiles() is meant to be called after SIGHUP
// (from the daemon's signal_set handler, not from a signal handler).
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"

namespace donagate::daemon {

// (Re)configures logging. Existing component loggers are reconfigured in place, so loggers
// fetched earlier keep working. False with *error set if the log file cannot be opened (then
// the previous configuration stays).
bool SetupLogging(const config::LogConfig& config, std::string* error);

// The logger of a component; unknown names get a logger at the global level. Before
// SetupLogging, loggers write keyvalue lines to stderr at info.
std::shared_ptr<spdlog::logger> Logger(std::string_view component);

// Reopens the log file (after logrotate renamed it). No-op when logging to stderr.
void ReopenLogFiles();

// Flushes every sink (at shutdown and in tests).
void FlushLogs();

// Tests only: the repeat window used by the next SetupLogging (default one minute).
void SetRepeatWindowForTesting(std::chrono::steady_clock::duration window);

// billing::MaskMsisdn ("84912345678" → "849123****") when [log] mask_msisdn is on (the
// default); the input unchanged when it is off.
std::string Masked(std::string_view msisdn);

// key=value with the value quoted ("..." with \" and \\ escapes) when it is empty or contains
// a space, quote, '=' or a control character.
std::string Kv(std::string_view key, std::string_view value);
std::string Quote(std::string_view value);

// Admits at most `max_per_window` events per key per window; counts the rest. Used by the
// sinks for identical messages; usable directly for events keyed differently
// (e.g. "link=opa/connect_failed").
class RepeatLimiter {
 public:
  RepeatLimiter(int max_per_window, std::chrono::steady_clock::duration window);
  // True when the event should be written; *suppressed = events swallowed for this key since
  // the last written one (report them as suppressed=K).
  bool Allow(const std::string& key, uint64_t* suppressed,
             std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  struct Entry {
    std::chrono::steady_clock::time_point window_start{};
    int written_in_window = 0;
    uint64_t suppressed = 0;
  };
  int max_per_window_;
  std::chrono::steady_clock::duration window_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace donagate::daemon
