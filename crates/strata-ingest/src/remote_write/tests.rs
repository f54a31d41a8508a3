use strata_types::{LabelError, STALE_NAN_BITS, WriteBatch, stale_nan};

use super::proto::{self, encode_snappy};
use super::*;

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
fn skips_exemplars_histograms_and_metadata_without_failing() {
    let mut with_hist = ts(&[("__name__", "h")], &[]);
    with_hist.histograms.push(proto::Histogram {
        count_int: 3,
        sum: 1.0,
        schema: 0,
        timestamp: 5,
    });
    let mut with_ex = ts(&[("__name__", "c")], &[(5, 1.0)]);
    with_ex.exemplars.push(proto::Exemplar {
        labels: vec![],
        value: 1.0,
        timestamp: 5,
    });
    let req = proto::WriteRequest {
        timeseries: vec![with_hist, with_ex],
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "c".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    };
    let d = decode(&req).unwrap();
    assert_eq!(
        d.skipped,
        Skipped {
            exemplars: 1,
            histograms: 1,
            metadata: 1
        }
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
        (
            ts(&[("__name__", "x"), ("bad-name", "1")], &[(1, 1.0)]),
            "invalid label name \"bad-name\"",
        ),
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
    assert!(negotiate(Some("application/x-protobuf"), Some("snappy")).is_ok());
    assert!(
        negotiate(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some("snappy")
        )
        .is_ok()
    );
    assert!(negotiate(None, None).is_ok());
    for ct in [
        "application/json",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
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
