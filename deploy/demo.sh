#!/usr/bin/env bash
# The gateway on example traffic, from a fresh clone, in one command (run as root on Debian 12):
#
#   deploy/demo.sh                  build, run a burst of a few thousand MOs, print the ledger, stop
#   deploy/demo.sh --keep-running   same, then leave donagated (and the simulators) up until Ctrl-C
#   deploy/demo.sh --messages N     size of the burst (default 3000)
#   deploy/demo.sh --bin-dir DIR    use binaries already built in DIR (skips install and build)
#
# What it starts (and stops again on exit or Ctrl-C): a throwaway PostgreSQL 15 cluster
# (tests/lib/pg.sh), tools/charging_sim in its CAMARA Carrier Billing dialect (operator "opa",
# :8088), tools/ocs_sim, a Diameter Ro OCS on node-diameter (operator "opb", :3868), two
# tools/smsc_sim SMSCs (operators "opa" on :2775 and "opb" on :2776), and donagated with
# config/donagate.demo.toml. Work files stay in /tmp/donagate-demo.* when
# something fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEEP_RUNNING=0
MESSAGES=3000
BIN=
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-running) KEEP_RUNNING=1 ;;
    --messages) MESSAGES=$2; shift ;;
    --bin-dir) BIN=$(cd "$2" && pwd); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -z "$BIN" ]; then
  say "dependencies"
  "$ROOT/deploy/install-deps.sh"

  # The configuration tests/run.sh uses (optimised, with debug info, warnings as errors on the
  # Debian 12 compiler CI proves clean), so the README's two commands share one build tree.
  say "build (${DONAGATE_BUILD_TYPE:-RelWithDebInfo}, build/)"
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=${DONAGATE_BUILD_TYPE:-RelWithDebInfo} -DDONAGATE_WERROR=ON >/dev/null
  # Only what the demo runs; tests/run.sh builds the rest into the same tree.
  cmake --build "$ROOT/build" -j"$(nproc)" --target donagated smsc_sim charging_sim donagatectl donagate-console
  BIN=$ROOT/build
fi
# The test OCS runs on node-diameter (install-deps.sh installs node and npm).
if [ ! -d "$ROOT/tools/ocs_sim/node_modules/diameter" ]; then
  say "npm ci (tools/ocs_sim)"
  (cd "$ROOT/tools/ocs_sim" && npm ci --no-audit --no-fund)
fi

# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
WORK=$(mktemp -d /tmp/donagate-demo.XXXXXX)
chmod 755 "$WORK"
PIDS=()
DAEMON_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "demo: stopping donagated (SIGTERM: drain, unbind, exit)"
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  pg_stop 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "demo: logs kept in $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 2775 2776 3868 8088 9464; do
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    echo "demo: port $port is in use (config/donagate.demo.toml needs 2775 2776 3868 8088 9464)" >&2
    exit 1
  fi
done

say "throwaway PostgreSQL"
pg_start
psql "$DONAGATE_TEST_PG" -qc "CREATE DATABASE donagate_demo"
export DONAGATE_DATABASE_URL="$DONAGATE_TEST_PG dbname=donagate_demo"
export DONAGATE_DEMO_SMSC_PASSWORD=demo-pw
export DONAGATE_DEMO_CB_SECRET=demo-cb-secret
q() { psql "$DONAGATE_DATABASE_URL" -XAtqc "$1"; }

say "schema migrations"
"$BIN/tools/donagatectl/donagatectl" --db "$DONAGATE_DATABASE_URL" migrate

