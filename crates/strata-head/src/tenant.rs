//! One tenant's head: symbols, series, postings.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use roaring::RoaringBitmap;
use strata_types::{SeriesId, SeriesRef, TenantId, WriteBatch};

use crate::series::{MemSeries, Sym};
use crate::{HeadError, MatchOp, Matcher, SeriesSnapshot};

/// What one append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    pub samples: u64,
    pub new_series: u64,
}

/// A series' position in one tenant's head. Valid for the life of the
/// process (series are never removed from a head yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeadSeriesRef(u32);

/// Sample storage of one tenant's head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleStats {
    pub samples: usize,
    pub bytes: usize,
}

/// One metric of a head: series count and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricLabels {
    pub metric: Arc<str>,
    pub series: u64,
    pub labels: Vec<Arc<str>>,
}

/// The head of one tenant.
pub struct TenantHead {
    tenant: TenantId,
    index: RwLock<Index>,
    /// Samples appended (replacements included): the flush trigger's
    /// measure of head size, kept without walking the series.
    appended: AtomicU64,
}

impl std::fmt::Debug for TenantHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantHead")
            .field("tenant", &self.tenant)
            .field("series", &self.series_count())
            .finish()
    }
}

#[derive(Default)]
struct Index {
    symbols: HashMap<Arc<str>, Sym>,
    strings: Vec<Arc<str>>,
    by_id: HashMap<SeriesId, u32>,
    series: Vec<MemSeries>,
    /// (name, value) → series refs.
    postings: HashMap<(Sym, Sym), RoaringBitmap>,
    /// name → values seen with it, for regex matchers and label APIs.
    values: HashMap<Sym, Vec<Sym>>,
    /// metric name → series count and the label names its series use
    /// (SQL's per-metric tables).
    metric_labels: HashMap<Sym, (u64, Vec<Sym>)>,
    all: RoaringBitmap,
}

