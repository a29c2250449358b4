#!/usr/bin/env bash
# Fault 5: a slow SMSC — 90% of submit_sm answered ESME_RTHROTTLED, and the daemon told to pause
# 1 s after each throttle — while MOs keep arriving at full rate.
# Proves: replies back up in the outbox table (in the database, not in memory), the daemon's
# resident memory stays bounded (VmRSS sampled every 0.5 s from /proc), and inbound MOs keep
# being acknowledged at the offered rate (acks are never paused by submit throttling).
# Load: FAULTS_MESSAGES (default 5000). FAULTS_RSS_LIMIT_KB (default 300 MB) is the bound.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

faults_setup slow_smsc
faults_gen_mos "$FAULTS_MESSAGES"
faults_start_charging
rate=${FAULTS_MO_RATE:-500}
FAULTS_MO_RATE=$rate faults_start_smsc --throttle-rate 0.9
FAULTS_SMSC_EXTRA='throttle_pause_s = 1
throttle_max_retries = 100'
faults_write_config
start=$SECONDS
faults_start_daemon

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status" 2>/dev/null || echo 0; }
max_rss=0; first_rss=0; max_backlog=0; samples=0; ack_seconds=
# Sample until every donation is final (replies keep backing up while charging drains).
while [ $((SECONDS - start)) -lt 100 ]; do
  r=$(rss); [ "$first_rss" = 0 ] && [ "$r" -gt 0 ] && first_rss=$r
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  b=$(q "SELECT count(*) FROM outbox WHERE state IN ('pending','claimed')"); [ "${b:-0}" -gt "$max_backlog" ] && max_backlog=$b
  samples=$((samples + 1))
  if [ -z "$ack_seconds" ] && ! kill -0 "$SMSC_PID" 2>/dev/null; then ack_seconds=$((SECONDS - start)); fi
  if [ -n "$ack_seconds" ]; then
    open=$(q "SELECT count(*) FROM donation WHERE state NOT IN ('charged','partially_charged','failed')")
    [ "$open" = 0 ] && break
  fi
  sleep 0.5
done
[ -n "$ack_seconds" ] || ack_seconds=$((SECONDS - start))
faults_wait_smsc 5
limit=${FAULTS_RSS_LIMIT_KB:-307200}
throttled=$(jq .submits_throttled "$WORK/report.json")
faults_wait_final 30
backlog_end=$(q "SELECT count(*) FROM outbox WHERE state IN ('pending','claimed')")
note "all $MO_COUNT MOs acked in ${ack_seconds}s (offered ${rate}/s); outbox backlog max=$max_backlog; throttled answers=$throttled; VmRSS first=${first_rss}kB max=${max_rss}kB ($samples samples)"
FAULTS_SUMMARY_EXTRA="ack_seconds=$ack_seconds outbox_backlog_max=$max_backlog throttled=$throttled rss_max_kb=$max_rss"
faults_verify
[ "$throttled" -gt 0 ] || fail "smsc_sim throttled nothing"
[ "$max_backlog" -ge $((MO_COUNT / 4)) ] || fail "outbox never backed up (max $max_backlog pending)"
[ "$max_rss" -le "$limit" ] || fail "daemon RSS reached ${max_rss} kB (limit $limit kB)"
# Offered load takes MO_COUNT/rate seconds; acks must keep up. Generous (3x + 30 s) because
# CTest may run this next to other heavy tests; blocked acks would take until the backlog of
# throttled replies drained (minutes), far beyond it.
[ "$ack_seconds" -le $((MO_COUNT * 3 / rate + 30)) ] || fail "acks slowed down: ${ack_seconds}s for $MO_COUNT MOs at ${rate}/s"
[ "$max_backlog" -ge 1 ] && [ "$(jq .submits_total "$WORK/report.json")" -lt "$MO_COUNT" ] \
  || fail "all replies were sent before the acks finished: the SMSC was not slow enough to prove anything"
echo "PASS: slow SMSC: outbox backed up in the database ($max_backlog), RSS bounded (${max_rss} kB), acks kept flowing"
