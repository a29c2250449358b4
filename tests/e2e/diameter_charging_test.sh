#!/usr/bin/env bash
# Diameter Ro end to end: the real donagated charges 1,000 donations through backend = "diameter"
# against tools/ocs_sim (node-diameter) reachable on two peers, while
#  - 5% of the OCS's answers are lost after it debited (unknown → T-flagged retransmission),
#  - the first peer goes silent mid-run (TCP up, nothing answered): the watchdog must close it
#    and the in-flight requests fail over to the second peer with the T flag,
#  - a burst of DIAMETER_TOO_BUSY answers,
#  - the first peer comes back and is reconnected.
# Then the money invariants of tests/faults/lib.sh: every valid MO charged, no key debited twice,
# and the PostgreSQL ledger equal to the OCS's debit log to the đồng.
set -euo pipefail
FAULTS_TIMEOUT=${FAULTS_TIMEOUT:-90}
source "$(dirname "$0")/../faults/lib.sh"
OCS_SIM=$FAULTS_SRC/tools/ocs_sim/ocs_sim.js
[ -d "$FAULTS_SRC/tools/ocs_sim/node_modules/diameter" ] || fail "run 'npm ci' in tools/ocs_sim first"

faults_setup diameter_e2e
faults_gen_mos 1111   # 1,000 valid donations
[ "$VALID" = 1000 ] || fail "generator made $VALID valid MOs, want 1000"
pick_port OCS1; pick_port OCS2; pick_port OCS_ADMIN
"$OCS_SIM" --listen "127.0.0.1:$OCS1" --listen "127.0.0.1:$OCS2" --admin "127.0.0.1:$OCS_ADMIN" \
  --default-balance 100000000000 --latency-ms 2 --drop-rate 0.05 --seed 7 \
  --debit-log "$WORK/debits.csv" >>"$WORK/ocs_sim.log" 2>&1 &
CHARGING_PID=$!; FAULTS_PIDS+=("$CHARGING_PID")
for _ in $(seq 1 100); do grep -q 'admin on' "$WORK/ocs_sim.log" 2>/dev/null && break; sleep 0.05; done
grep -q 'admin on' "$WORK/ocs_sim.log" || fail "ocs_sim did not start: $(tail -n 3 "$WORK/ocs_sim.log")"
ocs() { curl -sf --noproxy '*' -X POST -d "$1" "http://127.0.0.1:$OCS_ADMIN/config" >/dev/null || fail "ocs_sim admin $1 refused"; }
ocs_stat() { curl -sf --noproxy '*' "http://127.0.0.1:$OCS_ADMIN/stats" | jq -r "$1"; }

FAULTS_MO_RATE=${FAULTS_MO_RATE:-120} faults_start_smsc
FAULTS_CHARGING_EXTRA='breaker_cooloff_s = 1'   # the TOO_BUSY burst may open it; do not stall for 30 s
faults_write_config
# The [[charging]] entry of lib.sh is http; make it Diameter (timeout_ms = Tx stays 1000).
sed -i -e 's|^backend = "http"|backend = "diameter"|' \
  -e "s|^url = \".*\"|peers = [\"127.0.0.1:$OCS1\", \"127.0.0.1:$OCS2\"]\norigin_host = \"donagate.e2e\"\norigin_realm = \"donagate\"\ndestination_realm = \"ocs.test\"\nwatchdog_interval_ms = 400\nreconnect_interval_ms = 200\nrating_group = 100|" \
  "$WORK/donagate.toml"
grep -q 'backend = "diameter"' "$WORK/donagate.toml" || fail "config rewrite failed"
# donagatectl charging-check: CER/CEA + DWR/DWA on both peers, nobody charged.
CTL=$FAULTS_BIN/tools/donagatectl/donagatectl
ctl_env() { FAULTS_SMSC_PASSWORD=$FAULTS_SMSC_PASSWORD FAULTS_DATABASE_URL=$DB "$@"; }
check_out=$(ctl_env "$CTL" --config "$WORK/donagate.toml" charging-check --operator opa) || fail "charging-check failed: $check_out"
echo "$check_out" | grep -q "127.0.0.1:$OCS2: CEA ok (peer Origin-Host ocs.test), DWA 2001 DIAMETER_SUCCESS" || fail "charging-check output: $check_out"
[ "$(ocs_stat .ccr)" = 0 ] || fail "charging-check sent a CCR"
sed "s|127.0.0.1:$OCS1\", \"127.0.0.1:$OCS2|127.0.0.1:1|" "$WORK/donagate.toml" >"$WORK/dead.toml"
if dead_out=$(ctl_env "$CTL" --config "$WORK/dead.toml" charging-check --operator opa); then
  fail "charging-check succeeded against a dead peer: $dead_out"
fi
echo "$dead_out" | grep -q "FAILED" || fail "charging-check against a dead peer said: $dead_out"
note "charging-check ok"
faults_start_daemon
peer_metric() { metric "donagate_diameter_$1{operator=\"opa\",peer=\"127.0.0.1:$2\"}"; }

wait_stored 300 40
ocs '{"listener": 0, "mode": "silent"}'
note "first peer silent with $(ocs_stat .debits) debits"
for _ in $(seq 1 60); do
  [ "$(peer_metric watchdog_failures_total "$OCS1")" = 1 ] && break; sleep 0.1
done
[ "$(peer_metric watchdog_failures_total "$OCS1")" = 1 ] || fail "watchdog did not close the silent peer"
[ "$(peer_metric peer_state "$OCS2")" = 3 ] || fail "second peer not open"
wait_stored 600 40
ocs '{"too_busy_burst": 20}'
ocs '{"listener": 0, "mode": "up"}'
note "first peer back; TOO_BUSY burst of 20"
for _ in $(seq 1 60); do [ "$(peer_metric peer_state "$OCS1")" = 3 ] && break; sleep 0.1; done
[ "$(peer_metric peer_state "$OCS1")" = 3 ] || fail "first peer was not reconnected"

faults_wait_smsc 45
faults_wait_final 30
retransmitted=$(ocs_stat .t_flagged_duplicates)
dropped=$(ocs_stat .dropped)
busy=$(ocs_stat .too_busy)
decode_errors=$(ocs_stat .decode_errors)
[ "$decode_errors" = 0 ] || fail "ocs_sim could not decode $decode_errors of our messages"
[ "$dropped" -gt 0 ] || fail "no answer was lost: the test proves nothing"
[ "$retransmitted" -gt 0 ] || fail "no T-flagged retransmission was answered from the debit log"
[ "$busy" = 20 ] || fail "TOO_BUSY burst not used up ($busy)"
FAULTS_SUMMARY_EXTRA="ocs_dropped=$dropped ocs_t_flagged_duplicates=$retransmitted too_busy=$busy"
faults_verify
echo "PASS: 1,000 donations over Diameter, ledger = OCS debit log, nothing charged twice"
