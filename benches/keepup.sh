#!/usr/bin/env bash
# Does storage keep up with ingest? Strata takes remote write at a fixed
# rate for a while with its flusher and compactor running as they do in
# production (defaults: 20M-sample flushes, compaction every 60 s on
# `cores` workers at nice 10). Sample time runs 75x faster than the clock
# (100k series every 15 s of sample time at 500k samples/s) and lies in
# today's closed hours, so every hour's flush files are due for their hour
# merge as soon as they are written: each sample is received, logged,
# flushed and hour-merged while the run goes on. (Day merges happen once a
# day closes; `strata-tablegen --hourly` measures them.)
#
# Every 10 s it prints the compaction backlog (rows due for a merge, from
# /metrics); at the end, how long the backlog took to drain once the load
# stopped and the server's CPU seconds for the whole: per sample, what
# ingest, flush and hour merges cost together.
#
#   benches/keepup.sh [SERIES] [RATE] [SECONDS]     (defaults: 100000 500000 300)
#   ONLY="strata vm" benches/keepup.sh               # VictoriaMetrics too (its merges run in-process)
#   INTERVAL_MS=1000 benches/keepup.sh ...           # sample time 1 s per round (default 15000):
#                                                    # 5x the clock at 500k/s, fits early in a UTC day
#   MAX_LAG=60s benches/keepup.sh 100000 1000000 300 # flow control: over what compaction sustains,
#                                                    # writes are refused (503) and the load
#                                                    # generator retries them as Prometheus does
#
# Needs: cargo build --release -p strata -p strata-benches;
# apt-get install victoria-metrics for `vm`.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-100000}
RATE=${2:-500000}
SECONDS_=${3:-300}
ONLY=${ONLY:-strata}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-keepup.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# shellcheck source=benches/lib.sh
. benches/lib.sh

INTERVAL_MS=${INTERVAL_MS:-15000}
ROUNDS=$((RATE * SECONDS_ / SERIES))
SPAN_MS=$((ROUNDS * INTERVAL_MS))
if [ -n "${MAX_LAG:-}" ]; then
  export STRATA_MAX_COMPACTION_LAG=$MAX_LAG
fi
NOW_MS=$(($(date +%s) * 1000))
MIDNIGHT_MS=$((NOW_MS / 86400000 * 86400000))
# Closed hours of today: the last hour holding data must have ended, plus
# the 10 minutes compaction waits for late data.
CLOSED_MS=$(((SPAN_MS + 3599999) / 3600000 * 3600000 + 600000))
if [ $((NOW_MS - MIDNIGHT_MS)) -lt "$CLOSED_MS" ]; then
  echo "today (UTC) has less than $((CLOSED_MS / 60000)) min behind it: run later, or fewer SECONDS, or a smaller INTERVAL_MS" >&2
  exit 1
fi
START_MS=$MIDNIGHT_MS

cpu_s() { # pid -> user+system seconds
  awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"
}
metric() { # name
  curl -fsS http://127.0.0.1:19471/metrics | awk -v m="$1" '$1 == m {print $2}'
}

for sys in $ONLY; do
  case $sys in
    strata)
      "$BIN/strata" serve --data-dir "$WORK/strata" --listen 127.0.0.1:19471 --log-level info \
        >"$WORK/strata.log" 2>&1 &
      pid=$!
      wait_http http://127.0.0.1:19471/-/ready
      url=http://127.0.0.1:19471/api/v1/write
      ;;
    vm)
      victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:18429 -loggerLevel=ERROR \
        -retentionPeriod=10y -memory.allowedPercent=60 2>"$WORK/vm.log" &
      pid=$!
      wait_http http://127.0.0.1:18429/health
      url=http://127.0.0.1:18429/api/v1/write
      ;;
  esac
  cpu0=$(cpu_s "$pid")
  "$BIN/strata-loadgen" --name "$sys" --url "$url" --series "$SERIES" --rounds "$ROUNDS" \
    --start-ms "$START_MS" --interval-ms "$INTERVAL_MS" --rate "$RATE" --concurrency 4 --progress-s 30 \
    --retry >"$WORK/load.out" &
  load=$!
  t0=$(date +%s)
  while kill -0 $load 2>/dev/null; do
    sleep 10
    if [ "$sys" = strata ]; then
      refused=$(curl -fsS http://127.0.0.1:19471/metrics | awk '/^strata_rejected_total.*compaction_lag/ { s += $2 } END { print s + 0 }')
      echo "$sys +$(($(date +%s) - t0))s: backlog $(metric strata_compaction_backlog_rows) rows in $(metric strata_compaction_backlog_files) files, hour-merge lag $(metric strata_compaction_lag_seconds) s, $refused writes refused, $(metric strata_compacted_files_total) files merged, cpu $(cpu_s "$pid") s"
    fi
  done
  wait $load
  cat "$WORK/load.out"
  cpu_load=$(cpu_s "$pid")
  t1=$(date +%s)
  if [ "$sys" = strata ]; then
    # Drain: the last flush (at most 20M samples stay in the head) and the
    # merges due once it is written.
    curl -fsS -X POST http://127.0.0.1:19471/api/v1/admin/flush >/dev/null 2>&1 || true
    while :; do
      rows=$(metric strata_compaction_backlog_rows)
      [ "${rows:-0}" = 0 ] && [ $(($(date +%s) - t1)) -gt 70 ] && break
      sleep 5
    done
    echo "$sys: backlog drained $(($(date +%s) - t1)) s after the load stopped"
  else
    sleep 60
  fi
  cpu_end=$(cpu_s "$pid")
  samples=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^samples_ok=/) {split($i, a, "="); print a[2]}}' "$WORK/load.out")
  awk -v s="$samples" -v c0="$cpu0" -v cl="$cpu_load" -v ce="$cpu_end" -v n="$sys" 'BEGIN {
    printf "%s: %d samples; cpu during load %.1f s, with drain %.1f s; %.2f us/sample all-in = %.0f samples per cpu-second\n",
      n, s, cl - c0, ce - c0, (ce - c0) / s * 1e6, s / (ce - c0) }'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
