#include "console/app.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>
#include <streambuf>

#include "billing/finance/csv.h"
#include "billing/finance/finance.h"
#include "billing/finance/settlement.h"
#include "billing/finance/time_util.h"
#include "billing/store/pg.h"
#include "config/config.h"
#include "console/html.h"
#include "console/multipart.h"
#include "console/password.h"
#include "console/users.h"
#include "tools/donagatectl/admin_client.h"

namespace donagate::console {

using billing::StoreStatus;
using billing::pg::Connection;
using billing::pg::Params;
using billing::pg::Result;

std::string HttpResponse::Header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

// ---------------------------------------------------------------------------------------------
// LoginThrottle

int64_t LoginThrottle::WaitSeconds(const std::string& key, std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return 0;
  Entry& e = it->second;
  // Failures older than the longest delay are forgotten.
  if (now - e.last > max_ * 2) {
    entries_.erase(it);
    return 0;
  }
  if (e.failures < free_) return 0;
  const int shift = std::min(e.failures - free_, 20);
  const auto delay = std::min<std::chrono::seconds>(std::chrono::seconds(int64_t{1} << shift), max_);
  const auto ready = e.last + delay;
  if (now >= ready) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(ready - now).count() + 1;
}

void LoginThrottle::Failed(const std::string& key, std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[key];
  ++e.failures;
  e.last = now;
  if (entries_.size() > 100000) entries_.clear();  // bounded memory under a spray of names
}

void LoginThrottle::Succeeded(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(key);
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr int kIct = 7 * 3600;  // Asia/Ho_Chi_Minh, the finance zone
const char* kSessionCookie = "dg_session";
const char* kLoginCsrfCookie = "dg_login_csrf";
const char* kLangCookie = "dg_lang";

struct Session {
  User user;
  std::string csrf;
};

std::string PathOf(const std::string& target) { return target.substr(0, target.find('?')); }
std::map<std::string, std::string> QueryOf(const std::string& target) {
  size_t q = target.find('?');
  return q == std::string::npos ? std::map<std::string, std::string>{} : ParseForm(target.substr(q + 1));
}

std::map<std::string, std::string> Cookies(const HttpRequest& req) {
  std::map<std::string, std::string> out;
  auto it = req.headers.find("cookie");
  if (it == req.headers.end()) return out;
  std::string_view s = it->second;
  while (!s.empty()) {
    size_t semi = s.find(';');
    std::string_view part = s.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos) out.emplace(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
    if (semi == std::string_view::npos) break;
    s.remove_prefix(semi + 1);
  }
  return out;
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int64_t TodayLocal() { return (static_cast<int64_t>(std::time(nullptr)) + kIct) / 86400; }

void SecurityHeaders(HttpResponse* r) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("X-Frame-Options", "DENY");
  if (r->Header("Cache-Control").empty()) r->headers.emplace_back("Cache-Control", "no-store");
}

HttpResponse Redirect(const std::string& to) {
  HttpResponse r;
  r.status = 303;
  r.headers.emplace_back("Location", to);
  return r;
}

// "64 MiB" for whole mebibytes, else "1.024 bytes": the limit as the 413 page and the form say it.
std::string LimitText(uint64_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return FormatCount(static_cast<int64_t>(bytes)) + " bytes";
}

// An uploaded settlement file between its preview and its run (ConsoleApp::Impl::uploads).
struct Upload {
  int64_t user_id = 0;
  std::string path, file_name, sha256_hex;
  uint64_t bytes = 0;
  std::chrono::steady_clock::time_point at;
};

// The database role a request works under (the login role is granted all three).
StoreStatus AsRole(Connection& conn, const char* role) { return conn.Exec(std::string("SET ROLE ") + role); }

}  // namespace

struct ConsoleApp::Impl {
  ConsoleOptions opt;
  LoginThrottle throttle;
  explicit Impl(ConsoleOptions o) : opt(std::move(o)), throttle(opt.login_free_failures, opt.login_max_delay) {}

  struct Ctx {
    const HttpRequest* req;
    Connection conn;
    Lang lang = Lang::kVi;
    std::optional<Session> session;
    std::map<std::string, std::string> query, form, cookies;
    std::string path;
    // A settlement file uploaded with this request (POST /reconcile/upload), spooled.
    std::optional<Upload> upload;
    std::string upload_id;
    const std::string& t(const std::string& k) const { return T(lang, k); }
  };

  // ----- page frame ------------------------------------------------------------------------
  std::string Page(Ctx& c, const std::string& title, const std::string& body, const std::string& extra_head = "") {
    std::string h = "<!DOCTYPE html>\n<html lang=\"" + std::string(c.lang == Lang::kVi ? "vi" : "en") +
                    "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
                    "<title>" + Esc(title) + " · donagate</title><link rel=\"stylesheet\" href=\"/static/console.css\">" +
                    extra_head + "</head><body>";
    if (c.session) {
      h += "<nav>";
      const std::pair<const char*, const char*> links[] = {{"/", "Overview"},          {"/lookup", "Donation lookup"},
                                                           {"/reversals", "Reversals"}, {"/reconcile", "Reconcile"},
                                                           {"/exports", "Exports"},     {"/operations", "Operations"}};
      for (auto& [href, label] : links)
        h += "<a href=\"" + std::string(href) + "\"" + (c.path == href ? " class=\"here\"" : "") + ">" +
             Esc(c.t(label)) + "</a>";
      h += "<span class=\"who\">" + Esc(c.session->user.name) + " (";
      for (size_t i = 0; i < c.session->user.roles.size(); ++i) h += (i ? ", " : "") + Esc(c.session->user.roles[i]);
      h += ")</span>" + Form(c, "/logout", "<button>" + Esc(c.t("Log out")) + "</button>", "inline") +
           "<a href=\"?lang=" + std::string(c.lang == Lang::kVi ? "en" : "vi") + "\">" +
           (c.lang == Lang::kVi ? "English" : "Ti\xE1\xBA\xBFng Vi\xE1\xBB\x87t") + "</a></nav>";
    }
    h += "<main><h1>" + Esc(title) + "</h1>" + body + "</main></body></html>\n";
    return h;
  }

  // A POST form carrying the session's CSRF token.
  std::string Form(Ctx& c, const std::string& action, const std::string& inner, const std::string& cls = "") {
    return "<form method=\"post\" action=\"" + Esc(action) + "\"" + (cls.empty() ? "" : " class=\"" + cls + "\"") +
           "><input type=\"hidden\" name=\"csrf\" value=\"" + Esc(c.session ? c.session->csrf : "") + "\">" + inner +
           "</form>";
  }

  HttpResponse Html(Ctx& c, int status, const std::string& title, const std::string& body,
                    const std::string& extra_head = "") {
    HttpResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
    r.body = Page(c, title, body, extra_head);
    return r;
  }

  HttpResponse Refused(Ctx& c, const std::string& action, const std::string& detail) {
    AuditAs(c, action, detail, "refused");
    return Html(c, 403, c.t("Your role does not allow this."), "<p class=\"error\">" + Esc(c.t("Your role does not allow this.")) + "</p>");
  }

  void AuditAs(Ctx& c, const std::string& action, const std::string& detail, const std::string& outcome,
               const std::string& actor_override = "") {
    if (!c.conn.connected()) return;
    AsRole(c.conn, "donagate_console");
    const std::string actor = !actor_override.empty() ? actor_override : c.session ? c.session->user.name : "-";
    Audit(c.conn, actor, action, detail, c.req->remote_addr, outcome);
  }

  // ----- sessions --------------------------------------------------------------------------
  std::optional<Session> LoadSession(Ctx& c) {
    const std::string token = Get(c.cookies, kSessionCookie);
    if (token.size() != 64) return std::nullopt;
    if (!AsRole(c.conn, "donagate_console").ok()) return std::nullopt;
    Result r;
    StoreStatus st = c.conn.Exec(
        "SELECT u.id, u.name, array_to_string(u.roles, ','), s.csrf_token FROM console_session s "
        "JOIN console_user u ON u.id = s.user_id WHERE s.token_sha256 = decode($1, 'hex') AND s.expires_at > now() "
        "AND NOT u.disabled",
        Params().Text(billing::pg::HexEncode(Sha256(token))), &r);
    if (!st.ok() || r.rows() != 1) return std::nullopt;
    Session s;
    s.user.id = r.Int64(0, 0);
    s.user.name = r.String(0, 1);
    std::string err;
    ParseRoles(r.String(0, 2), &s.user.roles, &err);
    s.csrf = r.String(0, 3);
    return s;
  }

  bool CsrfOk(Ctx& c) {
    return c.session && ConstantTimeEqual(Get(c.form, "csrf"), c.session->csrf) && !c.session->csrf.empty();
  }

  std::string SessionCookie(Ctx& c, const std::string& value, int max_age) {
    return std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
           std::to_string(max_age) + (c.req->tls ? "; Secure" : "");
  }

  HttpResponse LoginPage(Ctx& c, int status, const std::string& message) {
    // Double-submit token: the form's hidden field must equal the cookie (a cross-site form
    // cannot read or set it), so nobody can log a victim into an account of theirs.
    std::string token = Get(c.cookies, kLoginCsrfCookie);
    if (token.size() != 64) token = RandomHex(32);
    std::string body;
    if (!message.empty()) body += "<p class=\"error\">" + Esc(message) + "</p>";
    body += "<form method=\"post\" action=\"/login\" class=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"" +
            token + "\"><label>" + Esc(c.t("User name")) +
            " <input name=\"user\" autocomplete=\"username\" required></label><label>" + Esc(c.t("Password")) +
            " <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label><button>" +
            Esc(c.t("Log in")) + "</button></form>";
    HttpResponse r = Html(c, status, c.t("Log in"), body);
    r.headers.emplace_back("Set-Cookie", std::string(kLoginCsrfCookie) + "=" + token +
                                             "; Path=/login; HttpOnly; SameSite=Strict" + (c.req->tls ? "; Secure" : ""));
    return r;
  }

