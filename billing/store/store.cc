#include "billing/store/store.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <random>
#include <thread>
#include <optional>
#include <set>
#include <unordered_map>

#include "billing/store/keyword_actions.h"
#include "billing/store/pg.h"

namespace donagate::billing {
namespace {


// ---------------------------------------------------------------------------------------
// Time: sent as microseconds since the Unix epoch, read back the same way.

int64_t ToMicros(StoreTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
StoreTime FromMicros(int64_t us) { return StoreTime(std::chrono::microseconds(us)); }

constexpr std::string_view kMicrosToTs = "('epoch'::timestamptz + (%s) * interval '1 microsecond')";

std::string Ts(std::string_view expr) {
  std::string out(kMicrosToTs);
  out.replace(out.find("%s"), 2, expr);
  return out;
}
std::string Micros(std::string_view column) {
  return "(extract(epoch from " + std::string(column) + ") * 1000000)::bigint";
}

// PostgreSQL text must be valid UTF-8 without NUL. Fields that come from the network (addresses,
// ids, decoded text) are stored as given when valid; a NUL or an invalid byte is written as the
// four characters \xNN, so nothing is lost or silently dropped and the batch is not refused
// (the raw bytes of the message are kept in raw_payload anyway).
std::string Clean(std::string_view in) {
  auto valid_from = [&](size_t i, size_t* len) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || c == 0 || i + n > in.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(in[i + k]) & 0xc0) != 0x80) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3f);
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;  // overlong, surrogate
    *len = n;
    return true;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    size_t len = 0;
    if (valid_from(i, &len)) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      unsigned char c = static_cast<unsigned char>(in[i]);
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
      ++i;
    }
  }
  return out;
}

std::vector<std::string> CleanAll(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (const auto& s : in) out.push_back(Clean(s));
  return out;
}

std::optional<std::string> NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return Clean(s);
}

bool CheckedMul(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

StoreStatus Invalid(size_t index, const std::string& why) {
  return StoreStatus::Permanent("ingest item " + std::to_string(index) + ": " + why);
}

StoreStatus ValidateItem(size_t i, const IngestItem& item) {
  if (!item.part && !item.message) return Invalid(i, "neither a part nor a message");
  if (item.part) {
    const ConcatPart& p = *item.part;
    if (p.set.total < 1 || p.set.total > 255) return Invalid(i, "part total out of range 1..255");
    if (p.seq < 1 || p.seq > p.set.total) return Invalid(i, "part seq out of range 1..total");
    if (p.set.concat_ref < 0 || p.set.concat_ref > 65535) return Invalid(i, "concat ref out of range");
    if (p.set.link.empty() || p.operator_name.empty()) return Invalid(i, "part without link/operator");
  }
  if (item.message) {
    const InboundMessage& m = *item.message;
    if (m.link.empty() || m.operator_name.empty()) return Invalid(i, "message without link/operator");
    bool is_donation = m.outcome == MessageOutcome::kDonation;
    if (is_donation != item.donation.has_value())
      return Invalid(i, "a donation draft must come exactly with outcome donation");
    if (m.outcome == MessageOutcome::kReceipt && !item.receipt)
      return Invalid(i, "outcome receipt without receipt info");
    if (item.receipt && m.outcome != MessageOutcome::kReceipt)
      return Invalid(i, "receipt info with an outcome other than receipt");
    if ((m.outcome == MessageOutcome::kRedelivery) != (m.redelivery_of != 0))
      return Invalid(i, "outcome redelivery needs redelivery_of, and only it");
    if (m.outcome == MessageOutcome::kRedelivery && (item.reply || item.part || item.consume_set))
      return Invalid(i, "a redelivery is recorded, never answered or assembled");
    if (item.donation) {
      const DonationDraft& d = *item.donation;
      bool msisdn_ok = m.msisdn.size() >= 10 && m.msisdn.size() <= 14 && m.msisdn.rfind("84", 0) == 0 &&
                       m.msisdn.find_first_not_of("0123456789") == std::string::npos;
      if (!msisdn_ok) return Invalid(i, "donation msisdn '" + Clean(m.msisdn) + "' is not 84 + 8..12 digits");
      if (d.campaign.empty()) return Invalid(i, "donation without a campaign");
      if (d.units < 1) return Invalid(i, "donation units must be >= 1");
      if (d.unit_price_vnd < 1) return Invalid(i, "donation unit price must be > 0");
      int64_t amount = 0;
      if (!CheckedMul(d.units, d.unit_price_vnd, &amount) || amount != d.amount_vnd)
        return Invalid(i, "donation amount is not units x unit price");
      if (d.daily_cap_units < 0) return Invalid(i, "negative daily cap");
      const bool awaits = item.keyword && item.keyword->kind == KeywordAction::Kind::kAwaitConfirmation;
      if (item.reply && !awaits)
        return Invalid(i, "a donation is replied to after charging, not at ingest (unless it awaits confirmation)");
      if (awaits && (d.claim_lease.count() > 0 || item.keyword->confirm_window.count() <= 0))
        return Invalid(i, "a donation awaiting confirmation is neither claimed nor without a window");
    }
  } else {
    if (item.donation || item.reply || item.consume_set || item.receipt)
      return Invalid(i, "donation/reply/consume_set/receipt need a message");
  }
  if (item.receipt && (item.receipt->smsc_message_id.empty() || item.receipt->operator_name.empty()))
    return Invalid(i, "receipt without message id or operator");
  if (item.keyword) {
    if (!item.message || item.message->msisdn.empty()) return Invalid(i, "a keyword action needs a message with an msisdn");
    if ((item.keyword->kind == KeywordAction::Kind::kAwaitConfirmation) != item.donation.has_value())
      return Invalid(i, "a donation draft comes with a keyword action only to await confirmation");
  }
  if (item.reply && (item.reply->dest_addr.empty() || item.reply->source_addr.empty()))
    return Invalid(i, "reply without source or destination");
  return StoreStatus::Ok();
}

// ---------------------------------------------------------------------------------------
// SQL

const std::string kInsertPartsSql = R"(
WITH input AS MATERIALIZED (
  SELECT nextval('mo_part_id_seq') AS id, u.*
    FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bool[],
                $9::int[], $10::int[], $11::int[], $12::int[], $13::text[], $14::text[],
                $15::text[], $16::bigint[])
      AS u(idx, link, operator, source_addr, dest_addr, concat_ref, ref16, total, seq, data_coding,
           esm_class, raw_hex, text, smsc_mo_id, received_us)),
ins AS (
  INSERT INTO mo_part (id, instance_id, link, operator, source_addr, dest_addr, concat_ref, ref16,
                       total, seq, data_coding, esm_class, raw_payload, text, smsc_mo_id, received_at)
  SELECT id, $1, link, operator, source_addr, dest_addr, concat_ref, ref16, total, seq, data_coding,
         esm_class, decode(raw_hex, 'hex'), text, smsc_mo_id, )" + Ts("received_us") + R"(
    FROM input ORDER BY idx
  ON CONFLICT (operator, smsc_mo_id) WHERE smsc_mo_id IS NOT NULL DO NOTHING
  RETURNING id)
SELECT i.idx, i.id, ins.id IS NOT NULL FROM input i LEFT JOIN ins ON ins.id = i.id ORDER BY i.idx)";

const std::string kInsertMessagesSql = R"(
WITH input AS MATERIALIZED (
  SELECT nextval('inbound_message_id_seq') AS id, u.*
    FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[],
                $9::int[], $10::text[], $11::text[], $12::text[], $13::int[], $14::int[],
                $15::bigint[], $16::text[], $17::text[], $32::bigint[])
      AS u(idx, link, operator, source_addr, msisdn, dest_addr, data_coding, esm_class, raw_hex,
           text, smsc_mo_id, concat_ref, concat_total, received_us, outcome, outcome_detail,
           redelivery_of)),
msg AS (
  INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr,
                               data_coding, esm_class, raw_payload, text, smsc_mo_id, concat_ref,
                               concat_total, received_at, outcome, outcome_detail, redelivery_of)
  SELECT id, $1, link, operator, source_addr, msisdn, dest_addr, data_coding, esm_class,
         decode(raw_hex, 'hex'), text, smsc_mo_id, concat_ref, concat_total,
         )" + Ts("received_us") + R"(, outcome, outcome_detail, redelivery_of
    FROM input ORDER BY idx
  ON CONFLICT (operator, smsc_mo_id) WHERE smsc_mo_id IS NOT NULL DO NOTHING
  RETURNING id),
dinput AS (
  SELECT u.* FROM unnest($18::int[], $19::text[], $20::text[], $21::int[], $22::bigint[],
                         $23::bigint[], $24::text[], $25::int[], $33::int[])
    AS u(idx, campaign, shortcode, units, unit_price_vnd, amount_vnd, charging_mode, daily_cap_units,
         lease_s)),
don AS (
  INSERT INTO donation (inbound_message_id, campaign, operator, msisdn, shortcode, units,
                        unit_price_vnd, amount_vnd, charging_mode, daily_cap_units, received_at,
                        state, lease_owner, lease_until, attempts)
  SELECT i.id, d.campaign, i.operator, i.msisdn, d.shortcode, d.units, d.unit_price_vnd,
         d.amount_vnd, d.charging_mode, d.daily_cap_units, )" + Ts("i.received_us") + R"(,
         CASE WHEN d.lease_s > 0 THEN 'charging' ELSE 'received' END,
         CASE WHEN d.lease_s > 0 THEN $1 END,
         CASE WHEN d.lease_s > 0 THEN now() + make_interval(secs => d.lease_s) END,
         CASE WHEN d.lease_s > 0 THEN 1 ELSE 0 END
    FROM dinput d JOIN input i ON i.idx = d.idx JOIN msg m ON m.id = i.id
   ORDER BY d.idx
  RETURNING id, inbound_message_id, state),
rinput AS (
  SELECT u.* FROM unnest($26::int[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[],
                         $34::int[])
    AS u(idx, purpose, source_addr, dest_addr, text, link, lease_s)),
rep AS (
  INSERT INTO outbox (inbound_message_id, purpose, operator, link, source_addr, dest_addr, text,
                      state, lease_owner, lease_until, attempts)
  SELECT i.id, r.purpose, i.operator, r.link, r.source_addr, r.dest_addr, r.text,
         CASE WHEN r.lease_s > 0 THEN 'claimed' ELSE 'pending' END,
         CASE WHEN r.lease_s > 0 THEN $1 END,
         CASE WHEN r.lease_s > 0 THEN now() + make_interval(secs => r.lease_s) END,
         CASE WHEN r.lease_s > 0 THEN 1 ELSE 0 END
    FROM rinput r JOIN input i ON i.idx = r.idx JOIN msg m ON m.id = i.id
   ORDER BY r.idx
  RETURNING id, inbound_message_id)
SELECT i.idx, i.id, m.id IS NOT NULL, d.id, r.id
  FROM input i LEFT JOIN msg m ON m.id = i.id
       LEFT JOIN don d ON d.inbound_message_id = i.id
       LEFT JOIN rep r ON r.inbound_message_id = i.id
 ORDER BY i.idx)";

constexpr std::string_view kConsumeSetsSql = R"(
UPDATE mo_part p SET consumed_at = now(), consumed_by = u.message_id
  FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bool[], $6::int[], $7::bigint[])
    AS u(link, source_addr, dest_addr, concat_ref, ref16, total, message_id)
 WHERE p.consumed_at IS NULL AND p.link = u.link AND p.source_addr = u.source_addr
   AND p.dest_addr = u.dest_addr AND p.concat_ref = u.concat_ref AND p.ref16 = u.ref16
   AND p.total = u.total)";

