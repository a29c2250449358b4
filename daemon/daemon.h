// donagated's process: wires links, pipeline, ingest writer, charging worker, reply sender and
// the HTTP endpoints together, and owns the shutdown order.
//
// Start: logging → metrics → (optional) migrations → ingest writer → restore pending
// concatenated parts → charging worker, reply sender → HTTP → links (last, so nothing arrives
// before the pipeline can store it).
//
// Signals: SIGTERM/SIGINT → graceful stop, exit 0: new MOs get the temporary error, the reply
// sender and the charging worker drain and record what is in flight, links unbind (waiting for
// in-flight inbound completions), the ingest writer commits what it has queued, HTTP closes.
// SIGHUP → log files are reopened (logrotate).
#pragma once

#include <memory>

#include "config/config.h"

namespace donagate::daemon {

// Runs until SIGTERM/SIGINT. Returns the process exit code: 0 after a graceful stop, 1 when
// the daemon could not start (database unreachable for migrations, HTTP port taken, a link or
// backend misconfigured beyond what the loader checks). `config_path` is the file `config`
// was loaded from; the admin "reload templates" action re-reads it.
int RunDaemon(const config::Config& config, const std::string& config_path = "");

}  // namespace donagate::daemon
