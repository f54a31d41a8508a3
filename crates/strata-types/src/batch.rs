//! The unit of ingest: one tenant's accepted series and samples.
//!
//! A batch is stored flat — one string arena, one label table, one sample
//! table — so decoding a request of thousands of series costs a handful of
//! allocations, not several per label. Series are read back through
//! [`SeriesRef`] views.

use std::fmt;

use crate::{Label, Labels, Sample, SeriesId, TenantId};

/// One series and its samples, owned. Convenient for building batches in
/// tests and tools; the ingest path pushes borrowed labels instead.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

impl SeriesSamples {
    /// Builds and validates a series from `(name, value)` pairs in any order
    /// and `(timestamp ms, value)` samples.
    pub fn try_from_pairs(
        labels: &[(&str, &str)],
        samples: &[(i64, f64)],
    ) -> Result<Self, crate::LabelError> {
        Ok(Self {
            labels: Labels::try_from_unsorted(
                labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            )?,
            samples: samples
                .iter()
                .map(|&(timestamp_ms, value)| Sample {
                    timestamp_ms,
                    value,
                })
                .collect(),
        })
    }
}

/// Byte ranges of one label's name and value in the string arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LabelSpan {
    name: (u32, u32),
    value: (u32, u32),
}

/// Where one series' labels and samples end in the batch's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeriesEnd {
    labels: u32,
    samples: u32,
}

/// A validated batch for one tenant: what a write endpoint hands to the WAL
/// and then to the head. Everything in it has passed validation, so applying
/// it cannot fail half-way for reasons of input.
#[derive(Clone)]
pub struct WriteBatch {
    pub tenant: TenantId,
    strings: String,
    labels: Vec<LabelSpan>,
    series: Vec<SeriesEnd>,
    samples: Vec<Sample>,
    widest: LabelWidths,
}

/// The most labels any series of a batch has and its longest label name
/// and value, in bytes: a batch within per-series label limits is known
/// to be without walking its labels again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelWidths {
    pub labels: usize,
    pub name_bytes: usize,
    pub value_bytes: usize,
}

impl WriteBatch {
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            strings: String::new(),
            labels: Vec::new(),
            series: Vec::new(),
            samples: Vec::new(),
            widest: LabelWidths::default(),
        }
    }

    /// Pre-sizes the tables for `series` series of about `labels` labels.
    pub fn with_capacity(tenant: TenantId, series: usize, labels: usize) -> Self {
        Self::with_text_capacity(tenant, series, labels, series * labels * 12)
    }

    /// [`Self::with_capacity`] with room for `text` bytes of label names
    /// and values (a decoder that knows a bound never grows the arena).
    pub fn with_text_capacity(tenant: TenantId, series: usize, labels: usize, text: usize) -> Self {
        Self {
            tenant,
            strings: String::with_capacity(text),
            labels: Vec::with_capacity(series * labels),
            series: Vec::with_capacity(series),
            samples: Vec::with_capacity(series),
            widest: LabelWidths::default(),
        }
    }

    /// A batch of owned series.
    pub fn from_series(tenant: TenantId, series: Vec<SeriesSamples>) -> Self {
        let mut b = Self::new(tenant);
        for s in &series {
            b.push(&s.labels, &s.samples);
        }
        b
    }

    /// Appends a series with validated labels.
    pub fn push(&mut self, labels: &Labels, samples: &[Sample]) {
        self.push_validated(
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            samples.iter().copied(),
        );
    }

    /// Appends a series whose label pairs the caller has checked with
    /// [`crate::validate_sorted`]. Debug builds check again.
    pub fn push_validated<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        let start = self.labels.len();
        let (mut name_bytes, mut value_bytes) = (0, 0);
        for (name, value) in pairs {
            name_bytes = name_bytes.max(name.len());
            value_bytes = value_bytes.max(value.len());
            let name = self.intern(name);
            let value = self.intern(value);
            self.labels.push(LabelSpan { name, value });
        }
        let w = &mut self.widest;
        w.labels = w.labels.max(self.labels.len() - start);
        w.name_bytes = w.name_bytes.max(name_bytes);
        w.value_bytes = w.value_bytes.max(value_bytes);
        self.samples.extend(samples);
        self.series.push(SeriesEnd {
            labels: self.labels.len() as u32,
            samples: self.samples.len() as u32,
        });
        debug_assert!(
            crate::validate_sorted(self.series_at(self.series.len() - 1).labels()).is_ok(),
            "push_validated got invalid labels (start {start})"
        );
    }

    fn intern(&mut self, s: &str) -> (u32, u32) {
        let start = self.strings.len() as u32;
        self.strings.push_str(s);
        (start, self.strings.len() as u32)
    }

    fn series_at(&self, i: usize) -> SeriesRef<'_> {
        let (l0, s0) = match i.checked_sub(1).map(|p| self.series[p]) {
            Some(prev) => (prev.labels as usize, prev.samples as usize),
            None => (0, 0),
        };
        let end = self.series[i];
        SeriesRef {
            strings: &self.strings,
            labels: &self.labels[l0..end.labels as usize],
            samples: &self.samples[s0..end.samples as usize],
        }
    }

    /// The series, in the order they were pushed.
    pub fn series(&self) -> impl ExactSizeIterator<Item = SeriesRef<'_>> + '_ {
        (0..self.series.len()).map(|i| self.series_at(i))
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The widest series' label count and longest label name and value.
    pub fn label_widths(&self) -> LabelWidths {
        self.widest
    }

    /// The first series with a sample outside the storable time range
    /// ([`crate::MIN_TIMESTAMP_MS`]..=[`crate::MAX_TIMESTAMP_MS`]), and that
    /// sample's time; `None` when every sample is inside.
    pub fn out_of_range(&self) -> Option<(SeriesRef<'_>, i64)> {
        let bad = self
            .samples
            .iter()
            .position(|s| !crate::timestamp_in_range(s.timestamp_ms))?;
        let series = self
            .series
            .partition_point(|end| end.samples as usize <= bad);
        Some((self.series_at(series), self.samples[bad].timestamp_ms))
    }
}

