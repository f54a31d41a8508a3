//! Exemplars in memory, per tenant: what `/api/v1/query_exemplars`
//! answers.
//!
//! Kept as Prometheus keeps them: each series' exemplars in time order,
//! an exemplar equal to the series' newest a duplicate (accepted, not
//! stored again), one older than the newest out of order (refused); the
//! oldest dropped first once a series holds its bound or the tenant its
//! total. The store is not frozen with the head: it outlives flushes as a
//! cache of recent exemplars. What it took since the last flush is also
//! kept aside as pending, for the flush to write to the exemplars table
//! ([`ExemplarStore::take_pending`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use strata_types::{Exemplar, ExemplarBatch, Labels, SeriesExemplars, SeriesId, TenantId};

use crate::Matcher;

/// An exemplar stored but not yet in its tenant's table, and its series.
pub type PendingExemplar = (Arc<Labels>, Exemplar);

/// How many exemplars a tenant keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExemplarBounds {
    /// Per series (the oldest goes first).
    pub per_series: usize,
    /// Per tenant, across its series (the oldest written goes first); 0
    /// keeps none.
    pub total: usize,
}

/// What applying a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExemplarStats {
    /// Stored, or equal to the series' newest (a duplicate, as a resent
    /// request carries): what a sender is told was written.
    pub accepted: u64,
    /// Older than the series' newest exemplar.
    pub out_of_order: u64,
    /// Not kept: the tenant keeps no exemplars, or their series' labels
    /// pass no limit.
    pub dropped: u64,
}

/// All tenants' exemplars.
#[derive(Debug, Default)]
pub struct ExemplarStore {
    tenants: RwLock<HashMap<TenantId, Arc<Mutex<TenantExemplars>>>>,
    /// Pending exemplars of every tenant.
    pending: AtomicUsize,
}

#[derive(Debug, Default)]
struct TenantExemplars {
    series: HashMap<SeriesId, SeriesBuf>,
    /// Each stored exemplar's series and time, oldest written first; an
    /// entry whose exemplar its series already dropped is skipped.
    order: VecDeque<(SeriesId, i64)>,
    held: usize,
    /// Stored since the last [`ExemplarStore::take_pending`], with their
    /// series (shared with the series' buffer), when appended as pending.
    pending: Vec<PendingExemplar>,
}

#[derive(Debug)]
struct SeriesBuf {
    labels: Arc<Labels>,
    exemplars: VecDeque<Exemplar>,
}

/// Where `e` goes after `newest`: a duplicate, out of order, or next, as
/// Prometheus orders them (time, then value, then labels).
fn place(newest: &Exemplar, e: &Exemplar) -> Place {
    if newest.same_as(e) {
        return Place::Duplicate;
    }
    let later = match e.timestamp_ms.cmp(&newest.timestamp_ms) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match e.value.total_cmp(&newest.value) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => e.labels > newest.labels,
        },
    };
    if later {
        Place::Next
    } else {
        Place::OutOfOrder
    }
}

enum Place {
    Duplicate,
    OutOfOrder,
    Next,
}

