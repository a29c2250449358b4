// The finance console's handlers against real PostgreSQL: requests go through
// ConsoleApp::Handle exactly as the server passes them (cookies, forms, remote address), and
// every expectation is read back from the database or from the shared finance code.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "billing/finance/finance.h"
#include "billing/finance/reconcile.h"
#include "billing/finance/settlement.h"
#include "billing/finance/time_util.h"
#include "billing/store/migrate.h"
#include "billing/store/pg.h"
#include "config/config.h"
#include "console/app.h"
#include "console/html.h"
#include "console/multipart.h"
#include "console/password.h"
#include "console/users.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pg.h"

namespace donagate::console {
namespace {

using ::donagate::testing::ExecSql;
using ::donagate::testing::QueryValue;

constexpr int kIct = 7 * 3600;
const char* kDay = "2026-11-27";
const char* kPassword = "correct horse battery";
const char* kReconcileDay = "2026-11-20";
// Operator "opr"'s file for kReconcileDay: a BOM, ';', amounts written "20.000", and exactly one
// discrepancy of each kind: don-102 billed 45.000 (amount), don-103 failed at the operator
// (status), don-104 absent (missing at operator), don-999 unknown to us (missing in ledger),
// don-101 twice (duplicate); don-105 failed on both sides (agreed not charged).
const char* kOprSettlement =
    "\xEF\xBB\xBFref;phone;amount;at;result\r\n"
    "don-101;0912000101;20.000;2026-11-20T01:00:05Z;OK\r\n"
    "don-102;0912000102;45.000;2026-11-20T01:01:45Z;OK\r\n"
    "don-103;0912000103;60.000;2026-11-20T01:03:25Z;FAIL\r\n"
    "don-999;0912000999;20.000;2026-11-20T01:04:00Z;OK\r\n"
    "don-101;0912000101;20.000;2026-11-20T01:00:05Z;OK\r\n"
    "don-105;0912000105;20.000;2026-11-20T01:06:45Z;FAIL\r\n";

std::string Ts(int64_t epoch) { return finance::FormatTimestamp(epoch, 0); }

class ConsoleAppTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::donagate::testing::PostgresServerConninfo().empty()) return;
    conninfo_ = new std::string(::donagate::testing::CreateFreshDatabase("console"));
    ASSERT_TRUE(billing::Migrate(*conninfo_).ok());
    const int64_t start = finance::LocalDayRange(*finance::ParseDate(kDay), kIct).start;
    AddDonation(1, "opa", 20000, "charged", "", start + 3600, "CV 1");
    AddDonation(2, "opa", 40000, "charged", "", start + 7200, "CV 2");
    AddDonation(3, "opb", 20000, "failed", "insufficient_funds: HTTP 402: balance too low", start + 7300, "CV 1");
    AddDonation(4, "opb", 100000, "charged", "", start + 40000, "<script>alert('xss')</script> CV 5");
    billing::pg::Connection conn;
    ASSERT_TRUE(conn.Ensure(*conninfo_).ok());
    ASSERT_TRUE(AddUser(conn, "anna", kPassword, {"finance"}, "test", "test").ok());
    ASSERT_TRUE(AddUser(conn, "binh", kPassword, {"approver"}, "test", "test").ok());
    ASSERT_TRUE(AddUser(conn, "olga", kPassword, {"ops"}, "test", "test").ok());
    ASSERT_TRUE(AddUser(conn, "both", kPassword, {"finance", "approver"}, "test", "test").ok());
    ASSERT_TRUE(AddUser(conn, "fina", kPassword, {"finance"}, "test", "test").ok());
    // Operator "opr" on its own day, for the reconcile tests (no other test reads that day).
    const int64_t rec = finance::LocalDayRange(*finance::ParseDate(kReconcileDay), kIct).start;
    AddDonation(101, "opr", 20000, "charged", "", rec + 3600, "CV 1");
    AddDonation(102, "opr", 40000, "charged", "", rec + 3700, "CV 2");
    AddDonation(103, "opr", 60000, "charged", "", rec + 3800, "CV 3");
    AddDonation(104, "opr", 100000, "charged", "", rec + 3900, "CV 5");
    AddDonation(105, "opr", 20000, "failed", "insufficient_funds", rec + 4000, "CV 1");
  }

  static void AddDonation(int64_t id, const std::string& op, int64_t amount, const std::string& state,
                          const std::string& failure, int64_t at, const std::string& text) {
    const std::string i = std::to_string(id), a = std::to_string(amount), m = "8491" + std::to_string(2000000 + id);
    billing::pg::Connection conn;
    ASSERT_TRUE(conn.Ensure(*conninfo_).ok());
    auto ok = [](billing::StoreStatus st) { ASSERT_TRUE(st.ok()) << st.message(); };
    ok(conn.Exec("INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr, "
                 "data_coding, esm_class, raw_payload, text, received_at, outcome) VALUES ($1, 'test', $2 || '-1', $2, "
                 "$3, $3, '1407', 0, 0, '\\x4356', $4, $5::timestamptz, 'donation')",
                 billing::pg::Params().Int(id).Text(op).Text(m).Text(text).Text(Ts(at))));
    ok(conn.Exec("INSERT INTO donation (id, inbound_message_id, campaign, operator, msisdn, shortcode, units, "
                 "unit_price_vnd, amount_vnd, charging_mode, state, failure_reason, charged_units, charged_amount_vnd, "
                 "received_at) VALUES ($1, $1, 'covid', $2, $3, '1407', 1, $4, $4, 'whole', $5, nullif($6, ''), $7, $8, "
                 "$9::timestamptz)",
                 billing::pg::Params().Int(id).Text(op).Text(m).Int(amount).Text(state).Text(failure)
                     .Int(state == "charged" ? 1 : 0).Int(state == "charged" ? amount : 0).Text(Ts(at))));
    if (state != "charged") return;
    ok(conn.Exec("INSERT INTO charge (key, donation_id, unit_index, units, amount_vnd, outcome) VALUES "
                 "('don-' || $1::text, $1::bigint, 0, 1, $2, 'charged')", billing::pg::Params().Int(id).Int(amount)));
    ok(conn.Exec("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key, "
                 "created_at, created_by) SELECT j, v.account, v.direction, " + a + ", " + i + ", 'don-" + i +
                 "', '" + Ts(at + 1) + "', 'test' FROM (SELECT nextval('ledger_journal_id_seq') AS j) s, "
                 "(VALUES ('receivable:" + op + "', 'debit'), ('fund:covid', 'credit')) AS v(account, direction)"));
  }

  void SetUp() override {
    DONAGATE_REQUIRE_POSTGRES();
    ConsoleOptions o;
    o.conninfo = *conninfo_;
    o.now = [this] { return now_; };
    spool_ = ::testing::TempDir() + "/console-spool-" + RandomHex(6);
    std::filesystem::create_directories(spool_);
    o.spool_dir = spool_;
    app_ = std::make_unique<ConsoleApp>(o);
  }

  struct Browser {
    std::map<std::string, std::string> cookies;
    std::string remote = "192.0.2.10";
  };

  static std::string CookieHeader(const Browser& b) {
    std::string s;
    for (auto& [k, v] : b.cookies) s += (s.empty() ? "" : "; ") + k + "=" + v;
    return s;
  }

  HttpResponse Send(Browser& b, const std::string& method, const std::string& target, const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.remote_addr = b.remote;
    if (!b.cookies.empty()) r.headers["cookie"] = CookieHeader(b);
    if (method == "POST") r.headers["content-type"] = "application/x-www-form-urlencoded";
    r.body = body;
    HttpResponse res = app_->Handle(r);
    for (auto& [k, v] : res.headers) {
      if (k != "Set-Cookie") continue;
      std::string pair = v.substr(0, v.find(';'));
      std::string name = pair.substr(0, pair.find('=')), value = pair.substr(pair.find('=') + 1);
      if (value.empty()) b.cookies.erase(name);
      else b.cookies[name] = value;
    }
    return res;
  }

  static std::string Field(const std::string& html, const std::string& name) {
    std::smatch m;
    std::regex re("name=\"" + name + "\" value=\"([^\"]*)\"");
    return std::regex_search(html, m, re) ? m[1].str() : "";
  }

  HttpResponse Login(Browser& b, const std::string& user, const std::string& password = kPassword) {
    HttpResponse page = Send(b, "GET", "/login");
    return Send(b, "POST", "/login", "csrf=" + Field(page.body, "csrf") + "&user=" + user + "&password=" + UrlEncode(password));
  }

  // A multipart/form-data POST as a browser sends it: the fields, then the file.
  HttpResponse Upload(Browser& b, const std::map<std::string, std::string>& fields, const std::string& file_name,
                      const std::string& file, bool spool_to_disk = false) {
    const std::string boundary = "----donagateTestBoundary7MA4YWxkTrZu0gW";
    std::string body;
    for (auto& [k, v] : fields)
      body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"settlement\"; filename=\"" + file_name +
            "\"\r\nContent-Type: text/csv\r\n\r\n" + file + "\r\n--" + boundary + "--\r\n";
    HttpRequest r;
    r.method = "POST";
    r.target = "/reconcile/upload";
    r.remote_addr = b.remote;
    r.headers["cookie"] = CookieHeader(b);
    r.headers["content-type"] = "multipart/form-data; boundary=" + boundary;
    if (spool_to_disk) {
      // As the server hands it over: the body in a spool file.
      r.body_file = ::testing::TempDir() + "/console-upload-body-" + RandomHex(8);
      std::ofstream(r.body_file, std::ios::binary) << body;
    } else {
      r.body = body;
    }
    HttpResponse res = app_->Handle(r);
    if (!r.body_file.empty()) std::remove(r.body_file.c_str());
    return res;
  }

  // The form fields of the page's mapping form (inputs, checked boxes, selected options).
  static std::map<std::string, std::string> MappingForm(const std::string& html) {
    std::map<std::string, std::string> f;
    std::smatch m;
    std::string rest = html.substr(html.find("action=\"/reconcile/run\""));
    std::regex input("<input (type=\"[a-z]+\" )?name=\"([a-z_]+)\" value=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(rest.begin(), rest.end(), input); it != std::sregex_iterator(); ++it)
      f[(*it)[2]] = Unescape((*it)[3]);
    std::regex select("<select name=\"([a-z_]+)\"[^>]*>(.*?)</select>");
    std::regex selected("<option value=\"([^\"]*)\" selected>");
    for (auto it = std::sregex_iterator(rest.begin(), rest.end(), select); it != std::sregex_iterator(); ++it) {
      const std::string options = (*it)[2];
      if (std::regex_search(options, m, selected)) f[(*it)[1]] = Unescape(m[1]);
    }
    if (rest.find("name=\"header\" value=\"1\" checked") != std::string::npos) f["header"] = "1";
    return f;
  }
  static std::string Unescape(std::string s) {
    for (auto [from, to] : {std::pair<const char*, const char*>{"&quot;", "\""}, {"&#39;", "'"}, {"&lt;", "<"},
                            {"&gt;", ">"}, {"&amp;", "&"}})
      for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, std::string(from).size(), to);
    return s;
  }
  static std::string FormBody(const std::map<std::string, std::string>& f) {
    std::string body;
    for (auto& [k, v] : f) body += (body.empty() ? "" : "&") + k + "=" + UrlEncode(v);
    return body;
  }

  // The CSRF token of the logged-in session, as the pages carry it.
  std::string Csrf(Browser& b) { return Field(Send(b, "GET", "/reversals").body, "csrf"); }

  static std::string Q(const std::string& sql) { return QueryValue(*conninfo_, sql); }

  static std::string* conninfo_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  std::unique_ptr<ConsoleApp> app_;
  std::string spool_;
};
std::string* ConsoleAppTest::conninfo_ = nullptr;

