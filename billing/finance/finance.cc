#include "billing/finance/finance.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "billing/finance/csv.h"

namespace donagate::finance {

using billing::StoreStatus;
using billing::pg::Connection;
using billing::pg::Params;
using billing::pg::Result;

namespace {

// Epoch seconds -> timestamptz parameter.
std::string TsParam(int64_t epoch) { return FormatTimestamp(epoch, 0); }

std::string Group(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  int n = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (n && n % 3 == 0) out.push_back(',');
    out.push_back(*it);
    ++n;
  }
  if (v < 0) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace

StoreStatus QueryReport(Connection& conn, const UtcRange& range, std::vector<ReportRow>* rows) {
  // Money comes from the ledger rows of the donations (gross = receivable debits that reverse
  // nothing; reversed = receivable credits of reversing journals), counts from the donations.
  static const char* kSql = R"SQL(
    WITH m AS (
      SELECT im.operator, coalesce(d.campaign, '-') AS campaign, im.outcome,
             d.id AS donation_id, d.units, d.charged_units, d.state, d.failure_reason
        FROM inbound_message im
        LEFT JOIN donation d ON d.inbound_message_id = im.id
       WHERE im.outcome NOT IN ('receipt', 'redelivery')
         AND im.received_at >= $1::timestamptz AND im.received_at < $2::timestamptz
    ), led AS (
      SELECT l.donation_id,
             sum(l.amount_vnd) FILTER (WHERE l.account LIKE 'receivable:%' AND l.direction = 'debit'
                                         AND l.reverses_journal_id IS NULL) AS gross,
             sum(l.amount_vnd) FILTER (WHERE l.account LIKE 'receivable:%' AND l.direction = 'credit'
                                         AND l.reverses_journal_id IS NOT NULL) AS reversed
        FROM ledger_entry l
       WHERE l.donation_id IN (SELECT donation_id FROM m WHERE donation_id IS NOT NULL)
       GROUP BY l.donation_id
    )
    SELECT m.operator, m.campaign,
           count(*),
           count(*) FILTER (WHERE m.donation_id IS NULL),
           count(m.donation_id),
           coalesce(sum(m.units), 0),
           coalesce(sum(m.charged_units), 0),
           coalesce(sum(led.gross), 0),
           count(*) FILTER (WHERE m.state = 'charged'),
           count(*) FILTER (WHERE m.state = 'partially_charged'),
           count(*) FILTER (WHERE m.state = 'failed'),
           count(*) FILTER (WHERE m.state = 'unknown'),
           count(*) FILTER (WHERE m.state IN ('received', 'charging')),
           count(*) FILTER (WHERE m.state = 'reversed'),
           coalesce(sum(led.reversed), 0),
           count(*) FILTER (WHERE m.state = 'awaiting_confirmation')
      FROM m LEFT JOIN led ON led.donation_id = m.donation_id
     GROUP BY m.operator, m.campaign
     ORDER BY m.operator, m.campaign)SQL";
  Result r;
  StoreStatus st = conn.Exec(kSql, Params().Text(TsParam(range.start)).Text(TsParam(range.end)), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    ReportRow row;
    row.operator_name = r.String(i, 0);
    row.campaign = r.String(i, 1);
    row.messages = r.Int64(i, 2);
    row.invalid_messages = r.Int64(i, 3);
    row.donations = r.Int64(i, 4);
    row.units = r.Int64(i, 5);
    row.units_charged = r.Int64(i, 6);
    row.vnd_charged = r.Int64(i, 7);
    row.charged = r.Int64(i, 8);
    row.partial = r.Int64(i, 9);
    row.failed = r.Int64(i, 10);
    row.unknown = r.Int64(i, 11);
    row.pending = r.Int64(i, 12);
    row.reversed = r.Int64(i, 13);
    row.vnd_reversed = r.Int64(i, 14);
    row.awaiting = r.Int64(i, 15);
    rows->push_back(std::move(row));
  }
  // Failure reasons, per operator and campaign: the code (before the first ':') and the
  // backend's detail (after it, NULL when there is none) apart.
  Result f;
  st = conn.Exec(R"SQL(
      SELECT im.operator, d.campaign,
             coalesce(nullif(btrim(split_part(d.failure_reason, ':', 1)), ''), 'unspecified'),
             CASE WHEN strpos(d.failure_reason, ':') > 0
                  THEN nullif(btrim(substr(d.failure_reason, strpos(d.failure_reason, ':') + 1)), '') END,
             count(*)
        FROM donation d JOIN inbound_message im ON im.id = d.inbound_message_id
       WHERE d.state = 'failed' AND im.received_at >= $1::timestamptz AND im.received_at < $2::timestamptz
       GROUP BY 1, 2, 3, 4)SQL",
                 Params().Text(TsParam(range.start)).Text(TsParam(range.end)), &f);
  if (!st.ok()) return st;
  for (int i = 0; i < f.rows(); ++i)
    for (auto& row : *rows)
      if (row.operator_name == f.Text(i, 0) && row.campaign == f.Text(i, 1)) {
        const std::string code = f.String(i, 2);
        row.failed_by_reason[code] += f.Int64(i, 4);
        if (!f.IsNull(i, 3)) row.failed_details[code][f.String(i, 3)] += f.Int64(i, 4);
      }
  return StoreStatus::Ok();
}

