#!/usr/bin/env bash
# End-to-end benchmark of donagated (docs/performance.md).
#
#   bench/run.sh [--count N] [--duration S] [--drain-s S] [--latencies "0 50"] [--soak-s S] [--ceiling-s S]
#                [--soak-rate R] [--pool-size N] [--batch-size N] [--charge-workers N] [--reply-inflight N]
#                [--receipt-delay-ms MS] [--charge-yield N] [--ingest-only] [--skip-deps] [--skip-build] [--skip-micro] [--skip-soak] [--out DIR]
#
# From a clean clone: installs the Debian dependencies (deploy/install-deps.sh), builds Release
# into build-release/, starts a throwaway PostgreSQL with durable settings (fsync=on,
# synchronous_commit=on), then per charging latency (0 ms and 50 ms by default): charging_sim,
# loadgen (4 SMSC ports) and donagated (4 client links, window 256, tps unlimited). After each
# run it verifies from the database that exactly the acked MOs are stored, every donation is
# final, the ledger balances and equals the expected sum, and the charging simulator debited no
# key twice. It then measures the machine's ceiling with pgbench (the ingest rows, in batches of
# 256, same durability), runs a soak at half the peak rate, and the Google Benchmark
# micro-benchmarks. Output: one JSON line per run on stdout; progress on stderr.
# Exit status: 0 when every verification passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-release}
COUNT=100000        # MOs per peak run (the run also stops after --duration)
DURATION=15         # max seconds of generation per peak run
DRAIN_S=90          # after the generator stops: max wait for every donation to be final
LATENCIES="0 50"    # charging_sim latency of each peak run, ms
SOAK_S=60           # soak length (5 minutes = 300 for the documented figure)
SOAK_RATE=""        # MO/s of the soak; default half the first peak run's mo_per_s
CEILING_S=10        # pgbench duration
BATCH_SIZE=512      # [database] batch_size
POOL_SIZE=4         # [database] pool_size (ingest uses pool_size - 2 DB threads)
CHARGE_WORKERS=2    # [pipeline] charge_workers (charging DB threads)
REPLY_INFLIGHT=2048 # [pipeline] reply_max_inflight
CHARGE_YIELD=256    # [pipeline] charge_yield_ingest_backlog (0: charging never yields to ingest)
RECEIPT_DELAY_MS=1000  # loadgen sends each delivery receipt this long after the reply (0: at once)
CHARGING_PAUSED=false  # --ingest-only: start with charging paused (measures ingest alone)
SKIP_DEPS=0 SKIP_BUILD=0 SKIP_MICRO=0 SKIP_SOAK=0
OUT=""

while (($#)); do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --drain-s) DRAIN_S=$2; shift 2 ;;
    --latencies) LATENCIES=$2; shift 2 ;;
    --soak-s) SOAK_S=$2; shift 2 ;;
    --soak-rate) SOAK_RATE=$2; shift 2 ;;
    --ceiling-s) CEILING_S=$2; shift 2 ;;
    --batch-size) BATCH_SIZE=$2; shift 2 ;;
    --pool-size) POOL_SIZE=$2; shift 2 ;;
    --charge-workers) CHARGE_WORKERS=$2; shift 2 ;;
    --reply-inflight) REPLY_INFLIGHT=$2; shift 2 ;;
    --receipt-delay-ms) RECEIPT_DELAY_MS=$2; shift 2 ;;
    --charge-yield) CHARGE_YIELD=$2; shift 2 ;;
    --ingest-only) CHARGING_PAUSED=true; DRAIN_S=0; shift ;;
    --skip-deps) SKIP_DEPS=1; shift ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --skip-micro) SKIP_MICRO=1; shift ;;
    --skip-soak) SKIP_SOAK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

log() { echo "bench: $*" >&2; }
OUT=${OUT:-$(mktemp -d /tmp/donagate-bench.XXXXXX)}
mkdir -p "$OUT"
chmod 755 "$OUT"
log "output in $OUT; load before start: $(uptime)"
FAILED=0

# ---------------------------------------------------------------------------------------------
# Dependencies and build
if ((SKIP_DEPS == 0)); then
  if [ "$(id -u)" = 0 ]; then bash "$ROOT/deploy/install-deps.sh" >&2
  else log "not root: skipping deploy/install-deps.sh (run it as root once)"; fi
