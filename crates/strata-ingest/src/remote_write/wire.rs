//! A zero-copy reader for the remote-write 1.0 protobuf.
//!
//! prost would allocate a `String` per label name and value; a request of
//! 2000 series × 10 labels is 40,000 allocations. This reader borrows label
//! strings from the decompressed body and pushes them straight into the
//! batch's flat tables. It follows proto3 wire rules: fields in any order,
//! unknown fields skipped, a wrong wire type on a known field is an error,
//! strings must be UTF-8. `proto.rs` stays the schema of record: a property
//! test checks this reader against prost on arbitrary requests.

use strata_types::{METRIC_NAME_LABEL, NameScheme, Sample, TenantId, WriteBatch, validate_sorted};

use crate::IngestError;
use crate::metadata::{MetricMetadata, MetricType, push};
use crate::remote_write::{Decoded, Skipped};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// `buf` as text when it is valid UTF-8 as a whole (checked once by
    /// the caller): strings are sliced from it instead of checked one by
    /// one.
    text: Option<&'a str>,
}

fn err(reason: impl Into<String>) -> IngestError {
    IngestError::Protobuf {
        reason: reason.into(),
    }
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            text: None,
        }
    }

    /// A reader of `buf` whose strings come from `text`, the same bytes
    /// already known to be UTF-8.
    fn with_text(buf: &'a [u8], text: Option<&'a str>) -> Self {
        Self {
            buf,
            pos: 0,
            text: text.filter(|t| t.len() == buf.len()),
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A varint; tags and lengths under 128 (nearly all of a request's)
    /// are one byte and read inline.
    #[inline]
    fn varint(&mut self) -> Result<u64, IngestError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, IngestError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| err("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    /// (field number, wire type)
    fn key(&mut self) -> Result<(u64, u8), IngestError> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(err("field number 0"));
        }
        Ok((field, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| err("length exceeds the message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], IngestError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| err("length overflows"))?;
        self.take(n)
    }

    fn string(&mut self, what: &str) -> Result<&'a str, IngestError> {
        let bytes = self.bytes()?;
        // A slice of checked text, when its ends are character bounds
        // (they are wherever the bytes around them are tags and lengths).
        if let Some(s) = self
            .text
            .and_then(|t| t.get(self.pos - bytes.len()..self.pos))
        {
            return Ok(s);
        }
        std::str::from_utf8(bytes).map_err(|_| err(format!("{what} is not valid UTF-8")))
    }

    /// Where the leading run of `field`'s length-delimited entries ends.
    fn run_end(mut self, field: u64) -> usize {
        let mut end = 0;
        while let Ok((f, LEN)) = self.key() {
            if f != field || self.bytes().is_err() {
                break;
            }
            end = self.pos;
        }
        end
    }

    fn fixed64(&mut self) -> Result<u64, IngestError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn skip(&mut self, wire: u8) -> Result<(), IngestError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            other => Err(err(format!("unsupported wire type {other}"))),
        }
    }
}

fn want_wire(field: &str, wire: u8, want: u8) -> Result<(), IngestError> {
    if wire == want {
        Ok(())
    } else {
        Err(err(format!(
            "{field} has wire type {wire}, expected {want}"
        )))
    }
}

/// Decodes a `WriteRequest` into a validated batch.
pub(crate) fn decode(
    tenant: TenantId,
    raw: &[u8],
    names: NameScheme,
) -> Result<Decoded, IngestError> {
    let mut skipped = Skipped::default();
    let mut metadata = Vec::new();
    let mut r = Reader::new(raw);
    // Label text is a part of the body: the arena never grows.
    let mut batch = WriteBatch::with_text_capacity(tenant, raw.len() / 200 + 1, 10, raw.len());
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut samples: Vec<Sample> = Vec::with_capacity(4);
    let mut index = 0usize;
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("WriteRequest.timeseries", wire, LEN)?;
                let ts = r.bytes()?;
                labels.clear();
                samples.clear();
                series(ts, &mut labels, &mut samples, &mut skipped)?;
                if let Err(source) = validate_sorted(labels.iter().copied())
                    .and_then(|()| names.check(labels.iter().copied()))
                {
                    return Err(IngestError::InvalidSeries {
                        index,
                        labels: super::describe(labels.iter().copied()),
                        source,
                    });
                }
                if !samples.is_empty() {
                    batch.push_validated(labels.iter().copied(), samples.iter().copied());
                }
                index += 1;
            }
            3 => {
                want_wire("WriteRequest.metadata", wire, LEN)?;
                push(&mut metadata, metric_metadata(r.bytes()?)?);
            }
            // Skipping these would store nothing and answer 204.
            4 | 5 => {
                return Err(err(format!(
                    "field {field} is remote write 2.0's (symbols, timeseries): send it with \
                     Content-Type application/x-protobuf;proto=io.prometheus.write.v2.Request"
                )));
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(Decoded {
        batch,
        skipped,
        metadata,
        starts: Vec::new(),
    })
}

/// A 1.0 `MetricMetadata` message.
fn metric_metadata(buf: &[u8]) -> Result<MetricMetadata, IngestError> {
    let mut r = Reader::new(buf);
    let mut m = MetricMetadata {
        metric: String::new(),
        kind: MetricType::Unknown,
        help: String::new(),
        unit: String::new(),
    };
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("MetricMetadata.type", wire, VARINT)?;
                m.kind = MetricType::from_wire(r.varint()?);
            }
            2 => {
                want_wire("MetricMetadata.metric_family_name", wire, LEN)?;
                r.string("metric family name")?.clone_into(&mut m.metric);
            }
            4 => {
                want_wire("MetricMetadata.help", wire, LEN)?;
                r.string("metadata help")?.clone_into(&mut m.help);
            }
            5 => {
                want_wire("MetricMetadata.unit", wire, LEN)?;
                r.string("metadata unit")?.clone_into(&mut m.unit);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(m)
}

fn series<'a>(
    buf: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<Sample>,
    skipped: &mut Skipped,
) -> Result<(), IngestError> {
    // Clients write a series' labels first: their messages, tags and
    // lengths included, are checked as UTF-8 once (one pass over a few
    // hundred bytes, not one call per name and value). A run that is not
    // (a length of 128 or more, an invalid string) is checked string by
    // string, as any other label.
    let labels_end = Reader::new(buf).run_end(1);
    let text = buf
        .get(..labels_end)
        .and_then(|b| std::str::from_utf8(b).ok());
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("TimeSeries.labels", wire, LEN)?;
                let bytes = r.bytes()?;
                let sub = text.and_then(|t| t.get(r.pos - bytes.len()..r.pos));
                labels.push(label(bytes, sub)?);
            }
            2 => {
                want_wire("TimeSeries.samples", wire, LEN)?;
                samples.push(sample(r.bytes()?)?.0);
            }
            3 => {
                want_wire("TimeSeries.exemplars", wire, LEN)?;
                r.bytes()?;
                skipped.exemplars += 1;
            }
            4 => {
                want_wire("TimeSeries.histograms", wire, LEN)?;
                r.bytes()?;
                skipped.histograms += 1;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(())
}

