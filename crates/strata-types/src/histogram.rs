//! Native histograms: Prometheus' sparse, exponential-bucket histograms
//! (and their custom-bucket form, schema -53), one sample per scrape
//! holding every bucket of the series.
//!
//! Strata holds every histogram in one form, Prometheus' float histogram
//! with absolute bucket counts: an integer histogram's delta-encoded
//! counts are summed at decode (exact below 2^53 observations per bucket)
//! and `integer` remembers which form was sent.

use crate::{Labels, TenantId};

/// The schema of custom-bucket histograms (Prometheus' NHCB): buckets
/// bounded by [`Histogram::custom_values`] instead of powers of two.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The exponential schemas Prometheus accepts, coarsest first.
pub const EXPONENTIAL_SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

/// Whether the sender says this histogram follows a counter reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetHint {
    /// Nothing said: a reset is detected from the counts.
    #[default]
    Unknown,
    /// A counter reset happened before this histogram.
    Reset,
    /// No counter reset happened before this histogram.
    NotReset,
    /// A gauge histogram: its counts may go up and down.
    Gauge,
}

impl ResetHint {
    /// As remote write numbers it (`ResetHint`: 0 unknown, 1 yes, 2 no,
    /// 3 gauge); unknown numbers read as unknown.
    pub fn from_wire(v: u64) -> Self {
        match v {
            1 => ResetHint::Reset,
            2 => ResetHint::NotReset,
            3 => ResetHint::Gauge,
            _ => ResetHint::Unknown,
        }
    }

    pub fn to_wire(self) -> u8 {
        match self {
            ResetHint::Unknown => 0,
            ResetHint::Reset => 1,
            ResetHint::NotReset => 2,
            ResetHint::Gauge => 3,
        }
    }
}

/// A run of consecutive buckets: `offset` buckets after the previous
/// span's end (the first span's offset is from bucket 0 and may be
/// negative), `length` buckets long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpan {
    pub offset: i32,
    pub length: u32,
}

/// One native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub reset_hint: ResetHint,
    /// -4..=8 (bucket boundaries at powers of 2^(2^-schema)) or -53.
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    /// Observations, NaN ones included.
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<BucketSpan>,
    /// Absolute count of each bucket the positive spans name, in order.
    pub positive_counts: Vec<f64>,
    pub negative_spans: Vec<BucketSpan>,
    pub negative_counts: Vec<f64>,
    /// Upper bounds of the buckets of schema -53 (the last bucket is
    /// bounded by +Inf); empty otherwise.
    pub custom_values: Vec<f64>,
    /// Sent as an integer histogram (counts were whole numbers).
    pub integer: bool,
}

/// Why a histogram is refused, in Prometheus' words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error(
        "histogram has schema {0}: schemas from -4 to 8 and -53 (custom buckets) are supported"
    )]
    Schema(i32),
    #[error("histogram {side} side: span number {span} has negative offset {offset}")]
    NegativeOffset {
        side: &'static str,
        span: usize,
        offset: i32,
    },
    #[error("histogram {side} side: spans need {spans} buckets, have {buckets} buckets")]
    SpansBucketsMismatch {
        side: &'static str,
        spans: u64,
        buckets: usize,
    },
    #[error("histogram {side} side: bucket number {bucket} has observation count of {count}")]
    NegativeBucket {
        side: &'static str,
        bucket: usize,
        count: f64,
    },
    #[error(
        "histogram's observation count should equal the number of observations found in the buckets (in absence of NaN): {buckets} observations found in buckets, but the Count field is {count}"
    )]
    CountMismatch { buckets: f64, count: f64 },
    #[error(
        "histogram's observation count should be at least the number of observations found in the buckets: {buckets} observations found in buckets, but the Count field is {count}"
    )]
    CountNotBigEnough { buckets: f64, count: f64 },
    #[error("custom-bucket histogram: {0}")]
    CustomBuckets(&'static str),
    #[error("exponential histogram has custom bounds")]
    ExponentialWithCustomBounds,
    #[error(
        "histogram {side} side: span number {span} reaches past the bucket indexes of a 32-bit integer"
    )]
    IndexOutOfRange { side: &'static str, span: usize },
}