TEST_F(ConsoleAppTest, PagesNeedALoginAndTheSessionCookieIsHttpOnlyStrict) {
  Browser b;
  EXPECT_EQ(Send(b, "GET", "/").status, 303);
  HttpResponse res = Login(b, "anna");
  ASSERT_EQ(res.status, 303) << res.body;
  std::string cookie;
  for (auto& [k, v] : res.headers)
    if (k == "Set-Cookie" && v.rfind("dg_session=", 0) == 0) cookie = v;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "no TLS in this test";
  EXPECT_EQ(Send(b, "GET", "/").status, 200);
  EXPECT_NE(res.Header("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE actor = 'anna' AND action = 'login' AND outcome = 'ok' "
              "AND remote_addr = '192.0.2.10'"), "1");
  // The database keeps only the token's hash.
  EXPECT_EQ(Q("SELECT count(*) FROM console_session WHERE encode(token_sha256, 'hex') = '" + b.cookies["dg_session"] + "'"), "0");
}

TEST_F(ConsoleAppTest, OverviewTotalsEqualTheSharedReportToTheDong) {
  Browser b;
  ASSERT_EQ(Login(b, "anna").status, 303);
  HttpResponse res = Send(b, "GET", std::string("/?from=") + kDay + "&to=" + kDay);
  ASSERT_EQ(res.status, 200) << res.body;
  billing::pg::Connection conn;
  ASSERT_TRUE(conn.Ensure(*conninfo_).ok());
  std::vector<finance::ReportRow> rows;
  const auto day = finance::LocalDayRange(*finance::ParseDate(kDay), kIct);
  ASSERT_TRUE(finance::QueryReport(conn, day, &rows).ok());
  int64_t vnd = 0;
  for (auto& r : rows) vnd += r.vnd_charged;
  // Independently from the ledger: 20000 + 40000 + 100000.
  EXPECT_EQ(vnd, 160000);
  // (Operator opr's charges are on the reconcile tests' own day.)
  EXPECT_EQ(Q("SELECT sum(amount_vnd) FROM ledger_entry WHERE direction = 'debit' AND account <> 'receivable:opr'"), "160000");
  EXPECT_NE(res.body.find("data-vnd-charged=\"160000\""), std::string::npos);
  EXPECT_NE(res.body.find("160.000 \xC4\x91"), std::string::npos) << "amounts read 160.000 đ";
  EXPECT_NE(res.body.find("insufficient_funds 1"), std::string::npos) << "failures by reason code";
  EXPECT_EQ(res.body.find("balance too low"), std::string::npos);
  // The chart's data: one bucket per hour of the day, served with the page (no CDN).
  EXPECT_NE(res.body.find("<script src=\"/static/chart.js\""), std::string::npos);
  EXPECT_EQ(res.body.find("https://"), std::string::npos);
}

