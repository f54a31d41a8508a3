//! The `Histogram` message of remote write (the same fields in 1.0's
//! `prometheus` and 2.0's `io.prometheus.write.v2` packages): a native
//! histogram, integer (delta-encoded bucket counts) or float (absolute
//! counts), into Strata's one form ([`strata_types::Histogram`]).
//!
//! ```text
//! 1  count_int        uint64   | 2  count_float      double   (oneof)
//! 3  sum              double
//! 4  schema           sint32
//! 5  zero_threshold   double
//! 6  zero_count_int   uint64   | 7  zero_count_float double   (oneof)
//! 8  negative_spans   BucketSpan { 1 offset sint32, 2 length uint32 }
//! 9  negative_deltas  sint64, packed   (integer histograms)
//! 10 negative_counts  double, packed   (float histograms)
//! 11 positive_spans, 12 positive_deltas, 13 positive_counts: the same
//! 14 reset_hint       enum (0 unknown, 1 yes, 2 no, 3 gauge)
//! 15 timestamp        int64 (ms)
//! 16 custom_values    double, packed   (schema -53)
//! ```

use strata_types::{BucketSpan, Histogram, HistogramSample, ResetHint, timestamp_in_range};

use super::pb::{FIXED64, LEN, Reader, VARINT, err, want_wire};
use crate::IngestError;

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A repeated `sint64`, packed or not, into `out`.
fn sint64s(
    r: &mut Reader<'_>,
    wire: u8,
    what: &str,
    out: &mut Vec<i64>,
) -> Result<(), IngestError> {
    match wire {
        LEN => {
            let mut packed = Reader::new(r.bytes()?);
            while !packed.done() {
                out.push(unzigzag(packed.varint()?));
            }
        }
        VARINT => out.push(unzigzag(r.varint()?)),
        other => return Err(err(format!("{what} has wire type {other}"))),
    }
    Ok(())
}

/// A repeated `double`, packed or not, into `out`.
fn doubles(
    r: &mut Reader<'_>,
    wire: u8,
    what: &str,
    out: &mut Vec<f64>,
) -> Result<(), IngestError> {
    match wire {
        LEN => {
            let mut packed = Reader::new(r.bytes()?);
            if !packed.remaining().is_multiple_of(8) {
                return Err(err(format!(
                    "{what}: packed doubles of a length not a multiple of 8"
                )));
            }
            while !packed.done() {
                out.push(f64::from_bits(packed.fixed64()?));
            }
        }
        FIXED64 => out.push(f64::from_bits(r.fixed64()?)),
        other => return Err(err(format!("{what} has wire type {other}"))),
    }
    Ok(())
}

fn span(buf: &[u8]) -> Result<BucketSpan, IngestError> {
    let mut r = Reader::new(buf);
    let mut s = BucketSpan {
        offset: 0,
        length: 0,
    };
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("BucketSpan.offset", wire, VARINT)?;
                let v = unzigzag(r.varint()?);
                s.offset = i32::try_from(v)
                    .map_err(|_| err(format!("BucketSpan.offset {v} overflows sint32")))?;
            }
            2 => {
                want_wire("BucketSpan.length", wire, VARINT)?;
                let v = r.varint()?;
                s.length = u32::try_from(v)
                    .map_err(|_| err(format!("BucketSpan.length {v} overflows uint32")))?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(s)
}

/// Absolute counts from an integer histogram's deltas; `None` when a
/// running count leaves the range of i64 (validation refuses such a
/// histogram as having a negative bucket).
fn absolute(deltas: &[i64]) -> Result<Vec<f64>, i64> {
    let mut out = Vec::with_capacity(deltas.len());
    let mut c = 0i64;
    for &d in deltas {
        c = c.checked_add(d).ok_or(-1i64)?;
        out.push(c as f64);
    }
    Ok(out)
}

/// Why a histogram message that parsed is not a histogram.
pub(super) enum Invalid {
    Protobuf(IngestError),
    /// The message's time and why it is refused.
    Histogram(i64, String),
}

impl From<IngestError> for Invalid {
    fn from(e: IngestError) -> Self {
        Invalid::Protobuf(e)
    }
}

