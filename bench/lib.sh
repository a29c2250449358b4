# shellcheck shell=bash
# Helpers shared by bench/run.sh and bench/kannel_compare.sh. Source this file after setting
# OUT (the run directory) and PSQL (the psql command line as an array). verify reads
# $OUT/<db>-acked.csv (loadgen --acked-file) and $OUT/<db>-debits.csv (charging_sim
# --debit-log).

wait_for_file() {  # path timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

proc_rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
proc_hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
proc_cpu_s() {  # utime + stime in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Waits until every donation is final (or timeout_s passes). Replies still in the outbox are
# reported (replies_unsent), not waited for: the generator has unbound by then.
wait_drained() {  # db timeout_s
  local i left=unknown
  for ((i = 0; i < $2; i++)); do
    left=$("${PSQL[@]}" -d "$1" -c "SELECT count(*) FROM donation WHERE state IN ('received','charging','unknown')")
    [ "$left" = 0 ] && return 0
    sleep 1
  done
  log "$1: not drained after $2 s ($left donations not final)"
  return 1
}

# Verifies the database of one run against the loadgen's acked file and charging_sim's debit
# log. Prints a JSON object of the checks; returns 1 when any fails.
verify() {  # db
  local db=$1 acked=$OUT/$1-acked.csv debits=$OUT/$1-debits.csv
  local q
  q=$("${PSQL[@]}" -d "$db" <<EOF
CREATE TEMP TABLE acked (seq bigint, source text, units int, text text);
\copy acked FROM '$acked' WITH (FORMAT csv, HEADER true)
CREATE TEMP TABLE debits (key text, msisdn text, amount bigint, at text);
\copy debits FROM '$debits' WITH (FORMAT csv, HEADER true)
WITH m AS (SELECT * FROM inbound_message WHERE outcome <> 'receipt')
SELECT json_build_object(
  'acked', (SELECT count(*) FROM acked),
  'stored', (SELECT count(*) FROM m),
  'missing', (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.source_addr = a.source)),
  'extra', (SELECT count(*) FROM m WHERE NOT EXISTS (SELECT 1 FROM acked a WHERE a.source = m.source_addr)),
  'duplicates', (SELECT count(*) FROM (SELECT source_addr FROM m GROUP BY 1 HAVING count(*) > 1) d),
  'text_mismatch', (SELECT count(*) FROM m JOIN acked a ON a.source = m.source_addr WHERE m.text <> a.text),
  'donations', (SELECT count(*) FROM donation),
  'expected_donations', (SELECT count(*) FROM acked WHERE units > 0),
  'units_mismatch', (SELECT count(*) FROM donation d JOIN inbound_message m ON m.id = d.inbound_message_id
                      JOIN acked a ON a.source = m.source_addr WHERE d.units <> a.units),
  'not_final', (SELECT count(*) FROM donation WHERE state IN ('received','charging','unknown')),
  'not_charged', (SELECT count(*) FROM donation WHERE state <> 'charged'),
  'debit_vnd', (SELECT coalesce(sum(amount_vnd), 0) FROM ledger_entry WHERE direction = 'debit'),
  'credit_vnd', (SELECT coalesce(sum(amount_vnd), 0) FROM ledger_entry WHERE direction = 'credit'),
  'expected_vnd', (SELECT coalesce(sum(units), 0)::bigint * 20000 FROM acked WHERE units > 0),
  'charged_vnd', (SELECT coalesce(sum(charged_amount_vnd), 0) FROM donation),
  'sim_debits', (SELECT count(*) FROM debits),
  'sim_debit_vnd', (SELECT coalesce(sum(amount), 0) FROM debits),
  'sim_keys_twice', (SELECT count(*) FROM (SELECT key FROM debits GROUP BY 1 HAVING count(*) > 1) k),
  'replies_unsent', (SELECT count(*) FROM outbox WHERE state IN ('pending','claimed','failed')),
  -- Stage rates from the database's own timestamps (which stage limits the end-to-end rate).
  'db_ingest_per_s', (SELECT round(count(*) / greatest(extract(epoch FROM max(stored_at) - min(stored_at)), 0.001))
                        FROM m),
  'db_charged_per_s', (SELECT round(count(*) / greatest(extract(epoch FROM max(final_at) - min(created_at)), 0.001))
                         FROM donation WHERE final_at IS NOT NULL),
  'db_replied_per_s', (SELECT round(count(*) / greatest(extract(epoch FROM max(submitted_at) - min(created_at)), 0.001))
                         FROM outbox WHERE submitted_at IS NOT NULL));
EOF
)
  echo "$q"
  # Money checks. When every donation is final the ledger must equal the expected sum exactly;
  # when the run ended with donations still waiting (a throughput limit, reported as
  # not_final), what IS charged must be ledgered, and charging_sim may only be ahead by charges
  # still in flight at shutdown (resolved later by Status(key), never re-charged).
  echo "$q" | jq -e '.missing == 0 and .extra == 0 and .duplicates == 0 and .text_mismatch == 0
      and .donations == .expected_donations and .units_mismatch == 0
      and .debit_vnd == .credit_vnd and .debit_vnd == .charged_vnd and .sim_keys_twice == 0
      and .acked == .stored
      and (if .not_final == 0 then .debit_vnd == .expected_vnd and .sim_debit_vnd == .expected_vnd
           else .sim_debit_vnd >= .debit_vnd end)' >/dev/null
}
