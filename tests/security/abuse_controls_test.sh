#!/usr/bin/env bash
# Fraud and abuse controls through the real daemon, end to end:
#  - blocklist ([pipeline] blocklist_file): MOs from listed MSISDNs (any input format) are
#    acknowledged and recorded with outcome "blocked", never charged;
#  - per-subscriber daily cap (max_units_per_day_per_msisdn = 5): three "CV 3" from one
#    subscriber → one charged, the two that would exceed the cap recorded and not charged;
#  - global kill switch: the daemon starts with charging paused (start_charging_paused): MOs are
#    received, acknowledged and recorded as donations, nothing reaches the charging backend
#    (its debit log stays empty, donagate_charging_paused = 1); an admin "resume" charges them all.
set -euo pipefail
source "$(dirname "$0")/../faults/lib.sh"

faults_setup abuse
ADMIN_TOKEN='abuse-admin-token-1'
printf '%s\n' "$ADMIN_TOKEN" >"$WORK/admin-token"
cat >"$WORK/blocklist.txt" <<'B'
# fraud ring reported by the operator
84916000011
0916000012
B
MO_FILE=$WORK/mos.txt
{
  for i in 1 2 3 4 5 6; do echo "8491600010$i,1407,CV $((i < 6 ? i : 5))"; done  # ordinary donors: 20 units
  echo "84916000011,1407,CV 5"; echo "84916000012,1407,CV 1"; echo "84916000011,1407,CV 2"  # blocked
  echo "84916000020,1407,CV 3"; echo "84916000020,1407,CV 3"; echo "84916000020,1407,CV 3"  # cap 5
} >"$MO_FILE"
MO_COUNT=$(grep -c . "$MO_FILE")
faults_start_charging
faults_start_smsc
faults_write_config "[admin]
enabled = true
listen = \"127.0.0.1:$ADMIN_PORT\"
token_file = \"admin-token\""
# The campaign's cap and the pipeline's controls.
sed -i 's/^max_units_per_day_per_msisdn = 0/max_units_per_day_per_msisdn = 5/' "$WORK/donagate.toml"
sed -i "s|^poll_interval_ms = 50|poll_interval_ms = 50\nblocklist_file = \"blocklist.txt\"\nstart_charging_paused = true|" "$WORK/donagate.toml"
faults_start_daemon
faults_wait_smsc 60
[ "$(jq .mo_acked "$WORK/report.json")" = "$MO_COUNT" ] || fail "not every MO acknowledged while charging was paused"

# Paused: recorded, not charged.
sleep 2
paused=$(metric donagate_charging_paused)
received=$(q "SELECT count(*) FROM donation WHERE state = 'received'")
charges=$(q "SELECT count(*) FROM charge")
debits=$(curl -s "http://127.0.0.1:$CHARGING_PORT/v1/debits" | jq '.debits | length')
note "paused: donagate_charging_paused=$paused donations received=$received charge rows=$charges backend debits=$debits"
[ "$paused" = 1 ] || fail "donagate_charging_paused is '$paused' while paused"
[ "$charges" = 0 ] && [ "$debits" = 0 ] || fail "charged while paused ($charges charge rows, $debits debits)"
[ "$received" -ge 9 ] || fail "only $received donations recorded while paused (want the 9 not blocked)"

answer=$(curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$ADMIN_PORT/admin/charging/resume")
echo "$answer" | grep -q '"ok":true' || fail "resume refused: $answer"
faults_wait_final 30
[ "$(metric donagate_charging_paused)" = 0 ] || fail "donagate_charging_paused still set after resume"

# Blocklist: recorded as blocked, no donation charged for those numbers.
blocked=$(q "SELECT count(*) FROM inbound_message WHERE outcome = 'blocked'")
blocked_charged=$(q "SELECT count(*) FROM charge c JOIN donation d ON d.id = c.donation_id
                     WHERE d.msisdn IN ('84916000011','84916000012') AND c.outcome = 'charged'")
[ "$blocked" = 3 ] || fail "$blocked MOs recorded as blocked, want 3 ($(q "SELECT source_addr||':'||outcome FROM inbound_message WHERE source_addr LIKE '849160000%'" | paste -sd' '))"
[ "$blocked_charged" = 0 ] || fail "$blocked_charged charges for blocklisted numbers"
# Daily cap: one CV 3 charged, two refused, nothing charged beyond 5 units.
cap_units=$(q "SELECT coalesce(sum(charged_units),0) FROM donation WHERE msisdn = '84916000020'")
cap_refused=$(q "SELECT count(*) FROM inbound_message m LEFT JOIN donation d ON d.inbound_message_id = m.id
                 WHERE m.source_addr = '84916000020' AND (m.outcome = 'daily_cap' OR d.over_daily_cap OR d.failure_reason LIKE '%cap%')")
[ "$cap_units" = 3 ] || fail "subscriber over the cap was charged $cap_units units (want 3 of the 5 allowed)"
[ "$cap_refused" = 2 ] || fail "$cap_refused MOs refused by the daily cap, want 2"
# Ordinary donors: all charged after resume; money invariants.
donors=$(q "SELECT coalesce(sum(charged_amount_vnd),0) FROM donation WHERE msisdn LIKE '849160001%'")
[ "$donors" = 400000 ] || fail "ordinary donors charged $donors VND, want 400000"
VALID=$(q "SELECT count(*) FROM donation"); EXPECTED_VND=460000
FAULTS_SUMMARY_EXTRA="blocked=$blocked cap_refused=$cap_refused paused_charges=$charges"
FAULTS_EXPECT_ALL_CHARGED=0 faults_verify
[ "$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction='debit'")" = 460000 ] || fail "ledger total is not 460000"
echo "PASS: blocklist, daily cap and kill switch hold end to end"
