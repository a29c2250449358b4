// The pipeline against a real PostgreSQL: classification, ack-after-commit, temporary errors,
// concatenation across a restart, and the charging worker turning a donation into ledger rows
// and a thank-you in the outbox (in-process charging backend).
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

bool WaitFor(const std::function<bool()>& condition, milliseconds timeout = milliseconds(20000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return condition();
}

// A charging worker's options for `db`, polling fast.
ChargingWorkerOptions WorkerOptions(const std::string& db) {
  ChargingWorkerOptions co;
  co.conninfo = db;
  co.store_options.instance_id = "test-1";
  co.poll_interval = milliseconds(20);
  return co;
}

TEST(PipelineTest, Cv5BecomesChargedDonationWithBalancedLedgerAndThankYou) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_cv5");
  Harness h(TestConfig(db));

  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 5")), smpp::status::kOk);
  // Ack after commit: by the time the completion said OK, the rows are there.
  EXPECT_EQ(QueryValue(db, "SELECT outcome FROM inbound_message"), "donation");
  EXPECT_EQ(QueryValue(db, "SELECT msisdn FROM inbound_message"), "84912345678");
  EXPECT_EQ(QueryValue(db, "SELECT amount_vnd || ' ' || state FROM donation"), "100000 received");

  auto chargers = ChargerSet::Create(h.io().get_executor(), h.config(), nullptr, nullptr);
  ASSERT_NE(chargers, nullptr);
  ChargingWorkerOptions co = WorkerOptions(db);
  ChargingWorker worker(h.config(), *chargers, co);
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return QueryValue(db, "SELECT state FROM donation") == "charged"; }));
  worker.Stop();

  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='debit' "
                           "AND account='receivable:opa'"),
            "100000");
  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='credit' "
                           "AND account='fund:Vi mien Trung'"),
            "100000");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM outbox WHERE purpose='success'"), "1");
  const std::string text = QueryValue(db, "SELECT text FROM outbox");
  EXPECT_NE(text.find("100.000 dong"), std::string::npos) << text;
  EXPECT_EQ(QueryValue(db, "SELECT source_addr || '>' || dest_addr FROM outbox"), "1407>84912345678");
}

TEST(PipelineTest, EveryMoIsRecordedValidOrNotAndInvalidTextsGetTheHelpReply) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_invalid");
  Harness h(TestConfig(db));

  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "1407", "ung ho")), smpp::status::kOk);
  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "1407", "CV 0")), smpp::status::kOk);
  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "1407", "CV 99999999999999999999")), smpp::status::kOk);
  EXPECT_EQ(h.Deliver(DeliverSm("12345", "1407", "CV 5")), smpp::status::kOk);   // not an MSISDN
  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "9999", "CV 5")), smpp::status::kOk);  // no campaign
  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "1407", "CV 1'); DROP TABLE donation; --")),
            smpp::status::kOk);

  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM inbound_message"), "6");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "0");
  EXPECT_EQ(QueryValue(db, "SELECT string_agg(outcome, ',' ORDER BY id) FROM inbound_message"),
            "syntax_error,too_many_units,too_many_units,invalid_msisdn,unknown_campaign,syntax_error");
  // The hostile text is stored verbatim and harmed nothing.
  EXPECT_EQ(QueryValue(db, "SELECT text FROM inbound_message ORDER BY id DESC LIMIT 1"),
            "CV 1'); DROP TABLE donation; --");
  // Help replies for the four texts we could answer, from the shortcode.
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM outbox WHERE purpose='syntax'"), "4");
  EXPECT_NE(QueryValue(db, "SELECT text FROM outbox LIMIT 1").find("Sai cu phap"), std::string::npos);
}

TEST(PipelineTest, Ucs2AndFullWidthDigitsAreDonations) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_ucs2");
  Harness h(TestConfig(db));
  // "cv ５" in UTF-16BE (full-width five).
  const std::string ucs2("\x00\x63\x00\x76\x00\x20\xFF\x15", 8);
  EXPECT_EQ(h.Deliver(DeliverSm("+84912345678", "1407", ucs2, 0, 8)), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT units || ' ' || amount_vnd FROM donation"), "5 100000");
}