void PrintReport(std::ostream& out, const std::vector<ReportRow>& rows, ReportFormat format,
                 const std::string& from_day, const std::string& to_day, const std::string& zone) {
  auto reasons = [](const ReportRow& r) {
    std::string s;
    for (auto& [k, v] : r.failed_by_reason) s += (s.empty() ? "" : ";") + k + "=" + std::to_string(v);
    return s;
  };
  ReportRow total;
  total.operator_name = "TOTAL";
  total.campaign = "";
  for (auto& r : rows) {
    total.messages += r.messages;
    total.invalid_messages += r.invalid_messages;
    total.donations += r.donations;
    total.units += r.units;
    total.units_charged += r.units_charged;
    total.vnd_charged += r.vnd_charged;
    total.charged += r.charged;
    total.partial += r.partial;
    total.failed += r.failed;
    for (auto& [k, v] : r.failed_by_reason) total.failed_by_reason[k] += v;
    for (auto& [code, details] : r.failed_details)
      for (auto& [detail, n] : details) total.failed_details[code][detail] += n;
    total.unknown += r.unknown;
    total.pending += r.pending;
    total.awaiting += r.awaiting;
    total.reversed += r.reversed;
    total.vnd_reversed += r.vnd_reversed;
  }
  const std::vector<std::string> header = {"operator", "campaign", "messages", "invalid", "donations", "units",
                                           "units_charged", "vnd_charged", "charged", "partial", "failed",
                                           "failed_reasons", "unknown", "pending", "awaiting", "reversed", "vnd_reversed",
                                           "vnd_net"};
  auto fields = [&](const ReportRow& r, bool pretty) {
    auto n = [&](int64_t v) { return pretty ? Group(v) : std::to_string(v); };
    return std::vector<std::string>{r.operator_name, r.campaign, n(r.messages), n(r.invalid_messages),
                                    n(r.donations), n(r.units), n(r.units_charged), n(r.vnd_charged),
                                    n(r.charged), n(r.partial), n(r.failed), reasons(r), n(r.unknown),
                                    n(r.pending), n(r.awaiting), n(r.reversed), n(r.vnd_reversed), n(r.vnd_net())};
  };
  if (format == ReportFormat::kCsv) {
    WriteCsvRecord(out, header);
    for (auto& r : rows) WriteCsvRecord(out, fields(r, false));
    return;
  }
  if (format == ReportFormat::kJson) {
    nlohmann::json j;
    j["from"] = from_day;
    j["to"] = to_day;
    j["zone"] = zone;
    j["rows"] = nlohmann::json::array();
    auto obj = [&](const ReportRow& r) {
      nlohmann::json o;
      auto f = fields(r, false);
      for (size_t i = 0; i < header.size(); ++i) {
        if (header[i] == "operator" || header[i] == "campaign") o[header[i]] = f[i];
        else if (header[i] == "failed_reasons") o[header[i]] = r.failed_by_reason;
        else o[header[i]] = std::stoll(f[i]);
      }
      o["failed_details"] = r.failed_details;
      return o;
    };
    for (auto& r : rows) j["rows"].push_back(obj(r));
    j["total"] = obj(total);
    out << j.dump(2) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> table;
  table.push_back(header);
  for (auto& r : rows) table.push_back(fields(r, true));
  table.push_back(fields(total, true));
  std::vector<size_t> width(header.size(), 0);
  for (auto& row : table)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  out << "Donations received " << from_day << (from_day == to_day ? "" : " .. " + to_day)
      << " (" << zone << "), VND\n";
  for (size_t k = 0; k < table.size(); ++k) {
    if (k == table.size() - 1) {
      for (size_t i = 0; i < width.size(); ++i) out << std::string(width[i], '-') << (i + 1 < width.size() ? "  " : "\n");
    }
    for (size_t i = 0; i < table[k].size(); ++i) {
      bool left = i < 2 || header[i] == "failed_reasons";
      if (left) out << std::left; else out << std::right;
      out << std::setw(static_cast<int>(width[i])) << table[k][i] << (i + 1 < table[k].size() ? "  " : "\n");
    }
  }
  // The backends' wordings under the table, so the failed_reasons column stays one bucket per
  // reason and finance can still see what each backend said.
  bool any_detail = false;
  for (auto& r : rows) any_detail |= !r.failed_details.empty();
  if (!any_detail) return;
  out << "\nFailure details (operator, campaign, reason, count, what the backend said)\n";
  for (auto& r : rows)
    for (auto& [code, details] : r.failed_details)
      for (auto& [detail, n] : details)
        out << "  " << r.operator_name << "  " << r.campaign << "  " << code << "  " << Group(n) << "  " << detail
            << "\n";
}

StoreStatus ExportCsv(Connection& conn, ExportKind kind, const UtcRange& range, std::ostream& out,
                      int offset, int batch, const std::function<void(int64_t)>& progress, int64_t* rows_written) {
  const char* header_donations =
      "donation_id,received_at,operator,campaign,msisdn,units,unit_price_vnd,amount_vnd,charging_mode,state,"
      "failure_reason,charged_units,charged_amount_vnd,final_at,inbound_message_id";
  const char* header_ledger =
      "entry_id,journal_id,created_at,account,direction,amount_vnd,donation_id,charge_key,reverses_journal_id,"
      "memo,created_by";
  // Times are rendered by the server in the finance zone, so the cursor streams ready text.
  std::string zone = FormatTimestamp(0, offset).substr(19);  // "+07:00"
  std::string select;
  if (kind == ExportKind::kDonations) {
    select =
        "SELECT d.id, to_char(d.received_at AT TIME ZONE INTERVAL '" + zone + "', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || '" + zone +
        "', d.operator, d.campaign, d.msisdn, d.units, d.unit_price_vnd, d.amount_vnd, d.charging_mode, d.state, "
        "coalesce(d.failure_reason, ''), d.charged_units, d.charged_amount_vnd, "
        "coalesce(to_char(d.final_at AT TIME ZONE INTERVAL '" + zone + "', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || '" + zone +
        "', ''), d.inbound_message_id FROM donation d WHERE d.received_at >= $1::timestamptz AND "
        "d.received_at < $2::timestamptz ORDER BY d.id";
  } else {
    select =
        "SELECT l.id, l.journal_id, to_char(l.created_at AT TIME ZONE INTERVAL '" + zone +
        "', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || '" + zone +
        "', l.account, l.direction, l.amount_vnd, coalesce(l.donation_id::text, ''), coalesce(l.charge_key, ''), "
        "coalesce(l.reverses_journal_id::text, ''), coalesce(l.memo, ''), l.created_by FROM ledger_entry l "
        "WHERE l.created_at >= $1::timestamptz AND l.created_at < $2::timestamptz ORDER BY l.id";
  }
  *rows_written = 0;
  billing::pg::Transaction tx(conn);
  StoreStatus st = tx.Begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!st.ok()) return st;
  // The time zone offset is a literal we built from an integer, never user text; the range is
  // passed as parameters.
  st = conn.Exec("DECLARE export_cursor NO SCROLL CURSOR FOR " + select,
                 Params().Text(TsParam(range.start)).Text(TsParam(range.end)));
  if (!st.ok()) return st;
  out << (kind == ExportKind::kDonations ? header_donations : header_ledger) << kCsvRecordEnd;
  const std::string fetch = "FETCH " + std::to_string(batch) + " FROM export_cursor";
  std::string line;
  while (true) {
    Result r;
    st = conn.Exec(fetch, &r);
    if (!st.ok()) return st;
    if (r.rows() == 0) break;
    for (int i = 0; i < r.rows(); ++i) {
      line.clear();
      for (int c = 0; c < r.columns(); ++c) {
        if (c) line.push_back(',');
        AppendCsvField(&line, r.IsNull(i, c) ? std::string_view() : r.Text(i, c));
      }
      line.append(kCsvRecordEnd);
      out << line;
    }
    *rows_written += r.rows();
    if (!out) return StoreStatus::Permanent("write to the export output failed");
    if (progress) progress(*rows_written);
  }
  conn.Exec("CLOSE export_cursor");
  return tx.Commit();
}