/// Decodes and validates one `Histogram` message.
pub(super) fn histogram(buf: &[u8]) -> Result<HistogramSample, Invalid> {
    let mut r = Reader::new(buf);
    let mut h = Histogram {
        reset_hint: ResetHint::Unknown,
        schema: 0,
        zero_threshold: 0.0,
        zero_count: 0.0,
        count: 0.0,
        sum: 0.0,
        positive_spans: Vec::new(),
        positive_counts: Vec::new(),
        negative_spans: Vec::new(),
        negative_counts: Vec::new(),
        custom_values: Vec::new(),
        integer: true,
    };
    // The oneofs' last field wins, as in protobuf; a float count makes a
    // float histogram.
    let (mut count_int, mut zero_int) = (Some(0u64), Some(0u64));
    let (mut count_float, mut zero_float) = (0.0, 0.0);
    let (mut pos_deltas, mut neg_deltas) = (Vec::new(), Vec::new());
    let mut timestamp_ms = 0i64;
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Histogram.count_int", wire, VARINT)?;
                count_int = Some(r.varint()?);
            }
            2 => {
                want_wire("Histogram.count_float", wire, FIXED64)?;
                count_float = f64::from_bits(r.fixed64()?);
                count_int = None;
            }
            3 => {
                want_wire("Histogram.sum", wire, FIXED64)?;
                h.sum = f64::from_bits(r.fixed64()?);
            }
            4 => {
                want_wire("Histogram.schema", wire, VARINT)?;
                let v = unzigzag(r.varint()?);
                h.schema = i32::try_from(v)
                    .map_err(|_| err(format!("Histogram.schema {v} overflows sint32")))?;
            }
            5 => {
                want_wire("Histogram.zero_threshold", wire, FIXED64)?;
                h.zero_threshold = f64::from_bits(r.fixed64()?);
            }
            6 => {
                want_wire("Histogram.zero_count_int", wire, VARINT)?;
                zero_int = Some(r.varint()?);
            }
            7 => {
                want_wire("Histogram.zero_count_float", wire, FIXED64)?;
                zero_float = f64::from_bits(r.fixed64()?);
                zero_int = None;
            }
            8 => {
                want_wire("Histogram.negative_spans", wire, LEN)?;
                h.negative_spans.push(span(r.bytes()?)?);
            }
            9 => sint64s(&mut r, wire, "Histogram.negative_deltas", &mut neg_deltas)?,
            10 => doubles(
                &mut r,
                wire,
                "Histogram.negative_counts",
                &mut h.negative_counts,
            )?,
            11 => {
                want_wire("Histogram.positive_spans", wire, LEN)?;
                h.positive_spans.push(span(r.bytes()?)?);
            }
            12 => sint64s(&mut r, wire, "Histogram.positive_deltas", &mut pos_deltas)?,
            13 => doubles(
                &mut r,
                wire,
                "Histogram.positive_counts",
                &mut h.positive_counts,
            )?,
            14 => {
                want_wire("Histogram.reset_hint", wire, VARINT)?;
                h.reset_hint = ResetHint::from_wire(r.varint()?);
            }
            15 => {
                want_wire("Histogram.timestamp", wire, VARINT)?;
                timestamp_ms = r.varint()? as i64;
            }
            16 => doubles(
                &mut r,
                wire,
                "Histogram.custom_values",
                &mut h.custom_values,
            )?,
            _ => r.skip(wire)?,
        }
    }
    let invalid = |reason: String| Invalid::Histogram(timestamp_ms, reason);
    if !timestamp_in_range(timestamp_ms) {
        return Err(invalid(format!(
            "timestamp outside {}",
            strata_types::TIMESTAMP_RANGE_TEXT
        )));
    }
    match count_int {
        Some(c) => {
            // An integer histogram: counts are deltas; float counts sent
            // beside them are not its counts (Prometheus reads the deltas).
            if !h.positive_counts.is_empty() || !h.negative_counts.is_empty() {
                return Err(invalid(
                    "an integer histogram (count_int) carries float bucket counts".into(),
                ));
            }
            h.count = c as f64;
            h.zero_count = zero_int.map_or(zero_float, |z| z as f64);
            let overflow = |_| invalid("a bucket's running count overflows int64".into());
            h.positive_counts = absolute(&pos_deltas).map_err(overflow)?;
            h.negative_counts = absolute(&neg_deltas).map_err(overflow)?;
        }
        None => {
            if !pos_deltas.is_empty() || !neg_deltas.is_empty() {
                return Err(invalid(
                    "a float histogram (count_float) carries integer bucket deltas".into(),
                ));
            }
            h.integer = false;
            h.count = count_float;
            h.zero_count = zero_int.map_or(zero_float, |z| z as f64);
        }
    }
    h.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(HistogramSample {
        timestamp_ms,
        histogram: h,
    })
}