TEST(PipelineTest, DatabaseUnreachableAnswersTheConfiguredTemporaryErrorAndStoresNothing) {
  DONAGATE_REQUIRE_POSTGRES();
  const int dead_port = donagate::testing::FreeTcpPort();
  config::Config c = TestConfig("host=127.0.0.1 port=" + std::to_string(dead_port) +
                                " dbname=x user=x connect_timeout=1");
  c.pipeline.temp_error_status = config::TempErrorStatus::kThrottled;
  Harness h(c);
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 5")), smpp::status::kThrottled);
  // While reconnecting, new MOs are refused at once (no waiting for timeouts).
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 5")), smpp::status::kThrottled);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(900));
  EXPECT_EQ(h.pipeline().counters().acked.load(), 0u);
  EXPECT_EQ(h.pipeline().counters().temp_errors.load(), 2u);
}

TEST(PipelineTest, BeyondMaxInflightTheTemporaryErrorIsAnsweredAtOnce) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_backpressure");
  config::Config c = TestConfig(db);
  IngestWriterOptions wo;
  wo.max_inflight = 2;
  wo.batch_size = 100;
  wo.linger = milliseconds(800);  // the first items wait for company: they stay in flight
  wo.idle_gap = std::chrono::microseconds(0);  // the whole linger, however quiet it gets
  Harness h(c, wo);
  LinkInfo info;
  info.link_name = "opa-1";
  info.operator_name = "opa";
  std::vector<std::shared_ptr<std::promise<uint32_t>>> promises;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    auto p = std::make_shared<std::promise<uint32_t>>();
    promises.push_back(p);
    h.pipeline().OnMessage(info, DeliverSm("0912345678", "1407", "CV " + std::to_string(i + 1)),
                           [p](uint32_t status) { p->set_value(status); });
  }
  // The two over the limit are refused without waiting for the batch ...
  EXPECT_EQ(promises[2]->get_future().get(), smpp::status::kXTAppn);
  EXPECT_EQ(promises[3]->get_future().get(), smpp::status::kXTAppn);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(500));
  // ... the two accepted ones are acked after their commit, and only they are stored.
  EXPECT_EQ(promises[0]->get_future().get(), smpp::status::kOk);
  EXPECT_EQ(promises[1]->get_future().get(), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT string_agg(units::text, ',' ORDER BY id) FROM donation"), "1,2");
}

TEST(PipelineTest, ConcatenatedMoIsAssembledAcrossARestart) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_concat");
  smpp::ConcatInfo first{0x42, 2, 1, false};
  smpp::ConcatInfo second{0x42, 2, 2, false};
  {
    Harness h(TestConfig(db));
    EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", smpp::BuildConcatUdh(first) + "CV",
                                  smpp::kEsmClassUdhi)),
              smpp::status::kOk);
    EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM mo_part WHERE consumed_at IS NULL"), "1");
    EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM inbound_message"), "0");
  }
  // A new process: the acknowledged part comes back from the database.
  Harness h(TestConfig(db));
  billing::Store store(db, {});
  ASSERT_TRUE(h.pipeline().RecoverFromStore(store).ok());
  EXPECT_EQ(h.pipeline().pending_concat_parts(), 1u);
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", smpp::BuildConcatUdh(second) + " 7",
                                smpp::kEsmClassUdhi)),
            smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT text || '|' || outcome || '|' || concat_total FROM inbound_message"),
            "CV 7|donation|2");
  EXPECT_EQ(QueryValue(db, "SELECT units FROM donation"), "7");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM mo_part WHERE consumed_at IS NULL"), "0");
}

TEST(PipelineTest, DailyCapAndKillSwitch) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_cap");
  Harness h(TestConfig(db));  // cap: 8 units per day
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 5")), smpp::status::kOk);
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 5")), smpp::status::kOk);

  auto chargers = ChargerSet::Create(h.io().get_executor(), h.config(), nullptr, nullptr);
  ChargingWorkerOptions co = WorkerOptions(db);
  co.start_paused = true;
  ChargingWorker worker(h.config(), *chargers, co);
  worker.Start();
  std::this_thread::sleep_for(milliseconds(300));
  // Paused: still receiving and recording, nothing charged.
  EXPECT_EQ(h.Deliver(DeliverSm("0987654321", "1407", "CV 1")), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation WHERE state='received'"), "3");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM ledger_entry"), "0");
  worker.SetPaused(false);
  ASSERT_TRUE(WaitFor([&] {
    return QueryValue(db, "SELECT count(*) FROM donation WHERE state IN ('charged','failed')") == "3";
  }));
  worker.Stop();
  EXPECT_EQ(QueryValue(db, "SELECT string_agg(state || ':' || coalesce(failure_reason,''), ',' ORDER BY id) "
                           "FROM donation"),
            "charged:,failed:daily_cap,charged:");
  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='debit'"), "120000");
  EXPECT_EQ(QueryValue(db, "SELECT string_agg(purpose, ',' ORDER BY donation_id) FROM outbox"),
            "success,daily_cap,success");
}

