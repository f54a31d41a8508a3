//! Record payloads: what a WAL frame carries.
//!
//! ```text
//! kind        u8      1 = metric samples
//! tenant      uvarint length, UTF-8 bytes
//! series      uvarint count, then per series:
//!   ref       uvarint (id << 1 | 1) when the labels follow: the first use
//!             of series `id` in this segment (ids count up from 0);
//!             (id << 1) for a series defined earlier in the same segment
//!   labels    only after a defining ref: uvarint count, then per label
//!             uvarint len + name, uvarint len + value (sorted by name)
//!   samples   uvarint count, then
//!             first timestamp as zigzag varint, later ones as zigzag deltas,
//!             then every value as 8 bytes LE (raw f64 bits: NaNs stay exact)
//!
//! kind        u8      2 = log entries
//! tenant      uvarint length, UTF-8 bytes
//! streams     uvarint count, then per stream:
//!   labels    uvarint count, then per label uvarint len + name, uvarint
//!             len + value (sorted by name)
//!   entries   uvarint count, then per entry:
//!             timestamp (ns) as a zigzag delta from the previous entry's
//!             (the first from 0), uvarint len + line, uvarint count of
//!             metadata pairs, each uvarint len + name, uvarint len + value
//!
//! kind        u8      3 = exemplars
//! tenant      uvarint length, UTF-8 bytes
//! series      uvarint count, then per series:
//!   labels    uvarint count, then per label uvarint len + name, uvarint
//!             len + value (sorted by name)
//!   exemplars uvarint count, then per exemplar:
//!             timestamp (ms) as a zigzag delta from the previous
//!             exemplar's (the first from 0), value as 8 bytes LE (raw f64
//!             bits), uvarint count of labels, each uvarint len + name,
//!             uvarint len + value (sorted by name)
//!
//! kind        u8      4 = native histograms
//! tenant      uvarint length, UTF-8 bytes
//! series      uvarint count, then per series:
//!   labels    uvarint count, then per label uvarint len + name, uvarint
//!             len + value (sorted by name)
//!   samples   uvarint count, then per histogram:
//!             timestamp (ms) as a zigzag delta from the previous one's
//!             (the first from 0); flags u8 (bit 0: integer, bits 1-2:
//!             reset hint 0 unknown, 1 reset, 2 not reset, 3 gauge);
//!             schema as zigzag varint; zero threshold, zero count, count,
//!             sum as 8 bytes LE each; positive spans (uvarint count, each
//!             zigzag offset and uvarint length) and counts (uvarint count,
//!             8 bytes LE each, absolute); the same for the negative side;
//!             custom bounds (uvarint count, 8 bytes LE each)
//! ```
//!
//! Histogram records carry their series' labels whole too: a histogram
//! sample is hundreds of bytes of buckets beside them.
//!
//! Exemplar records carry their series' labels whole, as log records do:
//! they are few, and an exemplar store re-logs what it holds at each flush
//! (a record may then be the only one of its segment to name a series).
//!
//! Log records carry their stream labels every time: their lines dwarf
//! them. A series' labels are written once per segment, so steady-state records
//! carry a few bytes of ref instead of ~200 bytes of labels per sample. Each
//! segment is self-contained (its first use of a series defines it), so
//! deleting older segments never orphans a ref, and a torn tail only loses
//! records after the definitions it cut.
//!
//! Encoding and decoding are stateful per segment: [`SegmentEncoder`] in the
//! writer, [`SegmentDecoder`] in replay, both reset at a segment boundary.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use strata_types::{
    BucketSpan, Exemplar, ExemplarBatch, Histogram, HistogramBatch, HistogramSample, Label, Labels,
    LogBatch, LogEntry, ResetHint, Sample, SeriesExemplars, SeriesHistograms, TenantId, WriteBatch,
    validate_sorted,
};
use xxhash_rust::xxh3::xxh3_128;

const KIND_SAMPLES: u8 = 1;
const KIND_LOGS: u8 = 2;
const KIND_EXEMPLARS: u8 = 3;
const KIND_HISTOGRAMS: u8 = 4;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WalRecord {
    /// Float samples for one tenant.
    Samples(WriteBatch),
    /// Log entries for one tenant.
    Logs(LogBatch),
    /// Exemplars for one tenant.
    Exemplars(ExemplarBatch),
    /// Native histogram samples for one tenant.
    Histograms(HistogramBatch),
}