  HttpResponse PostLogin(Ctx& c) {
    const std::string cookie_token = Get(c.cookies, kLoginCsrfCookie);
    if (cookie_token.size() != 64 || !ConstantTimeEqual(cookie_token, Get(c.form, "csrf"))) {
      AuditAs(c, "login", "missing or wrong CSRF token", "refused", Get(c.form, "user").substr(0, 64));
      return LoginPage(c, 403, "The form expired; log in again.");
    }
    const std::string name = Get(c.form, "user").substr(0, 64), password = Get(c.form, "password");
    const auto now = opt.now();
    const std::string addr_key = "addr:" + c.req->remote_addr, name_key = "user:" + name;
    const int64_t wait = std::max(throttle.WaitSeconds(addr_key, now), throttle.WaitSeconds(name_key, now));
    if (wait > 0) {
      AuditAs(c, "login", "throttled, " + std::to_string(wait) + " s to wait", "refused", name);
      HttpResponse r = LoginPage(c, 429, c.t("Too many failed logins; wait and try again."));
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      return r;
    }
    AsRole(c.conn, "donagate_console");
    Result r;
    StoreStatus st = c.conn.Exec("SELECT id, password_hash, disabled FROM console_user WHERE name = $1",
                                 Params().Text(name), &r);
    if (!st.ok()) return Html(c, 503, "Database", "<p class=\"error\">The database is not reachable.</p>");
    // Unknown names cost one hash too, so timing does not tell which names exist.
    static const std::string kDummy = HashPassword("not-a-password-of-anyone").value_or("");
    const bool known = r.rows() == 1;
    const bool match = VerifyPassword(password, known ? r.String(0, 1) : kDummy);
    if (!known || !match || r.Bool(0, 2)) {
      throttle.Failed(addr_key, now);
      throttle.Failed(name_key, now);
      AuditAs(c, "login", known && match ? "user disabled" : "wrong name or password", "refused", name);
      return LoginPage(c, 401, c.t("Wrong user name or password."));
    }
    throttle.Succeeded(addr_key);
    throttle.Succeeded(name_key);
    // A fresh token at every login; whatever session cookie came with the request is ended, so
    // a token planted before login (fixation) is never promoted.
    const std::string old = Get(c.cookies, kSessionCookie);
    if (old.size() == 64)
      c.conn.Exec("DELETE FROM console_session WHERE token_sha256 = decode($1, 'hex')",
                  Params().Text(billing::pg::HexEncode(Sha256(old))));
    const std::string token = RandomHex(32), csrf = RandomHex(32);
    st = c.conn.Exec(
        "INSERT INTO console_session (token_sha256, user_id, csrf_token, expires_at, remote_addr) "
        "VALUES (decode($1, 'hex'), $2, $3, now() + make_interval(mins => $4::int), $5)",
        Params().Text(billing::pg::HexEncode(Sha256(token))).Int(r.Int64(0, 0)).Text(csrf)
            .Int(opt.session_lifetime.count()).Text(c.req->remote_addr));
    if (!st.ok()) return Html(c, 503, "Database", "<p class=\"error\">The database is not reachable.</p>");
    AuditAs(c, "login", "", "ok", name);
    HttpResponse out = Redirect("/");
    out.headers.emplace_back("Set-Cookie", SessionCookie(c, token, static_cast<int>(opt.session_lifetime.count() * 60)));
    out.headers.emplace_back("Set-Cookie", std::string(kLoginCsrfCookie) + "=; Path=/login; Max-Age=0");
    return out;
  }

  HttpResponse PostLogout(Ctx& c) {
    const std::string token = Get(c.cookies, kSessionCookie);
    AsRole(c.conn, "donagate_console");
    c.conn.Exec("DELETE FROM console_session WHERE token_sha256 = decode($1, 'hex')",
                Params().Text(billing::pg::HexEncode(Sha256(token))));
    AuditAs(c, "logout", "", "ok");
    HttpResponse r = Redirect("/login");
    r.headers.emplace_back("Set-Cookie", SessionCookie(c, "", 0));
    return r;
  }

  // ----- overview --------------------------------------------------------------------------
  bool Range(Ctx& c, int64_t* from, int64_t* to, std::string* error) {
    const int64_t today = TodayLocal();
    std::string f = Get(c.query, "from"), t = Get(c.query, "to");
    auto pf = f.empty() ? std::optional<int64_t>(today) : finance::ParseDate(f);
    auto pt = t.empty() ? pf : finance::ParseDate(t);
    if (!pf || !pt) {
      *error = "Dates are written YYYY-MM-DD.";
      return false;
    }
    if (*pt < *pf) {
      *error = "\"To\" is before \"From\".";
      return false;
    }
    *from = *pf;
    *to = *pt;
    return true;
  }

  std::string RangeForm(Ctx& c, int64_t from, int64_t to, const std::string& action) {
    return "<form method=\"get\" action=\"" + action + "\" class=\"range\"><label>" + Esc(c.t("From")) +
           " <input type=\"date\" name=\"from\" value=\"" + finance::FormatDate(from) + "\"></label><label>" +
           Esc(c.t("To")) + " <input type=\"date\" name=\"to\" value=\"" + finance::FormatDate(to) +
           "\"></label><button>" + Esc(c.t("Show")) + "</button></form>";
  }

  HttpResponse Overview(Ctx& c) {
    int64_t from = 0, to = 0;
    std::string error;
    if (!Range(c, &from, &to, &error)) return Html(c, 400, c.t("Overview"), "<p class=\"error\">" + Esc(error) + "</p>");
    const finance::UtcRange range{finance::LocalDayRange(from, kIct).start, finance::LocalDayRange(to, kIct).end};
    AsRole(c.conn, "donagate_finance");
    std::vector<finance::ReportRow> rows;
    StoreStatus st = finance::QueryReport(c.conn, range, &rows);
    if (!st.ok()) return Html(c, 503, c.t("Overview"), "<p class=\"error\">" + Esc(st.message()) + "</p>");
    const int64_t bucket = from == to ? 3600 : 86400;
    std::vector<finance::SeriesPoint> series;
    st = finance::QuerySeries(c.conn, range, bucket, kIct, &series);
    if (!st.ok()) return Html(c, 503, c.t("Overview"), "<p class=\"error\">" + Esc(st.message()) + "</p>");

    std::string b = RangeForm(c, from, to, "/") + "<p class=\"note\">" + Esc(c.t("Times in Asia/Ho_Chi_Minh")) + "</p>";
    b += "<table class=\"report\" id=\"report\"><thead><tr>";
    for (const char* h : {"Operator", "Campaign", "Messages", "Donations", "Units", "Charged", "Failed", "Unknown",
                          "Pending", "Reversed", "VND charged", "VND reversed", "Net"})
      b += "<th>" + Esc(c.t(h)) + "</th>";
    b += "<th>" + Esc(c.t("Failed by reason")) + "</th></tr></thead><tbody>";
    finance::ReportRow total;
    auto cells = [&](const finance::ReportRow& r, const std::string& cls) {
      std::string s = "<tr class=\"" + cls + "\"><td>" + Esc(r.operator_name) + "</td><td>" + Esc(r.campaign) + "</td>";
      for (int64_t n : {r.messages, r.donations, r.units, r.charged + r.partial, r.failed, r.unknown, r.pending, r.reversed})
        s += "<td class=\"n\">" + FormatCount(n) + "</td>";
      s += "<td class=\"n vnd-charged\">" + FormatVnd(r.vnd_charged) + "</td><td class=\"n vnd-reversed\">" +
           FormatVnd(r.vnd_reversed) + "</td><td class=\"n vnd-net\">" + FormatVnd(r.vnd_net()) + "</td><td>";
      for (auto& [code, n] : r.failed_by_reason) s += "<span class=\"reason\">" + Esc(code) + " " + FormatCount(n) + "</span> ";
      return s + "</td></tr>";
    };
    for (auto& r : rows) {
      b += cells(r, "row");
      total.messages += r.messages;
      total.donations += r.donations;
      total.units += r.units;
      total.charged += r.charged;
      total.partial += r.partial;
      total.failed += r.failed;
      total.unknown += r.unknown;
      total.pending += r.pending;
      total.reversed += r.reversed;
      total.vnd_charged += r.vnd_charged;
      total.vnd_reversed += r.vnd_reversed;
      for (auto& [k, v] : r.failed_by_reason) total.failed_by_reason[k] += v;
    }
    total.operator_name = c.t("Total");
    b += "</tbody><tfoot>" + cells(total, "total") + "</tfoot></table>";
    b += "<p class=\"figures\" data-vnd-charged=\"" + std::to_string(total.vnd_charged) + "\" data-vnd-net=\"" +
         std::to_string(total.vnd_net()) + "\" data-donations=\"" + std::to_string(total.donations) + "\"></p>";
    nlohmann::json j;
    j["labels"] = nlohmann::json::array();
    j["donations"] = nlohmann::json::array();
    j["vnd"] = nlohmann::json::array();
    for (auto& p : series) {
      j["labels"].push_back(finance::FormatTimestamp(p.bucket_start, kIct).substr(bucket == 3600 ? 11 : 0, bucket == 3600 ? 5 : 10));
      j["donations"].push_back(p.donations);
      j["vnd"].push_back(p.vnd_charged);
    }
    j["donations_label"] = c.t("Donations");
    j["vnd_label"] = c.t("VND charged");
    b += "<div class=\"chart\"><canvas id=\"chart\" width=\"900\" height=\"300\"></canvas></div>"
         "<script type=\"application/json\" id=\"chart-data\">" + JsonForScript(j.dump()) + "</script>"
         "<noscript><p class=\"note\">The chart needs JavaScript; the table above has every figure.</p></noscript>";
    return Html(c, 200, c.t("Overview"), b,
                "<script src=\"/static/chart.js\" defer></script><script src=\"/static/console.js\" defer></script>");
  }

  // ----- donation lookup -------------------------------------------------------------------
  bool MayViewMsisdn(Ctx& c) { return c.session->user.Has("approver") || c.session->user.Has("admin"); }

