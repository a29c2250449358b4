// The ledger's guarantees, enforced by the database itself: append-only (trigger for everyone,
// privileges for the daemon role), balanced journals at commit, role separation, and the
// finance reversal function (idempotent, balanced, refused for donations not charged).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>

#include "billing/store/migrate.h"
#include "billing/store/store.h"
#include "tests/common/test_pg.h"

namespace donagate::billing {
namespace {

using ::donagate::testing::CreateFreshDatabase;
using ::donagate::testing::ExecSql;
using ::donagate::testing::QueryValue;
using namespace std::chrono_literals;

// One session on which a test can SET ROLE and run statements, keeping errors as values.
class Session {
 public:
  explicit Session(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}
  ~Session() { PQfinish(conn_); }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  // "" on success, else the server's message.
  std::string Run(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    std::string err = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? "" : PQresultErrorMessage(r);
    PQclear(r);
    return err;
  }

 private:
  PGconn* conn_;
};

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DONAGATE_REQUIRE_POSTGRES();
    db_ = CreateFreshDatabase(::testing::UnitTest::GetInstance()->current_test_info()->name());
    StoreStatus st = Migrate(db_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    StoreOptions o;
    o.instance_id = "ledger-test";
    store_ = std::make_unique<Store>(db_, o);
  }

  // A donation taken through ingest → claim → record, ending in `state`.
  int64_t MakeDonation(DonationState state, int units = 5, int charged_units = -1) {
    IngestItem it;
    InboundMessage m;
    m.link = "vina-1";
    m.operator_name = "vinaphone";
    m.source_addr = m.msisdn = "84911111111";
    m.dest_addr = "1407";
    m.text = m.raw_payload = "CV " + std::to_string(units);
    m.received_at = StoreClock::now();
    m.outcome = MessageOutcome::kDonation;
    it.message = m;
    DonationDraft d;
    d.campaign = "bao-lu";
    d.units = units;
    d.unit_price_vnd = 20000;
    d.amount_vnd = 20000LL * units;
    d.charging_mode = config::ChargingMode::kPerUnit;
    it.donation = d;
    std::vector<IngestResult> ingested;
    EXPECT_TRUE(store_->IngestBatch({it}, &ingested).ok());
    int64_t id = ingested.at(0).donation_id;
    if (state == DonationState::kReceived) return id;
    std::vector<DonationWork> work;
    EXPECT_TRUE(store_->ClaimDonations(10, 60s, {}, &work).ok());
    ChargeOutcomeRecord rec;
    rec.donation_id = id;
    rec.new_state = state;
    if (charged_units < 0) charged_units = state == DonationState::kCharged ? units : 0;
    for (int u = 1; u <= units; ++u) {
      StoredCharge c;
      c.key = "don-" + std::to_string(id) + "-" + std::to_string(u);
      c.unit_index = u;
      c.units = 1;
      c.amount_vnd = 20000;
      c.outcome = u <= charged_units ? ChargeOutcome::kCharged : ChargeOutcome::kInsufficientFunds;
      rec.charges.push_back(c);
      if (c.outcome != ChargeOutcome::kCharged) break;
    }
    if (state == DonationState::kFailed) rec.reason = "insufficient_funds";
    std::vector<RecordResult> results;
    EXPECT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
    EXPECT_FALSE(results.at(0).refused) << results.at(0).message;
    return id;
  }

  std::string Balance() {
    return QueryValue(db_,
                      "SELECT coalesce(sum(amount_vnd) FILTER (WHERE direction = 'debit'), 0) || '/' ||"
                      " coalesce(sum(amount_vnd) FILTER (WHERE direction = 'credit'), 0) FROM ledger_entry");
  }

