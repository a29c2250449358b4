#!/usr/bin/env bash
# PostgreSQL stopped for a few seconds in the middle of an MO stream (issue 4 "Done when"):
# donagated must answer the SMSC with temporary errors while the database is away (never ack,
# then lose), reconnect when it is back, and end with every MO stored exactly once, every
# donation charged once and the ledger right to the dong.
#
# Runs its OWN throwaway cluster (the fault harness, tests/faults/lib.sh) because it stops it:
# the shared test cluster must not disappear under the other tests. Needs the built donagated,
# smsc_sim, charging_sim. tests/faults/pg_outage_test.sh is the longer variant (10 s + crash).
set -euo pipefail
source "$(dirname "$0")/../faults/lib.sh"

faults_setup pg_restart
faults_gen_mos 2000
faults_start_charging
FAULTS_EXPECT_SUBMITS=$MO_COUNT FAULTS_MO_RATE=300 faults_start_smsc
faults_write_config
faults_start_daemon

# Let traffic flow, then take the database away for 4 seconds.
wait_stored 400 30
note "stopping PostgreSQL with $(stored_count) MOs stored"
pg_restart_stop fast
sleep 4
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
pg_restart_start
note "PostgreSQL back (readyz while down: $ready)"

# The SMSC exits once every MO is acknowledged and every reply submitted.
faults_wait_smsc 120
faults_wait_final 30
FAULTS_SUMMARY_EXTRA="readyz_during=$ready"
faults_verify   # every MO acked and stored once, every donation charged once, ledger = debits
keys=$(sort -u "$WORK/debited.keys" | wc -l)
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || fail "no temporary error was answered while the database was down"
[ "$ready" = "503" ] || fail "/readyz answered $ready while the database was down (want 503)"
[ "$keys" = "$VALID" ] || fail "charging simulator debited $keys keys, want $VALID"
echo "PASS: database outage survived"
