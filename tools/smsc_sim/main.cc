// smsc_sim: see README.md.
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <iostream>

#include "tools/smsc_sim/smsc_sim.h"

using donagate::smsc_sim::MoSpec;
using donagate::smsc_sim::SimOptions;
using donagate::smsc_sim::Simulator;

int main(int argc, char** argv) {
  CLI::App app{"SMSC simulator: the operator side of an SMPP 3.4 link, for demos and tests"};
  SimOptions o;
  std::string listen = "127.0.0.1:2775";
  std::string mo_file;
  int mo_count = 0;
  std::string mo_source_base = "84900000000";
  std::string mo_destination = "1407";
  std::string mo_text = "CV 1";
  std::string message_id_format = "hex";
  app.add_option("--listen", listen, "host:port to listen on (port 0 = any free port)");
  app.add_option("--system-id", o.system_id, "system_id the ESME must bind with");
  app.add_option("--password", o.password, "password the ESME must bind with");
  app.add_option("--mo-file", mo_file, "MO traffic: one 'source,destination,text' per line");
  app.add_option("--mo-count", mo_count, "generate N MOs (sources mo-source-base + i)");
  app.add_option("--mo-source-base", mo_source_base, "first generated source MSISDN");
  app.add_option("--mo-destination", mo_destination, "destination of generated MOs");
  app.add_option("--mo-text", mo_text, "text of generated MOs");
  app.add_option("--mo-rate", o.mo_rate, "deliver_sm per second (0 = limited by the window only)");
  app.add_option("--window", o.window, "max unacknowledged deliver_sm per session");
  app.add_flag("--receipts", o.receipts, "send a delivery receipt for submit_sm with registered_delivery");
  app.add_option("--receipt-delay-ms", o.receipt_delay_ms, "delay before a receipt is sent");
  app.add_option("--receipt-stat", o.receipt_stat, "stat: of receipts (DELIVRD, UNDELIV, ...)");
  app.add_option("--message-id-format", message_id_format, "submit_sm_resp ids: hex | decimal")
      ->check(CLI::IsMember({"hex", "decimal"}));
  app.add_option("--receipt-id-format", o.receipt_id_format, "receipt ids: same | hex | decimal")
      ->check(CLI::IsMember({"same", "hex", "decimal"}));
  app.add_option("--throttle-rate", o.throttle_rate, "fraction of submit_sm answered ESME_RTHROTTLED")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--redeliver-unacked", o.redeliver_unacked,
               "redeliver deliver_sm answered with an error or unanswered when the connection drops");
  app.add_option("--redeliver-delay-ms", o.redeliver_delay_ms, "delay before a redelivery");
  app.add_option("--response-timeout-ms", o.response_timeout_ms,
                 "an unanswered deliver_sm is given up after this and redelivered (0 = wait forever)");
  app.add_option("--max-attempts", o.max_attempts, "give up on a part after N attempts (0 = never)");
  app.add_option("--enquire-link-interval", o.enquire_link_interval_s, "send enquire_link every S seconds");
  app.add_option("--drop-after-mo", o.drop_after_mo, "drop the connection once after N deliver_sm");
  app.add_option("--mo-id-tlv", o.mo_id_tlv, "TLV tag carrying a unique MO id (e.g. 0x1401 = 5121)");
  app.add_flag("--payload-tlv", o.payload_in_tlv, "send long MOs in message_payload instead of UDH parts");
  app.add_option("--duration", o.duration_s, "exit after S seconds");
  app.add_flag("--exit-when-done", o.exit_when_done, "exit once all MOs and receipts are acknowledged");
  app.add_option("--expect-submits", o.expect_submits, "with --exit-when-done: also wait for N accepted submit_sm");
  app.add_option("--report", o.report_path, "write a JSON report here on exit");
  app.add_option("--seed", o.seed, "random seed (throttling)");
  CLI11_PARSE(app, argc, argv);

  o.message_id_hex = message_id_format == "hex";
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "smsc_sim: --listen must be host:port\n";
    return 2;
  }
  o.listen_host = listen.substr(0, colon);
  if (!o.listen_host.empty() && o.listen_host.front() == '[') {
    o.listen_host = o.listen_host.substr(1, o.listen_host.size() - 2);
  }
  o.listen_port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
  if (!mo_file.empty()) {
    std::string error;
    if (!donagate::smsc_sim::LoadMoFile(mo_file, &o.mos, &error)) {
      std::cerr << "smsc_sim: " << error << "\n";
      return 2;
    }
  }
  const unsigned long long base = std::stoull(mo_source_base);
  for (int i = 0; i < mo_count; ++i) {
    o.mos.push_back(MoSpec{std::to_string(base + static_cast<unsigned long long>(i)),
                           mo_destination, mo_text});
  }

  boost::asio::io_context io;
  Simulator sim(io, o);
  std::string error;
  if (!sim.Start(&error)) {
    std::cerr << "smsc_sim: " << error << "\n";
    return 1;
  }
  // The actual port, for scripts that asked for port 0.
  std::cout << "listening " << sim.port() << std::endl;

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    sim.Shutdown();
    io.stop();
  });
  boost::asio::steady_timer deadline(io);
  if (o.duration_s > 0) {
    deadline.expires_after(std::chrono::milliseconds(static_cast<int64_t>(o.duration_s * 1000)));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      sim.Shutdown();
      io.stop();
    });
  }
  io.run();

  auto report = sim.Report();
  if (!o.report_path.empty()) {
    std::ofstream out(o.report_path);
    out << report.dump(2) << "\n";
  }
  std::cerr << "smsc_sim: mo_acked=" << report["mo_acked"] << "/" << report["mo_total"]
            << " submits=" << report["submits_total"] << " receipts_acked="
            << report["receipts_acked"] << "\n";
  return 0;
}
