#!/usr/bin/env bash
# Fault 4: the SMSC drops the TCP connection abruptly (no unbind) with a window of deliver_sm in
# flight (smsc_sim --drop-after-mo), then redelivers what it did not see acknowledged once the
# daemon has rebound.
# Proves: the redelivered MOs are processed once (some were already committed when the
# connection died; the SMSC's MO id dedupes them), the acknowledged ones are not lost, the link
# reconnects by itself, and the money invariants hold. Load: FAULTS_MESSAGES (default 5000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup smsc_drop
faults_gen_mos "$FAULTS_MESSAGES"
faults_start_charging
drop_at=$((MO_COUNT * 2 / 5))
faults_start_smsc --drop-after-mo "$drop_at"
faults_write_config
faults_start_daemon

wait_stored $((drop_at - 60)) 60
for _ in $(seq 1 100); do grep -q 'closed' "$WORK/smsc_sim.log" && break; sleep 0.1; done
note "smsc_sim dropped the connection after deliver_sm #$drop_at ($(stored_count) stored)"
faults_wait_smsc 90
faults_wait_final 60
binds=$(jq .binds_ok "$WORK/report.json"); drops=$(jq .connections_dropped "$WORK/report.json")
FAULTS_SUMMARY_EXTRA="binds=$binds connections_dropped=$drops"
faults_verify
[ "$binds" -ge 2 ] || fail "the daemon did not rebind after the drop (binds_ok=$binds)"
[ "$FAULTS_REDELIVERIES" -gt 0 ] || fail "nothing was in flight when the connection dropped (no redelivery)"
echo "PASS: connection dropped with deliver_sm in flight; redelivered MOs processed once"
