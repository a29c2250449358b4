#!/usr/bin/env bash
# Kannel 1.4.5 and donagated side by side under the same load generator (docs/performance.md,
# "Side by side with Kannel").
#
#   bench/kannel_compare.sh [--messages N] [--configs "1x100,4x256"] [--quick] [--duration S]
#                           [--drain-s S] [--no-kannel-dlr] [--no-mo-id] [--charge-latency-ms MS]
#                           [--no-kannel] [--auto-explain-ms MS] [--build-dir DIR] [--skip-install] [--out DIR]
#
# Per configuration BINDSxWINDOW (default "1x100,4x256"; "1x10" is the other one operators
# give), in the same run and with the same loadgen arguments (tools/loadgen plays the SMSC,
# both gateways bind to it as ESME, transceiver):
#   - Kannel: bearerbox (store-type = file, which never fsyncs) + smsbox, one smpp smsc group
#     per bind (max-pending-submits = window), its sms-service get-url pointing at an HTTP sink
#     (bench/http_sink.py) whose 200 body Kannel sends back as the reply SMS, asking for a
#     delivery receipt (X-Kannel-DLR-Mask 3, Kannel's default internal DLR storage) that Kannel
#     hands on to the sink's /dlr, as donagated's replies ask for one (--no-kannel-dlr: none);
#   - donagated: a throwaway durable PostgreSQL (tests/lib/pg.sh, fsync=on), charging_sim at
#     0 ms, one client link per bind (window = window, tps = 0: unthrottled, as Kannel is by
#     default); 1xW runs use donagated's defaults, several binds bench/run.sh's peak settings. The money is verified as in bench/run.sh.
# Prints a table (deliver_sm acked per s, ack p50/p99, handed on per s, gateway and PostgreSQL
# CPU per MO, donagated/Kannel ratios) and one JSON line per run on stdout; progress on stderr.
# --quick: 2 000 MOs per run and short waits (a smoke run, <= 60 s on an idle machine).
# Installs Debian's kannel (and python3, jq) when missing, and builds the three binaries (after
# deploy/install-deps.sh) when they are missing: run as root on Debian 12.
# BENCH_DATABASE_EXTRA (environment): lines appended to donagated's [database] section, for
# A/B runs of one setting (e.g. BENCH_DATABASE_EXTRA='batch_linger_ms = 0'); not the product's figure.
# Exit status: 0 when every run completed (Kannel: every acked MO reached the sink; donagated:
# every money check passed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-release}
MESSAGES=100000
CONFIGS="1x100,4x256"
DURATION=30       # max seconds of generation per run (loadgen --duration)
DRAIN_S=90        # after loadgen: max wait for the hand-on (sink hits / donations final)
REPLY_WAIT_S=60   # loadgen --reply-wait-s
REPLY_IDLE_S=10   # loadgen --reply-idle-s
RECEIPT_DELAY_MS=1000
SKIP_INSTALL=0
QUICK=0
SINK_ARGS=()      # --no-kannel-dlr: --no-dlr
MO_ID_TLV=1       # --no-mo-id: donagated's links are not told of loadgen's MO-id TLV (as with
                  # most SMSCs): redelivery recognition by content is on the hot path
OUT=""
CHARGE_LATENCY_MS=0  # --charge-latency-ms: charging_sim's latency for donagated's runs
NO_KANNEL=0          # --no-kannel: donagated's runs only (e.g. a second latency in the same hour)
AUTO_EXPLAIN_MS=""   # --auto-explain-ms MS: log the plan of every statement (nested ones too:
                     # foreign-key checks, triggers) slower than MS to $OUT/postgresql.log, the
                     # check that no cached plan degrades as the tables grow (docs/performance.md)

while (($#)); do
  case "$1" in
    --messages) MESSAGES=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --drain-s) DRAIN_S=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --skip-install) SKIP_INSTALL=1; shift ;;
    --no-kannel-dlr) SINK_ARGS=(--no-dlr); shift ;;
    --no-mo-id) MO_ID_TLV=0; shift ;;
    --charge-latency-ms) CHARGE_LATENCY_MS=$2; shift 2 ;;
    --no-kannel) NO_KANNEL=1; shift ;;
    --auto-explain-ms) AUTO_EXPLAIN_MS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "kannel_compare.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