impl ExemplarStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `batch` under `bounds`; what it stores is also pending
    /// (for the next flush) when `pending`, as a write or a replayed record
    /// not yet in the table is.
    pub fn append(
        &self,
        batch: &ExemplarBatch,
        bounds: ExemplarBounds,
        pending: bool,
    ) -> ExemplarStats {
        let mut stats = ExemplarStats::default();
        if bounds.total == 0 || bounds.per_series == 0 {
            stats.dropped = batch.exemplar_count() as u64;
            return stats;
        }
        let tenant = {
            let found = self.tenants.read().get(&batch.tenant).cloned();
            match found {
                Some(t) => t,
                None => Arc::clone(
                    self.tenants
                        .write()
                        .entry(batch.tenant.clone())
                        .or_default(),
                ),
            }
        };
        let mut t = tenant.lock();
        for s in &batch.series {
            let id = s.labels.series_id();
            for e in &s.exemplars {
                let buf = t.series.entry(id).or_insert_with(|| SeriesBuf {
                    labels: Arc::new(s.labels.clone()),
                    exemplars: VecDeque::new(),
                });
                match buf.exemplars.back().map(|newest| place(newest, e)) {
                    Some(Place::Duplicate) => {
                        stats.accepted += 1;
                        continue;
                    }
                    Some(Place::OutOfOrder) => {
                        stats.out_of_order += 1;
                        continue;
                    }
                    Some(Place::Next) | None => {}
                }
                buf.exemplars.push_back(e.clone());
                let dropped = if buf.exemplars.len() > bounds.per_series {
                    buf.exemplars.pop_front().is_some()
                } else {
                    false
                };
                if pending {
                    let labels = Arc::clone(&buf.labels);
                    t.pending.push((labels, e.clone()));
                    self.pending.fetch_add(1, Ordering::Relaxed);
                }
                t.order.push_back((id, e.timestamp_ms));
                t.held += 1;
                if dropped {
                    t.held -= 1;
                }
                stats.accepted += 1;
                t.evict(bounds.total);
            }
        }
        stats
    }

    /// The exemplars in `[start_ms, end_ms]` of every series matching all
    /// of one of `selectors` (each a list of matchers), series in label
    /// order, each series' exemplars in time order.
    pub fn select(
        &self,
        tenant: &TenantId,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<SeriesExemplars> {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return Vec::new();
        };
        let t = t.lock();
        let mut out: Vec<SeriesExemplars> = t
            .series
            .values()
            .filter(|s| {
                selectors.iter().any(|matchers| {
                    matchers
                        .iter()
                        .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
                })
            })
            .filter_map(|s| {
                let exemplars: Vec<Exemplar> = s
                    .exemplars
                    .iter()
                    .filter(|e| (start_ms..=end_ms).contains(&e.timestamp_ms))
                    .cloned()
                    .collect();
                (!exemplars.is_empty()).then(|| SeriesExemplars {
                    labels: (*s.labels).clone(),
                    exemplars,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.labels
                .iter()
                .map(|l| (&l.name, &l.value))
                .cmp(b.labels.iter().map(|l| (&l.name, &l.value)))
        });
        out
    }

    /// Every tenant's pending exemplars, taken (each tenant's in the
    /// order stored).
    pub fn take_pending(&self) -> Vec<(TenantId, Vec<PendingExemplar>)> {
        self.tenants
            .read()
            .iter()
            .filter_map(|(id, t)| {
                let taken = std::mem::take(&mut t.lock().pending);
                self.pending.fetch_sub(taken.len(), Ordering::Relaxed);
                (!taken.is_empty()).then(|| (id.clone(), taken))
            })
            .collect()
    }

    /// Pending exemplars of every tenant.
    pub fn pending_count(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether any tenant has pending exemplars.
    pub fn has_pending(&self) -> bool {
        self.pending_count() > 0
    }

    /// `tenant`'s pending exemplars, taken.
    pub fn take_pending_of(&self, tenant: &TenantId) -> Vec<PendingExemplar> {
        let taken = self
            .tenants
            .read()
            .get(tenant)
            .map(|t| std::mem::take(&mut t.lock().pending))
            .unwrap_or_default();
        self.pending.fetch_sub(taken.len(), Ordering::Relaxed);
        taken
    }

    /// Tenants holding exemplars.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants
            .read()
            .iter()
            .filter(|(_, t)| t.lock().held > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many exemplars `tenant` holds.
    pub fn held(&self, tenant: &TenantId) -> usize {
        self.tenants.read().get(tenant).map_or(0, |t| t.lock().held)
    }

    /// Drops `tenant`'s exemplars older than `before_ms` (retention).
    pub fn drop_before(&self, tenant: &TenantId, before_ms: i64) {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return;
        };
        let mut t = t.lock();
        let mut dropped = 0;
        t.series.retain(|_, s| {
            while s
                .exemplars
                .front()
                .is_some_and(|e| e.timestamp_ms < before_ms)
            {
                s.exemplars.pop_front();
                dropped += 1;
            }
            !s.exemplars.is_empty()
        });
        t.held -= dropped;
        t.compact_order();
    }
}

impl TenantExemplars {
    /// Drops the oldest written exemplars until at most `total` are held.
    fn evict(&mut self, total: usize) {
        while self.held > total {
            let Some((id, ts)) = self.order.pop_front() else {
                break;
            };
            let Some(s) = self.series.get_mut(&id) else {
                continue;
            };
            // Still held when the series' oldest is the one recorded.
            if s.exemplars.front().is_some_and(|e| e.timestamp_ms == ts) {
                s.exemplars.pop_front();
                self.held -= 1;
                if s.exemplars.is_empty() {
                    self.series.remove(&id);
                }
            }
        }
        // Entries of exemplars a series bound dropped pile up: keep the
        // queue within twice what is held.
        if self.order.len() > 2 * self.held.max(1024) {
            self.compact_order();
        }
    }

    /// Rebuilds the write order from what is held (oldest time first).
    fn compact_order(&mut self) {
        let mut order: Vec<(SeriesId, i64)> = self
            .series
            .iter()
            .flat_map(|(id, s)| s.exemplars.iter().map(move |e| (*id, e.timestamp_ms)))
            .collect();
        order.sort_by_key(|(_, ts)| *ts);
        self.order = order.into();
    }
}

#[cfg(test)]
mod tests {
    use strata_types::{Label, TenantId};

    use super::*;

    fn series(job: &str, exemplars: &[(i64, f64, &str)]) -> SeriesExemplars {
        SeriesExemplars {
            labels: Labels::try_from_sorted(vec![
                Label::new("__name__", "req_total"),
                Label::new("job", job),
            ])
            .unwrap(),
            exemplars: exemplars
                .iter()
                .map(|&(timestamp_ms, value, trace)| Exemplar {
                    labels: vec![("trace_id".into(), trace.into())],
                    value,
                    timestamp_ms,
                })
                .collect(),
        }
    }

    fn batch(series: Vec<SeriesExemplars>) -> ExemplarBatch {
        ExemplarBatch {
            tenant: TenantId::try_new("t").unwrap(),
            series,
        }
    }

    const WIDE: ExemplarBounds = ExemplarBounds {
        per_series: 100,
        total: 1000,
    };

    fn all(store: &ExemplarStore) -> Vec<(String, Vec<i64>)> {
        store
            .select(
                &TenantId::try_new("t").unwrap(),
                &[vec![Matcher::equal("__name__", "req_total")]],
                i64::MIN,
                i64::MAX,
            )
            .into_iter()
            .map(|s| {
                (
                    s.labels.get("job").unwrap().to_owned(),
                    s.exemplars.iter().map(|e| e.timestamp_ms).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn duplicates_are_accepted_once_and_older_exemplars_refused() {
        let store = ExemplarStore::new();
        let first = store.append(
            &batch(vec![series("a", &[(10, 1.0, "x"), (20, 2.0, "y")])]),
            WIDE,
            true,
        );
        assert_eq!(
            first,
            ExemplarStats {
                accepted: 2,
                ..ExemplarStats::default()
            }
        );
        // A resent request: the newest is a duplicate, the older out of order.
        let again = store.append(
            &batch(vec![series("a", &[(10, 1.0, "x"), (20, 2.0, "y")])]),
            WIDE,
            true,
        );
        assert_eq!(
            again,
            ExemplarStats {
                accepted: 1,
                out_of_order: 1,
                dropped: 0,
            }
        );
        // Same time, a larger value: next (a native histogram's buckets).
        let same_time = store.append(&batch(vec![series("a", &[(20, 3.0, "z")])]), WIDE, true);
        assert_eq!(same_time.accepted, 1);
        assert_eq!(all(&store), vec![("a".into(), vec![10, 20, 20])]);
    }

    #[test]
    fn bounds_drop_the_oldest_per_series_and_per_tenant() {
        let store = ExemplarStore::new();
        let bounds = ExemplarBounds {
            per_series: 2,
            total: 3,
        };
        store.append(
            &batch(vec![series(
                "a",
                &[(1, 1.0, "1"), (2, 1.0, "2"), (3, 1.0, "3")],
            )]),
            bounds,
            true,
        );
        assert_eq!(all(&store), vec![("a".into(), vec![2, 3])]);
        store.append(
            &batch(vec![series("b", &[(4, 1.0, "4"), (5, 1.0, "5")])]),
            bounds,
            true,
        );
        // Four held past a total of three: a's oldest went.
        assert_eq!(
            all(&store),
            vec![("a".into(), vec![3]), ("b".into(), vec![4, 5])]
        );
        assert_eq!(store.held(&TenantId::try_new("t").unwrap()), 3);
        store.append(&batch(vec![series("b", &[(6, 1.0, "6")])]), bounds, true);
        assert_eq!(
            all(&store),
            vec![("a".into(), vec![3]), ("b".into(), vec![5, 6])]
        );
        store.append(&batch(vec![series("c", &[(7, 1.0, "7")])]), bounds, true);
        assert_eq!(
            all(&store),
            vec![("b".into(), vec![5, 6]), ("c".into(), vec![7])]
        );
        // Disabled: nothing kept, all refused.
        let off = store.append(
            &batch(vec![series("d", &[(8, 1.0, "8")])]),
            ExemplarBounds {
                per_series: 2,
                total: 0,
            },
            true,
        );
        assert_eq!(off.dropped, 1);
    }

    #[test]
    fn selection_by_matchers_and_time_and_pending() {
        let store = ExemplarStore::new();
        store.append(
            &batch(vec![
                series("a", &[(10, 1.0, "x"), (20, 2.0, "y")]),
                series("b", &[(15, 1.0, "z")]),
            ]),
            WIDE,
            true,
        );
        let t = TenantId::try_new("t").unwrap();
        let b_only = store.select(&t, &[vec![Matcher::equal("job", "b")]], 0, 100);
        assert_eq!(b_only.len(), 1);
        assert_eq!(
            b_only[0].exemplars[0].labels,
            vec![("trace_id".to_owned(), "z".to_owned())]
        );
        let window = store.select(&t, &[vec![Matcher::equal("__name__", "req_total")]], 12, 18);
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].labels.get("job"), Some("b"));
        // What was appended as pending is taken once, with its series.
        let pending = store.take_pending_of(&t);
        assert_eq!(pending.len(), 3);
        assert!(store.take_pending_of(&t).is_empty());
        // A replayed record already in the table is stored, not pending;
        // one that is not in it is pending again.
        let copy = ExemplarStore::new();
        let again = ExemplarBatch {
            tenant: t.clone(),
            series: pending
                .iter()
                .map(|(labels, e)| SeriesExemplars {
                    labels: (**labels).clone(),
                    exemplars: vec![e.clone()],
                })
                .collect(),
        };
        copy.append(&again, WIDE, false);
        assert_eq!(all(&copy), all(&store));
        assert!(copy.take_pending().is_empty());
        copy.drop_before(&t, 16);
        assert_eq!(all(&copy), vec![("a".into(), vec![20])]);
        assert_eq!(copy.held(&t), 1);
    }
}
