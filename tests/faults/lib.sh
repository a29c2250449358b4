# Shared harness of the fault scenarios (tests/faults/*_test.sh). Source it, then:
#
#   faults_setup NAME            own throwaway PostgreSQL (tests/lib/pg.sh) + database, work dir,
#                                cleanup trap (kills what it started, removes the cluster)
#   faults_gen_mos N [FILE]      N MOs from 1,000 subscribers, every tenth text invalid;
#                                sets MO_FILE, VALID (valid "CV n" count), EXPECTED_VND
#   faults_start_charging [ARGS] charging_sim on a free port (debit log in $WORK/debits.csv)
#   faults_start_smsc [ARGS]     smsc_sim with the MO file, MO ids in TLV 5121, redelivery of
#                                unacknowledged MOs, receipts, exit once all N are acked (and
#                                FAULTS_EXPECT_SUBMITS replies accepted, when set)
#   faults_write_config [TOML]   donagated config (extra TOML appended; secrets from env)
#   faults_start_daemon          donagated in the background (DAEMON_PID), log appended to daemon.log
#   faults_wait_smsc SECONDS     wait for smsc_sim to finish (SIGTERM it at the deadline)
#   faults_wait_final SECONDS    wait until every stored donation has a final state
#   faults_verify                the invariants; prints the one-line summary (+ FAULTS_SUMMARY_EXTRA,
#                                appended to $FAULTS_RESULTS when set); exits 1 on violation.
#                                FAULTS_EXPECT_ALL_CHARGED=0 drops "every valid MO charged"
#
# FAULTS_MO_ID_TLV=1 (default): the SMSC sends a unique MO id in TLV 5121 and the link is told
# so (dedupe by id). FAULTS_MO_ID_TLV=0: no MO id, as most SMSCs: every MO comes from its own
# subscriber, so "charged twice for one sent message" is checked per subscriber (per distinct
# sent MO, not per stored row), and the SMSC gives up on an unanswered deliver_sm after
# FAULTS_RESPONSE_TIMEOUT_MS (default 3000) and redelivers it, as a real SMSC does. CTest runs
# every fault scenario both ways (tests/CMakeLists.txt).
#
# Everything listens on 127.0.0.1 only; a watchdog ends the script after FAULTS_TIMEOUT s
# (default 120 + FAULTS_MESSAGES/25). FAULTS_MESSAGES scales the load (default 5000; the
# issue's full 20,000 is a manual run: FAULTS_MESSAGES=20000 tests/faults.sh).
set -euo pipefail

FAULTS_SRC=${DONAGATE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FAULTS_BIN=${DONAGATE_BINARY_DIR:-$FAULTS_SRC/build}
FAULTS_MESSAGES=${FAULTS_MESSAGES:-5000}
FAULTS_MO_ID_TLV=${FAULTS_MO_ID_TLV:-1}
FAULTS_RESPONSE_TIMEOUT_MS=${FAULTS_RESPONSE_TIMEOUT_MS:-3000}
FAULTS_TIMEOUT=${FAULTS_TIMEOUT:-$((120 + FAULTS_MESSAGES / 25))}   # 320 s at 5000
DONAGATED=$FAULTS_BIN/daemon/donagated
SMSC_SIM=$FAULTS_BIN/tools/smsc_sim/smsc_sim
CHARGING_SIM=$FAULTS_BIN/tools/charging_sim/charging_sim
# shellcheck source=../lib/pg.sh
source "$FAULTS_SRC/tests/lib/pg.sh"

FAULTS_PIDS=()
DAEMON_PID=
SMSC_PID=
CHARGING_PID=
FAULTS_T0=$SECONDS

fail() {
  echo "FAIL[$FAULTS_NAME]: $*" >&2
  exit 1
}
note() { echo "[$FAULTS_NAME +$((SECONDS - FAULTS_T0))s] $*"; }

faults_cleanup() {
  local rc=$?
  local p
  disown -a 2>/dev/null || true   # no "Killed" job notices for what we end here
  for p in "${FAULTS_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${FAULTS_WATCHDOG:-}" ]; then
    pkill -P "$FAULTS_WATCHDOG" sleep 2>/dev/null || true
    kill "$FAULTS_WATCHDOG" 2>/dev/null || true
  fi
  pg_stop >/dev/null 2>&1 || true
  if [ -n "${FAULTS_AFTER_PG_STOP:-}" ]; then $FAULTS_AFTER_PG_STOP || true; fi
  if [ "$rc" -ne 0 ]; then
    echo "--- daemon log (tail)"; tail -n 30 "$WORK/daemon.log" 2>/dev/null || true
    echo "--- smsc_sim log (tail)"; tail -n 10 "$WORK/smsc_sim.log" 2>/dev/null || true
    echo "--- evidence kept in $WORK"
  elif [ -z "${FAULTS_KEEP:-}" ]; then
    rm -rf "$WORK"
  fi
}

