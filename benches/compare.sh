#!/usr/bin/env bash
# Side-by-side remote-write ingest: Strata, VictoriaMetrics and Prometheus fed
# the same seeded payloads by strata-loadgen, one after another on this
# machine. Each receiver starts empty; the loadgen reports samples/s, the
# receiver's CPU seconds (from /proc), samples per CPU-second, peak RSS and
# RSS per active series.
#
#   benches/compare.sh [SERIES] [ROUNDS]        (defaults: 100000 10)
#   CONC=4 BATCH=2000 ONLY="strata vm prom" benches/compare.sh 1000000 5
#   ONLY="strata strata-v2" benches/compare.sh    # Strata over remote write 1.0, then 2.0
#
# Needs: cargo build --release -p strata -p strata-benches, and
# apt-get install prometheus victoria-metrics.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-100000}
ROUNDS=${2:-10}
CONC=${CONC:-4}
BATCH=${BATCH:-2000}
ONLY=${ONLY:-"strata vm prom"}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-compare.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# shellcheck source=benches/lib.sh
. benches/lib.sh

load() { # name url pid [protocol]
  "$BIN/strata-loadgen" --name "$1" --url "$2" --pid "$3" --series "$SERIES" \
    --rounds "$ROUNDS" --concurrency "$CONC" --batch "$BATCH" --protocol "${4:-1}"
}

for sys in $ONLY; do
  case $sys in
    strata|strata-v2)
      rm -rf "$WORK/strata"
      "$BIN/strata" serve --data-dir "$WORK/strata" --listen 127.0.0.1:19470 --log-level warn 2>"$WORK/strata.log" &
      pid=$!
      wait_http http://127.0.0.1:19470/-/ready
      if [ "$sys" = strata-v2 ]; then
        load strata-rw2 http://127.0.0.1:19470/api/v1/write $pid 2
      else
        load strata http://127.0.0.1:19470/api/v1/write $pid
      fi
      du -sh "$WORK/strata/wal" | sed 's/^/strata wal on disk: /'
      ;;
    vm)
      victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:18428 -loggerLevel=ERROR \
        -memory.allowedPercent=60 2>"$WORK/vm.log" &
      pid=$!
      wait_http http://127.0.0.1:18428/health
      load victoriametrics http://127.0.0.1:18428/api/v1/write $pid
      ;;
    prom)
      printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prom.yml"
      prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/prom" \
        --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
        --log.level=error 2>"$WORK/prom.log" &
      pid=$!
      wait_http http://127.0.0.1:19090/-/ready
      load prometheus http://127.0.0.1:19090/api/v1/write $pid
      ;;
  esac
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
