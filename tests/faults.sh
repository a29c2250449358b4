#!/usr/bin/env bash
# Runs every fault scenario (tests/faults/*_test.sh) one after the other and prints a table of
# what each observed. The same scripts run as CTest tests (label "faults"); this is the
# standalone form for humans and for the issue's full-size run:
#
#   tests/faults.sh                         # default load: FAULTS_MESSAGES=5000 per scenario
#   FAULTS_MESSAGES=20000 tests/faults.sh   # the issue's 20,000-message load (~4x longer)
#   tests/faults.sh sigkill pg_outage       # only these scenarios
#
# Needs a build with donagated, smsc_sim and charging_sim: DONAGATE_BINARY_DIR (default build/).
# Each scenario starts its own PostgreSQL, simulators and daemon on free loopback ports.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export DONAGATE_SOURCE_DIR=$ROOT
export DONAGATE_BINARY_DIR=${DONAGATE_BINARY_DIR:-$ROOT/build}
export FAULTS_RESULTS
FAULTS_RESULTS=$(mktemp /tmp/donagate-faults-results.XXXXXX)
trap 'rm -f "$FAULTS_RESULTS"' EXIT

if [ $# -gt 0 ]; then
  scripts=(); for n in "$@"; do scripts+=("$ROOT/tests/faults/${n%_test.sh}_test.sh"); done
else
  scripts=("$ROOT"/tests/faults/*_test.sh)
fi

# Each scenario twice: with the SMSC's MO-id TLV, and without one (most SMSCs), where no
# subscriber may be charged twice for one sent message. FAULTS_MO_ID_TLV=1 or 0 runs one way.
modes=(1 0)
[ -n "${FAULTS_MO_ID_TLV:-}" ] && modes=("$FAULTS_MO_ID_TLV")

failed=()
start=$SECONDS
for s in "${scripts[@]}"; do
  script_modes=("${modes[@]}")
  # A scenario marked "# faults: one mode" chooses its SMSC mode itself and runs once.
  grep -q '^# faults: one mode' "$s" && script_modes=(0)
  for mode in "${script_modes[@]}"; do
    name=$(basename "$s" _test.sh)
    [ "$mode" = 1 ] || name="${name}_no_mo_id"
    t0=$SECONDS
    if FAULTS_MO_ID_TLV=$mode timeout $((150 + ${FAULTS_MESSAGES:-5000} / 25)) bash "$s" >"/tmp/donagate-faults-$name.log" 2>&1; then
      echo "PASS $name ($((SECONDS - t0)) s)"
    else
      echo "FAIL $name ($((SECONDS - t0)) s) — log: /tmp/donagate-faults-$name.log"
      grep -E '^(FAIL|---)' "/tmp/donagate-faults-$name.log" | head -5 | sed 's/^/    /'
      failed+=("$name")
    fi
  done
done

echo
echo "Observed (messages sent / acked / stored / donations charged / duplicates):"
sed 's/^/  /' "$FAULTS_RESULTS"
echo "total $((SECONDS - start)) s, FAULTS_MESSAGES=${FAULTS_MESSAGES:-5000}"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
