"""Writes SERIES series x ROUNDS exemplars (one a series a round, 15 s apart,
random 128-bit trace ids and 64-bit span ids, as OpenTelemetry makes them)
by remote write 1.0 to a Strata at URL, checks each answer counts every
exemplar written, and flushes every 60 rounds and at the end. benches/exemplars_at_rest.sh runs it.

    exemplars_at_rest.py URL SERIES ROUNDS
"""
import random, struct, sys, time, urllib.request
import cramjam

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload

def label(n, v):
    return field(1, 2, n.encode()) + field(2, 2, v.encode())

def series(labels, samples, exemplars):
    out = b"".join(field(1, 2, label(n, v)) for n, v in labels)
    for ts, val in samples:
        out += field(2, 2, field(1, 1, struct.pack("<d", val)) + field(2, 0, varint(ts)))
    for ts, val, ls in exemplars:
        ex = b"".join(field(1, 2, label(n, v)) for n, v in ls)
        ex += field(2, 1, struct.pack("<d", val)) + field(3, 0, varint(ts))
        out += field(3, 2, ex)
    return out

url, n_series, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = (int(time.time()) // 86400 - 1) * 86400 * 1000
random.seed(7)
total = 0
for step in range(k):
    body = b""
    ts = t0 + step * 15_000
    for s in range(n_series):
        labels = sorted([("__name__", "odoo_http_request_duration_seconds_bucket"),
                         ("job", "odoo"), ("instance", f"odoo-{s % 20}:8069"),
                         ("route", f"/web/dataset/call_kw/{s // 20}"), ("le", "0.5")])
        ex = [(ts - 100, random.random(), [("span_id", "%016x" % random.getrandbits(64)),
                                         ("trace_id", "%032x" % random.getrandbits(128))])]
        body += field(1, 2, series(labels, [(ts, float(step))], ex))
        total += 1
    req = urllib.request.Request(url + "/api/v1/write", data=bytes(cramjam.snappy.compress_raw(body)),
                                 headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    resp = urllib.request.urlopen(req)
    assert resp.status == 204, resp.status
    assert resp.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == str(n_series)
    if (step + 1) % 60 == 0:
        # Several flush files for compaction to merge.
        urllib.request.urlopen(urllib.request.Request(url + "/api/v1/admin/flush", data=b"", method="POST"))
urllib.request.urlopen(urllib.request.Request(url + "/api/v1/admin/flush", data=b"", method="POST"))
print(total)