TEST_F(ConsoleAppTest, StoredTextsRenderInertAndPhonesAreMaskedForFinance) {
  Browser finance_user, approver;
  ASSERT_EQ(Login(finance_user, "anna").status, 303);
  ASSERT_EQ(Login(approver, "binh").status, 303);
  HttpResponse res = Send(finance_user, "GET", "/lookup?q=4");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.body.find("<script>alert"), std::string::npos) << "an MO text must never become markup";
  EXPECT_NE(res.body.find("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(res.body.find("84912000004"), std::string::npos) << "finance sees masked numbers";
  EXPECT_NE(res.body.find("84912***004"), std::string::npos);
  HttpResponse unmasked = Send(approver, "GET", "/lookup?q=84912000004");
  ASSERT_EQ(unmasked.status, 200);
  EXPECT_NE(unmasked.body.find("84912000004"), std::string::npos);
  // By charge reference too.
  EXPECT_EQ(Send(finance_user, "GET", "/lookup?q=don-2").status, 200);
  // Hostile search text is a parameter: not found, nothing else happens, and it is echoed escaped.
  HttpResponse inj = Send(finance_user, "GET", "/lookup?q=" + UrlEncode("x'; DELETE FROM donation; --<b>"));
  EXPECT_EQ(inj.status, 404);
  EXPECT_EQ(inj.body.find("<b>"), std::string::npos);
  EXPECT_EQ(Q("SELECT count(*) FROM donation"), "9") << "4 of the day and 5 of operator opr's day";
}

TEST_F(ConsoleAppTest, ReversalNeedsTwoPeopleAndRunsTheSharedReversalOnce) {
  Browser anna, binh, both;
  ASSERT_EQ(Login(anna, "anna").status, 303);
  ASSERT_EQ(Login(binh, "binh").status, 303);
  ASSERT_EQ(Login(both, "both").status, 303);
  // An approver may not file, a finance user may not decide.
  EXPECT_EQ(Send(binh, "POST", "/reversals/request", "csrf=" + Csrf(binh) + "&donation=2&reason=x").status, 403);
  ASSERT_EQ(Send(anna, "POST", "/reversals/request", "csrf=" + Csrf(anna) + "&donation=2&reason=" +
                                                         UrlEncode("subscriber complaint <b>")).status, 303);
  const std::string id = Q("SELECT id FROM reversal_request WHERE donation_id = 2");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Send(anna, "POST", "/reversals/decide", "csrf=" + Csrf(anna) + "&id=" + id + "&decision=approve").status, 403);
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 2"), "charged");
  // Someone with both roles still cannot approve their own request.
  ASSERT_EQ(Send(both, "POST", "/reversals/request", "csrf=" + Csrf(both) + "&donation=1&reason=dup").status, 303);
  const std::string own = Q("SELECT id FROM reversal_request WHERE donation_id = 1");
  EXPECT_EQ(Send(both, "POST", "/reversals/decide", "csrf=" + Csrf(both) + "&id=" + own + "&decision=approve").status, 403);
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 1"), "charged");
  // The database enforces the four eyes too.
  EXPECT_THROW(ExecSql(*conninfo_, "UPDATE reversal_request SET state = 'rejected', decided_by = requested_by, "
                                   "decided_at = now() WHERE id = " + own),
               std::runtime_error);

  const std::string ledger_before = Q("SELECT count(*) FROM ledger_entry");
  HttpResponse ok = Send(binh, "POST", "/reversals/decide", "csrf=" + Csrf(binh) + "&id=" + id + "&decision=approve");
  ASSERT_EQ(ok.status, 303) << ok.body;
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 2"), "reversed");
  EXPECT_EQ(std::stoi(Q("SELECT count(*) FROM ledger_entry")), std::stoi(ledger_before) + 2);
  EXPECT_EQ(Q("SELECT state || ':' || amount_vnd || ':' || decided_by FROM reversal_request WHERE id = " + id),
            "done:40000:binh");
  EXPECT_EQ(Q("SELECT count(*) FROM ledger_entry WHERE donation_id = 2 AND reverses_journal_id IS NOT NULL "
              "AND created_by LIKE 'binh%anna%'"), "2") << "both people are on the ledger rows";
  // Deciding again writes nothing.
  EXPECT_EQ(Send(binh, "POST", "/reversals/decide", "csrf=" + Csrf(binh) + "&id=" + id + "&decision=approve").status, 200);
  EXPECT_EQ(std::stoi(Q("SELECT count(*) FROM ledger_entry")), std::stoi(ledger_before) + 2);
  // The reason is shown escaped.
  HttpResponse list = Send(anna, "GET", "/reversals");
  EXPECT_NE(list.body.find("subscriber complaint &lt;b&gt;"), std::string::npos);
  // A donation that is not charged cannot even be requested.
  HttpResponse refused = Send(anna, "POST", "/reversals/request", "csrf=" + Csrf(anna) + "&donation=3&reason=x");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("Donation 3 cannot be reversed"), std::string::npos);
}

