#!/usr/bin/env bash
# Fault 6b: the disk under the MO table fills up mid-load (a real ENOSPC, not a simulated error):
# inbound_message lives in a tablespace on a 256 KiB tmpfs; when it is full PostgreSQL answers
# SQLSTATE 53100 "could not extend file ... No space left on device"; then the tmpfs is grown
# (what an operator freeing space does).
# Proves: the daemon answers the SMSC with temporary errors while the disk is full (never
# acknowledges what it could not write), logs the cause, recovers by itself once there is space,
# and nothing acknowledged is lost. Needs root (mount); prints SKIP and exits 0 otherwise.
# Load: FAULTS_MESSAGES (default 5000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup disk_full
SMALL=$WORK/small-disk
mkdir -p "$SMALL"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o "size=256k,mode=700,uid=$(id -u postgres),gid=$(id -g postgres)" tmpfs "$SMALL" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root); disk_full not exercised"
  exit 0
fi
FAULTS_AFTER_PG_STOP="umount $SMALL"
faults_gen_mos "$FAULTS_MESSAGES"
faults_start_charging
faults_write_config
faults_start_daemon               # migrates; the SMSC starts once the table is on the small disk
for _ in $(seq 1 100); do [ -n "$(q "SELECT to_regclass('public.inbound_message')")" ] && break; sleep 0.1; done
qs "CREATE TABLESPACE small_disk LOCATION '$SMALL'" >/dev/null
qs "ALTER TABLE inbound_message SET TABLESPACE small_disk" >/dev/null
FAULTS_MO_RATE=${FAULTS_MO_RATE:-400} faults_start_smsc

# Wait until the disk is full: stored count stops moving and the daemon reports the error.
for _ in $(seq 1 600); do grep -q 'No space left on device' "$WORK/daemon.log" && break; [ "$(stored_count)" -ge "$MO_COUNT" ] && break; sleep 0.1; done
grep -q 'No space left on device' "$WORK/daemon.log" || fail "the small disk never filled up ($(stored_count) stored)"
full_at=$(stored_count)
note "disk FULL at $full_at stored MOs ($(df -k "$SMALL" | awk 'NR==2 { print $3 "k used of " $2 "k" }'))"
sleep 5
still=$(stored_count)
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
[ "$ready" = 503 ] || fail "/readyz answered $ready while inbound_message's disk was full (want 503)"
mount -o remount,size=256m "$SMALL"
note "disk grown to 256 MiB (stored while full: $((still - full_at)))"
wait_stored $((still + 100)) 30
note "recovered: $(stored_count) stored"

faults_wait_smsc 90
faults_wait_final 60
sqlstate_lines=$(grep -c 'No space left on device' "$WORK/daemon.log" || true)
FAULTS_SUMMARY_EXTRA="full_at=$full_at enospc_log_lines=$sqlstate_lines"
faults_verify
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || fail "no temporary SMPP error answered while the disk was full"
grep -m1 'No space left on device' "$WORK/daemon.log" | cut -c1-300
echo "PASS: disk full: temporary errors, clear log, recovery, nothing lost"
