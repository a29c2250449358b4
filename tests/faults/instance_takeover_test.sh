#!/usr/bin/env bash
# Fault 11 (scale-out, high availability of the daemon): two donagated instances on ONE
# database, each with its own SMPP link (opa-a, opa-b: two SMSC connections of the same
# operator) and its own instance_id. The charging backend is slow (FAULTS_CHARGE_LATENCY_MS,
# default 800), so instance A always has charges in flight; A is SIGKILLed mid-charging and
# NOT restarted. Proves: instance B takes over A's unfinished donations once their leases
# expire (charge_lease_s = 5) — the ones A was charging are resumed with the same keys, Status
# first — and sends their replies through its own link; no key is debited twice, every
# donation is final, the ledger balances and equals the backend's debit log, every MO either
# SMSC saw acknowledged is stored, nothing is left open (donations, replies); and B says so:
# `event=takeover from_instance=... donations=N mid_charge=M` in its log and
# donagate_donations_taken_over_total > 0. Runs once (no MO-id TLV: every MO from its own
# subscriber, so "charged twice" is checked per subscriber). Load: 2 x FAULTS_TAKEOVER_MESSAGES
# (default 400).
# faults: one mode
set -euo pipefail
FAULTS_MO_ID_TLV=0
source "$(dirname "$0")/lib.sh"

N=${FAULTS_TAKEOVER_MESSAGES:-400}
LATENCY=${FAULTS_CHARGE_LATENCY_MS:-800}
faults_setup instance_takeover
pick_port SMSC_B_PORT; pick_port HTTP_B_PORT

# Two MO files, disjoint subscribers (A: 84916000000.., B: 84916050000..), all valid "CV n".
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "849160%05d,1407,CV %d\n", i, 1 + i % 3 }' >"$WORK/mos_a.txt"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "849160%05d,1407,CV %d\n", 50000 + i, 1 + i % 3 }' >"$WORK/mos_b.txt"

"$CHARGING_SIM" --listen "127.0.0.1:$CHARGING_PORT" --default-balance 100000000000 \
  --latency-ms "$LATENCY" --debit-log "$WORK/debits.csv" >>"$WORK/charging_sim.log" 2>&1 &
CHARGING_PID=$!; FAULTS_PIDS+=("$CHARGING_PID")
for _ in $(seq 1 100); do grep -q listening "$WORK/charging_sim.log" 2>/dev/null && break; sleep 0.05; done

start_smsc() { # start_smsc PORT MO_FILE REPORT LOG -> pid in SMSC_STARTED
  "$SMSC_SIM" --listen "127.0.0.1:$1" --system-id donagate --password "$FAULTS_SMSC_PASSWORD" \
    --mo-file "$2" --mo-rate 150 --window 20 --response-timeout-ms 3000 \
    --redeliver-unacked --redeliver-delay-ms 300 --receipts --receipt-delay-ms 50 \
    --duration 170 --report "$3" >>"$4" 2>&1 &
  SMSC_STARTED=$!; FAULTS_PIDS+=("$SMSC_STARTED")
  for _ in $(seq 1 100); do ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0; sleep 0.05; done
  fail "smsc_sim on $1 did not start"
}
start_smsc "$SMSC_PORT" "$WORK/mos_a.txt" "$WORK/report_a.json" "$WORK/smsc_a.log"; SMSC_A_PID=$SMSC_STARTED
start_smsc "$SMSC_B_PORT" "$WORK/mos_b.txt" "$WORK/report_b.json" "$WORK/smsc_b.log"; SMSC_B_PID=$SMSC_STARTED

# One configuration per instance: its own link, instance_id and HTTP port; the same database
# and charging backend.
faults_write_config
sed -e 's/^name = "opa-1"/name = "opa-a"/' -e "s/^instance_id = .*/instance_id = \"takeover-a\"/" \
  "$WORK/donagate.toml" >"$WORK/a.toml"
sed -e 's/^name = "opa-1"/name = "opa-b"/' -e "s/^instance_id = .*/instance_id = \"takeover-b\"/" \
  -e "s/^port = $SMSC_PORT\$/port = $SMSC_B_PORT/" -e "s/127.0.0.1:$HTTP_PORT\"/127.0.0.1:$HTTP_B_PORT\"/" \
  "$WORK/donagate.toml" >"$WORK/b.toml"