TEST_F(ConsoleAppTest, MissingOrWrongCsrfIsRefusedAndAudited) {
  Browser b;
  ASSERT_EQ(Login(b, "anna").status, 303);
  EXPECT_EQ(Send(b, "POST", "/reversals/request", "donation=4&reason=x").status, 403);
  EXPECT_EQ(Send(b, "POST", "/reversals/request", "csrf=" + std::string(64, 'a') + "&donation=4&reason=x").status, 403);
  EXPECT_EQ(Q("SELECT count(*) FROM reversal_request WHERE donation_id = 4"), "0");
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'csrf' AND actor = 'anna' AND outcome = 'refused'"), "2");
  // The login form has its own token.
  Browser c;
  EXPECT_EQ(Send(c, "POST", "/login", "user=anna&password=" + UrlEncode(kPassword)).status, 403);
}

TEST_F(ConsoleAppTest, WrongRoleIsRefused) {
  Browser anna, olga;
  ASSERT_EQ(Login(anna, "anna").status, 303);
  ASSERT_EQ(Login(olga, "olga").status, 303);
  EXPECT_EQ(Send(anna, "POST", "/operations/pause", "csrf=" + Csrf(anna)).status, 403);
  EXPECT_EQ(Send(olga, "POST", "/reversals/request", "csrf=" + Csrf(olga) + "&donation=4&reason=x").status, 403);
  EXPECT_GE(std::stoi(Q("SELECT count(*) FROM console_audit WHERE outcome = 'refused' AND action IN "
                        "('charging_pause', 'reversal_request')")), 2);
}

TEST_F(ConsoleAppTest, BruteForceIsSlowedPerAddressAndName) {
  Browser b;
  b.remote = "198.51.100.7";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Login(b, "olga", "wrong password " + std::to_string(i)).status, 401);
  // Now even the right password waits.
  HttpResponse slowed = Login(b, "olga");
  EXPECT_EQ(slowed.status, 429);
  EXPECT_FALSE(slowed.Header("Retry-After").empty());
  // From another address, the name is still slowed.
  Browser other;
  other.remote = "198.51.100.8";
  EXPECT_EQ(Login(other, "olga").status, 429);
  now_ += std::chrono::seconds(2);
  EXPECT_EQ(Login(b, "olga").status, 303);
  EXPECT_GE(std::stoi(Q("SELECT count(*) FROM console_audit WHERE actor = 'olga' AND action = 'login' AND outcome = 'refused'")), 7);
}

TEST_F(ConsoleAppTest, SessionFixationAndLogout) {
  Browser b;
  const std::string planted(64, 'f');
  b.cookies["dg_session"] = planted;
  EXPECT_EQ(Send(b, "GET", "/").status, 303) << "an unknown token is no session";
  ASSERT_EQ(Login(b, "anna").status, 303);
  EXPECT_NE(b.cookies["dg_session"], planted) << "login issues a new token";
  const std::string token = b.cookies["dg_session"];
  ASSERT_EQ(Send(b, "POST", "/logout", "csrf=" + Csrf(b)).status, 303);
  Browser replay;
  replay.cookies["dg_session"] = token;
  EXPECT_EQ(Send(replay, "GET", "/").status, 303) << "a logged-out token is dead";
  // Disabling a user ends their sessions at once.
  Browser d;
  ASSERT_EQ(Login(d, "olga").status, 303);
  billing::pg::Connection conn;
  ASSERT_TRUE(conn.Ensure(*conninfo_).ok());
  ASSERT_TRUE(AddUser(conn, "temp", kPassword, {"finance"}, "test", "test").ok());
  Browser t;
  ASSERT_EQ(Login(t, "temp").status, 303);
  ASSERT_TRUE(DisableUser(conn, "temp", "test", "test").ok());
  EXPECT_EQ(Send(t, "GET", "/").status, 303);
  EXPECT_EQ(Login(t, "temp").status, 401);
}

TEST_F(ConsoleAppTest, StaticFilesAreAFixedTableNotPaths) {
  Browser b;
  EXPECT_EQ(Send(b, "GET", "/static/../../../../etc/passwd").status, 404);
  EXPECT_EQ(Send(b, "GET", "/static/%2e%2e/%2e%2e/etc/passwd").status, 404);
  EXPECT_EQ(Send(b, "GET", "/static/console.js").status, 200);
  HttpResponse chart = Send(b, "GET", "/static/chart.js");
  EXPECT_EQ(chart.status, 200) << "Debian's libjs-chart.js";
  EXPECT_NE(chart.body.find("Chart.js"), std::string::npos);
  // Export file names come from validated dates only.
  ASSERT_EQ(Login(b, "anna").status, 303);
  EXPECT_EQ(Send(b, "GET", "/exports/donations.csv?from=../../etc&to=x").status, 400);
}

TEST_F(ConsoleAppTest, ExportStreamsCrlfCsvOfTheRange) {
  Browser b;
  ASSERT_EQ(Login(b, "anna").status, 303);
  HttpResponse res = Send(b, "GET", std::string("/exports/donations.csv?from=") + kDay + "&to=" + kDay);
  ASSERT_EQ(res.status, 200);
  ASSERT_TRUE(res.stream);
  EXPECT_NE(res.Header("Content-Disposition").find("donations-2026-11-27-2026-11-27.csv"), std::string::npos);
  std::string csv;
  int chunks = 0;
  res.stream([&](std::string_view chunk) {
    csv.append(chunk);
    ++chunks;
    return true;
  });
  EXPECT_EQ(csv.rfind("donation_id,received_at,", 0), 0u);
  size_t records = 0;
  for (size_t p = csv.find("\r\n"); p != std::string::npos; p = csv.find("\r\n", p + 2)) ++records;
  EXPECT_EQ(records, 5u) << "header + 4 donations, CRLF-terminated";
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'export' AND actor = 'anna'"), "1");
}