/// A payload that passed its frame CRC but does not decode: a bug or a format
/// this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("unknown record kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("record truncated while reading {what}")]
    Truncated { what: &'static str },
    #[error("record has invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("record has {extra} trailing bytes")]
    Trailing { extra: usize },
}

/// Encodes records for one segment, remembering which series it defined.
///
/// Series are keyed by a 128-bit XXH3 of tenant and labels, so two label
/// sets would have to collide in 128 bits to share a ref.
#[derive(Debug, Default)]
pub struct SegmentEncoder {
    ids: HashMap<u128, u64, BuildHasherDefault<PreHashed>>,
    key: Vec<u8>,
    /// Per series of the batch being encoded: its key, and its id when the
    /// segment defined it before the batch.
    keys: Vec<u128>,
    found: Vec<Option<u64>>,
}

/// The map's keys are already XXH3 hashes: use their low bits as is
/// instead of hashing them again.
#[derive(Debug, Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

impl SegmentEncoder {
    /// Forgets every definition: call when a new segment starts.
    pub fn reset(&mut self) {
        self.ids.clear();
    }

    /// Appends the record for `batch` to `out`.
    pub fn encode_samples(&mut self, batch: &WriteBatch, out: &mut Vec<u8>) {
        out.push(KIND_SAMPLES);
        put_bytes(out, batch.tenant.as_str().as_bytes());
        put_uvarint(out, batch.series_count() as u64);
        // Every key first, then every lookup in one short loop: with many
        // series the map's buckets are out of cache, and lookups that do
        // not wait on each other overlap their misses.
        self.keys.clear();
        for s in batch.series() {
            self.key.clear();
            self.key.extend_from_slice(batch.tenant.as_str().as_bytes());
            self.key.push(0xff);
            s.identity_bytes(&mut self.key);
            self.keys.push(xxh3_128(&self.key));
        }
        self.found.clear();
        self.found
            .extend(self.keys.iter().map(|k| self.ids.get(k).copied()));
        for ((s, &key), &found) in batch.series().zip(&self.keys).zip(&self.found) {
            // Not found: new, unless an earlier series of this batch had
            // the same labels.
            let known = found.or_else(|| self.ids.get(&key).copied());
            match known {
                Some(id) => put_uvarint(out, id << 1),
                None => {
                    let next = self.ids.len() as u64;
                    self.ids.insert(key, next);
                    put_uvarint(out, next << 1 | 1);
                    put_uvarint(out, s.label_count() as u64);
                    for (name, value) in s.labels() {
                        put_bytes(out, name.as_bytes());
                        put_bytes(out, value.as_bytes());
                    }
                }
            }
            put_uvarint(out, s.samples().len() as u64);
            let mut prev = 0i64;
            for smp in s.samples() {
                put_uvarint(out, zigzag(smp.timestamp_ms.wrapping_sub(prev)));
                prev = smp.timestamp_ms;
            }
            for smp in s.samples() {
                out.extend_from_slice(&smp.value.to_bits().to_le_bytes());
            }
        }
    }
}

