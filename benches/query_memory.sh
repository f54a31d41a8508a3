#!/usr/bin/env bash
# benches/query_memory.sh [DATASET_DIR] [QUERY_FILE]
# Memory per query: starts a release Strata on a fresh data dir, replays a
# shared-bench dataset (../shared/bench/send.py), flushes, then runs each query
# of QUERY_FILE (measure_queries.txt format) once and prints VmHWM and VmRSS
# after it, so the query that raises the server's memory is named.
#   benches/query_memory.sh /tmp/bench-data/ds-200000-1h
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=${BENCH:-$HERE/../../shared/bench}
DS=${1:-/tmp/bench-data/ds-200000-1h}
QUERIES=${2:-$BENCH/measure_queries.txt}
BIN=${STRATA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release/strata}
PORT=${PORT:-9301}
D=$(mktemp -d /tmp/strata-qmem.XXXXXX)
"$BIN" serve --data-dir "$D/data" --listen 127.0.0.1:$PORT --pg-listen off --flight-listen off >"$D/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
until curl -fsS 127.0.0.1:$PORT/-/ready >/dev/null 2>&1; do sleep 0.2; done
python3 "$BENCH/send.py" http://127.0.0.1:$PORT/api/v1/write "$DS" -c 4 >/dev/null
curl -fsS -XPOST 127.0.0.1:$PORT/api/v1/admin/flush >/dev/null
mem() { awk '/^VmHWM|^VmRSS/{printf "%s %d MB  ", $1, $2/1024}' /proc/$PID/status; }
echo "after ingest and flush: $(mem)"
grep -v '^#' "$QUERIES" | grep -v '^[[:space:]]*$' | while read -r line; do
  echo "$line" >"$D/q.txt"
  python3 "$BENCH/qbench.py" http://127.0.0.1:$PORT --queries "$D/q.txt" --dataset "$DS" \
    --runs 1 --warmup 0 --step 30 >/dev/null 2>&1 || echo "  (query failed)"
  echo "$(echo "$line" | awk '{print $2}'): $(mem)"
done
