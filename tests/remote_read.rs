//! Prometheus remote read against the real binary: both response types,
//! from the head and from files, per tenant, bounded; the real Prometheus
//! reading Strata back is in `prometheus_sender.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, payload, series};
use prost::Message;
use strata_ingest::remote_read::proto::{
    ChunkedReadResponse, LabelMatcher, Query, ReadRequest, ReadResponse,
};
use strata_ingest::remote_read::xor;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STEP: i64 = 15_000;
const STALE: u64 = 0x7ff0_0000_0000_0002;

/// EQ = 0, NEQ = 1, RE = 2, NRE = 3.
fn query(start: i64, end: i64, matchers: &[(i32, &str, &str)]) -> Query {
    Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers: matchers
            .iter()
            .map(|&(t, n, v)| LabelMatcher {
                r#type: t,
                name: n.to_owned(),
                value: v.to_owned(),
            })
            .collect(),
    }
}

/// POSTs a read request as Prometheus does; status, content type, body.
fn read(
    server: &Server,
    tenant: &str,
    queries: Vec<Query>,
    accepted: Vec<i32>,
) -> (u16, String, Vec<u8>) {
    let body = snap::raw::Encoder::new()
        .compress_vec(
            &ReadRequest {
                queries,
                accepted_response_types: accepted,
            }
            .encode_to_vec(),
        )
        .unwrap();
    raw_read(server, tenant, &body)
}