# Sets variable $1 to a free loopback port (not via $(...): a subshell replays $RANDOM).
# 20000..32767: below Linux's ephemeral range (32768+), so no outgoing connection of a parallel
# test can take the port between this check and the listener's bind.
FAULTS_USED_PORTS=" "
pick_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12768))
    case "$FAULTS_USED_PORTS" in *" $p "*) continue ;; esac
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || break
  done
  FAULTS_USED_PORTS="$FAULTS_USED_PORTS$p "
  printf -v "$1" '%s' "$p"
}

faults_setup() {
  FAULTS_NAME=$1
  [ "$FAULTS_MO_ID_TLV" = 1 ] || FAULTS_NAME="${FAULTS_NAME}_no_mo_id"
  for b in "$DONAGATED" "$SMSC_SIM" "$CHARGING_SIM"; do
    [ -x "$b" ] || fail "missing binary $b (build donagated, smsc_sim, charging_sim)"
  done
  WORK=$(mktemp -d "/tmp/donagate-faults-$FAULTS_NAME.XXXXXX")
  chmod 755 "$WORK"
  trap faults_cleanup EXIT
  # Whole-script bound (CTest's own timeout is 900 s): SIGTERM ourselves, fail, clean up.
  trap 'echo "FAIL[$FAULTS_NAME]: timed out after $FAULTS_TIMEOUT s" >&2; exit 124' TERM
  { sleep "$FAULTS_TIMEOUT" && kill -TERM $$; } 2>/dev/null &
  FAULTS_WATCHDOG=$!
  # Retry: another test may grab the random port between the check and the bind.
  local attempt
  for attempt in 1 2 3; do
    if pg_start >"$WORK/pg_start.log" 2>&1; then break; fi
    tail -n 5 "$WORK/pg_start.log" >&2
    pg_stop >/dev/null 2>&1 || true
    [ "$attempt" = 3 ] && fail "could not start PostgreSQL (3 attempts)"
    sleep 1
  done
  psql "$DONAGATE_TEST_PG" -qc "CREATE DATABASE faults" >/dev/null
  DB="$DONAGATE_TEST_PG dbname=faults"
  pick_port CHARGING_PORT; pick_port SMSC_PORT; pick_port HTTP_PORT; pick_port ADMIN_PORT
  : >"$WORK/daemon.log"
}

# q SQL -> one value/rows (unaligned, tuples only); empty on error (database away).
q() { psql "$DB" -XAtqc "$1" 2>/dev/null || echo ""; }
# qs SQL as the superuser on the faults database, errors shown.
qs() { psql "$DB" -XAtqc "$1"; }

