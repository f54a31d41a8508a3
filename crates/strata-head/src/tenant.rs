//! One tenant's head: symbols, series, postings.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;
use strata_types::{SeriesId, SeriesRef, TenantId, WriteBatch};

use crate::postings::LabelIndex;
use crate::series::{MemSeries, Sym};
use crate::{HeadError, Matcher, SeriesPoints, SeriesSnapshot};

/// One series' label pairs, the index's own strings.
type LabelPairs = Vec<(Arc<str>, Arc<str>)>;

/// Selections of at least this many series are read on several threads.
const PARALLEL_SERIES: usize = 2048;

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
    /// Oldest and newest sample time appended (`i64::MAX`, `i64::MIN`
    /// while empty).
    min_ms: AtomicI64,
    max_ms: AtomicI64,
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
    /// Symbols, labels and postings; a series' position there is its
    /// position in `series`.
    labels: LabelIndex,
    by_id: HashMap<SeriesId, u32>,
    series: Vec<MemSeries>,
    /// metric name → series count and the label names its series use
    /// (SQL's per-metric tables).
    metric_labels: HashMap<Sym, (u64, Vec<Sym>)>,
}

impl Index {
    fn sym(&self, s: &str) -> Option<Sym> {
        self.labels.sym(s)
    }

    fn str(&self, sym: Sym) -> &Arc<str> {
        self.labels.str(sym)
    }

    /// Series `r`'s metric name, given the symbol of `__name__`.
    fn metric_of(&self, r: u32, name: Option<Sym>) -> Option<&Arc<str>> {
        self.labels
            .syms(r)
            .iter()
            .find(|(n, _)| Some(*n) == name)
            .map(|(_, v)| self.str(*v))
    }

    fn same_labels(&self, r: u32, incoming: &SeriesRef<'_>) -> bool {
        let labels = self.labels.syms(r);
        labels.len() == incoming.label_count()
            && labels
                .iter()
                .zip(incoming.labels())
                .all(|((n, v), (name, value))| **self.str(*n) == *name && **self.str(*v) == *value)
    }

    fn describe(&self, r: u32) -> String {
        let pairs: Vec<String> = self
            .labels
            .labels(r)
            .map(|(n, v)| format!("{n}={v:?}"))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }

    /// Finds the series for `incoming`, or `None` if it is new.
    fn lookup(&self, id: SeriesId, incoming: &SeriesRef<'_>) -> Result<Option<u32>, HeadError> {
        let Some(&r) = self.by_id.get(&id) else {
            return Ok(None);
        };
        self.verify(r, id, incoming).map(Some)
    }

    /// Series `r`, found by `id`, if it has `incoming`'s labels: an error
    /// names both label sets when two share an id.
    fn verify(&self, r: u32, id: SeriesId, incoming: &SeriesRef<'_>) -> Result<u32, HeadError> {
        if !self.same_labels(r, incoming) {
            return Err(HeadError::SeriesIdCollision {
                id,
                existing: self.describe(r),
                incoming: format!("{:?}", incoming.labels().collect::<Vec<_>>()),
            });
        }
        Ok(r)
    }

    fn create(&mut self, id: SeriesId, incoming: &SeriesRef<'_>) -> u32 {
        let r = self.labels.add(incoming.labels());
        debug_assert_eq!(r as usize, self.series.len());
        let name = self.sym(strata_types::METRIC_NAME_LABEL);
        let labels = self.labels.syms(r);
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
        self.series.push(MemSeries {
            id,
            samples: Default::default(),
        });
        self.by_id.insert(id, r);
        r
    }
}

