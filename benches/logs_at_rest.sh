#!/usr/bin/env bash
# Logs at rest, in their final form: BYTES of generated lines (default
# 1GiB; strata-loggen, the logs bench's generator: 240 streams of Odoo,
# Traefik, PostgreSQL... lines) dated across yesterday, a closed UTC day,
# go into an empty Strata. Then:
#   1. SIGTERM flushes the head: the flush files' bytes per raw line byte;
#   2. `strata compact` merges the day into its day file (lines at
#      storage.day_file_zstd_level): bytes per raw line byte, the line
#      index's share, and the merge's CPU and wall time.
#
#   benches/logs_at_rest.sh [BYTES]
#   ZSTD=9 benches/logs_at_rest.sh      (another day level; default 17)
#
# Needs: cargo build --release -p strata -p strata-benches.
set -euo pipefail
export STRATA_PG_LISTEN=off STRATA_FLIGHT_LISTEN=off
cd "$(dirname "$0")/.."
BYTES=${1:-1GiB}
PORT=${PORT:-19482}
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}/release
STRATA=${STRATA:-$BIN/strata}
WORK=$(mktemp -d /tmp/strata-logs-at-rest.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT
# shellcheck source=benches/lib.sh
. benches/lib.sh
# The day level through a config file: `strata compact` reads files and
# flags, not the server's environment.
printf '[storage]\nday_file_zstd_level = %s\n' "${ZSTD:-17}" >"$WORK/strata.toml"
# Yesterday, 00:00:10 to 23:50 UTC.
END=$(( $(date +%s) / 86400 * 86400 - 600 ))

"$STRATA" serve --data-dir "$WORK" --listen "127.0.0.1:$PORT" --log-level warn 2>"$WORK/strata.log" &
PID=$!
wait_http "http://127.0.0.1:$PORT/-/ready"
"$BIN/strata-loggen" --url "http://127.0.0.1:$PORT/loki/api/v1/push" --bytes "$BYTES" \
  --tenant logs --span-s 85800 --end-s "$END" >/dev/null
raw=$(curl -fsS -H 'X-Scope-OrgID: logs' -H 'Content-Type: application/json' \
  -d '{"query": "SELECT sum(length(line)) AS raw, count(*) AS n FROM logs"}' \
  "http://127.0.0.1:$PORT/api/v1/sql" | python3 -c 'import json,sys; r=json.load(sys.stdin)["rows"][0]; print(r[0], r[1])')
set -- $raw
kill -TERM "$PID"
wait "$PID" || true
TABLE="$WORK/objects/tenants/logs/logs"

sizes() { # file-name prefix: total bytes
  find "$TABLE" -name "$1-*.parquet" -printf '%s\n' | awk '{s+=$1} END {print s+0}'
}


ratio() { python3 -c "print(round($1 / $2, 4))"; }

flush=$(sizes flush)
echo "lines=$2 raw_bytes=$1"
echo "flush files: bytes=$flush bytes_per_raw_byte=$(ratio "$flush" "$1") line_index_share=$(ratio "$(line_index_bytes "$TABLE" flush-)" "$flush")"
/usr/bin/time -f "%U %S %e" -o "$WORK/time" "$STRATA" compact --config "$WORK/strata.toml" --data-dir "$WORK" >/dev/null
read -r user sys wall <"$WORK/time"
day=$(sizes day)
echo "day file (zstd ${ZSTD:-17}): bytes=$day bytes_per_raw_byte=$(ratio "$day" "$1") line_index_share=$(ratio "$(line_index_bytes "$TABLE" day-)" "$day") compact_cpu_s=$(python3 -c "print(round($user + $sys, 1))") compact_wall_s=$wall"
