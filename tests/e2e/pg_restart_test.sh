#!/usr/bin/env bash
# PostgreSQL stopped for a few seconds in the middle of an MO stream (issue 4 "Done when"):
# donagated must answer the SMSC with temporary errors while the database is away (never ack,
# then lose), reconnect when it is back, and end with every MO stored exactly once, every
# donation charged once and the ledger right to the dong.
#
# Runs its OWN throwaway cluster (tests/lib/pg.sh) because it stops it: the shared test cluster
# must not disappear under the other tests. Needs the built donagated, smsc_sim, charging_sim.
set -euo pipefail

SRC=${DONAGATE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${DONAGATE_BINARY_DIR:-$SRC/build}
# shellcheck source=../lib/pg.sh
source "$SRC/tests/lib/pg.sh"

WORK=$(mktemp -d /tmp/donagate-pgrestart.XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  pg_stop || true
  if [ "$rc" -ne 0 ]; then
    echo "--- daemon log (tail)"; tail -n 40 "$WORK/daemon.log" 2>/dev/null || true
    echo "--- evidence kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# Sets variable $1 to a free port. Not via $(...): a subshell would replay the same $RANDOM.
USED_PORTS=" "
pick_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12768))  # below the ephemeral range (32768+): no outgoing connection can take it
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || break
  done
  USED_PORTS="$USED_PORTS$p "
  printf -v "$1" '%s' "$p"
}

pg_start >/dev/null
psql "$DONAGATE_TEST_PG" -qc "CREATE DATABASE pgrestart" >/dev/null
DB="$DONAGATE_TEST_PG dbname=pgrestart"
q() { psql "$DB" -XAtqc "$1" 2>/dev/null || echo ""; }

# Traffic: 2000 MOs from 500 subscribers; every fifth text is invalid.
N=2000
EXPECTED_VND=0
VALID=0
: >"$WORK/mos.txt"
for i in $(seq 0 $((N - 1))); do
  src=$((84916000000 + i % 500))
  if [ $((i % 5)) -eq 4 ]; then
    echo "$src,1407,ung ho" >>"$WORK/mos.txt"
  else
    units=$((1 + i % 7))
    echo "$src,1407,CV $units" >>"$WORK/mos.txt"
    EXPECTED_VND=$((EXPECTED_VND + units * 20000))
    VALID=$((VALID + 1))
  fi
done

# Starts "$@" (with PORT_PLACEHOLDER replaced by a free port) until it reports "listening":
# another process may take a port between the check and the bind. Sets $2 (port) and $3 (pid).
start_listening() {  # name portvar pidvar log cmd...
  local name=$1 portvar=$2 pidvar=$3 log=$4; shift 4
  local attempt port pid args a
  for attempt in 1 2 3 4 5; do
    pick_port port
    args=()
    for a in "$@"; do args+=("${a//PORT_PLACEHOLDER/$port}"); done
    "${args[@]}" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do
      grep -q "listening" "$log" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if grep -q "listening" "$log" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
      PIDS+=("$pid"); printf -v "$portvar" '%s' "$port"; printf -v "$pidvar" '%s' "$pid"
      return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    echo "$name did not start on port $port (attempt $attempt): $(tail -n 1 "$log")"
  done
  fail "$name could not start"
}

start_listening charging_sim CHARGING_PORT CHARGING_PID "$WORK/charging_sim.log" \
  "$BIN/tools/charging_sim/charging_sim" --listen "127.0.0.1:PORT_PLACEHOLDER" --default-balance 1000000000 \
  --latency-ms 2 --debit-log "$WORK/debits.csv"
start_listening smsc_sim SMSC_PORT SMSC_PID "$WORK/smsc_sim.log" \
  "$BIN/tools/smsc_sim/smsc_sim" --listen "127.0.0.1:PORT_PLACEHOLDER" --system-id donagate --password secret \
  --mo-file "$WORK/mos.txt" --mo-rate 300 --window 50 --mo-id-tlv 5121 \
  --redeliver-unacked --redeliver-delay-ms 500 --receipts --receipt-delay-ms 50 \
  --exit-when-done --expect-submits "$N" --duration 150 --report "$WORK/report.json"
pick_port HTTP_PORT

