//! One series in memory.

use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::{Sample, SeriesId};

use crate::chunk::XorChunk;

/// Index of a string in a tenant's symbol table.
pub(crate) type Sym = u32;

pub(crate) struct MemSeries {
    pub(crate) id: SeriesId,
    pub(crate) samples: Mutex<SampleBuf>,
}

/// Samples of one series: a compressed chunk for in-order appends, plus the
/// few samples that were not (out of order, or rewriting a timestamp).
#[derive(Default)]
pub(crate) struct SampleBuf {
    chunk: XorChunk,
    /// Sorted, unique; each has a timestamp at or before the chunk's last,
    /// and wins over the chunk's sample at the same timestamp (it was
    /// written later).
    patches: Vec<Sample>,
}

impl SampleBuf {
    /// Inserts a sample; a second sample at the same timestamp replaces the
    /// first (last write wins). In-order appends, the common case, go to the
    /// compressed chunk.
    pub(crate) fn insert(&mut self, s: Sample) {
        match self.chunk.last_timestamp() {
            Some(last) if s.timestamp_ms <= last => {
                match self
                    .patches
                    .binary_search_by_key(&s.timestamp_ms, |x| x.timestamp_ms)
                {
                    Ok(i) => self.patches[i] = s,
                    Err(i) => self.patches.insert(i, s),
                }
            }
            _ => self.chunk.push(s.timestamp_ms, s.value),
        }
    }

    /// Samples with `min <= t <= max`, in timestamp order.
    pub(crate) fn range(&self, min: i64, max: i64) -> Vec<Sample> {
        let mut decoded = Vec::with_capacity(self.chunk.len());
        self.chunk.decode_into(&mut decoded);
        let in_range = |s: &Sample| s.timestamp_ms >= min && s.timestamp_ms <= max;
        if self.patches.is_empty() {
            decoded.retain(in_range);
            return decoded;
        }
        let mut out = Vec::with_capacity(decoded.len() + self.patches.len());
        let (mut a, mut b) = (
            decoded.into_iter().peekable(),
            self.patches.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.timestamp_ms < y.timestamp_ms => a.next(),
                (Some(x), Some(y)) if x.timestamp_ms == y.timestamp_ms => {
                    a.next();
                    b.next().copied()
                }
                (Some(_), Some(_)) | (None, Some(_)) => b.next().copied(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(s) = next.filter(in_range) {
                out.push(s);
            }
        }
        out
    }

    /// Stored sample records (a rewritten timestamp counts twice).
    pub(crate) fn len(&self) -> usize {
        self.chunk.len() + self.patches.len()
    }

    /// Heap bytes held by the samples.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunk.heap_bytes() + self.patches.capacity() * std::mem::size_of::<Sample>()
    }
}

/// A copy of one series' labels and samples in a time range, for queries.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    pub id: SeriesId,
    /// (name, value), sorted by name; `__name__` included.
    pub labels: Vec<(Arc<str>, Arc<str>)>,
    pub samples: Vec<Sample>,
}

impl SeriesSnapshot {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(buf: &SampleBuf) -> Vec<(i64, f64)> {
        buf.range(i64::MIN, i64::MAX)
            .into_iter()
            .map(|s| (s.timestamp_ms, s.value))
            .collect()
    }

    #[test]
    fn out_of_order_and_duplicates_last_write_wins() {
        let mut b = SampleBuf::default();
        for (t, v) in [
            (10, 1.0),
            (30, 3.0),
            (20, 2.0),
            (30, 4.0),
            (10, 5.0),
            (5, 0.5),
        ] {
            b.insert(Sample {
                timestamp_ms: t,
                value: v,
            });
        }
        assert_eq!(ts(&b), vec![(5, 0.5), (10, 5.0), (20, 2.0), (30, 4.0)]);
        assert_eq!(b.range(10, 20).len(), 2);
        assert_eq!(b.range(21, 29).len(), 0);
        assert_eq!(b.range(40, 10).len(), 0);
    }
}