StoreStatus QueryBookedCharges(Connection& conn, const std::string& operator_name, const UtcRange& range,
                               std::vector<OurCharge>* out) {
  Result r;
  StoreStatus st = conn.Exec(R"SQL(
      SELECT c.key, c.donation_id, d.msisdn, l.amount_vnd, c.outcome, extract(epoch FROM l.created_at)::bigint
        FROM ledger_entry l
        JOIN charge c ON c.key = l.charge_key
        JOIN donation d ON d.id = c.donation_id
       WHERE l.account = 'receivable:' || $1 AND l.direction = 'debit' AND l.reverses_journal_id IS NULL
         AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz
       ORDER BY l.id)SQL",
                             Params().Text(operator_name).Text(TsParam(range.start)).Text(TsParam(range.end)), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) {
    OurCharge c;
    c.key = r.String(i, 0);
    c.donation_id = r.Int64(i, 1);
    c.msisdn = r.String(i, 2);
    c.amount_vnd = r.Int64(i, 3);
    c.outcome = r.String(i, 4);
    c.booked = true;
    c.booked_at = r.Int64(i, 5);
    out->push_back(std::move(c));
  }
  return StoreStatus::Ok();
}

StoreStatus ReconcileWithLedger(Connection& conn, const std::string& operator_name, const UtcRange& day,
                                const std::vector<SettlementRow>& their_rows, int display_offset_seconds,
                                ReconcileReport* report) {
  std::vector<OurCharge> ours;
  StoreStatus st = QueryBookedCharges(conn, operator_name, day, &ours);
  if (!st.ok()) return st;
  std::vector<std::string> keys;
  keys.reserve(their_rows.size());
  for (auto& r : their_rows) keys.push_back(r.reference);
  std::map<std::string, OurCharge> by_key;
  st = LookupCharges(conn, keys, &by_key);
  if (!st.ok()) return st;
  *report = Reconcile(day, their_rows, ours, [&](const std::string& k) -> std::optional<OurCharge> {
    auto it = by_key.find(k);
    if (it == by_key.end()) return std::nullopt;
    return it->second;
  }, display_offset_seconds);
  return StoreStatus::Ok();
}

