// loadgen: see loadgen.h and docs/performance.md. Prints the summary JSON as the last line of
// stdout; exit 0 when every generated MO was acknowledged (or permanently rejected).
#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/loadgen/loadgen.h"

int main(int argc, char** argv) {
  CLI::App app{"loadgen: SMSC load generator for donagated client-mode links (loopback only)"};
  donagate::loadgen::Options o;
  app.add_option("--host", o.host, "loopback address to listen on");
  app.add_option("--port", o.port, "first port to listen on (0: ephemeral ports)");
  app.add_option("--listeners", o.listeners, "number of listening ports")->check(CLI::Range(1, 64));
  app.add_option("--expect-binds", o.expect_binds, "start once this many sessions are bound")->check(CLI::Range(1, 1000));
  app.add_option("--bind-wait-s", o.bind_wait_s, "give up if the binds are not up after this long");
  app.add_option("--system-id", o.system_id, "required bind system_id (default: any)");
  app.add_option("--password", o.password, "required bind password (default: any)");
  app.add_option("--window", o.window, "unacknowledged deliver_sm per session")->check(CLI::Range(1, 100000));
  app.add_option("--count", o.count, "MOs to generate (0: until --duration)");
  app.add_option("--duration", o.duration_s, "seconds of generation (0: until --count)");
  app.add_option("--rate", o.rate, "MO/s over all sessions (0: as fast as the windows allow)");
  app.add_option("--valid-share", o.valid_share, "share of valid 'CV n' texts")->check(CLI::Range(0.0, 1.0));
  app.add_option("--ucs2-share", o.ucs2_share, "share of valid texts sent in UCS-2")->check(CLI::Range(0.0, 1.0));
  app.add_option("--shortcode", o.shortcode, "destination address of the MOs");
  app.add_option("--mo-id-tlv", o.mo_id_tlv, "TLV tag carrying a unique MO id (0: none)");
  app.add_flag("--receipts", o.receipts, "send delivery receipts for replies that ask for one");
  app.add_option("--receipt-delay-ms", o.receipt_delay_ms,
                 "send each receipt this long after its submit_sm (0: at once)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--redeliver-ms", o.redeliver_ms, "delay before redelivering after a temporary error");
  app.add_option("--drain-s", o.drain_s, "max wait for outstanding acks after generation stops");
  app.add_option("--reply-wait-s", o.reply_wait_s, "max wait for replies after the acks");
  app.add_option("--reply-idle-s", o.reply_idle_s, "stop waiting for replies after this long without one");
  app.add_option("--ready-file", o.ready_file, "write the listening ports here once ready");
  app.add_option("--acked-file", o.acked_file, "CSV of acknowledged MOs (seq,source,units,text)");
  app.add_option("--summary-file", o.summary_file, "write the summary JSON here too");
  app.add_option("--progress-s", o.progress_s, "progress line on stderr every N seconds (0: never)");
  app.add_option("--seed", o.seed, "random seed");
  CLI11_PARSE(app, argc, argv);
  if (o.count == 0 && o.duration_s <= 0) {
    std::cerr << "loadgen: give --count and/or --duration\n";
    return 64;
  }
  nlohmann::json summary;
  int rc = donagate::loadgen::Run(o, &summary);
  std::cout << summary.dump() << std::endl;
  return rc;
}
