//! The live series of each tenant with a series limit: what `max_series`
//! and `max_series_per_metric` count (and, in a set of their own, the live
//! log streams `max_streams` counts: a stream is a series without a
//! metric).
//!
//! A series is live from its first sample until it has gone
//! `limits.active_series_window` without one, whether its samples are in
//! the head or were flushed: a flush empties the head, not the tenant's
//! budget. After a restart a tenant's set is rebuilt, at its first write
//! that could add series, from its heads (the replayed WAL) and the files
//! written within the window, each file's series counted as last written
//! at the file's newest write.
//!
//! Writes that add series to a tenant are admitted one at a time: the
//! check, the write and the record act as one, so concurrent requests never
//! pass a limit together. Writes of live series only take no lock beyond
//! the set's own.
//!
//! Ingesters of a scale-out cluster share their sets (see
//! [`crate::peers`]): each announces the series written through it — when
//! they become live, and again every [`LiveSeries::refresh_s`] while they
//! are written — and merges what its peers announce, so each counts the
//! tenant's series over every ingester, and a series is one series
//! wherever it is written.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::{METRIC_NAME_LABEL, TenantId, WriteBatch};

/// One live series: its metric, the second it was last written, and the
/// second it was last announced to peers (written here since then: due
/// again after [`LiveSeries::refresh_s`]).
struct Live {
    metric: Arc<str>,
    seen_s: i64,
    announced_s: i64,
}

/// What a set counts: series (`max_series`) or log streams (`max_streams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    Series,
    Streams,
}

/// Series that became live, or stayed live, on one ingester: `(id,
/// metric, last written second)` of one tenant's set of `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub kind: LiveKind,
    pub tenant: TenantId,
    pub entries: Vec<(u64, Arc<str>, i64)>,
}

/// Where a set sends what it announces (ingesters with peers only).
#[derive(Clone)]
struct Announcer {
    kind: LiveKind,
    tenant: TenantId,
    refresh_s: i64,
    tx: tokio::sync::broadcast::Sender<Arc<Announcement>>,
}

impl Announcer {
    fn send(&self, entries: Vec<(u64, Arc<str>, i64)>) {
        if !entries.is_empty() {
            // No receiver (no peer subscribed yet): nothing to tell.
            let _ = self.tx.send(Arc::new(Announcement {
                kind: self.kind,
                tenant: self.tenant.clone(),
                entries,
            }));
        }
    }
}

#[derive(Default)]
struct State {
    /// Whether the set holds every live series (built from heads and
    /// files); until then nothing is admitted without building it.
    complete: bool,
    series: HashMap<u64, Live>,
    per_metric: HashMap<Arc<str>, u64>,
}

impl State {
    fn metric(&mut self, name: &str) -> Arc<str> {
        match self.per_metric.get_key_value(name) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(name),
        }
    }

    /// Records `id` as written at `seen_s`; whether it is due for an
    /// announcement (new here, or last announced `refresh_s` or more
    /// before), which this marks as made.
    fn insert(&mut self, id: u64, metric: Arc<str>, seen_s: i64, refresh_s: i64) -> bool {
        match self.series.get_mut(&id) {
            Some(live) => {
                live.seen_s = live.seen_s.max(seen_s);
                let due = seen_s - live.announced_s >= refresh_s;
                if due {
                    live.announced_s = seen_s;
                }
                due
            }
            None => {
                *self.per_metric.entry(Arc::clone(&metric)).or_default() += 1;
                self.series.insert(
                    id,
                    Live {
                        metric,
                        seen_s,
                        announced_s: seen_s,
                    },
                );
                true
            }
        }
    }
}

/// One tenant's live series and the lock its series-adding writes take.
#[derive(Default)]
pub struct TenantSeries {
    admission: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<State>,
    announcer: Option<Announcer>,
}

/// What a write would add: new series, and new series per metric with the
/// live count of that metric.
#[derive(Debug, Default, PartialEq)]
pub struct Growth {
    pub live: u64,
    pub new: u64,
    /// (metric, live, new) for each metric gaining series.
    pub per_metric: Vec<(String, u64, u64)>,
}

impl TenantSeries {
    /// Marks every series of `batch` as written now when all are live
    /// already; `false` (nothing marked) when one is new or the set is not
    /// built yet.
    pub fn touch_if_live(&self, batch: &WriteBatch, now_s: i64) -> bool {
        let ids: Vec<u64> = batch.series().map(|s| s.series_id().0).collect();
        self.touch_ids_if_live(&ids, now_s)
    }