StoreStatus LookupCharges(Connection& conn, const std::vector<std::string>& keys, std::map<std::string, OurCharge>* out) {
  const size_t kChunk = 5000;
  for (size_t off = 0; off < keys.size(); off += kChunk) {
    std::vector<std::string> chunk(keys.begin() + off, keys.begin() + std::min(keys.size(), off + kChunk));
    Result r;
    StoreStatus st = conn.Exec(R"SQL(
        SELECT c.key, c.donation_id, d.msisdn, c.amount_vnd, c.outcome,
               (SELECT extract(epoch FROM min(l.created_at))::bigint FROM ledger_entry l
                 WHERE l.charge_key = c.key AND l.reverses_journal_id IS NULL),
               -- "+ interval '0'": min(created_at) alone lets the planner walk the whole
               -- created_at index looking for the journal (minutes on a large ledger).
               CASE WHEN d.reversal_journal_id IS NOT NULL THEN
                 (SELECT extract(epoch FROM min(l.created_at + interval '0 s'))::bigint
                    FROM ledger_entry l WHERE l.journal_id = d.reversal_journal_id) END
          FROM charge c JOIN donation d ON d.id = c.donation_id
         WHERE c.key = ANY($1::text[]))SQL",
                               Params().TextArray(chunk), &r);
    if (!st.ok()) return st;
    for (int i = 0; i < r.rows(); ++i) {
      OurCharge c;
      c.key = r.String(i, 0);
      c.donation_id = r.Int64(i, 1);
      c.msisdn = r.String(i, 2);
      c.amount_vnd = r.Int64(i, 3);
      c.outcome = r.String(i, 4);
      c.booked = !r.IsNull(i, 5);
      c.booked_at = r.Int64(i, 5);
      c.reversed = !r.IsNull(i, 6);
      c.reversed_at = r.Int64(i, 6);
      (*out)[c.key] = std::move(c);
    }
  }
  return StoreStatus::Ok();
}