fn raw_read(server: &Server, tenant: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut resp = common::agent()
        .post(&server.url("/api/v1/read"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .header("X-Scope-OrgID", tenant)
        .send(body)
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (status, ct, body)
}

type Answer = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

/// A samples answer: per query, each series' labels and samples (values
/// as bits, so stale markers compare).
fn samples(body: &[u8]) -> Vec<Answer> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    ReadResponse::decode(raw.as_slice())
        .unwrap()
        .results
        .into_iter()
        .map(|r| {
            r.timeseries
                .into_iter()
                .map(|s| {
                    (
                        s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                        s.samples
                            .iter()
                            .map(|s| (s.timestamp, s.value.to_bits()))
                            .collect(),
                    )
                })
                .collect()
        })
        .collect()
}

/// A streamed answer: frames checked (CRC-32C) and their chunks decoded,
/// a series split over frames joined again.
fn streamed(mut b: &[u8], queries: usize) -> Vec<Answer> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut out: Vec<Answer> = vec![Vec::new(); queries];
    while !b.is_empty() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = b[0];
            b = &b[1..];
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let sum = u32::from_be_bytes(b[..4].try_into().unwrap());
        let msg = &b[4..4 + len];
        assert_eq!(crc.checksum(msg), sum, "frame checksum");
        b = &b[4 + len..];
        let frame = ChunkedReadResponse::decode(msg).unwrap();
        let answer = &mut out[usize::try_from(frame.query_index).unwrap()];
        for s in frame.chunked_series {
            let labels: Vec<(String, String)> =
                s.labels.into_iter().map(|l| (l.name, l.value)).collect();
            let mut points = Vec::new();
            for c in s.chunks {
                assert_eq!(c.r#type, 1, "XOR");
                let d = xor::decode(&c.data).unwrap();
                assert_eq!((c.min_time_ms, c.max_time_ms), (d[0].0, d[d.len() - 1].0));
                points.extend(d.into_iter().map(|(t, v)| (t, v.to_bits())));
            }
            match answer.last_mut() {
                Some((l, p)) if *l == labels => p.extend(points),
                _ => answer.push((labels, points)),
            }
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn points(range: std::ops::Range<i64>, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    range.map(|i| (T0 + i * STEP, value(i))).collect()
}

fn bits(p: &[(i64, f64)]) -> Vec<(i64, u64)> {
    p.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

#[test]
fn remote_read_answers_samples_and_chunks_from_head_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let req = [
        ("__name__", "http_requests_total"),
        ("code", "200"),
        ("job", "api"),
    ];
    let up = [("__name__", "up"), ("job", "api")];
    let counter = |i: i64| (i * 7) as f64 + 0.25;
    // The first half to files, the second half (and a stale marker) in
    // the head; another tenant's series of the same name apart.
    let (s, b) = server.write(
        Some("acme"),
        &payload(vec![series(&req, &points(0..150, counter))]),
    );
    assert_eq!(s, 204, "{b}");
    let (s, b) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(s, 200, "{b}");
    let mut up_points = points(0..299, |_| 1.0);
    up_points.push((T0 + 299 * STEP, f64::from_bits(STALE)));
    let (s, b) = server.write(
        Some("acme"),
        &payload(vec![
            series(&req, &points(150..300, counter)),
            series(&up, &up_points),
        ]),
    );
    assert_eq!(s, 204, "{b}");
    let (s, _) = server.write(
        Some("other"),
        &payload(vec![series(&req, &points(0..3, |_| -1.0))]),
    );
    assert_eq!(s, 204);

    let all = points(0..300, counter);
    let end = T0 + 300 * STEP;
    let queries = || {
        vec![
            query(
                T0,
                end,
                &[(0, "__name__", "http_requests_total"), (0, "job", "api")],
            ),
            // Inclusive bounds; a regex on the name, a negative matcher.
            query(
                T0 + 100 * STEP,
                T0 + 200 * STEP,
                &[(2, "__name__", "http_.*|up"), (1, "code", "500")],
            ),
            query(T0, end, &[(0, "__name__", "nothing_here")]),
        ]
    };
    let want: Vec<Answer> = vec![
        vec![(labels(&req), bits(&all))],
        vec![
            (labels(&req), bits(&all[100..=200])),
            (labels(&up), bits(&up_points[100..=200])),
        ],
        vec![],
    ];

    let (status, ct, body) = read(&server, "acme", queries(), vec![]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/x-protobuf");
    assert_eq!(samples(&body), want);

    // Streamed chunks when the client asks for them first.
    let (status, ct, body) = read(&server, "acme", queries(), vec![1, 0]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        ct,
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    assert_eq!(streamed(&body, 3), want);
    // The stale marker is sent as stored.
    let (_, _, body) = read(
        &server,
        "acme",
        vec![query(T0, end, &[(0, "__name__", "up")])],
        vec![1],
    );
    let got = streamed(&body, 1);
    assert_eq!(got[0][0].1.last(), Some(&(T0 + 299 * STEP, STALE)));

    // Each tenant reads its own.
    let (status, _, body) = read(&server, "other", queries(), vec![]);
    assert_eq!(status, 200);
    let got = samples(&body);
    assert_eq!(got[0], vec![(labels(&req), bits(&points(0..3, |_| -1.0)))]);
    assert!(got[1].is_empty());
}

#[test]
fn bad_and_oversized_remote_reads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--query-max-samples", "100"]);
    let s = [("__name__", "m"), ("job", "a")];
    let (st, _) = server.write(
        Some("acme"),
        &payload(vec![series(&s, &points(0..60, |i| i as f64))]),
    );
    assert_eq!(st, 204);
    let one = |start: i64| query(start, T0 + 60 * STEP, &[(0, "__name__", "m")]);

    // Within the bound alone, over it together (the bound is per request).
    let (status, _, _) = read(&server, "acme", vec![one(T0)], vec![]);
    assert_eq!(status, 200);
    let (status, _, body) = read(&server, "acme", vec![one(T0), one(T0)], vec![]);
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        "exceeded sample limit (100)"
    );

    let text = |r: (u16, String, Vec<u8>)| (r.0, String::from_utf8_lossy(&r.2).into_owned());
    let (status, body) = text(raw_read(&server, "acme", b"not snappy"));
    assert_eq!(status, 400);
    assert!(body.contains("snappy"), "{body}");
    let (status, body) = text(read(&server, "acme", vec![one(T0)], vec![9]));
    assert_eq!(status, 400);
    assert!(
        body.contains("does not support any of the requested response types"),
        "{body}"
    );
    let (status, body) = text(read(
        &server,
        "acme",
        vec![query(T0, T0 + 1, &[(2, "job", "(")])],
        vec![],
    ));
    assert_eq!(status, 400);
    assert!(body.contains("illegal regex"), "{body}");
}

/// Native histograms are in a samples answer, from the head and from
/// files, with float counts and the same buckets as written; a series
/// with floats too carries both.
#[test]
fn remote_read_answers_native_histograms() {
    use strata_ingest::remote_write::proto::{BucketSpan, Histogram};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let with = |ts: i64, count: u64| {
        let mut s = series(&[("__name__", "pick_seconds"), ("job", "wms")], &[]);
        s.histograms.push(Histogram {
            count_int: Some(count),
            zero_count_int: Some(1),
            zero_threshold: 0.001,
            sum: 2.5,
            schema: 1,
            // Buckets 0, 1 and 4: counts 1, 1 and count - 3.
            positive_spans: vec![
                BucketSpan {
                    offset: 0,
                    length: 2,
                },
                BucketSpan {
                    offset: 2,
                    length: 1,
                },
            ],
            positive_deltas: vec![1, 0, count as i64 - 4],
            timestamp: ts,
            ..Default::default()
        });
        payload(vec![s])
    };
    assert_eq!(server.write(Some("acme"), &with(T0, 5)).0, 204);
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    assert_eq!(server.write(Some("acme"), &with(T0 + STEP, 9)).0, 204);
    let (status, ct, body) = read(
        &server,
        "acme",
        vec![query(T0 - 1, T0 + STEP, &[(0, "__name__", "pick_seconds")])],
        vec![],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/x-protobuf");
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let got = ReadResponse::decode(raw.as_slice()).unwrap();
    let s = &got.results[0].timeseries[0];
    assert_eq!(
        s.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect::<Vec<_>>(),
        [("__name__", "pick_seconds"), ("job", "wms")]
    );
    assert!(s.samples.is_empty());
    // (time, count, spans, counts) of each histogram.
    type Read = (i64, Option<f64>, Vec<(i32, u32)>, Vec<f64>);
    let h: Vec<Read> = s
        .histograms
        .iter()
        .map(|h| {
            (
                h.timestamp,
                h.count_float,
                h.positive_spans
                    .iter()
                    .map(|s| (s.offset, s.length))
                    .collect(),
                h.positive_counts.clone(),
            )
        })
        .collect();
    assert_eq!(
        h,
        [
            (T0, Some(5.0), vec![(0, 2), (2, 1)], vec![1.0, 1.0, 2.0]),
            (
                T0 + STEP,
                Some(9.0),
                vec![(0, 2), (2, 1)],
                vec![1.0, 1.0, 6.0]
            ),
        ]
    );
    assert_eq!(s.histograms[0].zero_count_float, Some(1.0));
    assert_eq!(s.histograms[0].schema, 1);
}
