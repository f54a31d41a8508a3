#!/usr/bin/env bash
# Guard: label names, label values and series lookups at SERIES series must
# answer within LIMIT_MS (median of RUNS), from the head and after a flush
# (from the files); and the first label-names lookup after a restart, when
# the files' indexes are not held yet and are built from the series index
# stored in each file, within COLD_LIMIT_MS (default 1000; 8 s at 200k
# series before files carried one). Exits 1 naming the lookup that regressed.
#
#   benches/label_lookup_guard.sh [SERIES] [LIMIT_MS]     (defaults: 200000 10)
#
# One tenant holds every series (strata-loadgen's logistics workload:
# namespace, pod, service, route, ... on each series), so each lookup covers
# all of them; the series lookup selects one metric of one service (~80
# series at 200k, as a Grafana variable query would). Needs:
# cargo build --release -p strata -p strata-benches.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-200000}
LIMIT_MS=${2:-10}
COLD_LIMIT_MS=${COLD_LIMIT_MS:-1000}
RUNS=${RUNS:-7}
PORT=${PORT:-19473}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-labels.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
# shellcheck source=benches/lib.sh
. benches/lib.sh
serve() {
  "$BIN/strata" serve --data-dir "$WORK/data" --listen 127.0.0.1:$PORT --log-level warn 2>>"$WORK/strata.log" &
  SERVER=$!
  wait_http http://127.0.0.1:$PORT/-/ready
}
serve
"$BIN/strata-loadgen" --url http://127.0.0.1:$PORT/api/v1/write --series "$SERIES" --tenants 1 \
  --rounds 2 >"$WORK/loadgen.log"
tail -1 "$WORK/loadgen.log"
TENANT=tenant-0
BASE=http://127.0.0.1:$PORT
now=$(date +%s)
RANGE="start=$((now - 3600))&end=$now"
LOOKUPS=(
  "labels /api/v1/labels?$RANGE"
  "label_values_namespace /api/v1/label/namespace/values?$RANGE"
  "label_values_name /api/v1/label/__name__/values?$RANGE"
  "label_values_pod /api/v1/label/pod/values?$RANGE"
  "series_one_service /api/v1/series?match[]=go_goroutines%7Bservice%3D%22svc-3%22%7D&$RANGE"
)
fail=0
median_ms() { # path -> median wall ms of RUNS calls (after one warm-up)
  curl -gfsS -o /dev/null -H "X-Scope-OrgID: $TENANT" "$BASE$1"
  local ts=()
  for _ in $(seq 1 "$RUNS"); do
    ts+=("$(curl -gfsS -o /dev/null -w '%{time_total}' -H "X-Scope-OrgID: $TENANT" "$BASE$1")")
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}'
}
check() { # phase
  for l in "${LOOKUPS[@]}"; do
    name=${l%% *}
    path=${l#* }
    ms=$(median_ms "$path")
    verdict=ok
    if awk -v m="$ms" -v lim="$LIMIT_MS" 'BEGIN {exit !(m > lim)}'; then
      verdict="REGRESSED (limit ${LIMIT_MS} ms)"
      fail=1
    fi
    printf '%-6s %-26s %8s ms  %s\n' "$1" "$name" "$ms" "$verdict"
  done
}
check head
curl -fsS -XPOST "$BASE/api/v1/admin/flush" >/dev/null
check files
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
serve
ms=$(curl -gfsS -o /dev/null -w '%{time_total}' -H "X-Scope-OrgID: $TENANT" "$BASE/api/v1/labels?$RANGE" |
  awk '{printf "%.2f", $1 * 1000}')
verdict=ok
if awk -v m="$ms" -v lim="$COLD_LIMIT_MS" 'BEGIN {exit !(m > lim)}'; then
  verdict="REGRESSED (limit ${COLD_LIMIT_MS} ms)"
  fail=1
fi
printf '%-6s %-26s %8s ms  %s
' cold "labels (first, restarted)" "$ms" "$verdict"
exit $fail
