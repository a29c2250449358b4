#!/usr/bin/env bash
# Fault 10 (high availability, the other side of synchronous replication): the synchronous
# STANDBY dies under load and the primary, with synchronous_commit = on, can no longer confirm
# any COMMIT. Proves: the daemon acknowledges nothing that is not replicated — while the
# standby is away no MO is acknowledged (donagate_mo_accepted_total stands still), the SMSC gets
# temporary errors, /readyz says 503 ("cannot confirm writes"), and batches whose COMMIT
# returned only because the wait was canceled (statement timeout: "committed locally, might
# not have been replicated") are held in doubt, unanswered, not acknowledged; once the standby
# is back (FAULTS_STANDBY_DOWN_S later, default 8) traffic resumes by itself and every
# acknowledged MO is on the primary AND on the standby, with the usual money invariants.
# The trade-off (docs/database.md): availability of the primary alone is given up for "an
# acknowledged MO survives a failover"; an operator who prefers availability relaxes
# synchronous_standby_names. Load: FAULTS_FAILOVER_MESSAGES (default 3000). Runs once, without
# the MO-id TLV (the stricter case: the SMSC times out on held MOs and redelivers them, and the
# redeliveries must be recognised, not charged); FAULTS_MO_ID_TLV=1 runs it with ids.
# faults: one mode
set -euo pipefail
FAULTS_MO_ID_TLV=${FAULTS_MO_ID_TLV:-0}
source "$(dirname "$0")/lib.sh"

FAULTS_STANDBY_DOWN_S=${FAULTS_STANDBY_DOWN_S:-8}
faults_setup pg_sync_standby
faults_start_standby
faults_sync_replication
faults_gen_mos "${FAULTS_FAILOVER_MESSAGES:-3000}"
faults_start_charging
FAULTS_MO_RATE=${FAULTS_MO_RATE:-400} faults_start_smsc
# A short statement timeout, so the cut-short wait (and its WARNING) happens within the outage.
faults_write_config
sed -i 's/^connect_timeout_s = 2$/connect_timeout_s = 2\nstatement_timeout_ms = 2000/' "$WORK/donagate.toml"
FAULTS_DATABASE_URL="host=127.0.0.1,127.0.0.1 port=$PGPORT_TEST,$SB_PORT user=postgres dbname=faults target_session_attrs=read-write"
faults_start_daemon

readyz_body() { curl -s "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null || true; }
accepted() { metric 'donagate_mo_accepted_total{link="opa-1"}'; }

wait_stored $((MO_COUNT / 3)) 60
standby_stop immediate
note "STANDBY KILLED with $(stored_count) MOs stored"
# The commits in flight at the kill may still be confirmed by the dying walsender; from
# 3 s on, nothing may be acknowledged.
sleep 3
acked_start=$(accepted)
ready_seen=""
for _ in $(seq 1 $(( (FAULTS_STANDBY_DOWN_S - 3) * 5 ))); do
  body=$(readyz_body)
  case "$body" in *"cannot confirm writes"*) ready_seen=yes ;; esac
  sleep 0.2
done
acked_end=$(accepted)
held=$(metric 'donagate_ingest_in_doubt_mos')
note "standby down ${FAULTS_STANDBY_DOWN_S} s: acknowledged ${acked_start} -> ${acked_end}, held in doubt ${held:-?}"
[ "${acked_start%.*}" = "${acked_end%.*}" ] || fail "MOs acknowledged while no standby could confirm their commit: ${acked_start} -> ${acked_end}"
[ -n "$ready_seen" ] || fail "/readyz never said the database cannot confirm writes: $(readyz_body)"
standby_start
note "standby back"
after=$(stored_count); wait_stored $((after + 100)) 60
note "traffic resumed: $(stored_count) stored"

faults_wait_smsc 150
faults_wait_final 60
# The standby has caught up with everything the primary has.
lsn=$(q "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 100); do
  [ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && break; sleep 0.1
done
canceled=$(grep -c 'commit not confirmed by a synchronous standby' "$WORK/daemon.log" || true)
FAULTS_SUMMARY_EXTRA="standby_down_s=$FAULTS_STANDBY_DOWN_S unreplicated_commit_lines=$canceled"
faults_verify
# Every acknowledged MO is also on the standby (what a failover now would keep).
if [ "$FAULTS_MO_ID_TLV" = 1 ]; then
  psql "$SB_DB" -XAtqc "SELECT smsc_mo_id FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery')" | sort >"$WORK/standby.ids"
else
  psql "$SB_DB" -XAtqc "SELECT source_addr FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery')" | sort >"$WORK/standby.ids"
fi
missing=$(comm -23 "$WORK/acked.ids" "$WORK/standby.ids" | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged MOs are not on the standby"
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || fail "no temporary SMPP error was answered while the standby was down"
echo "PASS: standby down ${FAULTS_STANDBY_DOWN_S} s: nothing acknowledged unreplicated, traffic resumed, every acked MO on both"
