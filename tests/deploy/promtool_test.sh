#!/usr/bin/env bash
# Checks deploy/prometheus with promtool (Debian package `prometheus`): the configuration and
# the alert rules are valid, and the alerts fire on the situations they describe and stay
# quiet otherwise (promtool unit tests below, with synthetic series).
set -euo pipefail
SRC="${DONAGATE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
if [[ -z "$PROMTOOL" ]]; then
  echo "promtool not found (apt-get install prometheus)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PROMTOOL" check rules "$SRC/deploy/prometheus/alerts.yml"
# check config resolves rule_files relative to the config file, so it checks alerts.yml again.
"$PROMTOOL" check config "$SRC/deploy/prometheus/prometheus.yml"

# Alert unit tests. Series carry the labels Prometheus adds when scraping (instance, job).
# Besides each alert firing, they pin the cases that must NOT fire: a bound link, MO arriving,
# no link bound, subscribers' own refusals (insufficient_funds) counted as failures, unknown
# charges younger than 30 minutes.
sed "s|@ALERTS@|$SRC/deploy/prometheus/alerts.yml|" > "$work/alerts_test.yml" <<'YAML'
rule_files:
- '@ALERTS@'
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opa"}
    values: 1 0 0 0 0
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opb"}
    values: 1 1 1 1 1
  alert_rule_test:
  - eval_time: 1m
    alertname: DonagateLinkDown
    exp_alerts: []
  - eval_time: 3m
    alertname: DonagateLinkDown
    exp_alerts:
    - exp_labels:
        severity: page
        instance: d:9464
        job: donagate
        link: opa
      exp_annotations:
        summary: SMPP link opa on d:9464 is not bound
        description: Link opa has not been able to transmit for over a minute. MO for this operator are queued at the SMSC (not lost) until it binds again; replies wait in the outbox.
        runbook_url: docs/operations.md#donagatelinkdown
- interval: 1m
  input_series:
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opa"}
    values: 1x60
  - series: donagate_mo_received_total{instance="d:9464",job="donagate",link="opa"}
    values: 5x60
  alert_rule_test:
  - eval_time: 45m
    alertname: DonagateNoMoWhileLinksUp
    exp_alerts:
    - exp_labels:
        severity: warn
        instance: d:9464
      exp_annotations:
        description: 'Links report bound but nothing arrives: the SMSC may have stopped routing the shortcode to us, or a receiver bind is missing. Normal at night for small campaigns; tune the window.'
        runbook_url: docs/operations.md#donagatenomowhilelinksup
        summary: No MO received for 30 minutes on d:9464 although links are bound
- interval: 1m
  input_series:
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opa"}
    values: 1x60
  alert_rule_test:
  - eval_time: 45m
    alertname: DonagateNoMoWhileLinksUp
    exp_alerts:
    - exp_labels:
        severity: warn
        instance: d:9464
      exp_annotations:
        description: 'Links report bound but nothing arrives: the SMSC may have stopped routing the shortcode to us, or a receiver bind is missing. Normal at night for small campaigns; tune the window.'
        runbook_url: docs/operations.md#donagatenomowhilelinksup
        summary: No MO received for 30 minutes on d:9464 although links are bound
- interval: 1m
  input_series:
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opa"}
    values: 1x60
  - series: donagate_mo_received_total{instance="d:9464",job="donagate",link="opa"}
    values: 0+1x60
  alert_rule_test:
  - eval_time: 45m
    alertname: DonagateNoMoWhileLinksUp
    exp_alerts: []
- interval: 1m
  input_series:
  - series: donagate_link_up{instance="d:9464",job="donagate",link="opa"}
    values: '0x60'
  - series: donagate_mo_received_total{instance="d:9464",job="donagate",link="opa"}
    values: 5x60
  alert_rule_test:
  - eval_time: 45m
    alertname: DonagateNoMoWhileLinksUp
    exp_alerts: []
