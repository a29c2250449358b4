// The keyword flows and reply safety through the pipeline against a real PostgreSQL (issue 15):
// what each keyword records and answers, confirmation of large amounts across two pipelines,
// the per-number MO rate limit and reply budget, and the MOs that are never answered.
#include "daemon/pipeline.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "billing/store/migrate.h"
#include "daemon/charging_worker.h"
#include "daemon/ingest_writer.h"
#include "daemon/link_manager.h"
#include "daemon/reply_sender.h"
#include "daemon/reply_templates.h"
#include "protocol/udh.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pg.h"
#include "tests/daemon/pipeline_harness.h"

namespace donagate::daemon {
namespace {

using donagate::testing::CreateFreshDatabase;
using donagate::testing::QueryValue;
using std::chrono::milliseconds;

using pipeline_testing::DeliverSm;
using pipeline_testing::Harness;
using pipeline_testing::Migrated;
using pipeline_testing::TestConfig;

std::string Q(const std::string& db, const std::string& sql) { return QueryValue(db, sql); }

TEST(PipelineKeywordsTest, EachKeywordIsRecordedAndAnsweredAndNeverCharged) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_each");
  Harness h(TestConfig(db));
  struct Case {
    const char* from;
    const char* text;
    const char* outcome;
    const char* purpose;   // the reply queued
    const char* contains;  // in its text
  };
  const Case cases[] = {
      {"84916200001", "HELP", "help", "help", "soan CV n gui 1407"},
      {"84916200002", " hd ! ", "help", "help", "soan CV n gui 1407"},
      {"84916200003", "?", "help", "help", "soan CV n gui 1407"},
      {"84916200004", "Stop", "stop", "stop", "ngung nhan tin tu chuong trinh Vi mien Trung"},
      {"84916200005", "dung", "stop", "stop", "ngung nhan tin"},
      {"84916200006", "stop-all", "stop", "stop_all", "tat ca chuong trinh"},
      {"84916200007", "y", "confirm", "confirm_none", "Khong co giao dich"},
      {"84916200008", "TRA", "status", "status", "hom nay Quy khach da ung ho 0 dong (0 lan)"},
      {"84916200009", "xin chao", "syntax_error", "syntax", "Sai cu phap"},
  };
  for (const Case& c : cases) {
    ASSERT_EQ(h.Deliver(DeliverSm(c.from, "1407", c.text)), smpp::status::kOk) << c.text;
    const std::string where = " FROM inbound_message m WHERE m.msisdn = '" + std::string(c.from) + "'";
    EXPECT_EQ(Q(db, "SELECT outcome" + where), c.outcome) << c.text;
    EXPECT_EQ(Q(db, "SELECT o.purpose FROM outbox o JOIN inbound_message m ON m.id = o.inbound_message_id "
                    "WHERE m.msisdn = '" + std::string(c.from) + "'"), c.purpose) << c.text;
    EXPECT_NE(Q(db, "SELECT o.text FROM outbox o WHERE o.dest_addr = '" + std::string(c.from) + "'").find(c.contains),
              std::string::npos) << c.text;
  }
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation"), "0");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM ledger_entry"), "0");
  EXPECT_EQ(Q(db, "SELECT string_agg(msisdn || ':' || campaign || ':' || all_campaigns, ',' ORDER BY id) FROM opt_out"),
            "84916200004:Vi mien Trung:false,84916200005:Vi mien Trung:false,84916200006:Vi mien Trung:true");
}

TEST(PipelineKeywordsTest, ConfirmationChargesOnceEvenWhenTwoPipelinesConfirmAtOnce) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_confirm");
  config::Config c = TestConfig(db);
  c.campaigns[0].confirm_above_units = 5;
  c.campaigns[0].confirm_window_s = 60;
  config::Config c2 = c;
  c2.pipeline.instance_id = "test-2";
  Harness a(c), b(c2);
  ASSERT_EQ(a.Deliver(DeliverSm("84916200010", "1407", "CV 5")), smpp::status::kOk);  // at the threshold: ordinary
  ASSERT_EQ(a.Deliver(DeliverSm("84916200010", "1407", "CV 6")), smpp::status::kOk);
  EXPECT_EQ(Q(db, "SELECT string_agg(units || ' ' || state, ',' ORDER BY id) FROM donation"),
            "5 received,6 awaiting_confirmation");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM outbox WHERE purpose = 'confirm_request' AND text LIKE '%120.000 dong%1 phut%'"), "1");
  // The same "Y" reaches both pipelines (two instances) at the same moment.
  auto fa = std::async(std::launch::async, [&] { return a.Deliver(DeliverSm("84916200010", "1407", "Y")); });
  auto fb = std::async(std::launch::async, [&] { return b.Deliver(DeliverSm("84916200010", "1407", "CO")); });
  EXPECT_EQ(fa.get(), smpp::status::kOk);
  EXPECT_EQ(fb.get(), smpp::status::kOk);
  EXPECT_EQ(Q(db, "SELECT state FROM donation WHERE units = 6"), "received");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation WHERE confirmed_by IS NOT NULL"), "1");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM outbox WHERE purpose = 'confirm_none'"), "1");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation_transition WHERE reason = 'confirmed'"), "1");
}