impl SegmentEncoder {
    /// Appends the record for `batch` to `out`.
    pub fn encode_logs(&mut self, batch: &LogBatch, out: &mut Vec<u8>) {
        out.push(KIND_LOGS);
        put_bytes(out, batch.tenant.as_str().as_bytes());
        put_uvarint(out, batch.streams.len() as u64);
        for s in &batch.streams {
            put_uvarint(out, s.labels.len() as u64);
            for l in s.labels.iter() {
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
            put_uvarint(out, s.entries.len() as u64);
            let mut prev = 0i64;
            for e in &s.entries {
                put_uvarint(out, zigzag(e.timestamp_ns.wrapping_sub(prev)));
                prev = e.timestamp_ns;
                put_bytes(out, e.line.as_bytes());
                put_uvarint(out, e.metadata.len() as u64);
                for (k, v) in &e.metadata {
                    put_bytes(out, k.as_bytes());
                    put_bytes(out, v.as_bytes());
                }
            }
        }
    }
}

impl SegmentEncoder {
    /// Appends the record for `batch` to `out`.
    pub fn encode_exemplars(&mut self, batch: &ExemplarBatch, out: &mut Vec<u8>) {
        out.push(KIND_EXEMPLARS);
        put_bytes(out, batch.tenant.as_str().as_bytes());
        put_uvarint(out, batch.series.len() as u64);
        for s in &batch.series {
            put_uvarint(out, s.labels.len() as u64);
            for l in s.labels.iter() {
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
            put_uvarint(out, s.exemplars.len() as u64);
            let mut prev = 0i64;
            for e in &s.exemplars {
                put_uvarint(out, zigzag(e.timestamp_ms.wrapping_sub(prev)));
                prev = e.timestamp_ms;
                out.extend_from_slice(&e.value.to_bits().to_le_bytes());
                put_uvarint(out, e.labels.len() as u64);
                for (n, v) in &e.labels {
                    put_bytes(out, n.as_bytes());
                    put_bytes(out, v.as_bytes());
                }
            }
        }
    }
}

impl SegmentEncoder {
    /// Appends the record for `batch` to `out`.
    pub fn encode_histograms(&mut self, batch: &HistogramBatch, out: &mut Vec<u8>) {
        out.push(KIND_HISTOGRAMS);
        put_bytes(out, batch.tenant.as_str().as_bytes());
        put_uvarint(out, batch.series.len() as u64);
        let put_f64 = |out: &mut Vec<u8>, v: f64| out.extend_from_slice(&v.to_bits().to_le_bytes());
        let put_side = |out: &mut Vec<u8>, spans: &[BucketSpan], counts: &[f64]| {
            put_uvarint(out, spans.len() as u64);
            for sp in spans {
                put_uvarint(out, zigzag(i64::from(sp.offset)));
                put_uvarint(out, u64::from(sp.length));
            }
            put_uvarint(out, counts.len() as u64);
            for &c in counts {
                put_f64(out, c);
            }
        };
        for s in &batch.series {
            put_uvarint(out, s.labels.len() as u64);
            for l in s.labels.iter() {
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
            put_uvarint(out, s.samples.len() as u64);
            let mut prev = 0i64;
            for smp in &s.samples {
                let h = &smp.histogram;
                put_uvarint(out, zigzag(smp.timestamp_ms.wrapping_sub(prev)));
                prev = smp.timestamp_ms;
                out.push(u8::from(h.integer) | h.reset_hint.to_wire() << 1);
                put_uvarint(out, zigzag(i64::from(h.schema)));
                for v in [h.zero_threshold, h.zero_count, h.count, h.sum] {
                    put_f64(out, v);
                }
                put_side(out, &h.positive_spans, &h.positive_counts);
                put_side(out, &h.negative_spans, &h.negative_counts);
                put_uvarint(out, h.custom_values.len() as u64);
                for &v in &h.custom_values {
                    put_f64(out, v);
                }
            }
        }
    }
}

/// A series' labels written in full (exemplar and histogram records).
fn series_labels(r: &mut Reader<'_>) -> Result<Labels, RecordError> {
    let n_labels = r.count("label count")?;
    let mut labels = Vec::with_capacity(n_labels);
    for _ in 0..n_labels {
        labels.push(Label::new(r.str("label name")?, r.str("label value")?));
    }
    Labels::try_from_sorted(labels).map_err(|e| RecordError::Invalid {
        what: "labels",
        detail: e.to_string(),
    })
}

fn decode_histograms(r: &mut Reader<'_>, tenant: TenantId) -> Result<HistogramBatch, RecordError> {
    let mut batch = HistogramBatch::new(tenant);
    let f64s = |r: &mut Reader<'_>, what: &'static str| -> Result<Vec<f64>, RecordError> {
        let n = r.count(what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f64::from_bits(r.u64_le(what)?));
        }
        Ok(out)
    };
    let spans = |r: &mut Reader<'_>| -> Result<Vec<BucketSpan>, RecordError> {
        let n = r.count("span count")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = i32::try_from(unzigzag(r.uvarint("span offset")?)).map_err(|e| {
                RecordError::Invalid {
                    what: "span offset",
                    detail: e.to_string(),
                }
            })?;
            let length =
                u32::try_from(r.uvarint("span length")?).map_err(|e| RecordError::Invalid {
                    what: "span length",
                    detail: e.to_string(),
                })?;
            out.push(BucketSpan { offset, length });
        }
        Ok(out)
    };
    let n_series = r.count("series count")?;
    for _ in 0..n_series {
        let labels = series_labels(r)?;
        let n = r.count("histogram count")?;
        let mut samples = Vec::with_capacity(n);
        let mut ts = 0i64;
        for _ in 0..n {
            ts = ts.wrapping_add(unzigzag(r.uvarint("timestamp")?));
            let flags = r.u8("histogram flags")?;
            let schema = i32::try_from(unzigzag(r.uvarint("schema")?)).map_err(|e| {
                RecordError::Invalid {
                    what: "schema",
                    detail: e.to_string(),
                }
            })?;
            let mut fixed = [0f64; 4];
            for v in &mut fixed {
                *v = f64::from_bits(r.u64_le("histogram field")?);
            }
            let [zero_threshold, zero_count, count, sum] = fixed;
            let positive_spans = spans(r)?;
            let positive_counts = f64s(r, "bucket count")?;
            let negative_spans = spans(r)?;
            let negative_counts = f64s(r, "bucket count")?;
            let custom_values = f64s(r, "custom bound")?;
            let histogram = Histogram {
                reset_hint: ResetHint::from_wire(u64::from(flags >> 1 & 3)),
                schema,
                zero_threshold,
                zero_count,
                count,
                sum,
                positive_spans,
                positive_counts,
                negative_spans,
                negative_counts,
                custom_values,
                integer: flags & 1 == 1,
            };
            histogram.validate().map_err(|e| RecordError::Invalid {
                what: "histogram",
                detail: e.to_string(),
            })?;
            samples.push(HistogramSample {
                timestamp_ms: ts,
                histogram,
            });
        }
        batch.series.push(SeriesHistograms { labels, samples });
    }
    Ok(batch)
}

