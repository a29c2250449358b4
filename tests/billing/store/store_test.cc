// The PostgreSQL store against a real server: group-commit ingest, dedupe, concatenation,
// receipts, SKIP LOCKED claims and leases, charge outcomes with their ledger rows, the daily
// cap, and failure behaviour when the connection dies mid-batch.
#include "billing/store/store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "billing/store/migrate.h"
#include "tests/common/test_pg.h"

namespace donagate::billing {
namespace {

using ::donagate::testing::CreateFreshDatabase;
using ::donagate::testing::ExecSql;
using ::donagate::testing::QueryValue;
using namespace std::chrono_literals;

int64_t Count(const std::string& db, const std::string& sql) { return std::stoll(QueryValue(db, sql)); }

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DONAGATE_REQUIRE_POSTGRES();
    db_ = CreateFreshDatabase(::testing::UnitTest::GetInstance()->current_test_info()->name());
    StoreStatus st = Migrate(db_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    store_ = MakeStore("instance-a");
  }

  std::unique_ptr<Store> MakeStore(const std::string& instance) {
    StoreOptions o;
    o.instance_id = instance;
    o.application_name = "donagate-store-test";
    return std::make_unique<Store>(db_, o);
  }

  static InboundMessage Message(const std::string& msisdn, const std::string& text,
                                MessageOutcome outcome, const std::string& mo_id = "") {
    InboundMessage m;
    m.link = "viettel-1";
    m.operator_name = "viettel";
    m.source_addr = msisdn;
    m.msisdn = outcome == MessageOutcome::kInvalidMsisdn ? "" : msisdn;
    m.dest_addr = "1407";
    m.data_coding = 0;
    m.raw_payload = text;
    m.text = text;
    m.smsc_mo_id = mo_id;
    m.received_at = StoreClock::now();
    m.outcome = outcome;
    return m;
  }

  // What the reply sender records after a submit_sm_resp (one record per call here).
  static StoreStatus Submitted(Store& store, int64_t reply_id, std::vector<std::string> message_ids) {
    Store::ReplyResultRecord r;
    r.kind = Store::ReplyResultRecord::Kind::kSubmitted;
    r.reply_id = reply_id;
    r.smsc_message_ids = std::move(message_ids);
    return One(store, r);
  }
  static StoreStatus Retry(Store& store, int64_t reply_id, StoreTime at, const std::string& reason) {
    Store::ReplyResultRecord r;
    r.kind = Store::ReplyResultRecord::Kind::kRetry;
    r.reply_id = reply_id;
    r.next_attempt_at = at;
    r.reason = reason;
    return One(store, r);
  }
  static StoreStatus Failed(Store& store, int64_t reply_id, const std::string& reason) {
    Store::ReplyResultRecord r;
    r.kind = Store::ReplyResultRecord::Kind::kFailed;
    r.reply_id = reply_id;
    r.reason = reason;
    return One(store, r);
  }
  static StoreStatus One(Store& store, const Store::ReplyResultRecord& r) {
    std::vector<StoreStatus> results;
    StoreStatus st = store.RecordReplyResults({r}, &results);
    if (!st.ok() || results.empty()) return st;
    return results[0];
  }
  // A delivery receipt as the pipeline stores it (its MO row + the receipt, one ingest item).
  void IngestReceipt(const ReceiptInfo& receipt) {
    IngestItem dlr;
    dlr.message = Message("84912345679", "id:" + receipt.smsc_message_id + " stat:" + receipt.stat,
                          MessageOutcome::kReceipt);
    dlr.message->operator_name = receipt.operator_name;
    dlr.message->esm_class = 0x04;
    dlr.receipt = receipt;
    std::vector<IngestResult> results;
    ASSERT_TRUE(store_->IngestBatch({dlr}, &results).ok());
  }

  // An invalid MO ("hello") from `msisdn` with its help reply queued.
  static IngestItem HelpReplyItem(const std::string& msisdn, const std::string& operator_name = "viettel") {
    IngestItem item;
    item.message = Message(msisdn, "hello", MessageOutcome::kSyntaxError);
    item.message->operator_name = operator_name;
    item.reply = Reply(msisdn, "Sai cu phap");
    return item;
  }

  static IngestItem DonationItem(const std::string& msisdn, int units,
                                 config::ChargingMode mode = config::ChargingMode::kWhole,
                                 const std::string& mo_id = "", int daily_cap = 0) {
    IngestItem it;
    it.message = Message(msisdn, "CV " + std::to_string(units), MessageOutcome::kDonation, mo_id);
    DonationDraft d;
    d.campaign = "lu-lut";
    d.shortcode = "1407";
    d.units = units;
    d.unit_price_vnd = 20000;
    d.amount_vnd = 20000LL * units;
    d.charging_mode = mode;
    d.daily_cap_units = daily_cap;
    it.donation = d;
    return it;
  }

  // Ingests one donation and returns its id.
  int64_t IngestDonation(const std::string& msisdn, int units,
                         config::ChargingMode mode = config::ChargingMode::kWhole) {
    std::vector<IngestResult> results;
    StoreStatus st = store_->IngestBatch({DonationItem(msisdn, units, mode)}, &results);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return results.empty() ? 0 : results[0].donation_id;
  }

  DonationWork ClaimOne(int64_t donation_id) {
    std::vector<DonationWork> work;
    StoreStatus st = store_->ClaimDonations(100, 60s, {}, &work);
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (auto& w : work)
      if (w.donation_id == donation_id) return w;
    ADD_FAILURE() << "donation " << donation_id << " was not claimed";
    return {};
  }

  static StoredCharge Charge(const std::string& key, int unit, int units, int64_t amount,
                             ChargeOutcome outcome) {
    StoredCharge c;
    c.key = key;
    c.unit_index = unit;
    c.units = units;
    c.amount_vnd = amount;
    c.outcome = outcome;
    if (outcome == ChargeOutcome::kCharged) c.operator_reference = "op-" + key;
    return c;
  }

  static ReplyDraft Reply(const std::string& msisdn, const std::string& text) {
    ReplyDraft r;
    r.purpose = "success";
    r.source_addr = "1407";
    r.dest_addr = msisdn;
    r.text = text;
    return r;
  }

  std::string db_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, IngestBatchStoresEveryMessageAndDedupesSmscMoId) {
  std::vector<IngestItem> items;
  items.push_back(DonationItem("84912345678", 5, config::ChargingMode::kWhole, "mo-1"));
  IngestItem bad;
  bad.message = Message("84912345679", "XIN CHAO", MessageOutcome::kSyntaxError, "mo-2");
  bad.reply = Reply("84912345679", "Sai cu phap. De ung ho, soan CV n gui 1407");
  bad.reply->purpose = "syntax";
  items.push_back(bad);
  IngestItem invalid;
  invalid.message = Message("12345", "CV 1", MessageOutcome::kInvalidMsisdn);
  items.push_back(invalid);
  // The same SMSC MO id twice in one batch: the second one is a duplicate.
  items.push_back(DonationItem("84912345678", 5, config::ChargingMode::kWhole, "mo-1"));
  // A message with bytes that are not UTF-8 is stored as received.
  IngestItem binary = DonationItem("84987654321", 2);
  binary.message->raw_payload = std::string("\x00\x43\x00\x56\xff", 5);
  items.push_back(binary);

  std::vector<IngestResult> results;
  StoreStatus st = store_->IngestBatch(items, &results);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), items.size());
  EXPECT_FALSE(results[0].duplicate);
  EXPECT_GT(results[0].inbound_message_id, 0);
  EXPECT_GT(results[0].donation_id, 0);
  EXPECT_GT(results[1].inbound_message_id, 0);
  EXPECT_EQ(results[1].donation_id, 0);
  EXPECT_GT(results[1].reply_id, 0);
  EXPECT_GT(results[2].inbound_message_id, 0);
  EXPECT_TRUE(results[3].duplicate);
  EXPECT_EQ(results[3].inbound_message_id, 0);
  EXPECT_GT(results[4].donation_id, 0);

  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message"), 4);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE state = 'received'"), 2);
  // The ingest writes no history row: the donation's received_at (and its MO) are its arrival.
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_transition"), 0);
  EXPECT_EQ(QueryValue(db_, "SELECT amount_vnd FROM donation WHERE id = " + std::to_string(results[0].donation_id)),
            "100000");
  EXPECT_EQ(QueryValue(db_, "SELECT outcome || '/' || coalesce(msisdn, 'NULL') FROM inbound_message WHERE id = " +
                                std::to_string(results[2].inbound_message_id)),
            "invalid_msisdn/NULL");
  EXPECT_EQ(QueryValue(db_, "SELECT encode(raw_payload, 'hex') FROM inbound_message WHERE id = " +
                                std::to_string(results[4].inbound_message_id)),
            "00430056ff");
  EXPECT_EQ(QueryValue(db_, "SELECT purpose || ':' || dest_addr || ':' || state FROM outbox"),
            "syntax:84912345679:pending");

  // Redelivery of an acknowledged MO (same SMSC id) in a later batch: duplicate, nothing new.
  std::vector<IngestResult> again;
  st = store_->IngestBatch({DonationItem("84912345678", 5, config::ChargingMode::kWhole, "mo-1")}, &again);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].duplicate);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 2);
  // Without an SMSC id, two identical texts are two donations.
  IngestDonation("84912345678", 5);
  IngestDonation("84912345678", 5);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE msisdn = '84912345678'"), 3);
}

