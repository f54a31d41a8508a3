use proptest::prelude::*;
use strata_types::{STALE_NAN_BITS, SeriesSamples, stale_nan};

use super::*;

/// (labels, samples) of one series.
type Spec<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

fn batch(series: Vec<Spec<'_>>) -> WriteBatch {
    WriteBatch::from_series(
        TenantId::try_new("t1").unwrap(),
        series
            .into_iter()
            .map(|(labels, samples)| SeriesSamples::try_from_pairs(&labels, &samples).unwrap())
            .collect(),
    )
}

fn encode(enc: &mut SegmentEncoder, b: &WriteBatch) -> Vec<u8> {
    let mut out = Vec::new();
    enc.encode_samples(b, &mut out);
    out
}

#[test]
fn golden_bytes_define_then_refer() {
    let up = vec![("__name__", "up"), ("job", "a")];
    let first = batch(vec![(up.clone(), vec![(1000, 1.0), (999, stale_nan())])]);
    let second = batch(vec![(up, vec![(2000, 0.5)])]);
    let mut enc = SegmentEncoder::default();
    let a = encode(&mut enc, &first);
    let b = encode(&mut enc, &second);
    let want_a: Vec<u8> = [
        &[1u8][..],       // kind
        &[2, b't', b'1'], // tenant
        &[1],             // one series
        &[1],             // ref 0, labels follow
        &[2],             // two labels
        &[8],
        b"__name__",
        &[2],
        b"up",
        &[3],
        b"job",
        &[1],
        b"a",
        &[2],          // two samples
        &[0xd0, 0x0f], // zigzag(1000)
        &[1],          // zigzag(-1)
        &1.0f64.to_bits().to_le_bytes(),
        &STALE_NAN_BITS.to_le_bytes(),
    ]
    .concat();
    assert_eq!(a, want_a);
    let want_b: Vec<u8> = [
        &[1u8, 2, b't', b'1', 1][..],
        &[0],             // ref 0, defined earlier
        &[1, 0xa0, 0x1f], // one sample, zigzag(2000)
        &0.5f64.to_bits().to_le_bytes(),
    ]
    .concat();
    assert_eq!(b, want_b);

    let mut dec = SegmentDecoder::default();
    let WalRecord::Samples(back) = dec.decode(&a).unwrap() else {
        panic!("not samples")
    };
    assert_eq!(back, first);
    assert_eq!(
        back.series().next().unwrap().samples()[1].value.to_bits(),
        STALE_NAN_BITS
    );
    let WalRecord::Samples(back) = dec.decode(&b).unwrap() else {
        panic!("not samples")
    };
    assert_eq!(back, second);

    // A new segment starts with no definitions: the ref alone is an error.
    dec.reset();
    assert!(matches!(
        dec.decode(&b),
        Err(RecordError::Invalid {
            what: "series ref",
            ..
        })
    ));
    enc.reset();
    assert_eq!(
        encode(&mut enc, &second)[5],
        1,
        "after reset the series is defined again"
    );
}

#[test]
fn same_labels_in_another_tenant_get_their_own_ref() {
    let mut enc = SegmentEncoder::default();
    let a = batch(vec![(vec![("__name__", "m")], vec![(1, 1.0)])]);
    let mut b = a.clone();
    b.tenant = TenantId::try_new("t2").unwrap();
    encode(&mut enc, &a);
    let bytes = encode(&mut enc, &b);
    assert_eq!(bytes[5], 3, "ref 1 with labels");
}

#[test]
fn a_series_twice_in_one_batch_is_defined_once() {
    let m = vec![("__name__", "m")];
    let b = batch(vec![
        (m.clone(), vec![(1, 1.0)]),
        (vec![("__name__", "n")], vec![(1, 2.0)]),
        (m, vec![(2, 3.0)]),
    ]);
    let mut enc = SegmentEncoder::default();
    let bytes = encode(&mut enc, &b);
    // kind, tenant (3), count; m defined as ref 0 ... n as ref 1 ... then
    // m again as a bare ref 0 before its one sample.
    let tail = [0u8, 1, 4];
    assert!(bytes.ends_with(&[&tail[..], &3.0f64.to_bits().to_le_bytes()].concat()));
    let WalRecord::Samples(back) = SegmentDecoder::default().decode(&bytes).unwrap() else {
        panic!("not samples")
    };
    assert_eq!(back, b);
}