    /// [`Self::touch_if_live`] for series (or log streams) by id.
    pub fn touch_ids_if_live(&self, ids: &[u64], now_s: i64) -> bool {
        let mut state = self.state.lock();
        if !state.complete || !ids.iter().all(|id| state.series.contains_key(id)) {
            return false;
        }
        let mut due = Vec::new();
        let refresh_s = self.announcer.as_ref().map_or(i64::MAX, |a| a.refresh_s);
        for id in ids {
            if let Some(live) = state.series.get_mut(id) {
                live.seen_s = live.seen_s.max(now_s);
                if now_s - live.announced_s >= refresh_s {
                    live.announced_s = now_s;
                    due.push((*id, Arc::clone(&live.metric), now_s));
                }
            }
        }
        drop(state);
        if let Some(a) = &self.announcer {
            a.send(due);
        }
        true
    }

    /// The tenant's admission lock, held from the check of a series-adding
    /// write until [`TenantSeries::record`].
    pub async fn admit(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.admission).lock_owned().await
    }

    pub fn is_complete(&self) -> bool {
        self.state.lock().complete
    }

    /// Completes the set with series known elsewhere: `(id, metric, last
    /// written ms)`. Those older than `since_s` are not live.
    pub fn complete(&self, known: Vec<(u64, Arc<str>, i64)>, since_s: i64) {
        let mut state = self.state.lock();
        for (id, metric, seen_ms) in known {
            let seen_s = seen_ms.div_euclid(1000);
            if seen_s >= since_s {
                let metric = state.metric(&metric);
                // Known elsewhere (the heads, the shared files): not this
                // node's to announce.
                state.insert(id, metric, seen_s, i64::MAX);
            }
        }
        state.complete = true;
    }

    /// What `batch` would add to the live series.
    pub fn growth(&self, batch: &WriteBatch) -> Growth {
        self.growth_of(
            batch
                .series()
                .map(|s| (s.series_id().0, s.label(METRIC_NAME_LABEL).unwrap_or(""))),
        )
    }

    /// [`Self::growth`] of series (or log streams) as (id, metric).
    pub fn growth_of<'a>(&self, series: impl Iterator<Item = (u64, &'a str)>) -> Growth {
        let state = self.state.lock();
        let mut new: HashMap<u64, &str> = HashMap::new();
        for (id, metric) in series {
            if !state.series.contains_key(&id) {
                new.insert(id, metric);
            }
        }
        let mut per_metric: HashMap<&str, u64> = HashMap::new();
        for metric in new.values() {
            *per_metric.entry(metric).or_default() += 1;
        }
        Growth {
            live: state.series.len() as u64,
            new: new.len() as u64,
            per_metric: per_metric
                .into_iter()
                .map(|(m, n)| {
                    (
                        m.to_owned(),
                        state.per_metric.get(m).copied().unwrap_or(0),
                        n,
                    )
                })
                .collect(),
        }
    }

    /// Marks every series of a stored `batch` as written at `now_s`.
    pub fn record(&self, batch: &WriteBatch, now_s: i64) {
        self.record_of(
            batch
                .series()
                .map(|s| (s.series_id().0, s.label(METRIC_NAME_LABEL).unwrap_or(""))),
            now_s,
        );
    }

    /// [`Self::record`] of series (or log streams) as (id, metric).
    pub fn record_of<'a>(&self, series: impl Iterator<Item = (u64, &'a str)>, now_s: i64) {
        let mut state = self.state.lock();
        let mut due = Vec::new();
        let refresh_s = self.announcer.as_ref().map_or(i64::MAX, |a| a.refresh_s);
        for (id, metric) in series {
            let metric = state.metric(metric);
            if state.insert(id, Arc::clone(&metric), now_s, refresh_s) && self.announcer.is_some() {
                due.push((id, metric, now_s));
            }
        }
        drop(state);
        if let Some(a) = &self.announcer {
            a.send(due);
        }
    }

    /// Merges series a peer announced: live as of their second, not
    /// announced again from here (the peer refreshes what it writes).
    pub fn merge(&self, entries: &[(u64, Arc<str>, i64)]) {
        let mut state = self.state.lock();
        for (id, metric, seen_s) in entries {
            let metric = state.metric(metric);
            state.insert(*id, metric, *seen_s, i64::MAX);
        }
    }

    /// Every live series as `(id, metric, last written second)`.
    fn entries(&self) -> Vec<(u64, Arc<str>, i64)> {
        self.state
            .lock()
            .series
            .iter()
            .map(|(id, live)| (*id, Arc::clone(&live.metric), live.seen_s))
            .collect()
    }

    /// Forgets the series last written before `before_s`; how many.
    fn expire(&self, before_s: i64) -> usize {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let before = state.series.len();
        let per_metric = &mut state.per_metric;
        state.series.retain(|_, live| {
            let keep = live.seen_s >= before_s;
            if !keep && let Some(n) = per_metric.get_mut(&live.metric) {
                *n -= 1;
                if *n == 0 {
                    per_metric.remove(&live.metric);
                }
            }
            keep
        });
        before - state.series.len()
    }

    /// Live series now.
    pub fn count(&self) -> usize {
        self.state.lock().series.len()
    }
}

