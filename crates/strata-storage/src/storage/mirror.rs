//! A querier's copies of the ingesters' heads (docs/DESIGN.md, "Scale-out").
//!
//! Each ingester a querier subscribes to streams its [`HeadEvent`]s: the
//! records it acknowledges, its cuts and its per-table commits. A
//! [`Mirror`] keeps that ingester's head as `Storage` keeps its own: an
//! active head and frozen cuts. Queries read the mirrors' heads with the
//! tables' files, and the two never overlap or leave a gap because a table
//! version is published only when, for every mirrored ingester, the WAL
//! position that version records for it is at or below the last cut the
//! mirror has seen; publishing drops, in the same critical section, the
//! mirrored cuts the version holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use strata_head::{Head, HistogramRow, HistogramStore, LogHead, TenantHead, TenantLogs};
use strata_types::TenantId;
use strata_wal::{WalRecord, WalSeq};
use tracing::warn;

use super::{Frozen, HeadEvent, Storage, list_tenants, pending_parts};
use crate::paths::Signal;
use crate::{DataFile, MetricsTable, StorageError};

/// One ingester's head, as mirrored from its events.
pub struct Mirror {
    /// The ingester's WAL application id in the tables.
    app_id: String,
    state: RwLock<MirrorState>,
}

struct MirrorState {
    head: Arc<Head>,
    logs: Arc<LogHead>,
    /// Native histograms since the last cut.
    histograms: Arc<HistogramStore>,
    /// Cuts not yet published as committed, oldest first.
    frozen: Vec<Frozen>,
    /// The highest cut of every tenant seen.
    cut_all: WalSeq,
    /// Cuts of one tenant above `cut_all`.
    cut_tenant: HashMap<TenantId, WalSeq>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// A mirror of the ingester whose WAL application id is `app_id`, for a
    /// subscription whose tables hold everything at or below `start`.
    pub fn new(app_id: String, start: WalSeq) -> Arc<Self> {
        Arc::new(Self {
            app_id,
            state: RwLock::new(MirrorState {
                head: Arc::new(Head::new()),
                logs: Arc::new(LogHead::new()),
                histograms: Arc::new(HistogramStore::new()),
                frozen: Vec::new(),
                cut_all: start,
                cut_tenant: HashMap::new(),
            }),
        })
    }

    /// Applies one event of the ingester's stream, in stream order.
    /// Commits change nothing here: the tables are re-read and published
    /// ([`Storage::refresh_table`]), which drops what they hold.
    pub fn apply(&self, event: &HeadEvent) {
        match event {
            HeadEvent::Samples(_, batch) => {
                let head = Arc::clone(&self.state.read().head);
                if let Err(error) = head.append(batch) {
                    warn!(tenant = %batch.tenant, %error, "mirrored record not applied");
                }
            }
            HeadEvent::Logs(_, batch) => {
                let logs = Arc::clone(&self.state.read().logs);
                logs.append(batch);
            }
            HeadEvent::Histograms(_, batch) => {
                let histograms = Arc::clone(&self.state.read().histograms);
                histograms.append(batch);
            }
            HeadEvent::Cut { seq, tenant } => {
                let mut state = self.state.write();
                let (heads, logs): (BTreeMap<_, _>, BTreeMap<_, _>) = match tenant {
                    None => (
                        by_tenant(state.head.freeze(), TenantHead::tenant),
                        by_tenant(state.logs.freeze(), TenantLogs::tenant),
                    ),
                    Some(t) => (
                        by_tenant(state.head.freeze_tenant(t), TenantHead::tenant),
                        by_tenant(state.logs.freeze_tenant(t), TenantLogs::tenant),
                    ),
                };
                // A querier's exemplars are in its store, not cut.
                let mut f = Frozen::at(*seq);
                (f.heads, f.logs) = (heads, logs);
                f.histograms = pending_parts(match tenant {
                    None => state.histograms.take_pending(),
                    Some(t) => vec![(t.clone(), state.histograms.take_pending_of(t))],
                });
                if !f.is_done() {
                    state.frozen.push(f);
                }
                match tenant {
                    None => {
                        state.cut_all = state.cut_all.max(*seq);
                        let all = state.cut_all;
                        state.cut_tenant.retain(|_, s| *s > all);
                    }
                    Some(t) => {
                        let s = state.cut_tenant.entry(t.clone()).or_insert(*seq);
                        *s = (*s).max(*seq);
                    }
                }
            }
            // Exemplars go to the querier's own store (the replication
            // loop applies them); commits change nothing here.
            HeadEvent::Committed { .. } | HeadEvent::Exemplars(..) => {}
        }
    }

    /// The highest cut of `tenant` seen: a table version whose position for
    /// this ingester is above it holds records still in the active head.
    fn cut_seen(&self, tenant: &TenantId) -> WalSeq {
        let state = self.state.read();
        let t = state.cut_tenant.get(tenant).copied().unwrap_or(WalSeq(0));
        state.cut_all.max(t)
    }