namespace {

// Runs a query into one story section.
StoreStatus QuerySection(Connection& conn, const std::string& title, const std::string& sql, const Params& params,
                         std::vector<StorySection>* story) {
  Result r;
  StoreStatus st = conn.Exec(sql, params, &r);
  if (!st.ok()) return st;
  StorySection sec;
  sec.title = title;
  for (int c = 0; c < r.columns(); ++c) sec.columns.emplace_back(PQfname(r.get(), c));
  for (int i = 0; i < r.rows(); ++i) {
    auto& row = sec.rows.emplace_back();
    for (int c = 0; c < r.columns(); ++c) {
      if (r.IsNull(i, c)) row.emplace_back(std::nullopt);
      else row.emplace_back(r.String(i, c));
    }
  }
  story->push_back(std::move(sec));
  return StoreStatus::Ok();
}

// Prints a section's rows as "  col=value col=value" lines under a title.
void PrintSection(const StorySection& sec, std::ostream& out) {
  out << sec.title << " (" << sec.rows.size() << ")\n";
  for (auto& row : sec.rows) {
    out << " ";
    for (size_t c = 0; c < row.size(); ++c) {
      if (!row[c]) continue;
      out << " " << sec.columns[c] << "=";
      const std::string& v = *row[c];
      if (v.find(' ') != std::string::npos || v.empty()) {
        out << '"' << v << '"';
      } else {
        out << v;
      }
    }
    out << "\n";
  }
}

std::string LocalTs(const std::string& col, int offset) {
  std::string zone = FormatTimestamp(0, offset).substr(19);
  return "to_char(" + col + " AT TIME ZONE INTERVAL '" + zone + "', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || '" + zone + "'";
}

}  // namespace

