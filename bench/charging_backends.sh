#!/usr/bin/env bash
# Throughput of the operator charging backends on loopback (docs/performance.md, "Charging
# backends on loopback").
#
#   bench/charging_backends.sh [--build-dir DIR] [--charges N] [--latencies "50 200"] [--skip-build]
#
# Runs the disabled throughput cases of the backends' own tests, which drive one backend
# object directly (no daemon, no database) against the independent test peers:
#   diameter         DiameterChargingBackend, one peer, N CCRs submitted at once, tools/ocs_sim
#                    (node-diameter) answering each after the given latency;
#   carrier_billing  CarrierBillingChargingBackend (max_concurrency 256, one OAuth token),
#                    20,000 createPayment calls, tools/charging_sim --dialect carrier_billing.
# Output: one JSON line per run on stdout ({"backend","latency_ms","charges","seconds",
# "charges_per_s","charged","cpu_user_s","cpu_sys_s"}); progress on stderr. CPU is the test
# process and its simulator child together. Exit status 0 when every run charged every request.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
CHARGES=50000
LATENCIES="50 200"
SKIP_BUILD=0
while (($#)); do
  case "$1" in
    --build-dir) BUILD=$(realpath -m "$2"); shift 2 ;;
    --charges) CHARGES=$2; shift 2 ;;
    --latencies) LATENCIES=$2; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "charging_backends.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done

if [ "$SKIP_BUILD" = 0 ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$BUILD" -j"$(nproc)" --target billing_charging_diameter_charging_test \
    billing_charging_carrier_billing_charging_test charging_sim >&2
fi
(cd "$ROOT/tools/ocs_sim" && { [ -d node_modules/diameter ] || npm ci --no-audit --no-fund --loglevel=error; }) >&2

status=0
# run NAME LATENCY BINARY FILTER REGEX, with the environment set by the caller.
run() {
  local backend=$1 latency=$2 bin=$3 filter=$4 log
  log=$(mktemp)
  echo "== $backend, simulator latency $latency ms" >&2
  # bash's time reports the process tree's CPU (the simulator is a waited-for child).
  local TIMEFORMAT='%U %S' rc=0
  { time "$bin" --gtest_also_run_disabled_tests --gtest_filter="$filter" >"$log" 2>&1 || rc=$?; } 2>"$log.time"
  if [ "$rc" != 0 ]; then cat "$log" >&2; status=1; fi
  local line; line=$(grep -E '^(diameter throughput|carrier_billing):' "$log" || true)
  echo "$line" >&2
  if [ -z "$line" ]; then status=1; rm -f "$log" "$log.time"; return; fi
  # "... N charges in S s = R charges/s (C charged, ...)" / "... (max_concurrency ...)"
  local n s r c u y
  n=$(sed -E 's/.*: ([0-9]+) charges in.*/\1/' <<<"$line")
  s=$(sed -E 's/.* in ([0-9.]+) s = .*/\1/' <<<"$line")
  r=$(sed -E 's/.* = ([0-9]+) charges\/s.*/\1/' <<<"$line")
  c=$(grep -oE '\(([0-9]+) charged' <<<"$line" | grep -oE '[0-9]+' || echo "$n")
  read -r u y <"$log.time"
  [ "$c" = "$n" ] || status=1
  printf '{"backend":"%s","latency_ms":%s,"charges":%s,"seconds":%s,"charges_per_s":%s,"charged":%s,"cpu_user_s":%s,"cpu_sys_s":%s}\n' \
    "$backend" "$latency" "$n" "$s" "$r" "$c" "$u" "$y"
  rm -f "$log" "$log.time"
}

for latency in $LATENCIES; do
  DIAMETER_BENCH_CHARGES=$CHARGES DIAMETER_BENCH_LATENCY_MS=$latency \
    run diameter "$latency" "$BUILD/tests/billing_charging_diameter_charging_test" '*Throughput*'
done
for latency in $LATENCIES; do
  CB_BENCH_LATENCY_MS=$latency \
    run carrier_billing "$latency" "$BUILD/tests/billing_charging_carrier_billing_charging_test" '*Throughput*'
done
exit $status