  HttpResponse Lookup(Ctx& c) {
    const std::string q = Get(c.query, "q").substr(0, 64);
    std::string b = "<form method=\"get\" action=\"/lookup\" class=\"lookup\"><label>" +
                    Esc(c.t("Donation id, charge reference or phone number")) + " <input name=\"q\" value=\"" + Esc(q) +
                    "\" required></label><button>" + Esc(c.t("Search")) + "</button></form>";
    if (q.empty()) return Html(c, 200, c.t("Donation lookup"), b);
    AsRole(c.conn, "donagate_finance");
    std::vector<finance::StorySection> story;
    bool found = false;
    StoreStatus st;
    std::string kind;
    std::string phone = q;
    if (phone.rfind("+", 0) == 0) phone.erase(0, 1);
    if (phone.rfind("0", 0) == 0 && phone.size() >= 10) phone = "84" + phone.substr(1);
    if (AllDigits(q) && q.size() < 9) {
      kind = "donation id";
      st = finance::QueryDonationStory(c.conn, std::stoll(q), kIct, &story, &found);
    } else if (AllDigits(phone) && phone.rfind("84", 0) == 0 && phone.size() >= 10) {
      kind = "phone number";
      st = finance::QuerySubscriberStory(c.conn, phone, kIct, &story, &found);
    } else {
      kind = "charge reference";
      int64_t id = 0;
      st = finance::FindDonationByChargeKey(c.conn, q, &id);
      if (st.ok() && id > 0) st = finance::QueryDonationStory(c.conn, id, kIct, &story, &found);
    }
    if (!st.ok()) return Html(c, 503, c.t("Donation lookup"), b + "<p class=\"error\">" + Esc(st.message()) + "</p>");
    const bool unmasked = MayViewMsisdn(c);
    AuditAs(c, "lookup", kind + " " + (kind == "phone number" && !unmasked ? MaskMsisdn(phone) : q) +
                             (unmasked ? " (unmasked)" : ""), "ok");
    if (!found) return Html(c, 404, c.t("Donation lookup"), b + "<p>" + Esc(c.t("Not found.")) + "</p>");
    static const char* kPhoneColumns[] = {"msisdn", "source_addr", "dest_addr"};
    for (auto& sec : story) {
      b += "<section class=\"story\"><h2>" + Esc(sec.title) + " (" + std::to_string(sec.rows.size()) + ")</h2><table><tr>";
      for (auto& col : sec.columns) b += "<th>" + Esc(col) + "</th>";
      b += "</tr>";
      for (auto& row : sec.rows) {
        b += "<tr>";
        for (size_t i = 0; i < row.size(); ++i) {
          bool phone_col = false;
          for (auto* p : kPhoneColumns) phone_col |= sec.columns[i] == p;
          std::string v = row[i].value_or("");
          // The shortcode side of a message (dest_addr of an MO, source of a reply) is short.
          if (phone_col && !unmasked && v.size() >= 9) v = MaskMsisdn(v);
          b += "<td>" + Esc(v) + "</td>";
        }
        b += "</tr>";
      }
      b += "</table></section>";
    }
    return Html(c, 200, c.t("Donation lookup"), b);
  }

  // ----- reversals -------------------------------------------------------------------------
  HttpResponse Reversals(Ctx& c, const std::string& message = "", int status = 200) {
    std::string b;
    if (!message.empty()) b += "<p class=\"message\">" + Esc(message) + "</p>";
    if (c.session->user.Has("finance"))
      b += "<h2>" + Esc(c.t("Request reversal")) + "</h2>" +
           Form(c, "/reversals/request",
                "<label>Donation <input name=\"donation\" inputmode=\"numeric\" required></label><label>" +
                    Esc(c.t("Reason")) + " <input name=\"reason\" required maxlength=\"500\"></label><button>" +
                    Esc(c.t("Request reversal")) + "</button>");
    AsRole(c.conn, "donagate_console");
    Result r;
    StoreStatus st = c.conn.Exec(
        "SELECT r.id, r.donation_id, d.state, d.charged_amount_vnd, r.reason, r.requested_by, "
        "to_char(r.requested_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI'), r.state, "
        "coalesce(r.decided_by, ''), coalesce(r.decision_note, ''), coalesce(r.journal_id::text, '') "
        "FROM reversal_request r JOIN donation d ON d.id = r.donation_id ORDER BY r.id DESC LIMIT 200",
        &r);
    if (!st.ok()) return Html(c, 503, c.t("Reversals"), "<p class=\"error\">" + Esc(st.message()) + "</p>");
    b += "<table class=\"reversals\"><tr><th>#</th><th>Donation</th><th>State</th><th>VND</th><th>" + Esc(c.t("Reason")) +
         "</th><th>Requested by</th><th>At</th><th>Request</th><th>Decided by</th><th>Note</th><th>Journal</th><th></th></tr>";
    for (int i = 0; i < r.rows(); ++i) {
      b += "<tr class=\"request\" data-id=\"" + r.String(i, 0) + "\">";
      for (int col : {0, 1, 2}) b += "<td>" + Esc(r.Text(i, col)) + "</td>";
      b += "<td class=\"n\">" + FormatVnd(r.Int64(i, 3)) + "</td>";
      for (int col : {4, 5, 6, 7, 8, 9, 10}) b += "<td>" + Esc(r.Text(i, col)) + "</td>";
      b += "<td>";
      if (r.Text(i, 7) == "requested" && c.session->user.Has("approver") && r.Text(i, 5) != c.session->user.name) {
        const std::string id = r.String(i, 0);
        b += Form(c, "/reversals/decide",
                  "<input type=\"hidden\" name=\"id\" value=\"" + id +
                      "\"><input name=\"note\" placeholder=\"note\" maxlength=\"500\"><button name=\"decision\" "
                      "value=\"approve\">" + Esc(c.t("Approve")) + "</button><button name=\"decision\" value=\"reject\">" +
                      Esc(c.t("Reject")) + "</button>",
                  "inline");
      }
      b += "</td></tr>";
    }
    b += "</table>";
    return Html(c, status, c.t("Reversals"), b);
  }

  HttpResponse RequestReversal(Ctx& c) {
    if (!c.session->user.Has("finance")) return Refused(c, "reversal_request", "role finance needed");
    const std::string id = Get(c.form, "donation"), reason = Get(c.form, "reason").substr(0, 500);
    if (!AllDigits(id)) return Reversals(c, "A donation id is a number.", 400);
    if (reason.find_first_not_of(" \t") == std::string::npos) return Reversals(c, "A reversal needs a reason.", 400);
    AsRole(c.conn, "donagate_console");
    Result r;
    StoreStatus st = c.conn.Exec(
        "INSERT INTO reversal_request (donation_id, reason, requested_by) SELECT d.id, $2, $3 FROM donation d "
        "WHERE d.id = $1 AND d.state IN ('charged', 'partially_charged') ON CONFLICT DO NOTHING RETURNING id",
        Params().Int(std::stoll(id)).Text(reason).Text(c.session->user.name), &r);
    if (!st.ok()) return Reversals(c, "The database refused the request.", 503);
    if (r.rows() == 0) {
      AuditAs(c, "reversal_request", "donation " + id + ": not charged, unknown or already requested", "refused");
      return Reversals(c, "Donation " + id + " cannot be reversed: it does not exist, is not charged, or has an open request.", 409);
    }
    AuditAs(c, "reversal_request", "request " + r.String(0, 0) + " donation " + id + " reason " + reason, "ok");
    return Redirect("/reversals");
  }

  HttpResponse DecideReversal(Ctx& c) {
    if (!c.session->user.Has("approver")) return Refused(c, "reversal_decide", "role approver needed");
    const std::string id = Get(c.form, "id"), decision = Get(c.form, "decision"), note = Get(c.form, "note").substr(0, 500);
    if (!AllDigits(id) || (decision != "approve" && decision != "reject")) return Reversals(c, "Unknown request.", 400);
    const std::string me = c.session->user.name;
    billing::pg::Transaction tx(c.conn);
    StoreStatus st = tx.Begin();
    if (!st.ok()) return Reversals(c, "The database is not reachable.", 503);
    AsRole(c.conn, "donagate_console");
    Result r;
    st = c.conn.Exec("SELECT donation_id, reason, requested_by, state FROM reversal_request WHERE id = $1 FOR UPDATE",
                     Params().Int(std::stoll(id)), &r);
    if (!st.ok() || r.rows() != 1) return Reversals(c, "Unknown request.", 404);
    if (r.Text(0, 3) != "requested") {
      tx.Rollback();
      return Reversals(c, "Request " + id + " was already decided (" + r.String(0, 3) + "); nothing done.", 200);
    }
    if (r.Text(0, 2) == me) {
      tx.Rollback();
      AuditAs(c, "reversal_decide", "request " + id + ": own request (four eyes)", "refused");
      return Reversals(c, "A reversal is approved by someone other than who requested it.", 403);
    }
    const int64_t donation = r.Int64(0, 0);
    const std::string requester = r.String(0, 2), reason = r.String(0, 1);
    if (decision == "reject") {
      st = c.conn.Exec("UPDATE reversal_request SET state = 'rejected', decided_by = $2, decided_at = now(), "
                       "decision_note = $3 WHERE id = $1",
                       Params().Int(std::stoll(id)).Text(me).Text(note));
      if (st.ok()) st = Audit(c.conn, me, "reversal_reject", "request " + id + " donation " + std::to_string(donation), c.req->remote_addr, "ok");
      if (st.ok()) st = tx.Commit();
      if (!st.ok()) return Reversals(c, "The database refused the decision.", 503);
      return Redirect("/reversals");
    }
    // Money back first, where the console knows the operator's backend: the same step as
    // donagatectl reverse --refund. The ledger is reversed only once every key says refunded;
    // otherwise the request stays open and approving again retries (refunds are idempotent).
    std::string reason_suffix, refund_detail;
    if (opt.charging_config) {
      AsRole(c.conn, "donagate_finance");
      finance::RefundForReversal refund;
      st = finance::RefundBeforeReversal(c.conn, *opt.charging_config, donation, &refund);
      std::string lines;
      for (auto& l : refund.lines)
        lines += (lines.empty() ? "" : "; ") + l.key + " " + std::to_string(l.amount_vnd) + " VND " + l.outcome +
                 (l.detail.empty() ? "" : " (" + l.detail + ")");
      if (!st.ok() || !refund.may_reverse) {
        tx.Rollback();
        const std::string sentence =
            (st.ok() ? "Not every charge was refunded at the operator (" + lines + ")"
                     : "The refund at the operator could not be made: " + st.message()) +
            ". The ledger is unchanged and request " + id + " stays open; approve it again to retry.";
        AuditAs(c, "reversal_refund", "request " + id + " donation " + std::to_string(donation) + ": " + sentence, "failed");
        return Reversals(c, sentence, 502);
      }
      reason_suffix = refund.reason_suffix;
      refund_detail = refund.supported ? " refunds: " + lines : " (the operator's backend has no refunds: ledger only)";
    }
    // The shared reversal (donagatectl reverse runs the same call), in the request's transaction:
    // the request is done exactly when the reversing journal exists.
    AsRole(c.conn, "donagate_reverse");
    finance::ReversalOutcome out;
    st = finance::ReverseDonation(c.conn, donation, reason + reason_suffix + " (request " + id + ", requested by " + requester + ")",
                                  me + " (approved request " + id + " by " + requester + ")", &out);
    if (!st.ok()) {
      const std::string sentence = finance::ExplainReversalRefusal(donation, st);
      tx.Rollback();
      AsRole(c.conn, "donagate_console");
      c.conn.Exec("UPDATE reversal_request SET state = 'refused', decided_by = $2, decided_at = now(), "
                  "decision_note = $3 WHERE id = $1 AND state = 'requested'",
                  Params().Int(std::stoll(id)).Text(me).Text(sentence));
      AuditAs(c, "reversal_approve", "request " + id + ": " + sentence, "failed");
      return Reversals(c, sentence, 409);
    }
    AsRole(c.conn, "donagate_console");
    st = c.conn.Exec("UPDATE reversal_request SET state = 'done', decided_by = $2, decided_at = now(), decision_note = $3, "
                     "journal_id = $4, amount_vnd = $5 WHERE id = $1",
                     Params().Int(std::stoll(id)).Text(me).Text(note).Int(out.journal_id).Int(out.amount_vnd));
    if (st.ok())
      st = Audit(c.conn, me, "reversal_approve",
                 "request " + id + " donation " + std::to_string(donation) + " journal " + std::to_string(out.journal_id) +
                     " " + std::to_string(out.amount_vnd) + " VND" + (out.already_reversed ? " (already reversed)" : "") +
                     refund_detail,
                 c.req->remote_addr, "ok");
    if (st.ok()) st = tx.Commit();
    if (!st.ok()) return Reversals(c, "The database did not confirm the reversal; look at the request again.", 503);
    return Redirect("/reversals");
  }