// The batch's delivery receipts applied as one set, with the result of apply_receipt()
// (0005) called for each in arrival order: a receipt whose message id no reply carries is
// parked in pending_receipt; a reply keeps the last receipt's stat, error and time; its
// state becomes the first failure of the batch (a failure state is never overwritten), else
// delivered if a DELIVRD came, else stays (ACCEPTD, ENROUTE, UNKNOWN).
// Why not apply_receipt() per row: a data-modifying SQL function is executed, not inlined,
// so each receipt paid an executor start-up for its three sub-statements
// (docs/performance.md, "Plans").
// For the transactions whose set statements run over a handful of rows when traffic is light
// (the ingest with its receipts, the reply results): PostgreSQL's auto mode compares a custom
// plan made for 3 rows with a generic one costed for unknown arrays, keeps choosing custom,
// and so plans again on every call: at 1 bind x window 10, 164 us of planning per donation
// for the receipts and 64 for the reply results against 110 and 150 of execution. The generic
// plans are index plans like the custom ones (sequential scans are ruled out on this
// connection, see Store::Connect), so they are forced for these transactions only.
constexpr std::string_view kBeginWithGenericPlans = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

const std::string kApplyReceiptsSql = R"(
WITH t AS MATERIALIZED (
  SELECT u.operator, u.message_id, u.stat, u.err, )" + Ts("u.done_us") + R"( AS done_at,
         u.inbound_id, u.ord,
         (SELECT m.outbox_id FROM outbox_message_id m
           WHERE m.operator = u.operator AND m.smsc_message_id = u.message_id
           ORDER BY m.outbox_id DESC LIMIT 1) AS outbox_id,
         CASE upper(u.stat) WHEN 'DELIVRD' THEN 'delivered' WHEN 'UNDELIV' THEN 'undeliverable'
                            WHEN 'EXPIRED' THEN 'expired' WHEN 'REJECTD' THEN 'rejected'
                            WHEN 'DELETED' THEN 'failed' END AS mapped
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
           WITH ORDINALITY AS u(operator, message_id, stat, err, done_us, inbound_id, ord)),
parked AS (
  INSERT INTO pending_receipt (operator, smsc_message_id, stat, err, done_at, inbound_message_id)
  SELECT operator, message_id, stat, err, done_at, inbound_id FROM t
   WHERE outbox_id IS NULL ORDER BY ord),
per_reply AS (
  SELECT outbox_id,
         (array_agg(stat ORDER BY ord DESC))[1] AS stat,
         (array_agg(err ORDER BY ord DESC))[1] AS err,
         (array_agg(coalesce(done_at, now()) ORDER BY ord DESC))[1] AS receipt_at,
         (array_agg(mapped ORDER BY ord) FILTER (WHERE mapped <> 'delivered'))[1] AS first_failure,
         bool_or(mapped = 'delivered') AS delivered
    FROM t WHERE outbox_id IS NOT NULL GROUP BY outbox_id)
UPDATE outbox o
   SET receipt_stat = p.stat, receipt_err = p.err, receipt_at = p.receipt_at,
       state = CASE WHEN o.state IN ('undeliverable', 'expired', 'rejected', 'failed') THEN o.state
                    WHEN p.first_failure IS NOT NULL THEN p.first_failure
                    WHEN p.delivered THEN 'delivered'
                    ELSE o.state END,
       updated_at = now()
  FROM per_reply p WHERE o.id = p.outbox_id)";

// The next_attempt_at of the $1-th open donation in claim order (NULL: fewer are open).
const std::string kClaimHorizonSql = R"(
SELECT )" + Micros("next_attempt_at") + R"( FROM donation
 WHERE final_at IS NULL AND next_attempt_at <= now()
 ORDER BY next_attempt_at, id OFFSET $1 LIMIT 1)";

const std::string kClaimDonationsSql = R"(
WITH c AS (
  SELECT id, state, cap_checked_at IS NULL AS cap_unchecked, lease_owner AS previous_owner
    FROM donation
   WHERE final_at IS NULL AND state IN ('received', 'charging', 'unknown')
     AND next_attempt_at <= least(now(), coalesce()" + Ts("$5::bigint") + R"(, now()))
     AND (lease_until IS NULL OR lease_until < now())
     AND (cardinality($4::text[]) = 0 OR operator = ANY($4::text[]))
   ORDER BY next_attempt_at, id
   LIMIT $2
   FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE donation d
     SET state = CASE WHEN d.state = 'received' THEN 'charging' ELSE d.state END,
         lease_owner = $1, lease_until = now() + make_interval(secs => $3::int),
         attempts = d.attempts + 1, updated_at = now(),
         cap_checked_at = coalesce(d.cap_checked_at, now())
    FROM c WHERE d.id = c.id
  RETURNING d.id, d.inbound_message_id, d.campaign, d.shortcode, d.operator, d.msisdn, d.units,
            d.unit_price_vnd, d.amount_vnd, d.charging_mode, c.state AS previous_state,
            d.attempts, d.over_daily_cap, d.daily_cap_units, c.cap_unchecked,
            )" + Micros("d.received_at") + R"( AS received_us,
            ((d.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)::text AS local_day,
            coalesce(c.previous_owner, '') AS previous_owner),
tr AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'received', 'charging', 'claimed', $1 FROM u WHERE previous_state = 'received')
SELECT * FROM u ORDER BY id)";

constexpr std::string_view kLoadChargesSql = R"(
SELECT donation_id, key, unit_index, units, amount_vnd, outcome, coalesce(operator_reference, ''),
       coalesce(detail, '')
  FROM charge WHERE donation_id = ANY($1::bigint[]) ORDER BY donation_id, unit_index, key)";

constexpr std::string_view kCapLockSql = R"(
SELECT pg_advisory_xact_lock(hashtextextended(k, 7001)) FROM (SELECT DISTINCT unnest($1::text[]) AS k ORDER BY 1) s)";

// Units already committed for (campaign, msisdn, local day), excluding the donations being
// evaluated. Counted: donations whose cap was checked (claimed at least once), not refused by
// the cap and not failed; partially charged ones count their charged units.
constexpr std::string_view kCapUsageSql = R"(
SELECT d.campaign, d.msisdn, ((d.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)::text AS day,
       sum(CASE WHEN d.state = 'partially_charged' THEN d.charged_units ELSE d.units END)
  FROM donation d
  JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::text[]) AS k(campaign, msisdn, day)) k
    ON d.campaign = k.campaign AND d.msisdn = k.msisdn
   AND (d.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date = k.day::date
 WHERE d.cap_checked_at IS NOT NULL AND NOT d.over_daily_cap AND d.state <> 'failed'
   AND d.id <> ALL($4::bigint[])
 GROUP BY 1, 2, 3)";

constexpr std::string_view kMarkOverCapSql = R"(
UPDATE donation SET over_daily_cap = true, updated_at = now() WHERE id = ANY($1::bigint[]))";

constexpr std::string_view kLockDonationsSql = R"(
SELECT id, state, units, unit_price_vnd, amount_vnd, charging_mode, operator, campaign
  FROM donation WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)";

// Two index lookups (by donation, and by key for keys another donation might own): written as
// one OR, the planner chose a seq scan of `charge` once a batch had a few hundred ids.
constexpr std::string_view kExistingChargesSql = R"(
SELECT key, donation_id, unit_index, units, amount_vnd, outcome, coalesce(operator_reference, ''),
       coalesce(detail, '')
  FROM charge WHERE donation_id = ANY($1::bigint[])
UNION
SELECT key, donation_id, unit_index, units, amount_vnd, outcome, coalesce(operator_reference, ''),
       coalesce(detail, '')
  FROM charge WHERE key = ANY($2::text[]))";

constexpr std::string_view kUpsertChargesSql = R"(
INSERT INTO charge AS c (key, donation_id, unit_index, units, amount_vnd, outcome,
                         operator_reference, detail, resolved_at)
SELECT u.key, u.donation_id, u.unit_index, u.units, u.amount_vnd, u.outcome,
       u.operator_reference, u.detail, CASE WHEN u.outcome <> 'unknown' THEN now() END
  FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::bigint[], $6::text[], $7::text[],
              $8::text[])
    AS u(key, donation_id, unit_index, units, amount_vnd, outcome, operator_reference, detail)
ON CONFLICT (key) DO UPDATE
   SET outcome = EXCLUDED.outcome,
       operator_reference = coalesce(EXCLUDED.operator_reference, c.operator_reference),
       detail = EXCLUDED.detail, attempts = c.attempts + 1, updated_at = now(),
       resolved_at = EXCLUDED.resolved_at
 WHERE c.outcome = 'unknown' AND c.donation_id = EXCLUDED.donation_id
   AND c.amount_vnd = EXCLUDED.amount_vnd)";

// One journal per charged key that has none yet: debit receivable:<operator>, credit
// fund:<campaign>, same amount. The keys come from the transaction's merged view of the
// locked donations (every charged key, old and new); the partial unique index
// ledger_entry_one_journal_per_charge skips keys already booked, so the statement reads no
// table (an anti-join against ledger_entry was planned as a scan of the whole index).
constexpr std::string_view kBookChargesSql = R"(
WITH need AS MATERIALIZED (
  SELECT u.key, u.amount_vnd, u.donation_id, u.operator, u.campaign, u.ord,
         nextval('ledger_journal_id_seq') AS journal_id
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY
      AS u(key, donation_id, amount_vnd, operator, campaign, ord))
INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key, created_by)
SELECT n.journal_id,
       CASE s.direction WHEN 'debit' THEN 'receivable:' || n.operator ELSE 'fund:' || n.campaign END,
       s.direction, n.amount_vnd, n.donation_id, n.key, $6
  FROM need n CROSS JOIN (VALUES (1, 'debit'), (2, 'credit')) AS s(ord, direction)
 ORDER BY n.ord, s.ord
ON CONFLICT (charge_key, direction) WHERE reverses_journal_id IS NULL AND charge_key IS NOT NULL
DO NOTHING)";

// The state change of each recorded outcome. An ordinary outcome (charging → a final state,
// for the reason failure_reason stores) is recorded on the donation row itself (final_state,
// final_by: migration 0013) with no history row: its charge rows and journal prove it, and
// donation_history shows it. Every other transition gets its history row.
const std::string kUpdateDonationsSql = R"(
WITH u AS (
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[],
                       $7::bigint[], $8::bool[], $10::text[])
    AS u(id, from_state, to_state, reason, charged_units, charged_amount_vnd, next_us, final, why)),
upd AS (
  UPDATE donation d
     SET state = u.to_state, failure_reason = u.reason, charged_units = u.charged_units,
         charged_amount_vnd = u.charged_amount_vnd, lease_owner = NULL, lease_until = NULL,
         next_attempt_at = CASE WHEN u.next_us IS NULL THEN d.next_attempt_at
                                ELSE )" + Ts("u.next_us") + R"( END,
         final_at = CASE WHEN u.final THEN now() ELSE d.final_at END, updated_at = now(),
         final_state = CASE WHEN u.final AND u.from_state = 'charging'
                                 AND u.why = coalesce(u.reason, u.to_state) THEN u.to_state END,
         final_by = CASE WHEN u.final AND u.from_state = 'charging'
                              AND u.why = coalesce(u.reason, u.to_state) THEN $9 END
    FROM u WHERE d.id = u.id
  RETURNING d.id, d.final_state IS NOT NULL AS implied)
INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
SELECT u.id, u.from_state, u.to_state, u.why, $9 FROM u JOIN upd ON upd.id = u.id
 WHERE u.from_state IS DISTINCT FROM u.to_state AND NOT upd.implied)";

