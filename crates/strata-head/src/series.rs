//! One series in memory.

use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::{Sample, SeriesId};

/// Index of a string in a tenant's symbol table.
pub(crate) type Sym = u32;

pub(crate) struct MemSeries {
    pub(crate) id: SeriesId,
    /// (name, value) symbols, sorted by name.
    pub(crate) labels: Box<[(Sym, Sym)]>,
    pub(crate) samples: Mutex<SampleBuf>,
}

/// Samples of one series, sorted by timestamp, unique per timestamp.
#[derive(Default)]
pub(crate) struct SampleBuf {
    samples: Vec<Sample>,
}

impl SampleBuf {
    /// Inserts keeping order; an equal timestamp is overwritten (last write
    /// wins). In-order appends, the common case, are a push.
    pub(crate) fn insert(&mut self, s: Sample) {
        match self.samples.last_mut() {
            None => self.samples.push(s),
            Some(last) if last.timestamp_ms < s.timestamp_ms => self.samples.push(s),
            Some(last) if last.timestamp_ms == s.timestamp_ms => *last = s,
            Some(_) => match self
                .samples
                .binary_search_by_key(&s.timestamp_ms, |x| x.timestamp_ms)
            {
                Ok(i) => self.samples[i] = s,
                Err(i) => self.samples.insert(i, s),
            },
        }
    }

    /// Samples with `min <= t <= max`.
    pub(crate) fn range(&self, min: i64, max: i64) -> &[Sample] {
        let lo = self.samples.partition_point(|s| s.timestamp_ms < min);
        let hi = self.samples.partition_point(|s| s.timestamp_ms <= max);
        &self.samples[lo..hi.max(lo)]
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
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
            .iter()
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
