use proptest::prelude::*;
use prost::Message;

use super::proto::{self, ChunkedReadResponse, LabelMatcher, Query, ReadResponse};
use super::xor::{self, SAMPLES_PER_CHUNK, XorChunk};
use super::*;

/// A chunk's samples with their values' bits (NaNs compare).
fn decode_chunk(b: &[u8]) -> Vec<(i64, u64)> {
    xor::decode(b)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect()
}

fn encode_chunk(points: &[(i64, f64)]) -> Vec<u8> {
    let mut c = XorChunk::new();
    for &(t, v) in points {
        assert!(c.append(t, v));
    }
    c.into_bytes()
}

fn bits_of(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
    points.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// Bytes Prometheus' own `chunkenc` wrote for these samples (the Go test
/// program of github.com/SINTEF/rusty-chunkenc, `golang-tests/test.json`).
#[test]
fn chunk_bytes_are_prometheus_own() {
    use base64::Engine as _;
    let points: Vec<(i64, f64)> = (0..10)
        .map(|i| (1_234_123_324 + i, 123_535.123 + i as f64))
        .collect();
    let want = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode("AAr46PmYCUD+KPH3ztkXAe4v0FDQUdBQ0FPA")
        .unwrap();
    assert_eq!(encode_chunk(&points), want);
    assert_eq!(decode_chunk(&want), bits_of(&points));
    // Cut short, or not a chunk: no samples, no panic.
    for end in 0..want.len() - 1 {
        assert_eq!(xor::decode(&want[..end]), None, "{end} bytes");
    }
}

#[test]
fn every_delta_of_delta_bucket_and_its_edges_round_trip() {
    // Each edge of each bucket, both signs (2^13 is the 14-bit bucket's
    // top, -2^13 the next bucket's), then 64-bit jumps.
    let mut t = 1_000_000_000_i64;
    let mut delta = 15_000_i64;
    let mut points = vec![(t, 1.0)];
    t += delta;
    points.push((t, 1.0));
    let dods = [
        0,
        1,
        -1,
        8191,
        8192,
        -8191,
        -8192,
        65_535,
        65_536,
        -65_536,
        524_288,
        -524_288,
        524_289,
        1 << 40,
        -(1 << 40),
        0,
    ];
    for (i, dod) in dods.into_iter().enumerate() {
        delta += dod;
        t += delta;
        points.push((t, i as f64));
    }
    assert_eq!(decode_chunk(&encode_chunk(&points)), bits_of(&points));
}

#[test]
fn stale_markers_and_special_values_keep_their_bits() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let values = [
        0.0,
        -0.0,
        stale,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        1e300,
        f64::NAN,
        3.5,
    ];
    let points: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 1000 - 3000, v))
        .collect();
    assert_eq!(decode_chunk(&encode_chunk(&points)), bits_of(&points));
}

proptest! {
    #[test]
    fn chunks_round_trip(
        start in -(1i64 << 50)..(1i64 << 50),
        steps in prop::collection::vec((0i64..(1 << 34), any::<u64>(), 0u8..4), 1..200),
    ) {
        let mut t = start;
        let mut prev = 0u64;
        let mut points = Vec::new();
        for (step, bits, how) in steps {
            t += match how { 0 => 15_000, 1 => 15_000 + step % 3, _ => step };
            // Values alike (counters) as often as not.
            let v = match how { 0 => prev, 1 => prev.wrapping_add(step as u64), _ => bits };
            prev = v;
            points.push((t, f64::from_bits(v)));
        }
        prop_assert_eq!(decode_chunk(&encode_chunk(&points)), bits_of(&points));
    }
}

