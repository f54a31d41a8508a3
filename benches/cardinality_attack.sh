#!/usr/bin/env bash
# A cardinality explosion against a tenant with a series limit: the load
# generator writes SERIES new series per round for ROUNDS rounds (each
# round's series are new: a fresh seed) to a tenant limited to LIMIT active
# series. Prints how many samples were refused (429) and the server's peak
# RSS, next to a baseline that writes LIMIT series once.
#
#   benches/cardinality_attack.sh [LIMIT] [SERIES] [ROUNDS]   (defaults: 100000 500000 4)
#
# Needs: cargo build --release -p strata -p strata-benches.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
LIMIT=${1:-100000}
SERIES=${2:-500000}
ROUNDS=${3:-4}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-card.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
# shellcheck source=benches/lib.sh
. benches/lib.sh

printf '[limits.tenant_defaults]\nmax_series = %s\n' "$LIMIT" >"$WORK/strata.toml"
run() { # name seeds...
  local name=$1; shift
  "$BIN/strata" serve --config "$WORK/strata.toml" --data-dir "$WORK/$name" \
    --listen 127.0.0.1:19495 --log-level warn 2>"$WORK/$name.log" &
  local pid=$!
  wait_http http://127.0.0.1:19495/-/ready
  for seed in "$@"; do
    "$BIN/strata-loadgen" --url http://127.0.0.1:19495/api/v1/write --tenants 1 \
      --series "$SERIES" --rounds 1 --seed "$seed" --concurrency 2 | tail -1
  done
  local hwm
  hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  local refused
  refused=$(curl -fsS http://127.0.0.1:19495/metrics | awk '/^strata_rejected_total/ { s += $2 } END { print s + 0 }')
  echo "$name: peak RSS $((hwm / 1024)) MiB; requests refused by limits: $refused"
  kill -TERM "$pid"; wait "$pid" || true
}
SERIES_SAVED=$SERIES
SERIES=$LIMIT run baseline 1
SERIES=$SERIES_SAVED
run attack $(seq 1 "$ROUNDS")
