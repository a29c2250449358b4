#include "config/loader.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "config/text_fold.h"

namespace donagate::config {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Diagnostics context

struct Context {
  std::string file;
  std::string base_dir;
  LoadOptions options;
  std::vector<Diagnostic> diagnostics;

  void Error(const toml::source_region& where, std::string key, std::string reason) {
    Diagnostic d;
    d.file = file;
    d.line = static_cast<int>(where.begin.line);
    d.column = static_cast<int>(where.begin.column);
    d.key = std::move(key);
    d.reason = std::move(reason);
    diagnostics.push_back(std::move(d));
  }

  std::optional<std::string> GetEnv(const std::string& name) const {
    if (options.getenv) return options.getenv(name);
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  std::string Resolve(const std::string& path) const {
    if (path.empty() || fs::path(path).is_absolute()) return path;
    return (fs::path(base_dir) / path).lexically_normal().string();
  }
};

std::string_view TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest candidate when it is plausibly a typo of `word`, else empty.
std::string_view ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = SIZE_MAX;
  for (auto c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(1, std::min<size_t>(3, word.size() / 3));
  return best_distance <= limit ? best : std::string_view();
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

bool IsReadableFile(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  return ::access(path.c_str(), R_OK) == 0;
}

bool ReadWholeFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

// Every key the loader accepts, per table ("" is the root; arrays of tables without "[]").
const std::vector<std::pair<std::string_view, std::vector<std::string_view>>>& Schema() {
  static const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> schema = {
      {"smsc.tls", {"enabled", "ca_file", "cert_file", "key_file", "verify_peer", "server_name"}},
      {"smsc",
       {"name", "operator", "mode", "host", "port", "system_id", "password_env", "password_file",
        "system_type", "bind_type", "window", "tps", "enquire_link_interval_s",
        "response_timeout_s", "reconnect_backoff_min_s", "reconnect_backoff_max_s",
        "throttle_pause_s", "throttle_max_retries", "max_pdu_size",
        "message_id_normalization", "reply_long_mode", "gsm_packed", "mo_id_tlv",
        "source_ton", "source_npi", "dest_ton", "dest_npi", "tls", "allowed_ips",
        "max_binds_per_account", "idle_timeout_s", "bind_timeout_s",
        "max_failed_binds_per_ip", "failed_bind_delay_s"}},
      {"database",
       {"conninfo", "conninfo_env", "conninfo_file", "pool_size", "batch_size", "batch_linger_ms",
        "run_migrations_on_start", "statement_timeout_ms", "connect_timeout_s"}},
      {"campaign.templates",
       {"success", "partial", "insufficient", "syntax", "daily_cap", "inactive", "failed",
        "help", "stop", "stop_all", "confirm_request", "confirm_none", "status", "rate_limited"}},
      {"campaign",
       {"name", "keyword", "shortcode", "unit_price_vnd", "max_units_per_message",
        "max_units_per_day_per_msisdn", "active_from", "active_to", "charging_mode",
        "templates", "help_keywords", "stop_keywords", "stop_all_keywords", "confirm_keywords",
        "status_keywords", "confirm_above_units", "confirm_window_s", "reply_encoding"}},
      {"charging",
       {"operator", "backend", "url", "timeout_ms", "max_concurrency", "retries",
        "status_backoff_min_ms", "status_backoff_max_ms", "token_env", "token_file",
        "tls_verify", "ca_file", "breaker_failure_threshold", "breaker_cooloff_s",
        "charging_mode", "initial_balance_vnd",
        // backend = "diameter"
        "peers", "origin_host", "origin_realm", "destination_realm", "destination_host",
        "service_context_id", "service_identifier", "rating_group", "campaign_service_identifiers",
        "campaign_rating_groups", "idempotency_avp_code", "idempotency_avp_vendor",
        "watchdog_interval_ms", "reconnect_interval_ms", "failure_handling", "tls", "tls_cert_file",
        "tls_key_file",
        // backend = "carrier_billing"
        "token_url", "client_id", "client_secret_env", "client_secret_file", "scope", "two_step",
        "merchant_identifier", "payment_description", "token_refresh_margin_s"}},
      {"pipeline",
       {"temp_error_status", "max_inflight", "concat_timeout_s", "concat_on_timeout",
        "charge_batch_size", "charge_concurrency", "charge_lease_s", "charge_workers",
        "charge_yield_ingest_backlog",
        "reply_batch_size", "reply_max_inflight", "poll_interval_ms", "instance_id", "blocklist_file", "start_charging_paused",
        "redelivery_window_s", "ack_horizon_s", "late_ack_ms", "pending_receipt_max_age_s",
        "max_mos_per_minute_per_msisdn", "max_replies_per_hour_per_msisdn"}},
      {"http", {"listen"}},
      {"admin", {"enabled", "listen", "token_env", "token_file"}},
      {"log", {"level", "format", "file", "mask_msisdn", "max_repeats_per_minute", "components"}},
      {"", {"smsc", "database", "campaign", "charging", "pipeline", "http", "admin", "log"}},
      {"log.components", std::vector<std::string_view>(std::begin(kLogComponents), std::end(kLogComponents))},
  };
  return schema;
}

std::vector<std::string_view> KeysOf(std::string_view section) {
  for (const auto& [name, keys] : Schema()) {
    if (name == section) return keys;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Reading one table: known keys declared up front, so unknown keys (with a did-you-mean hint)
// are reported once, and a required key that is missing only because of a typo is reported
// once (as the typo) rather than twice.

class TableReader {
 public:
  TableReader(Context& ctx, const toml::table& table, std::string path,
              std::vector<std::string_view> known)
      : ctx_(ctx), table_(table), path_(std::move(path)), known_(std::move(known)) {
    for (const auto& [key, node] : table_) {
      std::string_view k = key.str();
      if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
      std::string reason = "unknown key";
      std::string_view hint = ClosestMatch(k, known_);
      if (!hint.empty()) {
        reason += " (did you mean " + Quote(hint) + "?)";
        hinted_.insert(std::string(hint));
      }
      // An inline secret next to known <key>_env/<key>_file gets its own reason from SecretValue.
      if (std::find(known_.begin(), known_.end(), std::string(k) + "_env") != known_.end()) continue;
      ctx_.Error(key.source(), KeyPath(k), reason);
    }
  }

  const toml::table& table() const { return table_; }
  const std::string& path() const { return path_; }
  std::string KeyPath(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const toml::node* Find(std::string_view key) const { return table_.get(key); }
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  void Missing(std::string_view key, std::string reason = "required key is missing") {
    if (hinted_.count(std::string(key))) return;  // already reported as a typo of this key
    ctx_.Error(table_.source(), KeyPath(key), std::move(reason));
  }
  void Error(std::string_view key, std::string reason) {
    const toml::node* n = Find(key);
    ctx_.Error(n ? n->source() : table_.source(), KeyPath(key), std::move(reason));
  }
  void TypeError(std::string_view key, std::string_view expected) {
    Error(key, "expected " + std::string(expected) + ", got " + std::string(TypeName(Find(key)->type())));
  }

  bool String(std::string_view key, std::string& out, bool required = false) {
    const toml::node* n = Find(key);
    if (!n) {
      if (required) Missing(key);
      return false;
    }
    if (!n->is_string()) {
      TypeError(key, "a string");
      return false;
    }
    out = n->as_string()->get();
    if (required && out.empty()) {
      Error(key, "must not be empty");
      return false;
    }
    return true;
  }

  template <class Int>
  bool Integer(std::string_view key, Int& out, int64_t lo, int64_t hi, bool required = false) {
    const toml::node* n = Find(key);
    if (!n) {
      if (required) Missing(key);
      return false;
    }
    if (!n->is_integer()) {
      TypeError(key, "an integer");
      return false;
    }
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      Error(key, std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
      return false;
    }
    out = static_cast<Int>(v);
    return true;
  }

  bool Bool(std::string_view key, bool& out) {
    const toml::node* n = Find(key);
    if (!n) return false;
    if (!n->is_boolean()) {
      TypeError(key, "a boolean (true or false)");
      return false;
    }
    out = n->as_boolean()->get();
    return true;
  }

  template <class E>
  bool Enum(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::string s;
    if (!String(key, s)) return false;
    std::string expected;
    for (const auto& [name, value] : choices) {
      if (s == name) {
        out = value;
        return true;
      }
      if (!expected.empty()) expected += ", ";
      expected += "\"" + std::string(name) + "\"";
    }
    Error(key, "\"" + s + "\" is not one of " + expected);
    return false;
  }

  bool StringList(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = Find(key);
    if (!n) return false;
    const toml::array* a = n->as_array();
    if (!a) {
      TypeError(key, "an array of strings");
      return false;
    }
    bool ok = true;
    std::vector<std::string> values;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (!e.is_string()) {
        ctx_.Error(e.source(), KeyPath(key) + "[" + std::to_string(i) + "]",
                   "expected a string, got " + std::string(TypeName(e.type())));
        ok = false;
        continue;
      }
      values.push_back(e.as_string()->get());
    }
    if (ok) out = std::move(values);
    return ok;
  }

  // A path to a file that must exist and be readable; stored absolute.
  bool File(std::string_view key, std::string& out, bool required = false) {
    std::string raw;
    if (!String(key, raw, required)) return false;
    if (raw.empty()) {
      out.clear();
      return true;
    }
    std::string resolved = ctx_.Resolve(raw);
    if (!IsReadableFile(resolved)) {
      Error(key, "file " + Quote(resolved) + " does not exist or is not readable");
      return false;
    }
    out = resolved;
    return true;
  }

  // A secret from `<base>_env` or `<base>_file` (and inline `<base>` only when allowed).
  // `required`: report a missing source.
  Secret SecretValue(std::string_view base, bool allow_inline, bool required) {
    const std::string inline_key(base);
    const std::string env_key = inline_key + "_env";
    const std::string file_key = inline_key + "_file";
    const bool has_inline = Has(inline_key);
    const bool has_env = Has(env_key);
    const bool has_file = Has(file_key);
    if (has_inline && !allow_inline) {
      Error(inline_key, "inline secrets are not allowed (the config file is not a secret store); use " +
                            env_key + " or " + file_key);
      return {};
    }
    int sources = int(has_inline) + int(has_env) + int(has_file);
    if (sources > 1) {
      std::string which = allow_inline ? inline_key + ", " + env_key + " or " + file_key
                                       : env_key + " or " + file_key;
      Error(has_env ? env_key : file_key, "set only one of " + which);
      return {};
    }
    if (sources == 0) {
      if (required && !hinted_.count(env_key) && !hinted_.count(file_key) &&
          !hinted_.count(inline_key)) {
        ctx_.Error(table_.source(), KeyPath(env_key),
                   "missing " + inline_key + " source: set " + env_key + " or " + file_key);
      }
      return {};
    }
    if (has_inline) {
      std::string v;
      if (String(inline_key, v, true)) return Secret("inline", v);
      return {};
    }
    if (has_env) {
      std::string name;
      if (!String(env_key, name, true)) return {};
      std::optional<std::string> v = ctx_.GetEnv(name);
      if (!v) {
        Error(env_key, "environment variable " + name + " is not set");
        return {};
      }
      if (v->empty()) {
        Error(env_key, "environment variable " + name + " is empty");
        return {};
      }
      return Secret("env:" + name, *v);
    }
    std::string path;
    if (!File(file_key, path, true)) return {};
    std::string v;
    if (!ReadWholeFile(path, v)) {
      Error(file_key, "cannot read " + Quote(path));
      return {};
    }
    // One trailing newline is what editors and `echo` add; it is not part of the secret.
    if (!v.empty() && v.back() == '\n') v.pop_back();
    if (!v.empty() && v.back() == '\r') v.pop_back();
    if (v.empty()) {
      Error(file_key, "file " + Quote(path) + " is empty");
      return {};
    }
    return Secret("file:" + path, v);
  }

  // A sub-table; reports a type error if the key holds something else. nullptr when absent.
  const toml::table* SubTable(std::string_view key) {
    const toml::node* n = Find(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      TypeError(key, "a table");
      return nullptr;
    }
    return n->as_table();
  }

 private:
  Context& ctx_;
  const toml::table& table_;
  std::string path_;
  std::vector<std::string_view> known_;
  std::set<std::string> hinted_;
};

// ---------------------------------------------------------------------------------------------
// Value checks shared by sections

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Names that end up in metric labels, ledger account names and log lines.
bool CheckIdentifier(TableReader& r, std::string_view key, const std::string& value) {
  if (value.size() > 64 || !std::all_of(value.begin(), value.end(), IsNameChar)) {
    r.Error(key, Quote(value) + " must be 1..64 characters of A-Z a-z 0-9 _ - .");
    return false;
  }
  return true;
}

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

bool ValidListen(const std::string& s) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return false;
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) return false;  // bare IPv6 needs brackets
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), IsAsciiDigit)) return false;
  int p = std::stoi(port);
  return p >= 1 && p <= 65535;
}

