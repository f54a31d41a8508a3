#!/usr/bin/env bash
# The scale-out roles on this machine (docs/DESIGN.md "Scale-out"):
# remote-write ingest with 1 vs 3 ingesters (the same series in all, split
# over the ingesters), and PromQL latency over the heads through a querier
# mirroring them, then with the queries split over 1 vs 2 queriers. Every process on one
# machine and one local object store: on 2 cores more processes cannot add
# cores; this shows what the split costs and what it keeps. The three
# ingesters run twice: on their own, and holding the tenant's limits
# together (a series limit far above the load, `--ingesters` on each, so
# every new series is announced to the two peers and merged there).
#
#   CARGO_TARGET_DIR=~/.cache/strata-rel benches/roles.sh [SERIES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh
bin="${CARGO_TARGET_DIR:-$HOME/.cache/strata-rel}/release"
series="${1:-40000}"
rounds="${2:-20}"
queries="${QUERIES:-40}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/strata.toml" <<TOML
[object_store]
url = "file://$work/objects"
[storage]
flush_interval = "1h"
[node]
refresh_interval = "1s"
TOML

cp "$work/strata.toml" "$work/limited.toml"
cat >> "$work/limited.toml" <<TOML
[limits.tenant_defaults]
max_series = 100000000
TOML

start() { # role id port [args...]
  local role=$1 id=$2 port=$3; shift 3
  local config="$work/strata.toml"
  [ "$role" = ingester ] && [ -n "${LIMITED:-}" ] && config="$work/limited.toml"
  "$bin/strata" serve --config "$config" --role "$role" --node-id "$id" \
    --data-dir "$work/$id" --listen "127.0.0.1:$port" --pg-listen off --flight-listen off \
    "$@" > "$work/$id.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/-/ready"
}

# Range query over the head: per-tenant rate of the load generator's counter.
query='sum by (tenant) (rate(http_requests_total[5m]))'
promql() { # port
  local now; now=$(date +%s)
  curl -fsS -o /dev/null -H 'X-Scope-OrgID: tenant-0' "http://127.0.0.1:$1/api/v1/query_range" \
    --data-urlencode "query=$query" -d "start=$((now - 600))" -d "end=$now" -d step=15
}

# Median of the wall times (ms) of `queries` queries spread over the ports.
latency() { # ports...
  local ports=("$@") times=()
  for i in $(seq 1 "$queries"); do
    local p=${ports[$((i % ${#ports[@]}))]}
    local t0 t1; t0=$(date +%s%N); promql "$p"; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# Wall time (ms) of `queries` queries sent 2 at a time, spread over the ports.
throughput() { # ports...
  local ports=("$@") t0 t1
  t0=$(date +%s%N)
  for i in $(seq 1 $((queries / 2))); do
    promql "${ports[$((i % ${#ports[@]}))]}" &
    promql "${ports[$(((i + 1) % ${#ports[@]}))]}" &
    wait
  done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

run() { # ingesters [limited]
  local n=$1 urls=() gens=() peers=()
  LIMITED=${2:-}
  rm -rf "${work:?}"/objects "$work"/strata-*
  for i in $(seq 0 $((n - 1))); do
    urls+=("http://127.0.0.1:$((19470 + i))")
  done
  [ "$LIMITED" = shared ] && peers=(--ingesters "$(IFS=,; echo "${urls[*]}")")
  for i in $(seq 0 $((n - 1))); do
    start ingester "strata-ingester-$i" $((19470 + i)) "${peers[@]}"
  done
  # Queriers first: subscribing flushes an ingester, and the data loaded
  # next stays in the heads for both runs alike.
  local list; list=$(IFS=,; echo "${urls[*]}")
  start querier strata-querier-0 19480 --ingesters "$list"
  start querier strata-querier-1 19481 --ingesters "$list"
  sleep 2
  # Each generator writes its share of one tenant's series (seeds apart,
  # so the shares differ); the rate is all samples over the longest
  # generator's sending time (their payloads are prepared before it).
  local total=0 wall=0
  for i in $(seq 0 $((n - 1))); do
    "$bin/strata-loadgen" --url "${urls[$i]}/api/v1/write" --series $((series / n)) \
      --tenants 1 --seed $((42 + i)) \
      --rounds "$rounds" --concurrency 4 --name "ingester-$i" > "$work/gen-$i.out" &
    gens+=($!)
  done
  for g in "${gens[@]}"; do wait "$g"; done
  for i in $(seq 0 $((n - 1))); do
    total=$((total + $(sed -n 's/.*samples_ok=\([0-9]*\).*/\1/p' "$work/gen-$i.out")))
    wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' "$work/gen-$i.out" | awk -v w="$wall" '{print ($1 > w) ? $1 : w}')
  done
  echo "ingesters=$n${LIMITED:+ (series limit, $LIMITED)} samples=$total wall_s=$wall samples_per_s=$(awk -v t="$total" -v w="$wall" 'BEGIN {printf "%.0f", t / w}')"
  if [ -n "$LIMITED" ]; then
    local counts=()
    for i in $(seq 0 $((n - 1))); do
      counts+=("$(curl -fsS -H 'X-Scope-OrgID: tenant-0' "${urls[$i]}/api/v1/status/tenants" |
        python3 -c 'import json,sys; print([t["live_series"] for t in json.load(sys.stdin)["data"]["tenants"] if t["tenant"] == "tenant-0"][0])')")
    done
    echo "ingesters=$n live series as each ingester counts them: ${counts[*]}"
  fi
  # Every sample is still in the ingesters' heads (and the queriers'
  # mirrors of them): queries read no file.
  promql 19480; promql 19481
  echo "ingesters=$n promql_median_ms(1 querier)=$(latency 19480) promql_median_ms(2 queriers)=$(latency 19480 19481)"
  echo "ingesters=$n ${queries}_queries_2_at_a_time_ms(1 querier)=$(throughput 19480) (2 queriers)=$(throughput 19480 19481)"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

run 1
run 3
run 3 alone
run 3 shared