- interval: 1m
  input_series:
  - series: donagate_ack_latency_seconds_bucket{instance="d:9464",job="donagate",le="0.25"}
    values: '0x30'
  - series: donagate_ack_latency_seconds_bucket{instance="d:9464",job="donagate",le="0.5"}
    values: '0x30'
  - series: donagate_ack_latency_seconds_bucket{instance="d:9464",job="donagate",le="1"}
    values: 0+60x30
  - series: donagate_ack_latency_seconds_bucket{instance="d:9464",job="donagate",le="+Inf"}
    values: 0+60x30
  - series: donagate_charging_requests_total{instance="d:9464",job="donagate",backend="opa",outcome="charged"}
    values: 0+60x30
  - series: donagate_charging_requests_total{instance="d:9464",job="donagate",backend="opa",outcome="insufficient_funds"}
    values: 0+600x30
  - series: donagate_charging_requests_total{instance="d:9464",job="donagate",backend="opa",outcome="unknown"}
    values: 0+30x30
  - series: donagate_charging_requests_total{instance="d:9464",job="donagate",backend="opb",outcome="charged"}
    values: 0+60x30
  - series: donagate_charging_requests_total{instance="d:9464",job="donagate",backend="opb",outcome="unavailable"}
    values: 0+60x30
  - series: donagate_store_errors_total{instance="d:9464",job="donagate",kind="transient"}
    values: 0 0 0 0 0 0 0 0 0 0 5 10 15 20 25 30
  - series: donagate_outbox_backlog{instance="d:9464",job="donagate"}
    values: 0+100x60
  - series: donagate_charges_unknown_outstanding{instance="d:9464",job="donagate"}
    values: 3x60
  alert_rule_test:
  - eval_time: 20m
    alertname: DonagateAckLatencyHigh
    exp_alerts:
    - exp_labels:
        severity: page
        instance: d:9464
      exp_annotations:
        description: MOs are acknowledged only after the database commit; slow acks mean slow commits or a saturated daemon. Above the SMSC's response timeout the SMSC resends, multiplying load.
        runbook_url: docs/operations.md#donagateacklatencyhigh
        summary: deliver_sm p99 acknowledgement latency is 995ms on d:9464
  - eval_time: 20m
    alertname: DonagateChargingFailureRatioHigh
    exp_alerts:
    - exp_labels:
        severity: page
        instance: d:9464
        backend: opb
      exp_annotations:
        description: Donations are waiting (deferred) or in unknown state; none is charged twice. Check the backend's health and our credentials, and the breaker state.
        runbook_url: docs/operations.md#donagatechargingfailureratiohigh
        summary: 50% of charging requests to opb fail
  - eval_time: 15m
    alertname: DonagateDatabaseErrors
    exp_alerts:
    - exp_labels:
        severity: page
        instance: d:9464
        kind: transient
      exp_annotations:
        description: 'Transient: the database is unreachable, restarting, read-only or full; MOs get temporary errors and are redelivered. Permanent: a schema or code problem that retrying cannot fix.'
        runbook_url: docs/operations.md#donagatedatabaseerrors
        summary: Database errors (transient) on d:9464
  - eval_time: 40m
    alertname: DonagateOutboxBacklogGrowing
    exp_alerts:
    - exp_labels:
        severity: warn
        instance: d:9464
        job: donagate
      exp_annotations:
        description: 'Replies are produced faster than the SMSC accepts them: throttling, a down transmitter link, or tps set too low.'
        runbook_url: docs/operations.md#donagateoutboxbackloggrowing
        summary: 4000 replies waiting in the outbox and the backlog keeps growing
  - eval_time: 29m
    alertname: DonagateUnknownChargesOutstanding
    exp_alerts: []
  - eval_time: 40m
    alertname: DonagateUnknownChargesOutstanding
    exp_alerts:
    - exp_labels:
        severity: warn
        instance: d:9464
        job: donagate
      exp_annotations:
        description: The daemon asks the backend for their status until it answers. They stay unknown while the backend cannot say; finance must not settle them by hand before it does.
        runbook_url: docs/operations.md#donagateunknownchargesoutstanding
        summary: 3 charges with unknown outcome unresolved for 30 minutes on d:9464
- interval: 1m
  input_series:
  - series: donagate_db_connects_total{instance="d:9464",job="donagate",result="standby_refused"}
    values: 0 0 0 1 2 3 4 5 6 7 8 9 10 10 10 10 10 10 10 10 10 10 10 10 10
  - series: donagate_db_connects_total{instance="e:9464",job="donagate",result="primary"}
    values: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
  - series: donagate_donations_taken_over_total{instance="d:9464",job="donagate"}
    values: 0 0 0 0 0 0 0 0 0 0 192 192 192 192 192 192 192 192 192 192 192 192 192 192 192
  alert_rule_test:
  # One refused connection is a blip (a failover in progress); refusals for 2 minutes page.
  - eval_time: 4m
    alertname: DonagateDatabaseStandbyRefused
    exp_alerts: []
  - eval_time: 7m
    alertname: DonagateDatabaseStandbyRefused
    exp_alerts:
    - exp_labels:
        severity: page
        instance: d:9464
      exp_annotations:
        summary: d:9464 keeps reaching a PostgreSQL standby and refusing it
        description: 'Its connection string leads to a server in recovery (read-only). It never writes there; MOs get temporary errors until a connection reaches the primary: after a failover, the conninfo or the proxy in front of PostgreSQL still points at the old primary.'
        runbook_url: docs/operations.md#donagatedatabasestandbyrefused
  # Refusals stopped (a connection reached the primary): quiet again once out of the window.
  - eval_time: 24m
    alertname: DonagateDatabaseStandbyRefused
    exp_alerts: []
  - eval_time: 9m
    alertname: DonagateInstanceTakeover
    exp_alerts: []
  - eval_time: 12m
    alertname: DonagateInstanceTakeover
    exp_alerts:
    - exp_labels:
        severity: warn
        instance: d:9464
      exp_annotations:
        summary: d:9464 took over 192 donations of another instance
        description: Another donagated on this database died or stalled past its lease; this instance claimed its unfinished donations and resumes them with the same idempotency keys. The money is safe; find out why the other instance stopped.
        runbook_url: docs/operations.md#donagateinstancetakeover
  - eval_time: 24m
    alertname: DonagateInstanceTakeover
    exp_alerts: []
YAML
"$PROMTOOL" test rules "$work/alerts_test.yml"

# Every dashboard query must be valid PromQL: wrap each (Grafana variables replaced by
# concrete values) in a recording rule and let promtool parse them.
node - "$SRC/deploy/grafana/donagate-dashboard.json" > "$work/dashboard_rules.yml" <<'JS'
const fs = require('fs');
const dashboard = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const exprs = [];
(function walk(node) {
  if (Array.isArray(node)) return node.forEach(walk);
  if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'expr' && typeof value === 'string') exprs.push(value);
      else walk(value);
    }
  }
})(dashboard);
if (exprs.length === 0) { console.error('no queries found in the dashboard'); process.exit(1); }
const concrete = (e) => e.replace(/\$__rate_interval/g, '1m').replace(/\$__range/g, '6h')
                         .replace(/\$(instance|campaign|operator)/g, '.*');
console.log('groups:\n  - name: dashboard_queries\n    rules:');
exprs.forEach((e, i) => {
  console.log(`      - record: dashboard_query_${i}`);
  console.log(`        expr: ${JSON.stringify(concrete(e))}`);
});
JS
"$PROMTOOL" check rules "$work/dashboard_rules.yml"
echo "promtool: config, rules and alert unit tests pass"
