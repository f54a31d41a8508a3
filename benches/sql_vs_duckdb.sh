#!/usr/bin/env bash
# A long-range SQL aggregate over DAYS days of data, and a label group-by
# over one day through the natural schema (per-metric table), Strata against
# DuckDB on the same Parquet files. strata-tablegen builds the table through Strata's
# flush and compaction (and reports their throughput and bytes at rest);
# then the same query runs RUNS times on each:
#   Strata  over HTTP (/api/v1/sql), timed by curl, server already warm;
#   DuckDB  in-process (Python duckdb) on the files the Delta log lists,
#           timed around execute+fetch only (no interpreter start-up).
#
#   benches/sql_vs_duckdb.sh [SERIES] [DAYS]     (defaults: 2000 7)
#
# Needs: cargo build --release -p strata -p strata-benches; python3 with
# duckdb and deltalake.
set -euo pipefail
# These runs need no Postgres listener.
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
SERIES=${1:-2000}
DAYS=${2:-7}
RUNS=${RUNS:-5}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
WORK=$(mktemp -d /tmp/strata-sql.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

"$BIN/strata-tablegen" --data-dir "$WORK" --series "$SERIES" --days "$DAYS"

QUERY="SELECT metric, date_trunc('day', timestamp) AS day, count(*) AS n, avg(value) AS mean, max(value) AS top FROM samples GROUP BY 1, 2 ORDER BY 1, 2"

"$BIN/strata" serve --data-dir "$WORK" --listen 127.0.0.1:19471 --log-level warn 2>"$WORK/strata.log" &
SQL() { "$BIN/strata" sql --url http://127.0.0.1:19471 --tenant bench --format csv -c "$1" | tail -n +2; }
# shellcheck source=benches/lib.sh
. benches/lib.sh
wait_http http://127.0.0.1:19471/-/ready
body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$QUERY")
times=()
for _ in $(seq 1 "$RUNS"); do
  t=$(curl -fsS -o "$WORK/strata.json" -w '%{time_total}' -H 'X-Scope-OrgID: bench' \
    -H 'Content-Type: application/json' -d "$body" http://127.0.0.1:19471/api/v1/sql)
  times+=("$t")
done
rows=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$WORK/strata.json")
echo "strata: $rows rows; seconds per run: ${times[*]}"

python3 - "$WORK/objects/tenants/bench/metrics" "$RUNS" <<'PY'
import sys, time
import duckdb
from deltalake import DeltaTable

files = DeltaTable(sys.argv[1]).file_uris()
con = duckdb.connect()
q = ("SELECT metric, date_trunc('day', timestamp) AS day, count(*) AS n, avg(value) AS mean, "
     "max(value) AS top FROM read_parquet(?) GROUP BY 1, 2 ORDER BY 1, 2")
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    rows = con.execute(q, [files]).fetchall()
    times.append(time.perf_counter() - t)
print(f"duckdb: {len(rows)} rows over {len(files)} files; seconds per run: "
      + " ".join(f"{x:.3f}" for x in times))
PY

# One day, one metric, grouped by two labels, through the per-metric table.
DAY=$(SQL "SELECT min(day) FROM system.files")
NEXT=$(SQL "SELECT CAST(DATE '$DAY' + INTERVAL '1 day' AS DATE)")
RANGE="timestamp >= TIMESTAMP '${DAY}T00:00:00Z' AND timestamp < TIMESTAMP '${NEXT}T00:00:00Z'"
GQUERY="SELECT route, code, count(*) AS n, sum(value) AS total FROM http_requests_total WHERE $RANGE GROUP BY route, code ORDER BY route, code"
ROWS=$(SQL "SELECT count(*) FROM http_requests_total WHERE $RANGE")
DAYBYTES=$(SQL "SELECT sum(size_bytes) FROM system.files WHERE day = DATE '$DAY'")
gbody=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$GQUERY")
times=()
for _ in $(seq 1 "$RUNS"); do
  t=$(curl -fsS -o "$WORK/group.json" -w '%{time_total}' -H 'X-Scope-OrgID: bench' \
    -H 'Content-Type: application/json' -d "$gbody" http://127.0.0.1:19471/api/v1/sql)
  times+=("$t")
done
best=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
groups=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$WORK/group.json")
scanned=$(SQL "EXPLAIN ANALYZE $GQUERY" | grep -o 'bytes_scanned=[0-9.]*[ KMG]*B\?' | head -1 || true)
echo "strata group-by: day $DAY, $ROWS rows of http_requests_total in $DAYBYTES bytes of day files; $groups groups; seconds per run: ${times[*]}; best $(python3 -c "print(f'{$ROWS/$best/1e6:.1f}')")M rows/s; $scanned"

python3 - "$WORK/objects/tenants/bench/metrics" "$RUNS" "$DAY" "$NEXT" "$ROWS" <<'PY'
import sys, time
import duckdb
from deltalake import DeltaTable

files = [f for f in DeltaTable(sys.argv[1]).file_uris() if f"day={sys.argv[3]}" in f]
con = duckdb.connect()
q = ("SELECT labels['route'] AS route, labels['code'] AS code, count(*) AS n, sum(value) AS total "
     "FROM read_parquet(?) WHERE metric = 'http_requests_total' "
     f"AND timestamp >= TIMESTAMPTZ '{sys.argv[3]} 00:00:00+00' AND timestamp < TIMESTAMPTZ '{sys.argv[4]} 00:00:00+00' "
     "GROUP BY 1, 2 ORDER BY 1, 2")
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    rows = con.execute(q, [files]).fetchall()
    times.append(time.perf_counter() - t)
print(f"duckdb group-by: {len(rows)} groups over {len(files)} files; seconds per run: "
      + " ".join(f"{x:.3f}" for x in times) + f"; best {int(sys.argv[5])/min(times)/1e6:.1f}M rows/s")
PY

