#!/usr/bin/env bash
# Logs: ingest throughput, bytes stored per raw byte, and a needle-in-a-
# haystack line filter over BYTES of generated logs (default 1GiB).
#
#   benches/logs.sh [BYTES]
#
# 1. strata-loggen pushes BYTES of raw lines (Loki push, snappy protobuf,
#    240 streams, 4 connections) with one needle line at a random place;
#    it reports lines/s, MB/s and the server's CPU.
# 2. The needle is searched RUNS times with the head holding the most
#    recent data, then everything is flushed to Parquet and searched
#    again RUNS times: LogQL (`{cluster="eu-west"} |= "<needle>"` over the
#    whole span, query_range) and SQL (`line LIKE '%<needle>%'`). Beside
#    it, Grafana Explore's first query: the newest 1000 lines of
#    `{cluster="eu-west"}` over the whole span, a SQL count of a
#    common text (the line index's cost when it rules nothing out), and
#    30 days of hourly counts by job with the server's peak RSS during it.
# 3. Bytes at rest: the logs table's Parquet files against the raw bytes,
#    and how many of those bytes are the files' line indexes.
#
# Needs: cargo build --release --workspace --bins. STRATA=path runs another
# server binary (the load generator stays this tree's).
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
BYTES=${1:-1GiB}
RUNS=${RUNS:-5}
PORT=${PORT:-19481}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-logs.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
NEEDLE="needle-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# shellcheck source=benches/lib.sh
. benches/lib.sh

"${STRATA:-$BIN/strata}" serve --data-dir "$WORK" --listen "127.0.0.1:$PORT" --log-level warn 2>"$WORK/strata.log" &
PID=$!
wait_http "http://127.0.0.1:$PORT/-/ready"
"$BIN/strata-loggen" --url "http://127.0.0.1:$PORT/loki/api/v1/push" --bytes "$BYTES" \
  --needle "$NEEDLE" --pid "$PID" --tenant logs

# Asks RUNS times (curl with ARGS, the answer into $WORK/NAME.json) and
# prints the last answer's HTTP status, then each ask's seconds.
timed() { # name curl-args...
  local name=$1 t status times=()
  shift
  for _ in $(seq 1 "$RUNS"); do
    t=$(curl -sS -o "$WORK/$name.json" -w '%{http_code} %{time_total}' -H 'X-Scope-OrgID: logs' "$@")
    status=${t%% *}
    times+=("${t#* }")
  done
  echo "$status ${times[*]}"
}

sql_timed() { # name body
  timed "$1" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$PORT/api/v1/sql"
}

loki_timed() { # name query start end [curl-args...]
  local name=$1 query=$2 start=$3 end=$4
  shift 4
  timed "$name" -G --data-urlencode "query=$query" --data-urlencode "start=$start" \
    --data-urlencode "end=$end" "$@" "http://127.0.0.1:$PORT/loki/api/v1/query_range"
}

search() { # label
  local status times found body start end
  end=$(date +%s%N)
  start=$((end - 7200 * 1000000000))
  read -r status times <<<"$(loki_timed logql "{cluster=\"eu-west\"} |= \"$NEEDLE\"" "$start" "$end" --data-urlencode "limit=10")"
  found=$(grep -o "$NEEDLE" "$WORK/logql.json" | wc -l)
  local logql_times=$times
  body=$(printf '{"query": "SELECT count(*) AS n FROM logs WHERE line LIKE '"'"'%%%s%%'"'"'"}' "$NEEDLE")
  read -r status times <<<"$(sql_timed sql "$body")"
  echo "needle ($1): logql found=$found s=[$logql_times]  sql $(tr -d '\n' < "$WORK/sql.json") s=[$times]"
  read -r status times <<<"$(loki_timed recent '{cluster="eu-west"}' "$start" "$end" --data-urlencode "limit=1000")"
  found=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(s["values"]) for s in d["data"]["result"]))' "$WORK/recent.json" 2>/dev/null || head -c 200 "$WORK/recent.json")
  echo "newest 1000 lines ($1): http=$status lines=$found s=[$times]"
  # A common text: the line index rules nothing out, so this shows what
  # consulting it costs on a filter that is not selective.
  body='{"query": "SELECT count(*) AS n FROM logs WHERE line LIKE '"'"'%stock.picking/button_validate%'"'"'"}'
  read -r status times <<<"$(sql_timed common "$body")"
  echo "common text ($1): sql $(tr -d '\n' < "$WORK/common.json") s=[$times]"
  # 30 days of hourly counts by job (720 steps over all the data): a
  # metric query folds what it reads into its answer slice by slice, so
  # its memory is the steps and a slice, not the entries. The server's
  # peak RSS is reset before (clear_refs) and read after.
  local rss hwm
  end=$(date +%s)
  rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$PID/status")
  echo 5 > "/proc/$PID/clear_refs"
  read -r status times <<<"$(loki_timed month 'sum by (job) (count_over_time({cluster="eu-west"}[1h]))' "$((end - 30 * 86400))" "$end" --data-urlencode "step=3600")"
  hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$PID/status")
  found=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["data"]["result"]), int(sum(float(v[1]) for s in d["data"]["result"] for v in s["values"])))' "$WORK/month.json" 2>/dev/null || head -c 200 "$WORK/month.json")
  echo "30-day hourly count by job ($1): http=$status series,entries=$found s=[$times] rss_before_mb=$rss peak_rss_mb=$hwm"
}

search "head + files as ingested"
curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/admin/flush" >/dev/null
search "all in Parquet"
stored=$(find "$WORK/objects/tenants/logs/logs" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
raw=$(curl -fsS -H 'X-Scope-OrgID: logs' -H 'Content-Type: application/json' \
  -d '{"query": "SELECT sum(length(line)) AS raw, count(*) AS n FROM logs"}' \
  "http://127.0.0.1:$PORT/api/v1/sql" | python3 -c 'import json,sys; r=json.load(sys.stdin)["rows"][0]; print(r[0], r[1])')
set -- $raw
echo "at rest: lines=$2 raw_bytes=$1 parquet_bytes=$stored bytes_per_raw_byte=$(python3 -c "print(round($stored / $1, 4))")"
index=$(line_index_bytes "$WORK/objects/tenants/logs/logs")
echo "line index: bytes=$index share_of_parquet=$(python3 -c "print(round($index / $stored, 4))")"