constexpr std::string_view kQueueDonationRepliesSql = R"(
INSERT INTO outbox AS o (donation_id, inbound_message_id, purpose, operator, link, source_addr,
                         dest_addr, text, state, lease_owner, lease_until, attempts)
SELECT d.id, d.inbound_message_id, r.purpose, d.operator, r.link, r.source_addr, r.dest_addr, r.text,
       CASE WHEN r.lease_s > 0 THEN 'claimed' ELSE 'pending' END,
       CASE WHEN r.lease_s > 0 THEN $7 END,
       CASE WHEN r.lease_s > 0 THEN now() + make_interval(secs => r.lease_s) END,
       CASE WHEN r.lease_s > 0 THEN 1 ELSE 0 END
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::int[])
    AS r(donation_id, purpose, source_addr, dest_addr, text, link, lease_s)
  JOIN donation d ON d.id = r.donation_id
ON CONFLICT (donation_id) WHERE donation_id IS NOT NULL DO NOTHING
RETURNING o.id, o.donation_id, o.state = 'claimed')";

// The next_attempt_at of one operator's $2-th ready reply in claim order (NULL: fewer).
const std::string kClaimRepliesHorizonSql = R"(
SELECT )" + Micros("next_attempt_at") + R"( FROM outbox
 WHERE operator = $1 AND closed_at IS NULL AND state IN ('pending', 'claimed')
   AND next_attempt_at <= now()
 ORDER BY next_attempt_at OFFSET $2 LIMIT 1)";

const std::string kClaimRepliesSql = R"(
WITH c AS (
  SELECT id FROM outbox
   WHERE closed_at IS NULL AND state IN ('pending', 'claimed')
     AND next_attempt_at <= least(now(), coalesce()" + Ts("$5::bigint") + R"(, now()))
     AND (lease_until IS NULL OR lease_until < now())
     AND operator = ANY($4::text[])
   ORDER BY next_attempt_at, id
   LIMIT $2
   FOR UPDATE SKIP LOCKED)
UPDATE outbox o
   SET state = 'claimed', lease_owner = $1, lease_until = now() + make_interval(secs => $3::int),
       attempts = o.attempts + 1, updated_at = now()
  FROM c WHERE o.id = c.id
RETURNING o.id, coalesce(o.donation_id, 0), coalesce(o.inbound_message_id, 0), o.purpose, o.operator,
          coalesce(o.link, ''), o.source_addr, o.dest_addr, o.text, o.attempts,
          )" + Micros("o.created_at");

// The batch form of ReplySubmittedStatements: outbox rows → submitted, their SMSC message ids
// (one per part). Returns the ids that exist. (That the donation was answered is this row's
// submitted_at; the donation row is not touched again.)
constexpr std::string_view kRepliesSubmittedSql = R"(
WITH upd AS (
  UPDATE outbox o
     SET state = CASE WHEN o.state IN ('pending', 'claimed') THEN 'submitted' ELSE o.state END,
         submitted_at = coalesce(o.submitted_at, now()), closed_at = coalesce(o.closed_at, now()),
         lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = now()
    FROM (SELECT DISTINCT unnest($1::bigint[]) AS id) u
   WHERE o.id = u.id
  RETURNING o.id, o.operator, o.donation_id),
ids AS (
  INSERT INTO outbox_message_id (outbox_id, operator, smsc_message_id, part)
  SELECT m.reply_id, upd.operator, m.message_id, m.part
    FROM unnest($2::bigint[], $3::text[], $4::int[]) AS m(reply_id, message_id, part)
    JOIN upd ON upd.id = m.reply_id
  ON CONFLICT DO NOTHING)
SELECT id FROM upd)";

// Receipts that overtook their submit_sm_resp (parked in pending_receipt): applied once the
// message ids are stored, in arrival order. A separate statement: apply_receipt() must see the
// outbox_message_id rows the previous statement inserted.
constexpr std::string_view kApplyOvertakenReceiptsSql = R"(
WITH k AS (
  SELECT DISTINCT o.operator, m.message_id
    FROM unnest($1::bigint[], $2::text[]) AS m(reply_id, message_id)
    JOIN outbox o ON o.id = m.reply_id),
p AS (
  DELETE FROM pending_receipt pr USING k
   WHERE pr.operator = k.operator AND pr.smsc_message_id = k.message_id
  RETURNING pr.*)
SELECT apply_receipt(s.operator, s.smsc_message_id, s.stat, s.err, s.done_at, s.inbound_message_id)
  FROM (SELECT * FROM p ORDER BY id) s)";

}  // namespace

// ---------------------------------------------------------------------------------------

class Store::Impl {
 public:
  pg::Connection conn;
  std::mt19937_64 rng{std::random_device{}()};
  uint64_t batches = 0;
};

namespace {

// results[] of ingest_batch: five numbers per item.
std::string FlattenResults(const std::vector<IngestResult>& results) {
  std::string out = "{";
  for (size_t i = 0; i < results.size(); ++i) {
    const IngestResult& r = results[i];
    if (i) out += ',';
    out += (r.duplicate ? "1," : "0,") + std::to_string(r.inbound_message_id) + ',' +
           std::to_string(r.donation_id) + ',' + std::to_string(r.part_id) + ',' +
           std::to_string(r.reply_id);
  }
  return out + "}";
}

bool UnflattenResults(std::string_view text, size_t items, std::vector<IngestResult>* out) {
  std::vector<int64_t> numbers;
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  text = text.substr(1, text.size() - 2);
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || ptr != part.data() + part.size()) return false;
    numbers.push_back(v);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  if (numbers.size() != items * 5) return false;
  out->assign(items, IngestResult());
  for (size_t i = 0; i < items; ++i) {
    (*out)[i].duplicate = numbers[i * 5] != 0;
    (*out)[i].inbound_message_id = numbers[i * 5 + 1];
    (*out)[i].donation_id = numbers[i * 5 + 2];
    (*out)[i].part_id = numbers[i * 5 + 3];
    (*out)[i].reply_id = numbers[i * 5 + 4];
  }
  return true;
}

}  // namespace

