//! A cut of the heads: what each tenant held at one WAL position, per
//! signal, kept readable (and retried) until every part is committed to
//! its table.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_head::{HistogramRow, TenantHead, TenantLogs};
use strata_types::TenantId;
use strata_wal::WalSeq;

use crate::exemplar_files::ExemplarRow;
use crate::paths::Signal;

/// One cut of the head, kept readable until committed.
pub(super) struct Frozen {
    pub(super) seq: WalSeq,
    pub(super) heads: BTreeMap<TenantId, Arc<TenantHead>>,
    pub(super) logs: BTreeMap<TenantId, Arc<TenantLogs>>,
    /// The exemplars each tenant stored up to the cut, not yet in its
    /// exemplars table.
    pub(super) exemplars: BTreeMap<TenantId, Arc<Vec<ExemplarRow>>>,
    /// The native histograms each tenant stored up to the cut, not yet in
    /// its histograms table.
    pub(super) histograms: BTreeMap<TenantId, Arc<Vec<HistogramRow>>>,
}

impl Frozen {
    /// A cut at `seq` holding nothing yet.
    pub(super) fn at(seq: WalSeq) -> Self {
        Self {
            seq,
            heads: BTreeMap::new(),
            logs: BTreeMap::new(),
            exemplars: BTreeMap::new(),
            histograms: BTreeMap::new(),
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.heads.is_empty()
            && self.logs.is_empty()
            && self.exemplars.is_empty()
            && self.histograms.is_empty()
    }

    /// Every tenant's part not yet committed, in the order a flush writes
    /// them: metrics, logs, exemplars, histograms, tenants in order.
    pub(super) fn parts(&self) -> Vec<(TenantId, FrozenPart)> {
        fn each<T>(
            map: &BTreeMap<TenantId, Arc<T>>,
            part: fn(Arc<T>) -> FrozenPart,
        ) -> impl Iterator<Item = (TenantId, FrozenPart)> + '_ {
            map.iter()
                .map(move |(t, h)| (t.clone(), part(Arc::clone(h))))
        }
        each(&self.heads, FrozenPart::Samples)
            .chain(each(&self.logs, FrozenPart::Logs))
            .chain(each(&self.exemplars, FrozenPart::Exemplars))
            .chain(each(&self.histograms, FrozenPart::Histograms))
            .collect()
    }

    /// Forgets `tenant`'s part of `signal` (committed to its table).
    pub(super) fn remove(&mut self, tenant: &TenantId, signal: Signal) {
        match signal {
            Signal::Metrics => self.heads.remove(tenant).map(drop),
            Signal::Logs => self.logs.remove(tenant).map(drop),
            Signal::Exemplars => self.exemplars.remove(tenant).map(drop),
            Signal::Histograms => self.histograms.remove(tenant).map(drop),
        };
    }
}

/// One tenant's part of a cut, shared with the cut until committed.
pub(super) enum FrozenPart {
    Samples(Arc<TenantHead>),
    Logs(Arc<TenantLogs>),
    Exemplars(Arc<Vec<ExemplarRow>>),
    Histograms(Arc<Vec<HistogramRow>>),
}

impl FrozenPart {
    pub(super) fn head(&self) -> FrozenHead<'_> {
        match self {
            Self::Samples(h) => FrozenHead::Samples(h),
            Self::Logs(l) => FrozenHead::Logs(l),
            Self::Exemplars(rows) => FrozenHead::Exemplars(rows),
            Self::Histograms(rows) => FrozenHead::Histograms(rows),
        }
    }
}

/// Rows each tenant held aside, as a cut's parts (none for a tenant
/// without rows).
/// `tenant`'s histogram rows of `cuts` (oldest first) in `[start_ms,
/// end_ms]` of the series `keep` selects, appended to `out`.
pub(super) fn cut_histograms(
    cuts: &[Frozen],
    tenant: &TenantId,
    keep: &dyn Fn(&strata_types::Labels) -> bool,
    (start_ms, end_ms): (i64, i64),
    out: &mut Vec<HistogramRow>,
) {
    for f in cuts {
        if let Some(rows) = f.histograms.get(tenant) {
            out.extend(
                rows.iter()
                    .filter(|(_, s)| (start_ms..=end_ms).contains(&s.timestamp_ms))
                    .filter(|(l, _)| keep(l))
                    .cloned(),
            );
        }
    }
}

pub(super) fn pending_parts<R>(taken: Vec<(TenantId, Vec<R>)>) -> BTreeMap<TenantId, Arc<Vec<R>>> {
    taken
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(t, rows)| (t, Arc::new(rows)))
        .collect()
}

/// One tenant's frozen head of one signal, being flushed.
pub(super) enum FrozenHead<'a> {
    Samples(&'a TenantHead),
    Logs(&'a TenantLogs),
    Exemplars(&'a [ExemplarRow]),
    Histograms(&'a [HistogramRow]),
}

impl FrozenHead<'_> {
    pub(super) fn signal(&self) -> Signal {
        match self {
            Self::Samples(_) => Signal::Metrics,
            Self::Logs(_) => Signal::Logs,
            Self::Exemplars(_) => Signal::Exemplars,
            Self::Histograms(_) => Signal::Histograms,
        }
    }
}