bool ValidIpOrCidr(const std::string& s) {
  std::string addr = s;
  int prefix = -1;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    addr = s.substr(0, slash);
    std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), IsAsciiDigit)) return false;
    prefix = std::stoi(p);
  }
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) return prefix <= 32;
  if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) return prefix <= 128;
  return false;
}

bool ValidUrl(const std::string& url) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) rest = std::string_view(url).substr(7);
  else if (url.rfind("https://", 0) == 0) rest = std::string_view(url).substr(8);
  else return false;
  if (rest.empty() || rest[0] == '/' || rest[0] == ':') return false;
  return std::none_of(rest.begin(), rest.end(), [](char c) { return c == ' ' || c < 0x21; });
}

std::optional<std::chrono::sys_seconds> ToSysSeconds(const toml::date_time& dt) {
  if (!dt.offset) return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year{dt.date.year}, month{dt.date.month}, day{dt.date.day}};
  if (!ymd.ok()) return std::nullopt;
  sys_seconds t = sys_days(ymd) + hours(dt.time.hour) + minutes(dt.time.minute) + seconds(dt.time.second);
  return t - minutes(dt.offset->minutes);
}

// RFC 3339 date-time with offset: a native TOML offset date-time or a string holding one.
bool Timestamp(TableReader& r, std::string_view key, std::optional<std::chrono::sys_seconds>& out) {
  const toml::node* n = r.Find(key);
  if (!n) return false;
  std::optional<toml::date_time> dt;
  if (n->is_date_time()) {
    dt = n->as_date_time()->get();
  } else if (n->is_string()) {
    const std::string& s = n->as_string()->get();
    bool plausible = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == 'T' ||
             c == 't' || c == 'Z' || c == 'z' || c == '+' || c == '.' || c == ' ';
    });
    if (plausible) {
      try {
        toml::table t = toml::parse("v = " + s);
        if (const toml::node* v = t.get("v"); v && v->is_date_time()) dt = v->as_date_time()->get();
      } catch (const toml::parse_error&) {
      }
    }
    if (!dt) {
      r.Error(key, "\"" + s + "\" is not an RFC 3339 date-time (e.g. 2026-12-01T00:00:00+07:00)");
      return false;
    }
  } else {
    r.TypeError(key, "an RFC 3339 date-time with offset");
    return false;
  }
  if (!dt->offset) {
    r.Error(key, "needs a UTC offset (e.g. +07:00 or Z): a local time is ambiguous");
    return false;
  }
  auto t = ToSysSeconds(*dt);
  if (!t) {
    r.Error(key, "is not a valid calendar date");
    return false;
  }
  out = t;
  return true;
}

