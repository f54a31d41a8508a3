use strata_types::{LabelError, NameScheme, STALE_NAN_BITS, WriteBatch, stale_nan};

use super::proto::{self, encode_snappy};
use super::*;
use crate::{MetricMetadata, MetricType};

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries::from_pairs(labels, samples)
}

fn decode(req: &proto::WriteRequest) -> Result<Decoded, IngestError> {
    decode_v1(
        TenantId::try_new("t").unwrap(),
        &encode_snappy(req),
        DecodeLimits::default(),
    )
}

#[test]
fn decodes_samples_and_keeps_stale_markers_exact() {
    let req = proto::WriteRequest {
        timeseries: vec![ts(
            &[("__name__", "up"), ("job", "a")],
            &[(1, 1.0), (2, stale_nan())],
        )],
        metadata: vec![],
    };
    let d = decode(&req).unwrap();
    assert_eq!(d.batch.sample_count(), 2);
    let first = d.batch.series().next().unwrap();
    assert_eq!(first.label("job"), Some("a"));
    assert_eq!(first.samples()[1].value.to_bits(), STALE_NAN_BITS);
    assert!(!d.skipped.any());
}

#[test]
fn reads_exemplars_histograms_and_metadata() {
    let mut with_hist = ts(&[("__name__", "h")], &[]);
    with_hist.histograms.push(proto::Histogram {
        count_int: Some(3),
        zero_count_int: Some(3),
        sum: 1.0,
        timestamp: 5,
        ..Default::default()
    });
    let mut with_ex = ts(&[("__name__", "c")], &[(5, 1.0)]);
    with_ex.exemplars.push(proto::Exemplar {
        labels: vec![proto::Label {
            name: "trace_id".into(),
            value: "abc".into(),
        }],
        value: 1.0,
        timestamp: 5,
    });
    // Labels over 128 characters: skipped, as Prometheus drops it.
    with_ex.exemplars.push(proto::Exemplar {
        labels: vec![proto::Label {
            name: "trace_id".into(),
            value: "x".repeat(121),
        }],
        value: 2.0,
        timestamp: 6,
    });
    // A series with exemplars and no samples keeps its exemplars.
    let mut only_ex = ts(&[("__name__", "e")], &[]);
    only_ex.exemplars.push(proto::Exemplar {
        labels: vec![],
        value: 3.0,
        timestamp: 7,
    });
    let req = proto::WriteRequest {
        timeseries: vec![with_hist, with_ex, only_ex],
        metadata: vec![
            proto::MetricMetadata {
                r#type: 1,
                metric_family_name: "c".into(),
                help: "h".into(),
                unit: String::new(),
            },
            // Says nothing: dropped.
            proto::MetricMetadata {
                r#type: 0,
                metric_family_name: "d".into(),
                help: String::new(),
                unit: String::new(),
            },
            proto::MetricMetadata {
                r#type: 3,
                metric_family_name: "rpc_duration_seconds".into(),
                help: "RPC latency.".into(),
                unit: "seconds".into(),
            },
            // A type no version defines reads as unknown.
            proto::MetricMetadata {
                r#type: 99,
                metric_family_name: "e".into(),
                help: "e help".into(),
                unit: String::new(),
            },
        ],
    };
    let d = decode(&req).unwrap();
    assert_eq!(d.skipped, Skipped { exemplars: 1 });
    assert_eq!(d.histograms.len(), 1);
    assert_eq!(d.histograms[0].labels.metric_name(), "h");
    assert_eq!(d.histograms[0].samples[0].histogram.zero_count, 3.0);
    type Kept<'a> = Vec<(&'a str, Vec<(i64, f64, usize)>)>;
    let kept: Kept = d
        .exemplars
        .iter()
        .map(|s| {
            (
                s.labels.metric_name(),
                s.exemplars
                    .iter()
                    .map(|e| (e.timestamp_ms, e.value, e.labels.len()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![("c", vec![(5, 1.0, 1)]), ("e", vec![(7, 3.0, 0)])]
    );
    let meta = |metric: &str, kind, help: &str, unit: &str| MetricMetadata {
        metric: metric.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    };
    assert_eq!(
        d.metadata,
        vec![
            meta("c", MetricType::Counter, "h", ""),
            meta(
                "rpc_duration_seconds",
                MetricType::Histogram,
                "RPC latency.",
                "seconds"
            ),
            meta("e", MetricType::Unknown, "e help", ""),
        ]
    );
    assert_eq!(
        d.batch.series_count(),
        1,
        "histogram-only series carries no float samples"
    );
}

#[test]
fn invalid_labels_reject_the_whole_request_with_a_named_reason() {
    let good = ts(&[("__name__", "ok")], &[(1, 1.0)]);
    let cases = [
        (
            ts(&[("__name__", "x"), ("", "v")], &[(1, 1.0)]),
            "empty label name",
        ),
        (
            ts(&[("__name__", "x"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            "duplicate label name \"a\"",
        ),
        (
            ts(&[("b", "1"), ("a", "2"), ("__name__", "x")], &[(1, 1.0)]),
            "not sorted",
        ),
        (ts(&[("job", "x")], &[(1, 1.0)]), "missing the metric name"),
    ];
    for (bad, want) in cases {
        let req = proto::WriteRequest {
            timeseries: vec![good.clone(), bad],
            metadata: vec![],
        };
        let err = decode(&req).unwrap_err();
        assert!(
            matches!(err, IngestError::InvalidSeries { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(want), "{err} lacks {want}");
        assert_eq!(err.kind(), strata_types::ErrorKind::BadInput);
    }
    let err = decode(&proto::WriteRequest {
        timeseries: vec![ts(&[("__name__", "x"), ("a", "")], &[(1, 1.0)])],
        metadata: vec![],
    })
    .unwrap_err();
    assert!(matches!(
        err,
        IngestError::InvalidSeries {
            source: LabelError::EmptyValue { .. },
            ..
        }
    ));
}

/// Names are any UTF-8 text by default (Prometheus 3); a tenant on the
/// legacy scheme gets the whole request refused, naming the name.
#[test]
fn utf8_names_are_accepted_unless_the_scheme_is_legacy() {
    let req = proto::WriteRequest {
        timeseries: vec![
            ts(&[("__name__", "ok")], &[(1, 1.0)]),
            ts(
                &[
                    ("__name__", "http.server.duration"),
                    ("région", "ü"),
                    ("service.name", "api"),
                ],
                &[(1, 2.0)],
            ),
        ],
        metadata: vec![],
    };
    let d = decode(&req).unwrap();
    assert_eq!(d.batch.series_count(), 2);
    let labels: Vec<(String, String)> = d
        .batch
        .series()
        .nth(1)
        .unwrap()
        .labels()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        labels[0],
        ("__name__".into(), "http.server.duration".into())
    );
    assert_eq!(labels[2], ("service.name".into(), "api".into()));
    let legacy = |req: &proto::WriteRequest| {
        decode_v1(
            TenantId::try_new("t").unwrap(),
            &encode_snappy(req),
            DecodeLimits {
                names: NameScheme::Legacy,
                ..DecodeLimits::default()
            },
        )
    };
    let err = legacy(&req).unwrap_err();
    assert!(
        matches!(err, IngestError::InvalidSeries { index: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("invalid metric name \"http.server.duration\""),
        "{err}"
    );
    let err = legacy(&proto::WriteRequest {
        timeseries: vec![ts(&[("__name__", "x"), ("bad-name", "1")], &[(1, 1.0)])],
        metadata: vec![],
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("invalid label name \"bad-name\""),
        "{err}"
    );
    assert_eq!(err.kind(), strata_types::ErrorKind::BadInput);
}

#[test]
fn bad_snappy_and_bad_protobuf_are_bad_input() {
    let t = || TenantId::try_new("t").unwrap();
    let err = decode_v1(t(), b"\xff\xff\xff\xff\xff\xff", DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, IngestError::Snappy { .. }), "{err}");
    let not_proto = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0f")
        .unwrap();
    let err = decode_v1(t(), &not_proto, DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, IngestError::Protobuf { .. }), "{err}");
    let big = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 1000])
        .unwrap();
    let err = decode_v1(
        t(),
        &big,
        DecodeLimits {
            max_decoded_bytes: 999,
            ..DecodeLimits::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        IngestError::TooLarge {
            len: 1000,
            max: 999
        }
    );
}

#[test]
fn negotiates_content_type_and_encoding() {
    assert_eq!(
        negotiate(Some("application/x-protobuf"), Some("snappy")),
        Ok(Proto::V1)
    );
    assert_eq!(
        negotiate(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some("snappy")
        ),
        Ok(Proto::V1)
    );
    assert_eq!(negotiate(None, None), Ok(Proto::V1));
    assert_eq!(
        negotiate(
            Some("application/x-protobuf; proto=io.prometheus.write.v2.Request"),
            Some("snappy")
        ),
        Ok(Proto::V2)
    );
    for ct in [
        "application/json",
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
    ] {
        let err = negotiate(Some(ct), Some("snappy")).unwrap_err();
        assert_eq!(err.kind(), strata_types::ErrorKind::UnsupportedMediaType);
    }
    let err = negotiate(Some("application/x-protobuf"), Some("gzip")).unwrap_err();
    assert_eq!(err.kind(), strata_types::ErrorKind::UnsupportedMediaType);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = decode_v1(TenantId::try_new("t").unwrap(), &body, DecodeLimits::default());
        let framed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        let _ = decode_v1(TenantId::try_new("t").unwrap(), &framed, DecodeLimits::default());
        let _ = super::decode(Proto::V2, TenantId::try_new("t").unwrap(), &framed, DecodeLimits::default());
    }
}

/// The schema of record decoded by prost, then validated the slow way.
fn reference(req: &proto::WriteRequest) -> Option<WriteBatch> {
    use prost::Message;
    let back = proto::WriteRequest::decode(req.encode_to_vec().as_slice()).ok()?;
    let mut b = WriteBatch::new(TenantId::try_new("t").unwrap());
    for ts in &back.timeseries {
        let labels: Vec<strata_types::Label> = ts
            .labels
            .iter()
            .map(|l| strata_types::Label::new(&l.name, &l.value))
            .collect();
        let labels = strata_types::Labels::try_from_sorted(labels).ok()?;
        if ts.samples.is_empty() {
            continue;
        }
        let samples: Vec<strata_types::Sample> = ts
            .samples
            .iter()
            .map(|s| strata_types::Sample {
                timestamp_ms: s.timestamp,
                value: s.value,
            })
            .collect();
        b.push(&labels, &samples);
    }
    Some(b)
}

fn arb_request() -> impl proptest::strategy::Strategy<Value = proto::WriteRequest> {
    use proptest::prelude::*;
    let label =
        ("[a-c_]{0,3}", "[a-c\\u{e9}]{0,3}").prop_map(|(name, value)| proto::Label { name, value });
    let sample = (any::<i64>(), any::<u64>()).prop_map(|(timestamp, bits)| proto::Sample {
        value: f64::from_bits(bits),
        timestamp,
    });
    let series = (
        prop::collection::vec(label, 0..4),
        prop::collection::vec(sample, 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut labels, samples, sorted, named)| {
            if named {
                labels.push(proto::Label {
                    name: "__name__".into(),
                    value: "m".into(),
                });
            }
            if sorted {
                labels.sort_by(|a, b| a.name.cmp(&b.name));
            }
            proto::TimeSeries {
                labels,
                samples,
                ..Default::default()
            }
        });
    prop::collection::vec(series, 0..5).prop_map(|timeseries| proto::WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

proptest::proptest! {
    /// The zero-copy reader agrees with prost plus slow validation on every
    /// request: same batch when valid, an error when not.
    #[test]
    fn zero_copy_reader_matches_prost(req in arb_request()) {
        let ours = decode(&req).ok().map(|d| d.batch);
        proptest::prop_assert_eq!(ours, reference(&req));
    }
}

fn decode2(req: &proto::v2::Request) -> Result<Decoded, IngestError> {
    super::decode(
        Proto::V2,
        TenantId::try_new("t").unwrap(),
        &proto::v2::encode_snappy(req),
        DecodeLimits::default(),
    )
}

#[test]
fn decodes_v2_symbols_into_the_same_batch_as_v1() {
    let series = vec![
        (
            vec![
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "api"),
            ],
            vec![(1, 10.0), (2, stale_nan())],
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "api"),
            ],
            vec![(1, 1.0)],
        ),
    ];
    let v2 = decode2(&proto::v2::Request::from_series(&series)).unwrap();
    let v1 = decode(&proto::WriteRequest {
        timeseries: series.iter().map(|(l, s)| ts(l, s)).collect(),
        metadata: vec![],
    })
    .unwrap();
    assert_eq!(v2.batch, v1.batch);
    assert_eq!(v2.skipped, Skipped::default());
    let last = v2.batch.series().next().unwrap().samples()[1].value;
    assert_eq!(last.to_bits(), STALE_NAN_BITS, "stale marker kept exact");
}

#[test]
fn v2_start_timestamps_come_back_in_sample_order() {
    let series = vec![
        (
            vec![("__name__", "a_total")],
            vec![(1000, 1.0), (2000, 2.0)],
        ),
        (vec![("__name__", "b")], vec![(1000, 3.0)]),
        (vec![("__name__", "c_total")], vec![(1000, 4.0)]),
    ];
    let mut req = proto::v2::Request::from_series(&series);
    // None set: nothing to carry.
    assert!(decode2(&req).unwrap().starts.is_empty());
    req.timeseries[2].samples[0].start_timestamp = 900;
    req.timeseries[0].samples[1].start_timestamp = 500;
    let d = decode2(&req).unwrap();
    assert_eq!(d.starts, [0, 500, 0, 900]);
    assert_eq!(d.starts.len(), d.batch.sample_count());
    // 1.0 has no start timestamps.
    let v1 = decode(&proto::WriteRequest {
        timeseries: series.iter().map(|(l, s)| ts(l, s)).collect(),
        metadata: vec![],
    })
    .unwrap();
    assert!(v1.starts.is_empty());
}

#[test]
fn v2_counts_histograms_and_exemplars_and_reads_metadata_by_symbol() {
    let mut req = proto::v2::Request::from_series(&[(vec![("__name__", "up")], vec![(1, 1.0)])]);
    // Label references into the request's symbols: `__name__` and `up`
    // as name and value.
    req.timeseries[0].exemplars.push(proto::v2::Exemplar {
        labels_refs: vec![1, 2],
        value: 1.0,
        timestamp: 1,
    });
    req.timeseries[0].metadata = Some(proto::v2::Metadata {
        r#type: 2,
        help_ref: 0,
        unit_ref: 0,
    });
    req.timeseries.push(proto::v2::TimeSeries {
        labels_refs: req.timeseries[0].labels_refs.clone(),
        histograms: vec![int_histogram(1), int_histogram(2)],
        ..Default::default()
    });
    let d = decode2(&req).unwrap();
    assert_eq!(d.batch.sample_count(), 1);
    assert_eq!(d.skipped.exemplars, 0);
    let times: Vec<i64> = d.histograms[0]
        .samples
        .iter()
        .map(|s| s.timestamp_ms)
        .collect();
    assert_eq!(times, vec![1, 2]);
    assert_eq!(d.exemplars.len(), 1);
    assert_eq!(
        d.exemplars[0].exemplars[0].labels,
        vec![("__name__".to_owned(), "up".to_owned())]
    );
    // A reference outside the symbols is refused whole, as a series' is.
    let mut bad = req.clone();
    bad.timeseries[0].exemplars[0].labels_refs = vec![1, 99];
    assert!(decode2(&bad).is_err());
    // A gauge with no help or unit (the empty symbol).
    assert_eq!(
        d.metadata,
        vec![MetricMetadata {
            metric: "up".into(),
            kind: MetricType::Gauge,
            help: String::new(),
            unit: String::new(),
        }]
    );

    // Help and unit are symbols; every series of a metric repeating its
    // metadata gives it once; a reference outside the table is refused.
    let mut req = proto::v2::Request::from_series(&[
        (
            vec![("__name__", "queue_seconds"), ("q", "a")],
            vec![(1, 1.0)],
        ),
        (
            vec![("__name__", "queue_seconds"), ("q", "b")],
            vec![(1, 2.0)],
        ),
    ]);
    let help = req.symbols.len() as u32;
    req.symbols.push("Time in the queue.".into());
    req.symbols.push("seconds".into());
    for ts in &mut req.timeseries {
        ts.metadata = Some(proto::v2::Metadata {
            r#type: 1,
            help_ref: help,
            unit_ref: help + 1,
        });
    }
    let d = decode2(&req).unwrap();
    assert_eq!(
        d.metadata,
        vec![MetricMetadata {
            metric: "queue_seconds".into(),
            kind: MetricType::Counter,
            help: "Time in the queue.".into(),
            unit: "seconds".into(),
        }]
    );
    req.timeseries[1].metadata = Some(proto::v2::Metadata {
        r#type: 1,
        help_ref: help + 2,
        unit_ref: 0,
    });
    let e = decode2(&req).unwrap_err().to_string();
    assert!(e.contains("metadata help_ref"), "{e}");
}

#[test]
fn v2_refuses_bad_symbol_references() {
    let good = proto::v2::Request::from_series(&[(vec![("__name__", "up")], vec![(1, 1.0)])]);
    let mut out_of_range = good.clone();
    out_of_range.timeseries[0].labels_refs[1] = 99;
    let mut odd = good.clone();
    odd.timeseries[0].labels_refs.push(1);
    let mut first_not_empty = good.clone();
    first_not_empty.symbols[0] = "x".into();
    let mut unsorted = proto::v2::Request::from_series(&[(
        vec![("__name__", "up"), ("b", "1"), ("a", "1")],
        vec![(1, 1.0)],
    )]);
    unsorted.timeseries[0].samples[0].start_timestamp = 0;
    for (req, needle) in [
        (out_of_range, "outside the"),
        (odd, "odd number"),
        (first_not_empty, "symbols[0]"),
        (unsorted, "sorted"),
    ] {
        let e = decode2(&req).unwrap_err();
        assert_eq!(e.kind(), strata_types::ErrorKind::BadInput);
        assert!(
            e.to_string().contains(needle),
            "{e} does not name {needle:?}"
        );
    }
}

#[test]
fn v2_reads_unpacked_label_references() {
    // labels_refs one varint at a time (legal proto3, though encoders pack):
    // symbols ["", "__name__", "up"], one series {__name__="up"} at t=5, v=2.
    let mut raw = Vec::new();
    for s in ["", "__name__", "up"] {
        raw.push(0x22);
        raw.push(s.len() as u8);
        raw.extend_from_slice(s.as_bytes());
    }
    let mut series = vec![0x08, 0x01, 0x08, 0x02];
    let mut sample = vec![0x09];
    sample.extend_from_slice(&2.0f64.to_le_bytes());
    sample.extend_from_slice(&[0x10, 0x05]);
    series.push(0x12);
    series.push(sample.len() as u8);
    series.extend_from_slice(&sample);
    raw.push(0x2a);
    raw.push(series.len() as u8);
    raw.extend_from_slice(&series);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let d = super::decode(
        Proto::V2,
        TenantId::try_new("t").unwrap(),
        &body,
        DecodeLimits::default(),
    )
    .unwrap();
    let s = d.batch.series().next().unwrap();
    assert_eq!(s.label("__name__"), Some("up"));
    assert_eq!(
        (s.samples()[0].timestamp_ms, s.samples()[0].value),
        (5, 2.0)
    );
}

#[test]
fn a_body_of_the_other_version_is_refused_not_stored_as_nothing() {
    let series = vec![(vec![("__name__", "up")], vec![(1, 1.0)])];
    let v2_body = proto::v2::encode_snappy(&proto::v2::Request::from_series(&series));
    let e = decode_v1(
        TenantId::try_new("t").unwrap(),
        &v2_body,
        DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("remote write 2.0"), "{e}");
    let v1_body = encode_snappy(&proto::WriteRequest {
        timeseries: vec![ts(&[("__name__", "up")], &[(1, 1.0)])],
        metadata: vec![],
    });
    let e = super::decode(
        Proto::V2,
        TenantId::try_new("t").unwrap(),
        &v1_body,
        DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("reserved in remote write 2.0"),
        "{e}"
    );
}

/// A remote-write 1.0 body written by hand: one series of `labels` (raw
/// bytes, so invalid UTF-8 can be sent) and one sample.
fn raw_request(labels: &[(&[u8], &[u8])]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: usize) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        varint(out, bytes.len());
        out.extend_from_slice(bytes);
    }
    let mut series = Vec::new();
    for (name, value) in labels {
        let mut label = Vec::new();
        field(&mut label, 0x0a, name);
        field(&mut label, 0x12, value);
        field(&mut series, 0x0a, &label);
    }
    let mut sample = vec![0x09];
    sample.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
    sample.extend_from_slice(&[0x10, 0x07]);
    field(&mut series, 0x12, &sample);
    let mut req = Vec::new();
    field(&mut req, 0x0a, &series);
    snap::raw::Encoder::new().compress_vec(&req).unwrap()
}

/// Label strings come back exactly whether the series' labels are checked
/// as UTF-8 at once (short, multi-byte characters included) or one by one
/// (a value of 128 bytes or more has a two-byte length); an invalid
/// string is refused on either path.
#[test]
fn label_strings_are_checked_as_utf8_at_once_or_one_by_one() {
    let long = "x".repeat(300);
    let t = || TenantId::try_new("t").unwrap();
    for labels in [
        vec![("__name__", "up"), ("city", "Zürich"), ("zone", "日本")],
        vec![
            ("__name__", "up"),
            ("city", "Zürich"),
            ("long", long.as_str()),
        ],
        vec![
            ("__name__", "up"),
            ("long", long.as_str()),
            ("zone", "日本"),
        ],
    ] {
        let raw: Vec<(&[u8], &[u8])> = labels
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let d = decode_v1(t(), &raw_request(&raw), DecodeLimits::default()).unwrap();
        let s = d.batch.series().next().unwrap();
        for (name, value) in &labels {
            assert_eq!(s.label(name), Some(*value), "{labels:?}");
        }
    }
    let bad: &[u8] = b"caf\xe9";
    for raw in [
        vec![(&b"__name__"[..], &b"up"[..]), (b"city", bad)],
        vec![
            (&b"__name__"[..], &b"up"[..]),
            (b"long", long.as_bytes()),
            (b"zone", bad),
        ],
        vec![(&b"__name__"[..], bad)],
    ] {
        let e = decode_v1(t(), &raw_request(&raw), DecodeLimits::default()).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }
}

/// An integer histogram at `t`: schema 1, zero bucket 2, positive buckets
/// -1..=0 and 3 (deltas 1, 2, -2: counts 1, 3, 1), one negative bucket.
fn int_histogram(t: i64) -> proto::Histogram {
    let span = |offset, length| proto::BucketSpan { offset, length };
    proto::Histogram {
        count_int: Some(2 + 1 + 3 + 1 + 4),
        sum: 12.5,
        schema: 1,
        zero_threshold: 0.001,
        zero_count_int: Some(2),
        positive_spans: vec![span(-1, 2), span(2, 1)],
        positive_deltas: vec![1, 2, -2],
        negative_spans: vec![span(0, 1)],
        negative_deltas: vec![4],
        reset_hint: 2,
        timestamp: t,
        ..Default::default()
    }
}

#[test]
fn native_histograms_decode_to_absolute_counts_in_both_versions() {
    let mut float = proto::Histogram {
        count_float: Some(7.5),
        sum: 3.0,
        schema: -53,
        zero_count_float: Some(0.0),
        positive_spans: vec![proto::BucketSpan {
            offset: 0,
            length: 3,
        }],
        positive_counts: vec![0.5, 2.0, 5.0],
        custom_values: vec![0.1, 1.0],
        timestamp: 9,
        ..Default::default()
    };
    let mut v1 = ts(&[("__name__", "lat")], &[]);
    v1.histograms = vec![int_histogram(5), float.clone()];
    let d = decode(&proto::WriteRequest {
        timeseries: vec![v1.clone()],
        metadata: vec![],
    })
    .unwrap();
    let mut req2 = proto::v2::Request::from_series(&[(vec![("__name__", "lat")], vec![])]);
    req2.timeseries[0].histograms = v1.histograms.clone();
    let v2 = decode2(&req2).unwrap();
    for d in [&d, &v2] {
        assert_eq!(d.batch.series_count(), 0);
        let s = &d.histograms[0];
        assert_eq!(s.labels.metric_name(), "lat");
        let h = &s.samples[0].histogram;
        assert!(h.integer);
        assert_eq!(
            (h.schema, h.zero_count, h.count, h.sum),
            (1, 2.0, 11.0, 12.5)
        );
        assert_eq!(h.positive_counts, vec![1.0, 3.0, 1.0]);
        assert_eq!(h.negative_counts, vec![4.0]);
        assert_eq!(h.positive_spans[1].offset, 2);
        assert_eq!(h.reset_hint, strata_types::ResetHint::NotReset);
        let f = &s.samples[1].histogram;
        assert!(!f.integer);
        assert_eq!(
            (f.schema, f.count, s.samples[1].timestamp_ms),
            (-53, 7.5, 9)
        );
        assert_eq!(f.positive_counts, vec![0.5, 2.0, 5.0]);
        assert_eq!(f.custom_values, vec![0.1, 1.0]);
    }
    // An invalid histogram refuses the request, naming the series and why.
    let mut bad = int_histogram(5);
    bad.count_int = Some(99);
    let mut series = ts(&[("__name__", "lat")], &[(1, 1.0)]);
    series.histograms = vec![bad];
    let e = decode(&proto::WriteRequest {
        timeseries: vec![series],
        metadata: vec![],
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("lat") && e.contains("99"), "{e}");
    // Four bounds for three buckets of custom bounds' four: too far.
    float.positive_spans[0].length = 4;
    float.positive_counts.push(1.0);
    float.positive_spans[0].offset = 0;
    float.custom_values = vec![0.1, 1.0];
    let mut series = ts(&[("__name__", "lat")], &[]);
    series.histograms = vec![float];
    assert!(
        decode(&proto::WriteRequest {
            timeseries: vec![series],
            metadata: vec![],
        })
        .is_err()
    );
}
