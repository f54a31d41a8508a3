#!/usr/bin/env bash
# Fair queries under a noisy neighbour: tenant B's query latency alone, then
# while tenant A floods ingest (strata-loadgen, as fast as it can) and runs
# heavy range queries from 8 concurrent clients. Strata's query slots are
# shared fairly between tenants (promql.query_slots, one per CPU), so B
# waits for at most the queries already running, never A's queue.
#
#   benches/fairness.sh [SERIES] [RUNS]     (defaults: 20000 40)
#
# Needs: cargo build --release -p strata -p strata-benches.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-20000}
RUNS=${2:-40}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-fair.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
# shellcheck source=benches/lib.sh
. benches/lib.sh

# Tenant A (tenant-0) has an ingest rate limit, as an operator would set
# for a noisy tenant; without it (FAIR_NO_LIMITS=1) the flood takes the CPU.
# The limit is written after the initial load; the server re-reads the
# overrides file when it changes.
: >"$WORK/limits.toml"
"$BIN/strata" serve --data-dir "$WORK/d" --listen 127.0.0.1:19490 --log-level warn \
  --limits-overrides-file "$WORK/limits.toml" 2>"$WORK/log" &
wait_http http://127.0.0.1:19490/-/ready
# Two tenants (tenant-0 = A, tenant-1 = B), one hour of data each (loaded
# before A's limit matters: the bucket starts full and the load is paced).
"$BIN/strata-loadgen" --url http://127.0.0.1:19490/api/v1/write --series "$SERIES" --tenants 2 \
  --rounds 240 --concurrency 2 | tail -1
NOW=$(date +%s)
B_QUERY='sum by (route) (rate(http_requests_total[5m]))'
A_QUERY='sum by (pod, route, code) (rate(http_requests_total[5m]))'

p99() { # tenant query runs -> "median p99" ms
  for _ in $(seq 1 "$3"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' -H "X-Scope-OrgID: $1" \
      --data-urlencode "query=$2" --data-urlencode "start=$((NOW - 3600))" \
      --data-urlencode "end=$NOW" --data-urlencode step=15 \
      http://127.0.0.1:19490/api/v1/query_range
  done | sort -n | awk '{ t[NR] = $1 * 1000 } END {
    m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    p = t[int(NR * 0.99 + 0.999)]; if (p == "") p = t[NR]
    printf "%.1f %.1f", m, p }'
}

if [ -z "${FAIR_NO_LIMITS:-}" ]; then
  printf '[tenants.tenant-0]\ningest_rate = 100000\ningest_burst = 200000\n' >"$WORK/limits.toml"
  sleep 11
fi
alone=$(p99 tenant-1 "$B_QUERY" "$RUNS")
echo "tenant B alone:          median / p99 ms: $alone"
a_alone=$(p99 tenant-0 "$A_QUERY" 5)
echo "tenant A's heavy query alone: median / p99 ms: $a_alone"

# Tenant A: ingest flood (10 more rounds of every series, repeatedly) and
# 8 clients running its heavy query back to back. The load generator shares
# the server's two cores here (it would not in production);
# FAIR_CLIENT_NICE=19 runs it at the lowest priority, to see Strata's share
# of the contention apart from the harness's.
CLIENT_NICE=${FAIR_CLIENT_NICE:-0}
(while true; do nice -n "$CLIENT_NICE" "$BIN/strata-loadgen" --url http://127.0.0.1:19490/api/v1/write \
  --series "$SERIES" --tenants 1 --rounds 10 --concurrency 4 >/dev/null 2>&1; done) &
for _ in $(seq 1 8); do
  (while true; do curl -s -o /dev/null -H 'X-Scope-OrgID: tenant-0' \
    --data-urlencode "query=$A_QUERY" --data-urlencode "start=$((NOW - 3600))" \
    --data-urlencode "end=$NOW" --data-urlencode step=15 \
    http://127.0.0.1:19490/api/v1/query_range; done) &
done
sleep 5
loaded=$(p99 tenant-1 "$B_QUERY" "$RUNS")
echo "tenant B under A's load: median / p99 ms: $loaded"
