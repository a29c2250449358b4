#!/usr/bin/env bash
# Browser tests of donagate-console: Debian's chromium, headless, driven by puppeteer-core
# (console_browser.js), against the real console process and a real PostgreSQL database.
# Screenshots of every page land in $DONAGATE_BINARY_DIR/console-screenshots/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
export DONAGATE_BINARY_DIR=${DONAGATE_BINARY_DIR:-$SRC/build}
CONSOLE=$DONAGATE_BINARY_DIR/console/donagate-console
CTL=$DONAGATE_BINARY_DIR/tools/donagatectl/donagatectl
for b in "$CONSOLE" "$CTL"; do [ -x "$b" ] || { echo "missing $b (build donagate-console and donagatectl)"; exit 1; }; done
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || { echo "FAIL: chromium is not installed (deploy/install-deps.sh installs it)"; exit 1; }
if [ ! -d "$HERE/node_modules/puppeteer-core" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

STARTED_PG=0
if [ -z "${DONAGATE_TEST_PG:-}" ]; then
  # shellcheck source=../../lib/pg.sh
  source "$SRC/tests/lib/pg.sh"
  pg_start >/dev/null
  STARTED_PG=1
fi
DB=console_browser_$$_$RANDOM
psql "$DONAGATE_TEST_PG" -Xqc "CREATE DATABASE $DB" >/dev/null
URL_DB="${DONAGATE_TEST_PG/dbname=postgres/dbname=$DB}"
CONSOLE_PID=
SPOOL=
cleanup() {
  [ -n "$CONSOLE_PID" ] && kill "$CONSOLE_PID" 2>/dev/null && wait "$CONSOLE_PID" 2>/dev/null || true
  [ -n "$SPOOL" ] && rm -rf "$SPOOL"
  psql "$DONAGATE_TEST_PG" -Xqc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  if [ "$STARTED_PG" = 1 ]; then pg_stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
q() { psql "$URL_DB" -XAtqc "$1"; }

"$CTL" --db "$URL_DB" migrate >/dev/null
# Today (Asia/Ho_Chi_Minh), three donations: two charged, one whose MO text is a script.
psql "$URL_DB" -Xq >/dev/null <<'SQL'
INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr, data_coding, esm_class,
                             raw_payload, text, received_at, outcome)
VALUES (1, 't', 'opa-1', 'opa', '84912000001', '84912000001', '1407', 0, 0, '\x4356', 'CV 1', now() - interval '1 minute', 'donation'),
       (2, 't', 'opa-1', 'opa', '84912000002', '84912000002', '1407', 0, 0, '\x4356', 'CV 2', now() - interval '1 minute', 'donation'),
       (3, 't', 'opb-1', 'opb', '84912000003', '84912000003', '1407', 0, 0, '\x4356',
        '<script>alert(1)</script><img src=x onerror=alert(2)> CV 5', now() - interval '1 minute', 'donation'),
       (4, 't', 'opa-1', 'opa', '84912000004', '84912000004', '1407', 0, 0, '\x4356', 'CV 3', now() - interval '1 minute', 'donation'),
       (5, 't', 'opa-1', 'opa', '84912000005', '84912000005', '1407', 0, 0, '\x4356', 'CV 1', now() - interval '1 minute', 'donation');
INSERT INTO donation (id, inbound_message_id, campaign, operator, msisdn, shortcode, units, unit_price_vnd, amount_vnd,
                      charging_mode, state, charged_units, charged_amount_vnd, received_at)
VALUES (1, 1, 'covid', 'opa', '84912000001', '1407', 1, 20000, 20000, 'whole', 'charged', 1, 20000, now() - interval '1 minute'),
       (2, 2, 'covid', 'opa', '84912000002', '1407', 2, 20000, 40000, 'whole', 'charged', 2, 40000, now() - interval '1 minute'),
       (3, 3, 'flood', 'opb', '84912000003', '1407', 5, 20000, 100000, 'whole', 'charged', 5, 100000, now() - interval '1 minute'),
       (4, 4, 'covid', 'opa', '84912000004', '1407', 3, 20000, 60000, 'whole', 'charged', 3, 60000, now() - interval '1 minute'),
       (5, 5, 'covid', 'opa', '84912000005', '1407', 1, 20000, 20000, 'whole', 'charged', 1, 20000, now() - interval '1 minute');
INSERT INTO charge (key, donation_id, unit_index, units, amount_vnd, outcome)
VALUES ('don-1', 1, 0, 1, 20000, 'charged'), ('don-2', 2, 0, 2, 40000, 'charged'), ('don-3', 3, 0, 5, 100000, 'charged'),
       ('don-4', 4, 0, 3, 60000, 'charged'), ('don-5', 5, 0, 1, 20000, 'charged');
INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key, created_by)
SELECT j.j, v.account, v.direction, d.amount_vnd, d.id, 'don-' || d.id, 'test'
  FROM donation d CROSS JOIN LATERAL (SELECT nextval('ledger_journal_id_seq') AS j) j
  CROSS JOIN LATERAL (VALUES ('receivable:' || d.operator, 'debit'), ('fund:' || d.campaign, 'credit')) v(account, direction);
SQL
for u in anna:finance binh:approver olga:ops; do
  DONAGATE_USER_PASSWORD="browser-test-${u%%:*}" "$CTL" --db "$URL_DB" user add "${u%%:*}" --roles "${u#*:}" >/dev/null
done