Store::Store(std::string conninfo, StoreOptions options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

Store::~Store() = default;

StoreStatus Store::Connect() {
  if (impl_->conn.Alive()) return StoreStatus::Ok();
  std::vector<std::pair<std::string, std::string>> overrides = {
      {"connect_timeout", std::to_string(std::max(1, options_.connect_timeout_s))}};
  if (!options_.application_name.empty())
    overrides.emplace_back("application_name", options_.application_name);
  if (options_.require_primary && !pg::ConninfoSets(conninfo_, "target_session_attrs"))
    overrides.emplace_back("target_session_attrs", "read-write");
  StoreStatus st = impl_->conn.Ensure(conninfo_, overrides);
  if (!st.ok()) return st;
  // A COMMIT waiting for a synchronous standby that is gone is not bounded by the server's
  // statement_timeout: cancel it from here, a little later (pg.h SetCancelAfter).
  impl_->conn.SetCancelAfter(options_.statement_timeout_ms > 0
                                 ? std::chrono::milliseconds(options_.statement_timeout_ms + 250)
                                 : std::chrono::milliseconds(0));
  std::string setup = "SET statement_timeout = " + std::to_string(std::max(0, options_.statement_timeout_ms)) +
                      "; SET client_min_messages = warning; SET TIME ZONE 'UTC'"
                      // Plans are cached (generic after five executions), including the
                      // ones PostgreSQL prepares inside our statements: foreign-key checks,
                      // the ledger's balance trigger. Re-planning them per row cost more than
                      // executing them (docs/performance.md, "Plans"). The tables grow from
                      // empty, so a generic plan made while `charge` had a few rows once kept
                      // seq-scanning it at 50 000 rows; on this connection a sequential scan
                      // is never the right plan (every statement of the data path has an
                      // index to use), so it is ruled out rather than re-planned. JIT is
                      // off: it triggers on estimated cost, and a ruled-out scan costs 10^10
                      // (the pending-receipt purge, which has no index, was JIT-compiled for
                      // 360 ms); no statement here runs long enough to gain from it.
                      "; SET plan_cache_mode = auto; SET enable_seqscan = off; SET jit = off"
                      // Which server this is, in the same round trip (the last result).
                      "; SELECT pg_is_in_recovery()";
  pg::Result r;
  st = impl_->conn.Exec(setup, &r);
  if (!st.ok()) {
    impl_->conn.Close();
    return st;
  }
  DbServer server;
  server.host = impl_->conn.Host();
  server.port = impl_->conn.Port();
  server.in_recovery = r.rows() == 1 && r.Bool(0, 0);
  if (server.in_recovery && options_.require_primary) {
    impl_->conn.Close();
    st = StoreStatus::Transient("refusing to write to a standby: " + server.host + ":" + server.port +
                                " is in recovery (pg_is_in_recovery); reconnecting to find the primary")
             .WithSqlstate("25006");
  }
  if (options_.on_connect) options_.on_connect(server, st);
  return st;
}

StoreStatus Store::Ping() {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return impl_->conn.Exec("SELECT 1");
}

// ---------------------------------------------------------------------------------------
// IngestBatch

StoreStatus Store::IngestBatch(const std::vector<IngestItem>& items, std::vector<IngestResult>* results) {
  return IngestBatch(items, results, nullptr);
}

StoreStatus Store::IngestBatch(const std::vector<IngestItem>& items, std::vector<IngestResult>* results,
                               IngestCommitTicket* in_doubt) {
  results->clear();
  if (in_doubt) *in_doubt = IngestCommitTicket();
  for (size_t i = 0; i < items.size(); ++i) {
    StoreStatus st = ValidateItem(i, items[i]);
    if (!st.ok()) return st;
  }
  std::vector<IngestResult> out(items.size());
  if (items.empty()) return StoreStatus::Ok();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  const std::string& instance = options_.instance_id;

  bool has_parts = false, has_follow_up = false, has_keyword = false;
  for (const IngestItem& it : items) {
    if (it.part) has_parts = true;
    if (it.consume_set || it.receipt) has_follow_up = true;
    if (it.keyword) has_keyword = true;
  }
  pg::Transaction tx(conn);
  st = tx.Begin(kBeginWithGenericPlans);
  if (!st.ok()) return st;

  std::vector<bool> part_duplicate(items.size(), false);
  if (has_parts) {
    std::vector<int64_t> idx, ref, ref16_dummy, total, seq, dc, esm, rec;
    std::vector<bool> ref16;
    std::vector<std::string> link, op, src, dst, raw, text;
    std::vector<std::optional<std::string>> mo_id;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].part) continue;
      const ConcatPart& p = *items[i].part;
      idx.push_back(static_cast<int64_t>(i));
      link.push_back(Clean(p.set.link));
      op.push_back(Clean(p.operator_name));
      src.push_back(Clean(p.set.source_addr));
      dst.push_back(Clean(p.set.dest_addr));
      ref.push_back(p.set.concat_ref);
      ref16.push_back(p.set.ref16);
      total.push_back(p.set.total);
      seq.push_back(p.seq);
      dc.push_back(p.data_coding);
      esm.push_back(p.esm_class);
      raw.push_back(pg::HexEncode(p.raw_payload));
      text.push_back(Clean(p.text));
      mo_id.push_back(NullIfEmpty(p.smsc_mo_id));
      rec.push_back(ToMicros(p.received_at));
    }
    pg::Params params;
    params.Text(instance).IntArray(idx).TextArray(link).TextArray(op).TextArray(src).TextArray(dst)
        .IntArray(ref).BoolArray(ref16).IntArray(total).IntArray(seq).IntArray(dc).IntArray(esm)
        .TextArray(raw).TextArray(text).TextArray(mo_id).IntArray(rec);
    pg::Result r;
    st = conn.Prepared("ingest_parts", kInsertPartsSql, params, &r);
    if (!st.ok()) return st;
    for (int row = 0; row < r.rows(); ++row) {
      size_t i = static_cast<size_t>(r.Int64(row, 0));
      if (r.Bool(row, 2)) {
        out[i].part_id = r.Int64(row, 1);
      } else {
        part_duplicate[i] = true;
        out[i].duplicate = true;
      }
    }
  }

  // Messages (+ donations, ingest-time replies; the ingest writes no history row: donation.received_at and the message row say when and who): one statement.
  {
    std::vector<int64_t> idx, dc, esm, rec;
    std::vector<std::optional<int64_t>> cref, ctot;
    std::vector<std::string> link, op, src, dst, raw, text, outcome;
    std::vector<std::optional<std::string>> msisdn, mo_id, detail;
    std::vector<std::optional<int64_t>> redelivery_of;
    std::vector<int64_t> d_idx, d_units, d_price, d_amount, d_cap, d_lease, r_lease;
    std::vector<std::string> d_campaign, d_shortcode, d_mode;
    std::vector<int64_t> r_idx;
    std::vector<std::string> r_purpose, r_src, r_dst, r_text;
    std::vector<std::optional<std::string>> r_link;
    for (size_t i = 0; i < items.size(); ++i) {
      const IngestItem& it = items[i];
      if (!it.message || part_duplicate[i]) continue;
      const InboundMessage& m = *it.message;
      idx.push_back(static_cast<int64_t>(i));
      link.push_back(Clean(m.link));
      op.push_back(Clean(m.operator_name));
      src.push_back(Clean(m.source_addr));
      msisdn.push_back(NullIfEmpty(m.msisdn));
      dst.push_back(Clean(m.dest_addr));
      dc.push_back(m.data_coding);
      esm.push_back(m.esm_class);
      raw.push_back(pg::HexEncode(m.raw_payload));
      text.push_back(Clean(m.text));
      mo_id.push_back(NullIfEmpty(m.smsc_mo_id));
      cref.push_back(m.concat_ref ? std::optional<int64_t>(*m.concat_ref) : std::nullopt);
      ctot.push_back(m.concat_total ? std::optional<int64_t>(*m.concat_total) : std::nullopt);
      rec.push_back(ToMicros(m.received_at));
      outcome.emplace_back(ToString(m.outcome));
      detail.push_back(NullIfEmpty(m.outcome_detail));
      redelivery_of.push_back(m.redelivery_of != 0 ? std::optional<int64_t>(m.redelivery_of)
                                                   : std::nullopt);
      if (it.donation) {
        const DonationDraft& d = *it.donation;
        d_idx.push_back(static_cast<int64_t>(i));
        d_campaign.push_back(Clean(d.campaign));
        d_shortcode.push_back(Clean(d.shortcode.empty() ? m.dest_addr : d.shortcode));
        d_units.push_back(d.units);
        d_price.push_back(d.unit_price_vnd);
        d_amount.push_back(d.amount_vnd);
        d_mode.emplace_back(ChargingModeName(d.charging_mode));
        d_cap.push_back(d.daily_cap_units);
        d_lease.push_back(d.claim_lease.count());
      }
      if (it.reply) {
        const ReplyDraft& rp = *it.reply;
        r_idx.push_back(static_cast<int64_t>(i));
        r_purpose.push_back(rp.purpose.empty() ? std::string("reply") : Clean(rp.purpose));
        r_src.push_back(Clean(rp.source_addr));
        r_dst.push_back(Clean(rp.dest_addr));
        r_text.push_back(Clean(rp.text));
        r_link.push_back(NullIfEmpty(rp.link));
        r_lease.push_back(rp.claim_lease.count());
      }
    }
    if (!idx.empty()) {
      pg::Params params;
      params.Text(instance).IntArray(idx).TextArray(link).TextArray(op).TextArray(src)
          .TextArray(msisdn).TextArray(dst).IntArray(dc).IntArray(esm).TextArray(raw).TextArray(text)
          .TextArray(mo_id).OptionalIntArray(cref).OptionalIntArray(ctot).IntArray(rec)
          .TextArray(outcome).TextArray(detail)
          .IntArray(d_idx).TextArray(d_campaign).TextArray(d_shortcode).IntArray(d_units)
          .IntArray(d_price).IntArray(d_amount).TextArray(d_mode).IntArray(d_cap)
          .IntArray(r_idx).TextArray(r_purpose).TextArray(r_src).TextArray(r_dst).TextArray(r_text)
          .TextArray(r_link).OptionalIntArray(redelivery_of).IntArray(d_lease).IntArray(r_lease);
      pg::Result r;
      st = conn.Prepared("ingest_messages", kInsertMessagesSql, params, &r);
      if (!st.ok()) return st;
      for (int row = 0; row < r.rows(); ++row) {
        size_t i = static_cast<size_t>(r.Int64(row, 0));
        if (!r.Bool(row, 2)) {
          out[i] = IngestResult();
          out[i].duplicate = true;
          continue;
        }
        out[i].inbound_message_id = r.Int64(row, 1);
        out[i].donation_id = r.Int64(row, 3);
        out[i].reply_id = r.Int64(row, 4);
        out[i].donation_claimed = out[i].donation_id != 0 && items[i].donation->claim_lease.count() > 0;
        out[i].reply_claimed = out[i].reply_id != 0 && items[i].reply->claim_lease.count() > 0;
      }
    }
  }

  // Keyword flows (keyword_actions.h): statements only for the items that carry one.
  if (has_keyword) {
    st = internal::ApplyKeywordActions(conn, instance, items, &out);
    if (!st.ok()) return st;
  }

  if (has_follow_up) {
    std::vector<std::string> link, src, dst;
    std::vector<int64_t> ref, total, msg_id;
    std::vector<bool> ref16;
    std::vector<std::string> r_op, r_id, r_stat;
    std::vector<std::optional<std::string>> r_err;
    std::vector<std::optional<int64_t>> r_done;
    std::vector<int64_t> r_inbound;
    for (size_t i = 0; i < items.size(); ++i) {
      const IngestItem& it = items[i];
      if (out[i].duplicate || out[i].inbound_message_id == 0) continue;
      if (it.consume_set) {
        link.push_back(Clean(it.consume_set->link));
        src.push_back(Clean(it.consume_set->source_addr));
        dst.push_back(Clean(it.consume_set->dest_addr));
        ref.push_back(it.consume_set->concat_ref);
        ref16.push_back(it.consume_set->ref16);
        total.push_back(it.consume_set->total);
        msg_id.push_back(out[i].inbound_message_id);
      }
      if (it.receipt) {
        r_op.push_back(Clean(it.receipt->operator_name));
        r_id.push_back(Clean(it.receipt->smsc_message_id));
        r_stat.push_back(Clean(it.receipt->stat));
        r_err.push_back(NullIfEmpty(it.receipt->err));
        r_done.push_back(it.receipt->done_at ? std::optional<int64_t>(ToMicros(*it.receipt->done_at))
                                             : std::nullopt);
        r_inbound.push_back(out[i].inbound_message_id);
      }
    }
    if (!link.empty()) {
      pg::Params params;
      params.TextArray(link).TextArray(src).TextArray(dst).IntArray(ref).BoolArray(ref16)
          .IntArray(total).IntArray(msg_id);
      st = conn.Prepared("ingest_consume_sets", kConsumeSetsSql, params);
      if (!st.ok()) return st;
    }
    if (!r_op.empty()) {
      pg::Params params;
      params.TextArray(r_op).TextArray(r_id).TextArray(r_stat).TextArray(r_err)
          .OptionalIntArray(r_done).IntArray(r_inbound);
      st = conn.Prepared("ingest_receipts", kApplyReceiptsSql, params);
      if (!st.ok()) return st;
    }
  }

  // The batch marker and COMMIT go in one round trip. If the connection is lost while they are
  // in flight, the marker tells whether the batch committed.
  std::string token = options_.instance_id + "/" + std::to_string(impl_->rng()) + "/" +
                      std::to_string(++impl_->batches);
  const int backend_pid = conn.BackendPid();
  st = tx.CommitWith("INSERT INTO ingest_batch (token, instance_id, results) VALUES (" +
                     conn.QuoteLiteral(token) + ", " + conn.QuoteLiteral(options_.instance_id) +
                     ", '" + FlattenResults(out) + "')");
  if (!st.ok()) {
    // Any transient failure of the COMMIT round trip may have come after the commit record was
    // flushed (an immediate shutdown's FATAL can arrive while the connection still looks
    // alive), so the marker decides, never the error.
    if (!st.transient()) return st;
    bool committed = false;
    std::vector<IngestResult> recovered;
    StoreStatus resolved = ResolveIngestCommit(token, backend_pid, items.size(), &committed, &recovered);
    if (!resolved.ok()) {
      // Neither stored nor not stored as far as anyone can tell now: the caller must hold the
      // MOs (a temporary error would make the SMSC redeliver what may be committed).
      if (in_doubt) {
        in_doubt->token = token;
        in_doubt->backend_pid = backend_pid;
        in_doubt->items = items.size();
        return StoreStatus::Transient("commit outcome unknown (" + st.message() + "); " +
                                      resolved.message());
      }
      return st;
    }
    if (!committed) return st;
    out = std::move(recovered);
  }
  if (impl_->batches % 1024 == 0) {
    // Markers are only needed for seconds; best effort, outside the batch.
    conn.Exec("DELETE FROM ingest_batch WHERE committed_at < now() - interval '1 hour'");
  }
  *results = std::move(out);
  return StoreStatus::Ok();
}