impl TenantHead {
    pub(crate) fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            index: RwLock::new(Index::default()),
            appended: AtomicU64::new(0),
            min_ms: AtomicI64::new(i64::MAX),
            max_ms: AtomicI64::new(i64::MIN),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Appends validated series. New series are created under the write
    /// lock; samples are added under each series' own lock.
    pub(crate) fn append(&self, batch: &WriteBatch) -> Result<AppendStats, HeadError> {
        let ids: Vec<SeriesId> = batch.series().map(|s| s.series_id()).collect();
        let mut refs: Vec<Option<u32>>;
        let mut missing = false;
        {
            let index = self.index.read();
            // Every id looked up in one short loop first: in a large head
            // the map's buckets are out of cache, and lookups that do not
            // wait on each other overlap their misses.
            refs = ids.iter().map(|id| index.by_id.get(id).copied()).collect();
            for ((s, id), r) in batch.series().zip(&ids).zip(&mut refs) {
                match r {
                    Some(found) => *found = index.verify(*found, *id, &s)?,
                    None => missing = true,
                }
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
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (s, r) in batch.series().zip(refs) {
            let Some(r) = r else { continue };
            let mut buf = index.series[r as usize].samples.lock();
            for smp in s.samples() {
                lo = lo.min(smp.timestamp_ms);
                hi = hi.max(smp.timestamp_ms);
                buf.insert(*smp);
            }
            stats.samples += s.samples().len() as u64;
        }
        self.appended.fetch_add(stats.samples, Ordering::Relaxed);
        if stats.samples > 0 {
            self.min_ms.fetch_min(lo, Ordering::Relaxed);
            self.max_ms.fetch_max(hi, Ordering::Relaxed);
        }
        Ok(stats)
    }

    /// The newest sample time of each series of `batch` the head holds
    /// (`None` for a series it does not), in the batch's series order.
    pub fn newest_sample_times(&self, batch: &WriteBatch) -> Vec<Option<i64>> {
        let index = self.index.read();
        batch
            .series()
            .map(|s| {
                let r = *index.by_id.get(&s.series_id())?;
                index.series.get(r as usize)?.samples.lock().newest()
            })
            .collect()
    }

    /// Oldest and newest sample time appended; `None` while empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (
            self.min_ms.load(Ordering::Relaxed),
            self.max_ms.load(Ordering::Relaxed),
        );
        (lo <= hi).then_some((lo, hi))
    }

    /// Whether the head may hold a sample in `[min_ms, max_ms]`.
    pub fn overlaps(&self, min_ms: i64, max_ms: i64) -> bool {
        self.time_range()
            .is_some_and(|(lo, hi)| lo <= max_ms && hi >= min_ms)
    }