fn request(queries: Vec<Query>, accepted: Vec<i32>) -> Vec<u8> {
    let raw = proto::ReadRequest {
        queries,
        accepted_response_types: accepted,
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

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

#[test]
fn requests_decode_with_their_response_type() {
    let q = query(
        1000,
        2000,
        &[
            (0, "__name__", "up"),
            (1, "job", "a"),
            (2, "i", "x.*"),
            (3, "z", ""),
        ],
    );
    let got =
        decode_read_request(&request(vec![q.clone()], vec![]), DecodeLimits::default()).unwrap();
    assert_eq!(got.response, ResponseType::Samples);
    assert_eq!(
        got.queries,
        vec![ReadQuery {
            start_ms: 1000,
            end_ms: 2000,
            matchers: vec![
                ReadMatcher {
                    kind: MatchKind::Equal,
                    name: "__name__".into(),
                    value: "up".into()
                },
                ReadMatcher {
                    kind: MatchKind::NotEqual,
                    name: "job".into(),
                    value: "a".into()
                },
                ReadMatcher {
                    kind: MatchKind::Regex,
                    name: "i".into(),
                    value: "x.*".into()
                },
                ReadMatcher {
                    kind: MatchKind::NotRegex,
                    name: "z".into(),
                    value: "".into()
                },
            ],
        }]
    );
    // The client's order decides; unknown types are passed over.
    for (accepted, want) in [
        (vec![1, 0], ResponseType::StreamedXorChunks),
        (vec![0, 1], ResponseType::Samples),
        (vec![7, 1], ResponseType::StreamedXorChunks),
    ] {
        let got = decode_read_request(&request(vec![q.clone()], accepted), DecodeLimits::default())
            .unwrap();
        assert_eq!(got.response, want);
    }
}

#[test]
fn bad_requests_are_refused_with_their_reason() {
    let limits = DecodeLimits::default();
    let err = |body: &[u8], limits| decode_read_request(body, limits).unwrap_err().to_string();
    assert!(
        err(&request(vec![], vec![7]), limits)
            .contains("does not support any of the requested response types: [7]")
    );
    assert!(
        err(
            &request(vec![query(0, 1, &[(4, "a", "b")])], vec![]),
            limits
        )
        .contains("query 0: invalid matcher type 4")
    );
    assert!(
        err(
            &request(vec![query(0, 0, &[]), query(5, 4, &[])], vec![]),
            limits
        )
        .contains("query 1: end timestamp 4 is before start timestamp 5")
    );
    assert!(err(b"not snappy", limits).contains("snappy"));
    let junk = snap::raw::Encoder::new().compress_vec(&[0xff; 16]).unwrap();
    assert!(err(&junk, limits).starts_with("invalid protobuf ReadRequest"));
    let big = request(vec![query(0, 1, &[(0, "a", &"x".repeat(5000))])], vec![]);
    let e = decode_read_request(
        &big,
        DecodeLimits {
            max_decoded_bytes: 1000,
            ..DecodeLimits::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), strata_types::ErrorKind::PayloadTooLarge);
}

#[test]
fn samples_answers_are_one_snappy_read_response() {
    let mut r = SamplesResponse::new(2);
    let h = crate::remote_write::proto::Histogram {
        count_float: Some(3.0),
        sum: 2.5,
        timestamp: 3000,
        ..Default::default()
    };
    r.push(
        1,
        [("__name__", "up"), ("job", "a")],
        &[(1000, 1.0), (2000, 0.0)],
        vec![h.clone()],
    );
    r.push(5, [("__name__", "lost")], &[(1, 1.0)], Vec::new());
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&r.encode())
        .unwrap();
    let got = ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(got.results.len(), 2);
    assert!(got.results[0].timeseries.is_empty());
    let s = &got.results[1].timeseries[0];
    let labels: Vec<(&str, &str)> = s
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels, [("__name__", "up"), ("job", "a")]);
    let samples: Vec<(i64, f64)> = s.samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(samples, [(1000, 1.0), (2000, 0.0)]);
    assert_eq!(s.histograms, [h]);
}

/// Splits a streamed body into its messages, checking each frame's CRC.
fn frames(mut b: &[u8]) -> Vec<ChunkedReadResponse> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let byte = b[0];
            b = &b[1..];
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let crc = u32::from_be_bytes(b[..4].try_into().unwrap());
        let msg = &b[4..4 + len];
        assert_eq!(crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(msg), crc);
        out.push(ChunkedReadResponse::decode(msg).unwrap());
        b = &b[4 + len..];
    }
    out
}

#[test]
fn streamed_series_are_cut_into_chunks_and_frames() {
    let points: Vec<(i64, f64)> = (0..300).map(|i| (i * 15_000, (i * i) as f64)).collect();
    let labels = [("__name__", "up"), ("job", "a")];
    let mut body = Vec::new();
    write_series_frames(&mut body, 3, labels, &points, MAX_BYTES_IN_FRAME);
    let got = frames(&body);
    assert_eq!(got.len(), 1, "one frame holds the whole series");
    assert_eq!(got[0].query_index, 3);
    let s = &got[0].chunked_series[0];
    assert_eq!(s.labels.len(), 2);
    let sizes: Vec<usize> = s
        .chunks
        .iter()
        .map(|c| decode_chunk(&c.data).len())
        .collect();
    assert_eq!(sizes, [SAMPLES_PER_CHUNK, SAMPLES_PER_CHUNK, 60]);
    let mut all = Vec::new();
    for c in &s.chunks {
        assert_eq!(c.r#type, proto::CHUNK_XOR);
        let d = decode_chunk(&c.data);
        assert_eq!((c.min_time_ms, c.max_time_ms), (d[0].0, d[d.len() - 1].0));
        all.extend(d);
    }
    assert_eq!(all, bits_of(&points));

    // A small frame bound: one chunk per frame, each frame with the labels.
    let mut body = Vec::new();
    write_series_frames(&mut body, 0, labels, &points, 100);
    let got = frames(&body);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|f| f.chunked_series.len() == 1
        && f.chunked_series[0].chunks.len() == 1
        && f.chunked_series[0].labels.len() == 2));
}