namespace {

// The Asia/Ho_Chi_Minh calendar day of a time, as PostgreSQL's
// (t AT TIME ZONE 'Asia/Ho_Chi_Minh')::date::text prints it. Vietnam has kept UTC+7 without
// daylight saving since 1975, so the offset is fixed.
std::string LocalDay(StoreTime t) {
  const auto local = std::chrono::floor<std::chrono::days>(t + std::chrono::hours(7));
  const std::chrono::year_month_day ymd{local};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

// One donation whose daily cap is to be decided.
struct CapCandidate {
  int64_t donation_id = 0;
  std::string campaign, msisdn, local_day;  // local_day: Asia/Ho_Chi_Minh, YYYY-MM-DD
  int32_t units = 0, cap_units = 0;
};

// The daily cap, decided inside the caller's transaction (ClaimDonations at a first claim,
// DecideDailyCaps for donations claimed at ingest): serialised per (campaign, msisdn, day) by a
// transaction advisory lock, so concurrent deciders in other instances see each other's
// decisions; the units already committed are counted after the lock; `candidates` must be in
// id order (earlier donations get the room first). (*over)[i] says whether candidate i is over.
StoreStatus DecideCapsInTransaction(pg::Connection& conn, const std::vector<CapCandidate>& candidates,
                                    std::vector<bool>* over) {
  over->assign(candidates.size(), false);
  if (candidates.empty()) return StoreStatus::Ok();
  std::vector<int64_t> ids;
  std::vector<std::string> k_campaign, k_msisdn, k_day, lock_keys;
  for (const CapCandidate& c : candidates) {
    ids.push_back(c.donation_id);
    k_campaign.push_back(Clean(c.campaign));
    k_msisdn.push_back(Clean(c.msisdn));
    k_day.push_back(c.local_day);
    lock_keys.push_back(k_campaign.back() + "\x1f" + k_msisdn.back() + "\x1f" + k_day.back());
  }
  StoreStatus st = conn.Prepared("cap_lock", kCapLockSql, pg::Params().TextArray(lock_keys));
  if (!st.ok()) return st;
  pg::Result usage;
  st = conn.Prepared("cap_usage", kCapUsageSql,
                     pg::Params().TextArray(k_campaign).TextArray(k_msisdn).TextArray(k_day).IntArray(ids),
                     &usage);
  if (!st.ok()) return st;
  std::map<std::string, int64_t> used;
  for (int i = 0; i < usage.rows(); ++i)
    used[usage.String(i, 0) + "\x1f" + usage.String(i, 1) + "\x1f" + usage.String(i, 2)] = usage.Int64(i, 3);
  for (size_t i = 0; i < candidates.size(); ++i) {
    int64_t& u = used[lock_keys[i]];
    if (u + candidates[i].units > candidates[i].cap_units) {
      (*over)[i] = true;
    } else {
      u += candidates[i].units;
    }
  }
  return StoreStatus::Ok();
}

}  // namespace

StoreStatus Store::DecideDailyCaps(std::vector<DonationWork>* work) {
  std::vector<size_t> which;  // indexes into *work, in donation id order
  for (size_t i = 0; i < work->size(); ++i) {
    DonationWork& w = (*work)[i];
    if (w.cap_checked) continue;
    if (w.daily_cap_units <= 0) {
      w.cap_checked = true;
      continue;
    }
    which.push_back(i);
  }
  if (which.empty()) return StoreStatus::Ok();
  std::sort(which.begin(), which.end(),
            [&](size_t a, size_t b) { return (*work)[a].donation_id < (*work)[b].donation_id; });
  std::vector<CapCandidate> candidates;
  std::vector<int64_t> ids;
  for (size_t i : which) {
    const DonationWork& w = (*work)[i];
    candidates.push_back({w.donation_id, w.campaign, w.msisdn, LocalDay(w.received_at), w.units,
                          w.daily_cap_units});
    ids.push_back(w.donation_id);
  }
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  pg::Transaction tx(conn);
  st = tx.Begin();
  if (!st.ok()) return st;
  std::vector<bool> over;
  st = DecideCapsInTransaction(conn, candidates, &over);
  if (!st.ok()) return st;
  std::vector<int64_t> over_ids;
  for (size_t j = 0; j < candidates.size(); ++j)
    if (over[j]) over_ids.push_back(candidates[j].donation_id);
  st = conn.Prepared("cap_decided",
                     "UPDATE donation SET cap_checked_at = coalesce(cap_checked_at, now()),"
                     " over_daily_cap = over_daily_cap OR id = ANY($2::bigint[]), updated_at = now()"
                     " WHERE id = ANY($1::bigint[])",
                     pg::Params().IntArray(ids).IntArray(over_ids));
  if (!st.ok()) return st;
  st = tx.Commit();
  if (!st.ok()) return st;
  for (size_t j = 0; j < which.size(); ++j) {
    DonationWork& w = (*work)[which[j]];
    w.cap_checked = true;
    w.over_daily_cap = over[j];
  }
  return StoreStatus::Ok();
}

StoreStatus Store::ResolveIngestCommit(const IngestCommitTicket& ticket, bool* committed,
                                       std::vector<IngestResult>* results) {
  results->clear();
  return ResolveIngestCommit(ticket.token, ticket.backend_pid, ticket.items, committed, results);
}

StoreStatus Store::ResolveIngestCommit(const std::string& token, int old_backend_pid, size_t items,
                                       bool* committed, std::vector<IngestResult>* results) {
  *committed = false;
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  // Until the old server process has exited its transaction may still be committing; after
  // that it is either committed or rolled back for good. (After a failover the old pid does not
  // exist on the new primary, and the marker is there exactly when the commit replicated.)
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    pg::Result r;
    st = conn.Exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND pid <> pg_backend_pid()",
                   pg::Params().Int(old_backend_pid), &r);
    if (!st.ok()) return st;
    gone = r.Int64(0, 0) == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!gone) return StoreStatus::Transient("commit outcome unknown: the old session is still alive");
  pg::Result r;
  st = conn.Exec("SELECT results FROM ingest_batch WHERE token = $1", pg::Params().Text(token), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Ok();  // rolled back: nothing of the batch exists
  if (!UnflattenResults(r.Text(0, 0), items, results))
    return StoreStatus::Permanent("ingest_batch " + token + " holds malformed results");
  // Committed here — but an acknowledgement must survive a failover too. The batch's own wait
  // for synchronous replication may have been cut short (statement timeout, a fast shutdown
  // terminating the session): then only this server has it. A transaction of our own that
  // commits synchronously now proves the batch's WAL reached the standby (WAL is shipped in
  // order); without synchronous_standby_names it returns at once. While it cannot, the batch
  // stays in doubt: held, unanswered.
  {
    pg::Transaction proof(conn);
    st = proof.Begin();
    if (!st.ok()) return st;
    // It must write WAL before its commit record, or the server does not wait for the
    // standby at all (RecordTransactionCommit: no WAL, no synchronous wait). A marker row of
    // its own does (pruned with the others).
    st = conn.Exec("INSERT INTO ingest_batch (token, instance_id, results) VALUES ($1, $2, '{}')",
                   pg::Params().Text(token + "/proof/" + std::to_string(impl_->rng())).Text(options_.instance_id));
    if (!st.ok()) return st;
    st = proof.Commit();
    if (!st.ok()) {
      results->clear();
      return StoreStatus::Transient("batch committed on the primary, replication not confirmed yet: " +
                                    st.message())
          .WithSqlstate(st.sqlstate());
    }
  }
  *committed = true;
  return StoreStatus::Ok();
}

StoreStatus Store::LoadPendingParts(const std::vector<std::string>& links, std::vector<StoredPart>* parts) {
  parts->clear();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Result r;
  st = impl_->conn.Prepared(
      "load_parts",
      "SELECT id, link, operator, source_addr, dest_addr, concat_ref, ref16, total, seq, data_coding,"
      " esm_class, encode(raw_payload, 'hex'), text, coalesce(smsc_mo_id, ''), " +
          Micros("received_at") +
          " FROM mo_part WHERE consumed_at IS NULL"
          " AND (cardinality($1::text[]) = 0 OR link = ANY($1::text[])) ORDER BY received_at, id",
      pg::Params().TextArray(CleanAll(links)), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    StoredPart sp;
    sp.id = r.Int64(i, 0);
    ConcatPart& p = sp.part;
    p.set.link = r.String(i, 1);
    p.operator_name = r.String(i, 2);
    p.set.source_addr = r.String(i, 3);
    p.set.dest_addr = r.String(i, 4);
    p.set.concat_ref = static_cast<int>(r.Int64(i, 5));
    p.set.ref16 = r.Bool(i, 6);
    p.set.total = static_cast<int>(r.Int64(i, 7));
    p.seq = static_cast<int>(r.Int64(i, 8));
    p.data_coding = static_cast<uint8_t>(r.Int64(i, 9));
    p.esm_class = static_cast<uint8_t>(r.Int64(i, 10));
    p.raw_payload = pg::HexDecode(r.Text(i, 11));
    p.text = r.String(i, 12);
    p.smsc_mo_id = r.String(i, 13);
    p.received_at = FromMicros(r.Int64(i, 14));
    parts->push_back(std::move(sp));
  }
  return StoreStatus::Ok();
}

// ---------------------------------------------------------------------------------------
// Runs of an instance (redelivery recognition after an unclean stop)

StoreStatus Store::BeginRun(std::chrono::seconds horizon, std::chrono::seconds window,
                            int64_t* run_id, std::vector<UncertainMo>* uncertain) {
  uncertain->clear();
  *run_id = 0;
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  pg::Transaction tx(conn);
  st = tx.Begin();
  if (!st.ok()) return st;
  // Each earlier run that did not stop cleanly leaves the interval from its last write probe
  // (minus the horizon: MOs received earlier were acked long before) to its successor's start.
  pg::Result r;
  st = conn.Exec(
      "WITH runs AS ("
      "  SELECT last_alive_at, stopped_at,"
      "         coalesce(lead(started_at) OVER (ORDER BY id), now()) AS ended_by"
      "    FROM instance_run WHERE instance_id = $1),"
      " windows AS ("
      "  SELECT last_alive_at - make_interval(secs => $2::int) AS lo, ended_by AS hi FROM runs"
      "   WHERE stopped_at IS NULL AND ended_by > now() - make_interval(secs => $3::int)),"
      " u AS ("
      "  SELECT DISTINCT m.id, coalesce(m.redelivery_of, m.id) AS target, m.operator,"
      "         m.source_addr, m.dest_addr, m.data_coding, m.esm_class, m.raw_payload"
      "    FROM windows w JOIN inbound_message m"
      "      ON m.received_at >= w.lo AND m.received_at <= w.hi"
      "   WHERE m.instance_id = $1 AND m.smsc_mo_id IS NULL AND m.concat_total IS NULL"
      "     AND m.outcome <> 'receipt')"
      " SELECT u.target, u.operator, u.source_addr, u.dest_addr, u.data_coding, u.esm_class,"
      "        encode(u.raw_payload, 'hex')"
      "   FROM u WHERE NOT EXISTS (SELECT 1 FROM inbound_message later"
      "                             WHERE later.redelivery_of = u.target AND later.id > u.id)"
      "  ORDER BY u.id",
      pg::Params().Text(options_.instance_id).Int(horizon.count()).Int(window.count()), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    UncertainMo mo;
    mo.inbound_message_id = r.Int64(i, 0);
    mo.operator_name = r.String(i, 1);
    mo.source_addr = r.String(i, 2);
    mo.dest_addr = r.String(i, 3);
    mo.data_coding = static_cast<uint8_t>(r.Int64(i, 4));
    mo.esm_class = static_cast<uint8_t>(r.Int64(i, 5));
    mo.raw_payload = pg::HexDecode(r.Text(i, 6));
    uncertain->push_back(std::move(mo));
  }
  st = conn.Exec("INSERT INTO instance_run (instance_id) VALUES ($1) RETURNING id",
                 pg::Params().Text(options_.instance_id), &r);
  if (!st.ok()) return st;
  *run_id = r.Int64(0, 0);
  return tx.Commit();
}

StoreStatus Store::TouchRun(int64_t run_id) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return impl_->conn.Exec("UPDATE instance_run SET last_alive_at = now() WHERE id = $1",
                          pg::Params().Int(run_id));
}

StoreStatus Store::EndRun(int64_t run_id) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return impl_->conn.Exec("UPDATE instance_run SET stopped_at = now() WHERE id = $1",
                          pg::Params().Int(run_id));
}

// ---------------------------------------------------------------------------------------
// Donations

namespace {

bool ParseOutcome(std::string_view name, ChargeOutcome* out) { return ParseChargeOutcome(name, out); }

StoredCharge ChargeFromRow(const pg::Result& r, int row, int first_col) {
  StoredCharge c;
  c.key = r.String(row, first_col);
  c.unit_index = static_cast<int32_t>(r.Int64(row, first_col + 1));
  c.units = static_cast<int32_t>(r.Int64(row, first_col + 2));
  c.amount_vnd = r.Int64(row, first_col + 3);
  if (!ParseOutcome(r.Text(row, first_col + 4), &c.outcome)) c.outcome = ChargeOutcome::kUnknown;
  c.operator_reference = r.String(row, first_col + 5);
  c.detail = r.String(row, first_col + 6);
  return c;
}

}  // namespace