    /// Samples appended to this head so far.
    pub fn samples_appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Every series in the order a flushed file holds them
    /// ([`strata_types::cmp_series_order`]: metric, `job`, `instance`,
    /// then the whole label set).
    pub fn series_in_flush_order(&self) -> Vec<HeadSeriesRef> {
        let index = self.index.read();
        let mut refs: Vec<(strata_types::SeriesOrderKey<'_>, u32)> = (0..index.series.len())
            .map(|i| {
                let r = i as u32;
                let key = strata_types::SeriesOrderKey::of(
                    index.labels.labels(r).map(|(n, v)| (&**n, &**v)),
                );
                (key, r)
            })
            .collect();
        refs.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let pairs = |r: u32| index.labels.labels(r).map(|(n, v)| (&**n, &**v));
                pairs(a.1).cmp(pairs(b.1))
            })
        });
        refs.into_iter().map(|(_, r)| HeadSeriesRef(r)).collect()
    }

    /// Every series ordered by (metric name, series id as a signed 64-bit
    /// integer): the order of files written before
    /// [`series_in_flush_order`](Self::series_in_flush_order)'s, still used
    /// for a day whose stored files have it (files of one day merge in one
    /// order). `series_id` is signed because Delta Lake has no unsigned
    /// types.
    pub fn series_in_id_order(&self) -> Vec<HeadSeriesRef> {
        let index = self.index.read();
        let name = index.sym(strata_types::METRIC_NAME_LABEL);
        let mut refs: Vec<(&str, i64, u32)> = index
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let metric = index.metric_of(i as u32, name).map_or("", |m| &**m);
                (metric, s.id.0 as i64, i as u32)
            })
            .collect();
        refs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        refs.into_iter().map(|(_, _, r)| HeadSeriesRef(r)).collect()
    }

    /// Every series' id with its metric name (`""` without one), unordered:
    /// what a series limit counts.
    pub fn series_metrics(&self) -> Vec<(SeriesId, Arc<str>)> {
        let index = self.index.read();
        let name = index.sym(strata_types::METRIC_NAME_LABEL);
        let empty: Arc<str> = Arc::from("");
        index
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let metric = index.metric_of(i as u32, name).unwrap_or(&empty);
                (s.id, Arc::clone(metric))
            })
            .collect()
    }

    pub fn series_count(&self) -> usize {
        self.index.read().series.len()
    }

    /// Whether the head holds series `id`.
    pub fn contains(&self, id: SeriesId) -> bool {
        self.index.read().by_id.contains_key(&id)
    }

    /// The id of each series matching `matchers`, with its values of
    /// `names` (`None` where it lacks one): a table's label columns by
    /// series, without copying any other label.
    pub fn series_label_values(
        &self,
        matchers: &[Matcher],
        names: &[&str],
    ) -> Vec<(SeriesId, Vec<Option<Arc<str>>>)> {
        let index = self.index.read();
        index
            .labels
            .select(matchers)
            .iter()
            .filter_map(|r| {
                let s = index.series.get(r as usize)?;
                let values = names
                    .iter()
                    .map(|n| index.labels.label(r, n).cloned())
                    .collect();
                Some((s.id, values))
            })
            .collect()
    }

    /// Series `id`'s value of label `name`, if the head holds the series
    /// and it has the label.
    pub fn series_label(&self, id: SeriesId, name: &str) -> Option<Arc<str>> {
        let index = self.index.read();
        let r = *index.by_id.get(&id)?;
        index.labels.label(r, name).cloned()
    }

    /// Series the head holds with `__name__ = metric`.
    pub fn metric_series_count(&self, metric: &str) -> u64 {
        self.index
            .read()
            .labels
            .count(strata_types::METRIC_NAME_LABEL, metric)
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

    /// The series matching every matcher, in series-id order: a cheap
    /// handle list for scans that read samples a few series at a time.
    pub fn select_series(&self, matchers: &[Matcher]) -> Vec<HeadSeriesRef> {
        self.select_series_where(matchers, |_| true)
    }

    /// [`Self::select_series`] narrowed to the series whose id `keep`s.
    pub fn select_series_where(
        &self,
        matchers: &[Matcher],
        keep: impl Fn(SeriesId) -> bool,
    ) -> Vec<HeadSeriesRef> {
        let index = self.index.read();
        let mut refs: Vec<(SeriesId, HeadSeriesRef)> = index
            .labels
            .select(matchers)
            .iter()
            .map(|r| (index.series[r as usize].id, HeadSeriesRef(r)))
            .filter(|(id, _)| keep(*id))
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
                    labels: index.labels.shared_labels(*r),
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

    /// [`Self::query`] for PromQL: the points of every matching series
    /// with one in `[min_ms, max_ms]`, in no particular order. Each chunk
    /// is decoded only from the mark before `min_ms` up to `max_ms`, straight
    /// into the points; many series are decoded on several threads (each
    /// takes a contiguous share of the selection, under the one read lock
    /// this call holds).
    pub fn query_points(
        &self,
        matchers: &[Matcher],
        min_ms: i64,
        max_ms: i64,
    ) -> Vec<SeriesPoints> {
        let index = self.index.read();
        let refs: Vec<u32> = index.labels.select(matchers).iter().collect();
        points_of(&index, &refs, min_ms, max_ms)
    }

    /// The series matching `matchers` split among `parts` by `part_of`
    /// (given each one's labels, sorted by name, `__name__` included): a
    /// selection read part by part ([`Self::query_points_of`]) computes
    /// each series' part once. A part out of range is the last.
    pub fn select_parts(
        &self,
        matchers: &[Matcher],
        parts: usize,
        part_of: impl Fn(&[(&str, &str)]) -> usize,
    ) -> Vec<Vec<HeadSeriesRef>> {
        let index = self.index.read();
        let mut out: Vec<Vec<HeadSeriesRef>> = vec![Vec::new(); parts.max(1)];
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for r in index.labels.select(matchers).iter() {
            labels.clear();
            labels.extend(index.labels.labels(r).map(|(n, v)| (&**n, &**v)));
            let p = part_of(&labels).min(out.len() - 1);
            if let Some(part) = out.get_mut(p) {
                part.push(HeadSeriesRef(r));
            }
        }
        out
    }

    /// [`Self::query_points`] of the series `refs` (from
    /// [`Self::select_parts`]).
    pub fn query_points_of(
        &self,
        refs: &[HeadSeriesRef],
        min_ms: i64,
        max_ms: i64,
    ) -> Vec<SeriesPoints> {
        let refs: Vec<u32> = refs.iter().map(|r| r.0).collect();
        points_of(&self.index.read(), &refs, min_ms, max_ms)
    }

    /// Label names in use, sorted.
    pub fn label_names(&self) -> Vec<Arc<str>> {
        let mut v = self.index.read().labels.label_names(None);
        v.sort();
        v
    }

    /// Values of `name` in use, sorted.
    pub fn label_values(&self, name: &str) -> Vec<Arc<str>> {
        let mut v = self.index.read().labels.label_values(name, None);
        v.sort();
        v
    }

    /// Label names of the series matching `matchers` (of all series with
    /// none), unordered; from the postings, no series materialised.
    pub fn label_names_matching(&self, matchers: &[Matcher]) -> Vec<Arc<str>> {
        let index = self.index.read();
        if matchers.is_empty() {
            return index.labels.label_names(None);
        }
        let sel = index.labels.select(matchers);
        index.labels.label_names(Some(&sel))
    }

    /// Values of `name` among the series matching `matchers`, unordered.
    pub fn label_values_matching(&self, name: &str, matchers: &[Matcher]) -> Vec<Arc<str>> {
        let index = self.index.read();
        if matchers.is_empty() {
            return index.labels.label_values(name, None);
        }
        let sel = index.labels.select(matchers);
        index.labels.label_values(name, Some(&sel))
    }

    /// How many series match `matchers` (read from the postings alone).
    pub fn count_matching(&self, matchers: &[Matcher]) -> u64 {
        self.index.read().labels.select(matchers).len()
    }

    /// The label sets (sorted by name) of about `n` of the series matching
    /// `matchers`, evenly spaced among them: a sample, without copying
    /// the other series' labels.
    pub fn sample_labels_matching(&self, matchers: &[Matcher], n: usize) -> Vec<LabelPairs> {
        let index = self.index.read();
        let selected = index.labels.select(matchers);
        let len = selected.len() as usize;
        let n = n.min(len);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if let Some(r) = selected.select((i * len / n) as u32) {
                out.push(index.labels.shared_labels(r));
            }
        }
        out
    }

    /// Ids and label sets (sorted by name) of the series matching
    /// `matchers`, without their samples.
    pub fn series_labels_matching(&self, matchers: &[Matcher]) -> Vec<(SeriesId, LabelPairs)> {
        let index = self.index.read();
        index
            .labels
            .select(matchers)
            .iter()
            .filter_map(|r| {
                let id = index.series.get(r as usize)?.id;
                Some((id, index.labels.shared_labels(r)))
            })
            .collect()
    }

    /// Every label name with its number of distinct values and of series
    /// carrying it (the cardinality API's view of the head).
    pub fn label_name_cardinality(&self) -> Vec<(Arc<str>, u64, u64)> {
        self.index.read().labels.label_name_cardinality()
    }

    /// Values of `name` with the number of series carrying each.
    pub fn label_value_cardinality(&self, name: &str) -> Vec<(Arc<str>, u64)> {
        self.index.read().labels.label_value_cardinality(name)
    }
}