# The saved mapping of operator A's layout, as donagatectl reads it with --mapping.
psql "$URL_DB" -Xq -v toml="$(cat "$SRC/tools/donagatectl/mappings/operator-a.toml")" >/dev/null <<'SQL'
INSERT INTO settlement_mapping (name, toml, created_by) VALUES ('operator-a', :'toml', 'test');
SQL
# Operator opa's settlement file for today in operator A's layout (with a BOM), with exactly one
# discrepancy of each kind injected: don-2 billed 45.000 instead of 40.000 (amount), don-5 failed
# at the operator (status), don-4 absent (missing at operator), don-999 unknown to us (missing in
# ledger), don-1 listed twice (duplicate). don-1 alone matches.
TODAY=$(TZ=Asia/Ho_Chi_Minh date +%d/%m/%Y)
SETTLEMENT=$DONAGATE_BINARY_DIR/console-browser-settlement-opa.csv
{
  printf '\xEF\xBB\xBF# Operator A daily settlement\r\n'
  printf 'TRANS_ID,MSISDN,AMOUNT,CHARGE_TIME,RESULT,CP_REF\r\n'
  printf 'A1,84912000001,20000,%s 00:00:05,SUCCESS,don-1\r\n' "$TODAY"
  printf 'A2,84912000002,45000,%s 00:00:06,SUCCESS,don-2\r\n' "$TODAY"
  printf 'A3,84912000005,20000,%s 00:00:07,FAILED_BALANCE,don-5\r\n' "$TODAY"
  printf 'A4,84912000999,20000,%s 00:00:08,SUCCESS,don-999\r\n' "$TODAY"
  printf 'A5,84912000001,20000,%s 00:00:05,SUCCESS,don-1\r\n' "$TODAY"
} >"$SETTLEMENT"
export SETTLEMENT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SPOOL=$(mktemp -d)
"$CONSOLE" --db "$URL_DB" --listen "127.0.0.1:$PORT" --max-upload-mib 1 --spool-dir "$SPOOL" >"$DONAGATE_BINARY_DIR/console-browser-test.log" 2>&1 &
CONSOLE_PID=$!
for _ in $(seq 1 50); do curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$PORT/login" && break; sleep 0.1; done

SHOTS=$DONAGATE_BINARY_DIR/console-screenshots
mkdir -p "$SHOTS"
export CONSOLE_URL="http://127.0.0.1:$PORT" CHROMIUM SHOTS
export EXPECT_DONATIONS=$(q "SELECT count(*) FROM donation")
export EXPECT_VND_CHARGED=$(q "SELECT sum(amount_vnd) FROM ledger_entry WHERE account LIKE 'receivable:%' AND direction = 'debit'")
LEDGER_BEFORE=$(q "SELECT count(*) FROM ledger_entry")
cd "$HERE"
timeout 180 node console_browser.js

# An upload over the limit (1 MiB here) is refused with 413 and a page saying the limit, before
# a login is even looked at, and nothing stays in the spool folder.
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$DONAGATE_BINARY_DIR/console-browser-big.csv"
CODE=$(curl -s --noproxy '*' -o "$DONAGATE_BINARY_DIR/console-browser-413.html" -w '%{http_code}' \
  -F "settlement=@$DONAGATE_BINARY_DIR/console-browser-big.csv" "http://127.0.0.1:$PORT/reconcile/upload")
[ "$CODE" = 413 ] || { echo "FAIL: a 2 MiB upload got HTTP $CODE, not 413"; exit 1; }
grep -q 'at most 1 MiB' "$DONAGATE_BINARY_DIR/console-browser-413.html" || { echo "FAIL: the 413 page does not say the limit"; exit 1; }
rm -f "$DONAGATE_BINARY_DIR/console-browser-big.csv" "$DONAGATE_BINARY_DIR/console-browser-413.html"
[ -z "$(ls -A "$SPOOL")" ] || { echo "FAIL: spool files left behind: $(ls "$SPOOL")"; exit 1; }

# What the browser did, read back from the database.
[ "$(q "SELECT state FROM donation WHERE id = 2")" = reversed ] || { echo "FAIL: donation 2 is not reversed"; exit 1; }
[ "$(q "SELECT count(*) FROM ledger_entry")" = $((LEDGER_BEFORE + 2)) ] || { echo "FAIL: the ledger did not gain exactly the reversing pair"; exit 1; }
[ "$(q "SELECT requested_by || '>' || decided_by FROM reversal_request WHERE donation_id = 2")" = "anna>binh" ] \
  || { echo "FAIL: the request does not name both people"; exit 1; }
[ "$(q "SELECT count(*) FROM reversal_request WHERE donation_id = 1")" = 0 ] || { echo "FAIL: a CSRF-less POST filed a request"; exit 1; }
[ "$(q "SELECT count(*) FROM console_audit WHERE action = 'csrf' AND outcome = 'refused'")" -ge 1 ] \
  || { echo "FAIL: the refused CSRF-less POST is not in the audit log"; exit 1; }
[ "$(q "SELECT run_by || ' ' || operator || ' ' || settlement_encoding || ' ' || mapping_name FROM reconcile_run")" = "anna opa UTF-8 with BOM operator-a" ] \
  || { echo "FAIL: the reconcile run is not saved as run"; exit 1; }
[ "$(q "SELECT settlement_sha256 FROM reconcile_run")" = "$(sha256sum "$SETTLEMENT" | cut -d' ' -f1)" ] \
  || { echo "FAIL: the saved run does not carry the file's SHA-256"; exit 1; }
[ "$(q "SELECT count(*) FROM console_audit WHERE action = 'reconcile_run' AND actor = 'anna' AND outcome = 'ok'")" = 1 ] \
  || { echo "FAIL: the reconcile run is not in the audit log"; exit 1; }
echo "PASS: console in chromium: login, overview totals, inert stored script, reconcile with injected discrepancies and its CSV, 413 upload limit, four-eyes reversal, role and CSRF refusals; screenshots in $SHOTS"