TEST_F(StoreTest, BytesThatAreNotTextAreEscapedNotRefused) {
  // A broken SMSC sends a source address with a stray byte, a NUL and invalid UTF-8 in the text:
  // the MO is recorded (text columns escape the bad bytes as \xNN), not refused forever.
  IngestItem odd;
  odd.message = Message("84912345678", "", MessageOutcome::kInvalidMsisdn, std::string("id\0\xfe", 4));
  odd.message->source_addr = "849\xff" "12";
  odd.message->text = std::string("CV\0 5 \xc3\x28 \xe2\x82\xac", 12);  // NUL, bad 2-byte seq, euro
  odd.message->raw_payload = odd.message->text;
  odd.message->outcome_detail = "quote \" backslash \\ comma ,{}";
  std::vector<IngestResult> results;
  StoreStatus st = store_->IngestBatch({odd}, &results);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::string id = std::to_string(results[0].inbound_message_id);
  EXPECT_EQ(QueryValue(db_, "SELECT source_addr FROM inbound_message WHERE id = " + id), "849\\xff12");
  EXPECT_EQ(QueryValue(db_, "SELECT text FROM inbound_message WHERE id = " + id), "CV\\x00 5 \\xc3( \u20ac");
  EXPECT_EQ(QueryValue(db_, "SELECT smsc_mo_id FROM inbound_message WHERE id = " + id), "id\\x00\\xfe");
  EXPECT_EQ(QueryValue(db_, "SELECT outcome_detail FROM inbound_message WHERE id = " + id),
            "quote \" backslash \\ comma ,{}");
  EXPECT_EQ(QueryValue(db_, "SELECT length(raw_payload) FROM inbound_message WHERE id = " + id), "12");

  // A donation whose msisdn is not normalised is a caller bug: refused with a clear message.
  IngestItem bad = DonationItem("0912345678", 1);
  st = store_->IngestBatch({bad}, &results);
  EXPECT_TRUE(st.permanent());
  EXPECT_NE(st.message().find("0912345678"), std::string::npos) << st.message();
}

TEST_F(StoreTest, InvalidItemsFailTheBatchPermanentlyAndStoreNothing) {
  IngestItem ok = DonationItem("84912345678", 1);
  IngestItem wrong = DonationItem("84912345678", 3);
  wrong.donation->amount_vnd = 1;  // not units x price
  std::vector<IngestResult> results;
  StoreStatus st = store_->IngestBatch({ok, wrong}, &results);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  EXPECT_NE(st.message().find("item 1"), std::string::npos) << st.message();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message"), 0);

  IngestItem no_donation;
  no_donation.message = Message("84912345678", "CV 1", MessageOutcome::kDonation);
  EXPECT_TRUE(store_->IngestBatch({no_donation}, &results).permanent());
  IngestItem empty;
  EXPECT_TRUE(store_->IngestBatch({empty}, &results).permanent());
}

TEST_F(StoreTest, ConcatenatedPartsAreKeptThenConsumedByTheCompletingPart) {
  ConcatSetKey set{"viettel-1", "84912345678", "1407", 0x2a, false, 3};
  auto part = [&](int seq, const std::string& mo_id) {
    IngestItem it;
    ConcatPart p;
    p.set = set;
    p.operator_name = "viettel";
    p.seq = seq;
    p.raw_payload = "part" + std::to_string(seq);
    p.text = p.raw_payload;
    p.smsc_mo_id = mo_id;
    p.received_at = StoreClock::now();
    it.part = p;
    return it;
  };
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({part(1, "p-1"), part(2, "p-2")}, &results).ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_GT(results[0].part_id, 0);
  EXPECT_EQ(results[0].inbound_message_id, 0);

  // After a restart the reassembler reloads them.
  auto fresh = MakeStore("instance-a");
  std::vector<StoredPart> pending;
  ASSERT_TRUE(fresh->LoadPendingParts({"viettel-1"}, &pending).ok());
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].part.seq, 1);
  EXPECT_EQ(pending[1].part.raw_payload, "part2");
  EXPECT_EQ(pending[0].part.set.concat_ref, 0x2a);
  std::vector<StoredPart> other_link;
  ASSERT_TRUE(fresh->LoadPendingParts({"mobifone-1"}, &other_link).ok());
  EXPECT_TRUE(other_link.empty());

  // A redelivered part (same SMSC id) is a duplicate.
  ASSERT_TRUE(store_->IngestBatch({part(2, "p-2")}, &results).ok());
  EXPECT_TRUE(results[0].duplicate);

  // The third part completes the set: part + assembled donation + the set consumed, atomically.
  IngestItem last = DonationItem("84912345678", 3);
  last.part = part(3, "p-3").part;
  last.message->raw_payload = "part1part2part3";
  last.message->concat_ref = 0x2a;
  last.message->concat_total = 3;
  last.consume_set = set;
  ASSERT_TRUE(store_->IngestBatch({last}, &results).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_GT(results[0].part_id, 0);
  EXPECT_GT(results[0].inbound_message_id, 0);
  EXPECT_GT(results[0].donation_id, 0);
  ASSERT_TRUE(fresh->LoadPendingParts({}, &pending).ok());
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM mo_part WHERE consumed_by = " +
                           std::to_string(results[0].inbound_message_id)),
            3);
  EXPECT_EQ(QueryValue(db_, "SELECT concat_total FROM inbound_message WHERE id = " +
                                std::to_string(results[0].inbound_message_id)),
            "3");

  // Redelivery of the completing part after a crash: duplicate, no second donation.
  ASSERT_TRUE(store_->IngestBatch({last}, &results).ok());
  EXPECT_TRUE(results[0].duplicate);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 1);
}

TEST_F(StoreTest, ReceiptBeforeSubmitRespIsAppliedWhenTheIdIsStored) {
  IngestItem bad;
  bad.message = Message("84912345679", "hello", MessageOutcome::kSyntaxError);
  bad.reply = Reply("84912345679", "Sai cu phap");
  IngestItem bad2 = bad;
  bad2.message->source_addr = bad2.message->msisdn = bad2.reply->dest_addr = "84912345670";
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({bad, bad2}, &results).ok());

  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].dest_addr, "84912345679");
  EXPECT_EQ(replies[0].source_addr, "1407");
  std::vector<OutboxReply> none;
  ASSERT_TRUE(store_->ClaimReplies({"mobifone"}, 10, 30s, &none).ok());
  EXPECT_TRUE(none.empty());

  // The DLR for reply 0 overtakes its submit_sm_resp.
  IngestItem dlr;
  dlr.message = Message("84912345679", "id:ABC123 stat:DELIVRD", MessageOutcome::kReceipt);
  dlr.message->esm_class = 0x04;
  dlr.receipt = ReceiptInfo{"viettel", "ABC123", "DELIVRD", "000", StoreClock::now()};
  ASSERT_TRUE(store_->IngestBatch({dlr}, &results).ok());
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message WHERE outcome = 'receipt'"), 1);

  ASSERT_TRUE(Submitted(*store_, replies[0].id, {"ABC123"}).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT state || '/' || receipt_stat FROM outbox WHERE id = " + std::to_string(replies[0].id)),
            "delivered/DELIVRD");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt"), 0);

  // Normal order for reply 1: submitted, then a failure receipt.
  ASSERT_TRUE(Submitted(*store_, replies[1].id, {"XYZ"}).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM outbox WHERE id = " + std::to_string(replies[1].id)), "submitted");
  IngestReceipt(ReceiptInfo{"viettel", "XYZ", "UNDELIV", "001", std::nullopt});
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt"), 0) << "it matched its reply";
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM outbox WHERE id = " + std::to_string(replies[1].id)), "undeliverable");
  // Same id at another operator does not match: parked.
  IngestReceipt(ReceiptInfo{"mobifone", "XYZ", "DELIVRD", "", std::nullopt});
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt WHERE operator = 'mobifone'"), 1);
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM outbox WHERE id = " + std::to_string(replies[1].id)), "undeliverable");
  int64_t backlog = -1;
  ASSERT_TRUE(store_->CountOutboxBacklog(&backlog).ok());
  EXPECT_EQ(backlog, 0);
  // The unmatched one stays parked until purged.
  int64_t purged = -1;
  ASSERT_TRUE(store_->PurgePendingReceipts(1h, &purged).ok());
  EXPECT_EQ(purged, 0);
  ExecSql(db_, "UPDATE pending_receipt SET received_at = now() - interval '2 hours'");
  ASSERT_TRUE(store_->PurgePendingReceipts(1h, &purged).ok());
  EXPECT_EQ(purged, 1);
}

TEST_F(StoreTest, ReceiptsOfOneBatchApplyInArrivalOrderAndAFailureIsNeverOverwritten) {
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({HelpReplyItem("84912345601"), HelpReplyItem("84912345602")}, &results).ok());
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 2u);
  ASSERT_TRUE(Submitted(*store_, replies[0].id, {"P1", "P2"}).ok());  // two parts
  ASSERT_TRUE(Submitted(*store_, replies[1].id, {"Q1"}).ok());
  auto dlr = [&](const std::string& id, const std::string& stat) {
    IngestItem item;
    item.message = Message("84912345601", "id:" + id + " stat:" + stat, MessageOutcome::kReceipt);
    item.message->esm_class = 0x04;
    item.receipt = ReceiptInfo{"viettel", id, stat, "000", StoreClock::now()};
    return item;
  };
  // One batch: part 1 failed, part 2 delivered after it; reply 1 en route, then delivered.
  ASSERT_TRUE(store_->IngestBatch({dlr("P1", "UNDELIV"), dlr("Q1", "ENROUTE"), dlr("P2", "DELIVRD"),
                                   dlr("Q1", "DELIVRD")},
                                  &results).ok());
  auto row = [&](int64_t id) {
    return QueryValue(db_, "SELECT state || '/' || receipt_stat FROM outbox WHERE id = " + std::to_string(id));
  };
  EXPECT_EQ(row(replies[0].id), "undeliverable/DELIVRD");  // the failure stays; the last stat is kept
  EXPECT_EQ(row(replies[1].id), "delivered/DELIVRD");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt"), 0);
}

