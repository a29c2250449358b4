#!/usr/bin/env bash
# Fault 9 (high availability): the PostgreSQL primary dies under load and its synchronous
# standby is promoted. Two PostgreSQL 15 clusters on loopback: the primary and a streaming
# standby (pg_basebackup -R), synchronous_standby_names = 'standby1', synchronous_commit = on.
# donagated connects with a multi-host conninfo (host=127.0.0.1,127.0.0.1 port=P,S
# target_session_attrs=read-write). At 40 % of the load the primary is killed (-m immediate:
# a power cut); FAULTS_PROMOTE_DELAY_S later (default 2: Patroni's detection, here a fixed
# wait) the standby is promoted with pg_ctl promote. Proves: the daemon finds the new primary
# by itself (reconnects with backoff, /readyz 503 meanwhile, temporary errors to the SMSC, its
# log and /status and donagate_db_server_info name the new server), every MO the SMSC saw
# acknowledged — before and after — is on the new primary (synchronous replication: nothing
# acknowledged is lost), no key is debited twice, the ledger balances, every donation is final.
# Prints the RTO: seconds from the primary's death to the first MO committed (and so
# acknowledged) on the new primary. Load: FAULTS_FAILOVER_MESSAGES (default 3000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FAULTS_PROMOTE_DELAY_S=${FAULTS_PROMOTE_DELAY_S:-2}
faults_setup pg_failover
faults_start_standby
faults_sync_replication
# The store's standby check against this real hot standby (store_test StoreStandbyTest).
STORE_TEST=$FAULTS_BIN/tests/billing_store_store_test
if [ -x "$STORE_TEST" ]; then
  DONAGATE_TEST_PG_STANDBY=$SB_DB "$STORE_TEST" --gtest_filter='StoreStandbyTest.*' >"$WORK/store_standby_test.log" 2>&1 \
    || fail "StoreStandbyTest against the standby: $(grep -E 'Failure|Expected|Which is' "$WORK/store_standby_test.log" | head -5)"
  grep -q '\[  PASSED  \] 1 test' "$WORK/store_standby_test.log" || fail "StoreStandbyTest did not run: $(tail -n 3 "$WORK/store_standby_test.log")"
  note "a connection to the standby is refused (StoreStandbyTest passed)"
else
  note "note: $STORE_TEST not built; the standby refusal is not checked here"
fi
faults_gen_mos "${FAULTS_FAILOVER_MESSAGES:-3000}"
faults_start_charging
FAULTS_MO_RATE=${FAULTS_MO_RATE:-400} faults_start_smsc
faults_write_config
FAULTS_DATABASE_URL="host=127.0.0.1,127.0.0.1 port=$PGPORT_TEST,$SB_PORT user=postgres dbname=faults target_session_attrs=read-write"
faults_start_daemon

readyz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null || true; }
status_db() { curl -s "http://127.0.0.1:$HTTP_PORT/status" 2>/dev/null | jq -r '.database | "\(.host):\(.port) \(.role)"' 2>/dev/null || true; }

wait_stored $((MO_COUNT * 2 / 5)) 60
before_db=$(status_db)
[ "$before_db" = "127.0.0.1:$PGPORT_TEST primary" ] || fail "/status database before the failover: '$before_db'"
acked_before=$(metric 'donagate_mo_accepted_total{link="opa-1"}')
stored_before=$(stored_count)
t_kill=$(date +%s.%N)
pg_restart_stop immediate
note "PRIMARY KILLED (-m immediate) with $stored_before MOs stored, ${acked_before:-?} acked"

# Between the death and the promotion nothing can be written anywhere.
ready_down=""
while awk -v a="$t_kill" -v b="$(date +%s.%N)" -v d="$FAULTS_PROMOTE_DELAY_S" 'BEGIN { exit !(b - a < d) }'; do
  r=$(readyz); [ "$r" = 503 ] && ready_down=503; sleep 0.1
done
[ "$ready_down" = 503 ] || fail "/readyz never said 503 between the primary's death and the promotion"
DB=$SB_DB   # every check from here on reads the new primary
standby_promote
t_promoted=$(date +%s.%N)
note "standby promoted ($(awk -v a="$t_kill" -v b="$t_promoted" 'BEGIN { printf "%.1f", b - a }') s after the kill)"

# RTO: the first MO committed on the new primary after the death (polled every 50 ms).
first=""
for _ in $(seq 1 1200); do
  n=$(q "SELECT count(*) FROM inbound_message WHERE stored_at > to_timestamp($t_kill)")
  if [ "${n:-0}" -gt 0 ]; then first=$(date +%s.%N); break; fi
  sleep 0.05
done
[ -n "$first" ] || fail "no MO stored on the new primary within 60 s of the promotion"
RTO=$(awk -v a="$t_kill" -v b="$first" 'BEGIN { printf "%.1f", b - a }')
AFTER_PROMOTION=$(awk -v a="$t_promoted" -v b="$first" 'BEGIN { printf "%.1f", b - a }')
note "first MO committed on the new primary ${RTO} s after the primary died (${AFTER_PROMOTION} s after the promotion)"

faults_wait_smsc 120
faults_wait_final 60
after_db=$(status_db)
db_info=$(metric "donagate_db_server_info{host=\"127.0.0.1\",port=\"$SB_PORT\",role=\"primary\"}")
old_info=$(metric "donagate_db_server_info{host=\"127.0.0.1\",port=\"$PGPORT_TEST\"")
changed=$(grep -c "event=db_server_changed .*port=\"\?$SB_PORT" "$WORK/daemon.log" || true)
FAULTS_SUMMARY_EXTRA="rto_s=$RTO after_promotion_s=$AFTER_PROMOTION promote_delay_s=$FAULTS_PROMOTE_DELAY_S stored_at_kill=$stored_before"
faults_verify
[ "$after_db" = "127.0.0.1:$SB_PORT primary" ] || fail "/status database after the failover: '$after_db' (want 127.0.0.1:$SB_PORT primary)"
[ "$db_info" = 1 ] || fail "donagate_db_server_info does not name the new primary (got '${db_info}')"
[ -z "$old_info" ] || fail "donagate_db_server_info still has a series for the dead primary"
[ "$changed" -gt 0 ] || fail "the daemon log never says it moved to the new primary (event=db_server_changed)"
[ "$FAULTS_TEMP_ERRORS" -gt 0 ] || note "note: no temporary error was needed (the kill landed between batches)"
awk -v r="$RTO" 'BEGIN { exit !(r < 30) }' || fail "RTO ${RTO} s (want < 30 s with a ${FAULTS_PROMOTE_DELAY_S} s promotion)"
grep -m1 "event=db_server_changed" "$WORK/daemon.log" | cut -c1-300
echo "RTO: ${RTO} s from the primary's death to the first acknowledged MO on the new primary (promoted after ${FAULTS_PROMOTE_DELAY_S} s; ${AFTER_PROMOTION} s from the promotion)"
echo "PASS: primary killed, standby promoted, every acknowledged MO on the new primary"