cat >"$WORK/donagate.toml" <<EOF
[[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "donagate"
password_env = "E2E_SMSC_PASSWORD"
reconnect_backoff_min_s = 1
reconnect_backoff_max_s = 1
tps = 0
window = 50
mo_id_tlv = 5121

[database]
conninfo_env = "E2E_DATABASE_URL"
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

[pipeline]
instance_id = "pgrestart"
temp_error_status = "ESME_RX_T_APPN"
charge_lease_s = 5
poll_interval_ms = 50

[http]
listen = "127.0.0.1:$HTTP_PORT"
EOF
sleep 0.3
E2E_SMSC_PASSWORD=secret E2E_DATABASE_URL="$DB" "$BIN/daemon/donagated" --config "$WORK/donagate.toml" \
  >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!; PIDS+=("$DAEMON_PID")

# Let traffic flow, then take the database away for 4 seconds.
for _ in $(seq 1 300); do
  n=$(q "SELECT count(*) FROM inbound_message"); [ "${n:-0}" -ge 400 ] && break; sleep 0.1
done
[ "${n:-0}" -ge 400 ] || fail "traffic did not start (stored: ${n:-0})"
echo "stopping PostgreSQL with $n MOs stored"
pg_restart_stop fast
sleep 4
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
pg_restart_start
echo "PostgreSQL back (readyz while down: $ready)"

# The SMSC exits once every MO is acknowledged and every reply submitted.
for _ in $(seq 1 1200); do kill -0 "$SMSC_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SMSC_PID" 2>/dev/null && fail "smsc_sim still waiting after 120 s"
wait "$SMSC_PID" || fail "smsc_sim failed"

for _ in $(seq 1 300); do
  final=$(q "SELECT count(*) FROM donation WHERE state IN ('charged','partially_charged','failed')")
  [ "${final:-0}" -eq "$VALID" ] && break; sleep 0.1
done
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || fail "donagated did not exit 0 after SIGTERM"
kill -TERM "$CHARGING_PID"; wait "$CHARGING_PID" || true

acked=$(grep -o '"mo_acked": [0-9]*' "$WORK/report.json" | grep -o '[0-9]*$')
temp_errors=$(grep -c '"ESME_RX_T_APPN"' "$WORK/report.json" || true)
stored=$(q "SELECT count(*) FROM inbound_message WHERE outcome <> 'receipt'")
distinct=$(q "SELECT count(DISTINCT smsc_mo_id) FROM inbound_message WHERE outcome <> 'receipt'")
charged=$(q "SELECT count(*) FROM donation WHERE state = 'charged'")
debit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction = 'debit'")
credit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction = 'credit'")
keys=$(tail -n +2 "$WORK/debits.csv" | cut -d, -f1 | sort | uniq | wc -l)
dup_keys=$(tail -n +2 "$WORK/debits.csv" | cut -d, -f1 | sort | uniq -d | wc -l)

echo "sent=$N acked=$acked temp_errors=$temp_errors stored=$stored distinct=$distinct" \
     "charged=$charged/$VALID debit=$debit credit=$credit expected=$EXPECTED_VND keys=$keys duplicates=$dup_keys"
[ "$acked" = "$N" ] || fail "only $acked of $N MOs acknowledged"
[ "$temp_errors" -gt 0 ] || fail "no temporary error was answered while the database was down"
[ "$ready" = "503" ] || fail "/readyz answered $ready while the database was down (want 503)"
[ "$stored" = "$N" ] || fail "$stored MOs stored, want $N"
[ "$distinct" = "$N" ] || fail "$distinct distinct MO ids stored, want $N (duplicates)"
[ "$charged" = "$VALID" ] || fail "$charged donations charged, want $VALID"
[ "$debit" = "$EXPECTED_VND" ] || fail "ledger debits $debit, want $EXPECTED_VND"
[ "$credit" = "$EXPECTED_VND" ] || fail "ledger credits $credit, want $EXPECTED_VND"
[ "$keys" = "$VALID" ] || fail "charging simulator debited $keys keys, want $VALID"
[ "$dup_keys" = "0" ] || fail "$dup_keys keys debited twice"
echo "PASS: database outage survived"