// The ingest applies a batch's receipts as one set statement; apply_receipt() (0005) applies
// one. For every pair of receipts of one reply (and triples ending in DELIVRD or ENROUTE) (and one of an unknown message
// id in the same batch), the reply must end exactly as apply_receipt() called per receipt in
// arrival order leaves its twin: state, stat, error, and what was parked.
TEST_F(StoreTest, ABatchOfReceiptsEndsAsApplyReceiptPerReceiptInArrivalOrder) {
  const std::vector<std::string> stats = {"DELIVRD", "UNDELIV", "ENROUTE", "EXPIRED", "REJECTD", "ACCEPTD"};
  std::vector<std::vector<std::string>> sequences;
  for (const auto& a : stats) {
    sequences.push_back({a});
    for (const auto& b : stats) {
      sequences.push_back({a, b});
      if (a == "DELIVRD" || a == "ENROUTE")
        for (const auto& c : {std::string("DELIVRD"), std::string("ENROUTE")}) sequences.push_back({a, b, c});
    }
  }
  const std::map<std::string, std::string> expected = {
      {"UNDELIV DELIVRD ", "undeliverable/DELIVRD/001"},  // a failure is never overwritten
      {"ENROUTE ", "submitted/ENROUTE/000"},              // an intermediate stat keeps the state
      {"DELIVRD EXPIRED ", "expired/EXPIRED/001"},        // delivered is not final against a failure
      {"ENROUTE DELIVRD ENROUTE ", "delivered/ENROUTE/002"}};
  int checked = 0;
  std::vector<IngestResult> results;
  int n = 0;
  for (const auto& seq : sequences) {
    ++n;
    const std::string tag = std::to_string(n);
    // Twin replies: B gets the batch, T (its twin) gets apply_receipt() per receipt.
    ASSERT_TRUE(store_->IngestBatch({HelpReplyItem("849" + std::to_string(10000000 + 2 * n)),
                                     HelpReplyItem("849" + std::to_string(10000001 + 2 * n))},
                                    &results).ok());
    const int64_t b = results[0].reply_id, t = results[1].reply_id;
    ASSERT_TRUE(Submitted(*store_, b, {"B" + tag}).ok());
    ASSERT_TRUE(Submitted(*store_, t, {"T" + tag}).ok());
    std::vector<IngestItem> batch;
    std::string twin_sql;
    for (size_t i = 0; i < seq.size(); ++i) {
      IngestItem item;
      item.message = Message("849" + std::to_string(10000000 + 2 * n), "id:B" + tag + " stat:" + seq[i],
                             MessageOutcome::kReceipt);
      item.message->esm_class = 0x04;
      item.receipt = ReceiptInfo{"viettel", "B" + tag, seq[i], "00" + std::to_string(i), StoreClock::now()};
      batch.push_back(item);
      twin_sql += "SELECT apply_receipt('viettel', 'T" + tag + "', '" + seq[i] + "', '00" + std::to_string(i) +
                  "', now(), NULL);";
      if (i == 0) {  // a receipt no reply carries, in the middle of the batch
        IngestItem stray = item;
        stray.receipt->smsc_message_id = "X" + tag;
        batch.push_back(stray);
        twin_sql += "SELECT apply_receipt('viettel', 'Y" + tag + "', '" + seq[i] + "', '000', now(), NULL);";
      }
    }
    ExecSql(db_, twin_sql);
    ASSERT_TRUE(store_->IngestBatch(batch, &results).ok());
    auto row = [&](int64_t id) {
      return QueryValue(db_, "SELECT state || '/' || receipt_stat || '/' || receipt_err FROM outbox WHERE id = " +
                                 std::to_string(id));
    };
    std::string seq_text;
    for (const auto& x : seq) seq_text += x + " ";
    EXPECT_EQ(row(b), row(t)) << "receipts " << seq_text;
    // A few concrete outcomes, so the twins cannot agree on something both got wrong.
    if (auto it = expected.find(seq_text); it != expected.end()) {
      EXPECT_EQ(row(b), it->second) << "receipts " << seq_text;
      ++checked;
    }
    EXPECT_EQ(QueryValue(db_, "SELECT string_agg(stat, ',' ORDER BY id) FROM pending_receipt WHERE smsc_message_id = 'X" +
                                  tag + "'"),
              QueryValue(db_, "SELECT string_agg(stat, ',' ORDER BY id) FROM pending_receipt WHERE smsc_message_id = 'Y" +
                                  tag + "'"))
        << "receipts " << seq_text;
  }
  EXPECT_EQ(checked, 4) << "the concrete cases below were all met";
}

TEST_F(StoreTest, ReplyClaimsTakeTheOldestAcrossTheListedOperatorsOnly) {
  // Three operators' help replies, queued one batch at a time (so their queue times differ).
  std::vector<std::pair<std::string, int64_t>> queued;  // operator, outbox id
  for (int i = 0; i < 9; ++i) {
    const std::string op = i % 3 == 0 ? "viettel" : i % 3 == 1 ? "mobifone" : "vinaphone";
    std::vector<IngestResult> results;
    ASSERT_TRUE(store_->IngestBatch({HelpReplyItem("8491234561" + std::to_string(i), op)}, &results).ok());
    queued.push_back({op, results[0].reply_id});
  }
  // Four oldest of viettel + mobifone: ids 0, 1, 3, 4 in queue order; vinaphone untouched.
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel", "mobifone"}, 4, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].id, queued[0].second);
  EXPECT_EQ(replies[1].id, queued[1].second);
  EXPECT_EQ(replies[2].id, queued[3].second);
  EXPECT_EQ(replies[3].id, queued[4].second);
  // Rows the claim looked at but did not take are free for the next claim.
  ASSERT_TRUE(store_->ClaimReplies({"viettel", "mobifone", "viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].id, queued[6].second);
  EXPECT_EQ(replies[1].id, queued[7].second);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox WHERE operator = 'vinaphone' AND state = 'pending'"), 3);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox WHERE state = 'claimed'"), 6);
}

TEST_F(StoreTest, AClaimLooksPastAQueueHeadThatIsAllLeased) {
  // Claims read up to a horizon (the 4 × limit-th open item); when another instance holds
  // everything before it, the claim must still find what waits behind.
  std::vector<int64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(IngestDonation("8491234570" + std::to_string(i), 1));
  auto other = MakeStore("instance-b");
  std::vector<DonationWork> work;
  ASSERT_TRUE(other->ClaimDonations(6, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 6u);
  ASSERT_TRUE(store_->ClaimDonations(1, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].donation_id, ids[6]);

  for (int i = 0; i < 8; ++i) {
    std::vector<IngestResult> results;
    ASSERT_TRUE(store_->IngestBatch({HelpReplyItem("8491234571" + std::to_string(i))}, &results).ok());
  }
  std::vector<OutboxReply> replies, mine;
  ASSERT_TRUE(other->ClaimReplies({"viettel"}, 6, 60s, &replies).ok());
  ASSERT_EQ(replies.size(), 6u);
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 1, 60s, &mine).ok());
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].dest_addr, "84912345716");
}

TEST_F(StoreTest, ReplyRetryAndFailure) {
  IngestItem bad;
  bad.message = Message("84912345679", "hello", MessageOutcome::kSyntaxError);
  bad.reply = Reply("84912345679", "Sai cu phap");
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({bad}, &results).ok());
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].attempts, 1);
  // Claimed: nobody else gets it while the lease runs.
  auto other = MakeStore("instance-b");
  std::vector<OutboxReply> none;
  ASSERT_TRUE(other->ClaimReplies({"viettel"}, 10, 30s, &none).ok());
  EXPECT_TRUE(none.empty());
  // Throttled: retry later, not before.
  ASSERT_TRUE(Retry(*store_, replies[0].id, StoreClock::now() + 1h, "throttled").ok());
  ASSERT_TRUE(other->ClaimReplies({"viettel"}, 10, 30s, &none).ok());
  EXPECT_TRUE(none.empty());
  ASSERT_TRUE(Retry(*store_, replies[0].id, StoreClock::now() - 1s, "throttled").ok());
  ASSERT_TRUE(other->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].attempts, 2);
  ASSERT_TRUE(Failed(*other, replies[0].id, "destination barred").ok());
  EXPECT_EQ(QueryValue(db_, "SELECT state || ':' || last_error FROM outbox"), "failed:destination barred");
}