  // ----- reconcile -------------------------------------------------------------------------
  // An uploaded settlement file between its preview and its run: spooled under opt.spool_dir
  // by an unguessable id, usable only by the user who uploaded it, removed by its run (or a
  // refused run's retry keeps it), forgotten after two hours.
  std::mutex uploads_mu;
  std::map<std::string, Upload> uploads;
  static constexpr size_t kMaxUploadsKept = 200;

  void ForgetOldUploads() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(uploads_mu);
    for (auto it = uploads.begin(); it != uploads.end();) {
      if (now - it->second.at > std::chrono::hours(2) || uploads.size() > kMaxUploadsKept) {
        std::remove(it->second.path.c_str());
        it = uploads.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::optional<Upload> FindUpload(Ctx& c, const std::string& id) {
    if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
    std::lock_guard<std::mutex> lock(uploads_mu);
    auto it = uploads.find(id);
    if (it == uploads.end() || it->second.user_id != c.session->user.id) return std::nullopt;
    return it->second;
  }

  bool MayReconcile(Ctx& c) { return c.session->user.Has("finance"); }

  static bool ValidOperatorName(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.') return false;
    return true;
  }

  static std::string DelimiterName(char d) {
    switch (d) {
      case ',': return "comma (,)";
      case ';': return "semicolon (;)";
      case '\t': return "tab";
      case '|': return "pipe (|)";
    }
    return std::string(1, d);
  }

  // Saved mappings: name -> TOML text.
  std::map<std::string, std::string> SavedMappings(Ctx& c) {
    std::map<std::string, std::string> out;
    AsRole(c.conn, "donagate_console");
    Result r;
    if (c.conn.Exec("SELECT name, toml FROM settlement_mapping ORDER BY name", &r).ok())
      for (int i = 0; i < r.rows(); ++i) out[r.String(i, 0)] = r.String(i, 1);
    return out;
  }

  HttpResponse ReconcileHome(Ctx& c, const std::string& message = "", int status = 200) {
    std::string b;
    if (!message.empty()) b += "<p class=\"error\">" + Esc(message) + "</p>";
    if (MayReconcile(c)) {
      std::string options = "<option value=\"\">" + Esc(c.t("Build a new mapping from the file")) + "</option>";
      for (auto& [name, toml] : SavedMappings(c)) options += "<option value=\"" + Esc(name) + "\">" + Esc(name) + "</option>";
      b += "<h2>" + Esc(c.t("Reconcile a settlement file")) + "</h2>"
           "<form method=\"post\" action=\"/reconcile/upload\" enctype=\"multipart/form-data\" class=\"upload\">"
           "<input type=\"hidden\" name=\"csrf\" value=\"" + Esc(c.session->csrf) + "\"><label>" + Esc(c.t("Operator")) +
           " <input name=\"operator\" required maxlength=\"64\" pattern=\"[A-Za-z0-9_.\\-]+\"></label><label>" +
           Esc(c.t("Day")) + " <input type=\"date\" name=\"day\" required value=\"" + finance::FormatDate(TodayLocal() - 1) +
           "\"></label><label>" + Esc(c.t("Settlement file")) +
           " <input type=\"file\" name=\"settlement\" accept=\".csv,.tsv,.txt,text/csv\" required></label><label>" +
           Esc(c.t("Mapping")) + " <select name=\"mapping\">" + options + "</select></label><button>" +
           Esc(c.t("Upload and preview")) + "</button></form><p class=\"note\">CSV or TSV, UTF-8 (with or without BOM), at most " +
           LimitText(opt.max_upload_bytes) + ".</p>";
    }
    AsRole(c.conn, "donagate_console");
    Result r;
    StoreStatus st = c.conn.Exec(
        "SELECT id, to_char(run_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI'), run_by, operator, "
        "to_char(day, 'YYYY-MM-DD'), settlement_name, settlement_sha256, coalesce((totals->>'matched'), '0'), "
        "(SELECT coalesce(sum(value::text::bigint), 0) FROM jsonb_each(totals) WHERE key IN ('missing_at_operator', "
        "'missing_in_ledger', 'amount_mismatch', 'status_mismatch', 'duplicate_at_operator')) "
        "FROM reconcile_run ORDER BY id DESC LIMIT 500",
        &r);
    if (!st.ok()) return Html(c, 503, c.t("Reconcile"), "<p class=\"error\">" + Esc(st.message()) + "</p>");
    b += "<h2>" + Esc(c.t("Saved runs")) + "</h2><table class=\"runs\"><tr><th>#</th><th>" + Esc(c.t("Run at")) + "</th><th>" +
         Esc(c.t("By")) + "</th><th>" + Esc(c.t("Operator")) + "</th><th>" + Esc(c.t("Day")) + "</th><th>" +
         Esc(c.t("Settlement file")) + "</th><th>SHA-256</th><th>" + Esc(c.t("Matched")) + "</th><th>" +
         Esc(c.t("Discrepancies")) + "</th></tr>";
    for (int i = 0; i < r.rows(); ++i) {
      const std::string id = r.String(i, 0);
      b += "<tr class=\"run\" data-id=\"" + id + "\"><td><a href=\"/reconcile/runs/" + id + "\">" + id + "</a></td>";
      for (int col : {1, 2, 3, 4, 5}) b += "<td>" + Esc(r.String(i, col)) + "</td>";
      b += "<td><code>" + Esc(r.String(i, 6).substr(0, 16)) + "…</code></td><td class=\"n\">" +
           FormatCount(r.Int64(i, 7)) + "</td><td class=\"n\">" + FormatCount(r.Int64(i, 8)) + "</td></tr>";
    }
    b += "</table>";
    return Html(c, status, c.t("Reconcile"), b);
  }

  // The mapping the form describes (every field of SettlementMapping, as strings).
  static finance::SettlementMapping MappingFromForm(const std::map<std::string, std::string>& f) {
    finance::SettlementMapping m;
    const std::string d = Get(f, "delimiter");
    m.delimiter = d == "tab" ? '\t' : d.size() == 1 ? d[0] : ',';
    m.comment_prefix = Get(f, "comment_prefix").substr(0, 8);
    m.header = Get(f, "header") == "1";
    m.reference_column = Get(f, "reference_column").substr(0, 128);
    m.msisdn_column = Get(f, "msisdn_column").substr(0, 128);
    m.amount_column = Get(f, "amount_column").substr(0, 128);
    m.time_column = Get(f, "time_column").substr(0, 128);
    m.status_column = Get(f, "status_column").substr(0, 128);
    if (!Get(f, "time_format").empty()) m.time_format = Get(f, "time_format").substr(0, 64);
    if (!Get(f, "time_zone").empty()) m.time_zone = Get(f, "time_zone").substr(0, 64);
    m.amount_format.thousands_separator = Get(f, "thousands_separator").substr(0, 8);
    m.amount_format.decimal_separator = Get(f, "decimal_separator").substr(0, 8);
    m.amount_format.currency_prefix = Get(f, "currency_prefix").substr(0, 16);
    m.amount_format.currency_suffix = Get(f, "currency_suffix").substr(0, 16);
    std::string charged = Get(f, "charged_values").substr(0, 1024);
    for (size_t pos = 0; pos <= charged.size();) {
      size_t comma = charged.find(',', pos);
      std::string v = charged.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      while (!v.empty() && v.back() == ' ') v.pop_back();
      if (!v.empty()) m.charged_values.push_back(v);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return m;
  }

  // A first guess from the header's names, for the form to start from.
  static finance::SettlementMapping GuessMapping(const finance::SettlementLayout& layout) {
    finance::SettlementMapping m;
    m.delimiter = layout.delimiter;
    auto pick = [&](std::initializer_list<const char*> words) -> std::string {
      for (const char* w : words)
        for (auto& col : layout.columns) {
          std::string lower = col;
          for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (lower.find(w) != std::string::npos) return col;
        }
      return "";
    };
    m.reference_column = pick({"cp_ref", "cp_transaction", "reference", "ref", "idempotency"});
    m.msisdn_column = pick({"msisdn", "subscriber", "phone"});
    m.amount_column = pick({"amount", "vnd", "money"});
    m.time_column = pick({"time", "date", "charged_at"});
    m.status_column = pick({"status", "result"});
    return m;
  }

  HttpResponse Preview(Ctx& c, const std::string& upload_id, const Upload& up, const std::string& operator_name,
                       const std::string& day, const std::string& mapping_name,
                       const std::optional<finance::SettlementMapping>& given, const std::string& error, int status) {
    std::ifstream in(up.path, std::ios::binary);
    finance::SettlementLayout layout;
    std::string why;
    const std::string comment = given ? given->comment_prefix : "#";
    if (!in || !finance::DetectSettlementLayout(in, comment, 10, &layout, &why))
      return ReconcileHome(c, "The file cannot be read as a settlement file: " + (in ? why : "spool file missing"), 400);
    const finance::SettlementMapping m = given ? *given : GuessMapping(layout);
    std::string b;
    if (!error.empty()) b += "<p class=\"error\" id=\"run-error\">" + Esc(error) + "</p>";
    b += "<dl class=\"detected\"><dt>" + Esc(c.t("Settlement file")) + "</dt><dd class=\"file-name\">" + Esc(up.file_name) +
         " (" + FormatCount(static_cast<int64_t>(up.bytes)) + " bytes)</dd><dt>SHA-256</dt><dd><code class=\"sha256\">" +
         up.sha256_hex + "</code></dd><dt>" + Esc(c.t("Encoding")) + "</dt><dd class=\"encoding\">" + Esc(layout.encoding) +
         "</dd><dt>" + Esc(c.t("Delimiter")) + "</dt><dd class=\"delimiter\">" + Esc(DelimiterName(layout.delimiter)) +
         "</dd><dt>" + Esc(c.t("Columns")) + "</dt><dd class=\"columns\">" + FormatCount(static_cast<int64_t>(layout.columns.size())) +
         "</dd></dl>";
    if (!layout.valid_utf8)
      b += "<p class=\"error\">" + Esc(c.t("The file is not UTF-8: save it as UTF-8 (CSV UTF-8) and upload it again.")) + "</p>";
    b += "<h2>" + Esc(c.t("First rows")) + "</h2><table class=\"preview\"><tr>";
    for (auto& col : layout.columns) b += "<th>" + Esc(col) + "</th>";
    b += "</tr>";
    for (auto& row : layout.rows) {
      b += "<tr>";
      for (auto& f : row) b += "<td>" + Esc(f) + "</td>";
      b += "</tr>";
    }
    b += "</table>";
    auto column_select = [&](const char* name, const std::string& chosen, bool required) {
      std::string s = "<select name=\"" + std::string(name) + "\"" + (required ? " required" : "") + ">";
      if (!required) s += "<option value=\"\">—</option>";
      bool found = chosen.empty();
      for (auto& col : layout.columns) {
        found |= col == chosen;
        s += "<option value=\"" + Esc(col) + "\"" + (col == chosen ? " selected" : "") + ">" + Esc(col) + "</option>";
      }
      // A mapping naming a column this file lacks keeps its value visible (the run then says so).
      if (!found) s += "<option value=\"" + Esc(chosen) + "\" selected>" + Esc(chosen) + " (not in this file)</option>";
      return s + "</select>";
    };
    auto text = [&](const char* name, const std::string& value, const char* size = "12") {
      return "<input name=\"" + std::string(name) + "\" value=\"" + Esc(value) + "\" size=\"" + size + "\">";
    };
    std::string delim = "<select name=\"delimiter\">";
    for (auto [v, label] : {std::pair<const char*, char>{",", ','}, {";", ';'}, {"tab", '\t'}, {"|", '|'}})
      delim += "<option value=\"" + std::string(v) + "\"" + (m.delimiter == label ? " selected" : "") + ">" +
               Esc(DelimiterName(label)) + "</option>";
    delim += "</select>";
    std::string charged;
    for (size_t i = 0; i < m.charged_values.size(); ++i) charged += (i ? ", " : "") + m.charged_values[i];
    const auto& a = m.amount_format;
    std::string inner =
        "<input type=\"hidden\" name=\"upload\" value=\"" + upload_id + "\"><input type=\"hidden\" name=\"mapping\" value=\"" +
        Esc(mapping_name) + "\"><fieldset><legend>" + Esc(c.t("Run")) + "</legend><label>" + Esc(c.t("Operator")) +
        " <input name=\"operator\" value=\"" + Esc(operator_name) + "\" required></label><label>" + Esc(c.t("Day")) +
        " <input type=\"date\" name=\"day\" value=\"" + Esc(day) + "\" required></label></fieldset><fieldset><legend>" +
        Esc(c.t("Column mapping")) + (mapping_name.empty() ? "" : " (" + Esc(mapping_name) + ")") + "</legend><label>" +
        Esc(c.t("Delimiter")) + " " + delim + "</label><label>" + Esc(c.t("Comment lines start with")) + " " +
        text("comment_prefix", m.comment_prefix, "3") + "</label><label><input type=\"checkbox\" name=\"header\" value=\"1\"" +
        (m.header ? " checked" : "") + "> " + Esc(c.t("First line names the columns")) + "</label><br><label>" +
        Esc(c.t("Charge reference")) + " " + column_select("reference_column", m.reference_column, true) + "</label><label>" +
        Esc(c.t("Amount")) + " " + column_select("amount_column", m.amount_column, true) + "</label><label>" +
        Esc(c.t("Phone number")) + " " + column_select("msisdn_column", m.msisdn_column, false) + "</label><label>" +
        Esc(c.t("Time")) + " " + column_select("time_column", m.time_column, false) + "</label><label>" + Esc(c.t("Status")) +
        " " + column_select("status_column", m.status_column, false) + "</label><br><label>" +
        Esc(c.t("Status values meaning charged (comma-separated)")) + " " + text("charged_values", charged, "20") +
        "</label><label>" + Esc(c.t("Time format")) + " " + text("time_format", m.time_format, "18") + "</label><label>" +
        Esc(c.t("Time zone")) + " " + text("time_zone", m.time_zone, "16") + "</label><br><label>" +
        Esc(c.t("Thousands separator")) + " " + text("thousands_separator", a.thousands_separator, "2") + "</label><label>" +
        Esc(c.t("Decimal separator")) + " " + text("decimal_separator", a.decimal_separator, "2") + "</label><label>" +
        Esc(c.t("Currency before")) + " " + text("currency_prefix", a.currency_prefix, "4") + "</label><label>" +
        Esc(c.t("Currency after")) + " " + text("currency_suffix", a.currency_suffix, "4") + "</label><br><label>" +
        Esc(c.t("Save this mapping as (optional)")) + " <input name=\"save_as\" maxlength=\"64\" value=\"\"></label></fieldset>"
        "<button class=\"run\">" + Esc(c.t("Run the reconciliation")) + "</button>";
    b += "<h2>" + Esc(c.t("Column mapping")) + "</h2>" + Form(c, "/reconcile/run", inner, "mapping");
    return Html(c, status, c.t("Reconcile"), b);
  }

  HttpResponse UploadSettlement(Ctx& c) {
    if (!MayReconcile(c)) return Refused(c, "reconcile_upload", "role finance needed");
    const std::string operator_name = Get(c.form, "operator"), day = Get(c.form, "day");
    if (!c.upload) return ReconcileHome(c, "Choose a settlement file.", 400);
    if (!ValidOperatorName(operator_name)) return ReconcileHome(c, "An operator name is letters, digits, '.', '_' or '-'.", 400);
    if (!finance::ParseDate(day)) return ReconcileHome(c, "Dates are written YYYY-MM-DD.", 400);
    const std::string id = c.upload_id;
    Upload up = *c.upload;
    const std::string mapping_name = Get(c.form, "mapping").substr(0, 64);
    std::optional<finance::SettlementMapping> given;
    if (!mapping_name.empty()) {
      auto saved = SavedMappings(c);
      auto it = saved.find(mapping_name);
      finance::SettlementMapping m;
      std::string error;
      if (it == saved.end()) return ReconcileHome(c, "No saved mapping is called " + mapping_name + ".", 400);
      if (!finance::ParseSettlementMapping(it->second, "mapping " + mapping_name, &m, &error))
        return ReconcileHome(c, error, 400);
      given = m;
    }
    {
      std::lock_guard<std::mutex> lock(uploads_mu);
      uploads[id] = up;
    }
    AuditAs(c, "reconcile_upload", "file " + up.file_name + " " + std::to_string(up.bytes) + " bytes sha256 " + up.sha256_hex, "ok");
    return Preview(c, id, up, operator_name, day, mapping_name, given, "", 200);
  }

  HttpResponse RunReconcile(Ctx& c) {
    if (!MayReconcile(c)) return Refused(c, "reconcile_run", "role finance needed");
    const std::string upload_id = Get(c.form, "upload");
    auto up = FindUpload(c, upload_id);
    if (!up) return ReconcileHome(c, "The uploaded file is no longer here (uploads are kept two hours); upload it again.", 410);
    const std::string operator_name = Get(c.form, "operator"), day = Get(c.form, "day");
    const std::string mapping_name = Get(c.form, "mapping").substr(0, 64), save_as = Get(c.form, "save_as");
    const finance::SettlementMapping m = MappingFromForm(c.form);
    auto again = [&](const std::string& error) {
      return Preview(c, upload_id, *up, operator_name, day, mapping_name, m, error, 400);
    };
    auto d = finance::ParseDate(day);
    if (!ValidOperatorName(operator_name)) return again("An operator name is letters, digits, '.', '_' or '-'.");
    if (!d) return again("Dates are written YYYY-MM-DD.");
    if (!save_as.empty() && !std::regex_match(save_as, std::regex("[A-Za-z0-9][A-Za-z0-9._ -]{0,63}")))
      return again("A mapping name is letters, digits, spaces, '.', '_' or '-' (at most 64).");
    std::string why;
    if (!finance::ValidateSettlementMapping(m, &why)) return again(why);
    // The mapping as stored and hashed: its TOML, read back, is what runs.
    const std::string toml = finance::SettlementMappingToToml(m);
    finance::SettlementMapping run_mapping;
    if (!finance::ParseSettlementMapping(toml, "mapping", &run_mapping, &why)) return again(why);
    std::ifstream in(up->path, std::ios::binary);
    // The encoding as the preview showed it; a file that is not UTF-8 is not run (its texts
    // would be compared as mangled bytes).
    finance::SettlementLayout layout;
    if (!finance::DetectSettlementLayout(in, run_mapping.comment_prefix, 10, &layout, &why)) return again(why);
    if (!layout.valid_utf8) return again("The file is not UTF-8: save it as UTF-8 (CSV UTF-8) and upload it again.");
    in.clear();
    in.seekg(0);
    std::vector<finance::SettlementRow> rows;
    finance::SettlementError err;
    if (!in || !finance::ReadSettlement(in, run_mapping, &rows, &err))
      return again("Line " + std::to_string(err.line) + ": " + err.message);
    const finance::UtcRange range = finance::LocalDayRange(*d, kIct);
    AsRole(c.conn, "donagate_finance");
    finance::ReconcileReport report;
    StoreStatus st = finance::ReconcileWithLedger(c.conn, operator_name, range, rows, kIct, &report);
    if (!st.ok()) return again("The database did not answer: " + st.message());
    std::ostringstream csv;
    finance::WriteDiscrepancyCsv(csv, report);
    nlohmann::json totals = nlohmann::json::object();
    for (auto& [name, value] : finance::ReconcileFigures(report)) totals[name] = value;
    AsRole(c.conn, "donagate_console");
    billing::pg::Transaction tx(c.conn);
    st = tx.Begin();
    if (st.ok() && !save_as.empty())
      st = c.conn.Exec("INSERT INTO settlement_mapping (name, toml, created_by) VALUES ($1, $2, $3) ON CONFLICT (name) "
                       "DO UPDATE SET toml = excluded.toml, updated_at = now()",
                       Params().Text(save_as).Text(toml).Text(c.session->user.name));
    Result r;
    if (st.ok())
      st = c.conn.Exec(
          "INSERT INTO reconcile_run (run_by, operator, day, settlement_name, settlement_sha256, settlement_bytes, "
          "mapping_toml, mapping_sha256, totals, discrepancies_csv, mapping_name, settlement_encoding, settlement_rows, "
          "discrepancies_sha256) VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14) "
          "RETURNING id",
          Params().Text(c.session->user.name).Text(operator_name).Text(day).Text(up->file_name).Text(up->sha256_hex)
              .Int(static_cast<int64_t>(up->bytes)).Text(toml).Text(Sha256Hex(toml)).Text(totals.dump()).Text(csv.str())
              .Text(save_as.empty() ? mapping_name : save_as).Text(layout.encoding)
              .Int(static_cast<int64_t>(rows.size())).Text(Sha256Hex(csv.str())),
          &r);
    if (st.ok())
      st = Audit(c.conn, c.session->user.name, "reconcile_run",
                 "run " + r.String(0, 0) + " " + operator_name + " " + day + " file " + up->file_name + " sha256 " +
                     up->sha256_hex + " discrepancies " + std::to_string(report.discrepancies.size()) +
                     (save_as.empty() ? "" : " saved mapping " + save_as),
                 c.req->remote_addr, "ok");
    if (st.ok()) st = tx.Commit();
    if (!st.ok()) return again("The run could not be saved: " + st.message());
    // The run holds the file's hash; the file itself (subscribers' numbers) is not kept.
    {
      std::lock_guard<std::mutex> lock(uploads_mu);
      uploads.erase(upload_id);
    }
    std::remove(up->path.c_str());
    return Redirect("/reconcile/runs/" + r.String(0, 0));
  }

  // /reconcile/runs/N and /reconcile/runs/N/discrepancies.csv
  HttpResponse ShowRun(Ctx& c) {
    std::string rest = c.path.substr(std::string("/reconcile/runs/").size());
    const bool csv = rest.ends_with("/discrepancies.csv");
    if (csv) rest.resize(rest.size() - std::string("/discrepancies.csv").size());
    if (!AllDigits(rest)) return Html(c, 404, "404", "<p>" + Esc(c.t("Not found.")) + "</p>");
    AsRole(c.conn, "donagate_console");
    Result r;
    StoreStatus st = c.conn.Exec(
        "SELECT id, to_char(run_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI:SS'), run_by, operator, "
        "to_char(day, 'YYYY-MM-DD'), settlement_name, settlement_sha256, settlement_bytes, mapping_toml, mapping_sha256, "
        "totals::text, discrepancies_csv, mapping_name, settlement_encoding, settlement_rows, discrepancies_sha256 "
        "FROM reconcile_run WHERE id = $1",
        Params().Int(std::stoll(rest)), &r);
    if (!st.ok()) return Html(c, 503, c.t("Reconcile"), "<p class=\"error\">" + Esc(st.message()) + "</p>");
    if (r.rows() != 1) return Html(c, 404, c.t("Reconcile"), "<p>" + Esc(c.t("Not found.")) + "</p>");
    const std::string id = r.String(0, 0);
    if (csv) {
      AuditAs(c, "reconcile_download", "run " + id, "ok");
      HttpResponse out;
      out.headers.emplace_back("Content-Type", "text/csv; charset=utf-8");
      // Built from the run's number only.
      out.headers.emplace_back("Content-Disposition", "attachment; filename=\"discrepancies-run-" + id + ".csv\"");
      out.body = r.String(0, 11);
      return out;
    }
    auto totals = nlohmann::json::parse(r.String(0, 10), nullptr, false);
    auto n = [&](const char* k) -> int64_t { return totals.is_object() && totals.contains(k) ? totals[k].get<int64_t>() : 0; };
    std::string b = "<dl class=\"inputs\"><dt>" + Esc(c.t("Operator")) + "</dt><dd>" + Esc(r.String(0, 3)) + "</dd><dt>" +
                    Esc(c.t("Day")) + "</dt><dd>" + Esc(r.String(0, 4)) + " (Asia/Ho_Chi_Minh)</dd><dt>" + Esc(c.t("Run at")) +
                    "</dt><dd>" + Esc(r.String(0, 1)) + " " + Esc(c.t("by")) + " " + Esc(r.String(0, 2)) + "</dd><dt>" +
                    Esc(c.t("Settlement file")) + "</dt><dd>" + Esc(r.String(0, 5)) + " (" + FormatCount(r.Int64(0, 7)) +
                    " bytes, " + FormatCount(r.Int64(0, 14)) + " rows, " + Esc(r.String(0, 13)) +
                    ")</dd><dt>SHA-256</dt><dd><code class=\"settlement-sha256\">" + Esc(r.String(0, 6)) + "</code></dd><dt>" +
                    Esc(c.t("Mapping")) + "</dt><dd>" + Esc(r.String(0, 12).empty() ? c.t("built for this run") : r.String(0, 12)) +
                    " <code class=\"mapping-sha256\">" + Esc(r.String(0, 9)) + "</code><details><summary>TOML</summary><pre>" +
                    Esc(r.String(0, 8)) + "</pre></details></dd><dt>" + Esc(c.t("Discrepancy CSV")) +
                    "</dt><dd><a class=\"download\" download href=\"/reconcile/runs/" + id + "/discrepancies.csv\">" +
                    Esc(c.t("Download discrepancy CSV")) + "</a> <code class=\"discrepancies-sha256\">" +
                    Esc(r.String(0, 15)) + "</code></dd></dl>";
    b += "<table class=\"sides\"><tr><th></th><th>" + Esc(c.t("Charges")) + "</th><th>VND</th></tr><tr class=\"ours\"><td>" +
         Esc(c.t("Our ledger")) + "</td><td class=\"n count\">" + FormatCount(n("ours_charged")) + "</td><td class=\"n vnd\">" +
         FormatVnd(n("ours_vnd")) + "</td></tr><tr class=\"theirs\"><td>" + Esc(c.t("Operator's file")) +
         "</td><td class=\"n count\">" + FormatCount(n("theirs_charged")) + "</td><td class=\"n vnd\">" +
         FormatVnd(n("theirs_vnd")) + "</td></tr><tr class=\"theirs-duplicates\"><td>" +
         Esc(c.t("of which billed twice")) + "</td><td class=\"n count\">" + FormatCount(n("theirs_duplicate_charged")) +
         "</td><td class=\"n vnd\">" + FormatVnd(n("theirs_duplicate_vnd")) + "</td></tr><tr class=\"matched\"><td>" +
         Esc(c.t("Matched")) + "</td><td class=\"n count\">" + FormatCount(n("matched")) + "</td><td class=\"n vnd\">" +
         FormatVnd(n("matched_vnd")) + "</td></tr></table>";
    b += "<table class=\"kinds\"><tr><th>" + Esc(c.t("Discrepancy")) + "</th><th>" + Esc(c.t("Count")) + "</th></tr>";
    for (const char* k : {"missing_at_operator", "missing_in_ledger", "amount_mismatch", "status_mismatch",
                          "duplicate_at_operator"})
      b += "<tr><td>" + Esc(c.t(k)) + "</td><td class=\"n\" data-kind=\"" + std::string(k) + "\">" + FormatCount(n(k)) +
           "</td></tr>";
    b += "</table><p class=\"note\">" + FormatCount(n("agreed_not_charged")) + " " +
         Esc(c.t("rows agreed not charged")) + ", " + FormatCount(n("theirs_outside_day")) + " " +
         Esc(c.t("rows dated outside the day")) + ".</p>";
    // The stored CSV, shown as a table (the first 1,000 lines; the download has them all).
    std::istringstream lines(r.String(0, 11));
    std::string line;
    std::vector<std::string> fields;
    b += "<table class=\"discrepancies\">";
    for (int i = 0; i <= 1000 && std::getline(lines, line); ++i) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!finance::SplitCsvLine(line, ',', &fields)) continue;
      const char* cell = i == 0 ? "th" : "td";
      b += i == 0 ? "<tr>" : "<tr class=\"discrepancy\">";
      // Numbers masked on the page as in the lookup (the CSV, finance's work file, has them whole:
      // the operator's own file, which finance uploaded, has them too).
      if (i > 0 && fields.size() > 2 && !MayViewMsisdn(c) && fields[2].size() >= 9) fields[2] = MaskMsisdn(fields[2]);
      for (auto& f : fields) b += "<" + std::string(cell) + ">" + Esc(f) + "</" + cell + ">";
      b += "</tr>";
    }
    b += "</table>";
    return Html(c, 200, c.t("Reconcile") + " #" + id, b);
  }

  // Reads a multipart upload into c.form and a spool file (the reconcile upload). Returns a
  // response when the request ends here (too large, malformed).
  std::optional<HttpResponse> ReadUpload(Ctx& c) {
    auto ct = c.req->headers.find("content-type");
    const std::string boundary = MultipartBoundary(ct == c.req->headers.end() ? "" : ct->second);
    if (boundary.empty()) return Html(c, 400, c.t("Reconcile"), "<p class=\"error\">The upload is not a multipart form.</p>");
    ForgetOldUploads();
    const std::string id = RandomHex(16);
    Upload up;
    up.user_id = c.session->user.id;
    up.path = opt.spool_dir + "/donagate-console-upload-" + id + ".csv";
    up.at = std::chrono::steady_clock::now();
    MultipartLimits limits;
    limits.max_file_bytes = opt.max_upload_bytes;
    MultipartUpload mp;
    std::string error;
    std::unique_ptr<std::istream> in;
    if (!c.req->body_file.empty()) in = std::make_unique<std::ifstream>(c.req->body_file, std::ios::binary);
    else in = std::make_unique<std::istringstream>(c.req->body);
    const MultipartStatus ms = ReadMultipart(*in, boundary, up.path, limits, &mp, &error);
    if (ms != MultipartStatus::kOk) std::remove(up.path.c_str());
    if (ms == MultipartStatus::kTooLarge) {
      AuditAs(c, "reconcile_upload", "file larger than " + std::to_string(opt.max_upload_bytes) + " bytes", "refused");
      return Html(c, 413, c.t("Reconcile"),
                  "<p class=\"error\">The file is larger than the console accepts: at most " +
                      LimitText(opt.max_upload_bytes) + ". Split the settlement file by day.</p><p><a href=\"/reconcile\">" +
                      Esc(c.t("Back")) + "</a></p>");
    }
    if (ms != MultipartStatus::kOk) return Html(c, 400, c.t("Reconcile"), "<p class=\"error\">" + Esc(error) + "</p>");
    c.form = std::move(mp.fields);
    if (!mp.file_field.empty() && mp.file_bytes > 0) {
      up.file_name = mp.file_name.empty() ? "settlement.csv" : mp.file_name;
      up.bytes = mp.file_bytes;
      up.sha256_hex = mp.file_sha256_hex;
      c.upload = up;
      c.upload_id = id;
    } else {
      std::remove(up.path.c_str());
    }
    return std::nullopt;
  }

  // ----- exports ---------------------------------------------------------------------------
  HttpResponse Exports(Ctx& c) {
    int64_t from = 0, to = 0;
    std::string error;
    if (!Range(c, &from, &to, &error)) return Html(c, 400, c.t("Exports"), "<p class=\"error\">" + Esc(error) + "</p>");
    const std::string q = "?from=" + finance::FormatDate(from) + "&amp;to=" + finance::FormatDate(to);
    std::string b = RangeForm(c, from, to, "/exports") + "<ul class=\"exports\"><li><a class=\"export\" download href=\"/exports/donations.csv" +
                    q + "\">" + Esc(c.t("Download donations CSV")) + "</a></li><li><a class=\"export\" download href=\"/exports/ledger.csv" +
                    q + "\">" + Esc(c.t("Download ledger CSV")) + "</a></li></ul><p id=\"export-progress\" class=\"message\" "
                    "aria-live=\"polite\" hidden></p><p class=\"note\">CSV (RFC 4180, CRLF), streamed from a database cursor: "
                    "any range. With JavaScript the rows written so far are counted here; without it the browser's "
                    "download shows the progress.</p>";
    return Html(c, 200, c.t("Exports"), b, "<script src=\"/static/console.js\" defer></script>");
  }

  HttpResponse ExportCsv(Ctx& c, finance::ExportKind kind) {
    int64_t from = 0, to = 0;
    std::string error;
    if (!Range(c, &from, &to, &error)) return Html(c, 400, c.t("Exports"), "<p class=\"error\">" + Esc(error) + "</p>");
    const std::string what = kind == finance::ExportKind::kDonations ? "donations" : "ledger";
    AuditAs(c, "export", what + " " + finance::FormatDate(from) + ".." + finance::FormatDate(to), "ok");
    HttpResponse r;
    r.headers.emplace_back("Content-Type", "text/csv; charset=utf-8");
    // The file name is built from two validated dates only.
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + what + "-" + finance::FormatDate(from) +
                                                      "-" + finance::FormatDate(to) + ".csv\"");
    const finance::UtcRange range{finance::LocalDayRange(from, kIct).start, finance::LocalDayRange(to, kIct).end};
    const std::string conninfo = opt.conninfo;
    const int batch = opt.export_batch;
    // The page's script names the export (a random id) to poll its progress; without one, none.
    std::string progress_id = Get(c.query, "progress");
    if (!IsProgressId(progress_id)) progress_id.clear();
    else StartProgress(progress_id);
    r.stream = [this, conninfo, kind, range, batch, progress_id](const std::function<bool(std::string_view)>& sink) {
      // A streambuf that hands every 64 KiB to the socket: the export never sits in memory.
      struct SinkBuf : std::streambuf {
        const std::function<bool(std::string_view)>& sink;
        std::string buf;
        bool failed = false;
        explicit SinkBuf(const std::function<bool(std::string_view)>& s) : sink(s) { buf.reserve(1 << 16); }
        int_type overflow(int_type ch) override {
          if (ch != traits_type::eof()) buf.push_back(static_cast<char>(ch));
          if (buf.size() >= (1 << 16)) return Flush() ? ch : traits_type::eof();
          return ch;
        }
        std::streamsize xsputn(const char* s, std::streamsize n) override {
          buf.append(s, static_cast<size_t>(n));
          if (buf.size() >= (1 << 16) && !Flush()) return 0;
          return n;
        }
        bool Flush() {
          if (!failed && !buf.empty()) failed = !sink(buf);
          buf.clear();
          return !failed;
        }
        int sync() override { return Flush() ? 0 : -1; }
      } sb(sink);
      std::ostream out(&sb);
      Connection conn;
      if (!conn.Ensure(conninfo).ok()) return;
      AsRole(conn, "donagate_finance");
      int64_t rows = 0;
      std::function<void(int64_t)> progress;
      if (!progress_id.empty()) progress = [this, &progress_id](int64_t n) { SetProgress(progress_id, n, false); };
      finance::ExportCsv(conn, kind, range, out, kIct, batch, progress, &rows);
      out.flush();
      sb.Flush();
      if (!progress_id.empty()) SetProgress(progress_id, rows, true);
    };
    return r;
  }