TEST_F(ConsoleAppTest, ReconcileUploadPreviewRunSavesTheRunWithExactlyTheInjectedDiscrepancies) {
  Browser b;
  ASSERT_EQ(Login(b, "fina").status, 303);
  const std::string csrf = Csrf(b);
  HttpResponse page = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}, {"mapping", ""}},
                             "opr-2026-11-20.csv", kOprSettlement, /*spool_to_disk=*/true);
  ASSERT_EQ(page.status, 200) << page.body;
  // The preview: detected layout, first rows, a form to fill.
  EXPECT_NE(page.body.find("class=\"encoding\">UTF-8 with BOM<"), std::string::npos);
  EXPECT_NE(page.body.find("class=\"delimiter\">semicolon (;)<"), std::string::npos);
  EXPECT_NE(page.body.find("<th>ref</th><th>phone</th><th>amount</th><th>at</th><th>result</th>"), std::string::npos);
  EXPECT_NE(page.body.find("<td>don-999</td>"), std::string::npos);
  EXPECT_NE(page.body.find(Sha256Hex(kOprSettlement)), std::string::npos);
  auto form = MappingForm(page.body);
  EXPECT_EQ(form["reference_column"], "ref") << "guessed from the header";
  EXPECT_EQ(form["amount_column"], "amount");
  EXPECT_EQ(form["delimiter"], ";");
  form["charged_values"] = "OK";
  form["time_format"] = "iso8601";
  form["time_zone"] = "UTC";
  form["thousands_separator"] = ".";
  form["save_as"] = "operator r";
  form["csrf"] = csrf;

  HttpResponse run = Send(b, "POST", "/reconcile/run", FormBody(form));
  ASSERT_EQ(run.status, 303) << run.body;
  const std::string location = run.Header("Location");
  ASSERT_EQ(location.rfind("/reconcile/runs/", 0), 0u);
  const std::string id = location.substr(16);
  HttpResponse shown = Send(b, "GET", location);
  ASSERT_EQ(shown.status, 200);
  for (const char* kind : {"missing_at_operator", "missing_in_ledger", "amount_mismatch", "status_mismatch",
                           "duplicate_at_operator"})
    EXPECT_NE(shown.body.find(std::string("data-kind=\"") + kind + "\">1<"), std::string::npos) << kind;
  // Both sides' totals: ours 4 charges 220.000 đ; theirs bills 4 rows (the duplicate included) 105.000 đ.
  auto side = [&](const std::string& cls) {
    std::smatch m;
    std::regex re("<tr class=\"" + cls + "\"><td>[^<]*</td><td class=\"n count\">([^<]*)</td><td class=\"n vnd\">([^<]*)</td>");
    return std::regex_search(shown.body, m, re) ? m[1].str() + " / " + m[2].str() : "";
  };
  EXPECT_EQ(side("ours"), "4 / 220.000 \xC4\x91") << shown.body;
  EXPECT_EQ(side("theirs"), "4 / 105.000 \xC4\x91");
  EXPECT_EQ(side("theirs-duplicates"), "1 / 20.000 \xC4\x91");
  EXPECT_EQ(side("matched"), "1 / 20.000 \xC4\x91");
  EXPECT_NE(shown.body.find("<td>don-102</td><td>84912***102</td>"), std::string::npos) << "masked for finance";
  EXPECT_EQ(shown.body.find("84912000102"), std::string::npos);

  // The saved run: its inputs' hashes, mapping, results; the download is the stored CSV.
  EXPECT_EQ(Q("SELECT settlement_sha256 FROM reconcile_run WHERE id = " + id), Sha256Hex(kOprSettlement));
  EXPECT_EQ(Q("SELECT settlement_encoding || ' ' || settlement_rows || ' ' || mapping_name || ' ' || run_by "
              "FROM reconcile_run WHERE id = " + id), "UTF-8 with BOM 6 operator r fina");
  EXPECT_EQ(Q("SELECT mapping_sha256 = encode(sha256(convert_to(mapping_toml, 'UTF8')), 'hex') FROM reconcile_run WHERE id = " + id), "t");
  EXPECT_EQ(Q("SELECT totals->>'matched' FROM reconcile_run WHERE id = " + id), "1");
  HttpResponse csv = Send(b, "GET", location + "/discrepancies.csv");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.Header("Content-Disposition"), "attachment; filename=\"discrepancies-run-" + id + ".csv\"");
  EXPECT_EQ(Sha256Hex(csv.body), Q("SELECT discrepancies_sha256 FROM reconcile_run WHERE id = " + id));
  EXPECT_EQ(csv.body.rfind("kind,reference,msisdn,our_amount_vnd,their_amount_vnd,our_status,their_status,"
                           "settlement_line,detail\r\n", 0), 0u);
  EXPECT_NE(csv.body.find("\r\namount_mismatch,don-102,84912000102,40000,45000,charged,OK,3,\r\n"), std::string::npos) << csv.body;
  EXPECT_NE(csv.body.find("\r\nduplicate_at_operator,don-101,84912000101,20000,20000,charged,OK,6,"), std::string::npos);
  EXPECT_NE(csv.body.find("\r\nmissing_at_operator,don-104,"), std::string::npos);
  // The same file donagatectl reconcile writes: the shared library's run over the same rows.
  finance::SettlementMapping m;
  std::string error;
  ASSERT_TRUE(finance::ParseSettlementMapping(Q("SELECT mapping_toml FROM reconcile_run WHERE id = " + id), "run", &m, &error)) << error;
  std::istringstream in(kOprSettlement);
  std::vector<finance::SettlementRow> rows;
  finance::SettlementError serr;
  ASSERT_TRUE(finance::ReadSettlement(in, m, &rows, &serr)) << serr.message;
  billing::pg::Connection conn;
  ASSERT_TRUE(conn.Ensure(*conninfo_).ok());
  finance::ReconcileReport report;
  ASSERT_TRUE(finance::ReconcileWithLedger(conn, "opr", finance::LocalDayRange(*finance::ParseDate(kReconcileDay), kIct),
                                           rows, kIct, &report).ok());
  std::ostringstream expected;
  finance::WriteDiscrepancyCsv(expected, report);
  EXPECT_EQ(csv.body, expected.str());

  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(spool_), {}), 0) << "the run removes the uploaded file";
  form["csrf"] = csrf;
  EXPECT_EQ(Send(b, "POST", "/reconcile/run", FormBody(form)).status, 410) << "a run needs the file again";
  // Listed for reopening; audited; the mapping saved under its name and offered next time.
  EXPECT_NE(Send(b, "GET", "/reconcile").body.find("href=\"/reconcile/runs/" + id + "\""), std::string::npos);
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'reconcile_run' AND actor = 'fina' AND outcome = 'ok' "
              "AND detail LIKE 'run " + id + " opr 2026-11-20 file opr-2026-11-20.csv sha256 %'"), "1");
  EXPECT_NE(Send(b, "GET", "/reconcile").body.find("<option value=\"operator r\">"), std::string::npos);
  HttpResponse again = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}, {"mapping", "operator r"}},
                              "same.csv", kOprSettlement);
  ASSERT_EQ(again.status, 200) << again.body;
  auto saved = MappingForm(again.body);
  EXPECT_EQ(saved["charged_values"], "OK");
  EXPECT_EQ(saved["thousands_separator"], ".");
  EXPECT_EQ(saved["time_zone"], "UTC");
}