TEST_F(StoreTest, ReplyResultsOfABatchAreRecordedInOneTransactionAndABadRowDoesNotBlockTheOthers) {
  std::vector<IngestItem> items;
  for (int i = 0; i < 6; ++i) items.push_back(HelpReplyItem("8491234560" + std::to_string(i)));
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch(items, &results).ok());
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 6u);
  // A receipt that overtook the first reply's submit_sm_resp.
  IngestItem dlr;
  dlr.message = Message("84912345600", "id:M0 stat:DELIVRD", MessageOutcome::kReceipt);
  dlr.message->esm_class = 0x04;
  dlr.receipt = ReceiptInfo{"viettel", "M0", "DELIVRD", "000", StoreClock::now()};
  ASSERT_TRUE(store_->IngestBatch({dlr}, &results).ok());

  using K = Store::ReplyResultRecord::Kind;
  std::vector<Store::ReplyResultRecord> records(4);
  records[0] = {K::kSubmitted, replies[0].id, {"M0"}, {}, ""};
  records[1] = {K::kSubmitted, replies[1].id, {"M1a", "M1b"}, {}, ""};
  records[2] = {K::kRetry, replies[2].id, {}, StoreClock::now() + 1h, "throttled"};
  records[3] = {K::kFailed, replies[3].id, {}, {}, "rejected by SMSC"};
  std::vector<StoreStatus> statuses;
  ASSERT_TRUE(store_->RecordReplyResults(records, &statuses).ok());
  ASSERT_EQ(statuses.size(), 4u);
  auto state = [&](int64_t id) { return QueryValue(db_, "SELECT state FROM outbox WHERE id = " + std::to_string(id)); };
  EXPECT_EQ(state(replies[0].id), "delivered");  // submitted, then the parked receipt applied
  EXPECT_EQ(state(replies[1].id), "submitted");
  EXPECT_EQ(state(replies[2].id), "pending");
  EXPECT_EQ(state(replies[3].id), "failed");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox_message_id WHERE outbox_id = " + std::to_string(replies[1].id)), 2);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM pending_receipt"), 0);
  // One transaction for the batch: now() is the transaction's start time, so every row it
  // touched carries the same updated_at.
  EXPECT_EQ(Count(db_, "SELECT count(DISTINCT updated_at) FROM outbox WHERE id IN (" + std::to_string(replies[0].id) +
                           "," + std::to_string(replies[1].id) + "," + std::to_string(replies[2].id) + "," +
                           std::to_string(replies[3].id) + ")"),
            1);

  // A batch with a reply that does not exist: the others are still recorded.
  std::vector<Store::ReplyResultRecord> mixed(3);
  mixed[0] = {K::kSubmitted, replies[4].id, {"M4"}, {}, ""};
  mixed[1] = {K::kSubmitted, 987654321, {"NOPE"}, {}, ""};
  mixed[2] = {K::kSubmitted, replies[5].id, {"M5"}, {}, ""};
  StoreStatus st = store_->RecordReplyResults(mixed, &statuses);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_TRUE(statuses[1].permanent());
  EXPECT_TRUE(statuses[2].ok());
  EXPECT_EQ(state(replies[4].id), "submitted");
  EXPECT_EQ(state(replies[5].id), "submitted");
}

TEST_F(StoreTest, TwoClaimersNeverGetTheSameDonation) {
  std::vector<IngestItem> items;
  for (int i = 0; i < 200; ++i) items.push_back(DonationItem("849" + std::to_string(10000000 + i), 1));
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch(items, &results).ok());

  std::mutex mu;
  std::vector<int64_t> claimed_a, claimed_b;
  auto worker = [&](const std::string& instance, std::vector<int64_t>* mine) {
    auto store = MakeStore(instance);
    for (;;) {
      std::vector<DonationWork> work;
      StoreStatus st = store->ClaimDonations(7, 60s, {}, &work);
      ASSERT_TRUE(st.ok()) << st.ToString();
      if (work.empty()) return;
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& w : work) mine->push_back(w.donation_id);
    }
  };
  std::thread a(worker, "instance-a", &claimed_a);
  std::thread b(worker, "instance-b", &claimed_b);
  a.join();
  b.join();
  std::set<int64_t> all(claimed_a.begin(), claimed_a.end());
  for (int64_t id : claimed_b) EXPECT_TRUE(all.insert(id).second) << "donation " << id << " claimed twice";
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(claimed_a.size() + claimed_b.size(), 200u);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE state = 'charging' AND lease_owner IS NOT NULL"), 200);
}

TEST_F(StoreTest, ExpiredLeaseIsReclaimedByAnotherInstance) {
  int64_t id = IngestDonation("84912345678", 2);
  std::vector<DonationWork> work;
  ASSERT_TRUE(store_->ClaimDonations(10, 1s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].previous_state, DonationState::kReceived);
  EXPECT_EQ(work[0].attempts, 1);

  auto other = MakeStore("instance-b");
  std::vector<DonationWork> none;
  ASSERT_TRUE(other->ClaimDonations(10, 60s, {}, &none).ok());
  EXPECT_TRUE(none.empty()) << "a live lease must not be claimed";

  std::this_thread::sleep_for(1200ms);  // instance-a "died" holding the lease
  ASSERT_TRUE(other->ClaimDonations(10, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].donation_id, id);
  EXPECT_EQ(work[0].previous_state, DonationState::kCharging);
  EXPECT_EQ(work[0].attempts, 2);
  EXPECT_EQ(QueryValue(db_, "SELECT lease_owner FROM donation"), "instance-b");
  // Operator filter: a claimer for another operator sees nothing.
  ExecSql(db_, "UPDATE donation SET lease_until = now() - interval '1 second'");
  ASSERT_TRUE(store_->ClaimDonations(10, 60s, {"mobifone"}, &none).ok());
  EXPECT_TRUE(none.empty());
}

TEST_F(StoreTest, ChargedDonationWritesBalancedLedgerAndReplayIsANoOp) {
  int64_t id = IngestDonation("84912345678", 5);
  DonationWork w = ClaimOne(id);
  EXPECT_EQ(w.amount_vnd, 100000);
  EXPECT_EQ(w.charging_mode, config::ChargingMode::kWhole);
  EXPECT_TRUE(w.charges.empty());

  ChargeOutcomeRecord rec;
  rec.donation_id = id;
  rec.new_state = DonationState::kCharged;
  rec.charges.push_back(Charge("don-" + std::to_string(id), 0, 5, 100000, ChargeOutcome::kCharged));
  rec.reply = Reply("84912345678", "Cam on Quy khach da ung ho 100.000 dong");
  std::vector<RecordResult> results;
  StoreStatus st = store_->RecordChargeOutcomes({rec}, &results);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].refused) << results[0].message;
  EXPECT_EQ(results[0].state, DonationState::kCharged);
  EXPECT_GT(results[0].reply_id, 0);

  auto ledger_summary = [&] {
    return QueryValue(db_,
                      "SELECT string_agg(account || ':' || direction || ':' || amount_vnd, ',' ORDER BY direction DESC)"
                      " FROM ledger_entry WHERE donation_id = " + std::to_string(id));
  };
  EXPECT_EQ(ledger_summary(), "receivable:viettel:debit:100000,fund:lu-lut:credit:100000");
  EXPECT_EQ(Count(db_, "SELECT count(DISTINCT journal_id) FROM ledger_entry"), 1);
  EXPECT_EQ(QueryValue(db_, "SELECT state || ':' || charged_units || ':' || charged_amount_vnd || ':' ||"
                            " coalesce(lease_owner, 'none') FROM donation"),
            "charged:5:100000:none");
  // The claim is a history row; the ordinary outcome is recorded on the donation row itself
  // (0013: proved by its charge and journal) and shown by donation_history.
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state, ' ' ORDER BY id)"
                            " FROM donation_transition"),
            "received>charging");
  EXPECT_EQ(QueryValue(db_, "SELECT final_state || ':' || final_by || ':' || (final_at IS NOT NULL) FROM donation"),
            "charged:instance-a:true");
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state || ':' || reason || ':' || actor,"
                            " ' ' ORDER BY at, seq NULLS LAST) FROM donation_history"),
            "received>charging:claimed:instance-a charging>charged:charged:instance-a");
  EXPECT_EQ(QueryValue(db_, "SELECT outcome || ':' || operator_reference FROM charge"),
            "charged:op-don-" + std::to_string(id));

  // Replay (e.g. the COMMIT's answer was lost): nothing new anywhere.
  st = store_->RecordChargeOutcomes({rec}, &results);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(results[0].refused) << results[0].message;
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 2);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM charge"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_transition"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_history"), 2);

  // A contradicting verdict for a settled key is refused and changes nothing.
  ChargeOutcomeRecord contra = rec;
  contra.new_state = DonationState::kFailed;
  contra.charges[0].outcome = ChargeOutcome::kInsufficientFunds;
  ASSERT_TRUE(store_->RecordChargeOutcomes({contra}, &results).ok());
  EXPECT_TRUE(results[0].refused);
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation"), "charged");
  EXPECT_EQ(QueryValue(db_, "SELECT outcome FROM charge"), "charged");
}

TEST_F(StoreTest, DonationReplyIsQueuedOnceAndMarksTheDonationReplied) {
  int64_t id = IngestDonation("84912345678", 1);
  ClaimOne(id);
  ChargeOutcomeRecord rec;
  rec.donation_id = id;
  rec.new_state = DonationState::kCharged;
  rec.charges.push_back(Charge("don-" + std::to_string(id), 0, 1, 20000, ChargeOutcome::kCharged));
  rec.reply = Reply("84912345678", "Cam on Quy khach da ung ho 20.000 dong");
  std::vector<RecordResult> results;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec, rec}, &results).ok());  // twice in one call
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].refused) << results[0].message;
  EXPECT_FALSE(results[1].refused) << results[1].message;
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 2);

  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].donation_id, id);
  EXPECT_EQ(replies[0].purpose, "success");
  EXPECT_EQ(replies[0].text, "Cam on Quy khach da ung ho 20.000 dong");
  EXPECT_EQ(QueryValue(db_, "SELECT submitted_at IS NULL FROM outbox"), "t");
  ASSERT_TRUE(Submitted(*store_, replies[0].id, {"MSG1", "MSG2"}).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT submitted_at IS NOT NULL FROM outbox"), "t");
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(smsc_message_id, ',' ORDER BY part) FROM outbox_message_id"), "MSG1,MSG2");
  // Replaying the submit (answer lost) changes nothing.
  ASSERT_TRUE(Submitted(*store_, replies[0].id, {"MSG1", "MSG2"}).ok());
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox_message_id"), 2);
  EXPECT_TRUE(Submitted(*store_, 424242, {"X"}).permanent());
}

