#!/usr/bin/env bash
# Fault 6: the database turns read-only mid-load (what a demoted primary or a replica after a
# failover looks like: ALTER DATABASE ... SET default_transaction_read_only = on, and the
# daemon's sessions cut so they reconnect into read-only transactions), then read-write again.
# Proves: the daemon logs a clear error naming the cause, answers the SMSC with temporary
# errors (never acknowledges an MO it could not write), and recovers BY ITSELF once the database
# is writable again (it drops read-only connections, so new ones pick up the change) — nothing
# acknowledged is lost. Disk full (SQLSTATE 53100) takes the same transient path: see
# docs/reliability.md. Load: FAULTS_MESSAGES (default 5000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup db_readonly
faults_gen_mos "$FAULTS_MESSAGES"
faults_start_charging
FAULTS_MO_RATE=${FAULTS_MO_RATE:-400} faults_start_smsc
faults_write_config
faults_start_daemon

wait_stored $((MO_COUNT / 4)) 60
psql "$DONAGATE_TEST_PG" -qc "ALTER DATABASE faults SET default_transaction_read_only = on" >/dev/null
psql "$DONAGATE_TEST_PG" -XAtqc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                 WHERE datname = 'faults' AND pid <> pg_backend_pid()" >/dev/null
# pg_terminate_backend only signals: a session already inside its COMMIT finishes it first.
sleep 0.5
before=$(stored_count)
note "database READ-ONLY with $before MOs stored"
sleep 6
during=$(( $(stored_count) - before ))
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
psql "$DONAGATE_TEST_PG" -qc "ALTER DATABASE faults RESET default_transaction_read_only" >/dev/null
note "database read-write again (stored while read-only: $during, readyz: $ready)"
[ "$during" -le 0 ] || fail "$during MOs stored while the database was read-only?"
[ "$ready" = 503 ] || fail "/readyz answered $ready while the database was read-only (want 503)"
after=$(stored_count); wait_stored $((after + 100)) 30
note "recovered: $(stored_count) stored"

faults_wait_smsc 90
faults_wait_final 60
ro_lines=$(grep -c 'read-only' "$WORK/daemon.log" || true)
FAULTS_SUMMARY_EXTRA="readonly_log_lines=$ro_lines readyz_during=$ready"
faults_verify
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || fail "no temporary SMPP error answered while read-only"
[ "$ro_lines" -gt 0 ] || fail "the daemon log never says the database is read-only"
grep -m1 'read-only' "$WORK/daemon.log" | cut -c1-300
echo "PASS: read-only database: temporary errors, clear log, recovery, nothing lost"
