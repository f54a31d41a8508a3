use proptest::prelude::*;
use strata_types::{STALE_NAN_BITS, stale_nan};

use strata_types::{Label, Labels, SeriesSamples};

use super::*;

/// (labels, samples) of one series.
type Spec<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

fn batch(series: Vec<Spec<'_>>) -> WriteBatch {
    WriteBatch::from_series(
        TenantId::try_new("t1").unwrap(),
        series
            .into_iter()
            .map(|(labels, samples)| SeriesSamples {
                labels: Labels::try_from_unsorted(
                    labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
                )
                .unwrap(),
                samples: samples
                    .into_iter()
                    .map(|(timestamp_ms, value)| Sample {
                        timestamp_ms,
                        value,
                    })
                    .collect(),
            })
            .collect(),
    )
}

#[test]
fn golden_bytes() {
    let b = batch(vec![(
        vec![("__name__", "up"), ("job", "a")],
        vec![(1000, 1.0), (999, stale_nan())],
    )]);
    let bytes = WalRecord::encode_samples(&b);
    let want: Vec<u8> = [
        &[1u8][..],       // kind
        &[2, b't', b'1'], // tenant
        &[1],             // one series
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
    assert_eq!(bytes, want);
    let WalRecord::Samples(back) = WalRecord::decode(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(
        back.series().next().unwrap().samples()[1].value.to_bits(),
        STALE_NAN_BITS
    );
}

#[test]
fn rejects_unknown_kind_and_trailing_bytes() {
    assert_eq!(
        WalRecord::decode(&[9]),
        Err(RecordError::UnknownKind { kind: 9 })
    );
    let mut bytes = WalRecord::encode_samples(&batch(vec![]));
    bytes.push(0);
    assert_eq!(
        WalRecord::decode(&bytes),
        Err(RecordError::Trailing { extra: 1 })
    );
}

proptest! {
    #[test]
    fn round_trips(
        series in prop::collection::vec(
            (
                prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", "\\PC{1,8}", 0..4),
                prop::collection::vec((any::<i64>(), any::<u64>()), 0..8),
            ),
            0..6,
        )
    ) {
        let b = WriteBatch::from_series(
            TenantId::try_new("x").unwrap(),
            series.into_iter().map(|(labels, samples)| {
                let mut v: Vec<Label> = labels.into_iter().map(|(n, v)| Label::new(n, v)).collect();
                v.push(Label::new("__name__", "m"));
                SeriesSamples {
                    labels: Labels::try_from_unsorted(v).unwrap(),
                    samples: samples.into_iter()
                        .map(|(t, bits)| Sample { timestamp_ms: t, value: f64::from_bits(bits) })
                        .collect(),
                }
            }).collect(),
        );
        let WalRecord::Samples(back) = WalRecord::decode(&WalRecord::encode_samples(&b)).unwrap();
        prop_assert_eq!(back, b);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = WalRecord::decode(&bytes);
    }
}