TEST(PipelineTest, SeveralChargingLanesChargeEveryDonationOnceAndKeepTheDailyCap) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_lanes");
  Harness h(TestConfig(db));  // cap: 8 units per subscriber and day
  // One subscriber asks for 12 units in six texts (only 8 may be charged), 60 others 1 each.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "CV 2")), smpp::status::kOk);
  for (int i = 0; i < 60; ++i) {
    EXPECT_EQ(h.Deliver(DeliverSm("09870000" + std::to_string(10 + i), "1407", "CV 1")), smpp::status::kOk);
  }

  auto chargers = ChargerSet::Create(h.io().get_executor(), h.config(), nullptr, nullptr);
  ASSERT_NE(chargers, nullptr);
  ChargingWorkerOptions co = WorkerOptions(db);
  co.threads = 3;      // three DB threads claiming side by side ...
  co.batch_size = 4;   // ... in small batches, so their claims interleave
  co.concurrency = 12;
  ChargingWorker worker(h.config(), *chargers, co);
  worker.Start();
  ASSERT_TRUE(WaitFor([&] {
    return QueryValue(db, "SELECT count(*) FROM donation WHERE state IN ('charged','failed')") == "66";
  }));
  worker.Stop();
  EXPECT_EQ(worker.recorded(), 66u);
  EXPECT_EQ(worker.inflight(), 0);
  EXPECT_EQ(QueryValue(db, "SELECT count(*) || ':' || sum(charged_units) FROM donation "
                           "WHERE msisdn = '84912345678' AND state = 'charged'"),
            "4:8");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation WHERE failure_reason = 'daily_cap'"), "2");
  // Every charged donation exactly one charge and one balanced journal; nothing else.
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM charge"), "64");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM (SELECT donation_id FROM ledger_entry GROUP BY 1 "
                           "HAVING count(*) <> 2 OR count(DISTINCT journal_id) <> 1) x"),
            "0");
  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='debit'"),
            std::to_string((8 + 60) * 20000));
  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='credit'"),
            std::to_string((8 + 60) * 20000));
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM outbox WHERE donation_id IS NOT NULL"), "66");
}