const toml::array* ArrayOfTables(Context& ctx, TableReader& root, std::string_view key) {
  const toml::node* n = root.Find(key);
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) {
    root.Error(key, "expected an array of tables (write each entry as [[" + std::string(key) + "]])");
    return nullptr;
  }
  return a;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sections

void ReadTls(Context& ctx, TableReader& parent, const toml::table& t, TlsConfig& tls, LinkMode mode) {
  TableReader r(ctx, t, parent.KeyPath("tls"), KeysOf("smsc.tls"));
  r.Bool("enabled", tls.enabled);
  r.File("ca_file", tls.ca_file);
  bool cert = r.File("cert_file", tls.cert_file);
  bool key = r.File("key_file", tls.key_file);
  r.Bool("verify_peer", tls.verify_peer);
  r.String("server_name", tls.server_name);
  if (r.Has("cert_file") != r.Has("key_file")) {
    if (r.Has("cert_file")) r.Missing("key_file", "cert_file needs key_file");
    else r.Missing("cert_file", "key_file needs cert_file");
  }
  if (tls.enabled && mode == LinkMode::kServer && !r.Has("cert_file") && !r.Has("key_file")) {
    r.Missing("cert_file", "server mode with TLS needs cert_file and key_file");
  }
  (void)cert;
  (void)key;
}

void ReadLink(Context& ctx, const toml::table& t, size_t index, SmscLink& link) {
  const std::string path = "smsc[" + std::to_string(index) + "]";
  TableReader r(ctx, t, path, KeysOf("smsc"));
  if (r.String("name", link.name, true)) CheckIdentifier(r, "name", link.name);
  if (r.String("operator", link.operator_name, true)) CheckIdentifier(r, "operator", link.operator_name);
  // With an invalid mode, mode-dependent checks would only add noise to the one real error.
  const bool mode_known =
      r.Enum("mode", link.mode, {{"client", LinkMode::kClient}, {"server", LinkMode::kServer}}) ||
      !r.Has("mode");
  if (link.mode == LinkMode::kClient) {
    r.String("host", link.host, mode_known);
  } else if (!r.String("host", link.host)) {
    link.host = "0.0.0.0";
  }
  r.Integer("port", link.port, 1, 65535, true);
  if (r.String("system_id", link.system_id, true) && link.system_id.size() > 15) {
    r.Error("system_id", "is " + std::to_string(link.system_id.size()) +
                             " characters; SMPP allows at most 15");
  }
  link.password = r.SecretValue("password", /*allow_inline=*/false, /*required=*/true);
  if (!link.password.Reveal().empty() && link.password.Reveal().size() > 8) {
    r.Error(r.Has("password_env") ? "password_env" : "password_file",
            "the password is " + std::to_string(link.password.Reveal().size()) +
                " characters; SMPP allows at most 8");
  }
  if (r.String("system_type", link.system_type) && link.system_type.size() > 12) {
    r.Error("system_type", "is longer than 12 characters (SMPP limit)");
  }
  r.Enum("bind_type", link.bind_type,
         {{"transceiver", BindType::kTransceiver},
          {"receiver_transmitter", BindType::kReceiverTransmitter}});
  r.Integer("window", link.window, 1, 1000);
  r.Integer("tps", link.tps, 0, 100000);
  r.Integer("enquire_link_interval_s", link.enquire_link_interval_s, 1, 3600);
  r.Integer("response_timeout_s", link.response_timeout_s, 1, 300);
  bool min_ok = r.Integer("reconnect_backoff_min_s", link.reconnect_backoff_min_s, 1, 3600);
  bool max_ok = r.Integer("reconnect_backoff_max_s", link.reconnect_backoff_max_s, 1, 86400);
  if ((min_ok || max_ok) && link.reconnect_backoff_min_s > link.reconnect_backoff_max_s) {
    r.Error(max_ok ? "reconnect_backoff_max_s" : "reconnect_backoff_min_s",
            "reconnect_backoff_min_s (" + std::to_string(link.reconnect_backoff_min_s) +
                ") is greater than reconnect_backoff_max_s (" +
                std::to_string(link.reconnect_backoff_max_s) + ")");
  }
  r.Integer("throttle_pause_s", link.throttle_pause_s, 1, 3600);
  r.Integer("throttle_max_retries", link.throttle_max_retries, 0, 100);
  r.Integer("max_pdu_size", link.max_pdu_size, 64, 1048576);
  r.Enum("message_id_normalization", link.message_id_normalization,
         {{"exact", MessageIdNormalization::kExact},
          {"trim_leading_zeros", MessageIdNormalization::kTrimLeadingZeros},
          {"resp_hex_dlr_decimal", MessageIdNormalization::kResponseHexReceiptDecimal},
          {"resp_decimal_dlr_hex", MessageIdNormalization::kResponseDecimalReceiptHex}});
  r.Enum("reply_long_mode", link.reply_long_mode,
         {{"udh", ReplyLongMode::kUdh}, {"message_payload", ReplyLongMode::kMessagePayload}});
  r.Bool("gsm_packed", link.gsm_packed);
  uint16_t tag = 0;
  if (r.Integer("mo_id_tlv", tag, 1, 0xFFFF)) link.mo_id_tlv = tag;
  r.Integer("source_ton", link.source_ton, 0, 6);
  r.Integer("source_npi", link.source_npi, 0, 18);
  r.Integer("dest_ton", link.dest_ton, 0, 6);
  r.Integer("dest_npi", link.dest_npi, 0, 18);
  if (const toml::table* tls = r.SubTable("tls")) ReadTls(ctx, r, *tls, link.tls, link.mode);

  static constexpr std::string_view kServerOnly[] = {
      "allowed_ips", "max_binds_per_account", "idle_timeout_s", "bind_timeout_s",
      "max_failed_binds_per_ip", "failed_bind_delay_s"};
  if (link.mode == LinkMode::kClient) {
    if (!mode_known) return;
    for (auto key : kServerOnly) {
      if (r.Has(key)) r.Error(key, "applies to mode = \"server\" only");
    }
    return;
  }
  if (r.StringList("allowed_ips", link.allowed_ips)) {
    const toml::array* a = r.Find("allowed_ips")->as_array();
    for (size_t i = 0; i < link.allowed_ips.size(); ++i) {
      if (!ValidIpOrCidr(link.allowed_ips[i])) {
        ctx.Error(a->get(i)->source(), r.KeyPath("allowed_ips") + "[" + std::to_string(i) + "]",
                  Quote(link.allowed_ips[i]) + " is not an IP address or CIDR block");
      }
    }
  }
  r.Integer("max_binds_per_account", link.max_binds_per_account, 1, 100);
  r.Integer("idle_timeout_s", link.idle_timeout_s, 1, 86400);
  r.Integer("bind_timeout_s", link.bind_timeout_s, 1, 600);
  r.Integer("max_failed_binds_per_ip", link.max_failed_binds_per_ip, 1, 1000);
  r.Integer("failed_bind_delay_s", link.failed_bind_delay_s, 0, 600);
}

