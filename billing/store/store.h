// The PostgreSQL store: inbound messages, concatenated parts, donations and their state
// machine, charges, the double-entry ledger and the reply outbox (schema: docs/database.md).
//
// Contract:
//  - Synchronous libpq. A Store owns ONE connection and is used by ONE thread at a time (the
//    daemon's DB threads each own a Store). It connects lazily and reconnects after a lost
//    connection on the next call; prepared statements are re-prepared automatically.
//  - Every call is one transaction unless its comment says otherwise: it either commits
//    completely or leaves nothing behind. A call that returns ok has COMMITTED (the caller
//    may ack the MO / trust the state). A failed call returns a transient or permanent
//    StoreStatus and never throws.
//  - Transient after a lost connection during COMMIT means "maybe committed": every write
//    call is therefore idempotent when replayed (dedupe by SMSC MO id, charge keys, one
//    journal per charge key, one reply per donation). IngestBatch resolves the doubt itself:
//    it commits a marker row with the batch and, after such a loss, reconnects and returns ok
//    (with the committed results) when the marker is there, transient when it is not.
//  - Times are std::chrono::system_clock (UTC); the database stores timestamptz.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/domain/charge_key.h"
#include "billing/domain/states.h"
#include "billing/store/store_status.h"
#include "config/config.h"

