# Shared by the bench scripts: source it.

# Waits until an HTTP URL answers 2xx (up to 60 s).
wait_http() { # url
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timeout waiting for $1" >&2
  return 1
}

# Bytes of the line indexes (footer key strata.line_index.v1) in a logs
# table's Parquet files whose names start with PREFIX (default: all).
line_index_bytes() { # table-dir [prefix]
  python3 - "$1" "${2:-}" <<'PY'
import os, re, struct, sys
total = 0
for dirpath, _, names in os.walk(sys.argv[1]):
    for n in names:
        if not (n.startswith(sys.argv[2]) and n.endswith('.parquet')):
            continue
        with open(os.path.join(dirpath, n), 'rb') as f:
            f.seek(-8, 2)
            meta_len = struct.unpack('<i', f.read(4))[0]
            f.seek(-8 - meta_len, 2)
            footer = f.read(meta_len)
        m = re.search(rb'strata\.line_index\.v1.{1,8}?(\d+) (\d+)', footer, re.S)
        if m:
            total += int(m.group(2))
print(total)
PY
}

# Bytes of the data files a Delta table's log lists as live (what is left
# after compaction removed the files it merged).
live_table_bytes() { # table-dir
  python3 - "$1" <<'PY'
import json, os, sys
table = sys.argv[1]
live = {}
for name in sorted(os.listdir(os.path.join(table, "_delta_log"))):
    if not name.endswith(".json"):
        continue
    for line in open(os.path.join(table, "_delta_log", name)):
        action = json.loads(line)
        if "add" in action:
            live[action["add"]["path"]] = action["add"]["size"]
        if "remove" in action:
            live.pop(action["remove"]["path"], None)
print(sum(live.values()))
PY
}
