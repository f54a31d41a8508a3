#!/usr/bin/env bash
# Bytes per sample at rest, side by side: the same seeded remote-write
# payloads (strata-loadgen: SERIES series, one sample per 15 s for ROUNDS
# rounds, starting at yesterday 00:00 UTC so the day is closed) go to Strata,
# VictoriaMetrics and Prometheus, each starting empty. Then:
#   Strata           SIGTERM (flushes the head), `strata compact` (day files);
#                    counts the live data files and the Delta log.
#   VictoriaMetrics  /internal/force_flush, then the whole data dir.
#   Prometheus       waits for its head compaction to cut a 2h block
#                    (needs > 3h of data), then counts that block's bytes
#                    and samples (promtool tsdb list).
#
#   benches/at_rest.sh [SERIES] [ROUNDS]     (defaults: 10000 960 = 4 hours)
#
# Needs: cargo build --release -p strata -p strata-benches, and
# apt-get install prometheus victoria-metrics.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-10000}
ROUNDS=${2:-960}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-at-rest.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
START=$(( ($(date +%s) / 86400 - 1) * 86400 * 1000 ))
SAMPLES=$((SERIES * ROUNDS))

# shellcheck source=benches/lib.sh
. benches/lib.sh

load() { # name url
  "$BIN/strata-loadgen" --name "$1" --url "$2" --series "$SERIES" --rounds "$ROUNDS" \
    --start-ms "$START" --tenants 1 --concurrency 2 >"$WORK/$1.load" 2>&1
}

per_sample() { # bytes samples
  awk -v b="$1" -v s="$2" 'BEGIN { printf "%.3f", b / s }'
}

echo "workload: $SERIES series x $ROUNDS rounds = $SAMPLES samples, 15 s apart"

# Strata
"$BIN/strata" serve --data-dir "$WORK/strata" --listen 127.0.0.1:19470 --log-level warn \
  --flush-interval 1h 2>"$WORK/strata.log" &
pid=$!
wait_http http://127.0.0.1:19470/-/ready
load strata http://127.0.0.1:19470/api/v1/write
kill -TERM "$pid"; wait "$pid" || true
"$BIN/strata" compact --data-dir "$WORK/strata" >"$WORK/compact.out"
table="$WORK/strata/objects/tenants/tenant-0/metrics"
# Live files only (what the log lists; merged-away files wait for vacuum):
# `strata verify` reports their total size.
"$BIN/strata" verify --data-dir "$WORK/strata" >"$WORK/verify.out"
live=$(sed -n 's/.*files (\([0-9]*\) bytes).*/\1/p' "$WORK/verify.out")
log=$(du -sb "$table/_delta_log" | cut -f1)
echo "strata: $(cat "$WORK/compact.out"); $(cat "$WORK/verify.out")"
echo "strata: live data files $live bytes = $(per_sample "$live" "$SAMPLES") B/sample; delta log $log bytes; with log $(per_sample $((live + log)) "$SAMPLES") B/sample"

# VictoriaMetrics
victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:18428 -loggerLevel=ERROR \
  -retentionPeriod=100y 2>"$WORK/vm.log" &
pid=$!
wait_http http://127.0.0.1:18428/health
load vm http://127.0.0.1:18428/api/v1/write
curl -fsS http://127.0.0.1:18428/internal/force_flush >/dev/null
sleep 10
curl -fsS http://127.0.0.1:18428/internal/force_merge >/dev/null || true
sleep 10
kill -TERM "$pid"; wait "$pid" || true
vm=$(du -sb "$WORK/vm" | cut -f1)
echo "victoriametrics: data dir $vm bytes = $(per_sample "$vm" "$SAMPLES") B/sample"

# Prometheus
printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prom.yml"
prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y \
  --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
  --log.level=error 2>"$WORK/prom.log" &
pid=$!
wait_http http://127.0.0.1:19090/-/ready
load prom http://127.0.0.1:19090/api/v1/write
for _ in $(seq 1 150); do
  ls "$WORK/prom" | grep -q '^01' && break
  sleep 1
done
sleep 5
kill -TERM "$pid"; wait "$pid" || true
pbytes=0; psamples=0
for b in "$WORK"/prom/01*; do
  [ -d "$b" ] || continue
  pbytes=$((pbytes + $(du -sb "$b" | cut -f1)))
  psamples=$((psamples + $(python3 -c "import json,sys; print(json.load(open('$b/meta.json'))['stats']['numSamples'])")))
done
if [ "$psamples" -gt 0 ]; then
  echo "prometheus: blocks $pbytes bytes for $psamples samples = $(per_sample "$pbytes" "$psamples") B/sample"
else
  echo "prometheus: no block was cut (needs more than 3h of data)"
fi