void ReadDatabase(Context& ctx, const toml::table& t, DatabaseConfig& db) {
  TableReader r(ctx, t, "database", KeysOf("database"));
  // conninfo may be inline: a unix-socket or peer-authenticated conninfo holds no secret.
  db.conninfo = r.SecretValue("conninfo", /*allow_inline=*/true, /*required=*/true);
  r.Integer("pool_size", db.pool_size, 1, 64);
  r.Integer("batch_size", db.batch_size, 1, 10000);
  r.Integer("batch_linger_ms", db.batch_linger_ms, 0, 1000);
  r.Bool("run_migrations_on_start", db.run_migrations_on_start);
  r.Integer("statement_timeout_ms", db.statement_timeout_ms, 0, 600000);
  r.Integer("connect_timeout_s", db.connect_timeout_s, 1, 300);
}

void ReadTemplates(Context& ctx, TableReader& parent, const toml::table& t, ReplyTemplates& tpl) {
  TableReader r(ctx, t, parent.KeyPath("templates"), KeysOf("campaign.templates"));
  std::pair<std::string_view, std::string*> fields[] = {
      {"success", &tpl.success},     {"partial", &tpl.partial},     {"insufficient", &tpl.insufficient},
      {"syntax", &tpl.syntax},       {"daily_cap", &tpl.daily_cap}, {"inactive", &tpl.inactive},
      {"failed", &tpl.failed},       {"help", &tpl.help},           {"stop", &tpl.stop},
      {"stop_all", &tpl.stop_all},   {"confirm_request", &tpl.confirm_request},
      {"confirm_none", &tpl.confirm_none}, {"status", &tpl.status},
      {"rate_limited", &tpl.rate_limited}};
  for (auto& [key, field] : fields) {
    std::string text;
    if (!r.String(key, text)) continue;
    if (text.empty()) {
      r.Error(key, "must not be empty (every outcome gets a reply)");
      continue;
    }
    std::string why = ValidateTemplate(text);
    if (!why.empty()) {
      r.Error(key, why);
      continue;
    }
    *field = text;
  }
}

// --- keyword aliases and the keyword flows' settings (docs/configuration.md "Keywords")

void ReadKeywordFlows(Context& ctx, TableReader& r, Campaign& c) {
  struct Kind {
    std::string_view key;
    std::vector<std::string>* aliases;
  };
  Kind kinds[] = {{"help_keywords", &c.help_keywords},         {"stop_keywords", &c.stop_keywords},
                  {"stop_all_keywords", &c.stop_all_keywords}, {"confirm_keywords", &c.confirm_keywords},
                  {"status_keywords", &c.status_keywords}};
  std::map<std::string, std::string_view> owner;  // folded alias -> the key that has it
  const std::string keyword = FoldForMatching(c.keyword);
  for (Kind& k : kinds) {
    std::vector<std::string> aliases;
    if (r.StringList(k.key, aliases)) {
      if (aliases.size() > 20) {
        r.Error(k.key, std::to_string(aliases.size()) + " aliases; at most 20");
        continue;
      }
      *k.aliases = std::move(aliases);
    }
    for (const std::string& a : *k.aliases) {
      const std::string folded = FoldForMatching(a);
      if (a.empty() || a.size() > 40 || folded.empty()) {
        r.Error(k.key, Quote(a) + " must be 1..40 bytes with at least one letter, digit or mark");
        continue;
      }
      // "CV", "CV 5", "CV5": the alias would be read as a donation (ParseDonation comes first).
      if (folded.compare(0, keyword.size(), keyword) == 0 &&
          (folded.size() == keyword.size() || folded[keyword.size()] == ' ' ||
           (folded[keyword.size()] >= '0' && folded[keyword.size()] <= '9'))) {
        r.Error(k.key, Quote(a) + " reads as the donation keyword " + Quote(c.keyword));
        continue;
      }
      auto [it, fresh] = owner.emplace(folded, k.key);
      if (!fresh && it->second != k.key) {
        r.Error(k.key, Quote(a) + " is also in " + std::string(it->second) +
                           " (aliases are compared without case, separators or diacritics)");
      }
    }
  }
  r.Integer("confirm_above_units", c.confirm_above_units, 0, 1000000);
  r.Integer("confirm_window_s", c.confirm_window_s, 10, 86400);
  if (c.confirm_above_units > 0 && c.confirm_keywords.empty()) {
    r.Error("confirm_above_units", "needs at least one confirm_keywords alias (nothing could confirm)");
  }
  if (c.confirm_above_units >= c.max_units_per_message && c.confirm_above_units > 0) {
    r.Error("confirm_above_units", std::to_string(c.confirm_above_units) +
                                       " is not below max_units_per_message (" +
                                       std::to_string(c.max_units_per_message) + "): nothing would be asked");
  }
  r.Enum("reply_encoding", c.reply_encoding,
         {{"gsm7_ascii", ReplyEncoding::kGsm7Ascii}, {"ucs2", ReplyEncoding::kUcs2}});
}

// Characters of n formatted as FormatVnd does ("100.000"), and of n in decimal.
int64_t DecimalDigits(int64_t n) {
  int64_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}
int64_t VndLength(int64_t n) { return DecimalDigits(n) + (DecimalDigits(n) - 1) / 3; }

// Length of `text` in the units a part counts: UTF-16 code units (UCS-2), else GSM 7-bit
// septets (the extension characters ^ { } \ [ ~ ] | count two). *ascii_only: every character
// is printable ASCII (or CR/LF).
int64_t SmsLength(std::string_view text, bool ucs2, bool* ascii_only) {
  int64_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      *ascii_only = false;
      if ((c & 0xC0) == 0x80) continue;   // continuation byte
      n += (c & 0xF8) == 0xF0 ? 2 : 1;    // a 4-byte sequence is a surrogate pair
      continue;
    }
    if (c < 0x20 && c != '\n' && c != '\r') *ascii_only = false;
    n += (!ucs2 && std::string_view("^{}\\[~]|").find(static_cast<char>(c)) != std::string_view::npos) ? 2 : 1;
  }
  return n;
}