start_daemon() { # start_daemon CONFIG LOG HTTP_PORT -> pid in DAEMON_STARTED
  FAULTS_SMSC_PASSWORD=$FAULTS_SMSC_PASSWORD FAULTS_DATABASE_URL=$DB \
    "$DONAGATED" --config "$1" >>"$2" 2>&1 &
  DAEMON_STARTED=$!; FAULTS_PIDS+=("$DAEMON_STARTED")
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$3/healthz" 2>/dev/null && return 0
    kill -0 "$DAEMON_STARTED" 2>/dev/null || fail "donagated ($1) exited at start: $(tail -n 2 "$2")"
    sleep 0.1
  done
}
start_daemon "$WORK/a.toml" "$WORK/daemon_a.log" "$HTTP_PORT"; A_PID=$DAEMON_STARTED
start_daemon "$WORK/b.toml" "$WORK/daemon_b.log" "$HTTP_B_PORT"; B_PID=$DAEMON_STARTED
ln -sf daemon_b.log "$WORK/daemon.log"   # what the cleanup trap shows on failure

# Kill A once it is busy charging: a third of its MOs stored and charges of its own in flight.
in_flight_a() { q "SELECT count(*) FROM donation WHERE state = 'charging' AND lease_owner = 'takeover-a'"; }
deadline=$((SECONDS + 60))
while :; do
  stored_a=$(q "SELECT count(*) FROM inbound_message WHERE link = 'opa-a'")
  flying=$(in_flight_a)
  [ "${stored_a:-0}" -ge $((N / 3)) ] && [ "${flying:-0}" -ge 5 ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "instance A never had charges in flight (stored ${stored_a:-?}, charging ${flying:-?})"
  sleep 0.1
done
kill -KILL "$A_PID"; wait "$A_PID" 2>/dev/null || true
orphans=$(q "SELECT count(*) FROM donation WHERE final_at IS NULL AND lease_owner = 'takeover-a'")
note "instance A SIGKILLed with $stored_a MOs of its link stored, $flying charging, $orphans unfinished under its lease"
[ "${orphans:-0}" -gt 0 ] || fail "nothing was left unfinished by A (the kill came too late to test a takeover)"
# A's SMSC has nobody to talk to now: its report says what A acknowledged before dying.
sleep 1; kill -TERM "$SMSC_A_PID" 2>/dev/null || true; wait "$SMSC_A_PID" 2>/dev/null || true

# B finishes its own load and A's orphans; then every reply (A's too) goes out through B's link.
deadline=$((SECONDS + 120))
while :; do
  open=$(q "SELECT count(*) FROM donation WHERE final_at IS NULL")
  replies_open=$(q "SELECT count(*) FROM outbox WHERE closed_at IS NULL")
  acked_b=$(jq .mo_acked "$WORK/report_b.json" 2>/dev/null || echo 0)
  stored_b=$(q "SELECT count(*) FROM inbound_message WHERE link = 'opa-b' AND outcome NOT IN ('receipt', 'redelivery')")
  [ "$open" = 0 ] && [ "$replies_open" = 0 ] && [ "${stored_b:-0}" -ge "$N" ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "not drained after the takeover: $open donations and $replies_open replies open, B stored ${stored_b:-?}/$N"
  sleep 0.3
done
taken=$(metric_b() { { curl -s "http://127.0.0.1:$HTTP_B_PORT/metrics" 2>/dev/null || true; } |
                     awk -v m="$1" 'index($0, m) == 1 && !found { print $NF; found = 1 }'; }
        metric_b donagate_donations_taken_over_total)
kill -TERM "$B_PID"; rc=0; wait "$B_PID" || rc=$?
[ "$rc" = 0 ] || fail "instance B exited $rc after SIGTERM"
kill -TERM "$SMSC_B_PID" 2>/dev/null || true; wait "$SMSC_B_PID" 2>/dev/null || true
kill -TERM "$CHARGING_PID" 2>/dev/null || true; wait "$CHARGING_PID" 2>/dev/null || true

# ---- the invariants
jq -r '.mos[] | select(.acked) | .source' "$WORK/report_a.json" "$WORK/report_b.json" | sort >"$WORK/acked.ids"
q "SELECT source_addr FROM inbound_message WHERE outcome NOT IN ('receipt', 'redelivery')" | sort >"$WORK/stored.ids"
lost=$(comm -23 "$WORK/acked.ids" "$WORK/stored.ids" | wc -l)
dup_rows=$(( $(wc -l <"$WORK/stored.ids") - $(sort -u "$WORK/stored.ids" | wc -l) ))
twice=$(q "SELECT count(*) FROM (SELECT msisdn FROM donation WHERE charged_amount_vnd > 0 GROUP BY msisdn HAVING count(*) > 1) t")
tail -n +2 "$WORK/debits.csv" | cut -d, -f1 | sort >"$WORK/debited.keys"
dup_keys=$(uniq -d "$WORK/debited.keys" | wc -l)
debit_vnd=$(tail -n +2 "$WORK/debits.csv" | awk -F, '{ s += $3 } END { printf "%.0f", s }')
ledger_debit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction='debit'")
ledger_credit=$(q "SELECT coalesce(sum(amount_vnd),0) FROM ledger_entry WHERE direction='credit'")
charged_vnd=$(q "SELECT coalesce(sum(charged_amount_vnd),0) FROM donation")
unbalanced=$(q "SELECT count(*) FROM (SELECT journal_id FROM ledger_entry GROUP BY journal_id
                HAVING sum(CASE direction WHEN 'debit' THEN amount_vnd ELSE -amount_vnd END) <> 0) j")
q "SELECT charge_key FROM ledger_entry WHERE direction='debit' AND reverses_journal_id IS NULL" | sort >"$WORK/booked.keys"
unbooked=$(comm -23 <(sort -u "$WORK/debited.keys") "$WORK/booked.keys" | wc -l)
failed=$(q "SELECT count(*) FROM donation WHERE state = 'failed'")
finished_by_b=$(q "SELECT count(*) FROM donation d JOIN inbound_message m ON m.id = d.inbound_message_id
                   WHERE m.link = 'opa-a' AND EXISTS (SELECT 1 FROM donation_history t
                     WHERE t.donation_id = d.id AND t.actor = 'takeover-b')")
a_replies=$(q "SELECT count(*) FROM outbox o JOIN donation d ON d.id = o.donation_id JOIN inbound_message m
               ON m.id = d.inbound_message_id WHERE m.link = 'opa-a' AND o.state IN ('submitted','delivered')")
a_donations=$(q "SELECT count(*) FROM donation d JOIN inbound_message m ON m.id = d.inbound_message_id WHERE m.link = 'opa-a'")
takeover_line=$(grep -m1 'event=takeover from_instance="takeover-a"' "$WORK/daemon_b.log" || true)
SUMMARY="instance_takeover: acked=$(wc -l <"$WORK/acked.ids") stored=$(wc -l <"$WORK/stored.ids") orphans_at_kill=$orphans taken_over_metric=${taken:-?} finished_by_b=$finished_by_b a_replies=$a_replies/$a_donations vnd=$ledger_debit debit_log_vnd=$debit_vnd charged_twice=$twice duplicates=$((dup_rows + dup_keys))"
echo "$SUMMARY"
[ -n "${FAULTS_RESULTS:-}" ] && echo "$SUMMARY" >>"$FAULTS_RESULTS"

[ "$lost" = 0 ] || fail "$lost acknowledged MOs are not stored"
[ "$dup_rows" = 0 ] || fail "$dup_rows MOs stored twice"
[ "$twice" = 0 ] || fail "$twice subscribers who sent one MO were charged twice"
[ "$dup_keys" = 0 ] || fail "$dup_keys idempotency keys debited twice by the backend"
[ "$unbooked" = 0 ] || fail "$unbooked debited keys have no ledger journal"
[ "$unbalanced" = 0 ] || fail "$unbalanced journals unbalanced"
[ "$ledger_debit" = "$ledger_credit" ] || fail "ledger debit $ledger_debit <> credit $ledger_credit"
[ "$ledger_debit" = "$debit_vnd" ] || fail "ledger $ledger_debit <> backend debit log $debit_vnd"
[ "$ledger_debit" = "$charged_vnd" ] || fail "ledger $ledger_debit <> donations' charged amounts $charged_vnd"
[ "$failed" = 0 ] || fail "$failed donations failed"
[ "$a_replies" = "$a_donations" ] || fail "only $a_replies of A's $a_donations donations got their reply"
[ "${finished_by_b:-0}" -gt 0 ] || fail "no donation of A's link was finished by B"
[ -n "$takeover_line" ] || fail "B's log has no event=takeover line naming takeover-a"
awk -v t="${taken:-0}" 'BEGIN { exit !(t > 0) }' || fail "donagate_donations_taken_over_total on B is '${taken:-}' (want > 0)"
echo "$takeover_line" | cut -c1-300
echo "PASS: A killed mid-charging; B took over $finished_by_b of its donations after the lease, no double charge"
