// loadgen: plays the operator's SMSC against donagated in CLIENT mode, for benchmarks.
//
// It listens on loopback, accepts SMPP binds from the gateway, and pushes mobile-originated
// deliver_sm to every bound session within a sliding window, as fast as the window allows or
// at a fixed rate. Every MO comes from its own subscriber (849xxxxxxxx, a permutation of the MO
// number), so the gateway's reply submit_sm is matched to its MO by destination address alone.
// Texts are a realistic mix: mostly valid "CV n" (n 1..10, some in UCS-2), the rest invalid.
//
// Per MO it records: deliver_sm sent -> deliver_sm_resp(ESME_ROK) received (ack latency, last
// attempt) and first deliver_sm sent -> first reply submit_sm received (end-to-end latency).
// A temporary error (ESME_RTHROTTLED 0x58, ESME_RX_T_APPN 0x64, ESME_RMSGQFUL 0x14) or a lost
// connection makes the MO redeliver later, as an SMSC does; any other error counts as rejected.
//
// One thread, one io_context, one object per connection; no per-message threads or timers.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace donagate::loadgen {

struct Options {
  std::string host = "127.0.0.1";  // loopback only: Run refuses other addresses
  uint16_t port = 0;               // first listening port; 0 = ephemeral ports
  int listeners = 1;               // ports to listen on (port, port+1, ... or ephemeral ones)
  int expect_binds = 1;            // start sending once this many sessions are bound
  int bind_wait_s = 30;            // ... or give up (exit 1) after this long
  std::string system_id;           // required bind system_id ("" = accept any)
  std::string password;            // required bind password ("" = accept any)
  int window = 256;                // unacknowledged deliver_sm per session
  uint64_t count = 0;              // MOs to generate (0 = until duration_s)
  double duration_s = 0;           // stop generating after this long (0 = until count)
  double rate = 0;                 // MO/s over all sessions (0 = as fast as windows allow)
  double valid_share = 0.85;       // share of valid "CV n" texts
  double ucs2_share = 0.10;        // share of valid texts sent in UCS-2
  std::string shortcode = "1407";
  uint16_t mo_id_tlv = 0;          // if set, a unique MO id in this TLV (same on redelivery)
  bool receipts = false;           // send a delivery receipt for every submit_sm asking for one
  int receipt_delay_ms = 0;        // ... this long after the submit_sm (a handset takes seconds)
  int redeliver_ms = 200;          // delay before redelivering after a temporary error
  double drain_s = 30;             // after generation stops, wait this long at most for acks
  double reply_wait_s = 30;        // then wait for replies at most this long ...
  double reply_idle_s = 5;         // ... or until no reply came for this long
  std::string ready_file;          // written once listening: "port1,port2,..."
  std::string acked_file;          // CSV of acked MOs: seq,source,units,text
  std::string summary_file;        // the summary JSON (also printed on stdout)
  int progress_s = 5;              // progress line on stderr every N s (0 = never)
  uint32_t seed = 1;
};

// Runs until done or SIGINT/SIGTERM. Returns the process exit code (0 when every generated MO
// was acknowledged or rejected, 1 otherwise or on a setup failure) and fills *summary.
int Run(const Options& options, nlohmann::json* summary);

}  // namespace donagate::loadgen