StoreStatus Store::ClaimDonations(int limit, std::chrono::seconds lease,
                                  const std::vector<std::string>& operators,
                                  std::vector<DonationWork>* work) {
  work->clear();
  if (limit <= 0) return StoreStatus::Ok();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  pg::Transaction tx(conn);
  st = tx.Begin();
  if (!st.ok()) return st;

  // The claim's horizon: the queue time of the (4 × limit)-th open donation. Without it the
  // planner, with statistics from when the queue was short, read and sorted EVERY open
  // donation per claim (a bitmap scan: cost growing with the backlog). The horizon query walks
  // donation_open in order and stops; it locks nothing, so it is cheap even at a busy queue
  // head (the locking claim forced onto the same order was slow, see docs/performance.md).
  pg::Result horizon;
  st = conn.Exec("SET LOCAL enable_sort = off");
  if (!st.ok()) return st;
  st = conn.Prepared("claim_horizon", kClaimHorizonSql, pg::Params().Int(int64_t{4} * limit), &horizon);
  if (!st.ok()) return st;
  st = conn.Exec("SET LOCAL enable_sort = on");
  if (!st.ok()) return st;
  pg::Params claim_params;
  claim_params.Text(options_.instance_id).Int(limit).Int(std::max<int64_t>(1, lease.count()))
      .TextArray(CleanAll(operators));
  if (horizon.rows() > 0 && !horizon.IsNull(0, 0)) claim_params.Int(horizon.Int64(0, 0));
  else claim_params.Null();
  pg::Result r;
  st = conn.Prepared("claim_donations", kClaimDonationsSql, claim_params, &r);
  if (!st.ok()) return st;
  if (r.rows() == 0 && horizon.rows() > 0) {
    // Everything up to the horizon is leased (in flight): look beyond it, unbounded.
    pg::Params unbounded;
    unbounded.Text(options_.instance_id).Int(limit).Int(std::max<int64_t>(1, lease.count()))
        .TextArray(CleanAll(operators)).Null();
    st = conn.Prepared("claim_donations", kClaimDonationsSql, unbounded, &r);
    if (!st.ok()) return st;
  }
  std::vector<DonationWork> claimed;
  std::vector<std::string> local_day;
  std::vector<int32_t> cap;
  std::vector<bool> evaluate_cap;
  std::vector<int64_t> ids;
  for (int i = 0; i < r.rows(); ++i) {
    DonationWork w;
    w.donation_id = r.Int64(i, 0);
    w.inbound_message_id = r.Int64(i, 1);
    w.campaign = r.String(i, 2);
    w.shortcode = r.String(i, 3);
    w.operator_name = r.String(i, 4);
    w.msisdn = r.String(i, 5);
    w.units = static_cast<int32_t>(r.Int64(i, 6));
    w.unit_price_vnd = r.Int64(i, 7);
    w.amount_vnd = r.Int64(i, 8);
    w.charging_mode = r.Text(i, 9) == "per_unit" ? config::ChargingMode::kPerUnit
                                                 : config::ChargingMode::kWhole;
    ParseDonationState(r.Text(i, 10), &w.previous_state);
    w.attempts = static_cast<int32_t>(r.Int64(i, 11));
    w.over_daily_cap = r.Bool(i, 12);
    cap.push_back(static_cast<int32_t>(r.Int64(i, 13)));
    evaluate_cap.push_back(r.Bool(i, 14) && cap.back() > 0);
    w.received_at = FromMicros(r.Int64(i, 15));
    local_day.push_back(r.String(i, 16));
    w.previous_owner = r.String(i, 17);
    ids.push_back(w.donation_id);
    claimed.push_back(std::move(w));
  }
  if (claimed.empty()) {
    return tx.Commit();
  }

  // Daily cap, evaluated once per donation (at its first claim). Claimed rows come in id order.
  std::vector<CapCandidate> candidates;
  std::vector<DonationWork*> candidate_work;
  for (size_t i = 0; i < claimed.size(); ++i) {
    if (!evaluate_cap[i]) continue;
    candidates.push_back({claimed[i].donation_id, claimed[i].campaign, claimed[i].msisdn, local_day[i],
                          claimed[i].units, cap[i]});
    candidate_work.push_back(&claimed[i]);
  }
  if (!candidates.empty()) {
    std::vector<bool> over;
    st = DecideCapsInTransaction(conn, candidates, &over);
    if (!st.ok()) return st;
    std::vector<int64_t> over_ids;
    for (size_t j = 0; j < candidates.size(); ++j) {
      if (!over[j]) continue;
      candidate_work[j]->over_daily_cap = true;
      over_ids.push_back(candidates[j].donation_id);
    }
    if (!over_ids.empty()) {
      st = conn.Prepared("cap_mark_over", kMarkOverCapSql, pg::Params().IntArray(over_ids));
      if (!st.ok()) return st;
    }
  }

  pg::Result charges;
  st = conn.Prepared("claim_load_charges", kLoadChargesSql, pg::Params().IntArray(ids), &charges);
  if (!st.ok()) return st;
  std::unordered_map<int64_t, DonationWork*> by_id;
  for (auto& w : claimed) by_id[w.donation_id] = &w;
  for (int i = 0; i < charges.rows(); ++i) {
    DonationWork* w = by_id[charges.Int64(i, 0)];
    if (!w) continue;
    StoredCharge c = ChargeFromRow(charges, i, 1);
    if (c.outcome == ChargeOutcome::kCharged) {
      w->charged_units += c.units;
      w->charged_amount_vnd += c.amount_vnd;
    }
    w->charges.push_back(std::move(c));
  }
  st = tx.Commit();
  if (!st.ok()) return st;
  *work = std::move(claimed);
  return StoreStatus::Ok();
}