TEST_F(ConsoleAppTest, ReconcileRefusesWrongRoleMissingCsrfBadLinesAndOversizedFiles) {
  Browser approver;
  ASSERT_EQ(Login(approver, "binh").status, 303);
  EXPECT_EQ(Upload(approver, {{"csrf", Csrf(approver)}, {"operator", "opr"}, {"day", kReconcileDay}}, "a.csv",
                   kOprSettlement).status, 403);
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'reconcile_upload' AND actor = 'binh' AND outcome = 'refused'"), "1");

  Browser b;
  ASSERT_EQ(Login(b, "fina").status, 303);
  const auto spooled_before = std::distance(std::filesystem::directory_iterator(spool_), {});
  EXPECT_EQ(Upload(b, {{"operator", "opr"}, {"day", kReconcileDay}}, "a.csv", kOprSettlement).status, 403) << "no CSRF token";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(spool_), {}), spooled_before) << "the refused upload is not kept";

  // A line the mapping cannot read: the preview again, naming the line; nothing saved.
  const std::string runs = Q("SELECT count(*) FROM reconcile_run");
  const std::string csrf = Csrf(b);
  HttpResponse page = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}}, "bad.csv",
                             "ref,amount\ndon-101,20000\ndon-102,12,5\n");
  ASSERT_EQ(page.status, 200);
  auto form = MappingForm(page.body);
  form["csrf"] = csrf;
  HttpResponse run = Send(b, "POST", "/reconcile/run", FormBody(form));
  EXPECT_EQ(run.status, 400);
  EXPECT_NE(run.body.find("Line 3: expected 2 fields, found 3"), std::string::npos) << run.body;
  EXPECT_EQ(Q("SELECT count(*) FROM reconcile_run"), runs);
  // A file that is not UTF-8 (Latin-1 "tên") is previewed with the warning and not run.
  HttpResponse latin1 = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}}, "latin1.csv",
                               "ref,amount,t\xEAn\ndon-101,20000,x\n");
  ASSERT_EQ(latin1.status, 200);
  EXPECT_NE(latin1.body.find("class=\"encoding\">not UTF-8"), std::string::npos);
  auto latin1_form = MappingForm(latin1.body);
  latin1_form["csrf"] = csrf;
  HttpResponse latin1_run = Send(b, "POST", "/reconcile/run", FormBody(latin1_form));
  EXPECT_EQ(latin1_run.status, 400);
  EXPECT_NE(latin1_run.body.find("id=\"run-error\">The file is not UTF-8"), std::string::npos);
  EXPECT_EQ(Q("SELECT count(*) FROM reconcile_run"), runs);
  // Another user cannot run someone else's upload.
  Browser other;
  ASSERT_EQ(Login(other, "both").status, 303);
  form["csrf"] = Csrf(other);
  EXPECT_EQ(Send(other, "POST", "/reconcile/run", FormBody(form)).status, 410);

  // Over the limit: 413 with a page that says the limit.
  ConsoleOptions o;
  o.conninfo = *conninfo_;
  o.max_upload_bytes = 1024;
  o.spool_dir = spool_;
  app_ = std::make_unique<ConsoleApp>(o);
  HttpResponse big = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}}, "big.csv",
                            "ref,amount\n" + std::string(2000, '1') + "\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("at most 1.024 bytes"), std::string::npos) << big.body;
}

TEST_F(ConsoleAppTest, ReconcileRendersHostileFileTextsInertAndDownloadsOnlyRunsByNumber) {
  Browser b;
  ASSERT_EQ(Login(b, "fina").status, 303);
  const std::string csrf = Csrf(b);
  HttpResponse page = Upload(b, {{"csrf", csrf}, {"operator", "opr"}, {"day", kReconcileDay}},
                             "<img src=x onerror=alert(1)>.csv",
                             "ref,amount,<script>alert(2)</script>\ndon-101,20000,\"<b onmouseover=alert(3)>\"\n");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.body.find("<img src=x"), std::string::npos);
  EXPECT_EQ(page.body.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.body.find("<b onmouseover"), std::string::npos);
  EXPECT_NE(page.body.find("&lt;script&gt;alert(2)&lt;/script&gt;"), std::string::npos);
  // SQL in the operator's name is refused by its shape before any query.
  auto form = MappingForm(page.body);
  form["csrf"] = csrf;
  form["operator"] = "opr'; DELETE FROM reconcile_run; --";
  EXPECT_EQ(Send(b, "POST", "/reconcile/run", FormBody(form)).status, 400);
  // Downloads are chosen by a run's number, never a path.
  for (const char* target : {"/reconcile/runs/../../etc/passwd/discrepancies.csv", "/reconcile/runs/1%2F..%2F2",
                             "/reconcile/runs/999999/discrepancies.csv", "/reconcile/runs/-1"})
    EXPECT_EQ(Send(b, "GET", target).status, 404) << target;
}

