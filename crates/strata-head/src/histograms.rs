//! Native histogram samples waiting for the next flush, per tenant.
//!
//! As the float head does, the store takes histogram samples in any order;
//! two at one series' timestamp are both written, and readers and
//! compaction keep the one written last. Each series' labels are shared by
//! its pending rows (one `Arc` per series per cut). What is pending is
//! bounded by the flusher: it writes the rows past a threshold without
//! waiting for the flush interval (`strata-storage`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use strata_types::{HistogramBatch, HistogramSample, Labels, SeriesId, TenantId};

/// One pending histogram sample and its series.
pub type HistogramRow = (Arc<Labels>, HistogramSample);

#[derive(Default)]
struct Pending {
    labels: HashMap<SeriesId, Arc<Labels>>,
    rows: Vec<HistogramRow>,
    /// Bucket counts of `rows`, for the memory bound.
    buckets: usize,
}

/// Every tenant's pending histogram samples.
#[derive(Default)]
pub struct HistogramStore {
    tenants: Mutex<BTreeMap<TenantId, Pending>>,
    rows: AtomicUsize,
    buckets: AtomicUsize,
}

impl std::fmt::Debug for HistogramStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramStore")
            .field("rows", &self.pending_count())
            .finish()
    }
}

impl HistogramStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `batch`'s samples for the next flush; returns how many.
    pub fn append(&self, batch: &HistogramBatch) -> usize {
        let mut tenants = self.tenants.lock();
        let pending = tenants.entry(batch.tenant.clone()).or_default();
        let (mut rows, mut buckets) = (0, 0);
        for s in &batch.series {
            if s.samples.is_empty() {
                continue;
            }
            let labels = Arc::clone(
                pending
                    .labels
                    .entry(s.labels.series_id())
                    .or_insert_with(|| Arc::new(s.labels.clone())),
            );
            for smp in &s.samples {
                buckets += smp.histogram.bucket_count() + 1;
                pending.rows.push((Arc::clone(&labels), smp.clone()));
            }
            rows += s.samples.len();
        }
        pending.buckets += buckets;
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.buckets.fetch_add(buckets, Ordering::Relaxed);
        rows
    }

    /// Every tenant's pending rows, taken.
    pub fn take_pending(&self) -> Vec<(TenantId, Vec<HistogramRow>)> {
        let taken = std::mem::take(&mut *self.tenants.lock());
        taken
            .into_iter()
            .filter_map(|(t, p)| self.taken(p).map(|rows| (t, rows)))
            .collect()
    }

    /// `tenant`'s pending rows, taken.
    pub fn take_pending_of(&self, tenant: &TenantId) -> Vec<HistogramRow> {
        let taken = self.tenants.lock().remove(tenant);
        taken.and_then(|p| self.taken(p)).unwrap_or_default()
    }

    fn taken(&self, p: Pending) -> Option<Vec<HistogramRow>> {
        self.rows.fetch_sub(p.rows.len(), Ordering::Relaxed);
        self.buckets.fetch_sub(p.buckets, Ordering::Relaxed);
        (!p.rows.is_empty()).then_some(p.rows)
    }

    /// `tenant`'s pending rows in `[start_ms, end_ms]` of the series
    /// `keep` selects (copies, in the order written).
    pub fn select_of(
        &self,
        tenant: &TenantId,
        keep: &dyn Fn(&Labels) -> bool,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<HistogramRow> {
        let tenants = self.tenants.lock();
        let Some(p) = tenants.get(tenant) else {
            return Vec::new();
        };
        p.rows
            .iter()
            .filter(|(_, s)| (start_ms..=end_ms).contains(&s.timestamp_ms))
            .filter(|(l, _)| keep(l))
            .cloned()
            .collect()
    }

    /// Pending rows of every tenant.
    pub fn pending_count(&self) -> usize {
        self.rows.load(Ordering::Relaxed)
    }

    /// Pending rows plus their buckets, all tenants: what the flusher
    /// bounds (a histogram of 160 buckets weighs as 161 rows).
    pub fn pending_weight(&self) -> usize {
        self.buckets.load(Ordering::Relaxed)
    }

    pub fn has_pending(&self) -> bool {
        self.pending_count() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::{BucketSpan, Histogram, Label, ResetHint, SeriesHistograms};

    fn batch(tenant: &str, metric: &str, times: &[i64]) -> HistogramBatch {
        let h = Histogram {
            reset_hint: ResetHint::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: 2.0,
            sum: 1.0,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: 2,
            }],
            positive_counts: vec![1.0, 1.0],
            negative_spans: vec![],
            negative_counts: vec![],
            custom_values: vec![],
            integer: true,
        };
        let mut b = HistogramBatch::new(TenantId::try_new(tenant).unwrap());
        b.series.push(SeriesHistograms {
            labels: Labels::from_validated(vec![Label::new("__name__", metric)]),
            samples: times
                .iter()
                .map(|&timestamp_ms| HistogramSample {
                    timestamp_ms,
                    histogram: h.clone(),
                })
                .collect(),
        });
        b
    }

    #[test]
    fn pending_rows_are_taken_per_tenant_and_share_their_labels() {
        let store = HistogramStore::new();
        assert_eq!(store.append(&batch("a", "lat", &[2, 1])), 2);
        assert_eq!(store.append(&batch("a", "lat", &[3])), 1);
        assert_eq!(store.append(&batch("b", "lat", &[1])), 1);
        assert_eq!((store.pending_count(), store.pending_weight()), (4, 12));
        let a = store.take_pending_of(&TenantId::try_new("a").unwrap());
        assert_eq!(a.len(), 3);
        assert!(Arc::ptr_eq(&a[0].0, &a[2].0), "one labels per series");
        assert_eq!(store.pending_count(), 1);
        let rest = store.take_pending();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0.as_str(), "b");
        assert!(!store.has_pending());
        assert_eq!(store.pending_weight(), 0);
    }
}