namespace donagate::billing {

using StoreClock = std::chrono::system_clock;
using StoreTime = StoreClock::time_point;

// ---------------------------------------------------------------------------------------
// Ingest (group commit)

// A complete (or assembled) MO or a delivery receipt, as received.
struct InboundMessage {
  std::string link;
  std::string operator_name;
  std::string source_addr;      // raw source address
  std::string msisdn;           // normalised 84xxxxxxxxx; empty when invalid (stored NULL)
  std::string dest_addr;
  uint8_t data_coding = 0;
  uint8_t esm_class = 0;
  std::string raw_payload;      // bytes as received (assembled: the parts' payloads joined)
  std::string text;             // decoded UTF-8
  std::string smsc_mo_id;       // the SMSC's unique MO id when the link knows its TLV; else empty
  std::optional<int> concat_ref;    // assembled messages: the reference ...
  std::optional<int> concat_total;  // ... and the number of parts
  StoreTime received_at{};
  MessageOutcome outcome = MessageOutcome::kOther;
  std::string outcome_detail;   // optional human-readable detail (parser error, ...)
  int64_t redelivery_of = 0;    // outcome kRedelivery: the original inbound_message id
};

// The parsed donation of an MO whose outcome is kDonation.
struct DonationDraft {
  std::string campaign;
  std::string shortcode;
  int32_t units = 0;            // >= 1
  int64_t unit_price_vnd = 0;   // > 0
  int64_t amount_vnd = 0;       // == units * unit_price_vnd (checked by the database)
  config::ChargingMode charging_mode = config::ChargingMode::kWhole;
  // The campaign's max_units_per_day_per_msisdn (0 = no cap). Evaluated by ClaimDonations,
  // or at ingest for a donation claimed there.
  int32_t daily_cap_units = 0;
  // > 0: claimed by this instance at ingest (the in-memory hand-off, docs/pipeline.md): stored
  // in state charging, leased to options().instance_id for this long, attempts 1. The caller
  // decides its daily cap (DecideDailyCaps) and charges it from memory; the database hands it
  // to anyone only after the lease expires.
  std::chrono::seconds claim_lease{0};
};

// A reply to queue in the outbox (text already rendered by the caller).
struct ReplyDraft {
  std::string purpose;          // "success", "partial", "insufficient", "syntax", ...
  std::string source_addr;      // shortcode
  std::string dest_addr;        // subscriber address to send to
  std::string text;
  std::string link;             // empty: any bound link of the operator may send it
  // > 0: queued already claimed by this instance (state claimed, attempts 1, leased this
  // long), for a reply sender of this process that gets it in memory; 0: pending, for a claim.
  std::chrono::seconds claim_lease{0};
};

// Identifies one concatenated set on one link.
struct ConcatSetKey {
  std::string link;
  std::string source_addr;
  std::string dest_addr;
  int concat_ref = 0;
  bool ref16 = false;
  int total = 0;
};

// One part of a concatenated MO.
struct ConcatPart {
  ConcatSetKey set;
  std::string operator_name;
  int seq = 0;                  // 1..total
  uint8_t data_coding = 0;
  uint8_t esm_class = 0;
  std::string raw_payload;      // this part's short_message without the UDH
  std::string text;             // this part decoded
  std::string smsc_mo_id;       // empty when unknown
  StoreTime received_at{};
};

// A delivery receipt's content, matched against outbox replies by (operator, message id).
struct ReceiptInfo {
  std::string operator_name;
  std::string smsc_message_id;  // normalised the same way as the submit_sm_resp id
  std::string stat;             // DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, ACCEPTD, ...
  std::string err;
  std::optional<StoreTime> done_at;
};

// The figures of a status query (KeywordAction::kStatus): the subscriber's charged donations to
// the campaign today (Asia/Ho_Chi_Minh day) and in all. Reversed donations are not counted.
struct StatusFigures {
  int64_t today_count = 0;
  int64_t today_amount_vnd = 0;
  int64_t total_count = 0;
  int64_t total_amount_vnd = 0;
};

// A keyword flow's effect on stored state, decided by the pipeline (billing/domain/keywords.h)
// and persisted by IngestBatch in the MO's transaction, after the MO (docs/pipeline.md
// "Keywords"). Only items that carry one pay for its statements.
struct KeywordAction {
  enum class Kind {
    // The item's donation waits for a confirmation: stored awaiting_confirmation with
    // confirm_deadline = now + confirm_window; this number's earlier waiting donations on the
    // same shortcode are failed("confirmation_replaced").
    kAwaitConfirmation,
    // The newest waiting donation of (message msisdn, shortcode) whose deadline has not passed
    // is locked (FOR UPDATE) and becomes received (charged by the claim, exactly once); none:
    // `reply` is queued.
    kConfirm,
    // Opt-out of `campaigns` recorded (opt_out rows); their waiting donations of this number
    // are failed("opted_out").
    kStop,
    // StatusFigures of (msisdn, campaigns[0]) read in the transaction; `reply` is queued with
    // the text render_status gives for them.
    kStatus,
  };
  Kind kind = Kind::kConfirm;
  std::string shortcode;                    // kAwaitConfirmation, kConfirm
  std::vector<std::string> campaigns;       // kStop (all it applies to), kStatus (one)
  bool all_campaigns = false;               // kStop from STOP ALL
  std::chrono::seconds confirm_window{0};   // kAwaitConfirmation, > 0
  std::optional<ReplyDraft> reply;          // kConfirm (nothing to confirm), kStatus
  std::function<std::string(const StatusFigures&)> render_status;  // kStatus
};

// One unit of work for IngestBatch. Valid combinations:
//  (a) message [+ donation when outcome kDonation] [+ reply]       a complete MO
//  (b) part                                                        a part kept for later
//  (c) part + message [+ donation] [+ reply] + consume_set         the part completing a set:
//      stored, then the message, then every pending part of the set marked consumed by it
//  (d) message (outcome kReceipt) + receipt                        a delivery receipt
//  (e) message + consume_set [+ donation] [+ reply]                an expired, incomplete set
// Dedupe: a part whose smsc_mo_id is already stored, or a message whose (operator, smsc_mo_id)
// is already stored, makes the whole item a duplicate: nothing is written for it (ack it).
struct IngestItem {
  std::optional<ConcatPart> part;
  std::optional<InboundMessage> message;
  std::optional<DonationDraft> donation;
  std::optional<ReplyDraft> reply;
  std::optional<ConcatSetKey> consume_set;
  std::optional<ReceiptInfo> receipt;
  // With a message that has an msisdn; kAwaitConfirmation also needs the donation (unclaimed).
  std::optional<KeywordAction> keyword;
};

// A batch whose COMMIT was sent but whose outcome could not be learned (the connection was
// lost and the database is still unreachable). The batch is neither stored nor not stored
// until ResolveIngestCommit says which; its MOs must not be answered before that.
struct IngestCommitTicket {
  std::string token;        // the batch's ingest_batch marker
  int backend_pid = 0;      // the server process that ran the COMMIT
  size_t items = 0;
  bool valid() const { return !token.empty(); }
};

// A committed MO whose deliver_sm_resp may not have reached the SMSC (loaded at start after an
// unclean stop): the fields a redelivery would repeat, and the row it would point to.
struct UncertainMo {
  int64_t inbound_message_id = 0;   // the original (for a stored redelivery: its original)
  std::string operator_name;
  std::string source_addr;
  std::string dest_addr;
  uint8_t data_coding = 0;
  uint8_t esm_class = 0;
  std::string raw_payload;
};

struct IngestResult {
  bool duplicate = false;            // already stored earlier: ack, do nothing else
  int64_t inbound_message_id = 0;    // 0 when no message was stored
  int64_t donation_id = 0;           // 0 when no donation was created
  int64_t part_id = 0;               // 0 when no part was stored
  int64_t reply_id = 0;              // 0 when no reply was queued
  // The donation was stored claimed by this instance (DonationDraft::claim_lease). False for
  // results read back from a batch marker after an in-doubt commit (claim it from the store).
  bool donation_claimed = false;
  bool reply_claimed = false;        // the reply was queued claimed (ReplyDraft::claim_lease)
  // KeywordAction::kConfirm: the donation it moved to received (0: nothing was waiting). Not
  // kept in the batch marker: after an in-doubt commit the claim finds the donation anyway.
  int64_t confirmed_donation_id = 0;
};

// A pending part loaded at restart (or by a reassembler that lost its memory).
struct StoredPart {
  int64_t id = 0;
  ConcatPart part;
};

// ---------------------------------------------------------------------------------------
// Charging

// A charge row: one per idempotency key.
struct StoredCharge {
  std::string key;                 // don-<id> or don-<id>-<unit>
  int32_t unit_index = 0;          // 0 whole, 1..n per_unit
  int32_t units = 1;               // units covered by this charge
  int64_t amount_vnd = 0;
  ChargeOutcome outcome = ChargeOutcome::kUnknown;  // charged, insufficient_funds,
                                                    // subscriber_barred, rejected, unknown
  std::string operator_reference;
  std::string detail;
};

// A claimed donation: everything the charger needs.
struct DonationWork {
  int64_t donation_id = 0;
  int64_t inbound_message_id = 0;
  std::string campaign;
  std::string shortcode;
  std::string operator_name;
  std::string msisdn;
  int32_t units = 0;
  int64_t unit_price_vnd = 0;
  int64_t amount_vnd = 0;
  config::ChargingMode charging_mode = config::ChargingMode::kWhole;
  // The state before this claim: kReceived (fresh or deferred), kCharging (an instance died
  // or its lease expired mid-charge: requests may have been sent; same keys, Status first is
  // wise), kUnknown (resolve the unknown keys with Status).
  DonationState previous_state = DonationState::kReceived;
  int32_t attempts = 0;            // claims so far, including this one
  int32_t charged_units = 0;       // from the charge rows
  int64_t charged_amount_vnd = 0;
  std::vector<StoredCharge> charges;  // rows already stored, in unit order
  // The daily cap was exceeded when this donation was first claimed: do NOT charge; record
  // kFailed with failure_reason "daily_cap" and the daily-cap reply. Sticky across claims.
  bool over_daily_cap = false;
  // The campaign's cap (0 = none) and whether it was decided already; DecideDailyCaps decides it
  // for work that did not come through ClaimDonations (which decides it at the first claim).
  int32_t daily_cap_units = 0;
  bool cap_checked = true;
  StoreTime received_at{};
  // ClaimDonations: the lease owner before this claim (empty: none). Another instance's id
  // means this claim takes over the work of an instance whose lease expired (it died or
  // stalled) — logged and counted by the charging worker.
  std::string previous_owner;
};

// The charger's verdict for one donation, persisted by RecordChargeOutcomes.
struct ChargeOutcomeRecord {
  int64_t donation_id = 0;
  // kCharged, kPartiallyCharged, kFailed (final), kUnknown (retry resolution at
  // next_attempt_at), or kReceived = deferred (breaker open / backend unavailable: back in the
  // queue at next_attempt_at, never failed).
  DonationState new_state = DonationState::kReceived;
  std::string reason;              // failure reason / deferral cause (stored, free text)
  // Charge rows learned or changed in this run. Outcomes kUnavailable/kNotFound mean "not
  // performed" and are ignored. An existing final outcome is never changed; a record that
  // contradicts one is refused (RecordResult::refused) and its donation left untouched.
  std::vector<StoredCharge> charges;
  StoreTime next_attempt_at{};     // kUnknown / kReceived: when to claim again
  std::optional<ReplyDraft> reply; // final states: the reply to queue (one per donation)
};

struct RecordResult {
  bool refused = false;            // inconsistent record (see message); nothing changed for it
  std::string message;
  DonationState state = DonationState::kReceived;  // the state after the call
  int32_t charged_units = 0;
  int64_t charged_amount_vnd = 0;
  int64_t reply_id = 0;
  bool reply_claimed = false;      // queued claimed by this instance (ReplyDraft::claim_lease)
};

// ---------------------------------------------------------------------------------------
// Replies

struct OutboxReply {
  int64_t id = 0;
  int64_t donation_id = 0;         // 0 when not a donation reply
  int64_t inbound_message_id = 0;
  std::string purpose;
  std::string operator_name;
  std::string link;                // empty: any link of the operator
  std::string source_addr;
  std::string dest_addr;
  std::string text;
  int32_t attempts = 0;            // claims so far, including this one
  StoreTime created_at{};
};

// ---------------------------------------------------------------------------------------
// Reversal and status

struct ReversalResult {
  int64_t reversal_journal_id = 0;
  int64_t reversed_amount_vnd = 0;
  bool already_reversed = false;   // an earlier call reversed it; nothing new was written
};

// The PostgreSQL server a Store's new connection reached: host and port as libpq chose them
// from the conninfo's list (multi-host: host=db1,db2 port=5432,5432), and whether it is a
// standby (pg_is_in_recovery()).
struct DbServer {
  std::string host;
  std::string port;
  bool in_recovery = false;
  std::string role() const { return in_recovery ? "standby" : "primary"; }
};

struct StoreOptions {
  std::string instance_id = "donagate";  // written to rows and used as lease owner
  int connect_timeout_s = 5;
  int statement_timeout_ms = 5000;       // 0 = none
  std::string application_name = "donagated";
  // Writers only talk to a primary. When true (the default) a conninfo without
  // target_session_attrs gets target_session_attrs=read-write (libpq skips standbys and
  // read-only sessions in a multi-host list), and every new connection is checked with
  // pg_is_in_recovery(): one that still lands on a standby (target_session_attrs=any, a
  // proxy pointing at the wrong node) is closed and the call fails transient with SQLSTATE
  // 25006, so the caller's reconnect with backoff looks again.
  bool require_primary = true;
  // Called on the calling thread after every new connection: `status` ok when it is used,
  // transient when it was refused (a standby). For logs, /status and metrics.
  std::function<void(const DbServer& server, const StoreStatus& status)> on_connect;
};

class Store {
 public:
  // Does not connect; the first call does (and reports a failure to connect as transient).
  Store(std::string conninfo, StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const StoreOptions& options() const { return options_; }

  // Connects now (if not connected). Useful at start to fail fast.
  StoreStatus Connect();
  // Round trip to the server ("SELECT 1").
  StoreStatus Ping();

  // Stores a group-commit batch in ONE transaction (a few round trips in total, not per
  // item). On ok, `results` has one entry per item, in order. On failure nothing is stored.
  // Invalid items (see IngestItem) fail the whole batch as permanent before any write.
  StoreStatus IngestBatch(const std::vector<IngestItem>& items, std::vector<IngestResult>* results);
  // The same; when `in_doubt` is given and the COMMIT's outcome cannot be learned yet (the
  // connection was lost in flight and the database does not answer), fills it and returns
  // transient. The caller then holds the batch's MOs unanswered and asks ResolveIngestCommit
  // until it answers. Without `in_doubt` such a batch is reported as a plain transient failure.
  StoreStatus IngestBatch(const std::vector<IngestItem>& items, std::vector<IngestResult>* results,
                          IngestCommitTicket* in_doubt);
  // Resolves a ticket: ok with *committed (and the batch's results) once the database answers
  // and the old server process is gone; transient while that cannot be known.
  StoreStatus ResolveIngestCommit(const IngestCommitTicket& ticket, bool* committed,
                                  std::vector<IngestResult>* results);

  // Runs of this instance (instance_run). BeginRun records a new run and returns, for every
  // earlier run of the same instance that ended without EndRun and within `window` of now,
  // the MOs without an SMSC MO id received from (its last_alive_at - horizon) until its
  // successor started, unless a later redelivery of them is stored already.
  StoreStatus BeginRun(std::chrono::seconds horizon, std::chrono::seconds window, int64_t* run_id,
                       std::vector<UncertainMo>* uncertain);
  // The write probe: updates the run's last_alive_at in a transaction of its own.
  StoreStatus TouchRun(int64_t run_id);
  // A clean stop: every committed MO was answered.
  StoreStatus EndRun(int64_t run_id);

  // Pending (unconsumed) parts received on `links` (all links when empty), oldest first.
  StoreStatus LoadPendingParts(const std::vector<std::string>& links, std::vector<StoredPart>* parts);

  // Claims up to `limit` donations ready for work: state received with next_attempt_at passed,
  // or charging/unknown whose lease expired and whose next_attempt_at passed; optionally only
  // for `operators` (all when empty). Uses FOR UPDATE SKIP LOCKED, so concurrent claimers
  // (threads or instances) never get the same donation. Sets state charging (from received),
  // lease_owner = options().instance_id, lease_until = now + lease, attempts + 1. Evaluates the
  // daily cap at first claim (see DonationWork::over_daily_cap; docs/database.md).
  StoreStatus ClaimDonations(int limit, std::chrono::seconds lease,
                             const std::vector<std::string>& operators,
                             std::vector<DonationWork>* work);

  // The daily cap of donations claimed at ingest (DonationWork with cap_checked false and a
  // cap), exactly as ClaimDonations decides it at a first claim: serialised per campaign,
  // MSISDN and Asia/Ho_Chi_Minh day by a transaction advisory lock, counted after the lock,
  // lower ids first; sets over_daily_cap and cap_checked, and records both. One transaction,
  // outside the ingest's, so the acknowledgement never waits for it.
  StoreStatus DecideDailyCaps(std::vector<DonationWork>* work);

  // Persists charger verdicts in ONE transaction: charge rows upserted by key, one balanced
  // journal per charged key (debit receivable:<operator>, credit fund:<campaign>), charged
  // units/amount recomputed from the charge rows, the state transition (+ history row), the
  // lease released, and the reply queued for final states. Replaying the same records is a
  // no-op. `results` (optional) gets one entry per record.
  StoreStatus RecordChargeOutcomes(const std::vector<ChargeOutcomeRecord>& records,
                                   std::vector<RecordResult>* results);

  // Releases this instance's lease on donations it claimed but will not work on (shutdown),
  // putting received ones back to received. Unknown/charging keep their state.
  StoreStatus ReleaseDonations(const std::vector<int64_t>& donation_ids);

  // Claims pending replies (and claimed ones whose lease expired) for `operators`.
  StoreStatus ClaimReplies(const std::vector<std::string>& operators, int limit,
                           std::chrono::seconds lease, std::vector<OutboxReply>* replies);
  // The results of submitting replies (accepted with their SMSC message ids, a temporary
  // refusal to retry at next_attempt_at, a permanent failure), for a batch in ONE transaction (one WAL flush for
  // the batch instead of one per reply: with synchronous_commit=on that flush is what limits
  // the reply rate). Each record is one of submitted / retry / failed. If the batch fails as a
  // whole, every record is retried on its own, so one bad row cannot hold back the others;
  // results[i] (optional, resized) is the status of records[i].
  struct ReplyResultRecord {
    enum class Kind { kSubmitted, kRetry, kFailed };
    Kind kind = Kind::kSubmitted;
    int64_t reply_id = 0;
    std::vector<std::string> smsc_message_ids;  // kSubmitted
    StoreTime next_attempt_at{};                // kRetry
    std::string reason;                         // kRetry, kFailed
  };
  StoreStatus RecordReplyResults(const std::vector<ReplyResultRecord>& records,
                                 std::vector<StoreStatus>* results);

  // Deletes parked receipts older than `older_than` that never found their reply (ids the SMSC
  // reused or replies of another system); *purged (optional) gets the count.
  StoreStatus PurgePendingReceipts(std::chrono::seconds older_than, int64_t* purged);

  // Finance reversal through reverse_donation() (needs EXECUTE on it: donagate_reverse or
  // the owner). Not charged → permanent with the server's explanation.
  StoreStatus ReverseDonation(int64_t donation_id, const std::string& reason,
                              const std::string& actor, ReversalResult* result);

  // Read helpers (health, status page, tests).
  StoreStatus CountUnknownCharges(int64_t* count);
  StoreStatus CountOutboxBacklog(int64_t* count);  // pending + claimed replies
  // Unfinished donations (received, charging, unknown) by state; final states are not counted.
  StoreStatus CountDonationsByState(std::map<std::string, int64_t>* counts);
  StoreStatus CurrentSchemaVersion(int* version);

  // Donations awaiting confirmation whose confirm_deadline passed become failed
  // ("confirmation_expired"), never charged; at most 1000 per call, SKIP LOCKED (another
  // instance may sweep at the same time). *expired (optional) gets the count.
  StoreStatus ExpireConfirmations(int64_t* expired);

 private:
  // After a connection loss during an ingest COMMIT: reconnects, waits for the old session to
  // end and reports whether the batch's marker (token) was committed, with its results.
  StoreStatus ResolveIngestCommit(const std::string& token, int old_backend_pid, size_t items,
                                  bool* committed, std::vector<IngestResult>* results);

  // One reply result in a transaction of its own (RecordReplyResults' fallback when a batch
  // fails, so that one bad row cannot hold back the others).
  // The SMSC accepted the reply: stores its message id(s) (one per submitted part, already
  // normalised), marks it submitted and applies any receipt that arrived first.
  StoreStatus MarkReplySubmitted(int64_t reply_id, const std::vector<std::string>& smsc_message_ids);
  // A temporary refusal (throttled, no link bound): back to pending at next_attempt_at.
  StoreStatus MarkReplyRetry(int64_t reply_id, StoreTime next_attempt_at, const std::string& reason);
  // A permanent refusal or too many attempts.
  StoreStatus MarkReplyFailed(int64_t reply_id, const std::string& reason);

  // The statements of MarkReplySubmitted / MarkReplyRetry / MarkReplyFailed, run inside the
  // caller's transaction.
  StoreStatus ReplySubmittedStatements(int64_t reply_id, const std::vector<std::string>& smsc_message_ids);
  StoreStatus ReplyRetryStatement(int64_t reply_id, StoreTime next_attempt_at, const std::string& reason);
  StoreStatus ReplyFailedStatement(int64_t reply_id, const std::string& reason);

  class Impl;
  std::string conninfo_;
  StoreOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace donagate::billing