// Every template of a campaign must fit in two parts in its worst case: each placeholder at the
// longest value this campaign can give it (status totals: up to 10^15 VND, counts up to 10
// digits). A gsm7_ascii campaign's templates must be printable ASCII.
void CheckTemplateParts(Context& ctx, TableReader& r, const toml::table* tpl_table, const Campaign& c) {
  const bool ucs2_campaign = c.reply_encoding == ReplyEncoding::kUcs2;
  const int64_t max_amount = c.unit_price_vnd * c.max_units_per_message;
  const int64_t big_amount = VndLength(1000000000000000LL);
  const int64_t today = c.max_units_per_day_per_msisdn > 0
                            ? VndLength(c.unit_price_vnd * c.max_units_per_day_per_msisdn)
                            : big_amount;
  bool name_ascii = true;
  const int64_t name_len_gsm = SmsLength(c.name, false, &name_ascii);
  bool dummy = true;
  const int64_t name_len_ucs2 = SmsLength(c.name, true, &dummy);
  const std::pair<std::string_view, const std::string*> templates[] = {
      {"success", &c.templates.success},       {"partial", &c.templates.partial},
      {"insufficient", &c.templates.insufficient}, {"syntax", &c.templates.syntax},
      {"daily_cap", &c.templates.daily_cap},   {"inactive", &c.templates.inactive},
      {"failed", &c.templates.failed},         {"help", &c.templates.help},
      {"stop", &c.templates.stop},             {"stop_all", &c.templates.stop_all},
      {"confirm_request", &c.templates.confirm_request}, {"confirm_none", &c.templates.confirm_none},
      {"status", &c.templates.status},         {"rate_limited", &c.templates.rate_limited}};
  for (const auto& [key, text] : templates) {
    // Literal text (placeholders removed, "{{"/"}}" as one brace) and the placeholders used.
    std::string literal;
    std::vector<std::string_view> used;
    for (size_t i = 0; i < text->size(); ++i) {
      const char ch = (*text)[i];
      if ((ch == '{' || ch == '}') && i + 1 < text->size() && (*text)[i + 1] == ch) {
        literal += ch;
        ++i;
      } else if (ch == '{' && text->find('}', i) != std::string::npos) {
        const size_t close = text->find('}', i);
        used.push_back(std::string_view(*text).substr(i + 1, close - i - 1));
        i = close;
      } else {
        literal += ch;
      }
    }
    bool ascii = true;
    SmsLength(literal, false, &ascii);
    const toml::node* node = tpl_table ? tpl_table->get(key) : nullptr;
    const std::string key_path = r.KeyPath("templates") + "." + std::string(key);
    auto report = [&](std::string reason) {
      const toml::node* at = node ? node : r.Find("reply_encoding");
      ctx.Error(at ? at->source() : r.table().source(), key_path, std::move(reason));
    };
    if (!ucs2_campaign && !ascii) {
      report("uses characters outside printable ASCII; set reply_encoding = \"ucs2\" to send "
             "Vietnamese with diacritics");
      continue;
    }
    bool uses_name = false;
    int64_t values = 0;
    for (std::string_view p : used) {
      if (p == "amount") values += VndLength(max_amount);
      else if (p == "unit_price") values += VndLength(c.unit_price_vnd);
      else if (p == "units" || p == "charged_units" || p == "missing_units") values += DecimalDigits(c.max_units_per_message);
      else if (p == "campaign") uses_name = true;
      else if (p == "ref") values += 4 + 19;  // "don-" + a bigint
      else if (p == "shortcode") values += static_cast<int64_t>(c.shortcode.size());
      else if (p == "keyword") values += static_cast<int64_t>(c.keyword.size());
      else if (p == "window_min") values += DecimalDigits((c.confirm_window_s + 59) / 60);
      else if (p == "today_amount") values += today;
      else if (p == "total_amount") values += big_amount;
      else if (p == "today_count" || p == "total_count") values += 10;
    }
    // The sender encodes by content: any non-ASCII character (in the template or the campaign
    // name) makes the whole reply UCS-2.
    const bool ucs2 = !ascii || (uses_name && !name_ascii);
    bool unused = true;
    const int64_t worst = SmsLength(literal, ucs2, &unused) + values +
                          (uses_name ? (ucs2 ? name_len_ucs2 : name_len_gsm) : 0);
    const int64_t single = ucs2 ? 70 : 160, per_part = ucs2 ? 67 : 153;
    const int64_t parts = worst <= single ? 1 : (worst + per_part - 1) / per_part;
    if (parts > 2) {
      report("worst case " + std::to_string(worst) + (ucs2 ? " UCS-2 characters" : " GSM 7-bit characters") +
             " needs " + std::to_string(parts) + " parts (" + std::to_string(2 * per_part) +
             " fit in 2); at most 2 parts are allowed");
    }
  }
}

void ReadCampaign(Context& ctx, const toml::table& t, size_t index, Campaign& c) {
  const std::string path = "campaign[" + std::to_string(index) + "]";
  TableReader r(ctx, t, path, KeysOf("campaign"));
  if (r.String("name", c.name, true)) {
    bool printable = std::none_of(c.name.begin(), c.name.end(),
                                  [](char ch) { return static_cast<unsigned char>(ch) < 0x20; });
    if (c.name.size() > 64 || !printable) {
      r.Error("name", "must be 1..64 characters without control characters");
    }
  }
  if (r.String("keyword", c.keyword) &&
      (c.keyword.empty() || c.keyword.size() > 20 ||
       !std::all_of(c.keyword.begin(), c.keyword.end(), [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); }))) {
    r.Error("keyword", Quote(c.keyword) + " must be 1..20 ASCII letters (digits would be ambiguous with n)");
  }
  if (r.String("shortcode", c.shortcode) &&
      (c.shortcode.size() < 2 || c.shortcode.size() > 15 ||
       !std::all_of(c.shortcode.begin(), c.shortcode.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))) {
    r.Error("shortcode", Quote(c.shortcode) + " must be 2..15 digits");
  }
  r.Integer("unit_price_vnd", c.unit_price_vnd, 1, 100000000);
  r.Integer("max_units_per_message", c.max_units_per_message, 1, 1000000);
  r.Integer("max_units_per_day_per_msisdn", c.max_units_per_day_per_msisdn, 0, 100000000);
  bool from = Timestamp(r, "active_from", c.active_from);
  bool to = Timestamp(r, "active_to", c.active_to);
  if (from && to && *c.active_from >= *c.active_to) {
    r.Error("active_to", "must be later than active_from");
  }
  r.Enum("charging_mode", c.charging_mode,
         {{"whole", ChargingMode::kWhole}, {"per_unit", ChargingMode::kPerUnit}});
  const toml::table* tpl = r.SubTable("templates");
  if (tpl) ReadTemplates(ctx, r, *tpl, c.templates);
  ReadKeywordFlows(ctx, r, c);
  CheckTemplateParts(ctx, r, tpl, c);
}

// A table of campaign name -> unsigned 32-bit id (Diameter Service-Identifier / Rating-Group).
void ReadCampaignIds(Context& ctx, TableReader& r, std::string_view key, std::map<std::string, uint32_t>& out) {
  const toml::table* t = r.SubTable(key);
  if (!t) return;
  for (const auto& [name, node] : *t) {
    const std::string path = r.KeyPath(key) + "." + std::string(name.str());
    const auto* v = node.as_integer();
    if (!v || v->get() < 1 || v->get() > 0xffffffffLL) {
      ctx.Error(node.source(), path, "expected an integer 1..4294967295");
      continue;
    }
    out[std::string(name.str())] = static_cast<uint32_t>(v->get());
  }
}