say "example traffic"
# Subscribers of two operators; every text a phone might really send. Roughly 75% valid
# "CV n" / "HB n" in their usual spellings (full-width digits included: Vietnamese keyboards
# send UCS-2), the rest mistakes that must get the help reply and no charge.
gen_traffic() {  # operator-prefix count seed file
  local prefix=$1 count=$2 seed=$3 file=$4 i n src text
  RANDOM=$seed
  : >"$file"
  for ((i = 0; i < count; i++)); do
    src="${prefix}$(printf '%07d' $((RANDOM % 900)))"
    n=$((1 + RANDOM % 10))
    case $((RANDOM % 16)) in
      0|1|2|3) text="CV $n" ;;
      4|5) text="cv$n" ;;
      6) text="Cv.$n" ;;
      7) text="CV" ;;
      8) text="CV ${n}!" ;;
      9) text="CV ５" ;;
      10|11) text="HB $n" ;;
      12) text="hb-$n" ;;
      13) text="Ủng hộ miền Trung" ;;
      14) text="CV $((n * 50))" ;;
      15) text="CV abc" ;;
    esac
    [ $((RANDOM % 10)) -eq 0 ] && src="0${src#84}"   # some SMSCs send national format
    echo "$src,1407,$text" >>"$file"
  done
}
OPA_COUNT=$((MESSAGES * 2 / 3)); OPB_COUNT=$((MESSAGES - OPA_COUNT))
gen_traffic 8491 "$OPA_COUNT" 17 "$WORK/opa.txt"
gen_traffic 8498 "$OPB_COUNT" 29 "$WORK/opb.txt"
# The keyword flows (docs/pipeline.md "Keywords"): a large "CV 60" asked to confirm and
# confirmed with Y, a "CV 80" cancelled by HUY (STOP), HELP, and a status query (TRA) after a
# donation. The answers come after the rest of the opa traffic, so the questions are stored first.
{ printf '%s\n' "84919999001,1407,CV 60" "84919999002,1407,CV 80" "84919999003,1407,CV 3" \
    "84919999004,1407,HELP"; cat "$WORK/opa.txt"
  printf '%s\n' "84919999001,1407,Y" "84919999002,1407,HUY" "84919999003,1407,TRA"; } >"$WORK/opa.keywords"
mv "$WORK/opa.keywords" "$WORK/opa.txt"; OPA_COUNT=$((OPA_COUNT + 7))
# A few opa subscribers are short of money: insufficient funds, and partial per-unit donations.
{ for i in 0 1 2 3 4 5 6 7 8 9; do echo "8491000000$i,30000"; done; } >"$WORK/balances.csv"
echo "opa: $OPA_COUNT MOs, opb: $OPB_COUNT MOs, from $(cut -d, -f1 "$WORK"/op?.txt | sort -u | wc -l) numbers"

say "simulators"
"$BIN/tools/charging_sim/charging_sim" --listen 127.0.0.1:8088 --dialect carrier_billing \
  --client-id donagate-demo --client-secret "$DONAGATE_DEMO_CB_SECRET" --default-balance 5000000 \
  --balances "$WORK/balances.csv" --latency-ms 5 --debit-log "$WORK/debits.csv" >"$WORK/charging_sim.log" 2>&1 &
PIDS+=($!)
node "$ROOT/tools/ocs_sim/ocs_sim.js" --listen 127.0.0.1:3868 --default-balance 5000000 --latency-ms 5 \
  --debit-log "$WORK/ocs_debits.csv" >"$WORK/ocs_sim.log" 2>&1 &
