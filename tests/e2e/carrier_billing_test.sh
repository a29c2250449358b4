#!/usr/bin/env bash
# Carrier Billing end to end: the real donagated charges 1,000 donations through
# backend = "carrier_billing" against tools/charging_sim --dialect carrier_billing (CAMARA
# Carrier Billing, OAuth 2.0 client credentials), while
#  - 5% of createPayment answers are lost after the payment was made and 2% arrive only after
#    our timeout (unknown → retrieval by clientCorrelator; the simulator refuses a replayed
#    clientCorrelator, so a second payment attempt cannot hide a missing resolution),
#  - access tokens live 3 s, so they expire (and are refreshed) many times during the run,
#  - mid-run the simulator forgets every token (401 → one refresh → the request repeated).
# Then the money invariants of tests/faults/lib.sh: every valid MO charged, no key debited twice,
# and the PostgreSQL ledger equal to the simulator's debit log to the đồng.
# CB_TWO_STEP=1 (carrier_billing_two_step_test.sh): the same with two_step = true, where lost
# answers hit preparePayment and confirmPayment and retrieval finds payments still reserved.
set -euo pipefail
CB_TWO_STEP=${CB_TWO_STEP:-0}
FAULTS_TIMEOUT=${FAULTS_TIMEOUT:-90}
source "$(dirname "$0")/../faults/lib.sh"

faults_setup "carrier_billing$([ "$CB_TWO_STEP" = 1 ] && echo _two_step)_e2e"
faults_gen_mos 1111   # 1,000 valid donations
[ "$VALID" = 1000 ] || fail "generator made $VALID valid MOs, want 1000"
export CB_CLIENT_SECRET="e2e-secret"
faults_start_charging --dialect carrier_billing --client-id donagate-e2e --client-secret "$CB_CLIENT_SECRET" \
  --token-lifetime-s 3 --seed 11
cb_stat() { curl -sf --noproxy '*' "http://127.0.0.1:$CHARGING_PORT/v1/admin/stats" | jq -r "$1"; }

FAULTS_MO_RATE=${FAULTS_MO_RATE:-120} faults_start_smsc
faults_write_config
# The [[charging]] entry of lib.sh is http; make it Carrier Billing (timeout_ms stays 1000).
sed -i -e 's|^backend = "http"|backend = "carrier_billing"|' \
  -e "s|^url = \".*\"|url = \"http://127.0.0.1:$CHARGING_PORT/carrier-billing/v0.4\"\ntoken_url = \"http://127.0.0.1:$CHARGING_PORT/oauth/token\"\nclient_id = \"donagate-e2e\"\nclient_secret_env = \"CB_CLIENT_SECRET\"\nscope = \"carrier-billing:payments:create carrier-billing:payments:read\"\nmerchant_identifier = \"quy-mien-trung\"|" \
  "$WORK/donagate.toml"
grep -q 'backend = "carrier_billing"' "$WORK/donagate.toml" || fail "config rewrite failed"
[ "$CB_TWO_STEP" = 1 ] && sed -i 's|^backend = "carrier_billing"|&\ntwo_step = true|' "$WORK/donagate.toml"

# donagatectl charging-check: a token and a not-found retrieval, nobody charged.
CTL=$FAULTS_BIN/tools/donagatectl/donagatectl
ctl_env() { FAULTS_SMSC_PASSWORD=$FAULTS_SMSC_PASSWORD FAULTS_DATABASE_URL=$DB "$@"; }
check_out=$(ctl_env "$CTL" --config "$WORK/donagate.toml" charging-check --operator opa) || fail "charging-check failed: $check_out"
echo "$check_out" | grep -q "^OK: token granted" || fail "charging-check output: $check_out"
[ "$(cb_stat .payments)" = 0 ] || fail "charging-check created a payment"
if bad_out=$(CB_CLIENT_SECRET=wrong ctl_env "$CTL" --config "$WORK/donagate.toml" charging-check --operator opa); then
  fail "charging-check succeeded with a wrong client secret: $bad_out"
fi
echo "$bad_out" | grep -q "invalid_client" || fail "charging-check with a wrong secret said: $bad_out"
note "charging-check ok"

charging_admin '{"lost_response_rate": 0.05, "timeout_rate": 0.02, "timeout_delay_ms": 1500}'
faults_start_daemon
wait_stored 400 40
charging_admin '{"revoke_tokens": true}'
note "tokens revoked with $(cb_stat .payments) payments"

faults_wait_smsc 45
faults_wait_final 30
tokens=$(cb_stat .tokens_issued)
replays=$(cb_stat .replays_refused)
unauthorized=$(cb_stat .unauthorized)
payments=$(cb_stat .payments)
[ "$tokens" -ge 4 ] || fail "only $tokens tokens issued: expiry was not exercised"
[ "$unauthorized" -ge 1 ] || fail "the revocation produced no 401: the refresh-on-401 path was not exercised"
lost=$(cb_stat .responses_lost)
late=$(cb_stat .responses_late)
[ "$lost" -gt 0 ] || fail "no answer was lost: the test proves nothing"
# The daemon's own view of the same run, as ops would see it on /metrics.
cb_metric() { metric "donagate_carrier_billing_$1{operator=\"opa\"}"; }
m_tokens=$(cb_metric token_requests_total); m_401=$(cb_metric token_refreshes_on_401_total)
m_retrievals=$(cb_metric retrievals_total); m_token_failures=$(cb_metric token_failures_total)
[ -n "$m_tokens" ] && [ "${m_tokens%.*}" -ge 4 ] || fail "token_requests_total is '$m_tokens': token expiry not seen by the daemon"
[ -n "$m_401" ] && [ "${m_401%.*}" -ge 1 ] || fail "token_refreshes_on_401_total is '$m_401' after the revocation"
[ -n "$m_retrievals" ] && [ "${m_retrievals%.*}" -ge 1 ] || fail "retrievals_total is '$m_retrievals' with $lost answers lost"
[ "${m_token_failures%.*}" = 0 ] || fail "token_failures_total is '$m_token_failures' on a healthy token endpoint"
FAULTS_SUMMARY_EXTRA="payments=$payments lost=$lost late=$late tokens_issued=$tokens replays_refused=$replays unauthorized=$unauthorized"
faults_verify
echo "PASS: 1,000 donations over CAMARA Carrier Billing$([ "$CB_TWO_STEP" = 1 ] && echo ' (two-step)'), ledger = simulator debit log, nothing charged twice"
