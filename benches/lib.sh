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