/// A `Label` message; `text`: the same bytes when known to be UTF-8.
fn label<'a>(buf: &'a [u8], text: Option<&'a str>) -> Result<(&'a str, &'a str), IngestError> {
    let mut r = Reader::with_text(buf, text);
    let (mut name, mut value) = ("", "");
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Label.name", wire, LEN)?;
                name = r.string("label name")?;
            }
            2 => {
                want_wire("Label.value", wire, LEN)?;
                value = r.string("label value")?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

/// A `Sample` and its start timestamp (2.0's field 3; 0: unset, and
/// always 0 in 1.0, which has no such field).
fn sample(buf: &[u8]) -> Result<(Sample, i64), IngestError> {
    let mut r = Reader::new(buf);
    let mut s = Sample {
        timestamp_ms: 0,
        value: 0.0,
    };
    let mut start = 0;
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Sample.value", wire, FIXED64)?;
                s.value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                want_wire("Sample.timestamp", wire, VARINT)?;
                s.timestamp_ms = r.varint()? as i64;
            }
            3 => {
                want_wire("Sample.start_timestamp", wire, VARINT)?;
                start = r.varint()? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((s, start))
}

/// Decodes a remote-write 2.0 `Request` into a validated batch. Fields may
/// come in any order, so the symbol table is gathered first and the series
/// read after.
pub(crate) fn decode_v2(
    tenant: TenantId,
    raw: &[u8],
    names: NameScheme,
) -> Result<Decoded, IngestError> {
    let mut skipped = Skipped::default();
    let mut r = Reader::new(raw);
    let mut symbols: Vec<&str> = Vec::new();
    let mut series_bufs: Vec<&[u8]> = Vec::new();
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            4 => {
                want_wire("Request.symbols", wire, LEN)?;
                symbols.push(r.string("symbol")?);
            }
            5 => {
                want_wire("Request.timeseries", wire, LEN)?;
                series_bufs.push(r.bytes()?);
            }
            // Reserved in 2.0: a 1.0 WriteRequest sent as 2.0, which
            // skipping would store as nothing.
            1..=3 => {
                return Err(err(format!(
                    "field {field} is reserved in remote write 2.0 (a 1.0 WriteRequest? send it \
                     with Content-Type application/x-protobuf)"
                )));
            }
            _ => r.skip(wire)?,
        }
    }
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(err("symbols[0] must be the empty string"));
    }
    let mut batch = WriteBatch::with_capacity(tenant, series_bufs.len(), 10);
    let mut refs: Vec<u32> = Vec::with_capacity(32);
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut samples: Vec<(Sample, i64)> = Vec::with_capacity(4);
    let mut metadata = Vec::new();
    // Each stored sample's start timestamp, once one is set.
    let mut starts: Vec<i64> = Vec::new();
    for (index, buf) in series_bufs.into_iter().enumerate() {
        refs.clear();
        labels.clear();
        samples.clear();
        let meta = series_v2(buf, &mut refs, &mut samples, &mut skipped)?;
        if !refs.len().is_multiple_of(2) {
            return Err(err(format!(
                "timeseries {index}: labels_refs has an odd number of entries ({})",
                refs.len()
            )));
        }
        for pair in refs.chunks_exact(2) {
            let symbol = |i: u32| {
                symbols.get(i as usize).copied().ok_or_else(|| {
                    err(format!(
                        "timeseries {index}: labels_refs entry {i} is outside the {} symbols",
                        symbols.len()
                    ))
                })
            };
            labels.push((symbol(pair[0])?, symbol(pair[1])?));
        }
        if let Err(source) = validate_sorted(labels.iter().copied())
            .and_then(|()| names.check(labels.iter().copied()))
        {
            return Err(IngestError::InvalidSeries {
                index,
                labels: super::describe(labels.iter().copied()),
                source,
            });
        }
        if let Some((kind, help_ref, unit_ref)) = meta {
            let text = |i: u32, what: &str| {
                symbols.get(i as usize).copied().ok_or_else(|| {
                    err(format!(
                        "timeseries {index}: metadata {what}_ref {i} is outside the {} symbols",
                        symbols.len()
                    ))
                })
            };
            let metric = labels
                .iter()
                .find(|(n, _)| *n == METRIC_NAME_LABEL)
                .map_or("", |(_, v)| *v);
            push(
                &mut metadata,
                MetricMetadata {
                    metric: metric.to_owned(),
                    kind,
                    help: text(help_ref, "help")?.to_owned(),
                    unit: text(unit_ref, "unit")?.to_owned(),
                },
            );
        }
        if !samples.is_empty() {
            crate::start_zeros::extend_starts(&mut starts, batch.sample_count(), &samples);
            batch.push_validated(labels.iter().copied(), samples.iter().map(|(s, _)| *s));
        }
    }
    Ok(Decoded {
        batch,
        skipped,
        metadata,
        starts,
    })
}