TEST(PipelineTest, WhileMosWaitForTheirCommitChargingClaimsOneBatchPerFloorPeriod) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_yield");
  Harness h(TestConfig(db));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(h.Deliver(DeliverSm("09870000" + std::to_string(10 + i), "1407", "CV 1")), smpp::status::kOk);
  }
  auto chargers = ChargerSet::Create(h.io().get_executor(), h.config(), nullptr, nullptr);
  ASSERT_NE(chargers, nullptr);
  std::atomic<bool> ingest_busy{true};
  ChargingWorkerOptions co = WorkerOptions(db);
  co.batch_size = 3;
  co.concurrency = 30;
  co.ingest_busy = [&] { return ingest_busy.load(); };
  co.yield_floor = std::chrono::seconds(60);
  ChargingWorker worker(h.config(), *chargers, co);
  worker.Start();
  // Busy: one batch (the floor), then nothing more for the rest of the period.
  ASSERT_TRUE(WaitFor([&] { return QueryValue(db, "SELECT count(*) FROM donation WHERE state = 'charged'") == "3"; }));
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation WHERE state = 'charged'"), "3");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation WHERE state = 'received'"), "7");
  // The burst is over: charging catches up at once.
  ingest_busy.store(false);
  ASSERT_TRUE(WaitFor([&] { return QueryValue(db, "SELECT count(*) FROM donation WHERE state = 'charged'") == "10"; }));
  worker.Stop();
  EXPECT_EQ(QueryValue(db, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction='debit'"), "200000");
}

TEST(PipelineTest, AReceiptParkedByARaceWithItsReplyIsAppliedBySweep) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_sweep");
  Harness h(TestConfig(db));
  EXPECT_EQ(h.Deliver(DeliverSm("0912345678", "1407", "hello")), smpp::status::kOk);
  // The state two concurrent transactions can leave behind: the reply's message id stored, and
  // its receipt parked because the receipt's transaction did not see that id yet.
  donagate::testing::ExecSql(db,
      "UPDATE outbox SET state='submitted', submitted_at=now();"
      "INSERT INTO outbox_message_id (outbox_id, operator, smsc_message_id) "
      "  SELECT id, operator, '1a2b' FROM outbox;"
      "INSERT INTO pending_receipt (operator, smsc_message_id, stat, received_at) "
      "  VALUES ('opa', '1a2b', 'DELIVRD', now() - interval '5 seconds')");
  prometheus::Registry registry;
  LinkManager links(h.io().get_executor(), registry, h.pipeline());
  ReplySenderOptions ro;
  ro.conninfo = db;
  ro.poll_interval = milliseconds(20);
  ReplySender sender(h.io().get_executor(), h.config(), links, ro);
  sender.Start();
  EXPECT_TRUE(WaitFor([&] { return QueryValue(db, "SELECT state FROM outbox") == "delivered"; },
                      milliseconds(10000)));
  sender.Stop();
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM pending_receipt"), "0");
  EXPECT_EQ(QueryValue(db, "SELECT receipt_stat FROM outbox"), "DELIVRD");
}

}  // namespace
}  // namespace donagate::daemon

namespace donagate::daemon {
namespace {

TEST(PipelineTest, ReloadedTemplatesAreUsedForRepliesRenderedAfterTheReload) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_reload");
  Harness h(TestConfig(db));
  EXPECT_EQ(h.Deliver(DeliverSm("84912345678", "1407", "ung ho")), smpp::status::kOk);
  config::ReplyTemplates reloaded = h.config().campaigns.at(0).templates;
  reloaded.syntax = "Cu phap moi: {keyword} n gui {shortcode}";
  SetReloadedTemplates({{"Vi mien Trung", reloaded}});
  EXPECT_EQ(h.Deliver(DeliverSm("84912345679", "1407", "ung ho")), smpp::status::kOk);
  SetReloadedTemplates({});
  EXPECT_NE(QueryValue(db, "SELECT text FROM outbox WHERE dest_addr = '84912345678'").find("Sai cu phap"),
            std::string::npos);
  EXPECT_EQ(QueryValue(db, "SELECT text FROM outbox WHERE dest_addr = '84912345679'"), "Cu phap moi: CV n gui 1407");
}

// Issue 15, defect 1: with UDHI set the first octet is the header length (GSM 03.40). A header
// that does not parse, or a concatenation that does not, makes the message undecodable: it is
// recorded and never charged, and never re-read as text (the header octets 20 43 56 20 31
// read as GSM 7-bit are " CV 1").
TEST(PipelineTest, MalformedHeadersOrConcatenationAreUndecodableAndNeverCharged) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_bad_udh");
  Harness h(TestConfig(db));
  struct Case {
    const char* what;
    smpp::Pdu pdu;
  };
  std::vector<Case> cases;
  cases.push_back({"UDHL 32 with 5 octets", DeliverSm("84916000001", "1407", std::string("\x20\x43\x56\x20\x31", 5), smpp::kEsmClassUdhi)});
  cases.push_back({"UDHI, empty", DeliverSm("84916000002", "1407", "", smpp::kEsmClassUdhi)});
  cases.push_back({"concat IE of 2 octets", DeliverSm("84916000003", "1407", std::string("\x04\x00\x02\x01\x01" "CV 1", 9), smpp::kEsmClassUdhi)});
  cases.push_back({"concat total 0", DeliverSm("84916000004", "1407", std::string("\x05\x00\x03\x07\x00\x01" "CV 1", 10), smpp::kEsmClassUdhi)});
  cases.push_back({"concat seq > total", DeliverSm("84916000005", "1407", std::string("\x05\x00\x03\x07\x02\x03" "CV 1", 10), smpp::kEsmClassUdhi)});
  smpp::Pdu sar_partial = DeliverSm("84916000006", "1407", "CV 1");
  std::get<smpp::DeliverSm>(sar_partial.body).tlvs.Set(smpp::tlv_tag::kSarMsgRefNum, std::string("\x00\x07", 2));
  cases.push_back({"sar_msg_ref_num alone", sar_partial});
  smpp::Pdu sar_bad = DeliverSm("84916000007", "1407", "CV 1");
  auto& tlvs = std::get<smpp::DeliverSm>(sar_bad.body).tlvs;
  tlvs.Set(smpp::tlv_tag::kSarMsgRefNum, std::string("\x00\x07", 2));
  tlvs.Set(smpp::tlv_tag::kSarTotalSegments, std::string("\x02", 1));
  tlvs.Set(smpp::tlv_tag::kSarSegmentSeqnum, std::string("\x03", 1));
  cases.push_back({"sar seq 3 of 2", sar_bad});
  for (const Case& c : cases) {
    EXPECT_EQ(h.Deliver(c.pdu), smpp::status::kOk) << c.what;  // recorded, so acknowledged
  }
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM inbound_message"), std::to_string(cases.size()));
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM inbound_message WHERE outcome = 'undecodable'"),
            std::to_string(cases.size()))
      << QueryValue(db, "SELECT string_agg(outcome || ':' || coalesce(outcome_detail, ''), ', ' ORDER BY id) FROM inbound_message");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "0");
  // At most the help text, never a thank-you.
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM outbox WHERE purpose <> 'syntax'"), "0");
  // The bytes are kept as received for finance and operators.
  EXPECT_EQ(QueryValue(db, "SELECT encode(raw_payload, 'hex') FROM inbound_message ORDER BY id LIMIT 1"),
            "2043562031");
  EXPECT_EQ(QueryValue(db, "SELECT outcome_detail FROM inbound_message ORDER BY id LIMIT 1"),
            "user data header: user data header runs past the end of short_message");
}