faults_gen_mos() {
  local n=$1
  MO_FILE=${2:-$WORK/mos.txt}
  MO_COUNT=$n
  # With MO ids: 1,000 subscribers sending several MOs each. Without: one subscriber per MO,
  # so each sent MO is identified by its source address in the database and the debit log.
  local subscribers=1000
  [ "$FAULTS_MO_ID_TLV" = 1 ] || subscribers=100000
  awk -v n="$n" -v subs="$subscribers" 'BEGIN {
      for (i = 0; i < n; i++) {
        src = sprintf("849160%05d", subs == 1000 ? (i * 7919) % 1000 : i)   # mawk: no 64-bit %d
        if (i % 10 == 9) { printf "%s,1407,ung ho\n", src }
        else { u = 1 + i % 5; printf "%s,1407,CV %d\n", src, u; valid++; vnd += u * 20000 }
      }
      printf "%d %.0f\n", valid, vnd > "/dev/stderr"
    }' >"$MO_FILE" 2>"$WORK/mos.expected"
  read -r VALID EXPECTED_VND <"$WORK/mos.expected"
}

faults_start_charging() {
  "$CHARGING_SIM" --listen "127.0.0.1:$CHARGING_PORT" --default-balance 100000000000 \
    --latency-ms 2 --debit-log "$WORK/debits.csv" "$@" >>"$WORK/charging_sim.log" 2>&1 &
  CHARGING_PID=$!; FAULTS_PIDS+=("$CHARGING_PID")
  for _ in $(seq 1 100); do
    grep -q 'listening' "$WORK/charging_sim.log" 2>/dev/null && return 0; sleep 0.05
  done
  fail "charging_sim did not start"
}

# charging_admin JSON -> POST /v1/admin/config (fail_rate, timeout_rate, ...).
charging_admin() {
  curl -sf -X POST -H 'Content-Type: application/json' ${CHARGING_TOKEN:+-H "Authorization: Bearer $CHARGING_TOKEN"} \
    -d "$1" "http://127.0.0.1:$CHARGING_PORT/v1/admin/config" >/dev/null || fail "charging_sim admin $1 refused"
}

FAULTS_SMSC_PASSWORD=${FAULTS_SMSC_PASSWORD:-faultpw}
faults_start_smsc() {
  "$SMSC_SIM" --listen "127.0.0.1:$SMSC_PORT" --system-id donagate --password "$FAULTS_SMSC_PASSWORD" \
    --mo-file "$MO_FILE" --mo-rate "${FAULTS_MO_RATE:-600}" --window 50 \
    $([ "$FAULTS_MO_ID_TLV" = 1 ] && echo --mo-id-tlv 5121 || echo --response-timeout-ms "$FAULTS_RESPONSE_TIMEOUT_MS") \
    --redeliver-unacked --redeliver-delay-ms 300 --receipts --receipt-delay-ms 50 \
    --exit-when-done ${FAULTS_EXPECT_SUBMITS:+--expect-submits "$FAULTS_EXPECT_SUBMITS"} --duration "${FAULTS_SMSC_DURATION:-170}" \
    --report "$WORK/report.json" "$@" >>"$WORK/smsc_sim.log" 2>&1 &
  SMSC_PID=$!; FAULTS_PIDS+=("$SMSC_PID")
  for _ in $(seq 1 100); do
    ss -Hltn "sport = :$SMSC_PORT" 2>/dev/null | grep -q . && return 0; sleep 0.05
  done
  fail "smsc_sim did not start"
}