// The keys of backend = "diameter" (docs/charging.md, "Diameter Ro"); refused on other backends.
void ReadDiameterCharging(Context& ctx, TableReader& r, ChargingBackendConfig& b, bool backend_set) {
  static const std::vector<std::string_view> kKeys = {
      "peers", "origin_host", "origin_realm", "destination_realm", "destination_host",
      "service_context_id", "service_identifier", "rating_group", "campaign_service_identifiers",
      "campaign_rating_groups", "idempotency_avp_code", "idempotency_avp_vendor",
      "watchdog_interval_ms", "reconnect_interval_ms", "failure_handling", "tls", "tls_cert_file",
      "tls_key_file"};
  if (backend_set && b.backend != ChargingBackendKind::kDiameter) {
    for (std::string_view k : kKeys) {
      if (r.Has(k)) r.Error(k, "applies to backend = \"diameter\" only");
    }
    return;
  }
  if (!backend_set) return;
  const bool diameter = true;
  if (r.StringList("peers", b.peers)) {
    if (b.peers.empty() || b.peers.size() > 32) r.Error("peers", "needs 1..32 peers (\"host:port\")");
    for (const std::string& peer : b.peers) {
      const size_t colon = peer.rfind(':');
      const std::string port = colon == std::string::npos ? "" : peer.substr(colon + 1);
      if (colon == 0 || peer.empty() ||
          (colon != std::string::npos && (port.empty() || port.size() > 5 ||
                                          !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
                                          std::stoi(port) < 1 || std::stoi(port) > 65535))) {
        r.Error("peers", Quote(peer) + " is not host[:port]");
      }
    }
  } else if (!r.Has("peers")) {
    r.Missing("peers");
  }
  auto identity = [&](std::string_view key, std::string& out, bool required) {
    if (r.String(key, out, required) &&
        (out.empty() || out.size() > 255 ||
         !std::all_of(out.begin(), out.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
         }))) {
      r.Error(key, Quote(out) + " is not a Diameter identity (letters, digits, '.', '-', '_')");
    }
  };
  identity("origin_host", b.origin_host, diameter);
  identity("origin_realm", b.origin_realm, diameter);
  identity("destination_realm", b.destination_realm, diameter);
  identity("destination_host", b.destination_host, false);
  if (r.String("service_context_id", b.service_context_id) && b.service_context_id.empty()) {
    r.Error("service_context_id", "must not be empty");
  }
  r.Integer("service_identifier", b.service_identifier, 0, 0xffffffffLL);
  r.Integer("rating_group", b.rating_group, 0, 0xffffffffLL);
  ReadCampaignIds(ctx, r, "campaign_service_identifiers", b.campaign_service_identifiers);
  ReadCampaignIds(ctx, r, "campaign_rating_groups", b.campaign_rating_groups);
  r.Integer("idempotency_avp_code", b.idempotency_avp_code, 1, 0xffffffffLL);
  r.Integer("idempotency_avp_vendor", b.idempotency_avp_vendor, 0, 0xffffffffLL);
  r.Integer("watchdog_interval_ms", b.watchdog_interval_ms, 100, 600000);
  r.Integer("reconnect_interval_ms", b.reconnect_interval_ms, 10, 600000);
  r.Enum("failure_handling", b.failure_handling,
         {{"TERMINATE", 0u}, {"CONTINUE", 1u}, {"RETRY_AND_TERMINATE", 2u}});
  r.Bool("tls", b.tls);
  // A file already reported as unreadable is not reported again as missing its partner.
  const bool cert_read = r.File("tls_cert_file", b.tls_cert_file) || !r.Has("tls_cert_file");
  const bool key_read = r.File("tls_key_file", b.tls_key_file) || !r.Has("tls_key_file");
  const bool cert = !b.tls_cert_file.empty(), key = !b.tls_key_file.empty();
  if (!cert_read || !key_read) {
    // reported
  } else if (!b.tls && (cert || key)) {
    r.Error(cert ? "tls_cert_file" : "tls_key_file", "needs tls = true");
  } else if (cert != key) {
    r.Error(cert ? "tls_cert_file" : "tls_key_file",
            "tls_cert_file and tls_key_file go together (a client certificate and its key)");
  }
}

// The keys of backend = "carrier_billing" (docs/charging.md, "Carrier Billing"); refused on
// other backends. url (the API root) is read with the http backend's.
void ReadCarrierBillingCharging(TableReader& r, ChargingBackendConfig& b, bool backend_set) {
  static const std::vector<std::string_view> kKeys = {
      "token_url", "client_id", "client_secret_env", "client_secret_file", "scope", "two_step",
      "merchant_identifier", "payment_description", "token_refresh_margin_s"};
  if (backend_set && b.backend != ChargingBackendKind::kCarrierBilling) {
    for (std::string_view k : kKeys) {
      if (r.Has(k)) r.Error(k, "applies to backend = \"carrier_billing\" only");
    }
    return;
  }
  if (!backend_set) return;
  if (r.String("token_url", b.token_url, true) && !ValidUrl(b.token_url)) {
    r.Error("token_url", Quote(b.token_url) + " is not an http:// or https:// URL");
  }
  if (r.String("client_id", b.client_id, true) && b.client_id.empty()) r.Error("client_id", "must not be empty");
  b.client_secret = r.SecretValue("client_secret", /*allow_inline=*/false, /*required=*/true);
  r.String("scope", b.scope);
  r.Bool("two_step", b.two_step);
  r.String("merchant_identifier", b.merchant_identifier);
  if (r.String("payment_description", b.payment_description) &&
      (b.payment_description.empty() || b.payment_description.size() > 100)) {
    r.Error("payment_description", "needs 1..100 characters");
  }
  r.Integer("token_refresh_margin_s", b.token_refresh_margin_s, 0, 3600);
}

void ReadCharging(Context& ctx, const toml::table& t, size_t index, ChargingBackendConfig& b) {
  const std::string path = "charging[" + std::to_string(index) + "]";
  TableReader r(ctx, t, path, KeysOf("charging"));
  if (r.String("operator", b.operator_name, true)) CheckIdentifier(r, "operator", b.operator_name);
  bool backend_set = r.Enum("backend", b.backend,
                            {{"http", ChargingBackendKind::kHttp},
                             {"operator_billed", ChargingBackendKind::kOperatorBilled},
                             {"in_process", ChargingBackendKind::kInProcess},
                             {"diameter", ChargingBackendKind::kDiameter},
                             {"carrier_billing", ChargingBackendKind::kCarrierBilling}});
  if (!backend_set && !r.Has("backend")) r.Missing("backend");
  // Backend-specific checks only when the backend is known (else they would only add noise).
  if (b.backend == ChargingBackendKind::kHttp || b.backend == ChargingBackendKind::kCarrierBilling || !backend_set) {
    if (r.String("url", b.url, backend_set) && !ValidUrl(b.url)) {
      r.Error("url", Quote(b.url) + " is not an http:// or https:// URL");
    }
  } else if (r.Has("url")) {
    r.Error("url", "applies to backend = \"http\" or \"carrier_billing\" only");
  }
  r.Integer("timeout_ms", b.timeout_ms, 1, 600000);
  r.Integer("max_concurrency", b.max_concurrency, 1, 10000);
  r.Integer("retries", b.retries, 0, 20);
  bool min_ok = r.Integer("status_backoff_min_ms", b.status_backoff_min_ms, 1, 3600000);
  bool max_ok = r.Integer("status_backoff_max_ms", b.status_backoff_max_ms, 1, 3600000);
  if ((min_ok || max_ok) && b.status_backoff_min_ms > b.status_backoff_max_ms) {
    r.Error(max_ok ? "status_backoff_max_ms" : "status_backoff_min_ms",
            "status_backoff_min_ms (" + std::to_string(b.status_backoff_min_ms) +
                ") is greater than status_backoff_max_ms (" + std::to_string(b.status_backoff_max_ms) + ")");
  }
  b.token = r.SecretValue("token", /*allow_inline=*/false, /*required=*/false);
  r.Bool("tls_verify", b.tls_verify);
  r.File("ca_file", b.ca_file);
  r.Integer("breaker_failure_threshold", b.breaker_failure_threshold, 1, 1000);
  r.Integer("breaker_cooloff_s", b.breaker_cooloff_s, 1, 3600);
  ChargingMode mode = ChargingMode::kWhole;
  if (r.Enum("charging_mode", mode, {{"whole", ChargingMode::kWhole}, {"per_unit", ChargingMode::kPerUnit}})) {
    b.charging_mode = mode;
  }
  if (b.backend == ChargingBackendKind::kInProcess || !backend_set) {
    r.Integer("initial_balance_vnd", b.initial_balance_vnd, 0, int64_t{1} << 53);
  } else if (r.Has("initial_balance_vnd")) {
    r.Error("initial_balance_vnd", "applies to backend = \"in_process\" only");
  }
  ReadDiameterCharging(ctx, r, b, backend_set);
  ReadCarrierBillingCharging(r, b, backend_set);
}