TEST_F(StoreTest, ReleasedDonationsAreImmediatelyClaimableAgain) {
  int64_t fresh = IngestDonation("84912345678", 1);
  int64_t started = IngestDonation("84912345679", 2, config::ChargingMode::kPerUnit);
  std::vector<DonationWork> work;
  ASSERT_TRUE(store_->ClaimDonations(10, 600s, {}, &work).ok());
  ASSERT_EQ(work.size(), 2u);
  // `started` had its first unit charged before the instance decided to stop.
  ChargeOutcomeRecord rec;
  rec.donation_id = started;
  rec.new_state = DonationState::kReceived;
  rec.next_attempt_at = StoreClock::now() - 1s;
  rec.charges.push_back(Charge("don-" + std::to_string(started) + "-1", 1, 1, 20000, ChargeOutcome::kCharged));
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, nullptr).ok());
  ASSERT_TRUE(store_->ClaimDonations(10, 600s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);

  // Shutdown: hand both back without waiting for the leases to expire.
  ASSERT_TRUE(store_->ReleaseDonations({fresh, started}).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation WHERE id = " + std::to_string(fresh)), "received");
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation WHERE id = " + std::to_string(started)), "charging")
      << "a donation with charges keeps its state: the next claimer must know requests were sent";
  auto other = MakeStore("instance-b");
  ASSERT_TRUE(other->ClaimDonations(10, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 2u);
  EXPECT_EQ(work[0].donation_id, fresh);
  EXPECT_EQ(work[0].previous_state, DonationState::kReceived);
  EXPECT_EQ(work[1].previous_state, DonationState::kCharging);
  EXPECT_EQ(work[1].charged_units, 1);
  // Another instance's claims are not released by us.
  ASSERT_TRUE(store_->ReleaseDonations({fresh}).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT lease_owner FROM donation WHERE id = " + std::to_string(fresh)), "instance-b");
}

TEST_F(StoreTest, RecordsThatContradictTheDonationAreRefused) {
  int64_t id = IngestDonation("84912345678", 5);
  ClaimOne(id);
  std::string key = "don-" + std::to_string(id);
  std::vector<RecordResult> results;

  ChargeOutcomeRecord wrong_amount;
  wrong_amount.donation_id = id;
  wrong_amount.new_state = DonationState::kCharged;
  wrong_amount.charges.push_back(Charge(key, 0, 5, 99999, ChargeOutcome::kCharged));
  ASSERT_TRUE(store_->RecordChargeOutcomes({wrong_amount}, &results).ok());
  EXPECT_TRUE(results[0].refused);

  ChargeOutcomeRecord charged_without_charge;
  charged_without_charge.donation_id = id;
  charged_without_charge.new_state = DonationState::kCharged;
  ASSERT_TRUE(store_->RecordChargeOutcomes({charged_without_charge}, &results).ok());
  EXPECT_TRUE(results[0].refused);
  EXPECT_NE(results[0].message.find("contradicts"), std::string::npos) << results[0].message;

  ChargeOutcomeRecord missing;
  missing.donation_id = 999999;
  missing.new_state = DonationState::kFailed;
  ASSERT_TRUE(store_->RecordChargeOutcomes({missing}, &results).ok());
  EXPECT_TRUE(results[0].refused);

  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 0);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM charge"), 0);
  EXPECT_EQ(QueryValue(db_, "SELECT state FROM donation"), "charging");
}

TEST_F(StoreTest, ABatchOfSubmittedDonationRepliesMarksEachDonationRepliedOnce) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    const std::string msisdn = "8491234567" + std::to_string(i);
    int64_t id = IngestDonation(msisdn, 1);
    ClaimOne(id);
    ChargeOutcomeRecord rec;
    rec.donation_id = id;
    rec.new_state = DonationState::kCharged;
    rec.charges.push_back(Charge("don-" + std::to_string(id), 0, 1, 20000, ChargeOutcome::kCharged));
    rec.reply = Reply(msisdn, "Cam on");
    std::vector<RecordResult> results;
    ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
    ids.push_back(id);
  }
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(store_->ClaimReplies({"viettel"}, 10, 30s, &replies).ok());
  ASSERT_EQ(replies.size(), 3u);
  using K = Store::ReplyResultRecord::Kind;
  std::vector<Store::ReplyResultRecord> records;
  records.push_back({K::kSubmitted, replies[0].id, {"A1"}, {}, ""});
  records.push_back({K::kSubmitted, replies[1].id, {"B1", "B2", "B3"}, {}, ""});
  records.push_back({K::kRetry, replies[2].id, {}, StoreClock::now() + 1h, "throttled"});
  std::vector<StoreStatus> statuses;
  ASSERT_TRUE(store_->RecordReplyResults(records, &statuses).ok());
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(d.id::text || ':' || (o.submitted_at IS NOT NULL), ',' ORDER BY d.id) "
                            "FROM donation d JOIN outbox o ON o.donation_id = d.id"),
            std::to_string(ids[0]) + ":true," + std::to_string(ids[1]) + ":true," + std::to_string(ids[2]) + ":false");
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(smsc_message_id || '/' || part, ',' ORDER BY smsc_message_id) "
                            "FROM outbox_message_id"),
            "A1/1,B1/1,B2/2,B3/3");
  // A replay of the batch (its COMMIT answer lost) adds nothing.
  records.pop_back();
  ASSERT_TRUE(store_->RecordReplyResults(records, &statuses).ok());
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox_message_id"), 4);
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(state, ',' ORDER BY id) FROM outbox"), "submitted,submitted,pending");
}

TEST_F(StoreTest, PerUnitPartialChargeRecordsThreeOfFiveUnits) {
  int64_t id = IngestDonation("84912345678", 5, config::ChargingMode::kPerUnit);
  DonationWork w = ClaimOne(id);
  EXPECT_EQ(w.charging_mode, config::ChargingMode::kPerUnit);
  ChargeOutcomeRecord rec;
  rec.donation_id = id;
  rec.new_state = DonationState::kPartiallyCharged;
  rec.reason = "insufficient_funds";
  for (int u = 1; u <= 3; ++u)
    rec.charges.push_back(Charge("don-" + std::to_string(id) + "-" + std::to_string(u), u, 1, 20000,
                                 ChargeOutcome::kCharged));
  rec.charges.push_back(Charge("don-" + std::to_string(id) + "-4", 4, 1, 20000, ChargeOutcome::kInsufficientFunds));
  rec.reply = Reply("84912345678", "Quy khach da ung ho 3/5 lan (60.000 dong).");
  std::vector<RecordResult> results;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  EXPECT_EQ(results[0].charged_units, 3);
  EXPECT_EQ(results[0].charged_amount_vnd, 60000);
  EXPECT_EQ(QueryValue(db_, "SELECT state || ':' || charged_units || ':' || charged_amount_vnd || ':' || failure_reason"
                            " FROM donation"),
            "partially_charged:3:60000:insufficient_funds");
  EXPECT_EQ(QueryValue(db_, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction = 'credit'"
                            " AND account = 'fund:lu-lut'"),
            "60000");
  EXPECT_EQ(QueryValue(db_, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction = 'debit'"
                            " AND account = 'receivable:viettel'"),
            "60000");
  EXPECT_EQ(Count(db_, "SELECT count(DISTINCT journal_id) FROM ledger_entry"), 3);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM charge"), 4);
}

TEST_F(StoreTest, DeferredDonationGoesBackToReceivedWithoutFailure) {
  int64_t id = IngestDonation("84912345678", 3, config::ChargingMode::kPerUnit);
  ClaimOne(id);
  // Unit 1 charged, then the breaker opened.
  ChargeOutcomeRecord rec;
  rec.donation_id = id;
  rec.new_state = DonationState::kReceived;
  rec.reason = "breaker open";
  rec.next_attempt_at = StoreClock::now() + 1h;
  rec.charges.push_back(Charge("don-" + std::to_string(id) + "-1", 1, 1, 20000, ChargeOutcome::kCharged));
  rec.charges.push_back(Charge("don-" + std::to_string(id) + "-2", 2, 1, 20000, ChargeOutcome::kUnavailable));
  std::vector<RecordResult> results;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  EXPECT_EQ(QueryValue(db_, "SELECT state || ':' || coalesce(failure_reason, 'none') || ':' || charged_units ||"
                            " ':' || coalesce(lease_owner, 'none') FROM donation"),
            "received:none:1:none");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM charge"), 1) << "an unavailable (not performed) charge is not stored";
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 2);
  EXPECT_EQ(QueryValue(db_, "SELECT reason FROM donation_transition WHERE to_state = 'received' AND from_state = 'charging'"),
            "breaker open");
  // Not claimable before next_attempt_at ...
  std::vector<DonationWork> work;
  ASSERT_TRUE(store_->ClaimDonations(10, 60s, {}, &work).ok());
  EXPECT_TRUE(work.empty());
  // ... and afterwards it resumes with what was already charged.
  ExecSql(db_, "UPDATE donation SET next_attempt_at = now() - interval '1 second'");
  ASSERT_TRUE(store_->ClaimDonations(10, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].previous_state, DonationState::kReceived);
  EXPECT_EQ(work[0].charged_units, 1);
  EXPECT_EQ(work[0].charged_amount_vnd, 20000);
  ASSERT_EQ(work[0].charges.size(), 1u);
  EXPECT_EQ(work[0].charges[0].outcome, ChargeOutcome::kCharged);
  // The rest is charged: the donation completes with one journal per unit.
  rec.new_state = DonationState::kCharged;
  rec.charges.clear();
  for (int u = 1; u <= 3; ++u)
    rec.charges.push_back(Charge("don-" + std::to_string(id) + "-" + std::to_string(u), u, 1, 20000,
                                 ChargeOutcome::kCharged));
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  EXPECT_EQ(QueryValue(db_, "SELECT state || ':' || charged_amount_vnd FROM donation"), "charged:60000");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 6);
}