  std::string db_;
  std::unique_ptr<Store> store_;
};

TEST_F(LedgerTest, UpdateDeleteTruncateAreRefusedEvenForTheOwner) {
  MakeDonation(DonationState::kCharged);
  Session owner(db_);  // superuser: only the trigger stands in the way
  ASSERT_TRUE(owner.ok());
  std::string err = owner.Run("UPDATE ledger_entry SET amount_vnd = 1");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
  err = owner.Run("DELETE FROM ledger_entry");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
  err = owner.Run("TRUNCATE ledger_entry CASCADE");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
  err = owner.Run("DELETE FROM donation_transition");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry"), "10");
  EXPECT_EQ(Balance(), "100000/100000");
}

TEST_F(LedgerTest, DaemonRoleCannotChangeLedgerOrHistoryButCanWorkState) {
  int64_t id = MakeDonation(DonationState::kCharged);
  Session daemon(db_);
  ASSERT_TRUE(daemon.ok());
  ASSERT_EQ(daemon.Run("SET ROLE donagate_daemon"), "");
  for (const char* sql : {"UPDATE ledger_entry SET amount_vnd = 1", "DELETE FROM ledger_entry",
                          "TRUNCATE ledger_entry", "UPDATE donation_transition SET reason = 'x'",
                          "DELETE FROM inbound_message", "UPDATE inbound_message SET text = 'x'"}) {
    std::string err = daemon.Run(sql);
    EXPECT_NE(err.find("permission denied"), std::string::npos) << sql << ": " << err;
  }
  // What the daemon does need is allowed.
  EXPECT_EQ(daemon.Run("UPDATE donation SET updated_at = now() WHERE id = " + std::to_string(id)), "");
  EXPECT_EQ(daemon.Run("UPDATE outbox SET updated_at = now()"), "");
  EXPECT_EQ(daemon.Run("SELECT count(*) FROM ledger_entry"), "");
  EXPECT_EQ(daemon.Run("BEGIN; SELECT nextval('ledger_journal_id_seq');"
                       " INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
                       " VALUES (currval('ledger_journal_id_seq'), 'receivable:vinaphone', 'debit', 5, 'd'),"
                       " (currval('ledger_journal_id_seq'), 'fund:bao-lu', 'credit', 5, 'd'); COMMIT"),
            "");
  // ... but not reversals: those go through reverse_donation, granted to donagate_reverse only.
  std::string err = daemon.Run("SELECT * FROM reverse_donation(" + std::to_string(id) + ", 'x', 'y')");
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;

  Session finance(db_);
  ASSERT_EQ(finance.Run("SET ROLE donagate_finance"), "");
  EXPECT_EQ(finance.Run("SELECT sum(amount_vnd) FROM ledger_entry"), "");
  EXPECT_EQ(finance.Run("SELECT count(*) FROM donation JOIN charge ON charge.donation_id = donation.id"), "");
  err = finance.Run("UPDATE donation SET state = 'failed'");
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;
  err = finance.Run("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
                    " VALUES (1, 'fund:x', 'debit', 1, 'f')");
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;
}

TEST_F(LedgerTest, UnbalancedJournalIsRefusedAtCommit) {
  Session s(db_);
  ASSERT_EQ(s.Run("BEGIN"), "");
  // The single row is accepted by the statement (the check is deferred) ...
  EXPECT_EQ(s.Run("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
                  " VALUES (nextval('ledger_journal_id_seq'), 'receivable:vinaphone', 'debit', 20000, 't')"),
            "");
  // ... but COMMIT refuses it.
  std::string err = s.Run("COMMIT");
  EXPECT_NE(err.find("unbalanced"), std::string::npos) << err;
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry"), "0");

  // Debit 20,000 against credit 19,999: also refused.
  err = s.Run("BEGIN; SELECT nextval('ledger_journal_id_seq');"
              " INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by) VALUES"
              " (currval('ledger_journal_id_seq'), 'receivable:vinaphone', 'debit', 20000, 't'),"
              " (currval('ledger_journal_id_seq'), 'fund:bao-lu', 'credit', 19999, 't'); COMMIT");
  EXPECT_NE(err.find("unbalanced"), std::string::npos) << err;
  // Zero, negative amounts and unknown accounts are refused outright.
  err = s.Run("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
              " VALUES (1, 'fund:x', 'debit', -5, 't')");
  EXPECT_NE(err.find("check constraint"), std::string::npos) << err;
  err = s.Run("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
              " VALUES (1, 'cash', 'debit', 5, 't')");
  EXPECT_NE(err.find("check constraint"), std::string::npos) << err;
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry"), "0");
}

TEST_F(LedgerTest, ReversalIsBalancedIdempotentAndRecordsWhoAndWhy) {
  int64_t id = MakeDonation(DonationState::kPartiallyCharged, 5, 3);
  ASSERT_EQ(QueryValue(db_, "SELECT state FROM donation"), "partially_charged");
  ReversalResult first;
  StoreStatus st = store_->ReverseDonation(id, "subscriber complaint #42", "finance:lan", &first);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(first.already_reversed);
  EXPECT_EQ(first.reversed_amount_vnd, 60000);
  EXPECT_GT(first.reversal_journal_id, 0);
  EXPECT_EQ(Balance(), "120000/120000");
  // Net per account is zero after the reversal.
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM (SELECT account, sum(CASE direction WHEN 'debit' THEN amount_vnd"
                            " ELSE -amount_vnd END) AS net FROM ledger_entry GROUP BY account) s WHERE net <> 0"),
            "0");
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry WHERE journal_id = " +
                                std::to_string(first.reversal_journal_id) +
                                " AND reverses_journal_id IS NOT NULL AND created_by = 'finance:lan'"),
            "6");
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation"), "reversed");
  EXPECT_EQ(QueryValue(db_, "SELECT reason || ' by ' || actor FROM donation_transition WHERE to_state = 'reversed'"),
            "subscriber complaint #42 by finance:lan");

  // Second call: the existing reversal, nothing written.
  ReversalResult second;
  st = store_->ReverseDonation(id, "again", "finance:lan", &second);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(second.already_reversed);
  EXPECT_EQ(second.reversal_journal_id, first.reversal_journal_id);
  EXPECT_EQ(second.reversed_amount_vnd, 60000);
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry"), "12");
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM donation_transition WHERE to_state = 'reversed'"), "1");
}

