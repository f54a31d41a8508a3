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

    /// The newest sample's time (patches are never after the chunk's
    /// last); `None` while empty.
    pub(crate) fn newest(&self) -> Option<i64> {
        self.chunk.last_timestamp()
    }

    /// Samples with `min <= t <= max`, in timestamp order.
    pub(crate) fn range(&self, min: i64, max: i64) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len_hint(min, max));
        self.range_with(min, max, |timestamp_ms, value| {
            out.push(Sample {
                timestamp_ms,
                value,
            })
        });
        out
    }

    /// [`Self::range`] as `(timestamp, value)` points, the shape queries
    /// evaluate.
    pub(crate) fn points(&self, min: i64, max: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.len_hint(min, max));
        self.range_with(min, max, |t, v| out.push((t, v)));
        out
    }

    /// Room to reserve for a range: everything when it covers the whole
    /// chunk, else nothing up front (a short range of a long head must not
    /// reserve the whole head).
    fn len_hint(&self, min: i64, max: i64) -> usize {
        match (self.chunk.first_timestamp(), self.chunk.last_timestamp()) {
            (Some(first), Some(last)) if min <= first && max >= last => {
                self.chunk.len() + self.patches.len()
            }
            _ => 0,
        }
    }

    /// Calls `f` with the samples in `[min, max]`, in timestamp order: the
    /// chunk's (decoded from the mark before `min`, up to `max`) merged
    /// with the patches, a patch winning at an equal timestamp.
    fn range_with(&self, min: i64, max: i64, mut f: impl FnMut(i64, f64)) {
        let lo = self.patches.partition_point(|p| p.timestamp_ms < min);
        let hi = self.patches.partition_point(|p| p.timestamp_ms <= max);
        let mut patches = self.patches.get(lo..hi).unwrap_or(&[]).iter().peekable();
        self.chunk.decode_range(min, max, |t, v| {
            while let Some(p) = patches.next_if(|p| p.timestamp_ms < t) {
                f(p.timestamp_ms, p.value);
            }
            match patches.next_if(|p| p.timestamp_ms == t) {
                Some(p) => f(p.timestamp_ms, p.value),
                None => f(t, v),
            }
        });
        for p in patches {
            f(p.timestamp_ms, p.value);
        }
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

/// One series' labels and samples in a time range as queries evaluate
/// them: `(timestamp, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub id: SeriesId,
    /// (name, value), sorted by name; `__name__` included.
    pub labels: Vec<(Arc<str>, Arc<str>)>,
    pub points: Vec<(i64, f64)>,
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
