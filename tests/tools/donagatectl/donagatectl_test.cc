// donagatectl against real PostgreSQL with generated data: 100,000+ donations over several
// finance days, three operators and two campaigns. Every expectation is computed in C++ from
// the generator, independently of the SQL the tool runs.
#include <libpq-fe.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "billing/store/migrate.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pg.h"
#include "billing/finance/csv.h"
#include "billing/finance/time_util.h"

namespace donagate::ctl {
using namespace donagate::finance;
namespace {

using testing::BinaryPath;
using testing::MakeTempDir;
using testing::SourcePath;

constexpr int kIct = 7 * 3600;
constexpr int kDonations = 100000;
// Peak RSS bound of a streamed export. AddressSanitizer's shadow memory and allocation
// quarantine add a few hundred MiB whatever the program does, so that build gets its own bound.
#if defined(__SANITIZE_ADDRESS__)
constexpr long kRssBoundKib = 768 * 1024;
#else
constexpr long kRssBoundKib = 64 * 1024;
#endif
const char* kOperators[] = {"opa", "opb", "opc"};
const char* kCampaigns[] = {"covid", "flood"};
const char* kFirstDay = "2026-11-24";
constexpr int kDays = 4;

struct Gen {
  int64_t id;
  std::string op, campaign, msisdn, state, failure;
  int64_t received_at;  // epoch seconds
  int units, charged_units;
  int64_t price = 20000;
  bool per_unit;
};

struct Totals {
  int64_t messages = 0, invalid = 0, donations = 0, units = 0, units_charged = 0, vnd = 0, charged = 0,
          partial = 0, failed = 0, unknown = 0, pending = 0;
};

struct Result {
  int exit_code = -1;
  std::string out, err;
  long max_rss_kib = 0;
};

// Runs a program with arguments; captures stdout/stderr into files; reports its peak RSS.
Result RunProgram(const std::vector<std::string>& args) {
  std::string dir = MakeTempDir("ctl");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    freopen(out_path.c_str(), "w", stdout);
    freopen(err_path.c_str(), "w", stderr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.max_rss_kib = ru.ru_maxrss;
  std::ifstream o(out_path), e(err_path);
  std::stringstream so, se;
  so << o.rdbuf();
  se << e.rdbuf();
  r.out = so.str();
  r.err = se.str();
  return r;
}

// RFC 4180: every record ends with CRLF, and no line ends with a bare LF (a spreadsheet import
// would otherwise see a stray CR or merge lines).
void ExpectCrlfRecords(const std::string& csv, const std::string& what) {
  ASSERT_GE(csv.size(), 2u) << what;
  EXPECT_EQ(csv.substr(csv.size() - 2), "\r\n") << what;
  size_t records = 0;
  for (size_t i = csv.find('\n'); i != std::string::npos; i = csv.find('\n', i + 1), ++records)
    ASSERT_TRUE(i > 0 && csv[i - 1] == '\r') << what << ": bare LF ending record " << records + 1;
  EXPECT_GT(records, 1u) << what;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class Copier {
 public:
  explicit Copier(PGconn* c) : c_(c) {}
  void Begin(const std::string& copy_sql) {
    PGresult* r = PQexec(c_, copy_sql.c_str());
    ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN) << PQerrorMessage(c_);
    PQclear(r);
  }
  void Line(const std::string& line) { buf_ += line + "\n"; if (buf_.size() > (1 << 20)) Flush(); }
  void End() {
    Flush();
    ASSERT_EQ(PQputCopyEnd(c_, nullptr), 1);
    PGresult* r = PQgetResult(c_);
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c_);
    PQclear(r);
    while ((r = PQgetResult(c_)) != nullptr) PQclear(r);
  }

 private:
  void Flush() {
    if (!buf_.empty()) PQputCopyData(c_, buf_.data(), static_cast<int>(buf_.size()));
    buf_.clear();
  }
  PGconn* c_;
  std::string buf_;
};

std::string Ts(int64_t epoch) { return FormatTimestamp(epoch, 0); }

class DonagatectlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::donagate::testing::PostgresServerConninfo().empty()) return;
    conninfo_ = new std::string(::donagate::testing::CreateFreshDatabase("ctl"));
    ASSERT_TRUE(billing::Migrate(*conninfo_).ok());
    Generate();
    AddScenarios();
  }
  static void TearDownTestSuite() {
    delete conninfo_;
    conninfo_ = nullptr;
    delete gen_;
    gen_ = nullptr;
  }
  void SetUp() override {
    DONAGATE_REQUIRE_POSTGRES();
    ASSERT_NE(conninfo_, nullptr);
  }

  static void Generate() {
    gen_ = new std::vector<Gen>();
    std::mt19937_64 rng(20261128);
    const int64_t first = LocalDayRange(*ParseDate(kFirstDay), kIct).start;
    const int64_t span = int64_t{kDays} * 86400;
    for (int i = 0; i < kDonations; ++i) {
      Gen g;
      g.id = i + 1;
      g.op = kOperators[rng() % 3];
      g.campaign = kCampaigns[rng() % 2];
      g.msisdn = "849" + std::to_string(10000000 + rng() % 89999999);
      g.received_at = first + static_cast<int64_t>(rng() % span);
      g.units = 1 + static_cast<int>(rng() % 10);
      g.per_unit = false;
      g.charged_units = 0;
      int roll = static_cast<int>(rng() % 100);
      if (roll < 80) {
        g.state = "charged";
        g.charged_units = g.units;
      } else if (roll < 85 && g.units > 1) {
        g.state = "partially_charged";
        g.per_unit = true;
        g.charged_units = 1 + static_cast<int>(rng() % (g.units - 1));
      } else if (roll < 93) {
        g.state = "failed";
        g.failure = roll % 2 ? "insufficient_funds" : "subscriber_barred";
      } else if (roll < 96) {
        g.state = "unknown";
      } else {
        g.state = "received";
      }
      gen_->push_back(g);
    }
    // The day edges, exactly: 23:59:59 and 00:00:00 local.
    const int64_t edge = LocalDayRange(*ParseDate("2026-11-25"), kIct).end;  // 2026-11-26 00:00:00+07
    (*gen_)[0].received_at = edge - 1;
    (*gen_)[0].state = "charged";
    (*gen_)[0].charged_units = (*gen_)[0].units;
    (*gen_)[0].per_unit = false;
    (*gen_)[1].received_at = edge;
    (*gen_)[1].state = "charged";
    (*gen_)[1].charged_units = (*gen_)[1].units;
    (*gen_)[1].per_unit = false;

    PGconn* c = PQconnectdb(conninfo_->c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    Copier cp(c);
    cp.Begin("COPY inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr, data_coding, "
             "esm_class, raw_payload, text, received_at, outcome) FROM STDIN");
    for (auto& g : *gen_)
      cp.Line(std::to_string(g.id) + "\tgen\t" + g.op + "-1\t" + g.op + "\t" + g.msisdn + "\t" + g.msisdn +
              "\t1407\t0\t0\t\\\\x4356\tCV " + std::to_string(g.units) + "\t" + Ts(g.received_at) + "\tdonation");
    // Invalid messages: recorded, no donation (campaign "-" in the report).
    for (int i = 0; i < 5000; ++i) {
      int64_t id = kDonations + 1 + i;
      const Gen& g = (*gen_)[i * 7 % kDonations];
      cp.Line(std::to_string(id) + "\tgen\t" + g.op + "-1\t" + g.op + "\t" + g.msisdn + "\t" + g.msisdn +
              "\t1407\t0\t0\t\\\\x4356\tCVV\t" + Ts(g.received_at) + "\tsyntax_error");
    }
    cp.End();
    cp.Begin("COPY donation (id, inbound_message_id, campaign, operator, msisdn, shortcode, units, unit_price_vnd, "
             "amount_vnd, charging_mode, state, failure_reason, charged_units, charged_amount_vnd, received_at) "
             "FROM STDIN");
    for (auto& g : *gen_)
      cp.Line(std::to_string(g.id) + "\t" + std::to_string(g.id) + "\t" + g.campaign + "\t" + g.op + "\t" + g.msisdn +
              "\t1407\t" + std::to_string(g.units) + "\t20000\t" + std::to_string(g.units * g.price) + "\t" +
              (g.per_unit ? "per_unit" : "whole") + "\t" + g.state + "\t" + (g.failure.empty() ? "\\N" : g.failure) +
              "\t" + std::to_string(g.charged_units) + "\t" + std::to_string(g.charged_units * g.price) + "\t" +
              Ts(g.received_at));
    cp.End();
    cp.Begin("COPY charge (key, donation_id, unit_index, units, amount_vnd, outcome) FROM STDIN");
    for (auto& g : *gen_) {
      std::string id = std::to_string(g.id);
      if (g.per_unit) {
        for (int u = 1; u <= g.charged_units + 1 && u <= g.units; ++u)
          cp.Line("don-" + id + "-" + std::to_string(u) + "\t" + id + "\t" + std::to_string(u) + "\t1\t20000\t" +
                  (u <= g.charged_units ? "charged" : "insufficient_funds"));
      } else if (g.state != "received") {
        std::string outcome = g.state == "charged" ? "charged" : g.state == "unknown" ? "unknown" : g.failure;
        cp.Line("don-" + id + "\t" + id + "\t0\t" + std::to_string(g.units) + "\t" +
                std::to_string(g.units * g.price) + "\t" + outcome);
      }
    }
    cp.End();
    cp.Begin("COPY ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key, created_at, "
             "created_by) FROM STDIN");
    int64_t journal = 0;
    for (auto& g : *gen_) {
      std::string id = std::to_string(g.id);
      auto book = [&](const std::string& key, int64_t amount) {
        ++journal;
        std::string common = std::to_string(amount) + "\t" + id + "\t" + key + "\t" + Ts(g.received_at + 1) + "\tgen";
        cp.Line(std::to_string(journal) + "\treceivable:" + g.op + "\tdebit\t" + common);
        cp.Line(std::to_string(journal) + "\tfund:" + g.campaign + "\tcredit\t" + common);
      };
      if (g.per_unit)
        for (int u = 1; u <= g.charged_units; ++u) book("don-" + id + "-" + std::to_string(u), g.price);
      else if (g.state == "charged")
        book("don-" + id, g.units * g.price);
    }
    cp.End();
    PQclear(PQexec(c, ("SELECT setval('ledger_journal_id_seq', " + std::to_string(journal) + ")").c_str()));
    PQclear(PQexec(c, "SELECT setval('inbound_message_id_seq', 200000), setval('donation_id_seq', 200000)"));
    PGresult* r = PQexec(c, "COMMIT");
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
  }

  // One donation of one unit priced `amount_vnd` as the daemon leaves it: its message, its
  // charge and, when charged, its ledger journal booked a second after it was received. For
  // scenarios on days after the generated ones (ids above the generator's), so they never
  // change what the generated tests expect.
  static void AddDonation(int64_t id, const std::string& op, int64_t amount_vnd, const std::string& state,
                          const std::string& failure_reason, int64_t received_at) {
    const std::string i = std::to_string(id), amount = std::to_string(amount_vnd);
    const std::string msisdn = "8497" + std::to_string(1000000 + id % 1000000);
    const std::string at = "'" + Ts(received_at) + "'";
    const std::string code = failure_reason.substr(0, failure_reason.find(':'));
    const std::string outcome = state == "charged" ? "charged" : code;
    std::string sql =
        "INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr, data_coding, "
        "esm_class, raw_payload, text, received_at, outcome) VALUES (" + i + ", 'test', '" + op + "-1', '" + op +
        "', '" + msisdn + "', '" + msisdn + "', '1407', 0, 0, '\\x4356', 'CV 1', " + at + ", 'donation');"
        "INSERT INTO donation (id, inbound_message_id, campaign, operator, msisdn, shortcode, units, unit_price_vnd, "
        "amount_vnd, charging_mode, state, failure_reason, charged_units, charged_amount_vnd, received_at) VALUES (" +
        i + ", " + i + ", 'covid', '" + op + "', '" + msisdn + "', '1407', 1, " + amount + ", " + amount +
        ", 'whole', '" + state + "', " + (failure_reason.empty() ? "NULL" : "'" + failure_reason + "'") + ", " +
        (state == "charged" ? "1, " + amount : "0, 0") + ", " + at + ");";
    if (outcome == "charged" || outcome == "insufficient_funds" || outcome == "subscriber_barred")
      sql += "INSERT INTO charge (key, donation_id, unit_index, units, amount_vnd, outcome) VALUES ('don-" + i +
             "', " + i + ", 0, 1, " + amount + ", '" + outcome + "');";
    if (state == "charged")
      sql += "INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key, "
             "created_at, created_by) SELECT j, v.account, v.direction, " + amount + ", " + i + ", 'don-" + i +
             "', '" + Ts(received_at + 1) + "', 'test' FROM (SELECT nextval('ledger_journal_id_seq') AS j) s, "
             "(VALUES ('receivable:" + op + "', 'debit'), ('fund:covid', 'credit')) AS v(account, direction);";
    ::donagate::testing::ExecSql(*conninfo_, sql);
  }

  // Small hand-made days after the generated ones, one operator each, for the finance findings.
  static constexpr const char* kDuplicateDay = "2026-12-01";  // opd: three charges, booked
  static constexpr const char* kFailuresDay = "2026-12-02";   // ope: failures in several wordings
  static constexpr const char* kUtcDay = "2026-12-03";        // opf: one donation at 20:00 UTC
  static constexpr const char* kRefundDay = "2026-12-04";     // opg: two charges, one reversed
  static void AddScenarios() {
    const int64_t dup = LocalDayRange(*ParseDate(kDuplicateDay), kIct).start;
    AddDonation(300001, "opd", 20000, "charged", "", dup + 3600);
    AddDonation(300002, "opd", 40000, "charged", "", dup + 7200);
    AddDonation(300003, "opd", 100000, "charged", "", dup + 10800);
    // The SMSC's redelivery of 300001, recognised by the daemon (no MO-id TLV): the same text
    // received again, never a message or an invalid one of its own in the report.
    ::donagate::testing::ExecSql(*conninfo_,
        "INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr, "
        "data_coding, esm_class, raw_payload, text, received_at, outcome, redelivery_of) "
        "SELECT 300004, instance_id, link, operator, source_addr, msisdn, dest_addr, data_coding, esm_class, "
        "raw_payload, text, received_at + interval '20 seconds', 'redelivery', 300001 "
        "FROM inbound_message WHERE id = 300001");
    const int64_t fail = LocalDayRange(*ParseDate(kFailuresDay), kIct).start + 3600;
    AddDonation(300101, "ope", 20000, "charged", "", fail);
    AddDonation(300102, "ope", 20000, "failed", "insufficient_funds: HTTP 402: balance too low", fail + 1);
    AddDonation(300103, "ope", 20000, "failed", "insufficient_funds: HTTP 402: balance too low", fail + 2);
    AddDonation(300104, "ope", 20000, "failed", "insufficient_funds: not enough credit", fail + 3);
    AddDonation(300105, "ope", 20000, "failed", "insufficient_funds", fail + 4);
    AddDonation(300106, "ope", 20000, "failed", "subscriber_barred: HTTP 403: barred", fail + 5);
    AddDonation(300107, "ope", 20000, "failed", "daily_cap", fail + 6);
    // 2026-12-03 20:00:00 UTC is 2026-12-04 03:00 in Asia/Ho_Chi_Minh.
    AddDonation(300201, "opf", 20000, "charged", "", LocalDayRange(*ParseDate(kUtcDay), 0).start + 20 * 3600);
    const int64_t refund = LocalDayRange(*ParseDate(kRefundDay), kIct).start + 3600;
    AddDonation(300301, "opg", 20000, "charged", "", refund);
    AddDonation(300302, "opg", 40000, "charged", "", refund + 60);
  }

  static std::map<std::pair<std::string, std::string>, Totals> Expected(int64_t from, int64_t to) {
    std::map<std::pair<std::string, std::string>, Totals> t;
    for (auto& g : *gen_) {
      if (g.received_at < from || g.received_at >= to) continue;
      Totals& x = t[{g.op, g.campaign}];
      ++x.messages;
      ++x.donations;
      x.units += g.units;
      x.units_charged += g.charged_units;
      x.vnd += g.charged_units * g.price;
      x.charged += g.state == "charged";
      x.partial += g.state == "partially_charged";
      x.failed += g.state == "failed";
      x.unknown += g.state == "unknown";
      x.pending += g.state == "received";
    }
    for (int i = 0; i < 5000; ++i) {
      const Gen& g = (*gen_)[i * 7 % kDonations];
      if (g.received_at < from || g.received_at >= to) continue;
      Totals& x = t[{g.op, "-"}];
      ++x.messages;
      ++x.invalid;
    }
    return t;
  }

  static std::vector<std::string> Ctl(std::vector<std::string> args) {
    std::vector<std::string> all = {BinaryPath("tools/donagatectl/donagatectl"), "--db", *conninfo_};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }

  void CheckReport(const std::string& from_day, const std::string& to_day) {
    Result r = RunProgram(Ctl({"report", "--from", from_day, "--to", to_day, "--format", "json"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    auto expected = Expected(LocalDayRange(*ParseDate(from_day), kIct).start,
                             LocalDayRange(*ParseDate(to_day), kIct).end);
    ASSERT_EQ(j["rows"].size(), expected.size());
    int64_t vnd_total = 0;
    for (auto& row : j["rows"]) {
      auto key = std::make_pair(row["operator"].get<std::string>(), row["campaign"].get<std::string>());
      ASSERT_TRUE(expected.count(key)) << key.first << "/" << key.second;
      const Totals& e = expected[key];
      EXPECT_EQ(row["messages"], e.messages) << key.first << "/" << key.second;
      EXPECT_EQ(row["invalid"], e.invalid);
      EXPECT_EQ(row["donations"], e.donations);
      EXPECT_EQ(row["units"], e.units);
      EXPECT_EQ(row["units_charged"], e.units_charged);
      EXPECT_EQ(row["vnd_charged"], e.vnd) << key.first << "/" << key.second;
      EXPECT_EQ(row["charged"], e.charged);
      EXPECT_EQ(row["partial"], e.partial);
      EXPECT_EQ(row["failed"], e.failed);
      EXPECT_EQ(row["unknown"], e.unknown);
      EXPECT_EQ(row["pending"], e.pending);
      vnd_total += e.vnd;
    }
    EXPECT_EQ(j["total"]["vnd_charged"], vnd_total);
  }

  static std::string* conninfo_;
  static std::vector<Gen>* gen_;
};

std::string* DonagatectlTest::conninfo_ = nullptr;
std::vector<Gen>* DonagatectlTest::gen_ = nullptr;

TEST_F(DonagatectlTest, ReportTotalsEqualIndependentSumsPerDay) {
  for (int d = 0; d < kDays; ++d) CheckReport(FormatDate(*ParseDate(kFirstDay) + d), FormatDate(*ParseDate(kFirstDay) + d));
}

TEST_F(DonagatectlTest, ReportOverTheWholeRange) {
  CheckReport(kFirstDay, FormatDate(*ParseDate(kFirstDay) + kDays - 1));
}

TEST_F(DonagatectlTest, DayBoundaryIsLocalMidnight) {
  // Donation 1 arrived at 2026-11-25 23:59:59 local, donation 2 at 2026-11-26 00:00:00 local.
  auto count_for = [&](const std::string& day, int64_t id) {
    Result r = RunProgram(Ctl({"export", "donations", "--day", day}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.rfind(std::to_string(id) + ",", 0) == 0;
    return n;
  };
  EXPECT_EQ(count_for("2026-11-25", 1), 1);
  EXPECT_EQ(count_for("2026-11-26", 1), 0);
  EXPECT_EQ(count_for("2026-11-26", 2), 1);
  EXPECT_EQ(count_for("2026-11-25", 2), 0);
  Result r = RunProgram(Ctl({"export", "donations", "--day", "2026-11-26"}));
  EXPECT_NE(r.out.find("\r\n2,2026-11-26T00:00:00.000+07:00,"), std::string::npos);
}

TEST_F(DonagatectlTest, TableAndCsvFormats) {
  Result t = RunProgram(Ctl({"report", "--day", "2026-11-25"}));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("TOTAL"), std::string::npos);
  EXPECT_NE(t.out.find("opa"), std::string::npos);
  Result c = RunProgram(Ctl({"report", "--day", "2026-11-25", "--format", "csv"}));
  ASSERT_EQ(c.exit_code, 0);
  EXPECT_EQ(c.out.rfind("operator,campaign,messages,", 0), 0u);
  Result bad = RunProgram(Ctl({"report", "--day", "25/11/2026"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("not a date"), std::string::npos);
}

TEST_F(DonagatectlTest, EveryCsvTheToolWritesEndsRecordsWithCrlf) {
  Result donations = RunProgram(Ctl({"export", "donations", "--day", "2026-11-25"}));
  ASSERT_EQ(donations.exit_code, 0) << donations.err;
  ExpectCrlfRecords(donations.out, "export donations");
  std::string dir = MakeTempDir("crlf");
  Result ledger = RunProgram(Ctl({"export", "ledger", "--day", "2026-11-25", "-o", dir + "/ledger.csv"}));
  ASSERT_EQ(ledger.exit_code, 0) << ledger.err;
  ExpectCrlfRecords(ReadFile(dir + "/ledger.csv"), "export ledger -o");
  Result report = RunProgram(Ctl({"report", "--day", "2026-11-25", "--format", "csv"}));
  ASSERT_EQ(report.exit_code, 0) << report.err;
  ExpectCrlfRecords(report.out, "report --format csv");
  std::ofstream(dir + "/opc.csv") << "ref|amount\ndon-9999999|20000\n";
  Result rec = RunProgram(Ctl({"reconcile", "--operator", "opc", "--day", "2026-11-25", "--settlement",
                               dir + "/opc.csv", "--delimiter", "|", "--reference-column", "ref",
                               "--amount-column", "amount", "--discrepancies", dir + "/disc.csv"}));
  ASSERT_EQ(rec.exit_code, 1) << rec.out << rec.err;
  ExpectCrlfRecords(ReadFile(dir + "/disc.csv"), "reconcile --discrepancies");
}

TEST_F(DonagatectlTest, ExportStreamsTheWholeSetWithBoundedMemory) {
  std::string dir = MakeTempDir("export");
  Result r = RunProgram(Ctl({"export", "ledger", "--from", kFirstDay, "--to", FormatDate(*ParseDate(kFirstDay) + kDays),
                      "--output", dir + "/ledger.csv", "--batch", "2000"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int64_t expected_rows = 0;
  for (auto& g : *gen_) expected_rows += 2 * (g.per_unit ? g.charged_units : (g.state == "charged" ? 1 : 0));
  std::ifstream in(dir + "/ledger.csv");
  std::string line;
  int64_t lines = 0, debit = 0, credit = 0, without_crlf = 0;
  std::vector<std::string> f;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("entry_id,journal_id,created_at,account,direction,amount_vnd", 0), 0u);
  EXPECT_EQ(line.back(), '\r');
  while (std::getline(in, line)) {
    ++lines;
    without_crlf += line.empty() || line.back() != '\r';
    ASSERT_TRUE(SplitCsvLine(line, ',', &f));
    (f[4] == "debit" ? debit : credit) += std::stoll(f[5]);
  }
  EXPECT_EQ(lines, expected_rows);
  EXPECT_EQ(without_crlf, 0);
  EXPECT_EQ(debit, credit);
  // The export never holds the set in memory: a few MiB over the process baseline.
  std::printf("export of %lld ledger rows: peak RSS %ld KiB\n", static_cast<long long>(lines), r.max_rss_kib);
  EXPECT_LT(r.max_rss_kib, kRssBoundKib);

  Result d = RunProgram(Ctl({"export", "donations", "--from", kFirstDay, "--to", FormatDate(*ParseDate(kFirstDay) + kDays),
                      "--output", dir + "/donations.csv"}));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::printf("export of %d donations: peak RSS %ld KiB\n", kDonations, d.max_rss_kib);
  EXPECT_LT(d.max_rss_kib, kRssBoundKib);
  std::ifstream din(dir + "/donations.csv");
  int64_t dlines = 0;
  while (std::getline(din, line)) ++dlines;
  EXPECT_EQ(dlines, kDonations + 1);
}

// Settlement files in both sample layouts, generated from our charges of one day, with known
// discrepancies injected.
TEST_F(DonagatectlTest, ReconcileFindsExactlyTheInjectedDiscrepancies) {
  const std::string day = "2026-11-25";
  const UtcRange range = LocalDayRange(*ParseDate(day), kIct);
  for (const std::string op : {"opa", "opb"}) {
    std::vector<std::tuple<std::string, std::string, int64_t, int64_t>> charges;  // key, msisdn, amount, at
    std::vector<std::string> not_charged;
    for (auto& g : *gen_) {
      if (g.op != op) continue;
      int64_t booked = g.received_at + 1;
      std::string id = std::to_string(g.id);
      if (booked >= range.start && booked < range.end) {
        if (g.per_unit)
          for (int u = 1; u <= g.charged_units; ++u)
            charges.emplace_back("don-" + id + "-" + std::to_string(u), g.msisdn, g.price, booked);
        else if (g.state == "charged")
          charges.emplace_back("don-" + id, g.msisdn, g.units * g.price, booked);
        else if (g.state == "failed")
          not_charged.push_back("don-" + id);
      }
    }
    ASSERT_GT(charges.size(), 100u);
    std::string dir = MakeTempDir("rec");
    std::string path = dir + "/" + op + ".csv";
    std::ofstream out(path);
    auto local = [&](int64_t at) {  // "dd/mm/yyyy HH:MM:SS" local
      std::string s = FormatTimestamp(at, kIct);  // YYYY-MM-DD HH:MM:SS+07:00
      return s.substr(8, 2) + "/" + s.substr(5, 2) + "/" + s.substr(0, 4) + " " + s.substr(11, 8);
    };
    auto national = [](const std::string& m) { return "0" + m.substr(2); };
    auto row = [&](const std::string& key, const std::string& msisdn, int64_t amount, int64_t at, bool ok) {
      if (op == "opa")
        out << "A" << key << "," << msisdn << "," << amount << "," << local(at) << ","
            << (ok ? "SUCCESS" : "FAILED_BALANCE") << "," << key << "\n";
      else
        out << national(msisdn) << ";" << key << ";" << FormatTimestamp(at, 0).substr(0, 10) << "T"
            << FormatTimestamp(at, 0).substr(11, 8) << "Z;" << amount << ";" << (ok ? 0 : 1) << "\n";
    };
    if (op == "opa")
      out << "# Operator A daily settlement\nTRANS_ID,MSISDN,AMOUNT,CHARGE_TIME,RESULT,CP_REF\n";
    else
      out << "msisdn;cp_transaction;charged_at_utc;amount_vnd;status\n";
    // Injected: [0] missing at operator, [1] amount mismatch, [2] status mismatch (operator failed),
    // plus one unknown reference and one failed row that we also did not charge.
    for (size_t i = 0; i < charges.size(); ++i) {
      auto& [key, msisdn, amount, at] = charges[i];
      if (i == 0) continue;
      if (i == 1) row(key, msisdn, amount + 20000, at, true);
      else if (i == 2) row(key, msisdn, amount, at, false);
      else row(key, msisdn, amount, at, true);
    }
    row("don-9999999", "84900000001", 20000, range.start + 100, true);
    row(not_charged.at(0), "84900000002", 20000, range.start + 100, false);
    row("don-8888888", "84900000003", 20000, range.end + 5, true);  // next local day: ignored
    out.close();

    std::string disc = dir + "/discrepancies.csv";
    Result r = RunProgram(Ctl({"reconcile", "--operator", op, "--day", day, "--settlement", path, "--mapping",
                        SourcePath("tools/donagatectl/mappings/operator-" + std::string(op == "opa" ? "a" : "b") + ".toml"),
                        "--discrepancies", disc, "--format", "json"}));
    ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["missing_at_operator"], 1) << op;
    EXPECT_EQ(j["missing_in_ledger"], 1) << op;
    EXPECT_EQ(j["amount_mismatch"], 1) << op;
    EXPECT_EQ(j["status_mismatch"], 1) << op;
    EXPECT_EQ(j["duplicate_at_operator"], 0) << op;
    EXPECT_EQ(j["matched"], static_cast<int64_t>(charges.size()) - 3) << op;
    int64_t ours = 0;
    for (auto& c : charges) ours += std::get<2>(c);
    EXPECT_EQ(j["ours_vnd"], ours);
    std::ifstream d(disc);
    std::string text((std::istreambuf_iterator<char>(d)), {});
    EXPECT_NE(text.find("missing_at_operator," + std::get<0>(charges[0])), std::string::npos) << text;
    EXPECT_NE(text.find("amount_mismatch," + std::get<0>(charges[1])), std::string::npos);
    EXPECT_NE(text.find("status_mismatch," + std::get<0>(charges[2])), std::string::npos);
    EXPECT_NE(text.find("missing_in_ledger,don-9999999"), std::string::npos);
  }
}

TEST_F(DonagatectlTest, ReconcileCleanFileExitsZeroAndBadFileExitsTwoWithLine) {
  const std::string day = "2026-11-24";
  const UtcRange range = LocalDayRange(*ParseDate(day), kIct);
  std::string dir = MakeTempDir("rec");
  std::ofstream out(dir + "/opc.csv");
  out << "ref|amount\n";
  for (auto& g : *gen_) {
    if (g.op != "opc" || g.received_at + 1 < range.start || g.received_at + 1 >= range.end) continue;
    std::string id = std::to_string(g.id);
    if (g.per_unit)
      for (int u = 1; u <= g.charged_units; ++u) out << "don-" << id << "-" << u << "|20000\n";
    else if (g.state == "charged")
      out << "don-" << id << "|" << g.units * g.price << "\n";
  }
  out.close();
  // A layout given by flags only (no time column: every row belongs to the day).
  Result r = RunProgram(Ctl({"reconcile", "--operator", "opc", "--day", day, "--settlement", dir + "/opc.csv",
                      "--delimiter", "|", "--reference-column", "ref", "--amount-column", "amount"}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("missing_at_operator: 0"), std::string::npos) << r.out;

  std::ofstream bad(dir + "/bad.csv");
  bad << "ref|amount\ndon-1|20000\ndon-2|twenty\n";
  bad.close();
  Result b = RunProgram(Ctl({"reconcile", "--operator", "opc", "--day", day, "--settlement", dir + "/bad.csv",
                      "--delimiter", "|", "--reference-column", "ref", "--amount-column", "amount"}));
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("bad.csv:3:"), std::string::npos) << b.err;
}

TEST_F(DonagatectlTest, ReversalIsIdempotentAndKeepsTheLedgerBalanced) {
  int64_t charged_id = 0, failed_id = 0;
  for (auto& g : *gen_) {
    if (!charged_id && g.state == "charged" && g.id > 10) charged_id = g.id;
    if (!failed_id && g.state == "failed") failed_id = g.id;
  }
  auto sums = [&]() {
    return ::donagate::testing::QueryValue(
        *conninfo_, "SELECT sum(amount_vnd) FILTER (WHERE direction='debit') - sum(amount_vnd) FILTER "
                    "(WHERE direction='credit') || '/' || count(*) FROM ledger_entry");
  };
  std::string before = sums();
  EXPECT_EQ(before.substr(0, 2), "0/");
  Result r1 = RunProgram(Ctl({"reverse", std::to_string(charged_id), "--reason", "subscriber complaint #42", "--actor", "lan"}));
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_NE(r1.out.find("reversed"), std::string::npos);
  std::string after1 = sums();
  EXPECT_EQ(after1.substr(0, 2), "0/");
  EXPECT_EQ(std::stoll(after1.substr(2)), std::stoll(before.substr(2)) + 2);
  Result r2 = RunProgram(Ctl({"reverse", std::to_string(charged_id), "--reason", "again", "--actor", "lan"}));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.out.find("already reversed"), std::string::npos);
  EXPECT_EQ(sums(), after1);
  Result r3 = RunProgram(Ctl({"reverse", std::to_string(failed_id), "--reason", "x"}));
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_NE(r3.err.find("not charged"), std::string::npos) << r3.err;
  EXPECT_EQ(sums(), after1);
  EXPECT_EQ(::donagate::testing::QueryValue(
                *conninfo_, "SELECT actor || ':' || reason FROM donation_transition WHERE donation_id = " +
                                std::to_string(charged_id) + " AND to_state = 'reversed'"),
            "lan:subscriber complaint #42");

  // The story shows the reversal.
  Result show = RunProgram(Ctl({"donation", "show", std::to_string(charged_id)}));
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("state=reversed"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("reverses_journal_id="), std::string::npos);
  EXPECT_NE(show.out.find("to_state=reversed"), std::string::npos);
  Result sub = RunProgram(Ctl({"donation", "show", "--msisdn", "0" + (*gen_)[charged_id - 1].msisdn.substr(2)}));
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_NE(sub.out.find("donation_id=" + std::to_string(charged_id)), std::string::npos);
  Result none = RunProgram(Ctl({"donation", "show", "99999999"}));
  EXPECT_EQ(none.exit_code, 1);
}

// Finding: a duplicated row was reported but left out of the operator's total, and its CSV line
// showed our side as 0 / empty although we booked the charge.
TEST_F(DonagatectlTest, ReconcileDuplicateRowIsInTheOperatorsTotalAndShowsBothSides) {
  std::string dir = MakeTempDir("dup");
  std::ofstream(dir + "/opd.csv") << "ref|amount\ndon-300001|20000\ndon-300002|40000\ndon-300003|100000\n"
                                     "don-300002|40000\n";
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"reconcile", "--operator", "opd", "--day", kDuplicateDay, "--settlement",
                                  dir + "/opd.csv", "--delimiter", "|", "--reference-column", "ref",
                                  "--amount-column", "amount"};
    a.insert(a.end(), extra.begin(), extra.end());
    return Ctl(a);
  };
  Result r = RunProgram(args({"--discrepancies", dir + "/disc.csv"}));
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  // The file bills 4 charges for 200,000 VND (its invoice); we booked 3 for 160,000; the
  // duplicate is the difference.
  EXPECT_NE(r.out.find("ours:   3 charges, 160000 VND"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("theirs: 4 charges, 200000 VND"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("of which 1 duplicate line(s), 40000 VND billed twice"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("matched: 3 (160000 VND)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("duplicate_at_operator: 1"), std::string::npos) << r.out;
  EXPECT_EQ(ReadFile(dir + "/disc.csv"),
            "kind,reference,msisdn,our_amount_vnd,their_amount_vnd,our_status,their_status,settlement_line,detail\r\n"
            "duplicate_at_operator,don-300002,,40000,40000,charged,,5,"
            "reference appears more than once (first on line 3); this line bills it again\r\n");
  Result j = RunProgram(args({"--format", "json"}));
  ASSERT_EQ(j.exit_code, 1) << j.err;
  auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["theirs_charged"], 4);
  EXPECT_EQ(json["theirs_vnd"], 200000);
  EXPECT_EQ(json["theirs_duplicate_vnd"], 40000);
  EXPECT_EQ(json["ours_vnd"], 160000);
}

// Finding: amounts written "100.000" (Vietnamese spreadsheets) were refused; the mapping now
// says how the operator writes numbers.
TEST_F(DonagatectlTest, ReconcileReadsSpreadsheetAmountsThroughTheMappingsNumberFormat) {
  std::string dir = MakeTempDir("vnd");
  std::ofstream(dir + "/opd.csv") << "ref;amount\ndon-300001;20.000\ndon-300002;40.000,00\n"
                                     "don-300003;\"100.000 đ\"\n";
  std::ofstream(dir + "/opd.toml") << "delimiter = \";\"\namount_thousands_separator = \".\"\n"
                                      "amount_decimal_separator = \",\"\namount_currency_suffix = \"đ\"\n"
                                      "[columns]\nreference = \"ref\"\namount = \"amount\"\n";
  Result r = RunProgram(Ctl({"reconcile", "--operator", "opd", "--day", kDuplicateDay, "--settlement",
                             dir + "/opd.csv", "--mapping", dir + "/opd.toml"}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("theirs: 3 charges, 160000 VND"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("matched: 3 (160000 VND)"), std::string::npos) << r.out;
  // The same through flags, and the default format (no flags) still refuses the file.
  Result flags = RunProgram(Ctl({"reconcile", "--operator", "opd", "--day", kDuplicateDay, "--settlement",
                                 dir + "/opd.csv", "--delimiter", ";", "--reference-column", "ref",
                                 "--amount-column", "amount", "--amount-thousands-separator", ".",
                                 "--amount-decimal-separator", ",", "--amount-currency-suffix", "đ"}));
  EXPECT_EQ(flags.exit_code, 0) << flags.out << flags.err;
  Result plain = RunProgram(Ctl({"reconcile", "--operator", "opd", "--day", kDuplicateDay, "--settlement",
                                 dir + "/opd.csv", "--delimiter", ";", "--reference-column", "ref",
                                 "--amount-column", "amount"}));
  EXPECT_EQ(plain.exit_code, 2);
  EXPECT_NE(plain.err.find("opd.csv:2: amount \"20.000\" is not a non-negative integer number of VND"),
            std::string::npos) << plain.err;
  // A real decimal part is the operator's error, shown with its line, never rounded away.
  std::ofstream(dir + "/cents.csv") << "ref;amount\ndon-300001;20.000,50\n";
  Result cents = RunProgram(Ctl({"reconcile", "--operator", "opd", "--day", kDuplicateDay, "--settlement",
                                 dir + "/cents.csv", "--mapping", dir + "/opd.toml"}));
  EXPECT_EQ(cents.exit_code, 2);
  EXPECT_NE(cents.err.find("cents.csv:2: amount \"20.000,50\" has a decimal part"), std::string::npos) << cents.err;
}

// Finding: failed_reasons split one reason into as many buckets as a backend has wordings.
TEST_F(DonagatectlTest, ReportGroupsFailuresByReasonCodeAndKeepsTheDetailApart) {
  Result r = RunProgram(Ctl({"report", "--day", kFailuresDay, "--format", "json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const nlohmann::json* row = nullptr;
  for (auto& x : j["rows"])
    if (x["operator"] == "ope") row = &x;
  ASSERT_NE(row, nullptr) << r.out;
  EXPECT_EQ((*row)["failed"], 6);
  EXPECT_EQ((*row)["failed_reasons"],
            nlohmann::json({{"insufficient_funds", 4}, {"subscriber_barred", 1}, {"daily_cap", 1}}));
  EXPECT_EQ((*row)["failed_details"],
            nlohmann::json({{"insufficient_funds", {{"HTTP 402: balance too low", 2}, {"not enough credit", 1}}},
                            {"subscriber_barred", {{"HTTP 403: barred", 1}}}}));
  EXPECT_EQ(j["total"]["failed_reasons"]["insufficient_funds"], 4);

  Result csv = RunProgram(Ctl({"report", "--day", kFailuresDay, "--format", "csv"}));
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_NE(csv.out.find(",daily_cap=1;insufficient_funds=4;subscriber_barred=1,"), std::string::npos) << csv.out;
  EXPECT_EQ(csv.out.find("HTTP"), std::string::npos) << csv.out;

  Result table = RunProgram(Ctl({"report", "--day", kFailuresDay}));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::string grid = table.out.substr(0, table.out.find("Failure details"));
  EXPECT_NE(grid.find("daily_cap=1;insufficient_funds=4;subscriber_barred=1"), std::string::npos) << table.out;
  EXPECT_EQ(grid.find("HTTP"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ope  covid  insufficient_funds  2  HTTP 402: balance too low\n"), std::string::npos)
      << table.out;
}

// A recognised redelivery (outcome redelivery) is the same message again: neither a message
// nor an invalid one in the report.
TEST_F(DonagatectlTest, ReportLeavesRecognisedRedeliveriesOut) {
  Result r = RunProgram(Ctl({"report", "--day", kDuplicateDay, "--format", "json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const nlohmann::json* row = nullptr;
  for (auto& x : j["rows"])
    if (x["operator"] == "opd") row = &x;
  ASSERT_NE(row, nullptr) << r.out;
  EXPECT_EQ((*row)["messages"], 3) << r.out;
  EXPECT_EQ((*row)["invalid"], 0) << r.out;
  EXPECT_EQ((*row)["donations"], 3) << r.out;
}

// Finding: `report --zone UTC` computed the UTC day but said Asia/Ho_Chi_Minh.
TEST_F(DonagatectlTest, ReportIsLabelledWithTheZoneItWasComputedIn) {
  auto opf_donations = [](const std::string& out) -> int64_t {
    const nlohmann::json report = nlohmann::json::parse(out);
    for (auto& x : report["rows"])
      if (x["operator"] == "opf") return x["donations"];
    return 0;
  };
  Result utc = RunProgram(Ctl({"--zone", "UTC", "report", "--day", kUtcDay, "--format", "json"}));
  ASSERT_EQ(utc.exit_code, 0) << utc.err;
  EXPECT_EQ(nlohmann::json::parse(utc.out)["zone"], "UTC");
  EXPECT_EQ(opf_donations(utc.out), 1);  // 20:00 UTC is on the UTC day...
  Result local = RunProgram(Ctl({"report", "--day", kUtcDay, "--format", "json"}));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(nlohmann::json::parse(local.out)["zone"], "Asia/Ho_Chi_Minh");
  EXPECT_EQ(opf_donations(local.out), 0);  // ...and on the next local day
  Result table = RunProgram(Ctl({"--zone", "UTC", "report", "--day", kUtcDay}));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("Donations received " + std::string(kUtcDay) + " (UTC), VND\n", 0), 0u) << table.out;
  EXPECT_EQ(table.out.find("Asia/Ho_Chi_Minh"), std::string::npos) << table.out;
  Result offset = RunProgram(Ctl({"--zone", "+05:30", "report", "--day", kUtcDay, "--format", "json"}));
  ASSERT_EQ(offset.exit_code, 0) << offset.err;
  EXPECT_EQ(nlohmann::json::parse(offset.out)["zone"], "+05:30");
}

// Finding: a refused reversal printed PostgreSQL's raw error with its PL/pgSQL context.
TEST_F(DonagatectlTest, RefusedReversalIsOnePlainSentenceAndTheRawErrorOnlyWithVerbose) {
  const int64_t failed_id = 300102;  // ope, failed
  const std::string id = std::to_string(failed_id);
  Result r = RunProgram(Ctl({"reverse", id, "--reason", "complaint", "--actor", "lan"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "donagatectl: donation " + id + " cannot be reversed: it is not charged (state failed)\n");
  Result v = RunProgram(Ctl({"reverse", id, "--reason", "complaint", "--actor", "lan", "--verbose"}));
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_EQ(v.err.rfind("donagatectl: donation " + id + " cannot be reversed: it is not charged (state failed)\n", 0),
            0u) << v.err;
  EXPECT_NE(v.err.find("55000"), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("PL/pgSQL"), std::string::npos) << v.err;
  Result none = RunProgram(Ctl({"reverse", "99999999", "--reason", "complaint", "--actor", "lan"}));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, "donagatectl: donation 99999999 does not exist\n");
  Result no_reason = RunProgram(Ctl({"reverse", "300101", "--reason", " ", "--actor", "lan"}));
  EXPECT_EQ(no_reason.exit_code, 1);
  EXPECT_EQ(no_reason.err, "donagatectl: donation 300101 cannot be reversed: a reversal needs a reason\n");
}

// docs/finance.md, "A reversal refunded at the operator": the operator lists the reference as
// refunded; the reconciliation of the charge's day shows a status mismatch that says we reversed it.
TEST_F(DonagatectlTest, ReconcileOfARefundedAndReversedChargeSaysItWasReversed) {
  Result rev = RunProgram(Ctl({"reverse", "300301", "--reason", "complaint (refunded at the operator)", "--actor", "lan"}));
  ASSERT_EQ(rev.exit_code, 0) << rev.err;
  std::string dir = MakeTempDir("refund");
  std::ofstream(dir + "/opg.csv") << "ref,amount,status\r\ndon-300301,20000,REFUNDED\r\ndon-300302,40000,REFUNDED\r\n";
  Result r = RunProgram(Ctl({"reconcile", "--operator", "opg", "--day", kRefundDay, "--settlement", dir + "/opg.csv",
                             "--reference-column", "ref", "--amount-column", "amount", "--status-column", "status",
                             "--charged-value", "SUCCESS", "--discrepancies", dir + "/disc.csv"}));
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("ours:   2 charges, 60000 VND"), std::string::npos) << r.out;  // the booking stays
  EXPECT_NE(r.out.find("theirs: 0 charges, 0 VND"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("status_mismatch: 2"), std::string::npos) << r.out;
  const std::string csv = ReadFile(dir + "/disc.csv");
  EXPECT_NE(csv.find("status_mismatch,don-300301,,20000,20000,charged,REFUNDED,2,we booked a charge the operator "
                     "reports as REFUNDED; the donation was reversed 20"),
            std::string::npos) << csv;
  // Refunded by the operator but not reversed by us: no "reversed" to close it with.
  EXPECT_NE(csv.find("status_mismatch,don-300302,,40000,40000,charged,REFUNDED,3,we booked a charge the operator "
                     "reports as REFUNDED\r\n"),
            std::string::npos) << csv;
}

}  // namespace
}  // namespace donagate::ctl

namespace donagate::ctl {
namespace {

// Starts tools/charging_sim on a free port; kills it on destruction.
struct ChargingSim {
  pid_t pid = -1;
  int port = 0;
  ChargingSim() {
    port = ::donagate::testing::FreeTcpPort();
    std::string bin = BinaryPath("tools/charging_sim/charging_sim");
    std::string listen = "127.0.0.1:" + std::to_string(port);
    pid = fork();
    if (pid == 0) {
      execl(bin.c_str(), bin.c_str(), "--listen", listen.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (Curl("GET", "/v1/debits", "").rfind("200", 0) == 0) return;
      usleep(50000);
    }
  }
  ~ChargingSim() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // Returns "<status> <body>".
  std::string Curl(const std::string& method, const std::string& path, const std::string& body) const {
    std::string cmd = "curl -s -o /dev/stdout -w ' %{http_code}' -X " + method + " -H 'Content-Type: application/json' " +
                      (body.empty() ? "" : "-d '" + body + "' ") + "http://127.0.0.1:" + std::to_string(port) + path +
                      " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    auto sp = out.rfind(' ');
    return sp == std::string::npos ? out : out.substr(sp + 1) + " " + out.substr(0, sp);
  }
};

std::string WriteRefundConfig(int sim_port, const std::string& conninfo) {
  std::string dir = MakeTempDir("refundcfg");
  std::ofstream(dir + "/smsc.pw") << "secret\n";
  std::ofstream cfg(dir + "/donagate.toml");
  cfg << "[[smsc]]\nname = \"opa-1\"\noperator = \"opa\"\nmode = \"client\"\nhost = \"127.0.0.1\"\nport = 2775\n"
         "system_id = \"x\"\npassword_file = \"smsc.pw\"\n\n"
         "[[smsc]]\nname = \"opb-1\"\noperator = \"opb\"\nmode = \"client\"\nhost = \"127.0.0.1\"\nport = 2776\n"
         "system_id = \"x\"\npassword_file = \"smsc.pw\"\n\n"
         "[[smsc]]\nname = \"opc-1\"\noperator = \"opc\"\nmode = \"client\"\nhost = \"127.0.0.1\"\nport = 2777\n"
         "system_id = \"x\"\npassword_file = \"smsc.pw\"\n\n"
         "[database]\nconninfo = \"" << conninfo << "\"\n\n"
         "[[campaign]]\nname = \"covid\"\nkeyword = \"CV\"\nshortcode = \"1407\"\nunit_price_vnd = 20000\n\n"
         "[[charging]]\noperator = \"opa\"\nbackend = \"http\"\nurl = \"http://127.0.0.1:" << sim_port << "\"\n"
         "timeout_ms = 2000\n\n"
         "[[charging]]\noperator = \"opb\"\nbackend = \"operator_billed\"\n\n"
         "[[charging]]\noperator = \"opc\"\nbackend = \"operator_billed\"\n";
  return dir + "/donagate.toml";
}

TEST_F(DonagatectlTest, RefundAtTheOperatorBeforeTheLedgerReversal) {
  ChargingSim sim;
  std::string config = WriteRefundConfig(sim.port, *conninfo_);
  const Gen* known = nullptr;   // charged at the simulator too
  const Gen* unknown = nullptr;  // the simulator never saw its key
  for (auto& g : *gen_) {
    if (g.op != "opa" || g.state != "charged" || g.per_unit || g.id < 100) continue;
    if (!known) known = &g;
    else if (!unknown) unknown = &g;
    else break;
  }
  ASSERT_TRUE(known && unknown);
  std::string key = "don-" + std::to_string(known->id);
  std::string charged = sim.Curl("POST", "/v1/charges",
                                 "{\"key\":\"" + key + "\",\"msisdn\":\"" + known->msisdn + "\",\"amount_vnd\":" +
                                     std::to_string(known->units * known->price) + ",\"units\":" +
                                     std::to_string(known->units) + ",\"campaign\":\"covid\",\"operator\":\"opa\"}");
  ASSERT_EQ(charged.rfind("200", 0), 0u) << charged;

  auto ledger_rows = [&] { return ::donagate::testing::QueryValue(*conninfo_, "SELECT count(*) FROM ledger_entry"); };
  std::string before = ledger_rows();
  // The simulator has no such charge: the refund is refused and the ledger is untouched.
  Result no = RunProgram(Ctl({"--config", config, "reverse", std::to_string(unknown->id), "--reason", "complaint",
                              "--refund", "--actor", "lan"}));
  EXPECT_EQ(no.exit_code, 1) << no.out << no.err;
  EXPECT_NE(no.out.find("not_found"), std::string::npos) << no.out;
  EXPECT_EQ(ledger_rows(), before);

  Result yes = RunProgram(Ctl({"--config", config, "reverse", std::to_string(known->id), "--reason", "complaint",
                               "--refund", "--actor", "lan"}));
  ASSERT_EQ(yes.exit_code, 0) << yes.out << yes.err;
  EXPECT_NE(yes.out.find("refund " + key + " "), std::string::npos);
  EXPECT_NE(yes.out.find(": refunded"), std::string::npos) << yes.out;
  EXPECT_EQ(std::stoll(ledger_rows()), std::stoll(before) + 2);
  std::string debits = sim.Curl("GET", "/v1/debits", "");
  EXPECT_NE(debits.find("refund"), std::string::npos) << debits;
  // Again: the refund is idempotent at the operator and the reversal writes nothing new.
  Result again = RunProgram(Ctl({"--config", config, "reverse", std::to_string(known->id), "--reason", "complaint",
                                 "--refund"}));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already reversed"), std::string::npos);
  EXPECT_EQ(std::stoll(ledger_rows()), std::stoll(before) + 2);
}

}  // namespace
}  // namespace donagate::ctl