StoreStatus QueryDonationStory(Connection& conn, int64_t id, int offset, std::vector<StorySection>* story, bool* found) {
  Params p;
  p.Int(id);
  StoreStatus st = QuerySection(
      conn, "donation " + std::to_string(id),
      "SELECT id, campaign, operator, msisdn, shortcode, units, unit_price_vnd, amount_vnd, charging_mode, state, "
      "failure_reason, charged_units, charged_amount_vnd, attempts, " + LocalTs("received_at", offset) +
          " AS received_at, " + LocalTs("final_at", offset) + " AS final_at, " + LocalTs("(SELECT min(o.submitted_at) FROM outbox o WHERE o.donation_id = donation.id)", offset) +
          " AS replied_at, reversal_journal_id FROM donation WHERE id = $1",
      p, story);
  if (!st.ok()) return st;
  *found = !story->back().rows.empty();
  if (!*found) return StoreStatus::Ok();
  st = QuerySection(conn, "message",
                    "SELECT im.id, im.link, im.operator, im.source_addr, im.dest_addr, im.data_coding, im.text, "
                    "im.outcome, im.outcome_detail, " + LocalTs("im.received_at", offset) +
                        " AS received_at FROM inbound_message im JOIN donation d ON d.inbound_message_id = im.id "
                        "WHERE d.id = $1",
                    p, story);
  if (!st.ok()) return st;
  st = QuerySection(conn, "transitions",
                    "SELECT " + LocalTs("at", offset) + " AS at, from_state, to_state, reason, actor "
                    "FROM donation_history WHERE donation_id = $1 ORDER BY at, seq NULLS LAST", p, story);
  if (!st.ok()) return st;
  st = QuerySection(conn, "charges",
                    "SELECT key, unit_index, units, amount_vnd, outcome, operator_reference, detail, attempts, " +
                        LocalTs("created_at", offset) + " AS created_at, " + LocalTs("resolved_at", offset) +
                        " AS resolved_at FROM charge WHERE donation_id = $1 ORDER BY unit_index", p, story);
  if (!st.ok()) return st;
  st = QuerySection(conn, "ledger",
                    "SELECT id, journal_id, account, direction, amount_vnd, charge_key, reverses_journal_id, memo, "
                    "created_by, " + LocalTs("created_at", offset) + " AS created_at FROM ledger_entry "
                    "WHERE donation_id = $1 ORDER BY id", p, story);
  if (!st.ok()) return st;
  return QuerySection(conn, "replies",
                      "SELECT o.id, o.purpose, o.state, o.text, o.attempts, o.last_error, " +
                          LocalTs("o.submitted_at", offset) + " AS submitted_at, o.receipt_stat, o.receipt_err, " +
                          LocalTs("o.receipt_at", offset) + " AS receipt_at, "
                          "(SELECT string_agg(m.smsc_message_id, ',' ORDER BY m.part) FROM outbox_message_id m "
                          "WHERE m.outbox_id = o.id) AS smsc_message_ids FROM outbox o WHERE o.donation_id = $1",
                      p, story);
}

StoreStatus QuerySubscriberStory(Connection& conn, const std::string& msisdn, int offset,
                                 std::vector<StorySection>* story, bool* found) {
  Params p;
  p.Text(msisdn);
  StoreStatus st = QuerySection(
      conn, "messages from " + msisdn,
      "SELECT im.id, " + LocalTs("im.received_at", offset) + " AS received_at, im.link, im.operator, im.dest_addr, "
      "im.text, im.outcome, im.outcome_detail, d.id AS donation_id, d.state, d.amount_vnd, d.charged_amount_vnd "
      "FROM inbound_message im LEFT JOIN donation d ON d.inbound_message_id = im.id "
      "WHERE im.msisdn = $1 ORDER BY im.id", p, story);
  if (!st.ok()) return st;
  *found = !story->back().rows.empty();
  if (!*found) return StoreStatus::Ok();
  return QuerySection(conn, "replies to " + msisdn,
                      "SELECT o.id, o.donation_id, o.purpose, o.state, o.text, " + LocalTs("o.submitted_at", offset) +
                          " AS submitted_at, o.receipt_stat FROM outbox o WHERE o.dest_addr = $1 ORDER BY o.id",
                      p, story);
}

StoreStatus ShowDonation(Connection& conn, int64_t id, std::ostream& out, int offset, bool* found) {
  std::vector<StorySection> story;
  StoreStatus st = QueryDonationStory(conn, id, offset, &story, found);
  if (!st.ok()) return st;
  if (!*found) {
    PrintSection(story.front(), out);
    return StoreStatus::Ok();
  }
  for (size_t i = 0; i < story.size(); ++i) {
    PrintSection(story[i], out);
    if (i == 0) out << "\n";
  }
  return StoreStatus::Ok();
}

