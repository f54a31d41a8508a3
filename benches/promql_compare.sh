#!/usr/bin/env bash
# PromQL latency side by side: the same seeded remote-write payloads
# (strata-loadgen: SERIES series, one sample per 15 s over HOURS hours
# ending now) go to Strata, VictoriaMetrics and Prometheus; then every query
# of the set runs RUNS times as a range query over the last 1 h (step 15 s)
# and over the last 7 d (step 10 m, when HOURS >= 168), and each label
# lookup RUNS times; curl's total time per request gives median and p99.
#
#   benches/promql_compare.sh [SERIES] [HOURS]     (defaults: 1000 168)
#
# Strata answers for tenant tenant-0 (the load generator's only tenant);
# Prometheus and VictoriaMetrics have no tenants. Strata is queried after a
# flush, so long ranges read Parquet files and the last minutes the head.
#
# Needs: cargo build --release -p strata -p strata-benches, and
# apt-get install prometheus victoria-metrics.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
HOURS=${2:-168}
RUNS=${RUNS:-20}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-promql.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
ROUNDS=$((HOURS * 240))
NOW=$(date +%s)
START_MS=$(( (NOW - ROUNDS * 15) * 1000 ))
END=$NOW

# shellcheck source=benches/lib.sh
. benches/lib.sh

load() { # name url
  "$BIN/strata-loadgen" --name "$1" --url "$2" --series "$SERIES" --rounds "$ROUNDS" \
    --start-ms "$START_MS" --tenants 1 --concurrency 2 >"$WORK/$1.load" 2>&1
  tail -1 "$WORK/$1.load"
}

echo "workload: $SERIES series x $ROUNDS rounds = $((SERIES * ROUNDS)) samples, 15 s apart, ending now"

"$BIN/strata" serve --data-dir "$WORK/strata" --listen 127.0.0.1:19470 --log-level warn \
  2>"$WORK/strata.log" &
wait_http http://127.0.0.1:19470/-/ready
victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:18428 -loggerLevel=ERROR \
  -retentionPeriod=100y -search.latencyOffset=0s 2>"$WORK/vm.log" &
wait_http http://127.0.0.1:18428/health
printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prom.yml"
prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y --query.lookback-delta=5m \
  --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
  --log.level=error 2>"$WORK/prom.log" &
wait_http http://127.0.0.1:19090/-/ready

load strata http://127.0.0.1:19470/api/v1/write
curl -fsS -X POST http://127.0.0.1:19470/api/v1/admin/flush >/dev/null
load vm http://127.0.0.1:18428/api/v1/write
curl -fsS http://127.0.0.1:18428/internal/force_flush >/dev/null
load prom http://127.0.0.1:19090/api/v1/write
sleep 5

QUERIES=(
  'sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))'
  'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))'
  'topk(5, sum by (service) (rate(http_requests_total[5m])))'
  'max_over_time(sum by (service) (rate(http_requests_total[5m]))[30m:1m])'
  'http_requests_total{service="svc-0"}'
)

# Prints "median p99" of RUNS requests, in ms. Fails on a non-2xx answer.
timed() { # url-with-query [curl args...]
  local url=$1; shift
  for _ in $(seq 1 "$RUNS"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' "$@" "$url"
  done | sort -n | awk '{ t[NR] = $1 * 1000 } END {
    m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    p = t[int(NR * 0.99 + 0.999)]; if (p == "") p = t[NR]
    printf "%.1f %.1f", m, p }'
}

enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

row() { # label path-and-query
  local s v p
  s=$(timed "http://127.0.0.1:19470$2" -H 'X-Scope-OrgID: tenant-0')
  v=$(timed "http://127.0.0.1:18428$2")
  p=$(timed "http://127.0.0.1:19090$2")
  printf '| %s | %s | %s | %s |\n' "$1" "${s/ / \/ }" "${v/ / \/ }" "${p/ / \/ }"
}

echo
echo "median / p99 ms over $RUNS runs"
echo "| query | Strata | VictoriaMetrics | Prometheus |"
echo "|---|---:|---:|---:|"
ranges=("1h:3600:15")
if [ "$HOURS" -ge 168 ]; then ranges+=("7d:604800:600"); fi
for r in "${ranges[@]}"; do
  IFS=: read -r name secs step <<<"$r"
  for q in "${QUERIES[@]}"; do
    row "$name \`$q\`" "/api/v1/query_range?query=$(enc "$q")&start=$((END - secs))&end=$END&step=$step"
  done
  row "$name label values \`route\`" "/api/v1/label/route/values?start=$((END - secs))&end=$END"
  row "$name series \`odoo_queue_depth\`" "/api/v1/series?match[]=odoo_queue_depth&start=$((END - secs))&end=$END"
done
