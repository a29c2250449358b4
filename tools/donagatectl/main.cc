// donagatectl: the finance and operations command line.
//
// Exit codes: 0 success; 1 the command worked and found something the user must look at
// (reconcile discrepancies, donation not found, admin request refused); 2 bad input (usage,
// unreadable or malformed file, with its line number) or a failure to reach the database.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "billing/store/migrate.h"
#include "billing/store/pg.h"
#include "console/users.h"
#include "config/loader.h"
#include "tools/donagatectl/admin_client.h"
#include "billing/finance/csv.h"
#include "billing/finance/finance.h"
#include "billing/finance/reconcile.h"
#include "billing/finance/settlement.h"
#include "billing/finance/time_util.h"
#include "tools/donagatectl/charging_check.h"

// The finance code lives in billing/finance (donagate::finance), shared with the console.
namespace donagate::ctl {
using namespace donagate::finance;
}
namespace ctl = donagate::ctl;
namespace billing = donagate::billing;

namespace {

struct Globals {
  std::string db;           // --db conninfo
  std::string config_path;  // --config donagate.toml (database + admin settings)
  std::string zone = "Asia/Ho_Chi_Minh";
  std::string admin;        // --admin host:port
  std::string token_env = "DONAGATE_ADMIN_TOKEN";
  std::string token_file;
};

std::optional<donagate::config::Config> LoadedConfig(const Globals& g) {
  if (g.config_path.empty()) return std::nullopt;
  auto result = donagate::config::LoadConfig(g.config_path);
  if (!result.ok()) {
    for (auto& d : result.diagnostics) std::cerr << d.ToString() << "\n";
    std::exit(2);
  }
  return result.config;
}

std::string Conninfo(const Globals& g) {
  if (!g.db.empty()) return g.db;
  if (auto cfg = LoadedConfig(g)) return cfg->database.conninfo.Reveal();
  if (const char* env = std::getenv("DONAGATE_DATABASE_URL"); env && *env) return env;
  std::cerr << "donagatectl: no database: give --db CONNINFO, --config FILE or set DONAGATE_DATABASE_URL\n";
  std::exit(2);
}

int Offset(const Globals& g) {
  auto off = ctl::ZoneOffsetSeconds(g.zone);
  if (!off) {
    std::cerr << "donagatectl: unknown zone \"" << g.zone << "\"\n";
    std::exit(2);
  }
  return *off;
}

void Connect(billing::pg::Connection& conn, const std::string& conninfo) {
  auto st = conn.Ensure(conninfo);
  if (!st.ok()) {
    std::cerr << "donagatectl: cannot connect to the database: " << st.message() << "\n";
    std::exit(2);
  }
}

[[noreturn]] void DbFailure(const billing::StoreStatus& st) {
  std::cerr << "donagatectl: database error: " << st.message() << "\n";
  std::exit(2);
}

int64_t Day(const std::string& text, const char* what) {
  auto d = ctl::ParseDate(text);
  if (!d) {
    std::cerr << "donagatectl: " << what << " \"" << text << "\" is not a date (YYYY-MM-DD)\n";
    std::exit(2);
  }
  return *d;
}

// Progress on the terminal only: a pipe or a file gets nothing.
std::function<void(int64_t)> Progress(const char* what) {
  if (!isatty(STDERR_FILENO)) return {};
  return [what](int64_t n) { std::cerr << "\r" << what << ": " << n << " rows" << std::flush; };
}

std::string Token(const Globals& g, const std::optional<donagate::config::Config>& cfg) {
  if (!g.token_file.empty()) {
    std::ifstream in(g.token_file);
    std::string t;
    std::getline(in, t);
    if (t.empty()) {
      std::cerr << "donagatectl: token file " << g.token_file << " is empty or unreadable\n";
      std::exit(2);
    }
    return t;
  }
  if (const char* env = std::getenv(g.token_env.c_str()); env && *env) return env;
  if (cfg && !cfg->admin.token.Reveal().empty()) return cfg->admin.token.Reveal();
  return "";
}

int Admin(const Globals& g, const std::string& method, const std::string& target) {
  auto cfg = LoadedConfig(g);
  std::string address = g.admin.empty() ? (cfg ? cfg->admin.listen : "127.0.0.1:9465") : g.admin;
  auto res = ctl::AdminRequest(address, method, target, Token(g, cfg));
  if (res.status == 0) {
    std::cerr << "donagatectl: cannot reach the admin endpoint at " << address << ": " << res.error << "\n";
    return 2;
  }
  std::cout << res.body << (res.body.empty() || res.body.back() == '\n' ? "" : "\n");
  if (res.status / 100 != 2) {
    std::cerr << "donagatectl: admin request refused: HTTP " << res.status << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"donagatectl: donagate finance and operations tool"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--db", g.db, "libpq conninfo (else --config's database, else $DONAGATE_DATABASE_URL)");
  app.add_option("--config", g.config_path, "donagated configuration file");
  app.add_option("--zone", g.zone, "finance time zone (default Asia/Ho_Chi_Minh)");
  app.add_option("--admin", g.admin, "admin endpoint host:port (default: config's [admin] listen)");
  app.add_option("--token-env", g.token_env, "environment variable holding the admin token");
  app.add_option("--token-file", g.token_file, "file holding the admin token");
  app.set_version_flag("--version", std::string(DONAGATE_VERSION));

  // migrate
  auto* migrate = app.add_subcommand("migrate", "apply the database schema migrations");

  // report
  auto* report = app.add_subcommand("report", "totals by operator and campaign for a day or a range");
  std::string day, from, to, format = "table";
  report->add_option("--day", day, "finance day YYYY-MM-DD");
  report->add_option("--from", from, "first day YYYY-MM-DD");
  report->add_option("--to", to, "last day YYYY-MM-DD (inclusive)");
  report->add_option("--format", format, "table | csv | json")->check(CLI::IsMember({"table", "csv", "json"}));

  // export
  auto* exp = app.add_subcommand("export", "stream donations or ledger entries as CSV");
  std::string what, output;
  int batch = 5000;
  exp->add_option("what", what, "donations | ledger")->required()->check(CLI::IsMember({"donations", "ledger"}));
  exp->add_option("--day", day, "finance day YYYY-MM-DD");
  exp->add_option("--from", from, "first day");
  exp->add_option("--to", to, "last day (inclusive)");
  exp->add_option("--output,-o", output, "output file (default stdout)");
  exp->add_option("--batch", batch, "rows per cursor fetch")->check(CLI::Range(1, 1000000));

  // reconcile
  auto* rec = app.add_subcommand("reconcile", "compare our ledger with an operator's settlement file");
  std::string rec_operator, settlement, mapping_file, discrepancies_out;
  ctl::SettlementMapping mapping;
  std::string delimiter;
  std::vector<std::string> charged_values;
  rec->add_option("--operator", rec_operator, "operator name as in the configuration")->required();
  rec->add_option("--day", day, "finance day YYYY-MM-DD")->required();
  rec->add_option("--settlement", settlement, "the operator's settlement file")->required();
  rec->add_option("--mapping", mapping_file, "column mapping TOML (tools/donagatectl/mappings/)");
  rec->add_option("--delimiter", delimiter, "field delimiter (one character, 'tab')");
  rec->add_option("--reference-column", mapping.reference_column, "column of our charge reference");
  rec->add_option("--msisdn-column", mapping.msisdn_column, "column of the subscriber number");
  rec->add_option("--amount-column", mapping.amount_column, "column of the amount in VND");
  rec->add_option("--amount-thousands-separator", mapping.amount_format.thousands_separator,
                  "digit grouping of amounts, e.g. \".\" for 100.000");
  rec->add_option("--amount-decimal-separator", mapping.amount_format.decimal_separator,
                  "decimal separator of amounts, e.g. \",\" for 100.000,00 (the decimals must be zeros)");
  rec->add_option("--amount-currency-prefix", mapping.amount_format.currency_prefix,
                  "text before amounts, removed when present, e.g. VND");
  rec->add_option("--amount-currency-suffix", mapping.amount_format.currency_suffix,
                  "text after amounts, removed when present, e.g. đ");
  rec->add_option("--time-column", mapping.time_column, "column of the charge time");
  rec->add_option("--time-format", mapping.time_format, "iso8601 or e.g. \"%d/%m/%Y %H:%M:%S\"");
  rec->add_option("--time-zone", mapping.time_zone, "zone of times without an offset");
  rec->add_option("--status-column", mapping.status_column, "column of the charge result");
  rec->add_option("--charged-value", charged_values, "status value meaning charged (repeatable)");
  rec->add_flag("!--no-header", mapping.header, "the file has no header line (columns by position)");
  rec->add_option("--discrepancies", discrepancies_out, "write the discrepancies as CSV to this file");
  rec->add_option("--format", format, "table | json")->check(CLI::IsMember({"table", "json"}));

  // reverse
  auto* rev = app.add_subcommand("reverse", "append reversing ledger rows for a charged donation");
  int64_t donation_id = 0;
  std::string reason, actor;
  rev->add_option("donation", donation_id, "donation id")->required();
  rev->add_option("--reason", reason, "why (recorded with the reversal)")->required();
  rev->add_option("--actor", actor, "who (default: $SUDO_USER, $USER)");
  bool refund = false;
  rev->add_flag("--refund", refund, "first refund every charged key at the operator's backend (needs --config)");
  bool verbose = false;
  rev->add_flag("--verbose,-v", verbose, "on a refusal, also print the database's raw error");

  // donation show
  auto* donation = app.add_subcommand("donation", "a donation's or a subscriber's full story");
  auto* show = donation->add_subcommand("show", "show one donation (ID) or a subscriber (--msisdn)");
  donation->require_subcommand(1);
  int64_t show_id = 0;
  std::string show_msisdn;
  show->add_option("id", show_id, "donation id");
  show->add_option("--msisdn", show_msisdn, "subscriber number (84..., +84..., 0...)");

  // admin wrappers
  auto* links = app.add_subcommand("links", "list the daemon's SMSC links and their state");
  auto* pause = app.add_subcommand("pause-charging", "stop charging (messages are still received and recorded)");
  auto* resume = app.add_subcommand("resume-charging", "resume charging");
  auto* link_stop = app.add_subcommand("link-stop", "unbind and stop one link");
  auto* link_start = app.add_subcommand("link-start", "start one link");
  auto* reload = app.add_subcommand("reload-templates", "reload reply templates from the configuration file");
  // charging-check: capabilities/health exchange with an operator's backend, charging nobody
  auto* charging_check = app.add_subcommand("charging-check",
                                            "check the link to an operator's charging backend (charges nobody; needs --config)");
  std::string check_operator;
  charging_check->add_option("--operator", check_operator, "operator name of a [[charging]] entry")->required();

  std::string link_name;
  link_stop->add_option("name", link_name)->required();
  link_start->add_option("name", link_name)->required();

  // user add|passwd|disable: the finance console's accounts (console/users.h). The password is
  // read from $DONAGATE_USER_PASSWORD or the first line of stdin, never from the command line.
  auto* user = app.add_subcommand("user", "finance console accounts");
  user->require_subcommand(1);
  auto* user_add = user->add_subcommand("add", "add a console user");
  auto* user_passwd = user->add_subcommand("passwd", "set a console user's password (ends their sessions)");
  auto* user_disable = user->add_subcommand("disable", "disable a console user (ends their sessions)");
  std::string user_name, user_roles;
  for (auto* sub : {user_add, user_passwd, user_disable}) sub->add_option("name", user_name, "user name")->required();
  user_add->add_option("--roles", user_roles, "comma-separated: finance, approver, ops, admin")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*links) return Admin(g, "GET", "/admin/links");
  if (*pause) return Admin(g, "POST", "/admin/charging/pause");
  if (*resume) return Admin(g, "POST", "/admin/charging/resume");
  if (*link_stop) return Admin(g, "POST", "/admin/links/" + link_name + "/stop");
  if (*link_start) return Admin(g, "POST", "/admin/links/" + link_name + "/start");
  if (*reload) return Admin(g, "POST", "/admin/templates/reload");
  if (*charging_check) {
    auto cfg = LoadedConfig(g);
    if (!cfg) {
      std::cerr << "donagatectl: charging-check needs --config FILE\n";
      return 2;
    }
    return donagate::ctl::ChargingCheck(*cfg, check_operator, std::cout, std::cerr);
  }

  const std::string conninfo = Conninfo(g);
  const int offset = Offset(g);

  if (*migrate) {
    billing::MigrateReport mr;
    auto st = billing::Migrate(conninfo, &mr);
    if (!st.ok()) DbFailure(st);
    std::cout << "schema version " << mr.from_version << " -> " << mr.to_version << " (" << mr.applied.size()
              << " applied)\n";
    return 0;
  }

  auto day_range = [&](ctl::UtcRange* range, std::string* from_s, std::string* to_s) {
    if (!day.empty()) from = to = day;
    if (from.empty() || to.empty()) {
      std::cerr << "donagatectl: give --day, or --from and --to\n";
      std::exit(2);
    }
    int64_t f = Day(from, "--from"), t = Day(to, "--to");
    if (t < f) {
      std::cerr << "donagatectl: --to is before --from\n";
      std::exit(2);
    }
    *range = {ctl::LocalDayRange(f, offset).start, ctl::LocalDayRange(t, offset).end};
    *from_s = from;
    *to_s = to;
  };

  billing::pg::Connection conn;
  Connect(conn, conninfo);

  if (*user) {
    const char* who = std::getenv("SUDO_USER");
    if (!who || !*who) who = std::getenv("USER");
    const std::string actor = who && *who ? who : "unknown";
    auto password = [] {
      if (const char* env = std::getenv("DONAGATE_USER_PASSWORD"); env && *env) return std::string(env);
      std::string line;
      std::getline(std::cin, line);
      return line;
    };
    billing::StoreStatus st;
    if (*user_add) {
      std::vector<std::string> roles;
      std::string error;
      if (!donagate::console::ParseRoles(user_roles, &roles, &error)) {
        std::cerr << "donagatectl: " << error << "\n";
        return 2;
      }
      st = donagate::console::AddUser(conn, user_name, password(), roles, actor, "donagatectl");
    } else if (*user_passwd) {
      st = donagate::console::SetPassword(conn, user_name, password(), actor, "donagatectl");
    } else {
      st = donagate::console::DisableUser(conn, user_name, actor, "donagatectl");
    }
    if (!st.ok()) {
      std::cerr << "donagatectl: " << st.message() << "\n";
      return st.transient() ? 2 : 1;
    }
    std::cout << "user " << user_name << (*user_add ? " added" : *user_passwd ? ": password set" : " disabled") << "\n";
    return 0;
  }

  if (*report) {
    ctl::UtcRange range;
    std::string f, t;
    day_range(&range, &f, &t);
    std::vector<ctl::ReportRow> rows;
    auto st = ctl::QueryReport(conn, range, &rows);
    if (!st.ok()) DbFailure(st);
    ctl::PrintReport(std::cout, rows,
                     format == "csv" ? ctl::ReportFormat::kCsv
                                     : format == "json" ? ctl::ReportFormat::kJson : ctl::ReportFormat::kTable,
                     f, t, g.zone);
    return 0;
  }

  if (*exp) {
    ctl::UtcRange range;
    std::string f, t;
    day_range(&range, &f, &t);
    std::ofstream file;
    std::ostream* out = &std::cout;
    if (!output.empty()) {
      file.open(output, std::ios::binary | std::ios::trunc);
      if (!file) {
        std::cerr << "donagatectl: cannot write " << output << "\n";
        return 2;
      }
      out = &file;
    }
    int64_t n = 0;
    auto progress = Progress(what.c_str());
    auto st = ctl::ExportCsv(conn, what == "ledger" ? ctl::ExportKind::kLedger : ctl::ExportKind::kDonations, range,
                             *out, offset, batch, progress, &n);
    if (progress) std::cerr << "\n";
    if (!st.ok()) DbFailure(st);
    out->flush();
    if (!output.empty()) std::cerr << "exported " << n << " " << what << " rows to " << output << "\n";
    return 0;
  }

  if (*rec) {
    ctl::SettlementMapping m;
    if (!mapping_file.empty()) {
      std::string error;
      if (!ctl::LoadSettlementMapping(mapping_file, &m, &error)) {
        std::cerr << "donagatectl: " << error << "\n";
        return 2;
      }
    }
    // Flags override the mapping file.
    if (!delimiter.empty()) {
      if (delimiter == "tab" || delimiter == "\\t") delimiter = "\t";
      if (delimiter.size() != 1) {
        std::cerr << "donagatectl: --delimiter must be one character\n";
        return 2;
      }
      m.delimiter = delimiter[0];
    }
    auto take = [](const std::string& flag, std::string* into) {
      if (!flag.empty()) *into = flag;
    };
    take(mapping.reference_column, &m.reference_column);
    take(mapping.msisdn_column, &m.msisdn_column);
    take(mapping.amount_column, &m.amount_column);
    take(mapping.time_column, &m.time_column);
    take(mapping.status_column, &m.status_column);
    take(mapping.amount_format.thousands_separator, &m.amount_format.thousands_separator);
    take(mapping.amount_format.decimal_separator, &m.amount_format.decimal_separator);
    take(mapping.amount_format.currency_prefix, &m.amount_format.currency_prefix);
    take(mapping.amount_format.currency_suffix, &m.amount_format.currency_suffix);
    if (mapping.time_format != ctl::SettlementMapping{}.time_format) m.time_format = mapping.time_format;
    if (mapping.time_zone != ctl::SettlementMapping{}.time_zone) m.time_zone = mapping.time_zone;
    if (!mapping.header) m.header = false;
    if (!charged_values.empty()) m.charged_values = charged_values;

    std::ifstream in(settlement, std::ios::binary);
    if (!in) {
      std::cerr << "donagatectl: cannot read " << settlement << "\n";
      return 2;
    }
    std::vector<ctl::SettlementRow> rows;
    ctl::SettlementError err;
    if (!ctl::ReadSettlement(in, m, &rows, &err)) {
      std::cerr << settlement << (err.line ? ":" + std::to_string(err.line) : "") << ": " << err.message << "\n";
      return 2;
    }
    const int64_t d = Day(day, "--day");
    const ctl::UtcRange range = ctl::LocalDayRange(d, offset);
    ctl::ReconcileReport report_r;
    auto st = ctl::ReconcileWithLedger(conn, rec_operator, range, rows, offset, &report_r);
    if (!st.ok()) DbFailure(st);

    using K = ctl::DiscrepancyKind;
    const K kinds[] = {K::kMissingAtOperator, K::kMissingInLedger, K::kAmountMismatch, K::kStatusMismatch,
                       K::kDuplicateAtOperator};
    if (format == "json") {
      std::cout << "{\"operator\":\"" << rec_operator << "\",\"day\":\"" << day << "\"";
      for (auto& [name, value] : ctl::ReconcileFigures(report_r)) std::cout << ",\"" << name << "\":" << value;
      std::cout << "}\n";
    } else {
      std::cout << "Reconciliation " << rec_operator << " " << day << " (" << g.zone << ")\n"
                << "  ours:   " << report_r.our_charged_count << " charges, " << report_r.our_charged_vnd << " VND\n"
                << "  theirs: " << report_r.their_charged_count << " charges, " << report_r.their_charged_vnd
                << " VND (" << report_r.their_rows_outside_day << " rows outside the day ignored)\n";
      if (report_r.their_duplicate_count > 0)
        std::cout << "          of which " << report_r.their_duplicate_count << " duplicate line(s), "
                  << report_r.their_duplicate_vnd << " VND billed twice (see duplicate_at_operator)\n";
      std::cout
                << "  matched: " << report_r.matched << " (" << report_r.matched_vnd << " VND), agreed not charged: "
                << report_r.agreed_not_charged << "\n";
      for (K k : kinds) std::cout << "  " << ctl::DiscrepancyKindName(k) << ": " << report_r.Count(k) << "\n";
    }
    if (!discrepancies_out.empty()) {
      std::ofstream out(discrepancies_out, std::ios::binary | std::ios::trunc);
      if (!out) {
        std::cerr << "donagatectl: cannot write " << discrepancies_out << "\n";
        return 2;
      }
      ctl::WriteDiscrepancyCsv(out, report_r);
    }
    return report_r.discrepancies.empty() ? 0 : 1;
  }

  if (*rev) {
    if (actor.empty()) {
      const char* u = std::getenv("SUDO_USER");
      if (!u || !*u) u = std::getenv("USER");
      actor = u && *u ? u : "unknown";
    }
    if (refund) {
      auto cfg = LoadedConfig(g);
      if (!cfg) {
        std::cerr << "donagatectl: --refund needs --config (the operator's [[charging]] backend)\n";
        return 2;
      }
      ctl::RefundForReversal refund_r;
      auto rs = ctl::RefundBeforeReversal(conn, *cfg, donation_id, &refund_r);
      if (!rs.ok()) {
        std::cerr << "donagatectl: refund refused: " << rs.message() << "\n";
        return rs.transient() ? 2 : 1;
      }
      if (!refund_r.supported) std::cout << "the operator's charging backend has no refunds: reversing the ledger only\n";
      for (auto& l : refund_r.lines)
        std::cout << "refund " << l.key << " " << l.amount_vnd << " VND: " << l.outcome
                  << (l.detail.empty() ? "" : " (" + l.detail + ")") << "\n";
      if (!refund_r.may_reverse) {
        std::cerr << "donagatectl: not every charge was refunded; the ledger is unchanged. Run the same "
                     "command again (refunds are idempotent per key).\n";
        return 1;
      }
      reason += refund_r.reason_suffix;
    }
    ctl::ReversalOutcome o;
    auto st = ctl::ReverseDonation(conn, donation_id, reason, actor, &o);
    if (!st.ok()) {
      std::cerr << "donagatectl: " << ctl::ExplainReversalRefusal(donation_id, st) << "\n";
      if (verbose)
        std::cerr << "donagatectl: database error" << (st.sqlstate().empty() ? "" : " " + st.sqlstate()) << ": "
                  << st.message() << (st.message().ends_with('\n') ? "" : "\n");
      return st.transient() ? 2 : 1;
    }
    if (o.already_reversed)
      std::cout << "donation " << donation_id << " was already reversed (journal " << o.journal_id << ", "
                << o.amount_vnd << " VND); nothing written\n";
    else
      std::cout << "donation " << donation_id << " reversed: journal " << o.journal_id << ", " << o.amount_vnd
                << " VND, by " << actor << "\n";
    return 0;
  }

  if (*show) {
    bool found = false;
    billing::StoreStatus st;
    if (!show_msisdn.empty()) {
      std::string n = show_msisdn;
      if (n.rfind("+", 0) == 0) n.erase(0, 1);
      if (n.rfind("0", 0) == 0) n = "84" + n.substr(1);
      st = ctl::ShowSubscriber(conn, n, std::cout, offset, &found);
    } else if (show_id > 0) {
      st = ctl::ShowDonation(conn, show_id, std::cout, offset, &found);
    } else {
      std::cerr << "donagatectl: give a donation id or --msisdn\n";
      return 2;
    }
    if (!st.ok()) DbFailure(st);
    if (!found) {
      std::cerr << "donagatectl: not found\n";
      return 1;
    }
    return 0;
  }
  return 2;
}
