#!/usr/bin/env bash
# Issue 15's keyword flows and reply safety end to end: node-smpp (tests/interop/keyword_flows.js)
# plays the SMSC, the real donagated binds to it (twice, for the two-instance case), a throwaway
# PostgreSQL records everything, the in-process backend charges. Asserts from the database and
# from what the SMSC received:
#   HELP answered with the campaign's UCS-2 help text (diacritics), never charged; a delivery
#   receipt never answered;
#   "CV 10" above confirm_above_units = 5 waits (asked to answer Y), the daemon restarts between
#   question and answer, "y" charges it exactly once, a second "Y" finds nothing to confirm;
#   an unanswered one expires (recorded, never charged, a late "Y" charges nothing);
#   a second "CV n" replaces the waiting one, STOP cancels it and records the opt-out;
#   TRA answers today's and the campaign's figures in one reply;
#   more than max_mos_per_minute_per_msisdn MOs: the rest recorded rate_limited, not charged,
#   one reply saying so; our own reply coming back is never answered;
#   two instances receiving the same "Y" at once charge the waiting donation once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${DONAGATE_BINARY_DIR:-$ROOT/build}
DONAGATED=$BIN/daemon/donagated
DONAGATECTL=$BIN/tools/donagatectl/donagatectl
[ -x "$DONAGATED" ] || { echo "missing $DONAGATED"; exit 1; }
[ -x "$DONAGATECTL" ] || { echo "missing $DONAGATECTL"; exit 1; }
if [ ! -d "$HERE/node_modules/smpp" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
source "$ROOT/tests/lib/pg.sh"
WORK=$(mktemp -d /tmp/donagate-interop-keywords.XXXXXX)
DAEMON_PID=; DAEMON2_PID=; NODE_PID=
cleanup() {
  local rc=$?
  for p in $DAEMON_PID $DAEMON2_PID $NODE_PID; do kill -KILL "$p" 2>/dev/null || true; done
  pg_stop >/dev/null 2>&1 || true
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "--- evidence kept in $WORK"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL[interop.keyword_flows]: $*" >&2
  echo "--- daemon log"; tail -n 25 "$WORK/daemon.log" >&2 || true
  echo "--- SMSC events"; tail -n 25 "$WORK/events.jsonl" >&2 || true
  exit 1
}
pg_start >"$WORK/pg.log" 2>&1 || { cat "$WORK/pg.log"; exit 1; }
psql "$DONAGATE_TEST_PG" -qc "CREATE DATABASE keywords" >/dev/null
DB="$DONAGATE_TEST_PG dbname=keywords"
q() { psql "$DB" -XAtqc "$1"; }

SMSC_PORT=$(_pg_free_port); HTTP_PORT=$(_pg_free_port); HTTP2_PORT=$(_pg_free_port)
write_config() {  # file instance http_port
  cat >"$1" <<TOML
[[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "donagate"
password_env = "KW_SMSC_PASSWORD"
reconnect_backoff_min_s = 1
reconnect_backoff_max_s = 1
tps = 0

[database]
conninfo_env = "KW_DATABASE_URL"
run_migrations_on_start = true

[[campaign]]
name = "Vi mien Trung"
confirm_above_units = 5
confirm_window_s = 10
reply_encoding = "ucs2"

[campaign.templates]
help = "{campaign}: soạn {keyword} n gửi {shortcode} để ủng hộ, mỗi lần {unit_price} đồng."

[[charging]]
operator = "opa"
backend = "in_process"
initial_balance_vnd = 10000000

[pipeline]
instance_id = "$2"
poll_interval_ms = 50
max_mos_per_minute_per_msisdn = 5
max_replies_per_hour_per_msisdn = 50

[http]
listen = "127.0.0.1:$3"
TOML
}
write_config "$WORK/a.toml" kw-a "$HTTP_PORT"
write_config "$WORK/b.toml" kw-b "$HTTP2_PORT"

mkfifo "$WORK/cmd"
(cd "$HERE" && exec node keyword_flows.js "$SMSC_PORT" <"$WORK/cmd" >"$WORK/events.jsonl" 2>"$WORK/node.err") &
NODE_PID=$!
exec 3>"$WORK/cmd"
send() { echo "$1" >&3; }
events() { jq -cs "[.[] | select($1)] | length" "$WORK/events.jsonl"; }
wait_for() {  # jq-filter minimum-count timeout-seconds
  local deadline=$((SECONDS + $3))
  while [ "$(events "$1")" -lt "$2" ]; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $2 x ($1)"
    sleep 0.1
  done
}
start_daemon() {  # config -> sets LAST_PID
  KW_SMSC_PASSWORD=pw KW_DATABASE_URL=$DB "$DONAGATED" --config "$1" >>"$WORK/daemon.log" 2>&1 &
  LAST_PID=$!
}
deliver() {  # key source text [session]
  local session=${4:+,\"session\":$4}
  send "$(jq -cn --arg k "$1" --arg s "$2" --arg t "$3" '{op:"deliver",key:$k,source:$s,text:$t}' | sed "s/}\$/$session}/")"
  wait_for ".ev == \"resp\" and .key == \"$1\"" 1 20
  [ "$(events ".ev == \"resp\" and .key == \"$1\" and .status == 0")" = 1 ] || fail "MO $1 was not acknowledged"
}
submits_to() { events ".ev == \"submit\" and .to == \"$1\"${2:+ and (.text | test(\"$2\"))}"; }
debits() { q "SELECT count(*) FROM ledger_entry l JOIN donation d ON d.id = l.donation_id WHERE d.msisdn = '$1' AND l.direction = 'debit'"; }

start_daemon "$WORK/a.toml"; DAEMON_PID=$LAST_PID
wait_for '.ev == "bound"' 1 30

# --- HELP, never charged; a delivery receipt, never answered
deliver help 84916100001 "hd"
wait_for '.ev == "submit" and .to == "84916100001"' 1 10
# The campaign's help template is Vietnamese with diacritics (reply_encoding = "ucs2"): it
# reaches the SMSC as UCS-2 (keyword_flows.js decodes data_coding 8) with every mark intact.
[ "$(submits_to 84916100001 'soạn CV n gửi 1407 để ủng hộ, mỗi lần 20.000 đồng')" = 1 ] || fail "HELP did not get the UCS-2 help text"
[ "$(q "SELECT outcome FROM inbound_message WHERE msisdn = '84916100001'")" = help ] || fail "HELP not recorded as help"
[ "$(q "SELECT count(*) FROM donation WHERE msisdn = '84916100001'")" = 0 ] || fail "HELP made a donation"
send '{"op":"deliver","key":"dlr","source":"84916100001","text":"id:M1 sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:x","esm_class":4}'
wait_for '.ev == "resp" and .key == "dlr"' 1 10

# --- confirmation, with a restart between question and answer
deliver big 84916100002 "CV 10"
wait_for '.ev == "submit" and .to == "84916100002"' 1 10
[ "$(submits_to 84916100002 'sap ung ho 200.000 dong')" = 1 ] || fail "CV 10 was not asked to confirm"
[ "$(q "SELECT state FROM donation WHERE msisdn = '84916100002'")" = awaiting_confirmation ] || fail "CV 10 is not awaiting confirmation"
[ "$(debits 84916100002)" = 0 ] || fail "CV 10 was charged before its confirmation"
# finance shows the state
awaiting=$("$DONAGATECTL" --db "$DB" report --day "$(TZ=Asia/Ho_Chi_Minh date +%F)" --format json | jq '.total.awaiting')
[ "$awaiting" = 1 ] || fail "donagatectl report shows $awaiting awaiting confirmation (want 1)"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true
start_daemon "$WORK/a.toml"; DAEMON_PID=$LAST_PID
wait_for '.ev == "bound"' 2 30
deliver yes 84916100002 "y"
wait_for '.ev == "submit" and .to == "84916100002" and (.text | test("Cam on"))' 1 15
[ "$(q "SELECT state || ' ' || charged_amount_vnd FROM donation WHERE msisdn = '84916100002'")" = "charged 200000" ] \
  || fail "the confirmed donation is not charged 200000"
deliver yes_again 84916100002 "Y"
wait_for '.ev == "submit" and .to == "84916100002" and (.text | test("Khong co giao dich"))' 1 10
[ "$(debits 84916100002)" = 1 ] || fail "the confirmed donation was debited $(debits 84916100002) times"

# --- status query
deliver tra 84916100002 "TRA"
wait_for '.ev == "submit" and .to == "84916100002" and (.text | test("hom nay"))' 1 10
[ "$(submits_to 84916100002 'hom nay Quy khach da ung ho 200.000 dong \\(1 lan\\), tong cong 200.000 dong \\(1 lan\\)')" = 1 ] \
  || fail "TRA did not report 200.000 today and in all"

# --- replacement, then STOP cancels and records the opt-out
deliver d1 84916100004 "CV 8"
deliver d2 84916100004 "CV 9"
[ "$(q "SELECT string_agg(units || ' ' || state || ' ' || coalesce(failure_reason, '-'), ', ' ORDER BY id) FROM donation WHERE msisdn = '84916100004'")" \
  = "8 failed confirmation_replaced, 9 awaiting_confirmation -" ] || fail "the second CV n did not replace the first"
send '{"op":"deliver","key":"stop","source":"84916100004","text":"H\u1ee6Y","ucs2":true}'   # "HỦY" in UCS-2
wait_for '.ev == "resp" and .key == "stop" and .status == 0' 1 10
wait_for '.ev == "submit" and .to == "84916100004" and (.text | test("ngung nhan tin"))' 1 10
[ "$(q "SELECT state || ' ' || failure_reason FROM donation WHERE msisdn = '84916100004' AND units = 9")" = "failed opted_out" ] \
  || fail "STOP did not cancel the waiting donation"
[ "$(q "SELECT campaign FROM opt_out WHERE msisdn = '84916100004'")" = "Vi mien Trung" ] || fail "no opt-out recorded"
[ "$(debits 84916100004)" = 0 ] || fail "money moved for the replaced/cancelled donations"

# --- expiry: never charged, a late "Y" charges nothing
deliver late 84916100003 "CV 7"
sleep 13
[ "$(q "SELECT state || ' ' || failure_reason FROM donation WHERE msisdn = '84916100003'")" = "failed confirmation_expired" ] \
  || fail "the unanswered confirmation did not expire: $(q "SELECT state FROM donation WHERE msisdn = '84916100003'")"
deliver late_yes 84916100003 "CO"
wait_for '.ev == "submit" and .to == "84916100003" and (.text | test("Khong co giao dich"))' 1 10
[ "$(debits 84916100003)" = 0 ] || fail "an expired confirmation was charged"

# --- per-subscriber rate limit: 7 MOs, 5 processed, one notice
for i in 1 2 3 4 5 6 7; do deliver "rl$i" 84916100005 "CV 1"; done
[ "$(q "SELECT count(*) FROM donation WHERE msisdn = '84916100005'")" = 5 ] || fail "the rate limit let $(q "SELECT count(*) FROM donation WHERE msisdn = '84916100005'") donations through"
[ "$(q "SELECT count(*) FROM inbound_message WHERE msisdn = '84916100005' AND outcome = 'rate_limited'")" = 2 ] || fail "rate-limited MOs not recorded"
wait_for '.ev == "submit" and .to == "84916100005" and (.text | test("qua nhieu"))' 1 10
sleep 1
[ "$(submits_to 84916100005 'qua nhieu')" = 1 ] || fail "the rate-limit notice was not sent exactly once"

# --- our own reply coming back is never answered
deliver loop 84916100006 "Sai cu phap. De ung ho, soan CV n gui 1407 (n la so lan ung ho, moi lan 20.000 dong)."
sleep 1.5
[ "$(q "SELECT outcome FROM inbound_message WHERE msisdn = '84916100006'")" = reply_loop ] || fail "the echoed reply was not recorded reply_loop"
[ "$(submits_to 84916100006)" = 0 ] || fail "the echoed reply was answered"

# --- two instances confirming the same donation at once: one charge
start_daemon "$WORK/b.toml"; DAEMON2_PID=$LAST_PID
wait_for '.ev == "bound"' 3 30
sleep 0.5
deliver two 84916100007 "CV 6" 0
send '{"op":"deliver","key":"y0","source":"84916100007","text":"Y","session":0}'
send '{"op":"deliver","key":"y1","source":"84916100007","text":"Y","session":1}'
wait_for '.ev == "resp" and (.key == "y0" or .key == "y1") and .status == 0' 2 20
wait_for '.ev == "submit" and .to == "84916100007" and (.text | test("Cam on"))' 1 15
wait_for '.ev == "submit" and .to == "84916100007" and (.text | test("Khong co giao dich"))' 1 10
sleep 1
[ "$(debits 84916100007)" = 1 ] || fail "two instances debited the confirmed donation $(debits 84916100007) times"
[ "$(q "SELECT count(*) FROM inbound_message WHERE msisdn = '84916100007' AND outcome = 'confirm'")" = 2 ] || fail "both Y not recorded"

# --- nothing answered twice, nothing charged that should not be
[ "$(submits_to 84916100001)" = 1 ] || fail "the receipt (or HELP) was answered more than once"
send '{"op":"quit"}'
echo "PASS: HELP, STOP, confirmation (restart, expiry, replacement, two instances), TRA, rate limit, reply loop"