    /// Forgets `tenant`'s `signal` of every cut at or below `through`
    /// (a published table version holds them).
    fn drop_committed(&self, tenant: &TenantId, signal: Signal, through: WalSeq) {
        let mut state = self.state.write();
        for f in state.frozen.iter_mut().filter(|f| f.seq <= through) {
            f.remove(tenant, signal);
        }
        state.frozen.retain(|f| !f.is_done());
    }

    /// `tenant`'s heads: the active one, then frozen cuts newest first.
    pub(super) fn heads(&self, tenant: &TenantId, out: &mut Vec<Arc<TenantHead>>) {
        let state = self.state.read();
        out.extend(state.head.tenant(tenant));
        for f in state.frozen.iter().rev() {
            out.extend(f.heads.get(tenant).cloned());
        }
    }

    /// `tenant`'s mirrored native histograms in `[start_ms, end_ms]` of
    /// the series `keep` selects, appended to `out`: the cuts not yet
    /// published, oldest first, then those since the last cut.
    pub(super) fn histograms(
        &self,
        tenant: &TenantId,
        keep: &dyn Fn(&strata_types::Labels) -> bool,
        start_ms: i64,
        end_ms: i64,
        out: &mut Vec<HistogramRow>,
    ) {
        let state = self.state.read();
        super::frozen::cut_histograms(&state.frozen, tenant, keep, (start_ms, end_ms), out);
        out.extend(state.histograms.select_of(tenant, keep, start_ms, end_ms));
    }

    /// `tenant`'s log heads, as [`Mirror::heads`].
    pub(super) fn log_heads(&self, tenant: &TenantId, out: &mut Vec<Arc<TenantLogs>>) {
        let state = self.state.read();
        out.extend(state.logs.tenant(tenant));
        for f in state.frozen.iter().rev() {
            out.extend(f.logs.get(tenant).cloned());
        }
    }

    pub(super) fn tenants(&self, out: &mut BTreeSet<TenantId>) {
        let state = self.state.read();
        out.extend(state.head.tenants());
        out.extend(state.logs.tenants());
        for f in &state.frozen {
            out.extend(f.heads.keys().cloned());
            out.extend(f.logs.keys().cloned());
        }
    }
}

fn by_tenant<H>(
    heads: impl IntoIterator<Item = Arc<H>>,
    tenant: fn(&H) -> &TenantId,
) -> BTreeMap<TenantId, Arc<H>> {
    heads.into_iter().map(|h| (tenant(&h).clone(), h)).collect()
}

/// A record of the stream, decoded, as an event.
pub fn record_event(seq: WalSeq, record: WalRecord) -> Option<HeadEvent> {
    match record {
        WalRecord::Samples(batch) => Some(HeadEvent::Samples(seq, Arc::new(batch))),
        WalRecord::Logs(batch) => Some(HeadEvent::Logs(seq, Arc::new(batch))),
        WalRecord::Exemplars(batch) => Some(HeadEvent::Exemplars(seq, Arc::new(batch))),
        WalRecord::Histograms(batch) => Some(HeadEvent::Histograms(seq, Arc::new(batch))),
        _ => None,
    }
}

/// One table as re-read: its files and each mirrored ingester's position.
struct ReadTable {
    tenant: TenantId,
    signal: Signal,
    version: Option<u64>,
    files: Vec<DataFile>,
    through: Vec<(Arc<Mirror>, Option<WalSeq>)>,
}

impl Storage {
    /// Publishes `table`'s files to queries. With no mirror, at once; with
    /// mirrors, only if the version is consistent with all of them (see the
    /// module's documentation), dropping the mirrored cuts it holds.
    /// Returns whether it was published.
    pub(super) async fn publish_shared(
        &self,
        tenant: &TenantId,
        table: &MetricsTable,
    ) -> Result<bool, StorageError> {
        let key = (tenant.clone(), table.signal());
        if table.version().is_some()
            && self.state.read().published.get(&key) == table.version().as_ref()
        {
            // Unchanged since it was published.
            return Ok(true);
        }
        let mirrors: Vec<Arc<Mirror>> = self.mirrors.read().values().cloned().collect();
        if mirrors.is_empty() {
            self.publish_files(tenant, table)?;
            return Ok(true);
        }
        let read = read_table(tenant, table, &mirrors).await?;
        let mut state = self.state.write();
        let current = self.mirrors.read();
        if current.len() != mirrors.len()
            || !mirrors
                .iter()
                .all(|m| current.values().any(|c| Arc::ptr_eq(c, m)))
        {
            // A mirror was replaced meanwhile: the next pass decides.
            return Ok(false);
        }
        if superseded(&state, &read) {
            // A newer version is published already.
            return Ok(true);
        }
        if !consistent(&read) {
            return Ok(false);
        }
        publish(&mut state, read);
        Ok(true)
    }

