// donagate-console: the finance web console (console/app.h). Listens on loopback by default.
//
//   donagate-console --db "host=... user=donagate_console_login" [--listen 127.0.0.1:9480]
//                    [--tls-cert cert.pem --tls-key key.pem]
//                    [--admin 127.0.0.1:9465 --admin-token-file /etc/donagate/admin.token]
//                    [--config /etc/donagate/donagate.toml]  (refunds at the operator on approval)
//                    [--max-upload-mib 64 --spool-dir /var/lib/donagate-console]
//
// The admin token is read from --admin-token-file or $DONAGATE_ADMIN_TOKEN; it is held by the
// process and never rendered. Users: `donagatectl user add NAME --roles finance,...`.
#include <csignal>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "config/config.h"
#include "config/loader.h"
#include "console/app.h"
#include "console/server.h"

int main(int argc, char** argv) {
  CLI::App cli{"donagate-console: the finance web console"};
  donagate::console::ConsoleOptions app_opt;
  donagate::console::ServerOptions srv_opt;
  std::string token_file;
  cli.add_option("--db", app_opt.conninfo, "libpq conninfo (else $DONAGATE_DATABASE_URL)");
  cli.add_option("--listen", srv_opt.listen, "host:port (default 127.0.0.1:9480, loopback)");
  cli.add_option("--tls-cert", srv_opt.tls_cert_file, "PEM certificate chain (enables TLS with --tls-key)");
  cli.add_option("--tls-key", srv_opt.tls_key_file, "PEM private key");
  cli.add_option("--admin", app_opt.admin_address, "donagated admin endpoint host:port (Operations page)");
  cli.add_option("--admin-token-file", token_file, "file holding the admin token (else $DONAGATE_ADMIN_TOKEN)");
  cli.add_option("--chart-js", app_opt.chart_js_path, "Chart.js file served as /static/chart.js (libjs-chart.js)");
  std::string config_path;
  cli.add_option("--config", config_path,
                 "donagated's configuration: approved reversals are refunded at the operator's [[charging]] backend first");
  size_t max_upload_mib = 64;
  cli.add_option("--max-upload-mib", max_upload_mib, "largest settlement file accepted (MiB)")->check(CLI::Range(1, 4096));
  cli.add_option("--spool-dir", app_opt.spool_dir, "folder for uploaded settlement files (default /tmp)");
  int session_minutes = 480;
  cli.add_option("--session-minutes", session_minutes, "session lifetime")->check(CLI::Range(5, 7 * 24 * 60));
  CLI11_PARSE(cli, argc, argv);
  app_opt.session_lifetime = std::chrono::minutes(session_minutes);
  app_opt.max_upload_bytes = max_upload_mib * 1024 * 1024;
  // The form around the file (boundaries, the small fields) rides on top of the file's limit.
  srv_opt.max_upload_bytes = app_opt.max_upload_bytes + 64 * 1024;
  srv_opt.spool_dir = app_opt.spool_dir;
  if (!config_path.empty()) {
    auto loaded = donagate::config::LoadConfig(config_path);
    if (!loaded.ok()) {
      for (auto& d : loaded.diagnostics) std::cerr << d.ToString() << "\n";
      return 2;
    }
    app_opt.charging_config = std::make_shared<const donagate::config::Config>(std::move(loaded.config));
  }
  if (app_opt.conninfo.empty())
    if (const char* env = std::getenv("DONAGATE_DATABASE_URL"); env && *env) app_opt.conninfo = env;
  if (app_opt.conninfo.empty()) {
    std::cerr << "donagate-console: no database: give --db CONNINFO or set DONAGATE_DATABASE_URL\n";
    return 2;
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, app_opt.admin_token);
    if (app_opt.admin_token.empty()) {
      std::cerr << "donagate-console: token file " << token_file << " is empty or unreadable\n";
      return 2;
    }
  } else if (const char* env = std::getenv("DONAGATE_ADMIN_TOKEN"); env && *env) {
    app_opt.admin_token = env;
  }
  if ((srv_opt.tls_cert_file.empty()) != (srv_opt.tls_key_file.empty())) {
    std::cerr << "donagate-console: --tls-cert and --tls-key go together\n";
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  donagate::console::ConsoleApp app(app_opt);
  donagate::console::Server server(srv_opt, app);
  std::string error;
  if (!server.Start(&error)) {
    std::cerr << "donagate-console: " << error << "\n";
    return 2;
  }
  std::cout << "donagate-console listening on " << (srv_opt.tls_cert_file.empty() ? "http" : "https") << "://"
            << srv_opt.listen.substr(0, srv_opt.listen.rfind(':')) << ":" << server.port() << "/" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}