fi
if ((SKIP_BUILD == 0)); then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake.log" 2>&1 \
    || { cat "$OUT/cmake.log" >&2; exit 1; }
  targets=(donagated charging_sim loadgen)
  for src in "$ROOT"/bench/*_bench.cc; do targets+=("$(basename "$src" .cc)"); done
  log "building ${targets[*]} (Release) into $BUILD"
  cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" >"$OUT/build.log" 2>&1 \
    || { tail -50 "$OUT/build.log" >&2; exit 1; }
fi
DONAGATED=$BUILD/daemon/donagated
CHARGING_SIM=$BUILD/tools/charging_sim/charging_sim
LOADGEN=$BUILD/tools/loadgen/loadgen

# ---------------------------------------------------------------------------------------------
# PostgreSQL (durable: pg.sh sets fsync=on and synchronous_commit=on; a large max_wal_size keeps
# checkpoints out of a short run, which changes no durability guarantee).
# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pg_stop || true
}
trap cleanup EXIT
pg_start "max_wal_size = 4GB" "checkpoint_timeout = 30min" "wal_buffers = 16MB" >&2
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres)

free_port() { _pg_free_port; }

# shellcheck source=lib.sh
source "$ROOT/bench/lib.sh"

write_config() {  # file db charging_port http_port ports_csv
  local file=$1 db=$2 cport=$3 hport=$4 ports=$5 i=0
  : >"$file"
  IFS=, read -ra plist <<<"$ports"
  for p in "${plist[@]}"; do
    i=$((i + 1))
    cat >>"$file" <<EOF
[[smsc]]
name = "lg-$i"
operator = "opa"
mode = "client"
host = "127.0.0.1"
port = $p
system_id = "donagate"
password_env = "BENCH_SMSC_PASSWORD"
window = 256
tps = 0
enquire_link_interval_s = 30
response_timeout_s = 30
mo_id_tlv = 0x1401

EOF
  done
  cat >>"$file" <<EOF
[database]
conninfo = "host=127.0.0.1 port=$PGPORT_TEST user=postgres dbname=$db"
pool_size = $POOL_SIZE
batch_size = $BATCH_SIZE
batch_linger_ms = 2
run_migrations_on_start = true

[[campaign]]
name = "bench"
keyword = "CV"
shortcode = "1407"
unit_price_vnd = 20000
max_units_per_message = 100
max_units_per_day_per_msisdn = 500

[[charging]]
operator = "opa"
backend = "http"
url = "http://127.0.0.1:$cport"
timeout_ms = 5000
max_concurrency = 512

[pipeline]
max_inflight = 100000
charge_batch_size = 512
charge_concurrency = 1024
charge_workers = $CHARGE_WORKERS
charge_yield_ingest_backlog = $CHARGE_YIELD
reply_batch_size = 512
reply_max_inflight = $REPLY_INFLIGHT
poll_interval_ms = 20
instance_id = "bench"
start_charging_paused = $CHARGING_PAUSED

[http]
listen = "127.0.0.1:$hport"

[log]
level = "warn"
file = "$OUT/donagated-$db.log"
EOF
}

# Starts charging_sim, loadgen and donagated for one run; sets CS_PID LG_PID D_PID.
start_stack() {  # db latency_ms loadgen-args...
  local db=$1 latency=$2; shift 2
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
  "$CHARGING_SIM" --listen 127.0.0.1:0 --latency-ms "$latency" --default-balance 1000000000 \
    --debit-log "$OUT/$db-debits.csv" >"$OUT/$db-charging.out" 2>"$OUT/$db-charging.err" &
  CS_PID=$!; PIDS+=("$CS_PID")
  wait_for_file "$OUT/$db-charging.out" 10 || { log "charging_sim did not start"; return 1; }
  local cport
  cport=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$OUT/$db-charging.out")
  rm -f "$OUT/$db-ports"
  "$LOADGEN" --port 0 --listeners 4 --expect-binds 4 --window 256 --mo-id-tlv 0x1401 --receipts \
    --receipt-delay-ms "$RECEIPT_DELAY_MS" \
    --ready-file "$OUT/$db-ports" --acked-file "$OUT/$db-acked.csv" --summary-file "$OUT/$db-loadgen.json" \
    --bind-wait-s 60 "$@" >"$OUT/$db-loadgen.out" 2>"$OUT/$db-loadgen.err" &
  LG_PID=$!; PIDS+=("$LG_PID")
  wait_for_file "$OUT/$db-ports" 10 || { log "loadgen did not start"; return 1; }
  local attempt
  for attempt in 1 2 3; do  # the HTTP port is chosen free, but the machine is shared: retry
    write_config "$OUT/$db.toml" "$db" "$cport" "$(free_port)" "$(cat "$OUT/$db-ports")"
    BENCH_SMSC_PASSWORD=bench "$DONAGATED" --config "$OUT/$db.toml" >"$OUT/$db-donagated.out" 2>&1 &
    D_PID=$!; PIDS+=("$D_PID")
    sleep 2
    kill -0 "$D_PID" 2>/dev/null && return 0
    log "donagated exited at start (attempt $attempt): $(tail -n 2 "$OUT/donagated-$db.log" 2>/dev/null)"
  done
  return 1
}


stop_stack() {
  kill -TERM "$D_PID" 2>/dev/null || true
  wait "$D_PID" 2>/dev/null || true
  kill -TERM "$CS_PID" 2>/dev/null || true
  wait "$CS_PID" 2>/dev/null || true
}

declare -A RESULT
PEAK_MO_PER_S=0

run_peak() {  # latency_ms
  local latency=$1 db=bench_${1}ms
  log "run: charging latency $latency ms, up to $COUNT MOs / $DURATION s (load: $(uptime | sed 's/.*load average: //'))"
  start_stack "$db" "$latency" --count "$COUNT" --duration "$DURATION" --drain-s 60 --reply-wait-s 60 --reply-idle-s 20
  local cpu0 lg_rc=0
  # The daemon's own start (migrations) is not the benchmark: count CPU from the first bind.
  sleep 0.5; cpu0=$(proc_cpu_s "$D_PID")
  wait "$LG_PID" || lg_rc=$?
  local drained=1
  wait_drained "$db" "$DRAIN_S" || drained=0
  local hwm cpu
  hwm=$(proc_hwm_kib "$D_PID"); cpu=$(proc_cpu_s "$D_PID")
  stop_stack
  local checks ok=1
  checks=$(verify "$db") || ok=0
  ((lg_rc == 0)) || ok=0
  ((ok)) || { FAILED=1; log "$db: VERIFICATION FAILED (loadgen rc $lg_rc): $checks"; }
  local lg; lg=$(tail -1 "$OUT/$db-loadgen.out")
  RESULT[$latency]=$(jq -c -n --argjson lg "$lg" --argjson checks "$checks" --arg hwm "$hwm" --arg cpu "$cpu" \
    --arg cpu0 "$cpu0" --arg drained "$drained" --arg latency "$latency" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson ok "$ok" '
    (($cpu | tonumber) - ($cpu0 | tonumber)) as $dcpu |
    {run: ("peak_charging_" + $latency + "ms"), messages: $lg.messages, acked: $lg.acked,
     mo_per_s: $lg.acked_per_s, e2e_per_s: $lg.valid_replies_per_s, replies_per_s: $lg.replies_per_s,
     ack_p50_ms: $lg.ack_p50_ms, ack_p99_ms: $lg.ack_p99_ms, e2e_p50_ms: $lg.e2e_p50_ms,
     e2e_p99_ms: $lg.e2e_p99_ms, temp_errors: $lg.temp_errors,
     daemon_peak_rss_mib: (($hwm | tonumber) / 1024 | . * 10 | round / 10),
     daemon_cpu_s: ($dcpu * 100 | round / 100),
     daemon_cpu_us_per_msg: (if $lg.acked > 0 then ($dcpu * 1e6 / $lg.acked | round) else null end),
     verified: ($ok == 1), drained: ($drained == "1"), checks: $checks, loadavg: $load}')
  if [ "$latency" = "$(echo "$LATENCIES" | awk '{print $1}')" ]; then
    PEAK_MO_PER_S=$(echo "${RESULT[$latency]}" | jq '.mo_per_s')
    PEAK_DB=$db
  fi
}

for l in $LATENCIES; do run_peak "$l"; done

# ---------------------------------------------------------------------------------------------
# The machine's ceiling: pgbench writing what the ingest transaction writes per MO (an
# inbound_message row, and for the 85 % valid ones a donation and its transition; the invalid
# ones an outbox reply), 256 MOs per statement/transaction, 4 clients, same server settings.
CEILING_DB=bench_ceiling
CEILING_ROWS=0
if [ -n "${PEAK_DB:-}" ]; then  # a copy of a run's database: same schema, same table sizes
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $CEILING_DB TEMPLATE $PEAK_DB" >/dev/null
cat >"$OUT/ceiling.sql" <<'EOF'
WITH input AS MATERIALIZED (
  SELECT nextval('inbound_message_id_seq') AS id, g,
         '849' || lpad((random() * 99999999)::bigint::text, 8, '0') AS msisdn,
         (g % 100) < 85 AS valid
    FROM generate_series(1, 256) g),
msg AS (
  INSERT INTO inbound_message (id, instance_id, link, operator, source_addr, msisdn, dest_addr,
                               data_coding, esm_class, raw_payload, text, smsc_mo_id, received_at,
                               outcome, outcome_detail)
  SELECT id, 'pgbench', 'lg-1', 'opa', msisdn, msisdn, '1407', 0, 0, '\x4356203521'::bytea,
         CASE WHEN valid THEN 'CV 5' ELSE 'HELLO' END, 'pgb-' || id, now(),
         CASE WHEN valid THEN 'donation' ELSE 'syntax_error' END, NULL
    FROM input ORDER BY g
  ON CONFLICT (operator, smsc_mo_id) WHERE smsc_mo_id IS NOT NULL DO NOTHING
  RETURNING id),
don AS (
  INSERT INTO donation (inbound_message_id, campaign, operator, msisdn, shortcode, units,
                        unit_price_vnd, amount_vnd, charging_mode, daily_cap_units, received_at)
  SELECT i.id, 'bench', 'opa', i.msisdn, '1407', 5, 20000, 100000, 'whole', 500, now()
    FROM input i JOIN msg m ON m.id = i.id WHERE i.valid
  RETURNING id),
tr AS (
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  SELECT id, NULL, 'received', 'ingest', 'pgbench' FROM don),
rep AS (
  INSERT INTO outbox (inbound_message_id, purpose, operator, source_addr, dest_addr, text)
  SELECT i.id, 'syntax', 'opa', '1407', i.msisdn, 'Sai cu phap. De ung ho, soan CV n gui 1407.'
    FROM input i JOIN msg m ON m.id = i.id WHERE NOT i.valid)
SELECT count(*) FROM input;
EOF
log "ceiling: pgbench, 256 MOs per transaction, 4 clients, $CEILING_S s"
pgbench -n -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres -c 4 -j 2 -T "$CEILING_S" -M prepared \
  -f "$OUT/ceiling.sql" "$CEILING_DB" >"$OUT/ceiling.out" 2>&1 || { cat "$OUT/ceiling.out" >&2; FAILED=1; }
CEILING_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/ceiling.out" | head -1)
CEILING_ROWS=$(awk -v t="${CEILING_TPS:-0}" 'BEGIN {printf "%d", t * 256}')
fi

for l in $LATENCIES; do
  echo "${RESULT[$l]}" | jq -c --argjson c "$CEILING_ROWS" \
    '. + {ceiling_rows_per_s: $c, ratio_to_ceiling: (if $c > 0 then (.mo_per_s / $c * 1000 | round / 1000) else null end)}'
done

# ---------------------------------------------------------------------------------------------
# Soak at half the peak rate: RSS must not grow.
if ((SKIP_SOAK == 0)); then
  [ -n "$SOAK_RATE" ] || SOAK_RATE=$(awk -v p="$PEAK_MO_PER_S" 'BEGIN {r = int(p / 2); if (r < 100) r = 100; print r}')
  db=bench_soak
  log "soak: $SOAK_RATE MO/s for $SOAK_S s"
  start_stack "$db" 0 --rate "$SOAK_RATE" --duration "$SOAK_S" --drain-s 60 --reply-wait-s 30 --reply-idle-s 10
  sleep 10
  rss_start=$(proc_rss_kib "$D_PID")
  lg_rc=0; wait "$LG_PID" || lg_rc=$?
  rss_end=$(proc_rss_kib "$D_PID"); hwm=$(proc_hwm_kib "$D_PID")
  drained=1; wait_drained "$db" "$DRAIN_S" || drained=0
  stop_stack
  ok=1; checks=$(verify "$db") || ok=0
  ((lg_rc == 0)) || ok=0
  ((ok)) || { FAILED=1; log "$db: VERIFICATION FAILED: $checks"; }
  jq -c -n --argjson lg "$(tail -1 "$OUT/$db-loadgen.out")" --arg s "$rss_start" --arg e "$rss_end" --arg h "$hwm" \
    --arg rate "$SOAK_RATE" --arg dur "$SOAK_S" --argjson ok "$ok" --arg drained "$drained" --argjson checks "$checks" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
    {run: "soak", soak_s: ($dur | tonumber), rate_mo_per_s: ($rate | tonumber), messages: $lg.messages,
     acked: $lg.acked, ack_p99_ms: $lg.ack_p99_ms, e2e_p99_ms: $lg.e2e_p99_ms,
     rss_start_mib: (($s | tonumber) / 1024 | . * 10 | round / 10),
     rss_end_mib: (($e | tonumber) / 1024 | . * 10 | round / 10),
     daemon_peak_rss_mib: (($h | tonumber) / 1024 | . * 10 | round / 10), verified: ($ok == 1),
     drained: ($drained == "1"), checks: $checks, loadavg: $load}'
fi

# ---------------------------------------------------------------------------------------------
# Micro-benchmarks: one line per benchmark with its items per second.
if ((SKIP_MICRO == 0)); then
  for b in "$BUILD"/bench/*_bench; do
    [ -x "$b" ] || continue
    "$b" --benchmark_min_time=0.2 --benchmark_format=json 2>/dev/null >"$OUT/$(basename "$b").json" || { FAILED=1; continue; }
    jq -c --arg bin "$(basename "$b")" '{micro: $bin, results: [.benchmarks[] |
        {name, ns: (.cpu_time | . * 10 | round / 10), per_s: ((.items_per_second // 0) | round)}]}' \
      "$OUT/$(basename "$b").json"
  done
fi

log "done; load after: $(uptime); files in $OUT"
exit "$FAILED"