  // Rows written by running exports, by the id the page's script chose (bounded: old and
  // excess entries are dropped; an id only tells a count, never data).
  struct ExportProgress {
    int64_t rows = 0;
    bool done = false;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex progress_mu;
  std::map<std::string, ExportProgress> progress;

  static bool IsProgressId(const std::string& id) {
    return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  }
  void StartProgress(const std::string& id) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(progress_mu);
    for (auto it = progress.begin(); it != progress.end();)
      it = (now - it->second.at > std::chrono::hours(1) || progress.size() > 1000) ? progress.erase(it) : std::next(it);
    progress[id] = {0, false, now};
  }
  void SetProgress(const std::string& id, int64_t rows, bool done) {
    std::lock_guard<std::mutex> lock(progress_mu);
    auto it = progress.find(id);
    if (it == progress.end()) return;
    it->second.rows = rows;
    it->second.done = done;
    it->second.at = std::chrono::steady_clock::now();
  }
  HttpResponse ExportProgressJson(Ctx& c) {
    const std::string id = Get(c.query, "id");
    nlohmann::json j = {{"known", false}, {"rows", 0}, {"done", false}};
    if (IsProgressId(id)) {
      std::lock_guard<std::mutex> lock(progress_mu);
      if (auto it = progress.find(id); it != progress.end())
        j = {{"known", true}, {"rows", it->second.rows}, {"done", it->second.done}};
    }
    HttpResponse r;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = j.dump();
    return r;
  }