#[cfg(test)]
mod tests;

/// The points in `[min_ms, max_ms]` of the series `refs` of `index` (under
/// the read lock the caller holds); many series on several threads, each
/// taking a contiguous share.
fn points_of(index: &Index, refs: &[u32], min_ms: i64, max_ms: i64) -> Vec<SeriesPoints> {
    let read = |refs: &[u32]| -> Vec<SeriesPoints> {
        refs.iter()
            .filter_map(|&r| {
                let s = index.series.get(r as usize)?;
                let points = s.samples.lock().points(min_ms, max_ms);
                (!points.is_empty()).then(|| SeriesPoints {
                    id: s.id,
                    labels: index.labels.shared_labels(r),
                    points,
                })
            })
            .collect()
    };
    let workers = if refs.len() >= PARALLEL_SERIES {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4)
    } else {
        1
    };
    if workers <= 1 {
        return read(refs);
    }
    let per = refs.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let mut shares = refs.chunks(per);
        let first = shares.next().unwrap_or(&[]);
        let others: Vec<_> = shares
            .map(|share| {
                let worker = std::thread::Builder::new()
                    .name("strata-head-read".into())
                    .spawn_scoped(scope, move || read(share));
                (share, worker)
            })
            .collect();
        let mut out = read(first);
        for (share, worker) in others {
            // A thread that could not start (or failed) has its share
            // read here instead.
            match worker.map(std::thread::ScopedJoinHandle::join) {
                Ok(Ok(points)) => out.extend(points),
                _ => out.extend(read(share)),
            }
        }
        out
    })
}