TEST_F(StoreTest, UnknownChargeIsVisibleUntilResolved) {
  int64_t id = IngestDonation("84912345678", 2);
  ClaimOne(id);
  std::string key = "don-" + std::to_string(id);
  ChargeOutcomeRecord rec;
  rec.donation_id = id;
  rec.new_state = DonationState::kUnknown;
  rec.reason = "timeout";
  rec.next_attempt_at = StoreClock::now() - 1s;
  rec.charges.push_back(Charge(key, 0, 2, 40000, ChargeOutcome::kUnknown));
  std::vector<RecordResult> results;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  int64_t unknown = 0;
  ASSERT_TRUE(store_->CountUnknownCharges(&unknown).ok());
  EXPECT_EQ(unknown, 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 0);
  std::map<std::string, int64_t> by_state;
  ASSERT_TRUE(store_->CountDonationsByState(&by_state).ok());
  EXPECT_EQ(by_state["unknown"], 1);

  // Restart: another instance claims it and gets the unknown key to resolve with Status().
  auto other = MakeStore("instance-b");
  std::vector<DonationWork> work;
  ASSERT_TRUE(other->ClaimDonations(10, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].previous_state, DonationState::kUnknown);
  ASSERT_EQ(work[0].charges.size(), 1u);
  EXPECT_EQ(work[0].charges[0].key, key);
  EXPECT_EQ(work[0].charges[0].outcome, ChargeOutcome::kUnknown);

  rec.new_state = DonationState::kCharged;
  rec.charges[0].outcome = ChargeOutcome::kCharged;
  rec.charges[0].operator_reference = "TX-77";
  ASSERT_TRUE(other->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  ASSERT_TRUE(store_->CountUnknownCharges(&unknown).ok());
  EXPECT_EQ(unknown, 0);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 2);
  EXPECT_EQ(QueryValue(db_, "SELECT outcome || ':' || operator_reference || ':' || attempts FROM charge"),
            "charged:TX-77:2");
  // A resolved unknown is not an ordinary outcome: every step has its history row, with who.
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(from_state || '>' || to_state || ':' || reason || ':' || actor, ' '"
                            " ORDER BY id) FROM donation_transition"),
            "received>charging:claimed:instance-a charging>unknown:timeout:instance-a "
            "unknown>charged:timeout:instance-b");
  EXPECT_EQ(QueryValue(db_, "SELECT coalesce(final_state, 'none') FROM donation"), "none");
}

TEST_F(StoreTest, DailyCapIsEvaluatedAtFirstClaimPerSubscriberCampaignAndLocalDay) {
  // Cap 10 units per day: 6 fits, then 5 does not (11), then 3 does (9).
  std::vector<IngestItem> items = {
      DonationItem("84912345678", 6, config::ChargingMode::kWhole, "", 10),
      DonationItem("84912345678", 5, config::ChargingMode::kWhole, "", 10),
      DonationItem("84912345678", 3, config::ChargingMode::kWhole, "", 10),
      DonationItem("84900000001", 9, config::ChargingMode::kWhole, "", 10),  // another subscriber
  };
  // Yesterday (Asia/Ho_Chi_Minh) does not count toward today.
  IngestItem yesterday = DonationItem("84912345678", 9, config::ChargingMode::kWhole, "", 10);
  yesterday.message->received_at = StoreClock::now() - 24h;
  items.insert(items.begin(), yesterday);
  std::vector<IngestResult> ingested;
  ASSERT_TRUE(store_->IngestBatch(items, &ingested).ok());
  // Charge yesterday's first so it is "used" on its own day.
  std::vector<DonationWork> work;
  ASSERT_TRUE(store_->ClaimDonations(100, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 5u);
  std::map<int64_t, bool> over;
  for (const auto& w : work) over[w.donation_id] = w.over_daily_cap;
  EXPECT_FALSE(over[ingested[0].donation_id]);
  EXPECT_FALSE(over[ingested[1].donation_id]);
  EXPECT_TRUE(over[ingested[2].donation_id]);
  EXPECT_FALSE(over[ingested[3].donation_id]);
  EXPECT_FALSE(over[ingested[4].donation_id]);

  // The verdict is sticky: after a lease expiry the over-cap donation is still over the cap.
  ExecSql(db_, "UPDATE donation SET lease_until = now() - interval '1 second'");
  ASSERT_TRUE(store_->ClaimDonations(100, 60s, {}, &work).ok());
  for (const auto& w : work) EXPECT_EQ(w.over_daily_cap, w.donation_id == ingested[2].donation_id);

  // The charger records it as failed(daily_cap) with the daily-cap reply; a new donation that
  // still fits (1 unit: 6 + 3 + 1 = 10) is accepted, the next one (1 more) is not.
  ChargeOutcomeRecord rec;
  rec.donation_id = ingested[2].donation_id;
  rec.new_state = DonationState::kFailed;
  rec.reason = "daily_cap";
  rec.reply = Reply("84912345678", "Quy khach da dat gioi han ung ho trong ngay");
  std::vector<RecordResult> results;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &results).ok());
  ASSERT_FALSE(results[0].refused) << results[0].message;
  std::vector<IngestResult> more;
  ASSERT_TRUE(store_->IngestBatch({DonationItem("84912345678", 1, config::ChargingMode::kWhole, "", 10),
                                   DonationItem("84912345678", 1, config::ChargingMode::kWhole, "", 10)},
                                  &more)
                  .ok());
  auto other = MakeStore("instance-b");
  ASSERT_TRUE(other->ClaimDonations(100, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 2u);
  EXPECT_FALSE(work[0].over_daily_cap);
  EXPECT_TRUE(work[1].over_daily_cap);
}

TEST_F(StoreTest, ConnectionKilledMidBatchIsTransientAndStoresNothing) {
  // A batch with parts runs several statements in one transaction. Hold a lock that the second
  // statement needs, kill the store's backend while it waits, and check nothing was kept.
  std::vector<IngestItem> items;
  ConcatPart p;
  p.set = ConcatSetKey{"viettel-1", "84912345678", "1407", 7, false, 2};
  p.operator_name = "viettel";
  p.seq = 1;
  p.raw_payload = p.text = "half";
  p.received_at = StoreClock::now();
  IngestItem part_item;
  part_item.part = p;
  items.push_back(part_item);
  for (int i = 0; i < 50; ++i) items.push_back(DonationItem("849" + std::to_string(20000000 + i), 1));
  ASSERT_TRUE(store_->Ping().ok());

  PGconn* locker = PQconnectdb(db_.c_str());
  ASSERT_EQ(PQstatus(locker), CONNECTION_OK);
  PQclear(PQexec(locker, "BEGIN"));
  PQclear(PQexec(locker, "LOCK TABLE inbound_message IN ACCESS EXCLUSIVE MODE"));

  StoreStatus status;
  std::vector<IngestResult> results;
  std::thread ingest([&] { status = store_->IngestBatch(items, &results); });
  // Wait until the store's backend is blocked on the lock, i.e. after the parts were inserted.
  std::string pid;
  for (int i = 0; i < 200 && pid.empty(); ++i) {
    pid = QueryValue(db_, "SELECT pid FROM pg_stat_activity WHERE application_name = 'donagate-store-test'"
                          " AND datname = current_database() AND wait_event_type = 'Lock'");
    if (pid.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(pid.empty()) << "the store never blocked on the lock";
  EXPECT_EQ(QueryValue(db_, "SELECT pg_terminate_backend(" + pid + ")"), "t");
  ingest.join();
  PQclear(PQexec(locker, "COMMIT"));
  PQfinish(locker);

  EXPECT_TRUE(status.transient()) << status.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM mo_part"), 0);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message"), 0);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 0);

  // The same Store reconnects by itself and the SMSC's redelivery is stored whole.
  status = store_->IngestBatch(items, &results);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM mo_part"), 1);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 50);
}

TEST_F(StoreTest, IdleConnectionClosedByTheServerIsReplacedTransparently) {
  ASSERT_TRUE(store_->Ping().ok());
  std::string pid = QueryValue(db_, "SELECT pid FROM pg_stat_activity WHERE application_name = 'donagate-store-test'"
                                    " AND datname = current_database()");
  ASSERT_FALSE(pid.empty());
  EXPECT_EQ(QueryValue(db_, "SELECT pg_terminate_backend(" + pid + ")"), "t");
  // The server's goodbye arrives asynchronously; give it a moment.
  std::this_thread::sleep_for(100ms);
  std::vector<IngestResult> results;
  StoreStatus st = store_->IngestBatch({DonationItem("84912345678", 1)}, &results);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 1);
}