#[test]
fn rejects_unknown_kind_and_trailing_bytes() {
    let mut dec = SegmentDecoder::default();
    assert_eq!(dec.decode(&[9]), Err(RecordError::UnknownKind { kind: 9 }));
    let mut bytes = encode(&mut SegmentEncoder::default(), &batch(vec![]));
    bytes.push(0);
    assert_eq!(dec.decode(&bytes), Err(RecordError::Trailing { extra: 1 }));
}

fn arb_batch() -> impl Strategy<Value = WriteBatch> {
    prop::collection::vec(
        (
            prop::collection::btree_map("[a-c_][a-z0-9_]{0,2}", "\\PC{1,4}", 0..3),
            prop::collection::vec((any::<i64>(), any::<u64>()), 0..4),
        ),
        0..5,
    )
    .prop_map(|series| {
        WriteBatch::from_series(
            TenantId::try_new("x").unwrap(),
            series
                .into_iter()
                .map(|(labels, samples)| {
                    let mut pairs: Vec<(&str, &str)> = labels
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    pairs.push(("__name__", "m"));
                    let samples: Vec<(i64, f64)> = samples
                        .into_iter()
                        .map(|(t, bits)| (t, f64::from_bits(bits)))
                        .collect();
                    SeriesSamples::try_from_pairs(&pairs, &samples).unwrap()
                })
                .collect(),
        )
    })
}

