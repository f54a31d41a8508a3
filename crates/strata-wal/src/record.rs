//! Record payloads: what a WAL frame carries.
//!
//! ```text
//! kind        u8      1 = metric samples
//! tenant      uvarint length, UTF-8 bytes
//! series      uvarint count, then per series:
//!   labels    uvarint count, then per label: uvarint len + name, uvarint len + value
//!   samples   uvarint count, then
//!             first timestamp as zigzag varint, later ones as zigzag deltas,
//!             then every value as 8 bytes LE (raw f64 bits: NaNs stay exact)
//! ```
//!
//! Labels are written sorted and were validated before the append, so decode
//! rebuilds them without re-validating more than structure.

use strata_types::{Sample, TenantId, WriteBatch, validate_sorted};

const KIND_SAMPLES: u8 = 1;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WalRecord {
    /// Float samples for one tenant.
    Samples(WriteBatch),
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

impl WalRecord {
    /// Encodes a samples record for `batch`.
    pub fn encode_samples(batch: &WriteBatch) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + batch.series_count() * 160);
        out.push(KIND_SAMPLES);
        put_bytes(&mut out, batch.tenant.as_str().as_bytes());
        put_uvarint(&mut out, batch.series_count() as u64);
        for s in batch.series() {
            put_uvarint(&mut out, s.label_count() as u64);
            for (name, value) in s.labels() {
                put_bytes(&mut out, name.as_bytes());
                put_bytes(&mut out, value.as_bytes());
            }
            put_uvarint(&mut out, s.samples().len() as u64);
            let mut prev = 0i64;
            for smp in s.samples() {
                put_uvarint(&mut out, zigzag(smp.timestamp_ms.wrapping_sub(prev)));
                prev = smp.timestamp_ms;
            }
            for smp in s.samples() {
                out.extend_from_slice(&smp.value.to_bits().to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader { bytes, pos: 0 };
        match r.u8("kind")? {
            KIND_SAMPLES => {}
            kind => return Err(RecordError::UnknownKind { kind }),
        }
        let tenant = TenantId::try_new(r.str("tenant")?).map_err(|e| RecordError::Invalid {
            what: "tenant",
            detail: e.to_string(),
        })?;
        let n_series = r.count("series count")?;
        let mut batch = WriteBatch::with_capacity(tenant, n_series, 8);
        let mut labels: Vec<(&str, &str)> = Vec::new();
        let mut samples: Vec<Sample> = Vec::new();
        for _ in 0..n_series {
            labels.clear();
            let n_labels = r.count("label count")?;
            for _ in 0..n_labels {
                let name = r.str("label name")?;
                let value = r.str("label value")?;
                labels.push((name, value));
            }
            validate_sorted(labels.iter().copied()).map_err(|e| RecordError::Invalid {
                what: "labels",
                detail: e.to_string(),
            })?;
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
            batch.push_validated(labels.iter().copied(), samples.iter().copied());
        }
        if r.pos != bytes.len() {
            return Err(RecordError::Trailing {
                extra: bytes.len() - r.pos,
            });
        }
        Ok(Self::Samples(batch))
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
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