StoreStatus Store::RecordChargeOutcomes(const std::vector<ChargeOutcomeRecord>& records,
                                        std::vector<RecordResult>* results) {
  std::vector<RecordResult> res(records.size());
  if (results) results->clear();
  if (records.empty()) return StoreStatus::Ok();
  for (const auto& rec : records) {
    DonationState s = rec.new_state;
    if (s == DonationState::kCharging || s == DonationState::kReversed)
      return StoreStatus::Permanent("donation " + std::to_string(rec.donation_id) +
                                    ": cannot record state " + std::string(ToString(s)));
    for (const auto& c : rec.charges) {
      if (c.key.empty() || c.key.size() > kMaxIdempotencyKeyLength)
        return StoreStatus::Permanent("donation " + std::to_string(rec.donation_id) +
                                      ": invalid charge key '" + c.key + "'");
    }
  }
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  pg::Transaction tx(conn);
  st = tx.Begin();
  if (!st.ok()) return st;

  std::vector<int64_t> ids;
  std::vector<std::string> keys;
  for (const auto& rec : records) {
    ids.push_back(rec.donation_id);
    for (const auto& c : rec.charges) keys.push_back(c.key);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  struct DonationRow {
    DonationState state = DonationState::kReceived;
    int32_t units = 0;
    int64_t unit_price = 0, amount = 0;
    bool per_unit = false;
    std::string operator_name, campaign;
    std::map<std::string, StoredCharge> charges;  // by key: the merged view
  };
  std::map<int64_t, DonationRow> rows;
  pg::Result r;
  st = conn.Prepared("record_lock", kLockDonationsSql, pg::Params().IntArray(ids), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    DonationRow d;
    ParseDonationState(r.Text(i, 1), &d.state);
    d.units = static_cast<int32_t>(r.Int64(i, 2));
    d.unit_price = r.Int64(i, 3);
    d.amount = r.Int64(i, 4);
    d.per_unit = r.Text(i, 5) == "per_unit";
    d.operator_name = r.String(i, 6);
    d.campaign = r.String(i, 7);
    rows[r.Int64(i, 0)] = std::move(d);
  }
  std::map<std::string, int64_t> key_owner;
  st = conn.Prepared("record_existing_charges", kExistingChargesSql,
                     pg::Params().IntArray(ids).TextArray(keys), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    int64_t owner = r.Int64(i, 1);
    StoredCharge c;
    c.key = r.String(i, 0);
    c.unit_index = static_cast<int32_t>(r.Int64(i, 2));
    c.units = static_cast<int32_t>(r.Int64(i, 3));
    c.amount_vnd = r.Int64(i, 4);
    if (!ParseOutcome(r.Text(i, 5), &c.outcome)) c.outcome = ChargeOutcome::kUnknown;
    c.operator_reference = r.String(i, 6);
    c.detail = r.String(i, 7);
    key_owner[c.key] = owner;
    auto it = rows.find(owner);
    if (it != rows.end()) it->second.charges[c.key] = c;
  }

  // Decide per record, in order, against the merged view (records for the same donation
  // later in the batch see the earlier ones).
  std::map<std::string, std::pair<int64_t, StoredCharge>> upserts;  // key → (donation, row)
  struct Update {
    int64_t id;
    std::string from, to;
    std::optional<std::string> reason;
    std::string transition_reason;
    int64_t charged_units, charged_amount;
    std::optional<int64_t> next_us;
    bool final;
  };
  std::vector<Update> updates;
  struct Reply {
    int64_t donation_id;
    size_t record;
    ReplyDraft draft;
  };
  std::vector<Reply> replies;
  std::set<int64_t> book;

  for (size_t ri = 0; ri < records.size(); ++ri) {
    const ChargeOutcomeRecord& rec = records[ri];
    RecordResult& out = res[ri];
    auto refuse = [&](std::string why) {
      out.refused = true;
      out.message = "donation " + std::to_string(rec.donation_id) + ": " + std::move(why);
    };
    auto it = rows.find(rec.donation_id);
    if (it == rows.end()) {
      refuse("does not exist");
      continue;
    }
    DonationRow& d = it->second;
    out.state = d.state;
    std::map<std::string, StoredCharge> merged = d.charges;
    bool bad = false;
    for (const StoredCharge& in : rec.charges) {
      if (!IsStorable(in.outcome)) continue;  // not performed: nothing to store
      auto owner = key_owner.find(in.key);
      if (owner != key_owner.end() && owner->second != rec.donation_id) {
        refuse("charge key " + in.key + " belongs to donation " + std::to_string(owner->second));
        bad = true;
        break;
      }
      // The charge must be the one the donation implies (money is never wrong).
      if (d.per_unit) {
        if (in.unit_index < 1 || in.unit_index > d.units || in.units != 1 || in.amount_vnd != d.unit_price) {
          refuse("charge " + in.key + " does not match a per_unit charge of " +
                 std::to_string(d.unit_price) + " VND");
          bad = true;
          break;
        }
      } else if (in.unit_index != 0 || in.units != d.units || in.amount_vnd != d.amount) {
        refuse("charge " + in.key + " does not match the whole charge of " + std::to_string(d.amount) +
               " VND");
        bad = true;
        break;
      }
      auto existing = merged.find(in.key);
      if (existing != merged.end()) {
        const StoredCharge& e = existing->second;
        if (e.unit_index != in.unit_index || e.amount_vnd != in.amount_vnd) {
          refuse("charge " + in.key + " differs from the stored row");
          bad = true;
          break;
        }
        if (e.outcome != ChargeOutcome::kUnknown) {
          if (in.outcome == ChargeOutcome::kUnknown || in.outcome == e.outcome) continue;  // known
          refuse("charge " + in.key + " is already " + std::string(ToString(e.outcome)) +
                 ", cannot become " + std::string(ToString(in.outcome)));
          bad = true;
          break;
        }
      } else {
        for (const auto& [k, other] : merged) {
          if (other.unit_index == in.unit_index) {
            refuse("unit " + std::to_string(in.unit_index) + " already has key " + k);
            bad = true;
            break;
          }
        }
        if (bad) break;
      }
      merged[in.key] = in;
    }
    if (bad) continue;

    int64_t charged_units = 0, charged_amount = 0;
    bool has_unknown = false;
    for (const auto& [k, c] : merged) {
      if (c.outcome == ChargeOutcome::kCharged) {
        charged_units += c.units;
        charged_amount += c.amount_vnd;
      }
      if (c.outcome == ChargeOutcome::kUnknown) has_unknown = true;
    }
    if (charged_amount > d.amount || charged_units > d.units) {
      refuse("charges exceed the donation amount");
      continue;
    }
    const DonationState target = rec.new_state;
    bool consistent = true;
    switch (target) {
      case DonationState::kCharged:
        consistent = !has_unknown && charged_amount == d.amount;
        break;
      case DonationState::kPartiallyCharged:
        consistent = !has_unknown && charged_amount > 0 && charged_amount < d.amount;
        break;
      case DonationState::kFailed:
        consistent = !has_unknown && charged_amount == 0;
        break;
      case DonationState::kUnknown:
        consistent = has_unknown;
        break;
      case DonationState::kReceived:
        consistent = charged_amount < d.amount;
        break;
      default:
        consistent = false;
    }
    if (!consistent) {
      refuse("state " + std::string(ToString(target)) + " contradicts its charges (charged " +
             std::to_string(charged_amount) + " of " + std::to_string(d.amount) + " VND" +
             (has_unknown ? ", some unknown)" : ")"));
      continue;
    }
    if (IsFinal(d.state)) {
      if (d.state != target) {
        refuse("already final (" + std::string(ToString(d.state)) + ")");
        continue;
      }
      // A replay of a committed verdict: nothing to do.
      out.state = d.state;
      out.charged_units = static_cast<int32_t>(charged_units);
      out.charged_amount_vnd = charged_amount;
      continue;
    }
    // Accepted: stage the charge upserts, the booking and the state change.
    for (const auto& [k, c] : merged) {
      auto prev = d.charges.find(k);
      if (prev == d.charges.end() || prev->second.outcome != c.outcome ||
          prev->second.operator_reference != c.operator_reference)
        upserts[k] = {rec.donation_id, c};
    }
    d.charges = merged;
    book.insert(rec.donation_id);
    Update u;
    u.id = rec.donation_id;
    u.from = std::string(ToString(d.state));
    u.to = std::string(ToString(target));
    // failure_reason describes final shortfalls only; a deferral or an unknown outcome is
    // not a failure (its cause goes to the history row).
    u.transition_reason = rec.reason.empty() ? std::string(ToString(target)) : rec.reason;
    if (target == DonationState::kFailed || target == DonationState::kPartiallyCharged)
      u.reason = NullIfEmpty(rec.reason);
    if (target == DonationState::kFailed && !u.reason) u.reason = "failed";
    u.charged_units = charged_units;
    u.charged_amount = charged_amount;
    if (target == DonationState::kUnknown || target == DonationState::kReceived)
      u.next_us = ToMicros(rec.next_attempt_at == StoreTime{} ? StoreClock::now() : rec.next_attempt_at);
    u.final = IsFinal(target);
    updates.push_back(std::move(u));
    d.state = target;
    out.state = target;
    out.charged_units = static_cast<int32_t>(charged_units);
    out.charged_amount_vnd = charged_amount;
    if (IsFinal(target) && rec.reply) replies.push_back({rec.donation_id, ri, *rec.reply});
  }

  if (!upserts.empty()) {
    std::vector<std::string> k, outcome, detail;
    std::vector<std::optional<std::string>> ref;
    std::vector<int64_t> did, unit, units, amount;
    for (const auto& [key, v] : upserts) {
      k.push_back(key);
      did.push_back(v.first);
      unit.push_back(v.second.unit_index);
      units.push_back(v.second.units);
      amount.push_back(v.second.amount_vnd);
      outcome.emplace_back(ToString(v.second.outcome));
      ref.push_back(NullIfEmpty(v.second.operator_reference));
      detail.push_back(Clean(v.second.detail));
    }
    st = conn.Prepared("record_upsert_charges", kUpsertChargesSql,
                       pg::Params().TextArray(k).IntArray(did).IntArray(unit).IntArray(units)
                           .IntArray(amount).TextArray(outcome).TextArray(ref).TextArray(detail));
    if (!st.ok()) return st;
  }
  if (!book.empty()) {
    std::vector<std::string> key, op, campaign;
    std::vector<int64_t> did, amount;
    for (int64_t id : book) {
      const DonationRow& d = rows[id];
      for (const auto& [k, c] : d.charges) {
        if (c.outcome != ChargeOutcome::kCharged) continue;
        key.push_back(k);
        did.push_back(id);
        amount.push_back(c.amount_vnd);
        op.push_back(d.operator_name);
        campaign.push_back(d.campaign);
      }
    }
    if (!key.empty()) {
      st = conn.Prepared("record_book", kBookChargesSql,
                         pg::Params().TextArray(key).IntArray(did).IntArray(amount).TextArray(op)
                             .TextArray(campaign).Text(options_.instance_id));
      if (!st.ok()) return st;
    }
  }
  if (!updates.empty()) {
    std::vector<int64_t> id, cu, ca;
    std::vector<std::string> from, to;
    std::vector<std::optional<std::string>> reason;
    std::vector<std::string> why;
    std::vector<std::optional<int64_t>> next;
    std::vector<bool> fin;
    for (const auto& u : updates) {
      id.push_back(u.id);
      from.push_back(u.from);
      to.push_back(u.to);
      reason.push_back(u.reason);
      why.push_back(Clean(u.transition_reason));
      cu.push_back(u.charged_units);
      ca.push_back(u.charged_amount);
      next.push_back(u.next_us);
      fin.push_back(u.final);
    }
    st = conn.Prepared("record_update_donations", kUpdateDonationsSql,
                       pg::Params().IntArray(id).TextArray(from).TextArray(to).TextArray(reason)
                           .IntArray(cu).IntArray(ca).OptionalIntArray(next).BoolArray(fin)
                           .Text(options_.instance_id).TextArray(why));
    if (!st.ok()) return st;
  }
  if (!replies.empty()) {
    std::vector<int64_t> did;
    std::vector<std::string> purpose, src, dst, text;
    std::vector<std::optional<std::string>> link;
    std::vector<int64_t> lease_s;
    for (const auto& rp : replies) {
      did.push_back(rp.donation_id);
      lease_s.push_back(rp.draft.claim_lease.count());
      purpose.push_back(rp.draft.purpose.empty() ? std::string("reply") : Clean(rp.draft.purpose));
      src.push_back(Clean(rp.draft.source_addr));
      dst.push_back(Clean(rp.draft.dest_addr));
      text.push_back(Clean(rp.draft.text));
      link.push_back(NullIfEmpty(rp.draft.link));
    }
    pg::Result q;
    st = conn.Prepared("record_replies", kQueueDonationRepliesSql,
                       pg::Params().IntArray(did).TextArray(purpose).TextArray(src).TextArray(dst)
                           .TextArray(text).TextArray(link).Text(options_.instance_id)
                           .IntArray(lease_s),
                       &q);
    if (!st.ok()) return st;
    std::map<int64_t, std::pair<int64_t, bool>> reply_of;
    for (int i = 0; i < q.rows(); ++i) reply_of[q.Int64(i, 1)] = {q.Int64(i, 0), q.Bool(i, 2)};
    for (const auto& rp : replies) {
      res[rp.record].reply_id = reply_of[rp.donation_id].first;
      res[rp.record].reply_claimed = reply_of[rp.donation_id].second;
    }
  }
  st = tx.Commit();
  if (!st.ok()) return st;
  if (results) *results = std::move(res);
  return StoreStatus::Ok();
}

StoreStatus Store::ReleaseDonations(const std::vector<int64_t>& donation_ids) {
  if (donation_ids.empty()) return StoreStatus::Ok();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return impl_->conn.Prepared(
      "release_donations",
      "WITH c AS (SELECT id, state FROM donation WHERE id = ANY($1::bigint[]) AND lease_owner = $2"
      " FOR UPDATE),"
      " u AS (UPDATE donation d SET lease_owner = NULL, lease_until = NULL, updated_at = now(),"
      "   state = CASE WHEN d.state = 'charging' AND NOT EXISTS"
      "     (SELECT 1 FROM charge ch WHERE ch.donation_id = d.id) THEN 'received' ELSE d.state END"
      "   FROM c WHERE d.id = c.id RETURNING d.id, c.state AS old_state, d.state AS new_state)"
      " INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)"
      " SELECT id, old_state, new_state, 'released', $2 FROM u WHERE old_state <> new_state",
      pg::Params().IntArray(donation_ids).Text(options_.instance_id));
}

// ---------------------------------------------------------------------------------------
// Replies

StoreStatus Store::ClaimReplies(const std::vector<std::string>& operators, int limit,
                                std::chrono::seconds lease, std::vector<OutboxReply>* replies) {
  replies->clear();
  if (limit <= 0 || operators.empty()) return StoreStatus::Ok();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Connection& conn = impl_->conn;
  pg::Transaction tx(conn);
  st = tx.Begin();
  if (!st.ok()) return st;
  // The claim's horizon, as in ClaimDonations: per operator the queue time of its
  // (4 × limit)-th ready reply (one ordered walk of outbox_work each), the earliest of those.
  // Under it at least 4 × limit replies wait, and the claim reads only those instead of
  // sorting every ready reply.
  st = conn.Exec("SET LOCAL enable_sort = off");
  if (!st.ok()) return st;
  std::optional<int64_t> bound;
  for (const std::string& op : std::set<std::string>(operators.begin(), operators.end())) {
    pg::Result h;
    st = conn.Prepared("claim_replies_horizon", kClaimRepliesHorizonSql,
                       pg::Params().Text(Clean(op)).Int(int64_t{4} * limit), &h);
    if (!st.ok()) return st;
    if (h.rows() > 0 && !h.IsNull(0, 0)) bound = std::min(bound.value_or(h.Int64(0, 0)), h.Int64(0, 0));
  }
  st = conn.Exec("SET LOCAL enable_sort = on");
  if (!st.ok()) return st;
  auto claim = [&](std::optional<int64_t> horizon, pg::Result* out) {
    pg::Params p;
    p.Text(options_.instance_id).Int(limit).Int(std::max<int64_t>(1, lease.count()))
        .TextArray(CleanAll(operators));
    if (horizon) p.Int(*horizon);
    else p.Null();
    return conn.Prepared("claim_replies", kClaimRepliesSql, p, out);
  };
  pg::Result r;
  st = claim(bound, &r);
  if (!st.ok()) return st;
  if (r.rows() == 0 && bound) {  // everything up to the horizon is leased: look beyond it
    st = claim(std::nullopt, &r);
    if (!st.ok()) return st;
  }
  st = tx.Commit();
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    OutboxReply o;
    o.id = r.Int64(i, 0);
    o.donation_id = r.Int64(i, 1);
    o.inbound_message_id = r.Int64(i, 2);
    o.purpose = r.String(i, 3);
    o.operator_name = r.String(i, 4);
    o.link = r.String(i, 5);
    o.source_addr = r.String(i, 6);
    o.dest_addr = r.String(i, 7);
    o.text = r.String(i, 8);
    o.attempts = static_cast<int32_t>(r.Int64(i, 9));
    o.created_at = FromMicros(r.Int64(i, 10));
    replies->push_back(std::move(o));
  }
  std::sort(replies->begin(), replies->end(), [](const OutboxReply& a, const OutboxReply& b) { return a.id < b.id; });
  return StoreStatus::Ok();
}