/// The live series of every tenant with a series limit.
pub struct LiveSeries {
    kind: LiveKind,
    tenants: Mutex<HashMap<TenantId, Arc<TenantSeries>>>,
    /// Set on an ingester with peers: where its sets announce.
    sharing: Option<(tokio::sync::broadcast::Sender<Arc<Announcement>>, i64)>,
}

impl std::fmt::Debug for LiveSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSeries")
            .field("kind", &self.kind)
            .field("tenants", &self.tenants.lock().len())
            .finish()
    }
}

impl LiveSeries {
    pub fn new(kind: LiveKind) -> Self {
        Self {
            kind,
            tenants: Mutex::new(HashMap::new()),
            sharing: None,
        }
    }

    /// Announces the series written here on `tx`, each again every
    /// `refresh_s` while it is written. Before any tenant's set is made.
    pub fn share(&mut self, tx: tokio::sync::broadcast::Sender<Arc<Announcement>>, refresh_s: i64) {
        self.sharing = Some((tx, refresh_s.max(1)));
    }

    /// How often a series written here is announced again (`None`: not
    /// shared).
    pub fn refresh_s(&self) -> Option<i64> {
        self.sharing.as_ref().map(|(_, r)| *r)
    }

    /// `tenant`'s set, created empty (not complete) on first use.
    pub fn tenant(&self, tenant: &TenantId) -> Arc<TenantSeries> {
        let mut tenants = self.tenants.lock();
        let set = tenants.entry(tenant.clone()).or_insert_with(|| {
            Arc::new(TenantSeries {
                announcer: self.sharing.as_ref().map(|(tx, refresh_s)| Announcer {
                    kind: self.kind,
                    tenant: tenant.clone(),
                    refresh_s: *refresh_s,
                    tx: tx.clone(),
                }),
                ..TenantSeries::default()
            })
        });
        Arc::clone(set)
    }

    /// Every tenant's live series, as announcements of at most `chunk`
    /// entries each (what a peer that subscribes is told first).
    pub fn snapshot(&self, chunk: usize) -> Vec<Announcement> {
        let tenants: Vec<_> = self
            .tenants
            .lock()
            .iter()
            .map(|(t, s)| (t.clone(), Arc::clone(s)))
            .collect();
        let mut out = Vec::new();
        for (tenant, set) in tenants {
            let entries = set.entries();
            for part in entries.chunks(chunk.max(1)) {
                out.push(Announcement {
                    kind: self.kind,
                    tenant: tenant.clone(),
                    entries: part.to_vec(),
                });
            }
        }
        out
    }

    /// `tenant`'s live count when its set is kept and complete.
    pub fn count_of(&self, tenant: &TenantId) -> Option<usize> {
        let set = self.tenants.lock().get(tenant).cloned()?;
        set.is_complete().then(|| set.count())
    }

    /// Drops the set of a tenant that has no series limit (any more): a
    /// limit set later rebuilds it from what is stored.
    pub fn forget(&self, tenant: &TenantId) {
        let mut tenants = self.tenants.lock();
        if !tenants.is_empty() {
            tenants.remove(tenant);
        }
    }