  // ----- operations ------------------------------------------------------------------------
  HttpResponse Operations(Ctx& c, const std::string& message = "") {
    std::string b;
    if (!message.empty()) b += "<p class=\"message\">" + Esc(message) + "</p>";
    if (opt.admin_address.empty()) return Html(c, 200, c.t("Operations"), b + "<p>No daemon admin endpoint is configured (--admin).</p>");
    auto links = ctl::AdminRequest(opt.admin_address, "GET", "/admin/links", opt.admin_token);
    if (links.status == 0) {
      b += "<p class=\"error\">The daemon's admin endpoint does not answer.</p>";
    } else {
      // Shown as data: the daemon's JSON, parsed and escaped cell by cell.
      auto j = nlohmann::json::parse(links.body, nullptr, false);
      b += "<table class=\"links\">";
      if (j.is_object() && j.contains("charging_paused"))
        b += "<p class=\"charging\">Charging: <strong>" + std::string(j["charging_paused"].get<bool>() ? "paused" : "running") + "</strong></p>";
      const nlohmann::json* arr = j.is_array() ? &j : (j.is_object() && j.contains("links") ? &j["links"] : nullptr);
      if (arr && arr->is_array()) {
        bool header = false;
        for (auto& link : *arr) {
          if (!link.is_object()) continue;
          if (!header) {
            b += "<tr>";
            for (auto& [k, v] : link.items()) b += "<th>" + Esc(k) + "</th>";
            b += "</tr>";
            header = true;
          }
          b += "<tr>";
          for (auto& [k, v] : link.items()) b += "<td>" + Esc(v.is_string() ? v.get<std::string>() : v.dump()) + "</td>";
          b += "</tr>";
        }
      } else {
        b += "<tr><td><pre>" + Esc(links.body) + "</pre></td></tr>";
      }
      b += "</table>";
    }
    if (c.session->user.Has("ops"))
      b += Form(c, "/operations/pause", "<button>" + Esc(c.t("Pause charging")) + "</button>", "inline") +
           Form(c, "/operations/resume", "<button>" + Esc(c.t("Resume charging")) + "</button>", "inline");
    return Html(c, 200, c.t("Operations"), b);
  }