StoreStatus Store::ReplySubmittedStatements(int64_t reply_id, const std::vector<std::string>& smsc_message_ids) {
  pg::Connection& conn = impl_->conn;
  StoreStatus st;
  pg::Result r;
  st = conn.Prepared(
      "reply_submitted",
      "UPDATE outbox SET state = CASE WHEN state IN ('pending', 'claimed') THEN 'submitted' ELSE state END,"
      " submitted_at = coalesce(submitted_at, now()), closed_at = coalesce(closed_at, now()),"
      " lease_owner = NULL, lease_until = NULL,"
      " last_error = NULL, updated_at = now() WHERE id = $1 RETURNING operator",
      pg::Params().Int(reply_id), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Permanent("reply " + std::to_string(reply_id) + " does not exist");
  std::string op = r.String(0, 0);
  if (!smsc_message_ids.empty()) {
    st = conn.Prepared(
        "reply_message_ids",
        "INSERT INTO outbox_message_id (outbox_id, operator, smsc_message_id, part)"
        " SELECT $1, $2, m, ord FROM unnest($3::text[]) WITH ORDINALITY AS u(m, ord)"
        " ON CONFLICT DO NOTHING",
        pg::Params().Int(reply_id).Text(op).TextArray(CleanAll(smsc_message_ids)));
    if (!st.ok()) return st;
    // Receipts that overtook this submit_sm_resp: apply them now, in arrival order.
    st = conn.Prepared(
        "reply_pending_receipts",
        "WITH p AS (DELETE FROM pending_receipt WHERE operator = $1 AND smsc_message_id = ANY($2::text[])"
        " RETURNING *) SELECT apply_receipt(s.operator, s.smsc_message_id, s.stat, s.err, s.done_at,"
        " s.inbound_message_id) FROM (SELECT * FROM p ORDER BY id) s",
        pg::Params().Text(op).TextArray(CleanAll(smsc_message_ids)));
    if (!st.ok()) return st;
  }
  return StoreStatus::Ok();
}


StoreStatus Store::MarkReplySubmitted(int64_t reply_id, const std::vector<std::string>& smsc_message_ids) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Transaction tx(impl_->conn);
  st = tx.Begin();
  if (!st.ok()) return st;
  st = ReplySubmittedStatements(reply_id, smsc_message_ids);
  if (!st.ok()) return st;
  return tx.Commit();
}

StoreStatus Store::ReplyRetryStatement(int64_t reply_id, StoreTime next_attempt_at, const std::string& reason) {
  return impl_->conn.Prepared(
      "reply_retry",
      "UPDATE outbox SET state = 'pending', next_attempt_at = " + Ts("$2::bigint") +
          ", last_error = $3, lease_owner = NULL, lease_until = NULL, updated_at = now()"
          " WHERE id = $1 AND state IN ('pending', 'claimed')",
      pg::Params().Int(reply_id).Int(ToMicros(next_attempt_at)).Text(Clean(reason)));
}

StoreStatus Store::ReplyFailedStatement(int64_t reply_id, const std::string& reason) {
  return impl_->conn.Prepared(
      "reply_failed",
      "UPDATE outbox SET state = 'failed', last_error = $2, lease_owner = NULL, lease_until = NULL,"
      " closed_at = now(), updated_at = now() WHERE id = $1 AND state IN ('pending', 'claimed')",
      pg::Params().Int(reply_id).Text(Clean(reason)));
}

StoreStatus Store::MarkReplyRetry(int64_t reply_id, StoreTime next_attempt_at, const std::string& reason) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return ReplyRetryStatement(reply_id, next_attempt_at, reason);
}

StoreStatus Store::MarkReplyFailed(int64_t reply_id, const std::string& reason) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return ReplyFailedStatement(reply_id, reason);
}

StoreStatus Store::RecordReplyResults(const std::vector<ReplyResultRecord>& records,
                                      std::vector<StoreStatus>* results) {
  if (results) results->assign(records.size(), StoreStatus::Ok());
  if (records.empty()) return StoreStatus::Ok();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  auto one = [&](const ReplyResultRecord& r) {
    switch (r.kind) {
      case ReplyResultRecord::Kind::kSubmitted: return ReplySubmittedStatements(r.reply_id, r.smsc_message_ids);
      case ReplyResultRecord::Kind::kRetry: return ReplyRetryStatement(r.reply_id, r.next_attempt_at, r.reason);
      case ReplyResultRecord::Kind::kFailed: return ReplyFailedStatement(r.reply_id, r.reason);
    }
    return StoreStatus::Permanent("unknown reply result kind");
  };
  {
    pg::Transaction tx(impl_->conn);
    st = tx.Begin(kBeginWithGenericPlans);
    if (!st.ok()) return st;
    // Submitted replies (nearly all of them) as two set statements, not four round trips each:
    // per-row statements capped the reply rate at ~1,500/s (docs/performance.md).
    std::vector<int64_t> submitted, id_reply, id_part;
    std::vector<std::string> id_message;
    for (const ReplyResultRecord& r : records) {
      if (r.kind != ReplyResultRecord::Kind::kSubmitted) continue;
      submitted.push_back(r.reply_id);
      for (size_t part = 0; part < r.smsc_message_ids.size(); ++part) {
        id_reply.push_back(r.reply_id);
        id_message.push_back(Clean(r.smsc_message_ids[part]));
        id_part.push_back(static_cast<int64_t>(part + 1));
      }
    }
    std::set<int64_t> missing;
    bool all_ok = true;
    if (!submitted.empty()) {
      pg::Result r;
      st = impl_->conn.Prepared("replies_submitted", kRepliesSubmittedSql,
                                pg::Params().IntArray(submitted).IntArray(id_reply)
                                    .TextArray(id_message).IntArray(id_part),
                                &r);
      if (st.ok()) {
        std::set<int64_t> found;
        for (int i = 0; i < r.rows(); ++i) found.insert(r.Int64(i, 0));
        for (int64_t id : submitted)
          if (!found.count(id)) missing.insert(id);
        if (!missing.empty()) all_ok = false;  // per-record below names the missing ones
      }
      if (st.ok() && all_ok && !id_reply.empty()) {
        st = impl_->conn.Prepared("replies_overtaken_receipts", kApplyOvertakenReceiptsSql,
                                  pg::Params().IntArray(id_reply).TextArray(id_message));
      }
      if (!st.ok()) all_ok = false;
    }
    for (const ReplyResultRecord& r : records) {
      if (!all_ok) break;
      if (r.kind == ReplyResultRecord::Kind::kSubmitted) continue;
      st = one(r);
      if (!st.ok()) all_ok = false;
    }
    if (all_ok) {
      st = tx.Commit();
      if (st.ok()) return st;
    }
    // Rolled back (by the guard) or the COMMIT failed: fall through to one record at a time.
    // Every statement is idempotent (state guards, ON CONFLICT), so replaying after an unknown
    // COMMIT outcome is harmless.
  }
  if (st.transient() && !impl_->conn.connected()) {  // the database is gone: the caller retries later
    if (results) results->assign(records.size(), st);
    return st;
  }
  StoreStatus first_error;
  for (size_t i = 0; i < records.size(); ++i) {
    StoreStatus rs;
    if (records[i].kind == ReplyResultRecord::Kind::kSubmitted) {
      rs = MarkReplySubmitted(records[i].reply_id, records[i].smsc_message_ids);
    } else if (records[i].kind == ReplyResultRecord::Kind::kRetry) {
      rs = MarkReplyRetry(records[i].reply_id, records[i].next_attempt_at, records[i].reason);
    } else {
      rs = MarkReplyFailed(records[i].reply_id, records[i].reason);
    }
    if (results) (*results)[i] = rs;
    if (!rs.ok() && first_error.ok()) first_error = rs;
  }
  return first_error;
}

StoreStatus Store::PurgePendingReceipts(std::chrono::seconds older_than, int64_t* purged) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Result r;
  st = impl_->conn.Prepared(
      "purge_pending_receipts",
      "WITH d AS (DELETE FROM pending_receipt WHERE received_at < now() - make_interval(secs => $1::bigint)"
      " RETURNING 1) SELECT count(*) FROM d",
      pg::Params().Int(std::max<int64_t>(0, older_than.count())), &r);
  if (!st.ok()) return st;
  if (purged) *purged = r.Int64(0, 0);
  return StoreStatus::Ok();
}

// ---------------------------------------------------------------------------------------
// Reversal and read helpers

StoreStatus Store::ReverseDonation(int64_t donation_id, const std::string& reason,
                                   const std::string& actor, ReversalResult* result) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Result r;
  st = impl_->conn.Prepared("reverse_donation", "SELECT * FROM reverse_donation($1, $2, $3)",
                            pg::Params().Int(donation_id).Text(Clean(reason)).Text(Clean(actor)), &r);
  if (!st.ok()) return st;
  if (r.rows() != 1) return StoreStatus::Permanent("reverse_donation returned no row");
  if (result) {
    result->reversal_journal_id = r.Int64(0, 0);
    result->reversed_amount_vnd = r.Int64(0, 1);
    result->already_reversed = r.Bool(0, 2);
  }
  return StoreStatus::Ok();
}

namespace {
StoreStatus QueryCount(pg::Connection& conn, const char* name, std::string_view sql, int64_t* count) {
  pg::Result r;
  StoreStatus st = conn.Prepared(name, sql, pg::Params(), &r);
  if (!st.ok()) return st;
  *count = r.rows() ? r.Int64(0, 0) : 0;
  return StoreStatus::Ok();
}
}  // namespace

StoreStatus Store::CountUnknownCharges(int64_t* count) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return QueryCount(impl_->conn, "count_unknown", "SELECT count(*) FROM charge WHERE outcome = 'unknown'", count);
}

StoreStatus Store::CountOutboxBacklog(int64_t* count) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return QueryCount(impl_->conn, "count_outbox",
                    "SELECT count(*) FROM outbox WHERE closed_at IS NULL AND state IN ('pending', 'claimed')", count);
}

StoreStatus Store::CountDonationsByState(std::map<std::string, int64_t>* counts) {
  counts->clear();
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Result r;
  // Unfinished states only, from the open-work index: a count of every state read the whole
  // table every 2 s (the health loop), which grows without bound over a campaign.
  st = impl_->conn.Prepared("count_states",
                            "SELECT state, count(*) FROM donation WHERE final_at IS NULL"
                            " AND state IN ('received', 'charging', 'unknown') GROUP BY state",
                            pg::Params(), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) (*counts)[r.String(i, 0)] = r.Int64(i, 1);
  return StoreStatus::Ok();
}

StoreStatus Store::ExpireConfirmations(int64_t* expired) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  return internal::ExpireConfirmations(impl_->conn, options_.instance_id, expired);
}

StoreStatus Store::CurrentSchemaVersion(int* version) {
  StoreStatus st = Connect();
  if (!st.ok()) return st;
  pg::Result r;
  st = impl_->conn.Exec("SELECT to_regclass('public.schema_migrations') IS NOT NULL", &r);
  if (!st.ok()) return st;
  if (!r.Bool(0, 0)) {
    *version = 0;
    return StoreStatus::Ok();
  }
  st = impl_->conn.Exec("SELECT coalesce(max(version), 0) FROM schema_migrations", &r);
  if (!st.ok()) return st;
  *version = static_cast<int>(r.Int64(0, 0));
  return StoreStatus::Ok();
}

}  // namespace donagate::billing