TEST_F(ConsoleAppTest, ExportProgressCountsTheRowsWritten) {
  Browser b;
  ASSERT_EQ(Login(b, "both").status, 303);
  const std::string id = RandomHex(16);
  EXPECT_EQ(Send(b, "GET", "/exports/progress?id=" + id).body, "{\"done\":false,\"known\":false,\"rows\":0}");
  HttpResponse res = Send(b, "GET", std::string("/exports/ledger.csv?from=") + kDay + "&to=" + kDay + "&progress=" + id);
  ASSERT_TRUE(res.stream);
  EXPECT_EQ(Send(b, "GET", "/exports/progress?id=" + id).body, "{\"done\":false,\"known\":true,\"rows\":0}");
  std::string csv;
  res.stream([&](std::string_view chunk) {
    csv.append(chunk);
    return true;
  });
  size_t records = 0;
  for (size_t p = csv.find("\r\n"); p != std::string::npos; p = csv.find("\r\n", p + 2)) ++records;
  ASSERT_GT(records, 1u);
  EXPECT_EQ(Send(b, "GET", "/exports/progress?id=" + id).body,
            "{\"done\":true,\"known\":true,\"rows\":" + std::to_string(records - 1) + "}");
  EXPECT_NE(Send(b, "GET", "/exports").body.find("id=\"export-progress\""), std::string::npos);
}

TEST_F(ConsoleAppTest, ApprovalRefundsAtTheOperatorFirstWhenGivenTheChargingConfig) {
  Browser anna, binh;
  ASSERT_EQ(Login(anna, "anna").status, 303);
  ASSERT_EQ(Login(binh, "binh").status, 303);
  ASSERT_EQ(Send(anna, "POST", "/reversals/request", "csrf=" + Csrf(anna) + "&donation=1&reason=complaint").status, 303);
  const std::string id = Q("SELECT id FROM reversal_request WHERE donation_id = 1");
  auto console_with = [&](config::ChargingBackendKind kind) {
    auto cfg = std::make_shared<config::Config>();
    config::ChargingBackendConfig opa;
    opa.operator_name = "opa";
    opa.backend = kind;
    cfg->charging.push_back(opa);
    ConsoleOptions o;
    o.conninfo = *conninfo_;
    o.spool_dir = spool_;
    o.charging_config = cfg;
    app_ = std::make_unique<ConsoleApp>(o);
  };
  // A backend with refunds that does not know the key (a fresh in-process backend): not refunded,
  // so the ledger is unchanged and the request stays open for a retry.
  console_with(config::ChargingBackendKind::kInProcess);
  const std::string ledger_before = Q("SELECT count(*) FROM ledger_entry");
  HttpResponse refused = Send(binh, "POST", "/reversals/decide", "csrf=" + Csrf(binh) + "&id=" + id + "&decision=approve");
  EXPECT_EQ(refused.status, 502);
  EXPECT_NE(refused.body.find("Not every charge was refunded at the operator (don-1 20000 VND not_found"), std::string::npos)
      << refused.body;
  EXPECT_EQ(Q("SELECT state FROM reversal_request WHERE id = " + id), "requested");
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 1"), "charged");
  EXPECT_EQ(Q("SELECT count(*) FROM ledger_entry"), ledger_before);
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'reversal_refund' AND actor = 'binh' AND outcome = 'failed'"), "1");
  // A backend without refunds (operator-billed): the ledger only, as donagatectl reverse --refund does.
  console_with(config::ChargingBackendKind::kOperatorBilled);
  HttpResponse done = Send(binh, "POST", "/reversals/decide", "csrf=" + Csrf(binh) + "&id=" + id + "&decision=approve");
  ASSERT_EQ(done.status, 303) << done.body;
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 1"), "reversed");
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'reversal_approve' AND outcome = 'ok' "
              "AND detail LIKE '%no refunds: ledger only%'"), "1");
}