impl Histogram {
    /// Checks the histogram as Prometheus validates one before appending
    /// it (`Histogram.Validate`, `FloatHistogram.Validate`).
    pub fn validate(&self) -> Result<(), HistogramError> {
        if self.schema == CUSTOM_BUCKETS_SCHEMA {
            let mut prev = f64::NEG_INFINITY;
            for &v in &self.custom_values {
                if v.is_nan() || v <= prev {
                    return Err(HistogramError::CustomBuckets(
                        "bounds must be strictly increasing",
                    ));
                }
                prev = v;
            }
            if prev == f64::INFINITY {
                return Err(HistogramError::CustomBuckets(
                    "the +Inf bound must not be listed",
                ));
            }
            if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
                return Err(HistogramError::CustomBuckets(
                    "the zero bucket must be empty with threshold 0",
                ));
            }
            if !self.negative_spans.is_empty() || !self.negative_counts.is_empty() {
                return Err(HistogramError::CustomBuckets(
                    "there are no negative buckets",
                ));
            }
            let reach = check_spans(
                "positive",
                &self.positive_spans,
                self.positive_counts.len(),
                true,
            )?;
            if reach > self.custom_values.len() as i64 + 1 {
                return Err(HistogramError::CustomBuckets(
                    "a span names a bucket past the last bound",
                ));
            }
        } else if EXPONENTIAL_SCHEMAS.contains(&self.schema) {
            if !self.custom_values.is_empty() {
                return Err(HistogramError::ExponentialWithCustomBounds);
            }
            check_spans(
                "positive",
                &self.positive_spans,
                self.positive_counts.len(),
                false,
            )?;
            check_spans(
                "negative",
                &self.negative_spans,
                self.negative_counts.len(),
                false,
            )?;
        } else {
            return Err(HistogramError::Schema(self.schema));
        }
        let mut in_buckets = self.zero_count;
        for (side, counts) in [
            ("negative", &self.negative_counts),
            ("positive", &self.positive_counts),
        ] {
            for (i, &c) in counts.iter().enumerate() {
                // NaN counts are refused too: no bucket may hold one.
                if c.is_nan() || c < 0.0 {
                    return Err(HistogramError::NegativeBucket {
                        side,
                        bucket: i + 1,
                        count: c,
                    });
                }
                in_buckets += c;
            }
        }
        // As Prometheus: an integer histogram's count is exact (at least
        // the buckets' when NaNs were observed); a float histogram's is
        // not checked, rounding would refuse good ones.
        if self.integer {
            if self.sum.is_nan() {
                if in_buckets > self.count {
                    return Err(HistogramError::CountNotBigEnough {
                        buckets: in_buckets,
                        count: self.count,
                    });
                }
            } else if in_buckets != self.count {
                return Err(HistogramError::CountMismatch {
                    buckets: in_buckets,
                    count: self.count,
                });
            }
        }
        Ok(())
    }

    /// Buckets in all, zero bucket aside.
    pub fn bucket_count(&self) -> usize {
        self.positive_counts.len() + self.negative_counts.len()
    }
}

/// Checks one side's spans against its bucket count; returns how far they
/// reach (offsets plus lengths).
fn check_spans(
    side: &'static str,
    spans: &[BucketSpan],
    buckets: usize,
    first_non_negative: bool,
) -> Result<i64, HistogramError> {
    let (mut named, mut reach) = (0u64, 0i64);
    for (n, s) in spans.iter().enumerate() {
        if s.offset < 0 && (n > 0 || first_non_negative) {
            return Err(HistogramError::NegativeOffset {
                side,
                span: n + 1,
                offset: s.offset,
            });
        }
        named += u64::from(s.length);
        reach += i64::from(s.offset) + i64::from(s.length);
        // Bucket indexes are 32-bit (as Prometheus' are): the last bucket
        // a span names must be one.
        if reach - 1 > i64::from(i32::MAX) {
            return Err(HistogramError::IndexOutOfRange { side, span: n + 1 });
        }
    }
    if named != buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch {
            side,
            spans: named,
            buckets,
        });
    }
    Ok(reach)
}

/// One histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub timestamp_ms: i64,
    pub histogram: Histogram,
}

/// One series' histogram samples, in the order sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesHistograms {
    pub labels: Labels,
    pub samples: Vec<HistogramSample>,
}