TEST_F(LedgerTest, ReversalRefusesDonationsNotCharged) {
  int64_t received = MakeDonation(DonationState::kReceived);
  int64_t failed = MakeDonation(DonationState::kFailed, 2, 0);
  ReversalResult r;
  StoreStatus st = store_->ReverseDonation(received, "mistake", "finance:lan", &r);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  EXPECT_NE(st.message().find("not charged"), std::string::npos) << st.message();
  st = store_->ReverseDonation(failed, "mistake", "finance:lan", &r);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  st = store_->ReverseDonation(987654, "mistake", "finance:lan", &r);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  EXPECT_NE(st.message().find("does not exist"), std::string::npos) << st.message();
  int64_t charged = MakeDonation(DonationState::kCharged, 1);
  st = store_->ReverseDonation(charged, "", "finance:lan", &r);
  EXPECT_TRUE(st.permanent()) << "a reason is required: " << st.ToString();
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM ledger_entry WHERE reverses_journal_id IS NOT NULL"), "0");
}

TEST_F(LedgerTest, ReverseRoleMayOnlyReverse) {
  int64_t id = MakeDonation(DonationState::kCharged, 1);
  ExecSql(db_, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_test_clerk') THEN"
               " CREATE ROLE ledger_test_clerk LOGIN; END IF; END $$");
  ExecSql(db_, "GRANT donagate_reverse TO ledger_test_clerk");
  Session clerk(db_ + " user=ledger_test_clerk");  // logs in as the clerk (trust auth)
  ASSERT_TRUE(clerk.ok());
  EXPECT_EQ(QueryValue(db_ + " user=ledger_test_clerk", "SELECT session_user"), "ledger_test_clerk");
  std::string err = clerk.Run("INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, created_by)"
                              " VALUES (1, 'fund:x', 'debit', 1, 'c')");
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;
  EXPECT_EQ(clerk.Run("SELECT * FROM reverse_donation(" + std::to_string(id) + ", 'refund', 'clerk')"), "");
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation"), "reversed");
  EXPECT_EQ(QueryValue(db_, "SELECT db_user FROM ledger_entry WHERE reverses_journal_id IS NOT NULL LIMIT 1"),
            "ledger_test_clerk");
}

}  // namespace
}  // namespace donagate::billing