void ReadPipeline(Context& ctx, const toml::table& t, PipelineConfig& p) {
  TableReader r(ctx, t, "pipeline", KeysOf("pipeline"));
  r.Enum("temp_error_status", p.temp_error_status,
         {{"ESME_RX_T_APPN", TempErrorStatus::kAppn}, {"ESME_RTHROTTLED", TempErrorStatus::kThrottled}});
  r.Integer("max_inflight", p.max_inflight, 1, 1000000);
  r.Integer("concat_timeout_s", p.concat_timeout_s, 1, 86400);
  r.Integer("redelivery_window_s", p.redelivery_window_s, 0, 86400);
  r.Integer("ack_horizon_s", p.ack_horizon_s, 1, 3600);
  r.Integer("late_ack_ms", p.late_ack_ms, 100, 600000);
  r.Integer("max_mos_per_minute_per_msisdn", p.max_mos_per_minute_per_msisdn, 0, 100000);
  r.Integer("max_replies_per_hour_per_msisdn", p.max_replies_per_hour_per_msisdn, 0, 100000);
  r.Integer("pending_receipt_max_age_s", p.pending_receipt_max_age_s, 3600, 31 * 86400);
  r.Enum("concat_on_timeout", p.concat_on_timeout,
         {{"record_rejected", ConcatOnTimeout::kRecordRejected},
          {"process_available", ConcatOnTimeout::kProcessAvailable}});
  r.Integer("charge_batch_size", p.charge_batch_size, 1, 10000);
  r.Integer("charge_concurrency", p.charge_concurrency, 0, 10000);
  r.Integer("charge_lease_s", p.charge_lease_s, 5, 3600);
  r.Integer("charge_workers", p.charge_workers, 1, 32);
  r.Integer("charge_yield_ingest_backlog", p.charge_yield_ingest_backlog, 0, 1000000);
  r.Integer("reply_batch_size", p.reply_batch_size, 1, 10000);
  r.Integer("reply_max_inflight", p.reply_max_inflight, 1, 100000);
  r.Integer("poll_interval_ms", p.poll_interval_ms, 1, 60000);
  if (r.String("instance_id", p.instance_id) && CheckIdentifier(r, "instance_id", p.instance_id) &&
      p.instance_id.empty()) {
    r.Error("instance_id", "must not be empty");
  }
  r.File("blocklist_file", p.blocklist_file);
  r.Bool("start_charging_paused", p.start_charging_paused);
}

void ReadListen(TableReader& r, std::string& out) {
  std::string v;
  if (!r.String("listen", v)) return;
  if (!ValidListen(v)) {
    r.Error("listen", Quote(v) + " is not host:port (IPv6 as [addr]:port, port 1..65535)");
    return;
  }
  out = v;
}

void ReadHttp(Context& ctx, const toml::table& t, HttpConfig& h) {
  TableReader r(ctx, t, "http", KeysOf("http"));
  ReadListen(r, h.listen);
}

void ReadAdmin(Context& ctx, const toml::table& t, AdminConfig& a) {
  TableReader r(ctx, t, "admin", KeysOf("admin"));
  r.Bool("enabled", a.enabled);
  ReadListen(r, a.listen);
  a.token = r.SecretValue("token", /*allow_inline=*/false, /*required=*/a.enabled);
}

const std::initializer_list<std::pair<std::string_view, LogLevel>> kLevels = {
    {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}, {"critical", LogLevel::kCritical},
    {"off", LogLevel::kOff}};

void ReadLog(Context& ctx, const toml::table& t, LogConfig& l) {
  TableReader r(ctx, t, "log", KeysOf("log"));
  r.Enum("level", l.level, kLevels);
  r.Enum("format", l.format, {{"keyvalue", LogFormat::kKeyValue}, {"json", LogFormat::kJson}});
  if (r.String("file", l.file) && !l.file.empty()) {
    l.file = ctx.Resolve(l.file);
    std::error_code ec;
    fs::path parent = fs::path(l.file).parent_path();
    if (!fs::is_directory(parent, ec)) {
      r.Error("file", "directory " + Quote(parent.string()) + " does not exist");
    }
  }
  r.Bool("mask_msisdn", l.mask_msisdn);
  r.Integer("max_repeats_per_minute", l.max_repeats_per_minute, 0, 1000000);
  if (const toml::table* comps = r.SubTable("components")) {
    std::vector<std::string_view> names = KeysOf("log.components");
    TableReader c(ctx, *comps, r.KeyPath("components"), names);
    for (auto name : names) {
      LogLevel level;
      if (c.Enum(name, level, kLevels)) l.components[std::string(name)] = level;
    }
  }
}

std::string DefaultHostname(const LoadOptions& options) {
  if (options.hostname) return options.hostname();
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "donagate";
  std::string h(buf);
  for (char& c : h) {
    if (!IsNameChar(c)) c = '_';
  }
  return h.substr(0, 64);
}

