#!/usr/bin/env bash
# Bytes per native histogram at rest, and their ingest: SERIES series with
# one native histogram each per round for ROUNDS rounds (integer histograms of schema 3, as Prometheus sends them;
# benches/histograms_at_rest.py), written by remote write 1.0 into yesterday,
# flushed, then `strata compact` (day files). Prints histograms per second
# posted (one client, bodies encoded beforehand) and the histograms table's
# Parquet bytes per histogram after the flush and after compaction.
#
#   benches/histograms_at_rest.sh [SERIES] [ROUNDS]    (defaults: 1000 240)
#
# Needs: cargo build --release -p strata; python3 with cramjam.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
ROUNDS=${2:-240}
BIN=${STRATA:-${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release/strata}
WORK=$(mktemp -d /tmp/strata-histograms.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# shellcheck source=benches/lib.sh
. benches/lib.sh

PORT=$((20000 + RANDOM % 10000))
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/log" 2>&1 &
SERVER=$!
wait_http "http://127.0.0.1:$PORT/-/ready"
result=$(python3 benches/histograms_at_rest.py "http://127.0.0.1:$PORT" "$SERIES" "$ROUNDS")
written=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["written"])' "$result")
post_s=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["post_s"])' "$result")
buckets=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["buckets"])' "$result")
TABLE="$WORK/data/objects/tenants/default/histograms"
bytes() { find "$TABLE" -name '*.parquet' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
flushed=$(bytes)
kill -TERM "$SERVER"; wait "$SERVER" || true
"$BIN" compact --data-dir "$WORK/data" >/dev/null 2>&1
# What the log still lists after compaction: the merged day files.
compacted=$(live_table_bytes "$TABLE")
awk -v n="$written" -v s="$post_s" -v b="$buckets" -v f="$flushed" -v c="$compacted" 'BEGIN {
  printf "histograms written      %d (%.1f populated buckets each on average)\n", n, b
  printf "posted in               %.2f s, %.0f histograms/s\n", s, n / s
  printf "after the flush         %d bytes, %.1f bytes per histogram\n", f, f / n
  printf "after compaction        %d bytes, %.1f bytes per histogram\n", c, c / n
}'
