#!/usr/bin/env bash
# Bytes per exemplar at rest: SERIES series with one exemplar each per round
# for ROUNDS rounds (random trace and span ids, a histogram bucket's series
# labels), written by remote write 1.0 into yesterday, flushed, then
# `strata compact` (day files). Prints the exemplars table's Parquet bytes
# per exemplar after the flush and after compaction.
#
#   benches/exemplars_at_rest.sh [SERIES] [ROUNDS]    (defaults: 1000 240)
#
# Needs: cargo build --release -p strata; python3 with cramjam.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
ROUNDS=${2:-240}
BIN=${STRATA:-${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release/strata}
WORK=$(mktemp -d /tmp/strata-exemplars.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# shellcheck source=benches/lib.sh
. benches/lib.sh

PORT=$((20000 + RANDOM % 10000))
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/log" 2>&1 &
SERVER=$!
wait_http "http://127.0.0.1:$PORT/-/ready"
written=$(python3 benches/exemplars_at_rest.py "http://127.0.0.1:$PORT" "$SERIES" "$ROUNDS")
TABLE="$WORK/data/objects/tenants/default/exemplars"
bytes() { find "$TABLE" -name '*.parquet' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
flushed=$(bytes)
kill -TERM "$SERVER"; wait "$SERVER" || true
"$BIN" compact --data-dir "$WORK/data" >/dev/null 2>&1
# What the log still lists after compaction: the merged day files.
compacted=$(live_table_bytes "$TABLE")
awk -v n="$written" -v f="$flushed" -v c="$compacted" 'BEGIN {
  printf "exemplars written       %d\n", n
  printf "after the flush         %d bytes, %.1f bytes per exemplar\n", f, f / n
  printf "after compaction        %d bytes, %.1f bytes per exemplar\n", c, c / n
}'