TEST_F(StoreTest, TwoInstancesRecordingTheSameVerdictBookItOnce) {
  constexpr int kDonations = 40;
  std::vector<IngestItem> items;
  for (int i = 0; i < kDonations; ++i) items.push_back(DonationItem("849" + std::to_string(40000000 + i), 2));
  std::vector<IngestResult> ingested;
  ASSERT_TRUE(store_->IngestBatch(items, &ingested).ok());
  std::vector<DonationWork> work;
  ASSERT_TRUE(store_->ClaimDonations(kDonations, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), static_cast<size_t>(kDonations));
  std::vector<ChargeOutcomeRecord> records;
  for (const auto& w : work) {
    ChargeOutcomeRecord rec;
    rec.donation_id = w.donation_id;
    rec.new_state = DonationState::kCharged;
    rec.charges.push_back(Charge("don-" + std::to_string(w.donation_id), 0, 2, 40000, ChargeOutcome::kCharged));
    rec.reply = Reply(w.msisdn, "Cam on");
    records.push_back(rec);
  }
  // An instance whose lease expired and the one that re-claimed both record, at the same time.
  std::vector<StoreStatus> statuses(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      auto store = MakeStore("instance-" + std::to_string(t));
      std::vector<ChargeOutcomeRecord> mine = records;
      if (t == 1) std::reverse(mine.begin(), mine.end());
      std::vector<RecordResult> results;
      statuses[t] = store->RecordChargeOutcomes(mine, &results);
    });
  for (auto& th : threads) th.join();
  for (const auto& st : statuses) EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM ledger_entry"), 2 * kDonations);
  EXPECT_EQ(Count(db_, "SELECT sum(amount_vnd) FROM ledger_entry WHERE direction = 'credit'"), 40000 * kDonations);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM outbox"), kDonations);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_history WHERE to_state = 'charged'"), kDonations);
}

// A TCP relay between the store and PostgreSQL that can lose the conversation around the
// commit. Armed with kAfterServerGotIt, when the client sends bytes containing `trigger` it
// forwards them to the server, then drops the client side (the answer is lost) and keeps the
// server side open a little while before closing it, as a dying network would. Armed with
// kBeforeServerGotIt it drops both sides without forwarding.
class CommitLosingRelay {
 public:
  enum class Mode { kOff, kAfterServerGotIt, kBeforeServerGotIt };

  explicit CommitLosingRelay(int server_port) : server_port_(server_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listener_, 16);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~CommitLosingRelay() {
    stop_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    acceptor_.join();
    for (auto& t : pumps_) t.join();
  }
  int port() const { return port_; }
  void Arm(Mode mode, std::string trigger) {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = mode;
    trigger_ = std::move(trigger);
  }
  bool fired() const { return fired_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int client = accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(server_port_));
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(client);
        close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }
  void Pump(int client, int server) {
    char buf[65536];
    bool client_open = true;
    auto drop_at = std::chrono::steady_clock::time_point::max();
    while (!stop_) {
      if (!client_open && std::chrono::steady_clock::now() >= drop_at) break;
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(fds + (client_open ? 0 : 1), client_open ? 2 : 1, 50) < 0) break;
      if (client_open && (fds[0].revents & (POLLIN | POLLHUP))) {
        ssize_t n = read(client, buf, sizeof buf);
        if (n <= 0) break;
        Mode mode;
        {
          std::lock_guard<std::mutex> lock(mu_);
          mode = mode_;
          if (mode != Mode::kOff && std::string_view(buf, static_cast<size_t>(n)).find(trigger_) != std::string_view::npos) {
            mode_ = Mode::kOff;
            fired_ = true;
          } else {
            mode = Mode::kOff;
          }
        }
        if (mode == Mode::kBeforeServerGotIt) break;
        if (write(server, buf, static_cast<size_t>(n)) != n) break;
        if (mode == Mode::kAfterServerGotIt) {
          close(client);
          client_open = false;
          drop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        }
      }
      if (fds[1].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(server, buf, sizeof buf);
        if (n <= 0) break;
        if (client_open && write(client, buf, static_cast<size_t>(n)) != n) break;
      }
    }
    if (client_open) close(client);
    close(server);
  }

  int server_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> fired_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::mutex mu_;
  Mode mode_ = Mode::kOff;
  std::string trigger_;
};

int ServerPort(const std::string& conninfo) {
  size_t at = conninfo.rfind("port=");
  return at == std::string::npos ? 5432 : std::stoi(conninfo.substr(at + 5));
}

TEST_F(StoreTest, LostCommitAnswerIsResolvedWithoutDuplicatesOrLoss) {
  CommitLosingRelay relay(ServerPort(::donagate::testing::PostgresServerConninfo()));
  StoreOptions o;
  o.instance_id = "instance-a";
  o.application_name = "donagate-store-test";
  Store via_relay(db_ + " port=" + std::to_string(relay.port()), o);
  std::vector<IngestItem> items;
  for (int i = 0; i < 10; ++i) items.push_back(DonationItem("849" + std::to_string(50000000 + i), 1));

  // The COMMIT reaches the server, its answer never comes back: the store finds the batch's
  // marker after reconnecting and reports success, so the MOs are acked exactly once.
  relay.Arm(CommitLosingRelay::Mode::kAfterServerGotIt, "INSERT INTO ingest_batch");
  std::vector<IngestResult> results;
  StoreStatus st = via_relay.IngestBatch(items, &results);
  EXPECT_TRUE(relay.fired());
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(results.size(), items.size());
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 10);
  for (const auto& r : results) {
    EXPECT_FALSE(r.duplicate);
    EXPECT_EQ(QueryValue(db_, "SELECT inbound_message_id FROM donation WHERE id = " + std::to_string(r.donation_id)),
              std::to_string(r.inbound_message_id));
  }

  // The COMMIT never reaches the server: rolled back, reported transient, nothing kept.
  relay.Arm(CommitLosingRelay::Mode::kBeforeServerGotIt, "INSERT INTO ingest_batch");
  st = via_relay.IngestBatch(items, &results);
  EXPECT_TRUE(relay.fired());
  EXPECT_TRUE(st.transient()) << st.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 10);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message"), 10);

  // And the next batch goes through normally.
  st = via_relay.IngestBatch(items, &results);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation"), 20);
}

TEST_F(StoreTest, UnreachableDatabaseIsTransient) {
  StoreOptions o;
  o.connect_timeout_s = 1;
  Store dead("host=127.0.0.1 port=1 user=postgres dbname=none", o);
  std::vector<IngestResult> results;
  StoreStatus st = dead.IngestBatch({DonationItem("84912345678", 1)}, &results);
  EXPECT_TRUE(st.transient()) << st.ToString();
  EXPECT_TRUE(dead.Ping().transient());
  std::vector<DonationWork> work;
  EXPECT_TRUE(dead.ClaimDonations(1, 10s, {}, &work).transient());
}

TEST_F(StoreTest, IngestThroughputOf256ItemBatches) {
  constexpr int kBatch = 256;
  constexpr int kBatches = 20;
  std::vector<IngestItem> items;
  for (int i = 0; i < kBatch; ++i) {
    if (i % 8 == 7) {
      IngestItem bad;
      bad.message = Message("849" + std::to_string(30000000 + i), "XYZ", MessageOutcome::kSyntaxError);
      bad.reply = Reply(bad.message->msisdn, "Sai cu phap. De ung ho, soan CV n gui 1407");
      items.push_back(bad);
    } else {
      items.push_back(DonationItem("849" + std::to_string(30000000 + i), 1 + i % 5));
    }
  }
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch(items, &results).ok());  // warm-up: prepares statements
  auto start = std::chrono::steady_clock::now();
  for (int b = 0; b < kBatches; ++b) {
    StoreStatus st = store_->IngestBatch(items, &results);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double per_second = kBatch * kBatches / seconds;
  std::printf("[ throughput ] IngestBatch: %d batches of %d MOs in %.3f s = %.0f MOs/s (%.2f ms/batch)\n",
              kBatches, kBatch, seconds, per_second, seconds * 1000 / kBatches);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM inbound_message"), kBatch * (kBatches + 1));
  // A generous floor: even a slow CI machine commits far more than this.
  EXPECT_GT(per_second, 1000);

  // For comparison: the same MOs committed one per transaction (no group commit).
  std::vector<IngestItem> one(1);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kBatch; ++i) {
    one[0] = items[i];
    ASSERT_TRUE(store_->IngestBatch(one, &results).ok());
  }
  double single = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ throughput ] IngestBatch: %d single-MO batches in %.3f s = %.0f MOs/s (%.2f ms/commit)\n",
              kBatch, single, kBatch / single, single * 1000 / kBatch);
}


// ---------------------------------------------------------------------------------------
// The in-memory hand-off: work stored already claimed by the instance that will do it.

TEST_F(StoreTest, ADonationClaimedAtIngestIsLeasedToItsInstanceAndInvisibleToOtherClaims) {
  IngestItem item = DonationItem("84912000001", 2);
  item.donation->claim_lease = 60s;
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({item}, &results).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].donation_claimed);
  const std::string id = std::to_string(results[0].donation_id);
  EXPECT_EQ(QueryValue(db_, "SELECT state || '/' || lease_owner || '/' || attempts FROM donation WHERE id = " + id),
            "charging/instance-a/1");
  // No history row for the whole ingest-and-claim: received_at, lease_owner and attempts say it.
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_transition WHERE donation_id = " + id), 0);
  std::vector<DonationWork> work;
  ASSERT_TRUE(MakeStore("instance-b")->ClaimDonations(100, 60s, {}, &work).ok());
  EXPECT_TRUE(work.empty()) << "a donation leased at ingest was claimed by another instance";
  ASSERT_TRUE(store_->ClaimDonations(100, 60s, {}, &work).ok());
  EXPECT_TRUE(work.empty()) << "the claim must not hand out what the hand-off already holds";

  // Its outcome is recorded like a claimed one's.
  ChargeOutcomeRecord rec;
  rec.donation_id = results[0].donation_id;
  rec.new_state = DonationState::kCharged;
  rec.charges.push_back(Charge("don-" + id, 0, 2, 40000, ChargeOutcome::kCharged));
  rec.reply = Reply("84912000001", "Cam on");
  rec.reply->claim_lease = 60s;
  std::vector<RecordResult> recorded;
  ASSERT_TRUE(store_->RecordChargeOutcomes({rec}, &recorded).ok());
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_FALSE(recorded[0].refused) << recorded[0].message;
  EXPECT_EQ(recorded[0].state, DonationState::kCharged);
  EXPECT_TRUE(recorded[0].reply_claimed);
  EXPECT_EQ(QueryValue(db_, "SELECT state || '/' || lease_owner || '/' || attempts FROM outbox WHERE id = " +
                                std::to_string(recorded[0].reply_id)),
            "claimed/instance-a/1");
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(MakeStore("instance-b")->ClaimReplies({"viettel"}, 100, 60s, &replies).ok());
  EXPECT_TRUE(replies.empty()) << "a reply handed off in memory was claimed by another instance";
  EXPECT_EQ(QueryValue(db_, "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state, ',' ORDER BY at, seq NULLS LAST)"
                            " FROM donation_history WHERE donation_id = " + id),
            "charging>charged");
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation_transition WHERE donation_id = " + id), 0);
}