impl Index {
    fn sym(&self, s: &str) -> Option<Sym> {
        self.symbols.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.symbols.get(s) {
            return id;
        }
        let id = self.strings.len() as Sym;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&s));
        self.symbols.insert(s, id);
        id
    }

    fn str(&self, sym: Sym) -> &Arc<str> {
        &self.strings[sym as usize]
    }

    fn same_labels(&self, series: &MemSeries, incoming: &SeriesRef<'_>) -> bool {
        series.labels.len() == incoming.label_count()
            && series
                .labels
                .iter()
                .zip(incoming.labels())
                .all(|((n, v), (name, value))| **self.str(*n) == *name && **self.str(*v) == *value)
    }

    fn describe(&self, series: &MemSeries) -> String {
        let pairs: Vec<String> = series
            .labels
            .iter()
            .map(|(n, v)| format!("{}={:?}", self.str(*n), self.str(*v)))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }

    /// Finds the series for `incoming`, or `None` if it is new.
    fn lookup(&self, id: SeriesId, incoming: &SeriesRef<'_>) -> Result<Option<u32>, HeadError> {
        let Some(&r) = self.by_id.get(&id) else {
            return Ok(None);
        };
        let existing = &self.series[r as usize];
        if !self.same_labels(existing, incoming) {
            return Err(HeadError::SeriesIdCollision {
                id,
                existing: self.describe(existing),
                incoming: format!("{:?}", incoming.labels().collect::<Vec<_>>()),
            });
        }
        Ok(Some(r))
    }

    fn create(&mut self, id: SeriesId, incoming: &SeriesRef<'_>) -> u32 {
        let r = self.series.len() as u32;
        let labels: Box<[(Sym, Sym)]> = incoming
            .labels()
            .map(|(name, value)| (self.intern(name), self.intern(value)))
            .collect();
        for &(n, v) in labels.iter() {
            let postings = self.postings.entry((n, v)).or_default();
            if postings.is_empty() {
                self.values.entry(n).or_default().push(v);
            }
            postings.insert(r);
        }
        let name = self.sym(strata_types::METRIC_NAME_LABEL);
        let metric = labels
            .iter()
            .find(|(n, _)| Some(*n) == name)
            .map(|(_, v)| *v);
        if let Some(metric) = metric {
            let (count, names) = self.metric_labels.entry(metric).or_default();
            *count += 1;
            for &(n, _) in labels.iter() {
                if Some(n) != name && !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        self.all.insert(r);
        self.series.push(MemSeries {
            id,
            labels,
            samples: Default::default(),
        });
        self.by_id.insert(id, r);
        r
    }

    /// Union of the postings of every value of `name` accepted by `keep`.
    fn union_values(&self, name: &str, keep: impl Fn(&str) -> bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some(n) = self.sym(name) else {
            return out;
        };
        for &v in self.values.get(&n).map(Vec::as_slice).unwrap_or_default() {
            if keep(self.str(v))
                && let Some(p) = self.postings.get(&(n, v))
            {
                out |= p;
            }
        }
        out
    }

    fn postings_for(&self, m: &Matcher) -> RoaringBitmap {
        // A series lacking the label has the empty value. If the matcher
        // accepts "", start from every series and remove those whose value
        // is rejected; otherwise take the union of accepted values.
        if m.matches("") {
            let rejected = self.union_values(&m.name, |v| !m.matches(v));
            &self.all - &rejected
        } else {
            match &m.op {
                MatchOp::Equal(v) => self
                    .sym(&m.name)
                    .zip(self.sym(v))
                    .and_then(|k| self.postings.get(&k).cloned())
                    .unwrap_or_default(),
                _ => self.union_values(&m.name, |v| m.matches(v)),
            }
        }
    }
}

impl TenantHead {
    pub(crate) fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            index: RwLock::new(Index::default()),
            appended: AtomicU64::new(0),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Appends validated series. New series are created under the write
    /// lock; samples are added under each series' own lock.
    pub(crate) fn append(&self, batch: &WriteBatch) -> Result<AppendStats, HeadError> {
        let ids: Vec<SeriesId> = batch.series().map(|s| s.series_id()).collect();
        let mut refs = Vec::with_capacity(ids.len());
        let mut missing = false;
        {
            let index = self.index.read();
            for (s, id) in batch.series().zip(&ids) {
                let r = index.lookup(*id, &s)?;
                missing |= r.is_none();
                refs.push(r);
            }
        }
        let mut stats = AppendStats::default();
        if missing {
            let mut index = self.index.write();
            for ((s, id), r) in batch.series().zip(&ids).zip(refs.iter_mut()) {
                if r.is_none() {
                    *r = Some(match index.lookup(*id, &s)? {
                        Some(existing) => existing,
                        None => {
                            stats.new_series += 1;
                            index.create(*id, &s)
                        }
                    });
                }
            }
        }
        let index = self.index.read();
        for (s, r) in batch.series().zip(refs) {
            let Some(r) = r else { continue };
            let mut buf = index.series[r as usize].samples.lock();
            for smp in s.samples() {
                buf.insert(*smp);
            }
            stats.samples += s.samples().len() as u64;
        }
        self.appended.fetch_add(stats.samples, Ordering::Relaxed);
        Ok(stats)
    }

    /// Samples appended to this head so far.
    pub fn samples_appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Every series ordered by (metric name, series id as a signed 64-bit
    /// integer): the order of rows in a flushed file, whose `series_id`
    /// column is signed because Delta Lake has no unsigned types.
    pub fn series_in_flush_order(&self) -> Vec<HeadSeriesRef> {
        let index = self.index.read();
        let name = index.sym(strata_types::METRIC_NAME_LABEL);
        let mut refs: Vec<(&str, i64, u32)> = index
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let metric = s
                    .labels
                    .iter()
                    .find(|(n, _)| Some(*n) == name)
                    .map_or("", |(_, v)| &**index.str(*v));
                (metric, s.id.0 as i64, i as u32)
            })
            .collect();
        refs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        refs.into_iter().map(|(_, _, r)| HeadSeriesRef(r)).collect()
    }

    pub fn series_count(&self) -> usize {
        self.index.read().series.len()
    }

    /// Whether the head holds series `id`.
    pub fn contains(&self, id: SeriesId) -> bool {
        self.index.read().by_id.contains_key(&id)
    }

    /// Series the head holds with `__name__ = metric`.
    pub fn metric_series_count(&self, metric: &str) -> u64 {
        let index = self.index.read();
        index
            .sym(strata_types::METRIC_NAME_LABEL)
            .zip(index.sym(metric))
            .and_then(|k| index.postings.get(&k))
            .map_or(0, RoaringBitmap::len)
    }

    /// Every metric with its series count and the label names its series
    /// use (`__name__` left out), unordered.
    pub fn metric_catalog(&self) -> Vec<MetricLabels> {
        let index = self.index.read();
        index
            .metric_labels
            .iter()
            .map(|(m, (series, names))| MetricLabels {
                metric: Arc::clone(index.str(*m)),
                series: *series,
                labels: names.iter().map(|n| Arc::clone(index.str(*n))).collect(),
            })
            .collect()
    }

    /// Stored sample records and the heap bytes holding them (compressed
    /// chunks plus out-of-order patches). Walks every series: for metrics
    /// scrapes, not hot paths.
    pub fn sample_stats(&self) -> SampleStats {
        let index = self.index.read();
        let mut stats = SampleStats::default();
        for s in &index.series {
            let buf = s.samples.lock();
            stats.samples += buf.len();
            stats.bytes += buf.heap_bytes();
        }
        stats
    }

    /// Series matching every matcher (all series if there are none).
    fn select(&self, index: &Index, matchers: &[Matcher]) -> RoaringBitmap {
        let mut out = index.all.clone();
        for m in matchers {
            if out.is_empty() {
                break;
            }
            out &= index.postings_for(m);
        }
        out
    }

    /// The series matching every matcher, in series-id order: a cheap
    /// handle list for scans that read samples a few series at a time.
    pub fn select_series(&self, matchers: &[Matcher]) -> Vec<HeadSeriesRef> {
        let index = self.index.read();
        let mut refs: Vec<(SeriesId, HeadSeriesRef)> = self
            .select(&index, matchers)
            .iter()
            .map(|r| (index.series[r as usize].id, HeadSeriesRef(r)))
            .collect();
        refs.sort_unstable_by_key(|(id, _)| *id);
        refs.into_iter().map(|(_, r)| r).collect()
    }

    /// Labels and samples in `[min_ms, max_ms]` of the given series, in the
    /// given order. Series with no sample in the range are left out.
    pub fn read_series(
        &self,
        refs: &[HeadSeriesRef],
        min_ms: i64,
        max_ms: i64,
    ) -> Vec<SeriesSnapshot> {
        let index = self.index.read();
        refs.iter()
            .filter_map(|HeadSeriesRef(r)| {
                let s = index.series.get(*r as usize)?;
                let samples = s.samples.lock().range(min_ms, max_ms);
                (!samples.is_empty()).then(|| SeriesSnapshot {
                    id: s.id,
                    labels: s
                        .labels
                        .iter()
                        .map(|(n, v)| (Arc::clone(index.str(*n)), Arc::clone(index.str(*v))))
                        .collect(),
                    samples,
                })
            })
            .collect()
    }

    /// Labels and samples in `[min_ms, max_ms]` of every series matching
    /// `matchers`, ordered by series id. Series with no sample in the range
    /// are left out.
    pub fn query(&self, matchers: &[Matcher], min_ms: i64, max_ms: i64) -> Vec<SeriesSnapshot> {
        self.read_series(&self.select_series(matchers), min_ms, max_ms)
    }

    /// Label names in use, sorted.
    pub fn label_names(&self) -> Vec<Arc<str>> {
        let index = self.index.read();
        let mut v: Vec<_> = index
            .values
            .keys()
            .map(|n| Arc::clone(index.str(*n)))
            .collect();
        v.sort();
        v
    }

    /// Values of `name` in use, sorted.
    pub fn label_values(&self, name: &str) -> Vec<Arc<str>> {
        let index = self.index.read();
        let Some(n) = index.sym(name) else {
            return Vec::new();
        };
        let mut v: Vec<_> = index
            .values
            .get(&n)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| Arc::clone(index.str(*v)))
            .collect();
        v.sort();
        v
    }

    /// Every label name with its number of distinct values and of series
    /// carrying it (the cardinality API's view of the head).
    pub fn label_name_cardinality(&self) -> Vec<(Arc<str>, u64, u64)> {
        let index = self.index.read();
        index
            .values
            .iter()
            .map(|(n, vals)| {
                let series: u64 = vals
                    .iter()
                    .filter_map(|v| index.postings.get(&(*n, *v)))
                    .map(RoaringBitmap::len)
                    .sum();
                (Arc::clone(index.str(*n)), vals.len() as u64, series)
            })
            .collect()
    }

    /// Values of `name` with the number of series carrying each.
    pub fn label_value_cardinality(&self, name: &str) -> Vec<(Arc<str>, u64)> {
        let index = self.index.read();
        let Some(n) = index.sym(name) else {
            return Vec::new();
        };
        index
            .values
            .get(&n)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let count = index.postings.get(&(n, *v)).map_or(0, RoaringBitmap::len);
                (Arc::clone(index.str(*v)), count)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