    /// Forgets every series last written before `before_s`; how many.
    pub fn expire(&self, before_s: i64) -> usize {
        let tenants: Vec<_> = self.tenants.lock().values().cloned().collect();
        tenants.iter().map(|t| t.expire(before_s)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::{Label, Labels, Sample};

    fn batch(ids: std::ops::Range<u32>, metric: &str) -> WriteBatch {
        let mut b = WriteBatch::new(TenantId::try_new("t").unwrap());
        for i in ids {
            let labels = Labels::try_from_unsorted(vec![
                Label::new(METRIC_NAME_LABEL, metric),
                Label::new("i", i.to_string()),
            ])
            .unwrap();
            b.push(
                &labels,
                &[Sample {
                    timestamp_ms: 1000,
                    value: 1.0,
                }],
            );
        }
        b
    }

    fn announced(rx: &mut tokio::sync::broadcast::Receiver<Arc<Announcement>>) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Ok(a) = rx.try_recv() {
            assert_eq!((a.kind, a.tenant.as_str()), (LiveKind::Series, "t"));
            ids.extend(a.entries.iter().map(|e| e.0));
        }
        ids.sort_unstable();
        ids
    }

    #[test]
    fn a_shared_set_announces_what_is_written_here_and_merges_what_peers_announce() {
        let (tx, mut rx) = tokio::sync::broadcast::channel(64);
        let mut live = LiveSeries::new(LiveKind::Series);
        live.share(tx, 60);
        let t = live.tenant(&TenantId::try_new("t").unwrap());
        t.complete(Vec::new(), 0);
        assert!(
            announced(&mut rx).is_empty(),
            "what storage knew is not announced"
        );
        let b = batch(0..3, "up");
        let ids = |b: &WriteBatch| -> Vec<u64> {
            let mut v: Vec<u64> = b.series().map(|s| s.series_id().0).collect();
            v.sort_unstable();
            v
        };
        t.record(&b, 100);
        assert_eq!(announced(&mut rx), ids(&b), "new series are announced");
        assert!(t.touch_if_live(&b, 130));
        assert!(
            announced(&mut rx).is_empty(),
            "not again within the refresh"
        );
        assert!(t.touch_if_live(&b, 160));
        assert_eq!(announced(&mut rx), ids(&b), "again once the refresh passed");

        // A peer's series count here and are not announced back.
        let peer = batch(10..12, "up");
        let entries: Vec<_> = peer
            .series()
            .map(|s| (s.series_id().0, Arc::from("up"), 150))
            .collect();
        t.merge(&entries);
        assert_eq!(t.count(), 5);
        assert!(announced(&mut rx).is_empty());
        assert_eq!(t.growth(&peer).new, 0, "one series wherever it is written");
        assert!(t.touch_if_live(&peer, 170), "live already");
        assert!(
            announced(&mut rx).is_empty(),
            "written here within the refresh of its merge"
        );
        assert_eq!(t.expire(165), 3, "the peer's, written here at 170, stay");
        let snap = live.snapshot(1);
        assert_eq!(snap.len(), 2, "two series in chunks of one");
        assert!(snap.iter().all(|a| a.entries[0].2 == 170));
    }

    #[test]
    fn series_stay_live_until_the_window_passes_them() {
        let t = TenantSeries::default();
        let b = batch(0..10, "up");
        assert!(
            !t.touch_if_live(&b, 100),
            "nothing admitted before the set is built"
        );
        t.complete(Vec::new(), 0);
        assert_eq!(t.growth(&b).new, 10);
        t.record(&b, 100);
        assert!(t.touch_if_live(&b, 150));
        let more = batch(5..15, "up");
        let g = t.growth(&more);
        assert_eq!((g.live, g.new), (10, 5));
        assert_eq!(g.per_metric, vec![("up".to_owned(), 10, 5)]);
        assert_eq!(t.expire(149), 0);
        assert_eq!(t.expire(151), 10);
        assert_eq!(t.count(), 0);
        assert_eq!(t.growth(&more).per_metric, vec![("up".to_owned(), 0, 10)]);
    }

    #[test]
    fn a_set_completed_from_storage_keeps_what_is_recent() {
        let t = TenantSeries::default();
        let b = batch(0..3, "up");
        let known: Vec<_> = b
            .series()
            .enumerate()
            .map(|(i, s)| (s.series_id().0, Arc::from("up"), 1000 * (i as i64 + 1)))
            .collect();
        t.complete(known, 2);
        assert_eq!(
            t.count(),
            2,
            "the series last written before the window are not live"
        );
        assert_eq!(t.growth(&b).new, 1);
    }
}