fn decode_exemplars(r: &mut Reader<'_>, tenant: TenantId) -> Result<ExemplarBatch, RecordError> {
    let mut batch = ExemplarBatch::new(tenant);
    let n_series = r.count("series count")?;
    for _ in 0..n_series {
        let labels = series_labels(r)?;
        let n = r.count("exemplar count")?;
        let mut exemplars = Vec::with_capacity(n);
        let mut ts = 0i64;
        for _ in 0..n {
            ts = ts.wrapping_add(unzigzag(r.uvarint("timestamp")?));
            let value = f64::from_bits(r.u64_le("value")?);
            let n_labels = r.count("exemplar label count")?;
            let mut pairs = Vec::with_capacity(n_labels);
            for _ in 0..n_labels {
                pairs.push((
                    r.str("exemplar label name")?.to_owned(),
                    r.str("exemplar label value")?.to_owned(),
                ));
            }
            exemplars.push(Exemplar {
                labels: pairs,
                value,
                timestamp_ms: ts,
            });
        }
        batch.series.push(SeriesExemplars { labels, exemplars });
    }
    Ok(batch)
}

fn decode_logs(r: &mut Reader<'_>, tenant: TenantId) -> Result<LogBatch, RecordError> {
    let mut batch = LogBatch::new(tenant);
    let n_streams = r.count("stream count")?;
    for _ in 0..n_streams {
        let n_labels = r.count("label count")?;
        let mut labels = Vec::with_capacity(n_labels);
        for _ in 0..n_labels {
            let name = r.str("label name")?;
            let value = r.str("label value")?;
            labels.push(Label::new(name, value));
        }
        strata_types::validate_stream_sorted(
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        )
        .map_err(|e| RecordError::Invalid {
            what: "stream labels",
            detail: e.to_string(),
        })?;
        let labels = Labels::from_validated_stream(labels);
        let n_entries = r.count("entry count")?;
        let mut entries = Vec::with_capacity(n_entries);
        let mut ts = 0i64;
        for _ in 0..n_entries {
            ts = ts.wrapping_add(unzigzag(r.uvarint("timestamp")?));
            let line = r.str("line")?.to_owned();
            let n_meta = r.count("metadata count")?;
            let mut metadata = Vec::with_capacity(n_meta);
            for _ in 0..n_meta {
                let k = r.str("metadata name")?.to_owned();
                let v = r.str("metadata value")?.to_owned();
                metadata.push((k, v));
            }
            entries.push(LogEntry {
                timestamp_ns: ts,
                line,
                metadata,
            });
        }
        batch
            .streams
            .push(strata_types::LogStream { labels, entries });
    }
    Ok(batch)
}

/// The sorted (name, value) pairs of a series defined in a segment.
type DefinedLabels = Box<[(Box<str>, Box<str>)]>;

/// Decodes the records of one segment in order.
#[derive(Debug, Default)]
pub struct SegmentDecoder {
    defined: Vec<DefinedLabels>,
}

impl SegmentDecoder {
    /// Forgets every definition: call when a new segment starts.
    pub fn reset(&mut self) {
        self.defined.clear();
    }