  HttpResponse Charging(Ctx& c, bool pause) {
    const std::string action = pause ? "charging_pause" : "charging_resume";
    if (!c.session->user.Has("ops")) return Refused(c, action, "role ops needed");
    if (opt.admin_address.empty()) return Operations(c, "No daemon admin endpoint is configured.");
    auto res = ctl::AdminRequest(opt.admin_address, "POST", pause ? "/admin/charging/pause" : "/admin/charging/resume",
                                 opt.admin_token);
    const bool ok = res.status / 100 == 2;
    AuditAs(c, action, "HTTP " + std::to_string(res.status), ok ? "ok" : "failed");
    return Operations(c, ok ? (pause ? "Charging paused." : "Charging resumed.")
                            : "The daemon refused (HTTP " + std::to_string(res.status) + ").");
  }

  // ----- static files ----------------------------------------------------------------------
  HttpResponse Static(const std::string& path) {
    HttpResponse r;
    // A fixed table: the request path selects an entry, never a file name.
    std::string file, type;
    if (path == "/static/chart.js") {
      file = opt.chart_js_path;
      type = "text/javascript";
    } else if (path == "/static/console.js") {
      r.headers.emplace_back("Content-Type", "text/javascript");
      r.body = ConsoleJs();
    } else if (path == "/static/console.css") {
      r.headers.emplace_back("Content-Type", "text/css");
      r.body = ConsoleCss();
    } else {
      r.status = 404;
      r.headers.emplace_back("Content-Type", "text/plain");
      r.body = "not found\n";
      return r;
    }
    if (!file.empty()) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        r.status = 404;
        r.body = "chart.js is not installed (Debian package libjs-chart.js)\n";
        return r;
      }
      std::ostringstream s;
      s << in.rdbuf();
      r.body = s.str();
      r.headers.emplace_back("Content-Type", type);
    }
    r.headers.emplace_back("Cache-Control", "max-age=3600");
    return r;
  }

  static std::string ConsoleJs() {
    return R"JS(// donagate console: draws the overview chart from the page's JSON block (no inline script);
// counts the rows of a running export on the Exports page (the links work without it).
(function () {
  var shown = document.getElementById('export-progress');
  if (!shown) return;
  var links = document.querySelectorAll('a.export');
  for (var i = 0; i < links.length; i++) {
    links[i].addEventListener('click', function (ev) {
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      var id = Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
      var a = ev.currentTarget;
      a.href = a.href.replace(/&progress=[0-9a-f]*/, '') + '&progress=' + id;
      shown.hidden = false;
      shown.textContent = 'Export started…';
      var poll = function () {
        fetch('/exports/progress?id=' + id).then(function (r) { return r.json(); }).then(function (p) {
          if (p.known) shown.textContent = p.rows.toLocaleString('vi-VN') + ' rows written' + (p.done ? ' — done.' : '…');
          shown.dataset.rows = p.rows;
          shown.dataset.done = p.done ? '1' : '0';
          if (!p.done) setTimeout(poll, 500);
        }).catch(function () { setTimeout(poll, 2000); });
      };
      setTimeout(poll, 300);
    });
  }
})();
(function () {
  var el = document.getElementById('chart-data');
  if (!el || typeof Chart === 'undefined') return;
  var d = JSON.parse(el.textContent);
  new Chart(document.getElementById('chart'), {
    data: { labels: d.labels, datasets: [
      { type: 'bar', label: d.donations_label, data: d.donations, yAxisID: 'n', backgroundColor: '#4e79a7' },
      { type: 'line', label: d.vnd_label, data: d.vnd, yAxisID: 'vnd', borderColor: '#e15759' } ] },
    options: { animation: false, responsive: false, scales: { n: { position: 'left', beginAtZero: true },
      vnd: { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } } } }
  });
})();
)JS";
  }

  static std::string ConsoleCss() {
    return R"CSS(body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#1f3b5a;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
nav a{color:#fff;text-decoration:none}nav a.here{font-weight:bold;text-decoration:underline}
nav .who{color:#cde;margin-left:auto}form.inline{display:inline}
main{padding:1em 2em}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
td.n{text-align:right;white-space:nowrap}tfoot td{font-weight:bold}
.error{color:#a00;font-weight:bold}.message{background:#eef;padding:.5em}.note{color:#666}
form label{margin-right:1em}form.login label{display:block;margin:.5em 0}
)CSS";
  }

  // ----- dispatch --------------------------------------------------------------------------
  HttpResponse Dispatch(Ctx& c) {
    const HttpRequest& req = *c.req;
    if (c.path.rfind("/static/", 0) == 0) return Static(c.path);
    if (req.method != "GET" && req.method != "POST" && req.method != "HEAD") {
      HttpResponse r;
      r.status = 405;
      r.body = "method not allowed\n";
      return r;
    }
    const bool post = req.method == "POST";
    if (post) {
      auto ct = req.headers.find("content-type");
      if (ct != req.headers.end() && ct->second.rfind("application/x-www-form-urlencoded", 0) == 0) c.form = ParseForm(req.body);
    }
    // A spooled body bigger than the limit (a server without its own check, or a test): 413.
    if (!req.body_file.empty()) {
      std::ifstream f(req.body_file, std::ios::binary | std::ios::ate);
      if (f && static_cast<uint64_t>(f.tellg()) > opt.max_upload_bytes + 64 * 1024)
        return Html(c, 413, c.t("Reconcile"), "<p class=\"error\">The file is larger than the console accepts: at most " +
                                                  LimitText(opt.max_upload_bytes) + ".</p>");
    }
    StoreStatus st = c.conn.Ensure(opt.conninfo);
    if (!st.ok()) return Html(c, 503, "donagate", "<p class=\"error\">The database is not reachable.</p>");
    if (c.path == "/login") {
      if (post) return PostLogin(c);
      return LoginPage(c, 200, "");
    }
    c.session = LoadSession(c);
    if (!c.session) {
      if (post) return Html(c, 401, c.t("Log in"), "<p class=\"error\">Log in first.</p>");
      return Redirect("/login");
    }
    if (post && c.path == "/reconcile/upload")
      if (auto early = ReadUpload(c)) return *early;
    if (post && !CsrfOk(c)) {
      if (c.upload) std::remove(c.upload->path.c_str());
      AuditAs(c, "csrf", req.method + " " + c.path + ": missing or wrong CSRF token", "refused");
      return Html(c, 403, "CSRF", "<p class=\"error\">The form's security token is missing or wrong; reload the page and try again.</p>");
    }
    if (c.path == "/logout" && post) return PostLogout(c);
    if (c.path == "/" && !post) return Overview(c);
    if (c.path == "/lookup" && !post) return Lookup(c);
    if (c.path == "/reversals" && !post) return Reversals(c);
    if (c.path == "/reversals/request" && post) return RequestReversal(c);
    if (c.path == "/reversals/decide" && post) return DecideReversal(c);
    if (c.path == "/exports" && !post) return Exports(c);
    if (c.path == "/exports/donations.csv" && !post) return ExportCsv(c, finance::ExportKind::kDonations);
    if (c.path == "/exports/ledger.csv" && !post) return ExportCsv(c, finance::ExportKind::kLedger);
    if (c.path == "/exports/progress" && !post) return ExportProgressJson(c);
    if (c.path == "/reconcile" && !post) return ReconcileHome(c);
    if (c.path == "/reconcile/upload" && post) {
      HttpResponse r = UploadSettlement(c);
      // Kept only when UploadSettlement registered it for the run.
      if (c.upload) {
        std::lock_guard<std::mutex> lock(uploads_mu);
        if (!uploads.count(c.upload_id)) std::remove(c.upload->path.c_str());
      }
      return r;
    }
    if (c.path == "/reconcile/run" && post) return RunReconcile(c);
    if (c.path.rfind("/reconcile/runs/", 0) == 0 && !post) return ShowRun(c);
    if (c.path == "/operations" && !post) return Operations(c);
    if (c.path == "/operations/pause" && post) return Charging(c, true);
    if (c.path == "/operations/resume" && post) return Charging(c, false);
    return Html(c, 404, "404", "<p>" + Esc(c.t("Not found.")) + "</p>");
  }
};

ConsoleApp::ConsoleApp(ConsoleOptions options) : impl_(std::make_unique<Impl>(std::move(options))) { InitCrypto(); }
ConsoleApp::~ConsoleApp() = default;

HttpResponse ConsoleApp::Handle(const HttpRequest& request) {
  Impl::Ctx c;
  c.req = &request;
  c.path = PathOf(request.target);
  c.query = QueryOf(request.target);
  c.cookies = Cookies(request);
  std::string lang = Get(c.query, "lang");
  if (lang.empty()) lang = Get(c.cookies, kLangCookie);
  c.lang = lang == "en" ? Lang::kEn : Lang::kVi;
  HttpResponse r = impl_->Dispatch(c);
  const std::string chosen = Get(c.query, "lang");
  if (chosen == "en" || chosen == "vi")
    r.headers.emplace_back("Set-Cookie", std::string(kLangCookie) + "=" + chosen + "; Path=/; SameSite=Strict" +
                                             (request.tls ? "; Secure" : ""));
  SecurityHeaders(&r);
  return r;
}

}  // namespace donagate::console
