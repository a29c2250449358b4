#include "billing/store/keyword_actions.h"

#include <string_view>

namespace donagate::billing::internal {
namespace {

// The new donation waits; this number's earlier waiting donations on the shortcode are replaced.
constexpr std::string_view kAwaitSql = R"(
WITH old AS (
  UPDATE donation SET state = 'failed', failure_reason = 'confirmation_replaced', final_at = now(),
         updated_at = now()
   WHERE msisdn = $1 AND shortcode = $2 AND state = 'awaiting_confirmation' AND id <> $3
  RETURNING id),
new AS (
  UPDATE donation SET state = 'awaiting_confirmation',
         confirm_deadline = now() + make_interval(secs => $4::int),
         next_attempt_at = now() + make_interval(secs => $4::int), updated_at = now()
   WHERE id = $3 AND state = 'received' AND lease_owner IS NULL
  RETURNING id),
t1 AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'awaiting_confirmation', 'failed', 'confirmation_replaced', $5 FROM old),
t2 AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'received', 'awaiting_confirmation', 'confirm_above_units', $5 FROM new)
SELECT (SELECT count(*) FROM new))";

// The newest waiting donation of the number on the shortcode, locked; confirmed only while its
// deadline has not passed. A second instance confirming the same donation waits for the lock,
// then finds it no longer waiting.
constexpr std::string_view kConfirmSql = R"(
WITH pick AS (
  SELECT id, confirm_deadline > now() AS live FROM donation
   WHERE msisdn = $1 AND shortcode = $2 AND state = 'awaiting_confirmation'
   ORDER BY id DESC LIMIT 1 FOR UPDATE),
conf AS (
  UPDATE donation d SET state = 'received', next_attempt_at = now(), confirmed_by = $3,
         updated_at = now()
    FROM pick WHERE d.id = pick.id AND pick.live
  RETURNING d.id),
tr AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'awaiting_confirmation', 'received', 'confirmed', $4 FROM conf)
SELECT coalesce((SELECT id FROM conf), 0))";

constexpr std::string_view kStopSql = R"(
WITH ins AS (
  INSERT INTO opt_out (msisdn, campaign, all_campaigns, inbound_message_id)
  SELECT $1, c, $3, $4 FROM unnest($2::text[]) AS c
  ON CONFLICT DO NOTHING
  RETURNING id),
can AS (
  UPDATE donation SET state = 'failed', failure_reason = 'opted_out', final_at = now(),
         updated_at = now()
   WHERE msisdn = $1 AND state = 'awaiting_confirmation' AND campaign = ANY($2::text[])
  RETURNING id),
tr AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'awaiting_confirmation', 'failed', 'opted_out', $5 FROM can)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM can))";

constexpr std::string_view kStatusSql = R"(
SELECT count(*) FILTER (WHERE today),
       coalesce(sum(charged_amount_vnd) FILTER (WHERE today), 0),
       count(*), coalesce(sum(charged_amount_vnd), 0)
  FROM (SELECT charged_amount_vnd,
               (received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date =
                 (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS today
          FROM donation
         WHERE msisdn = $1 AND campaign = $2 AND state IN ('charged', 'partially_charged')) d)";

constexpr std::string_view kQueueReplySql = R"(
INSERT INTO outbox (inbound_message_id, purpose, operator, link, source_addr, dest_addr, text)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (inbound_message_id) WHERE donation_id IS NULL AND inbound_message_id IS NOT NULL
DO NOTHING)";

constexpr std::string_view kExpireSql = R"(
WITH due AS (
  SELECT id FROM donation
   WHERE state = 'awaiting_confirmation' AND confirm_deadline <= now()
   ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED),
e AS (
  UPDATE donation d SET state = 'failed', failure_reason = 'confirmation_expired', final_at = now(),
         updated_at = now()
    FROM due WHERE d.id = due.id
  RETURNING d.id),
tr AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, 'awaiting_confirmation', 'failed', 'confirmation_expired', $1 FROM e)
SELECT count(*) FROM e)";

StoreStatus QueueReply(pg::Connection& conn, int64_t inbound_message_id, const std::string& operator_name,
                       const ReplyDraft& r, const std::string& text) {
  pg::Params p;
  p.Int(inbound_message_id).Text(r.purpose.empty() ? std::string("reply") : r.purpose).Text(operator_name);
  if (r.link.empty()) {
    p.Null();
  } else {
    p.Text(r.link);
  }
  p.Text(r.source_addr).Text(r.dest_addr).Text(text);
  return conn.Prepared("kw_queue_reply", kQueueReplySql, p);
}

}  // namespace

StoreStatus ApplyKeywordActions(pg::Connection& conn, const std::string& instance,
                                const std::vector<IngestItem>& items, std::vector<IngestResult>* results) {
  for (size_t i = 0; i < items.size(); ++i) {
    const IngestItem& item = items[i];
    IngestResult& result = (*results)[i];
    if (!item.keyword || !item.message || result.duplicate || result.inbound_message_id == 0) continue;
    const KeywordAction& a = *item.keyword;
    const InboundMessage& m = *item.message;
    StoreStatus st;
    switch (a.kind) {
      case KeywordAction::Kind::kAwaitConfirmation: {
        if (result.donation_id == 0) break;
        pg::Params p;
        p.Text(m.msisdn).Text(a.shortcode).Int(result.donation_id).Int(a.confirm_window.count()).Text(instance);
        st = conn.Prepared("kw_await", kAwaitSql, p);
        break;
      }
      case KeywordAction::Kind::kConfirm: {
        pg::Params p;
        p.Text(m.msisdn).Text(a.shortcode).Int(result.inbound_message_id).Text(instance);
        pg::Result r;
        st = conn.Prepared("kw_confirm", kConfirmSql, p, &r);
        if (st.ok() && r.rows() == 1) result.confirmed_donation_id = r.Int64(0, 0);
        if (st.ok() && result.confirmed_donation_id == 0 && a.reply)
          st = QueueReply(conn, result.inbound_message_id, m.operator_name, *a.reply, a.reply->text);
        break;
      }
      case KeywordAction::Kind::kStop: {
        pg::Params p;
        p.Text(m.msisdn).TextArray(a.campaigns).Bool(a.all_campaigns).Int(result.inbound_message_id).Text(instance);
        st = conn.Prepared("kw_stop", kStopSql, p);
        break;
      }
      case KeywordAction::Kind::kStatus: {
        if (a.campaigns.empty() || !a.reply) break;
        pg::Result r;
        st = conn.Prepared("kw_status", kStatusSql, pg::Params().Text(m.msisdn).Text(a.campaigns[0]), &r);
        if (!st.ok()) break;
        StatusFigures f;
        if (r.rows() == 1) {
          f.today_count = r.Int64(0, 0);
          f.today_amount_vnd = r.Int64(0, 1);
          f.total_count = r.Int64(0, 2);
          f.total_amount_vnd = r.Int64(0, 3);
        }
        const std::string text = a.render_status ? a.render_status(f) : a.reply->text;
        st = QueueReply(conn, result.inbound_message_id, m.operator_name, *a.reply, text);
        break;
      }
    }
    if (!st.ok()) return st;
  }
  return StoreStatus::Ok();
}

StoreStatus ExpireConfirmations(pg::Connection& conn, const std::string& instance, int64_t* expired) {
  pg::Result r;
  StoreStatus st = conn.Prepared("kw_expire", kExpireSql, pg::Params().Text(instance), &r);
  if (st.ok() && expired) *expired = r.rows() == 1 ? r.Int64(0, 0) : 0;
  return st;
}

}  // namespace donagate::billing::internal