void CrossChecks(Context& ctx, const toml::table& root, Config& cfg, bool charging_readable) {
  auto where = [&](std::string_view array, size_t i, std::string_view key) -> toml::source_region {
    const toml::node* n = root[array][i][key].node();
    if (!n) n = root[array][i].node();
    return n ? n->source() : root.source();
  };
  auto at = [](std::string_view array, size_t i, std::string_view key) {
    return std::string(array) + "[" + std::to_string(i) + "]." + std::string(key);
  };

  for (size_t i = 0; i < cfg.links.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!cfg.links[i].name.empty() && cfg.links[i].name == cfg.links[j].name) {
        ctx.Error(where("smsc", i, "name"), at("smsc", i, "name"),
                  "duplicate link name " + Quote(cfg.links[i].name) + " (also smsc[" + std::to_string(j) + "])");
        break;
      }
    }
  }
  for (size_t i = 0; i < cfg.campaigns.size(); ++i) {
    const Campaign& c = cfg.campaigns[i];
    for (size_t j = 0; j < i; ++j) {
      const Campaign& o = cfg.campaigns[j];
      if (!c.name.empty() && c.name == o.name) {
        ctx.Error(where("campaign", i, "name"), at("campaign", i, "name"),
                  "duplicate campaign name " + Quote(c.name) + " (also campaign[" + std::to_string(j) + "])");
      }
      if (Lower(c.keyword) == Lower(o.keyword) && c.shortcode == o.shortcode) {
        ctx.Error(where("campaign", i, "keyword"), at("campaign", i, "keyword"),
                  "keyword " + Quote(c.keyword) + " on shortcode " + c.shortcode +
                      " is already used by campaign[" + std::to_string(j) + "]");
      }
    }
  }
  for (size_t i = 0; i < cfg.charging.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!cfg.charging[i].operator_name.empty() &&
          cfg.charging[i].operator_name == cfg.charging[j].operator_name) {
        ctx.Error(where("charging", i, "operator"), at("charging", i, "operator"),
                  "operator " + Quote(cfg.charging[i].operator_name) +
                      " already has a charging backend (charging[" + std::to_string(j) + "])");
        break;
      }
    }
  }
  for (size_t i = 0; i < cfg.links.size(); ++i) {
    const std::string& op = cfg.links[i].operator_name;
    if (op.empty() || !charging_readable) continue;  // a malformed [charging] was reported already
    if (FindCharging(cfg, op) == nullptr) {
      ctx.Error(where("smsc", i, "operator"), at("smsc", i, "operator"),
                "operator " + Quote(op) + " has no [[charging]] entry: nobody would debit its subscribers");
    }
  }
}

void ReadRoot(Context& ctx, const toml::table& root, Config& cfg) {
  TableReader r(ctx, root, "", KeysOf(""));

  if (const toml::array* links = ArrayOfTables(ctx, r, "smsc")) {
    cfg.links.resize(links->size());
    for (size_t i = 0; i < links->size(); ++i) ReadLink(ctx, *links->get(i)->as_table(), i, cfg.links[i]);
  }
  if (cfg.links.empty() && !r.Has("smsc")) {
    ctx.Error(root.source(), "smsc", "at least one [[smsc]] link is required");
  } else if (cfg.links.empty() && r.Find("smsc")->is_array() && r.Find("smsc")->as_array()->empty()) {
    r.Error("smsc", "at least one [[smsc]] link is required");
  }

  if (const toml::table* db = r.SubTable("database")) {
    ReadDatabase(ctx, *db, cfg.database);
  } else if (!r.Has("database")) {
    ctx.Error(root.source(), "database", "required section [database] is missing");
  }

  if (const toml::array* campaigns = ArrayOfTables(ctx, r, "campaign")) {
    cfg.campaigns.resize(campaigns->size());
    for (size_t i = 0; i < campaigns->size(); ++i) {
      ReadCampaign(ctx, *campaigns->get(i)->as_table(), i, cfg.campaigns[i]);
    }
  }
  if (!r.Has("campaign")) {
    Campaign c;
    c.name = "default";
    cfg.campaigns.push_back(c);
  }

  if (const toml::array* charging = ArrayOfTables(ctx, r, "charging")) {
    cfg.charging.resize(charging->size());
    for (size_t i = 0; i < charging->size(); ++i) {
      ReadCharging(ctx, *charging->get(i)->as_table(), i, cfg.charging[i]);
    }
  }

  if (const toml::table* t = r.SubTable("pipeline")) ReadPipeline(ctx, *t, cfg.pipeline);
  if (cfg.pipeline.instance_id.empty()) cfg.pipeline.instance_id = DefaultHostname(ctx.options);
  if (const toml::table* t = r.SubTable("http")) ReadHttp(ctx, *t, cfg.http);
  if (const toml::table* t = r.SubTable("admin")) ReadAdmin(ctx, *t, cfg.admin);
  if (const toml::table* t = r.SubTable("log")) ReadLog(ctx, *t, cfg.log);
  if (cfg.http.listen == cfg.admin.listen && cfg.admin.enabled) {
    ctx.Error(root.source(), "admin.listen", "must differ from http.listen (" + cfg.http.listen + ")");
  }

  const toml::node* charging_node = root.get("charging");
  CrossChecks(ctx, root, cfg, !charging_node || charging_node->is_array_of_tables());
}

void SortByPosition(std::vector<Diagnostic>& d) {
  std::stable_sort(d.begin(), d.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> SchemaKeys() {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& [name, keys] : Schema()) out.emplace_back(std::string(name), std::vector<std::string>(keys.begin(), keys.end()));
  return out;
}

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += reason;
  return out;
}

std::string ValidateTemplate(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        ++i;
        continue;
      }
      size_t close = text.find('}', i + 1);
      size_t next_open = text.find('{', i + 1);
      if (close == std::string_view::npos || (next_open != std::string_view::npos && next_open < close)) {
        return "unclosed '{' at character " + std::to_string(i + 1) + " (write '{{' for a literal brace)";
      }
      std::string_view name = text.substr(i + 1, close - i - 1);
      bool known = std::find(std::begin(kTemplatePlaceholders), std::end(kTemplatePlaceholders), name) !=
                   std::end(kTemplatePlaceholders);
      if (!known) {
        std::vector<std::string_view> names(std::begin(kTemplatePlaceholders), std::end(kTemplatePlaceholders));
        std::string reason = "unknown placeholder {" + std::string(name) + "}";
        std::string_view hint = ClosestMatch(name, names);
        if (!hint.empty()) reason += " (did you mean {" + std::string(hint) + "}?)";
        return reason;
      }
      i = close;
    } else if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        ++i;
        continue;
      }
      return "unmatched '}' at character " + std::to_string(i + 1) + " (write '}}' for a literal brace)";
    }
  }
  return {};
}

LoadResult LoadConfigFromString(std::string_view toml_text, const std::string& source_name,
                                const std::string& base_dir, const LoadOptions& options) {
  LoadResult result;
  Context ctx;
  ctx.file = source_name;
  ctx.base_dir = base_dir;
  ctx.options = options;
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    // The TOML parser stops at the first syntax error; nothing after it can be checked.
    ctx.Error(e.source(), "", "TOML syntax error: " + std::string(e.description()));
    result.diagnostics = std::move(ctx.diagnostics);
    return result;
  }
  ReadRoot(ctx, root, result.config);
  SortByPosition(ctx.diagnostics);
  result.diagnostics = std::move(ctx.diagnostics);
  return result;
}

LoadResult LoadConfig(const std::string& path, const LoadOptions& options) {
  std::string text;
  std::error_code ec;
  if (fs::is_directory(path, ec) || !ReadWholeFile(path, text)) {
    LoadResult result;
    Diagnostic d;
    d.file = path;
    d.reason = "cannot read the configuration file";
    result.diagnostics.push_back(d);
    return result;
  }
  fs::path absolute = fs::absolute(path, ec);
  std::string base_dir = absolute.parent_path().string();
  LoadResult result = LoadConfigFromString(text, path, base_dir, options);
  result.config.source_path = absolute.lexically_normal().string();
  return result;
}

}  // namespace donagate::config