/// A validated batch of histogram samples for one tenant: what a write
/// hands to the WAL and then to the head.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramBatch {
    pub tenant: TenantId,
    pub series: Vec<SeriesHistograms>,
}

impl HistogramBatch {
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            series: Vec::new(),
        }
    }

    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.samples.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(counts: &[f64]) -> Histogram {
        Histogram {
            reset_hint: ResetHint::Unknown,
            schema: 0,
            zero_threshold: 1e-128,
            zero_count: 1.0,
            count: 1.0 + counts.iter().sum::<f64>(),
            sum: 10.0,
            positive_spans: vec![BucketSpan {
                offset: -1,
                length: counts.len() as u32,
            }],
            positive_counts: counts.to_vec(),
            negative_spans: vec![],
            negative_counts: vec![],
            custom_values: vec![],
            integer: true,
        }
    }

    #[test]
    fn histograms_are_checked_as_prometheus_checks_them() {
        assert_eq!(exp(&[1.0, 2.0]).validate(), Ok(()));
        let mut h = exp(&[1.0, 2.0]);
        h.schema = 9;
        assert_eq!(h.validate(), Err(HistogramError::Schema(9)));
        let mut h = exp(&[1.0, 2.0]);
        h.count = 5.0;
        assert!(matches!(
            h.validate(),
            Err(HistogramError::CountMismatch { .. })
        ));
        // NaN observed: the count may exceed the buckets, never fall short.
        h.sum = f64::NAN;
        assert_eq!(h.validate(), Ok(()));
        h.count = 3.0;
        assert!(matches!(
            h.validate(),
            Err(HistogramError::CountNotBigEnough { .. })
        ));
        // A float histogram's count is not checked (rounding).
        let mut h = exp(&[1.0, 2.0]);
        (h.integer, h.count) = (false, 3.5);
        assert_eq!(h.validate(), Ok(()));
        let mut h = exp(&[1.0, -1.0]);
        h.count = 1.0;
        assert!(matches!(
            h.validate(),
            Err(HistogramError::NegativeBucket { bucket: 2, .. })
        ));
        let mut h = exp(&[1.0, 2.0]);
        h.positive_spans[0].length = 3;
        assert!(matches!(
            h.validate(),
            Err(HistogramError::SpansBucketsMismatch { .. })
        ));
        let mut h = exp(&[1.0, 2.0]);
        h.positive_spans = vec![
            BucketSpan {
                offset: 0,
                length: 1,
            },
            BucketSpan {
                offset: -2,
                length: 1,
            },
        ];
        assert!(matches!(
            h.validate(),
            Err(HistogramError::NegativeOffset { span: 2, .. })
        ));
        // Spans whose buckets pass i32::MAX: refused, never wrapped.
        let mut h = exp(&[1.0, 2.0]);
        h.positive_spans = vec![
            BucketSpan {
                offset: i32::MAX,
                length: 1,
            },
            BucketSpan {
                offset: 5,
                length: 1,
            },
        ];
        assert!(matches!(
            h.validate(),
            Err(HistogramError::IndexOutOfRange { span: 2, .. })
        ));
    }

    #[test]
    fn custom_buckets_need_increasing_bounds_and_no_zero_or_negative_buckets() {
        let nhcb = |bounds: &[f64], len: u32| Histogram {
            reset_hint: ResetHint::Unknown,
            schema: CUSTOM_BUCKETS_SCHEMA,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: f64::from(len),
            sum: 1.0,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: len,
            }],
            positive_counts: vec![1.0; len as usize],
            negative_spans: vec![],
            negative_counts: vec![],
            custom_values: bounds.to_vec(),
            integer: false,
        };
        // Two bounds, three buckets (the last up to +Inf).
        assert_eq!(nhcb(&[0.1, 1.0], 3).validate(), Ok(()));
        assert!(nhcb(&[0.1, 1.0], 4).validate().is_err());
        assert!(nhcb(&[1.0, 0.1], 2).validate().is_err());
        assert!(nhcb(&[0.1, f64::INFINITY], 2).validate().is_err());
        let mut h = nhcb(&[0.1, 1.0], 2);
        h.zero_count = 1.0;
        assert!(h.validate().is_err());
        let mut h = exp(&[1.0]);
        h.custom_values = vec![1.0];
        assert_eq!(
            h.validate(),
            Err(HistogramError::ExponentialWithCustomBounds)
        );
    }
}