# faults_write_config [extra TOML]: the daemon's config. [pipeline]/[[smsc]] overrides go
# through FAULTS_SMSC_EXTRA / FAULTS_PIPELINE_EXTRA / FAULTS_CHARGING_EXTRA (TOML lines).
faults_write_config() {
  cat >"$WORK/donagate.toml" <<EOF
[[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "donagate"
password_env = "FAULTS_SMSC_PASSWORD"
reconnect_backoff_min_s = 1
reconnect_backoff_max_s = 1
tps = 0
window = 50
$([ "$FAULTS_MO_ID_TLV" = 1 ] && echo "mo_id_tlv = 5121")
${FAULTS_SMSC_EXTRA:-}

[database]
conninfo_env = "FAULTS_DATABASE_URL"
pool_size = 4
batch_size = 128
batch_linger_ms = 2
run_migrations_on_start = true
connect_timeout_s = 2

[[campaign]]
name = "Vi mien Trung"
max_units_per_day_per_msisdn = 0

[[charging]]
operator = "opa"
backend = "http"
url = "http://127.0.0.1:$CHARGING_PORT"
timeout_ms = 1000
status_backoff_min_ms = 100
status_backoff_max_ms = 1000
${FAULTS_CHARGING_EXTRA:-}

[pipeline]
instance_id = "faults-$FAULTS_NAME"
temp_error_status = "ESME_RX_T_APPN"
charge_lease_s = 5
poll_interval_ms = 50
# 1,000 subscribers sending several MOs each within seconds: an SMSC's load, not a stuck phone
# (the per-number limits of docs/pipeline.md "Reply safety" would refuse some of them).
max_mos_per_minute_per_msisdn = 0
max_replies_per_hour_per_msisdn = 0
${FAULTS_PIPELINE_EXTRA:-}

[http]
listen = "127.0.0.1:$HTTP_PORT"
${1:-}
EOF
}

faults_start_daemon() {
  local attempt
  for attempt in 1 2 3; do
    FAULTS_SMSC_PASSWORD=$FAULTS_SMSC_PASSWORD FAULTS_DATABASE_URL=${FAULTS_DATABASE_URL:-$DB} \
      "$DONAGATED" --config "$WORK/donagate.toml" >>"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!; FAULTS_PIDS+=("$DAEMON_PID")
    # Up when /healthz answers; a listener port taken meanwhile by a parallel test → new port.
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && return 0
      kill -0 "$DAEMON_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$DAEMON_PID" 2>/dev/null && return 0      # slow start (migrations): let it run
    wait "$DAEMON_PID" 2>/dev/null || true
    tail -n 1 "$WORK/daemon.log" | grep -q 'Address already in use' || fail "donagated exited at start: $(tail -n 2 "$WORK/daemon.log")"
    local old=$HTTP_PORT
    pick_port HTTP_PORT
    sed -i "s/127.0.0.1:$old\"/127.0.0.1:$HTTP_PORT\"/" "$WORK/donagate.toml"
    note "HTTP port $old was taken; retrying on $HTTP_PORT"
  done
  fail "donagated could not start (ports taken)"
}

faults_stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "donagated exited $rc after SIGTERM"
}

# MOs stored as themselves (receipts and recognised redeliveries are rows of their own).
stored_count() { q "SELECT count(*) FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery')"; }

# wait_stored N SECONDS: until at least N MOs are stored.
wait_stored() {
  local want=$1 deadline=$((SECONDS + $2)) n=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(stored_count); [ "${n:-0}" -ge "$want" ] && return 0; sleep 0.1
  done
  fail "only ${n:-0} MOs stored after $2 s (want $want)"
}

metric() { # metric NAME_WITH_LABELS -> value (empty if absent)
  # No early exit in awk: curl would die of SIGPIPE and pipefail would end the script.
  { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null || true; } |
    awk -v m="$1" 'index($0, m) == 1 && !found { print $NF; found = 1 }'
}

faults_wait_smsc() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$SMSC_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$SMSC_PID" 2>/dev/null; then
    note "smsc_sim not done after $1 s; stopping it for its report"
    kill -TERM "$SMSC_PID" 2>/dev/null || true
  fi
  wait "$SMSC_PID" 2>/dev/null || true
  [ -s "$WORK/report.json" ] || fail "smsc_sim wrote no report"
}

faults_wait_final() {
  local deadline=$((SECONDS + $1)) open=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    open=$(q "SELECT count(*) FROM donation WHERE state NOT IN ('charged','partially_charged','failed')")
    [ "$open" = "0" ] && return 0; sleep 0.2
  done
  note "donations still open after $1 s: ${open:-?}"
}