// tools/charging_sim: the HTTP charging backend's reference server, as a real operator stand-in.
struct ChargingSim {
  pid_t pid = -1;
  int port = ::donagate::testing::FreeTcpPort();
  ChargingSim() {
    const std::string bin = ::donagate::testing::BinaryPath("tools/charging_sim/charging_sim");
    const std::string listen = "127.0.0.1:" + std::to_string(port);
    pid = fork();
    if (pid == 0) {
      execl(bin.c_str(), bin.c_str(), "--listen", listen.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100 && Curl("GET", "/v1/debits", "").rfind("200", 0) != 0; ++i) usleep(50000);
  }
  ~ChargingSim() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  // "<status> <body>"
  std::string Curl(const std::string& method, const std::string& path, const std::string& body) const {
    const std::string cmd = "curl -s --noproxy '*' -o /dev/stdout -w ' %{http_code}' -X " + method +
                            " -H 'Content-Type: application/json' " + (body.empty() ? "" : "-d '" + body + "' ") +
                            "http://127.0.0.1:" + std::to_string(port) + path + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    auto sp = out.rfind(' ');
    return sp == std::string::npos ? out : out.substr(sp + 1) + " " + out.substr(0, sp);
  }
};

TEST_F(ConsoleAppTest, ApprovalRefundsAtAnHttpBackendThenReversesTheLedger) {
  ChargingSim sim;
  ASSERT_EQ(sim.Curl("POST", "/v1/charges", "{\"key\":\"don-2\",\"msisdn\":\"84912000002\",\"amount_vnd\":40000,"
                                            "\"units\":1,\"campaign\":\"covid\",\"operator\":\"opa\"}").rfind("200", 0), 0u);
  auto cfg = std::make_shared<config::Config>();
  config::ChargingBackendConfig opa;
  opa.operator_name = "opa";
  opa.backend = config::ChargingBackendKind::kHttp;
  opa.url = "http://127.0.0.1:" + std::to_string(sim.port);
  opa.timeout_ms = 2000;
  cfg->charging.push_back(opa);
  ConsoleOptions o;
  o.conninfo = *conninfo_;
  o.spool_dir = spool_;
  o.charging_config = cfg;
  app_ = std::make_unique<ConsoleApp>(o);
  Browser anna, binh;
  ASSERT_EQ(Login(anna, "anna").status, 303);
  ASSERT_EQ(Login(binh, "binh").status, 303);
  ASSERT_EQ(Send(anna, "POST", "/reversals/request", "csrf=" + Csrf(anna) + "&donation=2&reason=complaint").status, 303);
  const std::string id = Q("SELECT id FROM reversal_request WHERE donation_id = 2");
  HttpResponse done = Send(binh, "POST", "/reversals/decide", "csrf=" + Csrf(binh) + "&id=" + id + "&decision=approve");
  ASSERT_EQ(done.status, 303) << done.body;
  EXPECT_EQ(Q("SELECT state FROM donation WHERE id = 2"), "reversed");
  EXPECT_EQ(Q("SELECT count(*) FROM console_audit WHERE action = 'reversal_approve' AND outcome = 'ok' "
              "AND detail LIKE '%refunds: don-2 40000 VND refunded%'"), "1");
  EXPECT_NE(sim.Curl("GET", "/v1/debits", "").find("refund"), std::string::npos) << "the money went back at the operator";
}

TEST_F(ConsoleAppTest, AuditLogIsAppendOnly) {
  EXPECT_THROW(ExecSql(*conninfo_, "UPDATE console_audit SET actor = 'nobody'"), std::runtime_error);
  EXPECT_THROW(ExecSql(*conninfo_, "DELETE FROM console_audit"), std::runtime_error);
  EXPECT_THROW(ExecSql(*conninfo_, "TRUNCATE console_audit"), std::runtime_error);
}

TEST(ConsoleHtml, EscapesFormatsAndMasks) {
  EXPECT_EQ(Esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(FormatVnd(1234567), "1.234.567 \xC4\x91");
  EXPECT_EQ(FormatVnd(0), "0 \xC4\x91");
  EXPECT_EQ(FormatVnd(-20000), "-20.000 \xC4\x91");
  EXPECT_EQ(MaskMsisdn("84912345678"), "84912***678");
  EXPECT_EQ(JsonForScript("{\"a\":\"</script>\"}"), "{\"a\":\"\\u003c/script\\u003e\"}");
  auto f = ParseForm("a=1+2&b=%3Cx%3E&c");
  EXPECT_EQ(f["a"], "1 2");
  EXPECT_EQ(f["b"], "<x>");
  EXPECT_EQ(T(Lang::kEn, "Overview"), "Overview");
  EXPECT_NE(T(Lang::kVi, "Overview"), "Overview");
}

TEST(ConsoleThrottle, DelaysDoubleAfterTheFreeFailures) {
  LoginThrottle t(5, std::chrono::seconds(900));
  auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(t.WaitSeconds("k", now), 0);
    t.Failed("k", now);
  }
  EXPECT_GT(t.WaitSeconds("k", now), 0);
  EXPECT_EQ(t.WaitSeconds("k", now + std::chrono::seconds(2)), 0);
  for (int i = 0; i < 10; ++i) t.Failed("k", now);
  EXPECT_GE(t.WaitSeconds("k", now), 900) << "capped at the maximum, never forever";
  EXPECT_LE(t.WaitSeconds("k", now), 901);
  t.Succeeded("k");
  EXPECT_EQ(t.WaitSeconds("k", now), 0);
}

}  // namespace
}  // namespace donagate::console

namespace donagate::console {
namespace {

TEST(Multipart, FieldsAndAFileLargerThanTheReadWindowSpooledAndHashed) {
  std::string file;
  for (int i = 0; i < 20000; ++i) file += "don-" + std::to_string(i) + ";20.000;OK\r\n";  // ~360 KB
  // A delimiter-like line inside the file that is not the boundary must stay content.
  file += "\r\n--notTheBoundary\r\n";
  const std::string boundary = "XyZ";
  const std::string body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n"
                           "--XyZ\r\nContent-Disposition: form-data; filename=\"C:\\Users\\x\\op a.csv\"; name=\"f\"\r\n"
                           "Content-Type: text/csv\r\n\r\n" + file + "\r\n--XyZ--\r\n";
  std::istringstream in(body);
  const std::string spool = ::testing::TempDir() + "/multipart-test.csv";
  MultipartUpload up;
  std::string error;
  ASSERT_EQ(ReadMultipart(in, boundary, spool, {}, &up, &error), MultipartStatus::kOk) << error;
  EXPECT_EQ(up.fields["csrf"], "abc");
  EXPECT_EQ(up.file_field, "f");
  EXPECT_EQ(up.file_name, "op a.csv") << "only the last segment of a path the browser sent";
  EXPECT_EQ(up.file_bytes, file.size());
  EXPECT_EQ(up.file_sha256_hex, Sha256Hex(file));
  std::ifstream spooled(spool, std::ios::binary);
  std::stringstream back;
  back << spooled.rdbuf();
  EXPECT_EQ(back.str(), file);
  std::remove(spool.c_str());
}

TEST(Multipart, TooLargeAndMalformedAreTold) {
  const std::string spool = ::testing::TempDir() + "/multipart-test-2.csv";
  MultipartLimits limits;
  limits.max_file_bytes = 100;
  MultipartUpload up;
  std::string error;
  std::istringstream big("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n" +
                         std::string(101, 'x') + "\r\n--b--\r\n");
  EXPECT_EQ(ReadMultipart(big, "b", spool, limits, &up, &error), MultipartStatus::kTooLarge);
  MultipartUpload up2;
  std::istringstream cut("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nabc");
  EXPECT_EQ(ReadMultipart(cut, "b", spool, limits, &up2, &error), MultipartStatus::kMalformed);
  MultipartUpload up3;
  std::istringstream two("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\na\r\n"
                         "--b\r\nContent-Disposition: form-data; name=\"g\"; filename=\"b\"\r\n\r\nb\r\n--b--\r\n");
  EXPECT_EQ(ReadMultipart(two, "b", spool, limits, &up3, &error), MultipartStatus::kMalformed);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"q r\""), "q r");
  EXPECT_EQ(MultipartBoundary("application/x-www-form-urlencoded"), "");
  std::remove(spool.c_str());
}

}  // namespace
}  // namespace donagate::console