TEST(PipelineKeywordsTest, ReplacementStopAndExpiryNeverCharge) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_expire");
  config::Config c = TestConfig(db);
  c.campaigns[0].confirm_above_units = 1;
  c.campaigns[0].confirm_window_s = 10;
  Harness h(c);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200020", "1407", "CV 2")), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200020", "1407", "CV 3")), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200021", "1407", "CV 4")), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200021", "1407", "HUY")), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200022", "1407", "CV 5")), smpp::status::kOk);
  EXPECT_EQ(Q(db, "SELECT string_agg(units || ' ' || state || ' ' || coalesce(failure_reason, '-'), ',' ORDER BY id) FROM donation"),
            "2 failed confirmation_replaced,3 awaiting_confirmation -,4 failed opted_out,5 awaiting_confirmation -");
  // Not yet due: nothing expires.
  billing::Store store(db, {});
  int64_t expired = -1;
  ASSERT_TRUE(store.ExpireConfirmations(&expired).ok());
  EXPECT_EQ(expired, 0);
  // Past the deadline (moved back rather than waited for): expired, and a late Y finds nothing.
  ASSERT_EQ(Q(db, "WITH u AS (UPDATE donation SET confirm_deadline = now() - interval '1 s' WHERE units = 5 RETURNING 1) SELECT count(*) FROM u"), "1");
  ASSERT_EQ(h.Deliver(DeliverSm("84916200022", "1407", "Y")), smpp::status::kOk);
  EXPECT_EQ(Q(db, "SELECT state FROM donation WHERE units = 5"), "awaiting_confirmation");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM outbox WHERE dest_addr = '84916200022' AND purpose = 'confirm_none'"), "1");
  ASSERT_TRUE(store.ExpireConfirmations(&expired).ok());
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(Q(db, "SELECT state || ' ' || failure_reason FROM donation WHERE units = 5"), "failed confirmation_expired");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation WHERE state = 'received'"), "0");
}

TEST(PipelineKeywordsTest, RateLimitRecordsTheRestAndTellsOnce) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_rate");
  config::Config c = TestConfig(db);
  c.pipeline.max_mos_per_minute_per_msisdn = 3;
  Harness h(c);
  for (int i = 0; i < 6; ++i) ASSERT_EQ(h.Deliver(DeliverSm("84916200030", "1407", "CV 1")), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200031", "1407", "CV 1")), smpp::status::kOk);  // another number: unaffected
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation WHERE msisdn = '84916200030'"), "3");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM inbound_message WHERE msisdn = '84916200030' AND outcome = 'rate_limited'"), "3");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM outbox WHERE dest_addr = '84916200030' AND purpose = 'rate_limited'"), "1");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation WHERE msisdn = '84916200031'"), "1");
}

TEST(PipelineKeywordsTest, ReplyBudgetWithholdsRepliesBeyondKAnHour) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_budget");
  config::Config c = TestConfig(db);
  c.pipeline.max_replies_per_hour_per_msisdn = 2;
  Harness h(c);
  for (const char* text : {"HELP", "sai", "TRA", "Y"})
    ASSERT_EQ(h.Deliver(DeliverSm("84916200040", "1407", text)), smpp::status::kOk) << text;
  EXPECT_EQ(Q(db, "SELECT count(*) FROM inbound_message WHERE msisdn = '84916200040'"), "4");
  EXPECT_EQ(Q(db, "SELECT string_agg(purpose, ',' ORDER BY id) FROM outbox WHERE dest_addr = '84916200040'"), "help,syntax");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM inbound_message WHERE msisdn = '84916200040' AND outcome_detail LIKE '%reply withheld%'"), "2");
}

TEST(PipelineKeywordsTest, ReceiptsNonSubscriberSendersAndEchoedRepliesAreNeverAnswered) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("kw_silent");
  Harness h(TestConfig(db));
  ASSERT_EQ(h.Deliver(DeliverSm("VIETTEL", "1407", "HELP")), smpp::status::kOk);      // alphanumeric
  ASSERT_EQ(h.Deliver(DeliverSm("9029", "1407", "Sai cu phap")), smpp::status::kOk);  // a short code
  ASSERT_EQ(h.Deliver(DeliverSm("1407", "1407", "CV 1")), smpp::status::kOk);        // our own shortcode
  ASSERT_EQ(h.Deliver(DeliverSm("84916200050", "1407",
                                "id:1 sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:",
                                0x04)), smpp::status::kOk);
  ASSERT_EQ(h.Deliver(DeliverSm("84916200051", "1407",
                                "Cam on Quy khach da ung ho 20.000 dong cho chuong trinh Vi mien Trung. Ma GD: don-9")),
            smpp::status::kOk);
  EXPECT_EQ(Q(db, "SELECT string_agg(outcome, ',' ORDER BY id) FROM inbound_message"),
            "invalid_msisdn,invalid_msisdn,invalid_msisdn,receipt,reply_loop");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM outbox"), "0");
  EXPECT_EQ(Q(db, "SELECT count(*) FROM donation"), "0");
}

}  // namespace
}  // namespace donagate::daemon
