"""Writes SERIES native-histogram series x ROUNDS samples (one a series a
round, 15 s apart) by remote write 1.0 to a Strata at URL, as Prometheus
sends them: integer histograms of schema 3, each series a counter of
request latencies (lognormal, ~20 new observations a round) whose
populated buckets grow as it runs. Bodies are encoded first; the POSTs
are timed alone. Checks each answer counts every histogram written,
flushes every 60 rounds and at the end. Prints JSON: histograms written,
seconds spent posting, and the mean populated buckets per histogram.
benches/histograms_at_rest.sh runs it.

    histograms_at_rest.py URL SERIES ROUNDS
"""
import json, math, random, struct, sys, time, urllib.request
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

def zigzag(n):
    return (n << 1) ^ (n >> 63)

def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload

def label(n, v):
    return field(1, 2, n.encode()) + field(2, 2, v.encode())

SCHEMA = 3

def histogram(ts, buckets, zero, total, sum_):
    """An integer histogram message: spans over the populated buckets
    (gaps of up to two empty buckets kept inside a span, as Prometheus
    does), counts as deltas."""
    idx = sorted(buckets)
    spans, deltas = [], []
    prev_end, prev_count = None, 0
    for i in idx:
        if prev_end is not None and i - prev_end <= 2:
            for _ in range(i - prev_end):  # empty buckets inside the span
                deltas.append(-prev_count)
                prev_count = 0
            spans[-1][1] += i - prev_end
        else:
            offset = i if prev_end is None else i - prev_end
            spans.append([offset, 0])
        c = buckets[i]
        deltas.append(c - prev_count)
        prev_count = c
        spans[-1][1] += 1
        prev_end = i + 1
    out = field(1, 0, varint(total)) + field(3, 1, struct.pack("<d", sum_))
    out += field(4, 0, varint(zigzag(SCHEMA))) + field(5, 1, struct.pack("<d", 1e-128))
    out += field(6, 0, varint(zero))
    for off, ln in spans:
        out += field(11, 2, field(1, 0, varint(zigzag(off))) + field(2, 0, varint(ln)))
    out += field(12, 2, b"".join(varint(zigzag(d)) for d in deltas))
    out += field(15, 0, varint(ts))
    return out, len(idx)

url, n_series, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = (int(time.time()) // 86400 - 1) * 86400 * 1000
random.seed(7)
state = [({}, 0, 0, 0.0) for _ in range(n_series)]
bodies, populated = [], 0
for step in range(k):
    body = b""
    ts = t0 + step * 15_000
    for s in range(n_series):
        buckets, zero, total, sum_ = state[s]
        for _ in range(20):
            v = random.lognormvariate(-2.0 + (s % 7) * 0.3, 0.8)
            i = math.ceil(math.log2(v) * 2 ** SCHEMA)
            buckets[i] = buckets.get(i, 0) + 1
            total += 1
            sum_ += v
        state[s] = (buckets, zero, total, sum_)
        labels = sorted([("__name__", "odoo_http_request_duration_seconds"),
                         ("job", "odoo"), ("instance", f"odoo-{s % 20}:8069"),
                         ("route", f"/web/dataset/call_kw/{s // 20}")])
        h, n = histogram(ts, buckets, zero, total, sum_)
        populated += n
        body += field(1, 2, b"".join(field(1, 2, label(a, b)) for a, b in labels) + field(4, 2, h))
    bodies.append(bytes(cramjam.snappy.compress_raw(body)))

def post(path, data, headers):
    return urllib.request.urlopen(urllib.request.Request(url + path, data=data, headers=headers, method="POST"))

spent = 0.0
for step, body in enumerate(bodies):
    start = time.perf_counter()
    resp = post("/api/v1/write", body, {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    spent += time.perf_counter() - start
    assert resp.status == 204, resp.status
    assert resp.headers["X-Prometheus-Remote-Write-Histograms-Written"] == str(n_series)
    if (step + 1) % 60 == 0:
        post("/api/v1/admin/flush", b"", {})
post("/api/v1/admin/flush", b"", {})
print(json.dumps({"written": n_series * k, "post_s": spent, "buckets": populated / (n_series * k)}))