    /// Makes `mirror` (a new subscription's) what queries read of the
    /// ingester `source`, replacing its previous mirror: every table is
    /// re-read and, in one critical section, published together with the
    /// swap, so queries see the old mirror and older files or the new
    /// mirror and files holding everything it does not. Retries while
    /// another mirror is behind the tables (it catches up in
    /// milliseconds), until `give_up` says to stop.
    pub async fn activate_mirror(
        &self,
        source: &str,
        mirror: Arc<Mirror>,
        give_up: impl Fn() -> bool,
    ) -> Result<bool, StorageError> {
        self.replace_mirror(source, Some(mirror), give_up).await
    }

    /// How many ingesters' heads this process mirrors now.
    pub fn mirrored(&self) -> usize {
        self.mirrors.read().len()
    }

    /// Stops reading the mirror of `source` (an ingester unreachable for
    /// long), publishing the tables' latest versions in the same critical
    /// section, so what that ingester flushed stays visible throughout.
    /// Returns whether there was one.
    pub async fn retire_mirror(&self, source: &str) -> Result<bool, StorageError> {
        if !self.mirrors.read().contains_key(source) {
            return Ok(false);
        }
        self.replace_mirror(source, None, || false).await
    }

    async fn replace_mirror(
        &self,
        source: &str,
        mirror: Option<Arc<Mirror>>,
        give_up: impl Fn() -> bool,
    ) -> Result<bool, StorageError> {
        let mut wait = Duration::from_millis(50);
        loop {
            if give_up() {
                return Ok(false);
            }
            let mut mirrors: Vec<Arc<Mirror>> = self
                .mirrors
                .read()
                .iter()
                .filter(|(k, _)| k.as_str() != source)
                .map(|(_, m)| Arc::clone(m))
                .collect();
            let others = mirrors.len();
            mirrors.extend(mirror.iter().cloned());
            let mut tables = Vec::new();
            for tenant in list_tenants(&self.store).await? {
                for signal in Signal::ALL {
                    let Some(table) = self.shared_table(&tenant, signal).await? else {
                        continue;
                    };
                    let mut table = table.lock().await;
                    table.refresh().await?;
                    tables.push(read_table(&tenant, &table, &mirrors).await?);
                }
            }
            {
                let mut state = self.state.write();
                let mut current = self.mirrors.write();
                let others_unchanged = current
                    .iter()
                    .filter(|(k, _)| k.as_str() != source)
                    .all(|(_, m)| mirrors[..others].iter().any(|x| Arc::ptr_eq(x, m)))
                    && current.keys().filter(|k| k.as_str() != source).count() == others;
                // A table re-read meanwhile to a newer version than this
                // pass read: read again (publishing the older one would
                // hide what the newer one holds).
                let stale = tables.iter().any(|t| superseded(&state, t));
                if others_unchanged && !stale && tables.iter().all(consistent) {
                    for t in tables {
                        publish(&mut state, t);
                    }
                    match mirror {
                        Some(m) => current.insert(source.to_owned(), m),
                        None => current.remove(source),
                    };
                    return Ok(true);
                }
            }
            // Another mirror catches up within milliseconds; one whose
            // ingester is gone is retired within `mirror_retire_after`.
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }
}

async fn read_table(
    tenant: &TenantId,
    table: &MetricsTable,
    mirrors: &[Arc<Mirror>],
) -> Result<ReadTable, StorageError> {
    let mut through = Vec::with_capacity(mirrors.len());
    for m in mirrors {
        through.push((Arc::clone(m), table.wal_seq_of(&m.app_id).await?));
    }
    Ok(ReadTable {
        tenant: tenant.clone(),
        signal: table.signal(),
        version: table.version(),
        files: table.files()?,
        through,
    })
}

/// Whether no mirror still holds, outside its cuts, records the version
/// holds.
fn consistent(t: &ReadTable) -> bool {
    t.through
        .iter()
        .all(|(m, through)| through.is_none_or(|s| s <= m.cut_seen(&t.tenant)))
}

/// Whether a newer version of the table than `t`'s is published.
fn superseded(state: &super::ReadState, t: &ReadTable) -> bool {
    let published = state.published.get(&(t.tenant.clone(), t.signal));
    matches!((published, t.version), (Some(p), Some(v)) if *p > v)
}

/// Publishes a consistent version and drops the mirrored cuts it holds
/// (the caller holds the state lock: readers see both or neither).
fn publish(state: &mut super::ReadState, t: ReadTable) {
    if let Some(v) = t.version {
        state.published.insert((t.tenant.clone(), t.signal), v);
    }
    state
        .files_mut(t.signal)
        .insert(t.tenant.clone(), t.files.into());
    for (m, through) in &t.through {
        if let Some(s) = through {
            m.drop_committed(&t.tenant, t.signal, *s);
        }
    }
}
