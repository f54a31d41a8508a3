#!/usr/bin/env bash
# The ruler's evaluation cost: one tenant holds SERIES series of
# strata-loadgen's logistics workload (5 minutes at 15 s, ending now) and a
# group of six rules of the kinds dashboards and mixins use (per-route and
# per-service rates, an error ratio, a p99 from classic buckets, two
# threshold alerts) evaluated every 10 s. Prints each rule's evaluation time
# (median, min, max over 10 samples of /api/v1/rules, one per iteration),
# then the same while another tenant ingests INGEST samples/s (loadgen,
# paced), with the rate the loadgen reached and the iterations missed.
#
#   benches/rules.sh [SERIES] [INGEST]     (defaults: 10000 500000)
#
# Needs: cargo build --release -p strata -p strata-benches.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-10000}
INGEST=${2:-500000}
PORT=${PORT:-19474}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-rules.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
# shellcheck source=benches/lib.sh
. benches/lib.sh
mkdir -p "$WORK/rules/tenant-0"
cat >"$WORK/rules/tenant-0/logistics.yaml" <<'YAML'
groups:
  - name: logistics
    interval: 10s
    rules:
      - record: service_route:http_requests:rate5m
        expr: sum by (service, route) (rate(http_requests_total[5m]))
      - record: service:http_errors:ratio_rate5m
        expr: sum by (service) (rate(http_requests_total{code="500"}[5m])) / sum by (service) (rate(http_requests_total[5m]))
      - record: route:http_request_duration_seconds:p99
        expr: histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))
      - alert: ServiceErrorRatioHigh
        expr: service:http_errors:ratio_rate5m > 0.05
        for: 5m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.service }}: {{ $value | humanizePercentage }} errors"}
      - alert: OdooQueueBacklog
        expr: odoo_queue_depth > 1000
        for: 10m
        annotations: {summary: "{{ $labels.queue }} queue at {{ $value }}"}
      - alert: PostgresConnectionsHigh
        expr: sum by (namespace) (pg_stat_activity_count) > 5000
        annotations: {summary: "{{ $labels.namespace }}: {{ $value }} connections"}
YAML
"$BIN/strata" serve --data-dir "$WORK/data" --listen 127.0.0.1:$PORT --log-level warn \
  --rules-dir "$WORK/rules" 2>>"$WORK/strata.log" &
SERVER=$!
wait_http http://127.0.0.1:$PORT/-/ready
"$BIN/strata-loadgen" --url http://127.0.0.1:$PORT/api/v1/write --series "$SERIES" --tenants 1 \
  --rounds 21 >"$WORK/loadgen.log"
tail -1 "$WORK/loadgen.log"
sample() { # label
  local out="$WORK/$1"
  mkdir -p "$out"
  for i in $(seq -w 1 10); do
    curl -fsS -H 'X-Scope-OrgID: tenant-0' http://127.0.0.1:$PORT/api/v1/rules >"$out/$i.json"
    sleep 10
  done
  python3 - "$out" "$1" <<'PY'
import glob, json, statistics, sys
per = {}
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    g = json.load(open(f))["data"]["groups"][0]
    for r in g["rules"]:
        assert r["health"] == "ok", r
        per.setdefault(r["name"], []).append(r["evaluationTime"] * 1e3)
    per.setdefault("(whole group)", []).append(g["evaluationTime"] * 1e3)
print(f"-- {sys.argv[2]}")
for k, v in per.items():
    print(f"{k:42s} median {statistics.median(v):8.2f} ms  min {min(v):8.2f}  max {max(v):8.2f}")
PY
}
sleep 12
sample "idle: $SERIES series"
# Another tenant ingests at INGEST samples/s for the next ~100 s.
ROUNDS=$((INGEST * 100 / 100000))
"$BIN/strata-loadgen" --url http://127.0.0.1:$PORT/api/v1/write --series 100000 --tenants 1 \
  --first-tenant 1 --rounds "$ROUNDS" --rate "$INGEST" --pid "$SERVER" >"$WORK/ingest.log" 2>&1 &
INGESTER=$!
# (The generator encodes every request first: sample once it sends.)
until curl -fsS http://127.0.0.1:$PORT/metrics | grep -q 'strata_ingested_samples_total{tenant="tenant-1"}'; do
  sleep 1
done
sample "while ingesting (target $INGEST samples/s)"
wait $INGESTER || true
tail -1 "$WORK/ingest.log"
curl -fsS http://127.0.0.1:$PORT/metrics | grep -E '^strata_rule_group_iterations(_missed)?_total' || true