TEST_F(StoreTest, ADonationClaimedAtIngestWhoseInstanceDiedIsResumedAfterTheLeaseWithStatusFirst) {
  IngestItem item = DonationItem("84912000002", 1);
  item.donation->claim_lease = 1s;
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({item}, &results).ok());
  ASSERT_TRUE(results[0].donation_claimed);
  std::this_thread::sleep_for(1200ms);
  std::vector<DonationWork> work;
  ASSERT_TRUE(MakeStore("instance-b")->ClaimDonations(100, 60s, {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].donation_id, results[0].donation_id);
  // The dead instance may have sent the charge request: resume as "charging" (Status first).
  EXPECT_EQ(work[0].previous_state, DonationState::kCharging);
  EXPECT_EQ(work[0].attempts, 2);
}

TEST_F(StoreTest, TheDailyCapOfDonationsClaimedAtIngestIsExactAcrossInstancesAndWithTheClaim) {
  // Cap 5 units a day. 3 units claimed by a classic claim, then 2 + 1 claimed at ingest by
  // instance A (the 2 fit, the 1 is over), then 1 at ingest by instance B (over).
  const int kCap = 5;
  std::vector<IngestResult> r0;
  ASSERT_TRUE(store_->IngestBatch({DonationItem("84912000003", 3, config::ChargingMode::kWhole, "", kCap)}, &r0).ok());
  DonationWork first = ClaimOne(r0[0].donation_id);
  EXPECT_FALSE(first.over_daily_cap);

  // What the pipeline hands the charging worker for a donation claimed at ingest.
  auto handed = [&](const IngestItem& item, const IngestResult& r) {
    DonationWork w;
    w.donation_id = r.donation_id;
    w.campaign = item.donation->campaign;
    w.msisdn = item.message->msisdn;
    w.units = item.donation->units;
    w.daily_cap_units = item.donation->daily_cap_units;
    w.cap_checked = false;
    w.received_at = item.message->received_at;
    return w;
  };
  IngestItem fits = DonationItem("84912000003", 2, config::ChargingMode::kWhole, "", kCap);
  fits.donation->claim_lease = 60s;
  IngestItem over = DonationItem("84912000003", 1, config::ChargingMode::kWhole, "", kCap);
  over.donation->claim_lease = 60s;
  std::vector<IngestResult> ra;
  ASSERT_TRUE(store_->IngestBatch({fits, over}, &ra).ok());
  // Undecided until the charging worker asks: no claim sees them meanwhile.
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE cap_checked_at IS NULL"), 2);
  std::vector<DonationWork> wa = {handed(over, ra[1]), handed(fits, ra[0])};  // any order
  ASSERT_TRUE(store_->DecideDailyCaps(&wa).ok());
  EXPECT_TRUE(wa[0].over_daily_cap) << "3 + 2 units fill the cap; the later donation is over it";
  EXPECT_FALSE(wa[1].over_daily_cap) << "lower ids get the room first";
  EXPECT_TRUE(wa[0].cap_checked && wa[1].cap_checked);

  IngestItem other = DonationItem("84912000003", 1, config::ChargingMode::kWhole, "", kCap);
  other.donation->claim_lease = 60s;
  std::vector<IngestResult> rb;
  auto store_b = MakeStore("instance-b");
  ASSERT_TRUE(store_b->IngestBatch({other}, &rb).ok());
  std::vector<DonationWork> wb = {handed(other, rb[0])};
  ASSERT_TRUE(store_b->DecideDailyCaps(&wb).ok());
  EXPECT_TRUE(wb[0].over_daily_cap) << "instance B must see instance A's decision";
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE over_daily_cap"), 2);
  EXPECT_EQ(Count(db_, "SELECT count(*) FROM donation WHERE cap_checked_at IS NULL"), 0);
  // Deciding again changes nothing (a retried call after a lost COMMIT).
  wb[0].cap_checked = false;
  ASSERT_TRUE(store_b->DecideDailyCaps(&wb).ok());
  EXPECT_TRUE(wb[0].over_daily_cap);

  // The classic claim counts what was decided: a fourth unit claimed later is over too.
  std::vector<IngestResult> rc;
  ASSERT_TRUE(store_->IngestBatch({DonationItem("84912000003", 1, config::ChargingMode::kWhole, "", kCap)}, &rc).ok());
  EXPECT_TRUE(ClaimOne(rc[0].donation_id).over_daily_cap);
  // Another subscriber is not affected.
  IngestItem someone_else = DonationItem("84912000004", 5, config::ChargingMode::kWhole, "", kCap);
  someone_else.donation->claim_lease = 60s;
  std::vector<IngestResult> rd;
  ASSERT_TRUE(store_->IngestBatch({someone_else}, &rd).ok());
  std::vector<DonationWork> wd = {handed(someone_else, rd[0])};
  ASSERT_TRUE(store_->DecideDailyCaps(&wd).ok());
  EXPECT_FALSE(wd[0].over_daily_cap);
}

TEST_F(StoreTest, AHelpReplyClaimedAtIngestIsLeasedToItsInstance) {
  IngestItem item = HelpReplyItem("84912000005");
  item.reply->claim_lease = 60s;
  IngestItem unclaimed = HelpReplyItem("84912000006");
  std::vector<IngestResult> results;
  ASSERT_TRUE(store_->IngestBatch({item, unclaimed}, &results).ok());
  EXPECT_TRUE(results[0].reply_claimed);
  EXPECT_FALSE(results[1].reply_claimed);
  std::vector<OutboxReply> replies;
  ASSERT_TRUE(MakeStore("instance-b")->ClaimReplies({"viettel"}, 100, 60s, &replies).ok());
  ASSERT_EQ(replies.size(), 1u) << "only the reply left pending is claimable";
  EXPECT_EQ(replies[0].id, results[1].reply_id);
}


// ---- The server a connection reached (failover)

TEST_F(StoreTest, EveryNewConnectionReportsItsServerAndAPrimaryIsUsed) {
  std::vector<DbServer> seen;
  std::vector<StoreStatus> statuses;
  StoreOptions o;
  o.instance_id = "instance-a";
  o.application_name = "donagate-store-test-server";
  o.on_connect = [&](const DbServer& server, const StoreStatus& status) {
    seen.push_back(server);
    statuses.push_back(status);
  };
  Store store(db_, o);
  ASSERT_TRUE(store.Ping().ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_FALSE(seen[0].in_recovery);
  EXPECT_EQ(seen[0].role(), "primary");
  EXPECT_EQ(seen[0].host, "127.0.0.1");
  EXPECT_EQ(seen[0].port, QueryValue(db_, "SHOW port"));
  // The same connection is reused: no second report.
  ASSERT_TRUE(store.Ping().ok());
  EXPECT_EQ(seen.size(), 1u);
  // Cut by the server (a failover looks like this first): the next call reconnects and reports.
  ExecSql(db_, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
               "'donagate-store-test-server'");
  std::this_thread::sleep_for(100ms);
  StoreStatus st = store.Ping();
  if (!st.ok()) st = store.Ping();  // the first call may only learn that the connection died
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen.size(), 2u);
}

// Runs against a real hot standby when DONAGATE_TEST_PG_STANDBY names one (conninfo of a
// database on it); tests/faults/pg_failover_test.sh runs it while its standby streams.
TEST(StoreStandbyTest, AStandbyIsRefusedWithAClearReasonAndNeverWritten) {
  const char* standby = std::getenv("DONAGATE_TEST_PG_STANDBY");
  if (!standby || !*standby) GTEST_SKIP() << "no standby (set DONAGATE_TEST_PG_STANDBY)";
  std::vector<DbServer> seen;
  StoreOptions o;
  o.on_connect = [&](const DbServer& server, const StoreStatus&) { seen.push_back(server); };
  // target_session_attrs=any: libpq connects to the standby; the store's own check refuses it.
  Store store(std::string(standby) + " target_session_attrs=any", o);
  StoreStatus st = store.TouchRun(1);
  EXPECT_TRUE(st.transient()) << st.ToString();
  EXPECT_EQ(st.sqlstate(), "25006");
  EXPECT_NE(st.message().find("refusing to write to a standby"), std::string::npos) << st.message();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].in_recovery);
  EXPECT_EQ(seen[0].role(), "standby");
  // Without target_session_attrs the store asks libpq for read-write: the standby is skipped
  // before any session starts (nothing to refuse, a connection error naming the cause).
  seen.clear();
  Store plain(standby, o);
  st = plain.Ping();
  EXPECT_TRUE(st.transient()) << st.ToString();
  EXPECT_TRUE(seen.empty());
  EXPECT_NE(st.message().find("cannot connect"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace donagate::billing