// Issue 15, defect 2: "0084…" is the international prefix form; it used to be recorded as
// invalid_msisdn with no reply and no log line.
TEST(PipelineTest, SourceAddressWithInternationalPrefix0084IsADonation) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_0084");
  Harness h(TestConfig(db));
  EXPECT_EQ(h.Deliver(DeliverSm("0084916000005", "1407", "CV 2")), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT outcome || ' ' || msisdn FROM inbound_message"), "donation 84916000005");
  EXPECT_EQ(QueryValue(db, "SELECT msisdn || ' ' || amount_vnd FROM donation"), "84916000005 40000");
}

// Issue 13: without an MO-id TLV, a redelivery of a committed MO whose ack may have been lost
// (after a crash, or around a session's unexpected close) is recorded as a redelivery and
// acknowledged, never a second donation; each uncertain MO absorbs one redelivery.
TEST(PipelineTest, RedeliveryOfAnUncertainMoIsRecordedNotDonatedAgain) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_redeliver");
  Harness h(TestConfig(db));
  EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 2")), smpp::status::kOk);
  const std::string original = QueryValue(db, "SELECT id FROM inbound_message");
  billing::UncertainMo mo;
  mo.inbound_message_id = std::stoll(original);
  mo.operator_name = "opa";
  mo.source_addr = "84916000001";
  mo.dest_addr = "1407";
  mo.raw_payload = "CV 2";
  h.pipeline().AddUncertain({mo});

  // A different MO is not affected; the identical one is the redelivery.
  EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 3")), smpp::status::kOk);
  EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 2")), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "2");
  EXPECT_EQ(QueryValue(db, "SELECT outcome || ' ' || redelivery_of FROM inbound_message WHERE outcome = 'redelivery'"),
            "redelivery " + original);
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM outbox WHERE inbound_message_id = "
                           "(SELECT id FROM inbound_message WHERE outcome = 'redelivery')"), "0");
  // Used up: the same text again is a genuine new donation.
  EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 2")), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "3");
}