PIDS+=($!)
for op in opa:2775 opb:2776; do
  name=${op%:*}; port=${op#*:}
  "$BIN/tools/smsc_sim/smsc_sim" --listen "127.0.0.1:$port" --system-id donagate \
    --password "$DONAGATE_DEMO_SMSC_PASSWORD" --mo-file "$WORK/$name.txt" --window 50 \
    --receipts --receipt-delay-ms 100 --redeliver-unacked --report "$WORK/$name-report.json" \
    >"$WORK/smsc_$name.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 1 100); do grep -q 'listening' "$WORK/ocs_sim.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.5

say "donagatectl charging-check (charges nobody)"
for op in opa opb; do
  "$BIN/tools/donagatectl/donagatectl" --config "$ROOT/config/donagate.demo.toml" charging-check --operator "$op" \
    || { echo "demo: charging-check for $op failed; logs in $WORK"; exit 1; }
done

say "donagated --config config/donagate.demo.toml"
"$BIN/daemon/donagated" --config "$ROOT/config/donagate.demo.toml" >"$WORK/donagated.log" 2>&1 &
DAEMON_PID=$!
START_MS=$(($(date +%s%N) / 1000000))

# Done when every MO is stored, every donation is final and every reply has left.
TOTAL=$((OPA_COUNT + OPB_COUNT))
last=""
while :; do
  kill -0 "$DAEMON_PID" 2>/dev/null || { echo "demo: donagated exited; log:"; tail -n 30 "$WORK/donagated.log"; exit 1; }
  stored=$(q "SELECT count(*) FROM inbound_message WHERE outcome <> 'receipt'" 2>/dev/null || echo 0)
  open=$(q "SELECT count(*) FROM donation WHERE state IN ('received','charging','unknown')" 2>/dev/null || echo 0)
  backlog=$(q "SELECT count(*) FROM outbox WHERE state IN ('pending','claimed')" 2>/dev/null || echo 0)
  line="stored $stored/$TOTAL MOs, $open donations in progress, $backlog replies waiting"
  [ "$line" != "$last" ] && echo "  $line"
  last=$line
  if [ "$stored" -ge "$TOTAL" ] && [ "$open" -eq 0 ] && [ "$backlog" -eq 0 ]; then break; fi
  sleep 1
done
ELAPSED_MS=$(($(date +%s%N) / 1000000 - START_MS))
ELAPSED="$((ELAPSED_MS / 1000)).$(printf '%03d' $((ELAPSED_MS % 1000)))"

say "ledger summary per operator and campaign"
psql "$DONAGATE_DATABASE_URL" -Xq <<'SQL'
\pset footer off
SELECT d.operator, d.campaign,
       count(*)                                              AS donations,
       count(*) FILTER (WHERE d.state = 'charged')           AS charged,
       count(*) FILTER (WHERE d.state = 'partially_charged') AS partial,
       count(*) FILTER (WHERE d.state = 'failed')            AS failed,
       sum(d.charged_units)                                  AS units,
       to_char(sum(d.charged_amount_vnd), 'FM999G999G999G990') AS vnd_charged
  FROM donation d GROUP BY 1, 2 ORDER BY 1, 2;
SELECT operator, count(*) AS messages,
       count(*) FILTER (WHERE outcome = 'donation') AS donations,
       count(*) FILTER (WHERE outcome NOT IN ('donation', 'receipt')) AS rejected
  FROM inbound_message WHERE outcome <> 'receipt' GROUP BY 1 ORDER BY 1;
SELECT outcome AS rejected_because, count(*) FROM inbound_message
 WHERE outcome NOT IN ('donation', 'receipt') GROUP BY 1 ORDER BY 2 DESC;
SELECT failure_reason AS failed_because, count(*) FROM donation
 WHERE state IN ('failed', 'partially_charged') GROUP BY 1 ORDER BY 2 DESC;
SELECT account, direction, to_char(sum(amount_vnd), 'FM999G999G999G990') AS vnd
  FROM ledger_entry GROUP BY 1, 2 ORDER BY 1, 2;
SELECT purpose AS reply, state, count(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2;
SQL
debits=$(q "SELECT sum(amount_vnd) FILTER (WHERE direction='debit') - sum(amount_vnd) FILTER (WHERE direction='credit') FROM ledger_entry")
echo "ledger balance (debits - credits): ${debits:-0} VND; processed $TOTAL MOs in ${ELAPSED}s"
echo "sample reply: $(q "SELECT text FROM outbox WHERE purpose='success' LIMIT 1")"

say "metrics"
echo "Prometheus metrics: http://127.0.0.1:9464/metrics   status: http://127.0.0.1:9464/status"
curl -s http://127.0.0.1:9464/metrics | grep -E '^donagate_(mo_received_total|donations_vnd_charged_total|replies_total\{.*sent)' || true

say "finance console"
# A demo login for each role (the passwords are the demo's, printed here on purpose).
for u in finance:finance approver:approver ops:ops; do
  DONAGATE_USER_PASSWORD="demo-${u%%:*}-password" "$BIN/tools/donagatectl/donagatectl" --db "$DONAGATE_DATABASE_URL" \
    user add "demo-${u%%:*}" --roles "${u#*:}" >/dev/null 2>&1 || true
done
"$BIN/console/donagate-console" --db "$DONAGATE_DATABASE_URL" --listen 127.0.0.1:9480 --admin 127.0.0.1:9465 \
  >"$WORK/console.log" 2>&1 &
PIDS+=($!)
echo "finance console: http://127.0.0.1:9480/  login demo-finance / demo-finance-password" \
     "(also demo-approver, demo-ops; same pattern)"

if [ "$KEEP_RUNNING" -eq 1 ]; then
  say "donagated keeps running (pid $DAEMON_PID); Ctrl-C stops everything"
  echo "database: $DONAGATE_DATABASE_URL"
  trap 'exit 0' INT TERM  # Ctrl-C is the normal way out here
  wait "$DAEMON_PID" || true
fi
