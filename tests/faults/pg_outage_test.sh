#!/usr/bin/env bash
# Fault 2: PostgreSQL taken away twice in one MO load — first a clean "fast" shutdown for 10 s,
# then a crash ("immediate" shutdown: no checkpoint, clients cut, crash recovery on start).
# Proves: while the database is away the daemon answers deliver_sm with temporary errors (the
# smsc_sim report shows them) and /readyz says 503; it reconnects by itself, resumes, and in
# the end every acknowledged MO is stored once, every donation is final and charged once.
# (tests/e2e/pg_restart_test.sh covers a 4 s fast stop on 2000 MOs; this is the issue's 10 s
# plus the crash case.) Load: FAULTS_MESSAGES (default 5000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup pg_outage
faults_gen_mos "$FAULTS_MESSAGES"
faults_start_charging
FAULTS_MO_RATE=${FAULTS_MO_RATE:-300} faults_start_smsc
faults_write_config
faults_start_daemon

outage() { # outage MODE SECONDS
  local before ready
  before=$(stored_count)
  pg_restart_stop "$1"
  note "PostgreSQL stopped ($1) with $before MOs stored"
  sleep "$2"
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
  pg_restart_start
  note "PostgreSQL started again after $2 s (readyz while down: $ready)"
  [ "$ready" = 503 ] || fail "/readyz answered $ready while PostgreSQL was down (want 503)"
}

wait_stored $((MO_COUNT / 5)) 60
outage fast 10
# Recovery first: stored count must move again within 30 s of the start.
after=$(stored_count); wait_stored $((after + 100)) 30
note "recovered: $(stored_count) stored"
wait_stored $((MO_COUNT * 3 / 5)) 90
outage immediate 3
after=$(stored_count); wait_stored $((after + 100)) 30
note "recovered from the crash: $(stored_count) stored"

faults_wait_smsc 90
faults_wait_final 60
errors=$(metric 'donagate_store_errors_total{kind="transient"}')
FAULTS_SUMMARY_EXTRA="store_transient_errors=${errors:-?}"
faults_verify
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || fail "no temporary SMPP error was answered while PostgreSQL was down"
grep -q 'level=\(warn\|error\).*component=\(store\|pipeline\|main\)' "$WORK/daemon.log" \
  || fail "the outage left no warning in the daemon log"
echo "PASS: PostgreSQL fast stop (10 s) and crash survived"