# faults_verify: the money and exactly-once invariants. Stops the daemon (SIGTERM, must exit 0)
# and charging_sim (writes its debit log) first. Extra invariants: FAULTS_EXPECT_* below.
faults_verify() {
  [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && faults_stop_daemon
  kill -TERM "$CHARGING_PID" 2>/dev/null || true
  wait "$CHARGING_PID" 2>/dev/null || true
  [ -f "$WORK/debits.csv" ] || fail "charging_sim wrote no debit log"

  local r=$WORK/report.json
  local mo_total acked unacked temp_errors redeliveries submits
  mo_total=$(jq .mo_total "$r"); acked=$(jq .mo_acked "$r"); unacked=$(jq .mo_unacked "$r")
  redeliveries=$(jq .mo_redeliveries "$r"); submits=$(jq .submits_total "$r")
  temp_errors=$(jq '[.mos[].statuses[] | select(. != "ESME_ROK")] | length' "$r")
  # A sent MO's identity: its MO id, or (without ids) its subscriber, who sent only it.
  if [ "$FAULTS_MO_ID_TLV" = 1 ]; then
    jq -r '.mos[] | select(.acked) | "mo\(.index)p1"' "$r" | sort >"$WORK/acked.ids"
    q "SELECT smsc_mo_id FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery') ORDER BY 1" | sort >"$WORK/stored.ids"
  else
    jq -r '.mos[] | select(.acked) | .source' "$r" | sort >"$WORK/acked.ids"
    q "SELECT source_addr FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery') ORDER BY 1" | sort >"$WORK/stored.ids"
  fi
  local redelivery_rows timeouts twice_charged
  redelivery_rows=$(q "SELECT count(*) FROM inbound_message WHERE outcome = 'redelivery'")
  timeouts=$(jq '.mo_response_timeouts // 0' "$r")
  # Subscribers debited for more than one donation; without MO ids each sent exactly one MO.
  twice_charged=0
  if [ "$FAULTS_MO_ID_TLV" != 1 ]; then
    twice_charged=$(q "SELECT count(*) FROM (SELECT msisdn FROM donation WHERE charged_amount_vnd > 0
                       GROUP BY msisdn HAVING count(*) > 1) t")
  fi
  # Replies: thank-you/help texts the SMSC accepted more than once for one outbox row.
  local replies_expected extra_submits
  replies_expected=$(q "SELECT count(*) FROM outbox WHERE state IN ('submitted','delivered','undeliverable','expired')")
  local stored distinct lost dup_rows
  stored=$(wc -l <"$WORK/stored.ids"); distinct=$(sort -u "$WORK/stored.ids" | wc -l)
  lost=$(comm -23 "$WORK/acked.ids" "$WORK/stored.ids" | wc -l)
  dup_rows=$((stored - distinct))

  local donations open charged charged_vnd charge_rows_vnd ledger_debit ledger_credit unbalanced
  donations=$(q "SELECT count(*) FROM donation")
  open=$(q "SELECT count(*) FROM donation WHERE state NOT IN ('charged','partially_charged','failed')")
  charged=$(q "SELECT count(*) FROM donation WHERE state IN ('charged','partially_charged')")
  charged_vnd=$(q "SELECT coalesce(sum(charged_amount_vnd),0) FROM donation")
  charge_rows_vnd=$(q "SELECT coalesce(sum(amount_vnd),0) FROM charge WHERE outcome = 'charged'")
  ledger_debit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction='debit'")
  ledger_credit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction='credit'")
  unbalanced=$(q "SELECT count(*) FROM (SELECT journal_id FROM ledger_entry GROUP BY journal_id
                  HAVING sum(CASE direction WHEN 'debit' THEN amount_vnd ELSE -amount_vnd END) <> 0) j")

  # The operator's side: charging_sim's debit log (key,msisdn,amount,at).
  tail -n +2 "$WORK/debits.csv" | cut -d, -f1 | sort >"$WORK/debited.keys"
  local debited dup_keys debit_vnd unbooked
  debited=$(wc -l <"$WORK/debited.keys")
  dup_keys=$(uniq -d "$WORK/debited.keys" | wc -l)
  debit_vnd=$(tail -n +2 "$WORK/debits.csv" | awk -F, '{ s += $3 } END { printf "%.0f", s }')
  q "SELECT charge_key FROM ledger_entry WHERE direction='debit' AND reverses_journal_id IS NULL" | sort >"$WORK/booked.keys"
  unbooked=$(comm -23 <(sort -u "$WORK/debited.keys") "$WORK/booked.keys" | wc -l)

  extra_submits=$((submits - replies_expected)); [ "$extra_submits" -ge 0 ] || extra_submits=0
  SUMMARY="$FAULTS_NAME: sent=$mo_total acked=$acked stored=$stored charged=$charged/$donations vnd=$ledger_debit temp_errors=$temp_errors redeliveries=$redeliveries timeouts=$timeouts recognised_redeliveries=$redelivery_rows charged_twice=$twice_charged replies=$submits extra_reply_submits=$extra_submits duplicates=$((dup_rows + dup_keys))${FAULTS_SUMMARY_EXTRA:+ $FAULTS_SUMMARY_EXTRA}"
  echo "$SUMMARY"
  [ -n "${FAULTS_RESULTS:-}" ] && echo "$SUMMARY" >>"$FAULTS_RESULTS"

  [ "$mo_total" = "$MO_COUNT" ] || fail "smsc_sim had $mo_total MOs, want $MO_COUNT"
  [ "$unacked" = "0" ] || fail "$unacked MOs never acknowledged (report mo_unacked)"
  [ "$acked" = "$MO_COUNT" ] || fail "$acked of $MO_COUNT MOs acknowledged"
  [ "$lost" = "0" ] || fail "$lost acknowledged MOs are not stored: $(comm -23 "$WORK/acked.ids" "$WORK/stored.ids" | head -5 | tr '\n' ' ')"
  [ "$dup_rows" = "0" ] || fail "$dup_rows MOs stored more than once: $(uniq -d "$WORK/stored.ids" | head -5 | tr '\n' ' ')"
  [ "$twice_charged" = "0" ] || fail "$twice_charged subscribers who sent one MO were charged twice"
  [ "$stored" = "$MO_COUNT" ] || fail "$stored MOs stored, want $MO_COUNT"
  [ "$donations" = "$VALID" ] || fail "$donations donations, want $VALID"
  [ "$open" = "0" ] || fail "$open donations not final: $(q "SELECT state, count(*) FROM donation GROUP BY 1" | tr '\n' ' ')"
  [ "$dup_keys" = "0" ] || fail "$dup_keys idempotency keys debited twice by the charging backend"
  [ "$unbooked" = "0" ] || fail "$unbooked keys debited at the backend have no ledger journal"
  [ "$unbalanced" = "0" ] || fail "$unbalanced ledger journals unbalanced"
  [ "$ledger_debit" = "$ledger_credit" ] || fail "ledger debit $ledger_debit <> credit $ledger_credit"
  [ "$ledger_debit" = "$charge_rows_vnd" ] || fail "ledger $ledger_debit <> charged charge rows $charge_rows_vnd"
  [ "$ledger_debit" = "$charged_vnd" ] || fail "ledger $ledger_debit <> donations' charged amounts $charged_vnd"
  [ "$ledger_debit" = "$debit_vnd" ] || fail "ledger $ledger_debit <> backend debit log $debit_vnd ($debited keys)"
  if [ "${FAULTS_EXPECT_ALL_CHARGED:-1}" = 1 ]; then
    [ "$charged" = "$VALID" ] || fail "$charged of $VALID donations charged"
    [ "$ledger_debit" = "$EXPECTED_VND" ] || fail "ledger $ledger_debit VND, expected $EXPECTED_VND"
  fi
  FAULTS_TEMP_ERRORS=$temp_errors
  FAULTS_REDELIVERIES=$redeliveries
}

# ---- A streaming standby of the scenario's cluster (high-availability scenarios) -------------
#
#   faults_start_standby      pg_basebackup -R of the running cluster into its own directory,
#                             started on a free port as `standby1` (cluster_name, so the
#                             primary's synchronous_standby_names can name it); waits until it
#                             streams. Exports SB_DIR, SB_PORT, SB_DB (conninfo of its faults db).
#   faults_sync_replication   the primary waits for standby1 at every COMMIT
#                             (synchronous_standby_names = 'standby1', synchronous_commit = on)
#   standby_stop [MODE] / standby_start / standby_promote
#   sq SQL                    like q, on the standby
# The standby is stopped and removed by the cleanup trap, like the primary.
SB_DIR=
faults_stop_standby() {
  [ -n "$SB_DIR" ] && [ -d "$SB_DIR" ] || return 0
  _pg_as "$PG_BIN/pg_ctl" -D "$SB_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  rm -rf "$SB_DIR"
  SB_DIR=
}

faults_start_standby() {
  SB_DIR=$(mktemp -d /tmp/donagate-pg-standby.XXXXXX)
  chmod 755 "$SB_DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$SB_DIR"
  FAULTS_AFTER_PG_STOP=faults_stop_standby
  pick_port SB_PORT
  # A fast checkpoint and the WAL streamed alongside: seconds for a fresh cluster.
  _pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres -D "$SB_DIR/data" \
    -R -X stream --checkpoint=fast >"$WORK/basebackup.log" 2>&1 || fail "pg_basebackup: $(tail -n 3 "$WORK/basebackup.log")"
  {
    echo "port = $SB_PORT"
    echo "unix_socket_directories = '$SB_DIR'"
    echo "cluster_name = 'standby1'"
    echo "shared_buffers = 128MB"
    # Once promoted it runs alone: it must not wait for a standby of its own (what Patroni's
    # synchronous_mode does when no replica is left, unless synchronous_mode_strict).
    echo "synchronous_standby_names = ''"
  } | _pg_as tee -a "$SB_DIR/data/postgresql.conf" >/dev/null
  standby_start
  SB_DB="host=127.0.0.1 port=$SB_PORT user=postgres dbname=faults"
  local state=""
  for _ in $(seq 1 100); do
    state=$(q "SELECT state FROM pg_stat_replication WHERE application_name = 'standby1'")
    [ "$state" = streaming ] && break; sleep 0.1
  done
  [ "$state" = streaming ] || fail "the standby does not stream (state '${state}')"
  note "standby streaming on 127.0.0.1:$SB_PORT"
}

faults_sync_replication() {
  qs "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
  qs "ALTER SYSTEM SET synchronous_commit = 'on'" >/dev/null
  qs "SELECT pg_reload_conf()" >/dev/null
  local sync=""
  for _ in $(seq 1 50); do
    sync=$(q "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
    [ "$sync" = sync ] && break; sleep 0.1
  done
  [ "$sync" = sync ] || fail "standby1 is not synchronous (sync_state '${sync}')"
}

standby_start() {
  _pg_as "$PG_BIN/pg_ctl" -D "$SB_DIR/data" -l "$SB_DIR/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$SB_DIR/server.log"; fail "the standby did not start"; }
}
standby_stop() {
  _pg_as "$PG_BIN/pg_ctl" -D "$SB_DIR/data" -m "${1:-fast}" -w -t 60 stop >/dev/null 2>&1 || true
}
# The promotion step Patroni would take after its leader key expired: pg_ctl promote on the
# synchronous standby (it has every commit the primary acknowledged), waiting until it accepts
# writes.
standby_promote() {
  _pg_as "$PG_BIN/pg_ctl" -D "$SB_DIR/data" -w -t 60 promote >/dev/null || fail "pg_ctl promote failed"
}
sq() { psql "$SB_DB" -XAtqc "$1" 2>/dev/null || echo ""; }
