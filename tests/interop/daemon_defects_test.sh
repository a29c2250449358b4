#!/usr/bin/env bash
# Issue 15's two defects end to end: node-smpp (tests/interop/daemon_defects.js) plays the SMSC,
# the real donagated binds to it, a throwaway PostgreSQL records everything, the in-process
# charging backend charges. Asserts from the database and the SMSC's side:
#   1. UDHI set with a header that does not parse (20 43 56 20 31): acknowledged, recorded
#      undecodable with its bytes, no donation, no charge, no thank-you (at most the help text).
#   2. source_addr 0084916000005 (TON 0): a donation of 40,000 VND from 84916000005, thanked.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${DONAGATE_BINARY_DIR:-$ROOT/build}
DONAGATED=$BIN/daemon/donagated
[ -x "$DONAGATED" ] || { echo "missing $DONAGATED"; exit 1; }
if [ ! -d "$HERE/node_modules/smpp" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
source "$ROOT/tests/lib/pg.sh"
WORK=$(mktemp -d /tmp/donagate-interop-defects.XXXXXX)
DAEMON_PID=
cleanup() {
  [ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2>/dev/null || true
  pg_stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL[interop.daemon_defects]: $*" >&2; echo "--- daemon log"; tail -n 20 "$WORK/daemon.log" >&2 || true; exit 1; }
pg_start >"$WORK/pg.log" 2>&1 || { cat "$WORK/pg.log"; exit 1; }
psql "$DONAGATE_TEST_PG" -qc "CREATE DATABASE defects" >/dev/null
DB="$DONAGATE_TEST_PG dbname=defects"
q() { psql "$DB" -XAtqc "$1"; }

SMSC_PORT=$(_pg_free_port); HTTP_PORT=$(_pg_free_port)   # tests/lib/pg.sh: below the ephemeral range
cat >"$WORK/donagate.toml" <<TOML
[[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "donagate"
password_env = "DEFECTS_SMSC_PASSWORD"
reconnect_backoff_min_s = 1
reconnect_backoff_max_s = 1
tps = 0

[database]
conninfo_env = "DEFECTS_DATABASE_URL"
run_migrations_on_start = true

[[campaign]]
name = "Vi mien Trung"

[[charging]]
operator = "opa"
backend = "in_process"
initial_balance_vnd = 10000000

[pipeline]
instance_id = "interop-defects"
poll_interval_ms = 50

[http]
listen = "127.0.0.1:$HTTP_PORT"
TOML

cd "$HERE"
node daemon_defects.js "$SMSC_PORT" >"$WORK/smsc.json" 2>"$WORK/smsc.err" &
NODE_PID=$!
sleep 0.3
DEFECTS_SMSC_PASSWORD=pw DEFECTS_DATABASE_URL=$DB "$DONAGATED" --config "$WORK/donagate.toml" >>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
wait "$NODE_PID" || fail "the node-smpp SMSC failed: $(cat "$WORK/smsc.err")"
result=$(cat "$WORK/smsc.json")
echo "SMSC saw: $result"

[ "$(jq '.statuses.bad_udh' <<<"$result")" = 0 ] || fail "the malformed-UDH MO was not acknowledged (it is recorded)"
[ "$(jq '.statuses.intl_prefix' <<<"$result")" = 0 ] || fail "the 0084 MO was not acknowledged"

bad=$(q "SELECT outcome || ' ' || encode(raw_payload, 'hex') FROM inbound_message WHERE source_addr = '84916000001'")
[ "$bad" = "undecodable 2043562031" ] || fail "malformed UDH recorded as '$bad' (want undecodable with its bytes)"
[ "$(q "SELECT count(*) FROM donation WHERE msisdn = '84916000001'")" = 0 ] || fail "a donation was made from the malformed UDH"
[ "$(q "SELECT count(*) FROM ledger_entry l JOIN donation d ON d.id = l.donation_id WHERE d.msisdn = '84916000001'")" = 0 ] \
  || fail "money moved on the malformed UDH"
[ "$(jq '[.submits[] | select(.to == "84916000001" and (.text | test("Cam on")))] | length' <<<"$result")" = 0 ] \
  || fail "the malformed UDH was thanked"

intl=$(q "SELECT d.msisdn || ' ' || d.amount_vnd || ' ' || d.state FROM donation d JOIN inbound_message m ON m.id = d.inbound_message_id WHERE m.source_addr = '0084916000005'")
[ "$intl" = "84916000005 40000 charged" ] || fail "the 0084 donation is '$intl' (want 84916000005 40000 charged)"
[ "$(jq '[.submits[] | select(.to == "84916000005" and (.text | test("Cam on")))] | length' <<<"$result")" = 1 ] \
  || fail "the 0084 donor was not thanked exactly once"
[ "$(q "SELECT state FROM donation WHERE msisdn = '84916000006'")" = charged ] || fail "the control donation was not charged"
echo "PASS: malformed UDH recorded undecodable and never charged; 0084… is a donation"