if ((QUICK)); then
  MESSAGES=2000 DURATION=10 DRAIN_S=15 REPLY_WAIT_S=10 REPLY_IDLE_S=3
fi
if ! [[ $MESSAGES =~ ^[0-9]+$ ]] || ((MESSAGES == 0)); then
  echo "kannel_compare.sh: --messages must be > 0" >&2; exit 64
fi
IFS=, read -ra CONFIG_LIST <<<"$CONFIGS"
for c in "${CONFIG_LIST[@]}"; do
  [[ $c =~ ^([1-9][0-9]?)x([1-9][0-9]{0,2})$ ]] || { echo "kannel_compare.sh: bad config '$c' (BINDSxWINDOW, e.g. 4x256)" >&2; exit 64; }
done

log() { echo "kannel_compare: $*" >&2; }
OUT=${OUT:-$(mktemp -d /tmp/donagate-kannel.XXXXXX)}
mkdir -p "$OUT"
chmod 755 "$OUT"
log "output in $OUT; load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$SECONDS

PIDS=()
POLICY_RC_MADE=0
stop_pid() {  # pid timeout_s: TERM, then KILL if it is still there after timeout_s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p" 5; done
  # A child started just before a signal may not be in PIDS yet: this script's own children.
  for p in $(pgrep -P $$ 2>/dev/null); do stop_pid "$p" 2; done
  if [ -n "$AUTO_EXPLAIN_MS" ] && [ -n "${PGTMP:-}" ] && [ -f "$PGTMP/server.log" ]; then
    cp "$PGTMP/server.log" "$OUT/postgresql.log" 2>/dev/null || true
  fi
  declare -F pg_stop >/dev/null && { pg_stop || true; }
  ((POLICY_RC_MADE)) && rm -f /usr/sbin/policy-rc.d
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Packages: kannel (and python3 for the sink, jq for the figures). deploy/install-deps.sh has no
# optional/bench section, so they are installed here, only when missing.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if ((SKIP_INSTALL == 0)); then
  missing=()
  for p in kannel python3 jq; do installed "$p" || missing+=("$p"); done
  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
  if ((${#missing[@]})); then
    [ "$(id -u)" = 0 ] || { log "missing ${missing[*]}: run as root (apt-get install)"; exit 1; }
    # The package starts its service on install (bearerbox with /etc/kannel/kannel.conf, ports
    # on every interface): a policy-rc.d that denies it, unless the machine has one already.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
      POLICY_RC_MADE=1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$OUT/apt.log" 2>&1 \
      || { apt-get update -q >>"$OUT/apt.log" 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$OUT/apt.log" 2>&1; } \
      || { tail -20 "$OUT/apt.log" >&2; exit 1; }
    if ((POLICY_RC_MADE)); then rm -f /usr/sbin/policy-rc.d; POLICY_RC_MADE=0; fi
  fi
fi
BEARERBOX=/usr/sbin/bearerbox
SMSBOX=/usr/sbin/smsbox
PYTHON=/usr/bin/python3
for b in "$BEARERBOX" "$SMSBOX" "$PYTHON"; do [ -x "$b" ] || { log "$b missing"; exit 1; }; done
KANNEL_VERSION=$(dpkg-query -W -f='${Version}' kannel 2>/dev/null || echo unknown)

# ---------------------------------------------------------------------------------------------
# Binaries (only the three this script runs; built when missing).
DONAGATED=$BUILD/daemon/donagated
CHARGING_SIM=$BUILD/tools/charging_sim/charging_sim
LOADGEN=$BUILD/tools/loadgen/loadgen
if [ ! -x "$DONAGATED" ] || [ ! -x "$CHARGING_SIM" ] || [ ! -x "$LOADGEN" ]; then
  if ((SKIP_INSTALL == 0)) && [ "$(id -u)" = 0 ]; then bash "$ROOT/deploy/install-deps.sh" >&2; fi
  log "building donagated loadgen charging_sim (Release) into $BUILD"
  { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$BUILD" -j"${BUILD_JOBS:-$(nproc)}" --target donagated loadgen charging_sim; } >"$OUT/build.log" 2>&1 \
    || { tail -40 "$OUT/build.log" >&2; exit 1; }
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL: durable (fsync=on, synchronous_commit=on), bench/run.sh's settings.
# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
PG_EXTRA=("shared_preload_libraries = 'pg_stat_statements'")
if [ -n "$AUTO_EXPLAIN_MS" ]; then
  PG_EXTRA=("shared_preload_libraries = 'pg_stat_statements,auto_explain'"
            "auto_explain.log_min_duration = $AUTO_EXPLAIN_MS" "auto_explain.log_nested_statements = on"
            "log_min_messages = log")
fi
pg_start "max_wal_size = 4GB" "checkpoint_timeout = 30min" "wal_buffers = 16MB" "${PG_EXTRA[@]}" \
  "pg_stat_statements.track = all" "pg_stat_statements.track_planning = on" >&2
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres)
# shellcheck source=lib.sh
source "$ROOT/bench/lib.sh"
HZ=$(getconf CLK_TCK)

# CPU seconds of the PostgreSQL cluster: the postmaster's own and its reaped children's
# (cutime + cstime: backends that already exited) plus every live child's utime + stime.
pg_cpu_s() {
  local pm kids
  pm=$(head -1 "$PGTMP/data/postmaster.pid")
  kids=$(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|' | tr '\n' ' ')
  # shellcheck disable=SC2086
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    [ -z "$kids" ] || cat $kids 2>/dev/null | awk '{print $14 + $15}' || true; } |
    awk -v hz="$HZ" '{s += $1} END {printf "%.3f\n", s / hz}'
}
cpu_of() {  # pids...: summed utime + stime in seconds
  local p s=0
  for p in "$@"; do s=$(awk -v a="$s" -v b="$(proc_cpu_s "$p")" 'BEGIN {print a + b}'); done
  echo "$s"
}
hwm_mib_of() {  # pids...: summed VmHWM in MiB
  local p s=0
  for p in "$@"; do s=$((s + $(proc_hwm_kib "$p"))); done
  awk -v k="$s" 'BEGIN {printf "%.1f\n", k / 1024}'
}
wait_for_binds() {  # loadgen stderr file, timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do grep -q 'binds up, sending' "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# Same loadgen arguments for both gateways (the SMSC side): binds, window, count, waits.
start_loadgen() {  # prefix first_port(0: ephemeral) binds window
  local prefix=$1
  rm -f "$prefix-ports"
  "$LOADGEN" --port "$2" --listeners "$3" --expect-binds "$3" --window "$4" --mo-id-tlv 0x1401 \
    --receipts --receipt-delay-ms "$RECEIPT_DELAY_MS" --count "$MESSAGES" --duration "$DURATION" \
    --drain-s 60 --reply-wait-s "$REPLY_WAIT_S" --reply-idle-s "$REPLY_IDLE_S" --bind-wait-s 30 \
    --progress-s 0 --ready-file "$prefix-ports" --acked-file "$prefix-acked.csv" \
    --summary-file "$prefix-loadgen.json" >"$prefix-loadgen.out" 2>"$prefix-loadgen.err" &
  LG_PID=$!; PIDS+=("$LG_PID")
  wait_for_file "$prefix-ports" 10 || { log "loadgen did not start: $(tail -2 "$prefix-loadgen.err")"; return 1; }
}

# count consecutive free TCP ports in 20000..32767 (below the ephemeral range, as pg.sh's).
free_port_range() {  # count
  local p i ok _
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % (12768 - $1))); ok=1
    for ((i = 0; i < $1; i++)); do
      if ss -Hltn "sport = :$((p + i))" 2>/dev/null | grep -q .; then ok=0; break; fi
    done
    ((ok)) && { echo "$p"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Kannel: bearerbox + smsbox, store-file, HTTP sink.
write_kannel_conf() {  # file dir admin_port smsbox_port sink_port window ports_csv
  local file=$1 dir=$2 admin=$3 sbport=$4 sink=$5 window=$6 ports=$7 i=0 p
  cat >"$file" <<EOF
group = core
admin-port = $admin
admin-interface = 127.0.0.1
admin-password = bench
admin-deny-ip = "*.*.*.*"
admin-allow-ip = "127.0.0.1"
smsbox-port = $sbport
smsbox-interface = 127.0.0.1
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
log-file = "$dir/bearerbox.log"
log-level = 2
store-type = file
store-location = "$dir/kannel.store"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $sbport
log-file = "$dir/smsbox.log"
log-level = 2

group = sms-service
keyword = default
get-url = "http://127.0.0.1:$sink/mo?from=%p&to=%P&text=%a"
max-messages = 1
accept-x-kannel-headers = true

# loadgen's unique MO id (--mo-id-tlv 0x1401, as donagated's mo_id_tlv): declared, as an
# operator's vendor TLV would be, so bearerbox does not warn about an unknown TLV per MO.
group = smpp-tlv
name = mo_id
tag = 0x1401
type = octetstring
length = 64
EOF
  # One smsc-id for every bind: loadgen sends a receipt on whichever bind has room, and Kannel
  # finds a DLR only under the smsc-id its submit_sm went out on (smsc-admin-id tells them apart).
  IFS=, read -ra plist <<<"$ports"
  for p in "${plist[@]}"; do
    i=$((i + 1))
    cat >>"$file" <<EOF

group = smsc
smsc = smpp
smsc-id = lg
smsc-admin-id = lg-$i
host = 127.0.0.1
port = $p
transceiver-mode = true
smsc-username = donagate
smsc-password = bench
system-type = ""
max-pending-submits = $window
reconnect-delay = 1
EOF
  done
}

declare -a RESULTS
FAILED=0

run_kannel() {  # binds window
  LG_PID=""
  local binds=$1 window=$2 name=kannel_${1}x$2
  local dir=$OUT/$name prefix=$OUT/$name
  mkdir -p "$dir"
  log "$name: Kannel $KANNEL_VERSION, $binds bind(s) x window $window, up to $MESSAGES MOs / $DURATION s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$PYTHON" "$ROOT/bench/http_sink.py" --port-file "$dir/sink-port" --stats-file "$dir/sink.json" \
    --max-s $((DURATION + DRAIN_S + REPLY_WAIT_S + 120)) "${SINK_ARGS[@]}" >"$dir/sink.out" 2>&1 &
  local sink_pid=$!; PIDS+=("$sink_pid")
  wait_for_file "$dir/sink-port" 10 || { log "http sink did not start"; return 1; }
  # Kannel first, so that smsbox is connected before the first MO (bearerbox binds, and loadgen
  # sends, at once): its smsc groups point at ports loadgen opens next (reconnect-delay 1 s).
  local lg_port sb_port ports="" i
  lg_port=$(free_port_range "$binds"); sb_port=$(_pg_free_port)
  for ((i = 0; i < binds; i++)); do ports+=${ports:+,}$((lg_port + i)); done
  write_kannel_conf "$dir/kannel.conf" "$dir" "$(_pg_free_port)" "$sb_port" "$(cat "$dir/sink-port")" "$window" "$ports"
  "$BEARERBOX" -v 4 "$dir/kannel.conf" >"$dir/bearerbox.out" 2>&1 &
  local bb_pid=$!; PIDS+=("$bb_pid")
  for ((i = 0; i < 50; i++)); do ss -Hltn "sport = :$sb_port" | grep -q . && break; sleep 0.1; done
  "$SMSBOX" -v 4 "$dir/kannel.conf" >"$dir/smsbox.out" 2>&1 &
  local sb_pid=$!; PIDS+=("$sb_pid")
  for ((i = 0; i < 100; i++)); do ss -Htn state established "( dport = :$sb_port )" | grep -q . && break; sleep 0.1; done
  if ((i == 100)) || ! start_loadgen "$prefix" "$lg_port" "$binds" "$window" || ! wait_for_binds "$prefix-loadgen.err" 30; then
    log "$name: Kannel did not start or bind: $(tail -3 "$dir/bearerbox.log" "$dir/smsbox.out" 2>/dev/null)"
    stop_pid "$sb_pid" 10; stop_pid "$bb_pid" 10; stop_pid "${LG_PID:-}" 5; stop_pid "$sink_pid" 5
    FAILED=1; return 1
  fi
  local cpu0 pg0 bb0 sink0 lg_rc=0
  cpu0=$(cpu_of "$bb_pid" "$sb_pid"); pg0=$(pg_cpu_s); bb0=$(cpu_of "$bb_pid"); sink0=$(cpu_of "$sink_pid")
  wait "$LG_PID" || lg_rc=$?
  local acked receipts hits=0 dlrs=0 i
  acked=$(jq '.acked' "$prefix-loadgen.json"); receipts=$(jq '.receipts_acked' "$prefix-loadgen.json")
  for ((i = 0; i < DRAIN_S * 5; i++)); do  # every acked MO (and receipt) handed on to the sink
    read -r hits dlrs < <(jq -r '"\(.hits) \(.dlr_hits)"' "$dir/sink.json" 2>/dev/null || echo 0 0)
    ((hits >= acked && dlrs >= receipts)) && break
    sleep 0.2
  done
  local cpu1 pg1 hwm bb1 sink1
  cpu1=$(cpu_of "$bb_pid" "$sb_pid"); pg1=$(pg_cpu_s); hwm=$(hwm_mib_of "$bb_pid" "$sb_pid")
  bb1=$(cpu_of "$bb_pid"); sink1=$(cpu_of "$sink_pid")
  stop_pid "$sb_pid" 10; stop_pid "$bb_pid" 10; stop_pid "$sink_pid" 5
  local ok=1
  ((lg_rc == 0 && hits >= acked && acked > 0)) || { ok=0; FAILED=1; log "$name: INCOMPLETE (loadgen rc $lg_rc, acked $acked, sink hits $hits)"; }
  RESULTS+=("$(jq -c -n --slurpfile lg "$prefix-loadgen.json" --slurpfile sink "$dir/sink.json" \
    --arg cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {print b - a}')" \
    --arg pg "$(awk -v a="$pg0" -v b="$pg1" 'BEGIN {print b - a}')" --arg hwm "$hwm" \
    --arg bb "$(awk -v a="$bb0" -v b="$bb1" 'BEGIN {print b - a}')" \
    --arg sinkcpu "$(awk -v a="$sink0" -v b="$sink1" 'BEGIN {print b - a}')" \
    --arg binds "$binds" --arg window "$window" --argjson ok "$ok" --arg v "$KANNEL_VERSION" \
    --arg dlr "$((${#SINK_ARGS[@]} == 0))" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
    $lg[0] as $l | $sink[0] as $s | ($cpu | tonumber) as $c | ($pg | tonumber) as $p |
    (if $s.hits > 1 and $s.last > $s.first then $s.hits / ($s.last - $s.first) else 0 end) as $rate |
    {gateway: "kannel", version: $v, config: ($binds + "x" + $window), messages: $l.messages,
     dlr: ($dlr == "1"),
     acked: $l.acked, acked_per_s: $l.acked_per_s, ack_p50_ms: $l.ack_p50_ms, ack_p99_ms: $l.ack_p99_ms,
     handed_on: $s.hits, handed_on_per_s: ($rate | round), replies_per_s: $l.replies_per_s,
     receipts_acked: $l.receipts_acked, receipts_handed_on: $s.dlr_hits,
     gateway_cpu_s: ($c * 100 | round / 100),
     gateway_cpu_us_per_mo: (if $l.acked > 0 then ($c * 1e6 / $l.acked | round) else null end),
     pg_cpu_us_per_mo: (if $l.acked > 0 then ($p * 1e6 / $l.acked | round) else null end),
     bearerbox_cpu_s: ($bb | tonumber | . * 100 | round / 100),
     smsbox_cpu_s: (($c - ($bb | tonumber)) * 100 | round / 100),
     sink_cpu_us_per_mo: (if $l.acked > 0 then (($sinkcpu | tonumber) * 1e6 / $l.acked | round) else null end),
     gateway_peak_rss_mib: ($hwm | tonumber), complete: ($ok == 1), loadavg: $load}')")
  echo "${RESULTS[-1]}"
}

# ---------------------------------------------------------------------------------------------
# donagated: charging_sim at 0 ms, one client link per bind.
write_donagated_conf() {  # file db charging_port http_port window ports_csv peak(0|1)
  local file=$1 db=$2 cport=$3 hport=$4 window=$5 ports=$6 peak=$7 i=0 p
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
window = $window
tps = 0
$( ((MO_ID_TLV)) && echo "mo_id_tlv = 0x1401")

EOF
  done
  cat >>"$file" <<EOF
[database]
conninfo = "host=127.0.0.1 port=$PGPORT_TEST user=postgres dbname=$db"
run_migrations_on_start = true
${BENCH_DATABASE_EXTRA:-}
EOF
  ((peak)) && cat >>"$file" <<EOF
pool_size = 4
batch_size = 512
batch_linger_ms = 2
EOF
  cat >>"$file" <<EOF

[[campaign]]
name = "bench"
keyword = "CV"
shortcode = "1407"
unit_price_vnd = 20000

[[charging]]
operator = "opa"
backend = "http"
url = "http://127.0.0.1:$cport"
EOF
  ((peak)) && cat >>"$file" <<EOF
timeout_ms = 5000
max_concurrency = 512

[pipeline]
max_inflight = 100000
charge_batch_size = 512
charge_concurrency = 1024
charge_workers = 2
charge_yield_ingest_backlog = 256
reply_batch_size = 512
reply_max_inflight = 2048
poll_interval_ms = 20
instance_id = "bench"
EOF
  cat >>"$file" <<EOF

[http]
listen = "127.0.0.1:$hport"

[log]
level = "warn"
file = "$OUT/donagated-$db.log"
EOF
}

# Where PostgreSQL's work per donation goes (docs/performance.md): pg_stat_statements of this
# run's database, statements by total time, and per-table row versions (the database is new
# per run, so its counters are the run's). Printed to stderr and kept in $prefix-pgstat.txt.
pg_cost_breakdown() {  # db prefix
  local db=$1 prefix=$2 donations
  donations=$("${PSQL[@]}" -d "$db" -c "SELECT greatest(count(*), 1) FROM donation")
  {
    echo "== $db: PostgreSQL work per donation ($donations donations)"
    echo "-- statements (pg_stat_statements; exec us and planning us per donation, calls, rows per call)"
    "${PSQL[@]}" -d "$db" -F $'\t' -c "
      SELECT round(s.total_exec_time * 1000 / $donations)::int AS us_per_donation,
             round(s.total_plan_time * 1000 / $donations)::int AS plan_us_per_donation, s.calls,
             round(s.rows::numeric / greatest(s.calls, 1), 1) AS rows_per_call,
             left(regexp_replace(s.query, '\s+', ' ', 'g'), 110)
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
       WHERE d.datname = '$db' AND s.toplevel
       ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT 15"
    echo "-- all statements: exec us, planning us per donation"
    "${PSQL[@]}" -d "$db" -F $'\t' -c "
      SELECT round(sum(s.total_exec_time) * 1000 / $donations)::int, round(sum(s.total_plan_time) * 1000 / $donations)::int
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$db' AND s.toplevel"
    echo "-- row versions per donation (inserted, updated, of which HOT, deleted)"
    "${PSQL[@]}" -d "$db" -F $'\t' -c "
      SELECT relname, round(n_tup_ins::numeric / $donations, 2), round(n_tup_upd::numeric / $donations, 2),
             round(n_tup_hot_upd::numeric / $donations, 2), round(n_tup_del::numeric / $donations, 2)
        FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0
       ORDER BY n_tup_ins + n_tup_upd DESC"
    echo "-- total: row versions written per donation"
    "${PSQL[@]}" -d "$db" -c "
      SELECT round(sum(n_tup_ins + n_tup_upd + n_tup_del)::numeric / $donations, 2) FROM pg_stat_user_tables"
  } >"$prefix-pgstat.txt" 2>&1 || true
  cat "$prefix-pgstat.txt" >&2
}

run_donagated() {  # binds window
  LG_PID=""
  local binds=$1 window=$2 db=donagated_${1}x$2 peak=0
  ((binds > 1)) && peak=1
  local prefix=$OUT/$db
  log "$db: donagated ($( ((peak)) && echo "bench/run.sh peak settings" || echo "default settings")), $binds bind(s) x window $window, up to $MESSAGES MOs / $DURATION s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
  "${PSQL[@]}" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
  # A previous run into the same --out folder left this file: never read its port.
  rm -f "$prefix-charging.out"
  "$CHARGING_SIM" --listen 127.0.0.1:0 --latency-ms "$CHARGE_LATENCY_MS" --default-balance 1000000000 \
    --debit-log "$prefix-debits.csv" >"$prefix-charging.out" 2>"$prefix-charging.err" &
  local cs_pid=$!; PIDS+=("$cs_pid")
  local cport="" i
  for ((i = 0; i < 100; i++)); do
    cport=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$prefix-charging.out" 2>/dev/null)
    [ -n "$cport" ] && break
    sleep 0.1
  done
  [ -n "$cport" ] || { log "charging_sim did not start"; return 1; }
  start_loadgen "$prefix" 0 "$binds" "$window" || return 1
  local d_pid="" attempt
  for attempt in 1 2 3; do  # the HTTP port is chosen free, but the machine is shared: retry
    write_donagated_conf "$prefix.toml" "$db" "$cport" "$(_pg_free_port)" "$window" "$(cat "$prefix-ports")" "$peak"
    BENCH_SMSC_PASSWORD=bench "$DONAGATED" --config "$prefix.toml" >"$prefix-donagated.out" 2>&1 &
    d_pid=$!; PIDS+=("$d_pid")
    wait_for_binds "$prefix-loadgen.err" 30 && break
    kill -0 "$d_pid" 2>/dev/null && break  # running but not bound in 30 s: fails below
    log "donagated exited at start (attempt $attempt): $(tail -n 2 "$OUT/donagated-$db.log" 2>/dev/null)"
  done
  if ! grep -q 'binds up, sending' "$prefix-loadgen.err"; then
    log "$db: donagated did not bind"; stop_pid "$d_pid" 10; stop_pid "$LG_PID" 5; stop_pid "$cs_pid" 5
    FAILED=1; return 1
  fi
  local cpu0 pg0 lg_rc=0
  cpu0=$(cpu_of "$d_pid"); pg0=$(pg_cpu_s)
  wait "$LG_PID" || lg_rc=$?
  local drained=1
  wait_drained "$db" "$DRAIN_S" || drained=0
  local cpu1 pg1 hwm
  cpu1=$(cpu_of "$d_pid"); pg1=$(pg_cpu_s); hwm=$(hwm_mib_of "$d_pid")
  stop_pid "$d_pid" 20; stop_pid "$cs_pid" 5
  pg_cost_breakdown "$db" "$prefix"
  local checks ok=1
  checks=$(verify "$db") || ok=0
  ((lg_rc == 0 && drained)) || ok=0
  ((ok)) || { FAILED=1; log "$db: VERIFICATION FAILED (loadgen rc $lg_rc, drained $drained): $checks"; }
  RESULTS+=("$(jq -c -n --slurpfile lg "$prefix-loadgen.json" --argjson checks "$checks" \
    --arg cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {print b - a}')" \
    --arg pg "$(awk -v a="$pg0" -v b="$pg1" 'BEGIN {print b - a}')" --arg hwm "$hwm" \
    --arg binds "$binds" --arg window "$window" --argjson ok "$ok" --argjson peak "$peak" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
    $lg[0] as $l | ($cpu | tonumber) as $c | ($pg | tonumber) as $p |
    {gateway: "donagated", settings: (if $peak == 1 then "bench peak" else "defaults" end),
     config: ($binds + "x" + $window), messages: $l.messages, acked: $l.acked,
     acked_per_s: $l.acked_per_s, ack_p50_ms: $l.ack_p50_ms, ack_p99_ms: $l.ack_p99_ms,
     handed_on: $l.valid_replies, handed_on_per_s: ($l.valid_replies_per_s | round),
     replies_per_s: $l.replies_per_s, receipts_acked: $l.receipts_acked,
     gateway_cpu_s: ($c * 100 | round / 100),
     gateway_cpu_us_per_mo: (if $l.acked > 0 then ($c * 1e6 / $l.acked | round) else null end),
     pg_cpu_us_per_mo: (if $l.acked > 0 then ($p * 1e6 / $l.acked | round) else null end),
     gateway_peak_rss_mib: ($hwm | tonumber), complete: ($ok == 1), verified: ($ok == 1),
     checks: $checks, loadavg: $load}')")
  echo "${RESULTS[-1]}"
}

for c in "${CONFIG_LIST[@]}"; do
  binds=${c%x*} window=${c#*x}
  ((NO_KANNEL)) || run_kannel "$binds" "$window" || FAILED=1
  run_donagated "$binds" "$window" || FAILED=1
done

# ---------------------------------------------------------------------------------------------
# The table: per configuration, Kannel | donagated | donagated/Kannel.
printf '%s\n' "${RESULTS[@]}" | jq -s -r --arg n "$MESSAGES" '
  def fmt: if . == null then "-" elif type == "number" then
      (if . >= 100 then (round | tostring) else (. * 10 | round / 10 | tostring) end) else tostring end;
  def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-" else ($a / $b * 100 | round / 100 | tostring) end;
  def lpad($w): if length >= $w then . else " " * ($w - length) + . end;
  def rpad($w): if length >= $w then .[0:$w] else . + " " * ($w - length) end;
  def row($a; $b; $c; $d): ($a | rpad(32)) + ($b | lpad(12)) + ($c | lpad(12)) + ($d | lpad(18));
  group_by(.config)[] as $g |
  ($g | map(select(.gateway == "kannel"))[0]) as $k | ($g | map(select(.gateway == "donagated"))[0]) as $d |
  (["", "config \($g[0].config) (binds x window), up to \($n) MOs, same loadgen",
    row("metric"; "Kannel"; "donagated"; "donagated/Kannel")] +
   [[["deliver_sm acked per s", "acked_per_s", true],
     ["ack p50 ms", "ack_p50_ms", true],
     ["ack p99 ms", "ack_p99_ms", true],
     ["handed on per s", "handed_on_per_s", true],
     ["replies received per s (all)", "replies_per_s", true],
     ["delivery receipts acked", "receipts_acked", true],
     ["receipts handed on (Kannel /dlr)", "receipts_handed_on", false],
     ["gateway CPU us per MO", "gateway_cpu_us_per_mo", true],
     ["PostgreSQL CPU us per MO", "pg_cpu_us_per_mo", false],
     ["gateway peak RSS MiB", "gateway_peak_rss_mib", true],
     ["MOs acked", "acked", true]][] as [$lbl, $key, $r] |
    row($lbl; $k[$key] | fmt; $d[$key] | fmt; if $r then ratio($d[$key]; $k[$key]) else "-" end)] +
   ["complete: Kannel \($k.complete // "-") (every acked MO reached the sink), donagated \($d.verified // "-") (money checks)"])
  | .[]'
cat <<'EOF'

handed on: Kannel = HTTP sink hits per s (first -> last hit; every MO, valid or not);
donagated = valid donations charged, ledgered and replied per s (first deliver_sm -> last reply).
CPU: utime+stime deltas from the binds to the end of the hand-on (bearerbox+smsbox vs donagated;
PostgreSQL: every process of the throwaway cluster, idle during the Kannel runs).
EOF
log "done in $((SECONDS - T_START)) s; load after: $(cut -d' ' -f1-3 /proc/loadavg); files in $OUT"
exit "$FAILED"