impl WriteBatch {
    /// The batch with label `name` taken off every series that has it.
    /// A valid label set less one label is still sorted and valid, as long
    /// as it is not `__name__` (which callers never take off).
    pub fn without_label(&self, name: &str) -> WriteBatch {
        let mut b = Self::with_text_capacity(
            self.tenant.clone(),
            self.series.len(),
            self.widest.labels,
            self.strings.len(),
        );
        for s in self.series() {
            b.push_validated(
                s.labels().filter(|(n, _)| *n != name),
                s.samples().iter().copied(),
            );
        }
        b
    }
}

impl PartialEq for WriteBatch {
    fn eq(&self, other: &Self) -> bool {
        self.tenant == other.tenant
            && self.series_count() == other.series_count()
            && self.series().zip(other.series()).all(|(a, b)| a == b)
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBatch")
            .field("tenant", &self.tenant)
            .field("series", &self.series().collect::<Vec<_>>())
            .finish()
    }
}

/// A view of one series in a [`WriteBatch`].
#[derive(Clone, Copy)]
pub struct SeriesRef<'a> {
    strings: &'a str,
    labels: &'a [LabelSpan],
    samples: &'a [Sample],
}

impl<'a> SeriesRef<'a> {
    /// (name, value) pairs, sorted by name.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let strings = self.strings;
        self.labels.iter().map(move |l| {
            (
                strings
                    .get(l.name.0 as usize..l.name.1 as usize)
                    .unwrap_or_default(),
                strings
                    .get(l.value.0 as usize..l.value.1 as usize)
                    .unwrap_or_default(),
            )
        })
    }

    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// Appends an unambiguous byte encoding of the label set to `out`: each
    /// label's name and value lengths (u32 LE), then all names and values
    /// back to back. Equal label sets give equal bytes. One contiguous copy,
    /// for hashing a series identity cheaply.
    pub fn identity_bytes(&self, out: &mut Vec<u8>) {
        for l in self.labels {
            out.extend_from_slice(&(l.name.1 - l.name.0).to_le_bytes());
            out.extend_from_slice(&(l.value.1 - l.value.0).to_le_bytes());
        }
        // Labels are interned consecutively, so the text is one slice.
        if let (Some(first), Some(last)) = (self.labels.first(), self.labels.last()) {
            let text = self
                .strings
                .get(first.name.0 as usize..last.value.1 as usize)
                .unwrap_or_default();
            out.extend_from_slice(text.as_bytes());
        }
    }

    pub fn label(&self, name: &str) -> Option<&'a str> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn samples(&self) -> &'a [Sample] {
        self.samples
    }

    pub fn series_id(&self) -> SeriesId {
        SeriesId::from_sorted_pairs(self.labels())
    }

    /// An owned copy of the labels.
    pub fn to_labels(&self) -> Labels {
        Labels::from_validated(self.labels().map(|(n, v)| Label::new(n, v)).collect())
    }
}

