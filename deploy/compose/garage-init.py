#!/usr/bin/env python3
"""Bootstraps a single-node Garage for Strata through Garage's admin API v2:
gives the node a role in the layout, imports the access key Strata uses,
creates the bucket and lets the key read and write it.

Idempotent (a restarted stack runs it again and changes nothing), standard
library only (runs in a plain python image). Configured by environment:

  GARAGE_ADMIN_URL     http://garage:3903
  GARAGE_ADMIN_TOKEN   the admin_token of garage.toml
  GARAGE_BUCKET        strata
  GARAGE_KEY_ID        GK + 24 hex digits
  GARAGE_KEY_SECRET    64 hex digits
  GARAGE_CAPACITY      bytes the node offers (default 10 GiB)
  GARAGE_WAIT_S        how long to wait for Garage to answer (default 120)
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

ADMIN = os.environ.get("GARAGE_ADMIN_URL", "http://garage:3903").rstrip("/")
TOKEN = os.environ["GARAGE_ADMIN_TOKEN"]
BUCKET = os.environ.get("GARAGE_BUCKET", "strata")
KEY_ID = os.environ["GARAGE_KEY_ID"]
KEY_SECRET = os.environ["GARAGE_KEY_SECRET"]
CAPACITY = int(os.environ.get("GARAGE_CAPACITY", str(10 << 30)))
WAIT_S = float(os.environ.get("GARAGE_WAIT_S", "120"))


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


def call(endpoint, body=None, query=""):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{ADMIN}/v2/{endpoint}{query}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        raise ApiError(e.code, e.read().decode(errors="replace")) from None


def log(msg):
    print(f"garage-init: {msg}", flush=True)


def wait_for_garage():
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return call("GetClusterStatus")
        except (OSError, ApiError) as e:
            if time.monotonic() > deadline:
                sys.exit(f"garage-init: Garage did not answer at {ADMIN} within {WAIT_S:.0f} s: {e}")
            time.sleep(1)


def ensure_layout(status):
    if status["layoutVersion"] > 0:
        log(f"layout version {status['layoutVersion']} already applied")
        return
    node = status["nodes"][0]["id"]
    layout = call(
        "UpdateClusterLayout",
        {"roles": [{"id": node, "zone": "dc1", "capacity": CAPACITY, "tags": []}]},
    )
    call("ApplyClusterLayout", {"version": layout["version"] + 1})
    log(f"node {node[:16]} given {CAPACITY} bytes in zone dc1; layout applied")


def ensure_key():
    try:
        call("GetKeyInfo", query=f"?id={KEY_ID}")
        log(f"key {KEY_ID} already present")
    except ApiError as e:
        if e.status != 404:
            raise
        call("ImportKey", {"accessKeyId": KEY_ID, "secretAccessKey": KEY_SECRET, "name": "strata"})
        log(f"key {KEY_ID} imported")


def ensure_bucket():
    try:
        info = call("GetBucketInfo", query=f"?globalAlias={BUCKET}")
        log(f"bucket {BUCKET} already present")
    except ApiError as e:
        if e.status != 404:
            raise
        info = call("CreateBucket", {"globalAlias": BUCKET})
        log(f"bucket {BUCKET} created")
    call(
        "AllowBucketKey",
        {
            "bucketId": info["id"],
            "accessKeyId": KEY_ID,
            "permissions": {"read": True, "write": True, "owner": True},
        },
    )
    log(f"key {KEY_ID} may read and write {BUCKET}")


def main():
    ensure_layout(wait_for_garage())
    ensure_key()
    ensure_bucket()


if __name__ == "__main__":
    main()
