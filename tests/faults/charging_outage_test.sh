#!/usr/bin/env bash
# Fault 3: the operator's charging backend goes down (every /v1/charges call answered 503,
# unprocessed), comes back, then times out (charges processed but answered after the client's
# timeout: the daemon cannot know whether they happened). Driven at runtime through
# charging_sim's POST /v1/admin/config.
# Proves: during the outage donations wait (none becomes failed, MOs are still acknowledged),
# the circuit breaker opens (donagate_charging_breaker_state = 2), and after the backend returns
# every donation is charged exactly once — the timed-out ones are resolved by a status query on
# the same key, never charged again (the debit log has no key twice). Load: 3/5 of FAULTS_MESSAGES.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup charging_outage
# 3/5 of the load: after the outage the whole backlog is charged, which is the slow part.
faults_gen_mos $((FAULTS_MESSAGES * 3 / 5))
faults_start_charging
FAULTS_CHARGING_EXTRA='breaker_failure_threshold = 5
breaker_cooloff_s = 2
retries = 1'
FAULTS_MO_RATE=${FAULTS_MO_RATE:-400} faults_start_smsc
faults_write_config
faults_start_daemon
breaker() { metric 'donagate_charging_breaker_state{'; }
charged_count() { q "SELECT count(*) FROM donation WHERE state IN ('charged','partially_charged')"; }

wait_stored $((MO_COUNT / 5)) 60
charging_admin '{"fail_rate": 1.0}'
note "charging backend DOWN with $(charged_count) charged"
max_state=0; stored_during=$(stored_count)
end=$((SECONDS + 8))
while [ "$SECONDS" -lt "$end" ]; do   # 8 s of outage, sampling the breaker gauge
  s=$(breaker); [ "${s%.*}" -gt "$max_state" ] 2>/dev/null && max_state=${s%.*}
  sleep 0.2
done
charged_down=$(charged_count)
failed_down=$(q "SELECT count(*) FROM donation WHERE state = 'failed'")
waiting=$(q "SELECT count(*) FROM donation WHERE state IN ('received','charging','unknown')")
stored_down=$(( $(stored_count) - stored_during ))
note "during outage: breaker max=$max_state failed=$failed_down waiting=$waiting MOs stored meanwhile=$stored_down"
[ "$max_state" = 2 ] || fail "circuit breaker never opened (max state $max_state, want 2)"
[ "$failed_down" = 0 ] || fail "$failed_down donations failed because the backend was down"
[ "$waiting" -gt 0 ] || fail "no donation waiting during the outage"
[ "$stored_down" -gt 0 ] || fail "MOs stopped being acknowledged/stored during the charging outage"

charging_admin '{"fail_rate": 0}'
note "charging backend UP"
for _ in $(seq 1 100); do [ "$(breaker)" = 0 ] && break; sleep 0.2; done
[ "$(breaker)" = 0 ] || fail "breaker did not close after the backend returned"
after=$(charged_count); for _ in $(seq 1 100); do [ "$(charged_count)" -gt $((after + 50)) ] && break; sleep 0.2; done
[ "$(charged_count)" -gt $((after + 50)) ] || fail "charging did not resume after the outage"

# Timeouts: charges debited by the backend but answered after the client gave up.
charging_admin '{"timeout_rate": 0.5, "timeout_delay_ms": 2500}'
note "charging backend TIMING OUT (50% of charges answered after 2.5 s, timeout 1 s)"
sleep 6
charging_admin '{"timeout_rate": 0}'
note "charging backend normal again; unknown outstanding=$(metric donagate_charges_unknown_outstanding)"

faults_wait_smsc 90
faults_wait_final 90
resolved=$(q "SELECT count(*) FROM charge WHERE outcome = 'charged' AND attempts > 1")
FAULTS_SUMMARY_EXTRA="breaker_opened=yes retried_keys=$resolved"
faults_verify
echo "PASS: charging outage and timeouts survived, nothing charged twice"