    pub fn decode(&mut self, bytes: &[u8]) -> Result<WalRecord, RecordError> {
        let mut r = Reader { bytes, pos: 0 };
        let kind = r.u8("kind")?;
        if ![KIND_SAMPLES, KIND_LOGS, KIND_EXEMPLARS, KIND_HISTOGRAMS].contains(&kind) {
            return Err(RecordError::UnknownKind { kind });
        }
        let tenant = TenantId::try_new(r.str("tenant")?).map_err(|e| RecordError::Invalid {
            what: "tenant",
            detail: e.to_string(),
        })?;
        if kind == KIND_LOGS {
            let batch = decode_logs(&mut r, tenant)?;
            if r.pos != r.bytes.len() {
                return Err(RecordError::Trailing {
                    extra: r.bytes.len() - r.pos,
                });
            }
            return Ok(WalRecord::Logs(batch));
        }
        if kind == KIND_EXEMPLARS {
            let batch = decode_exemplars(&mut r, tenant)?;
            if r.pos != r.bytes.len() {
                return Err(RecordError::Trailing {
                    extra: r.bytes.len() - r.pos,
                });
            }
            return Ok(WalRecord::Exemplars(batch));
        }
        if kind == KIND_HISTOGRAMS {
            let batch = decode_histograms(&mut r, tenant)?;
            if r.pos != r.bytes.len() {
                return Err(RecordError::Trailing {
                    extra: r.bytes.len() - r.pos,
                });
            }
            return Ok(WalRecord::Histograms(batch));
        }
        let n_series = r.count("series count")?;
        let mut batch = WriteBatch::with_capacity(tenant, n_series, 8);
        let mut samples: Vec<Sample> = Vec::new();
        for _ in 0..n_series {
            let tag = r.uvarint("series ref")?;
            let id = usize::try_from(tag >> 1).unwrap_or(usize::MAX);
            if tag & 1 == 1 {
                if id != self.defined.len() {
                    return Err(RecordError::Invalid {
                        what: "series ref",
                        detail: format!("defines {id}, expected {}", self.defined.len()),
                    });
                }
                let n_labels = r.count("label count")?;
                let mut labels = Vec::with_capacity(n_labels);
                for _ in 0..n_labels {
                    let name = r.str("label name")?;
                    let value = r.str("label value")?;
                    labels.push((Box::from(name), Box::from(value)));
                }
                validate_sorted(labels.iter().map(|(n, v)| (&**n, &**v))).map_err(|e| {
                    RecordError::Invalid {
                        what: "labels",
                        detail: e.to_string(),
                    }
                })?;
                self.defined.push(labels.into_boxed_slice());
            }
            let Some(labels) = self.defined.get(id) else {
                return Err(RecordError::Invalid {
                    what: "series ref",
                    detail: format!("{id} is not defined in this segment"),
                });
            };
            let n_samples = r.count("sample count")?;
            samples.clear();
            let mut ts = 0i64;
            for _ in 0..n_samples {
                ts = ts.wrapping_add(unzigzag(r.uvarint("timestamp")?));
                samples.push(Sample {
                    timestamp_ms: ts,
                    value: 0.0,
                });
            }
            for s in &mut samples {
                s.value = f64::from_bits(r.u64_le("value")?);
            }
            batch.push_validated(
                labels.iter().map(|(n, v)| (&**n, &**v)),
                samples.iter().copied(),
            );
        }
        if r.pos != bytes.len() {
            return Err(RecordError::Trailing {
                extra: bytes.len() - r.pos,
            });
        }
        Ok(WalRecord::Samples(batch))
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as a LEB128 varint (also the storage's file series index).
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(RecordError::Truncated { what })?;
        self.pos += 1;
        Ok(b)
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(RecordError::Invalid {
            what,
            detail: "varint longer than 10 bytes".into(),
        })
    }

    /// A count, bounded by the bytes left so a corrupt count cannot make us
    /// allocate gigabytes.
    fn count(&mut self, what: &'static str) -> Result<usize, RecordError> {
        let n = self.uvarint(what)?;
        if n > (self.bytes.len() - self.pos) as u64 {
            return Err(RecordError::Invalid {
                what,
                detail: format!("{n} exceeds the bytes left"),
            });
        }
        Ok(n as usize)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(RecordError::Truncated { what })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, RecordError> {
        let n = self.count(what)?;
        std::str::from_utf8(self.take(n, what)?).map_err(|e| RecordError::Invalid {
            what,
            detail: e.to_string(),
        })
    }

    fn u64_le(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests;
