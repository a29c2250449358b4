// charging_sim: see docs/charging.md ("Simulator"); --dialect carrier_billing serves the CAMARA
// Carrier Billing API instead (sim_server.h). SIGTERM/SIGINT write the debit log
// (--debit-log, CSV key,msisdn,amount,at) and exit 0.
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>

#include "tools/charging_sim/sim_server.h"

using donagate::charging_sim::SimOptions;
using donagate::charging_sim::SimServer;

namespace {
// donagated opens up to max_concurrency (default 1,000) connections per operator:
// raise the soft descriptor limit to the hard one, as
// daemons do, instead of failing with EMFILE under load.
void RaiseOpenFileLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
}  // namespace

int main(int argc, char** argv) {
  RaiseOpenFileLimit();
  CLI::App app{"charging_sim: HTTP charging backend simulator for donagate (docs/charging.md)"};
  SimOptions options;
  std::string listen = "127.0.0.1:8088";
  std::string balances_file, barred_file, debit_log;
  app.add_option("--listen", listen, "host:port to listen on (port 0: any free port)");
  app.add_option("--default-balance", options.default_balance_vnd, "balance of subscribers not in --balances (VND)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--balances", balances_file, "file of 'msisdn,balance' lines")->check(CLI::ExistingFile);
  app.add_option("--barred", barred_file, "file of barred msisdns, one per line")->check(CLI::ExistingFile);
  app.add_option("--latency-ms", options.rates.latency_ms, "delay before every charging answer")->check(CLI::NonNegativeNumber);
  app.add_option("--fail-rate", options.rates.fail_rate, "share of calls answered 503 unprocessed")->check(CLI::Range(0.0, 1.0));
  app.add_option("--timeout-rate", options.rates.timeout_rate, "share of charges answered only after --timeout-delay-ms")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--timeout-delay-ms", options.rates.timeout_delay_ms, "delay of a 'timed out' answer")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lost-response-rate", options.rates.lost_response_rate,
                 "share of charges processed whose answer is never sent (connection closed)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", options.seed, "random seed for the fault rates");
  app.add_option("--debit-log", debit_log, "CSV written on SIGTERM/SIGINT");
  app.add_option("--token", options.token, "require 'Authorization: Bearer TOKEN'");
  app.add_option("--tls-cert", options.tls_cert_file, "serve HTTPS with this certificate chain (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "private key for --tls-cert (PEM)")->check(CLI::ExistingFile);
  std::string dialect = "http";
  app.add_option("--dialect", dialect, "http (docs/charging.md contract) or carrier_billing (CAMARA Carrier Billing)")
      ->check(CLI::IsMember({"http", "carrier_billing"}));
  app.add_option("--client-id", options.client_id, "carrier_billing: OAuth client id allowed at /oauth/token");
  app.add_option("--client-secret", options.client_secret, "carrier_billing: that client's secret");
  app.add_option("--token-lifetime-s", options.token_lifetime_s, "carrier_billing: expires_in of issued tokens")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (dialect == "carrier_billing") options.dialect = donagate::charging_sim::Dialect::kCarrierBilling;

  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "charging_sim: --listen must be host:port\n";
    return 2;
  }
  options.listen_host = listen.substr(0, colon);
  if (!options.listen_host.empty() && options.listen_host.front() == '[') {
    options.listen_host = options.listen_host.substr(1, options.listen_host.size() - 2);
  }
  try {
    int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    options.listen_port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    std::cerr << "charging_sim: bad port in --listen " << listen << "\n";
    return 2;
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    std::cerr << "charging_sim: --tls-cert and --tls-key go together\n";
    return 2;
  }
  std::string error;
  if (!balances_file.empty() && !donagate::charging_sim::LoadBalances(balances_file, &options.balances, &error)) {
    std::cerr << "charging_sim: " << error << "\n";
    return 2;
  }
  if (!barred_file.empty() && !donagate::charging_sim::LoadBarred(barred_file, &options.barred, &error)) {
    std::cerr << "charging_sim: " << error << "\n";
    return 2;
  }

  boost::asio::io_context io;
  SimServer server(io, options);
  if (!server.Start(&error)) {
    std::cerr << "charging_sim: " << error << "\n";
    return 1;
  }
  std::cout << "charging_sim listening on " << options.listen_host << ":" << server.port()
            << (options.tls_cert_file.empty() ? " (http)" : " (https)")
            << (options.dialect == donagate::charging_sim::Dialect::kCarrierBilling ? " dialect carrier_billing" : "")
            << std::endl;

  int exit_code = 0;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (!debit_log.empty()) {
      std::string write_error;
      if (server.WriteDebitLog(debit_log, &write_error)) {
        std::cerr << "charging_sim: signal " << signal << ", wrote " << server.debits().size() << " debits to "
                  << debit_log << std::endl;
      } else {
        std::cerr << "charging_sim: " << write_error << std::endl;
        exit_code = 1;
      }
    }
    io.stop();
  });
  io.run();
  return exit_code;
}