/// A 2.0 `Metadata` message: its type and the symbols of its help and
/// unit.
fn metadata_v2(buf: &[u8]) -> Result<(MetricType, u32, u32), IngestError> {
    let mut r = Reader::new(buf);
    let (mut kind, mut help, mut unit) = (MetricType::Unknown, 0, 0);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Metadata.type", wire, VARINT)?;
                kind = MetricType::from_wire(r.varint()?);
            }
            3 => {
                want_wire("Metadata.help_ref", wire, VARINT)?;
                help = symbol_ref(r.varint()?)?;
            }
            4 => {
                want_wire("Metadata.unit_ref", wire, VARINT)?;
                unit = symbol_ref(r.varint()?)?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((kind, help, unit))
}

/// A 2.0 series' label references and samples; its metadata, if it
/// carries any.
fn series_v2(
    buf: &[u8],
    refs: &mut Vec<u32>,
    samples: &mut Vec<(Sample, i64)>,
    skipped: &mut Skipped,
) -> Result<Option<(MetricType, u32, u32)>, IngestError> {
    let mut meta = None;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => match wire {
                // Packed, as proto3 encoders write it; one by one is legal too.
                LEN => {
                    let mut packed = Reader::new(r.bytes()?);
                    while !packed.done() {
                        refs.push(symbol_ref(packed.varint()?)?);
                    }
                }
                VARINT => refs.push(symbol_ref(r.varint()?)?),
                other => {
                    return Err(err(format!(
                        "TimeSeries.labels_refs has wire type {other}, expected {LEN}"
                    )));
                }
            },
            2 => {
                want_wire("TimeSeries.samples", wire, LEN)?;
                samples.push(sample(r.bytes()?)?);
            }
            3 => {
                want_wire("TimeSeries.histograms", wire, LEN)?;
                r.bytes()?;
                skipped.histograms += 1;
            }
            4 => {
                want_wire("TimeSeries.exemplars", wire, LEN)?;
                r.bytes()?;
                skipped.exemplars += 1;
            }
            5 => {
                want_wire("TimeSeries.metadata", wire, LEN)?;
                meta = Some(metadata_v2(r.bytes()?)?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(meta)
}

fn symbol_ref(v: u64) -> Result<u32, IngestError> {
    u32::try_from(v).map_err(|_| err(format!("symbol reference {v} overflows uint32")))
}
