// donagated: the SMS donation gateway process. This file only parses the command line and
// loads the configuration; the daemon itself lives in donagate_daemon.
//
// Exit codes: 0 success; 1 runtime failure; 2 configuration errors (one diagnostic per line on
// stderr, "file:line:col: key: reason"); 64 command-line usage errors.
#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "config/loader.h"
#include "daemon/daemon.h"

namespace {

constexpr int kExitConfig = 2;
constexpr int kExitUsage = 64;

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Loads `path`; prints every diagnostic to stderr. nullopt when there was any.
std::optional<donagate::config::Config> LoadOrReport(const std::string& path) {
  donagate::config::LoadResult result = donagate::config::LoadConfig(path);
  for (const auto& d : result.diagnostics) std::cerr << d.ToString() << '\n';
  if (!result.ok()) return std::nullopt;
  return std::move(result.config);
}

}  // namespace

namespace {
// A charging backend may hold up to max_concurrency (default 1,000) connections per operator,
// beside the SMPP links and the database: raise the soft descriptor limit to the hard one, as
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
  CLI::App app{"donagated: SMS donation gateway (SMPP links, \"CV n\" donations, PostgreSQL ledger)",
               "donagated"};
  std::string config_path;
  std::string check_path;
  app.set_version_flag("--version", std::string("donagated ") + DONAGATE_VERSION);
  app.add_option("-c,--config", config_path, "Run the gateway with this TOML configuration file");
  app.add_option("--check-config", check_path,
                 "Validate a configuration file: print every problem (file:line:col: key: reason) "
                 "and exit 2, or print a summary and exit 0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  if (!check_path.empty()) {
    auto config = LoadOrReport(check_path);
    if (!config) return kExitConfig;
    std::cout << "config OK: " << Plural(config->links.size(), "link", "links") << ", "
              << Plural(config->campaigns.size(), "campaign", "campaigns") << ", "
              << Plural(config->charging.size(), "charging backend", "charging backends") << '\n';
    return 0;
  }
  if (config_path.empty()) {
    std::cerr << "donagated: --config FILE is required (or --check-config FILE); see --help\n";
    return kExitUsage;
  }
  auto config = LoadOrReport(config_path);
  if (!config) return kExitConfig;
  return donagate::daemon::RunDaemon(*config, config_path);
}