proptest! {
    /// Any sequence of batches round-trips through one segment's encoder
    /// and decoder, with series repeating across records.
    #[test]
    fn sequences_round_trip(batches in prop::collection::vec(arb_batch(), 1..6)) {
        let mut enc = SegmentEncoder::default();
        let mut dec = SegmentDecoder::default();
        for b in &batches {
            let WalRecord::Samples(back) = dec.decode(&encode(&mut enc, b)).unwrap() else { panic!("not samples") };
            prop_assert_eq!(&back, b);
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = SegmentDecoder::default().decode(&bytes);
    }
}

fn log_batch() -> LogBatch {
    let mut b = LogBatch::new(TenantId::try_new("t1").unwrap());
    b.push(
        Labels::try_stream_from_unsorted(vec![
            Label::new("job", "odoo"),
            Label::new("env", "prod"),
        ])
        .unwrap(),
        vec![
            LogEntry {
                timestamp_ns: 1_700_000_000_000_000_001,
                line: "picking 42 done".into(),
                metadata: vec![("trace_id".into(), "abc".into())],
            },
            LogEntry {
                timestamp_ns: 1_700_000_000_000_000_000,
                line: String::new(),
                metadata: Vec::new(),
            },
        ],
    );
    b
}

#[test]
fn golden_bytes_log_record() {
    let mut out = Vec::new();
    SegmentEncoder::default().encode_logs(&log_batch(), &mut out);
    let mut want: Vec<u8> = vec![2, 2, b't', b'1', 1, 2];
    for s in ["env", "prod", "job", "odoo"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    want.push(2); // entries
    // 1_700_000_000_000_000_001 zigzagged, as a uvarint.
    let mut ts = Vec::new();
    put_uvarint(&mut ts, zigzag(1_700_000_000_000_000_001));
    want.extend_from_slice(&ts);
    want.push(15);
    want.extend_from_slice(b"picking 42 done");
    want.extend_from_slice(&[1, 8]);
    want.extend_from_slice(b"trace_id");
    want.extend_from_slice(&[3, b'a', b'b', b'c']);
    want.extend_from_slice(&[1, 0, 0]); // -1 ns, empty line, no metadata
    assert_eq!(out, want);
    let decoded = SegmentDecoder::default().decode(&out).unwrap();
    assert_eq!(decoded, WalRecord::Logs(log_batch()));
}

#[test]
fn truncated_log_records_are_errors_not_panics() {
    let mut out = Vec::new();
    SegmentEncoder::default().encode_logs(&log_batch(), &mut out);
    for cut in 0..out.len() {
        assert!(
            SegmentDecoder::default().decode(&out[..cut]).is_err(),
            "cut {cut}"
        );
    }
}

fn exemplar_batch() -> strata_types::ExemplarBatch {
    let mut b = strata_types::ExemplarBatch::new(TenantId::try_new("t1").unwrap());
    b.series.push(strata_types::SeriesExemplars {
        labels: strata_types::Labels::try_from_sorted(vec![
            Label::new("__name__", "up"),
            Label::new("job", "a"),
        ])
        .unwrap(),
        exemplars: vec![
            strata_types::Exemplar {
                labels: vec![("trace_id".into(), "ab".into())],
                value: 1.5,
                timestamp_ms: 1000,
            },
            strata_types::Exemplar {
                labels: vec![],
                value: f64::from_bits(0x7ff0_0000_0000_0002),
                timestamp_ms: 999,
            },
        ],
    });
    b
}

#[test]
fn golden_bytes_exemplar_record() {
    let mut out = Vec::new();
    SegmentEncoder::default().encode_exemplars(&exemplar_batch(), &mut out);
    let mut want: Vec<u8> = vec![3, 2, b't', b'1', 1, 2];
    for s in ["__name__", "up", "job", "a"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    want.push(2); // exemplars
    want.extend_from_slice(&[0xd0, 0x0f]); // 1000 zigzagged = 2000
    want.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
    want.extend_from_slice(&[1, 8]);
    want.extend_from_slice(b"trace_id");
    want.extend_from_slice(&[2, b'a', b'b']);
    want.push(1); // -1 ms
    want.extend_from_slice(&0x7ff0_0000_0000_0002u64.to_le_bytes());
    want.push(0); // no labels
    assert_eq!(out, want);
    // NaN payloads stay exact: compare the bytes of a re-encoding.
    let decoded = SegmentDecoder::default().decode(&out).unwrap();
    let WalRecord::Exemplars(batch) = decoded else {
        panic!("not an exemplar record")
    };
    let mut again = Vec::new();
    SegmentEncoder::default().encode_exemplars(&batch, &mut again);
    assert_eq!(again, out);
    for cut in 0..out.len() {
        assert!(
            SegmentDecoder::default().decode(&out[..cut]).is_err(),
            "cut {cut}"
        );
    }
}

fn histogram_batch() -> strata_types::HistogramBatch {
    use strata_types::{BucketSpan, Histogram, HistogramSample, ResetHint};
    let mut b = strata_types::HistogramBatch::new(TenantId::try_new("t1").unwrap());
    b.series.push(strata_types::SeriesHistograms {
        labels: strata_types::Labels::try_from_sorted(vec![Label::new("__name__", "lat")]).unwrap(),
        samples: vec![HistogramSample {
            timestamp_ms: 1000,
            histogram: Histogram {
                reset_hint: ResetHint::Gauge,
                schema: -1,
                zero_threshold: 0.5,
                zero_count: 1.0,
                count: 4.0,
                sum: f64::NAN,
                positive_spans: vec![BucketSpan {
                    offset: -2,
                    length: 1,
                }],
                positive_counts: vec![3.0],
                negative_spans: vec![],
                negative_counts: vec![],
                custom_values: vec![],
                integer: true,
            },
        }],
    });
    b
}

#[test]
fn golden_bytes_histogram_record() {
    let mut out = Vec::new();
    SegmentEncoder::default().encode_histograms(&histogram_batch(), &mut out);
    let mut want: Vec<u8> = vec![4, 2, b't', b'1', 1, 1];
    for s in ["__name__", "lat"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    want.push(1); // histograms
    want.extend_from_slice(&[0xd0, 0x0f]); // 1000 zigzagged = 2000
    want.push(1 | 3 << 1); // integer, gauge
    want.push(1); // schema -1 zigzagged
    for v in [0.5f64, 1.0, 4.0, f64::NAN] {
        want.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    want.extend_from_slice(&[1, 3, 1]); // one span: offset -2, length 1
    want.push(1);
    want.extend_from_slice(&3.0f64.to_bits().to_le_bytes());
    want.extend_from_slice(&[0, 0, 0]); // no negative spans, counts, bounds
    assert_eq!(out, want);
    let decoded = SegmentDecoder::default().decode(&out).unwrap();
    let WalRecord::Histograms(batch) = decoded else {
        panic!("not a histogram record")
    };
    let mut again = Vec::new();
    SegmentEncoder::default().encode_histograms(&batch, &mut again);
    assert_eq!(again, out);
    for cut in 0..out.len() {
        assert!(
            SegmentDecoder::default().decode(&out[..cut]).is_err(),
            "cut {cut}"
        );
    }
}