TEST(PipelineTest, AnUnexpectedSessionCloseMakesItsLastAcksUncertainAnOrderlyOneDoesNot) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_session_close");
  Harness h(TestConfig(db));
  LinkInfo session;
  session.link_name = "opa-1";
  session.operator_name = "opa";
  auto deliver_on = [&](uint64_t session_id, const std::string& from, const std::string& text) {
    auto promise = std::make_shared<std::promise<uint32_t>>();
    auto future = promise->get_future();
    session.session_id = session_id;
    h.pipeline().OnMessage(session, DeliverSm(from, "1407", text),
                           [promise](uint32_t status) { promise->set_value(status); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return future.get();
  };
  EXPECT_EQ(deliver_on(1, "84916000001", "CV 1"), smpp::status::kOk);
  EXPECT_EQ(deliver_on(2, "84916000002", "CV 1"), smpp::status::kOk);
  // Give the completions time to reach the pipeline's bookkeeping (they run after the ack).
  std::this_thread::sleep_for(milliseconds(100));
  session.session_id = 1;
  h.pipeline().OnSessionClosed(session, /*orderly=*/false);  // the SMSC dropped the link
  session.session_id = 2;
  h.pipeline().OnSessionClosed(session, /*orderly=*/true);   // we unbound: answers were read
  EXPECT_EQ(deliver_on(3, "84916000001", "CV 1"), smpp::status::kOk);
  EXPECT_EQ(deliver_on(3, "84916000002", "CV 1"), smpp::status::kOk);
  EXPECT_EQ(QueryValue(db, "SELECT string_agg(source_addr || ':' || outcome, ',' ORDER BY id) FROM inbound_message"),
            "84916000001:donation,84916000002:donation,84916000001:redelivery,84916000002:donation");
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "3");
}

// A run that ended without EndRun leaves its last MOs suspect for the next start; a stored
// redelivery uses one up for good, and the window bounds how long they stay suspect.
TEST(PipelineTest, BeginRunReturnsTheMosOfAnUncleanStopUntilRedelivered) {
  DONAGATE_REQUIRE_POSTGRES();
  const std::string db = Migrated("pipe_runs");
  billing::StoreOptions so;
  so.instance_id = "test-1";
  billing::Store store(db, so);
  int64_t run1 = 0, run2 = 0, run3 = 0, run4 = 0;
  std::vector<billing::UncertainMo> uncertain;
  ASSERT_TRUE(store.BeginRun(std::chrono::seconds(10), std::chrono::seconds(600), &run1, &uncertain).ok());
  EXPECT_TRUE(uncertain.empty());
  {
    Harness h(TestConfig(db));
    EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 4")), smpp::status::kOk);
    EXPECT_EQ(h.Deliver(DeliverSm("84916000002", "1407", "hello")), smpp::status::kOk);
  }
  ASSERT_TRUE(store.TouchRun(run1).ok());
  // run1 "crashes" (no EndRun).
  ASSERT_TRUE(store.BeginRun(std::chrono::seconds(10), std::chrono::seconds(600), &run2, &uncertain).ok());
  ASSERT_EQ(uncertain.size(), 2u);
  EXPECT_EQ(uncertain[0].source_addr, "84916000001");
  EXPECT_EQ(uncertain[0].raw_payload, "CV 4");
  EXPECT_EQ(std::to_string(uncertain[0].inbound_message_id),
            QueryValue(db, "SELECT id FROM inbound_message WHERE source_addr = '84916000001'"));
  {
    Harness h(TestConfig(db));
    h.pipeline().AddUncertain(uncertain);
    EXPECT_EQ(h.Deliver(DeliverSm("84916000001", "1407", "CV 4")), smpp::status::kOk);
  }
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM donation"), "1");
  ASSERT_TRUE(store.EndRun(run2).ok());
  // run2 stopped cleanly, but run1's other MO is still suspect (not redelivered yet); the one
  // that was redelivered is not.
  ASSERT_TRUE(store.BeginRun(std::chrono::seconds(10), std::chrono::seconds(600), &run3, &uncertain).ok());
  ASSERT_EQ(uncertain.size(), 1u);
  EXPECT_EQ(uncertain[0].source_addr, "84916000002");
  ASSERT_TRUE(store.EndRun(run3).ok());
  // Window 0: nothing is suspect any more.
  ASSERT_TRUE(store.BeginRun(std::chrono::seconds(10), std::chrono::seconds(0), &run4, &uncertain).ok());
  EXPECT_TRUE(uncertain.empty());
}

}  // namespace
}  // namespace donagate::daemon