StoreStatus ShowSubscriber(Connection& conn, const std::string& msisdn, std::ostream& out, int offset, bool* found) {
  std::vector<StorySection> story;
  StoreStatus st = QuerySubscriberStory(conn, msisdn, offset, &story, found);
  if (!st.ok()) return st;
  for (auto& sec : story) PrintSection(sec, out);
  return StoreStatus::Ok();
}

StoreStatus FindDonationByChargeKey(Connection& conn, const std::string& key, int64_t* donation_id) {
  Result r;
  StoreStatus st = conn.Exec("SELECT donation_id FROM charge WHERE key = $1", Params().Text(key), &r);
  if (!st.ok()) return st;
  *donation_id = r.rows() == 1 ? r.Int64(0, 0) : 0;
  return StoreStatus::Ok();
}

StoreStatus QuerySeries(Connection& conn, const UtcRange& range, int64_t bucket, int offset,
                        std::vector<SeriesPoint>* points) {
  // Buckets are aligned to the finance zone: (epoch + offset) / bucket. Both are integers
  // (parameters), the same donations and ledger rows as QueryReport counts.
  Result r;
  StoreStatus st = conn.Exec(R"SQL(
      WITH b AS (
        SELECT g AS start FROM generate_series($1::bigint, $2::bigint - 1, $3::bigint) g
      ), d AS (
        SELECT (floor((extract(epoch FROM im.received_at) + $4::bigint) / $3::bigint) * $3::bigint - $4::bigint)::bigint AS start,
               d.id
          FROM donation d JOIN inbound_message im ON im.id = d.inbound_message_id
         WHERE im.outcome NOT IN ('receipt', 'redelivery')
           AND im.received_at >= to_timestamp($1::bigint) AND im.received_at < to_timestamp($2::bigint)
      ), v AS (
        SELECT d.start, count(*) AS donations,
               coalesce(sum((SELECT sum(l.amount_vnd) FROM ledger_entry l
                              WHERE l.donation_id = d.id AND l.account LIKE 'receivable:%'
                                AND l.direction = 'debit' AND l.reverses_journal_id IS NULL)), 0) AS vnd
          FROM d GROUP BY d.start
      )
      SELECT b.start, coalesce(v.donations, 0), coalesce(v.vnd, 0)
        FROM b LEFT JOIN v ON v.start = b.start ORDER BY b.start)SQL",
                             Params().Int(range.start).Int(range.end).Int(bucket).Int(offset), &r);
  if (!st.ok()) return st;
  for (int i = 0; i < r.rows(); ++i) points->push_back({r.Int64(i, 0), r.Int64(i, 1), r.Int64(i, 2)});
  return StoreStatus::Ok();
}

StoreStatus ReverseDonation(Connection& conn, int64_t donation_id, const std::string& reason, const std::string& actor,
                            ReversalOutcome* outcome) {
  Result r;
  StoreStatus st = conn.Exec("SELECT reversal_journal_id, reversed_amount_vnd, already_reversed "
                             "FROM reverse_donation($1, $2, $3)",
                             Params().Int(donation_id).Text(reason).Text(actor), &r);
  if (!st.ok()) return st;
  if (r.rows() != 1) return StoreStatus::Permanent("reverse_donation returned no row");
  outcome->journal_id = r.Int64(0, 0);
  outcome->amount_vnd = r.Int64(0, 1);
  outcome->already_reversed = r.Bool(0, 2);
  return StoreStatus::Ok();
}

namespace {

// The server's primary message: the first line of libpq's text, without "ERROR:  " and without
// the CONTEXT / DETAIL lines that follow it.
std::string PrimaryMessage(const std::string& raw) {
  std::string line = raw.substr(0, raw.find('\n'));
  for (const char* severity : {"ERROR:", "FATAL:"})
    if (line.rfind(severity, 0) == 0) line.erase(0, std::string_view(severity).size());
  const size_t start = line.find_first_not_of(' ');
  return start == std::string::npos ? "" : line.substr(start);
}

}  // namespace