impl PartialEq for SeriesRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.labels().eq(other.labels()) && self.samples == other.samples
    }
}

impl fmt::Debug for SeriesRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series")
            .field("labels", &self.labels().collect::<Vec<_>>())
            .field("samples", &self.samples)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_taken_off_every_series() {
        let tenant = TenantId::try_new("t").unwrap();
        let series = |pairs: &[&[(&str, &str)]]| {
            WriteBatch::from_series(
                tenant.clone(),
                pairs
                    .iter()
                    .map(|p| SeriesSamples::try_from_pairs(p, &[(1, 2.0)]).unwrap())
                    .collect(),
            )
        };
        let with = series(&[
            &[("__name__", "up"), ("__replica__", "a"), ("cluster", "c")],
            &[("__name__", "m"), ("job", "x")],
        ]);
        let want = series(&[
            &[("__name__", "up"), ("cluster", "c")],
            &[("__name__", "m"), ("job", "x")],
        ]);
        let got = with.without_label("__replica__");
        assert_eq!(got, want);
        // The identity (what series ids hash) is the label set's own.
        let ids = |b: &WriteBatch| b.series().map(|s| s.series_id()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want));
        let mut a = Vec::new();
        let mut b = Vec::new();
        got.series().next().unwrap().identity_bytes(&mut a);
        want.series().next().unwrap().identity_bytes(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn flat_storage_round_trips_series() {
        let labels = |pairs: &[(&str, &str)]| {
            Labels::try_from_unsorted(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
                .unwrap()
        };
        let s1 = SeriesSamples {
            labels: labels(&[("__name__", "up"), ("job", "a")]),
            samples: vec![Sample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        };
        let s2 = SeriesSamples {
            labels: labels(&[("__name__", "m")]),
            samples: vec![],
        };
        let b = WriteBatch::from_series(TenantId::try_new("t").unwrap(), vec![s1.clone(), s2]);
        assert_eq!(b.series_count(), 2);
        assert_eq!(b.sample_count(), 1);
        assert_eq!(
            b.label_widths(),
            LabelWidths {
                labels: 2,
                name_bytes: 8,
                value_bytes: 2
            }
        );
        let first = b.series().next().unwrap();
        assert_eq!(first.label("job"), Some("a"));
        assert_eq!(first.to_labels(), s1.labels);
        assert_eq!(first.series_id(), s1.labels.series_id());
        let mut id_a = Vec::new();
        first.identity_bytes(&mut id_a);
        let again = WriteBatch::from_series(TenantId::try_new("u").unwrap(), vec![s1.clone()]);
        let mut id_b = Vec::new();
        again.series().next().unwrap().identity_bytes(&mut id_b);
        assert_eq!(id_a, id_b);
        // Boundaries are part of the identity: a="bc" differs from ab="c".
        let split = |n: &str, v: &str| {
            let s = SeriesSamples {
                labels: Labels::from_validated(vec![Label::new("__name__", "x"), Label::new(n, v)]),
                samples: vec![],
            };
            let b = WriteBatch::from_series(TenantId::try_new("t").unwrap(), vec![s]);
            let mut out = Vec::new();
            b.series().next().unwrap().identity_bytes(&mut out);
            out
        };
        assert_ne!(split("a", "bc"), split("ab", "c"));
    }
}