std::string ExplainReversalRefusal(int64_t donation_id, const StoreStatus& refusal) {
  const std::string donation = "donation " + std::to_string(donation_id);
  const std::string primary = PrimaryMessage(refusal.message());
  const std::string& code = refusal.sqlstate();
  // SQLSTATEs raised by reverse_donation() (billing/store/migrations/0002_roles_and_reversal.sql).
  if (code == "55000") {  // object_not_in_prerequisite_state: "... is not charged (state X) ..."
    std::string state;
    if (size_t at = primary.find("(state "); at != std::string::npos) {
      at += 7;
      state = primary.substr(at, primary.find(')', at) - at);
    }
    return donation + " cannot be reversed: it is not charged" + (state.empty() ? "" : " (state " + state + ")");
  }
  if (code == "P0002") return donation + " does not exist";  // no_data_found
  if (code == "42501")  // insufficient_privilege
    return donation + " cannot be reversed with this database role: connect as a role granted donagate_reverse";
  if (code == "XX001")  // data_corrupted: charged without ledger rows
    return donation + " cannot be reversed: it is marked charged but has no ledger rows (see donagatectl "
                      "donation show " + std::to_string(donation_id) + ")";
  if (refusal.transient())
    return donation + " was not reversed: the database did not complete the request; nothing was written, "
                      "run the same command again";
  return donation + " cannot be reversed: " + (primary.empty() ? "the database refused" : primary);
}

}  // namespace donagate::finance

#include <boost/asio/io_context.hpp>

#include "billing/charging/charging_factory.h"
#include "config/config.h"

namespace donagate::finance {

StoreStatus RefundAtOperator(Connection& conn, const config::Config& config, int64_t donation_id, bool* supported,
                             std::vector<RefundLine>* lines) {
  Result r;
  StoreStatus st = conn.Exec(
      "SELECT d.operator, c.key, c.amount_vnd FROM donation d JOIN charge c ON c.donation_id = d.id "
      "WHERE d.id = $1 AND c.outcome = 'charged' ORDER BY c.unit_index",
      Params().Int(donation_id), &r);
  if (!st.ok()) return st;
  if (r.rows() == 0) return StoreStatus::Permanent("donation has no charged key to refund");
  const std::string op = r.String(0, 0);
  const config::ChargingBackendConfig* cfg = nullptr;
  for (auto& c : config.charging)
    if (c.operator_name == op) cfg = &c;
  if (!cfg) return StoreStatus::Permanent("no [[charging]] entry for operator " + op);
  boost::asio::io_context ioc;
  std::string error;
  auto backend = billing::MakeChargingBackend(*cfg, ioc.get_executor(), &error);
  if (!backend) return StoreStatus::Permanent(error);
  *supported = backend->SupportsRefund();
  if (!*supported) return StoreStatus::Ok();
  lines->resize(r.rows());
  // Stop once every refund answered: a backend with standing links (Diameter peers and their
  // watchdogs) would otherwise keep ioc.run() going forever.
  size_t outstanding = static_cast<size_t>(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    RefundLine& line = (*lines)[i];
    line.key = r.String(i, 1);
    line.amount_vnd = r.Int64(i, 2);
    backend->Refund(line.key, line.amount_vnd, [&line, &outstanding, &ioc](billing::RefundResult res) {
      line.outcome = std::string(billing::ToString(res.outcome));
      line.detail = res.detail;
      if (--outstanding == 0) ioc.stop();
    });
  }
  ioc.run();
  backend.reset();
  return StoreStatus::Ok();
}

StoreStatus RefundBeforeReversal(Connection& conn, const config::Config& config, int64_t donation_id,
                                 RefundForReversal* out) {
  out->supported = true;
  StoreStatus st = RefundAtOperator(conn, config, donation_id, &out->supported, &out->lines);
  if (!st.ok()) return st;
  if (!out->supported) {
    out->may_reverse = true;
    return StoreStatus::Ok();
  }
  out->may_reverse = !out->lines.empty();
  for (auto& l : out->lines) out->may_reverse &= (l.outcome == "refunded");
  if (out->may_reverse) out->reason_suffix = " (refunded at the operator)";
  return StoreStatus::Ok();
}

}  // namespace donagate::finance
