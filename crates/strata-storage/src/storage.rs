//! The flush: head → data files → Delta commit → head and WAL released.
//!
//! Ordering that makes a crash at any point lose nothing and duplicate
//! nothing:
//!
//! 1. **Cut.** Writers hold a shared lock across "append to the WAL, apply to
//!    the head"; the flush takes it exclusively, so when it holds it every
//!    acknowledged record up to the highest WAL position seen, `W`, is in the
//!    head and none after it. The head is frozen (swapped for an empty one)
//!    and the frozen heads stay readable.
//! 2. **Write** each tenant's frozen head to new, uniquely named Parquet
//!    files. A crash here leaves unreferenced files (vacuum removes them);
//!    the WAL still holds everything.
//! 3. **Commit** the files with `txn(strata-wal, W)` in one Delta commit. A
//!    crash after this replays the WAL but skips the tenant's records
//!    `<= W`, so nothing is applied twice.
//! 4. **Release.** Under the readers' lock the tenant's file list is replaced
//!    and its frozen head dropped, so a reader sees either the head or the
//!    files, never both and never neither. When every tenant of every cut is
//!    committed, WAL segments holding only records `<= W` are deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::path::Path;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use strata_head::{
    AppendStats, ExemplarBounds, ExemplarStore, Head, HistogramStore, LogHead, TenantHead,
    TenantLogs,
};
use strata_types::{ExemplarBatch, HistogramBatch, LogBatch, TenantId, WriteBatch};
use strata_wal::{Wal, WalSeq};
use tracing::info;

mod exemplars;
mod flush;
mod frozen;
mod histograms;
mod logs;
mod maintenance;
mod mirror;
use frozen::{Frozen, FrozenHead, pending_parts};
pub use histograms::HistogramRead;
pub use maintenance::CompactionBacklog;
pub use mirror::{Mirror, record_event};

use crate::paths::{Signal, TENANTS, TablePath};
use crate::store::humantime_serde_compat;
use crate::{DataFile, MetricsTable, ObjectStoreHandle, StorageError};

/// When the head is flushed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Flush when the oldest unflushed data is this old.
    #[serde(with = "humantime_serde_compat")]
    pub flush_interval: Duration,
    /// Flush when the head holds this many samples.
    pub flush_max_samples: u64,
    /// Flush when the log head holds this many bytes of lines and
    /// metadata.
    pub flush_max_log_bytes: u64,
    /// How often the background compactor looks for work.
    #[serde(with = "humantime_serde_compat")]
    pub compaction_interval: Duration,
    /// A time window is compacted once it ended this long ago (late data
    /// still arriving for it gets merged in a later pass).
    #[serde(with = "humantime_serde_compat")]
    pub compaction_delay: Duration,
    /// Merges run at once, each on a core of its own (default: the
    /// machine's cores; the server runs them at lower CPU priority, so
    /// they take what ingest and queries leave).
    pub compaction_workers: usize,
    /// The nice value of compaction threads in the server (0: normal
    /// priority).
    pub compaction_nice: i32,
    /// zstd level of day files' values and log lines, 1-22: 17 writes the
    /// smallest files (0.82 bytes/sample on the load generator's workload
    /// at about 0.9 µs of a core per row; logs 0.134 bytes per raw byte at
    /// about 150 core-seconds per GiB, 9: 0.151 at 18); lower levels write
    /// faster for more bytes.
    pub day_file_zstd_level: i32,
    /// Rows per data page of day files (1024 to 1048576, the row group):
    /// large pages store the fewest bytes; a read of a few series
    /// decompresses each page one of them lies in whole, so smaller pages
    /// answer selective queries over past days faster for more bytes
    /// (docs/BENCHMARKS.md has both sides).
    pub day_file_page_rows: usize,
    /// Flow control: a tenant's writes are refused (503 with Retry-After,
    /// which senders retry) while one of its hour merges has waited longer
    /// than this, so ingest above what compaction sustains cannot pile up
    /// flush files without bound (every query reads them all). Zero never
    /// refuses.
    #[serde(with = "humantime_serde_compat")]
    pub max_compaction_lag: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            // Ten minutes of a laptop's data is small; a server ingesting
            // 1M samples/s reaches the sample bound in about 20 s.
            flush_interval: Duration::from_secs(600),
            flush_max_samples: 20_000_000,
            flush_max_log_bytes: 256 << 20,
            compaction_interval: Duration::from_secs(60),
            compaction_delay: Duration::from_secs(600),
            compaction_workers: std::thread::available_parallelism().map_or(1, usize::from),
            compaction_nice: 10,
            // An hour merge of 500k samples/s (1.8G rows) takes about 15
            // minutes of a core: an hour late is well behind.
            max_compaction_lag: Duration::from_secs(3600),
            day_file_zstd_level: crate::writer::DEFAULT_DAY_FILE_ZSTD_LEVEL,
            day_file_page_rows: crate::writer::DEFAULT_DAY_FILE_PAGE_ROWS,
        }
    }
}

/// What one flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushReport {
    pub tenants: usize,
    pub files: usize,
    pub rows: u64,
    /// Log entries written.
    pub log_rows: u64,
    /// Exemplars written.
    pub exemplar_rows: u64,
    /// Native-histogram samples written.
    pub histogram_rows: u64,
    pub bytes: u64,
    pub wal_segments_removed: usize,
    pub elapsed: Duration,
    /// The WAL position of the cut this flush made: every record at or
    /// below it is in the tables when the flush succeeded.
    pub cut: WalSeq,
}

/// What happens to an ingester's head, in order, for the queriers that
/// mirror it (docs/DESIGN.md, "Scale-out"): records as they are
/// acknowledged, cuts, and per-table commits of cuts.
#[derive(Debug, Clone)]
pub enum HeadEvent {
    Samples(WalSeq, Arc<WriteBatch>),
    Logs(WalSeq, Arc<LogBatch>),
    /// Exemplars as written.
    Exemplars(WalSeq, Arc<ExemplarBatch>),
    /// Native histograms as written.
    Histograms(WalSeq, Arc<HistogramBatch>),
    /// The head (of `tenant` only, or every tenant's) was frozen at `seq`:
    /// every record at or below it is in this cut or an earlier one.
    Cut {
        seq: WalSeq,
        tenant: Option<TenantId>,
    },
    /// `tenant`'s table of `signal` holds every record of its cuts up to
    /// `seq`.
    Committed {
        tenant: TenantId,
        signal: Signal,
        seq: WalSeq,
    },
}

impl HeadEvent {
    pub fn seq(&self) -> WalSeq {
        match self {
            Self::Samples(seq, _)
            | Self::Logs(seq, _)
            | Self::Exemplars(seq, _)
            | Self::Histograms(seq, _) => *seq,
            Self::Cut { seq, .. } | Self::Committed { seq, .. } => *seq,
        }
    }
}

/// How many exemplars a tenant keeps until the server sets its limits.
pub const DEFAULT_EXEMPLAR_BOUNDS: ExemplarBounds = ExemplarBounds {
    per_series: 10,
    total: 100_000,
};

/// Each tenant's exemplar bounds.
pub type ExemplarBoundsFn = Arc<dyn Fn(&TenantId) -> ExemplarBounds + Send + Sync>;

/// Events a subscriber may fall behind by before it is cut off (and
/// subscribes again).
const HEAD_EVENTS_BUFFER: usize = 16_384;

/// A point in a table's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactReport {
    pub jobs: usize,
    pub files_in: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub elapsed: Duration,
}

#[derive(Default)]
struct ReadState {
    /// Cuts not yet fully committed, oldest first.
    frozen: Vec<Frozen>,
    files: HashMap<TenantId, Arc<[DataFile]>>,
    committed: HashMap<TenantId, WalSeq>,
    log_files: HashMap<TenantId, Arc<[DataFile]>>,
    log_committed: HashMap<TenantId, WalSeq>,
    exemplar_files: HashMap<TenantId, Arc<[DataFile]>>,
    exemplar_committed: HashMap<TenantId, WalSeq>,
    histogram_files: HashMap<TenantId, Arc<[DataFile]>>,
    histogram_committed: HashMap<TenantId, WalSeq>,
    /// The table version each published file list is of, where a process
    /// shares its tables: a re-read that lost a race to a newer one never
    /// publishes its older version over it.
    published: HashMap<(TenantId, Signal), u64>,
}

impl ReadState {
    fn files_mut(&mut self, signal: Signal) -> &mut HashMap<TenantId, Arc<[DataFile]>> {
        match signal {
            Signal::Metrics => &mut self.files,
            Signal::Logs => &mut self.log_files,
            Signal::Exemplars => &mut self.exemplar_files,
            Signal::Histograms => &mut self.histogram_files,
        }
    }

    fn committed_mut(&mut self, signal: Signal) -> &mut HashMap<TenantId, WalSeq> {
        match signal {
            Signal::Metrics => &mut self.committed,
            Signal::Logs => &mut self.log_committed,
            Signal::Exemplars => &mut self.exemplar_committed,
            Signal::Histograms => &mut self.histogram_committed,
        }
    }
}

/// What a log query of one tenant reads: log heads and files that
/// together hold each stored entry once.
#[derive(Debug, Clone)]
pub struct LogView {
    /// The active log head first, then frozen ones not yet committed.
    pub heads: Vec<Arc<TenantLogs>>,
    pub files: Arc<[DataFile]>,
    /// The logs table root, from the store root.
    pub table_root: Path,
    pub store: ObjectStoreHandle,
    /// Entries before this time (ms) are out of the query's reach.
    pub not_before_ms: i64,
}

/// What a query of one tenant reads: heads and files that together hold
/// each stored sample once.
#[derive(Debug, Clone)]
pub struct TenantView {
    /// The active head first, then frozen heads not yet committed.
    pub heads: Vec<Arc<TenantHead>>,
    pub files: Arc<[DataFile]>,
    /// The table root, from the store root.
    pub table_root: Path,
    pub store: ObjectStoreHandle,
    /// Samples before this time (ms) are out of the query's reach (a
    /// tenant's query lookback limit); `i64::MIN` when unlimited.
    pub not_before_ms: i64,
}

/// Testing hook: `STRATA_FAILPOINT=<name>` aborts the process at that step
/// of a flush, to prove recovery from a crash there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailPoint {
    /// Data files uploaded, not committed.
    Uploaded,
    /// Committed, frozen head and WAL not released.
    Committed,
    /// WAL segments removed.
    WalTruncated,
}

impl FailPoint {
    fn from_env() -> Option<Self> {
        match std::env::var("STRATA_FAILPOINT").ok()?.as_str() {
            "flush-after-upload" => Some(Self::Uploaded),
            "flush-after-commit" => Some(Self::Committed),
            "flush-after-wal-truncate" => Some(Self::WalTruncated),
            _ => None,
        }
    }
}

/// The head, the tables and the flush between them.
pub struct Storage {
    store: ObjectStoreHandle,
    head: Arc<Head>,
    logs: Arc<LogHead>,
    /// Shared by writers across WAL append + head apply; exclusive for a cut.
    cut: tokio::sync::RwLock<()>,
    /// Highest WAL position applied to (or skipped into) the head.
    applied: AtomicU64,
    state: RwLock<ReadState>,
    tables: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<MetricsTable>>>>,
    log_tables: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<MetricsTable>>>>,
    exemplar_tables: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<MetricsTable>>>>,
    histogram_tables: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<MetricsTable>>>>,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
    last_cut: Mutex<Instant>,
    failpoint: Option<FailPoint>,
    /// Merges at once, and the runtime they run on (`set_compaction`).
    compaction: Mutex<(usize, Option<tokio::runtime::Handle>)>,
    /// How late each table's hour merges were at the compactor's last
    /// look (`refresh_compaction_lag`).
    compaction_lags: RwLock<HashMap<(TenantId, Signal), Duration>>,
    /// Day files' zstd level for values (`set_day_file_zstd_level`).
    day_file_zstd: std::sync::atomic::AtomicI32,
    /// Day files' rows per data page (`set_day_file_page_rows`).
    day_file_page_rows: std::sync::atomic::AtomicUsize,
    /// Files whose last merge failed: merges holding them report no lag.
    compaction_failing: Mutex<std::collections::HashSet<uuid::Uuid>>,
    /// The log head's flush bound while a flusher runs (0: none runs, no
    /// back-pressure).
    log_flush_bytes: AtomicU64,
    /// Wakes the flusher when the log head passes its bound.
    flush_wanted: tokio::sync::Notify,
    /// Wakes log writers waiting for a flush to finish.
    flushed: tokio::sync::Notify,
    /// The flusher's last flush failed (writers do not wait on it).
    flush_failing: std::sync::atomic::AtomicBool,
    /// Set when other processes commit to the same tables.
    sharing: Option<Sharing>,
    /// This head's events, for queriers mirroring it.
    events: tokio::sync::broadcast::Sender<HeadEvent>,
    /// The ingesters' heads this process mirrors (a querier), by source.
    mirrors: RwLock<BTreeMap<String, Arc<mirror::Mirror>>>,
    /// Every tenant's recent exemplars (written here or mirrored),
    /// outliving flushes; what was written here since the last cut is
    /// pending for the exemplars table.
    exemplars: Arc<ExemplarStore>,
    /// How many exemplars each tenant keeps (`set_exemplar_bounds`).
    exemplar_bounds: RwLock<ExemplarBoundsFn>,
    /// Native-histogram samples written since the last cut.
    histograms: Arc<HistogramStore>,
}

/// How one process of a scale-out deployment shares the object store's
/// tables with the others (docs/DESIGN.md, "Scale-out"): its flushes record
/// their WAL position under its own application id, it re-reads the tables
/// before it compacts or applies retention (others commit to them), and it
/// does those only for the tenants it owns.
#[derive(Clone)]
pub struct Sharing {
    /// The Delta application id of this process's WAL positions
    /// ([`crate::ingester_wal_app_id`]).
    pub wal_app_id: String,
    /// Whether this process compacts and applies retention to a tenant.
    pub owns: Arc<dyn Fn(&TenantId) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing")
            .field("wal_app_id", &self.wal_app_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("url", &self.store.url().as_str())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens every tenant's table in the store. Call before WAL replay: the
    /// committed WAL positions decide what replay skips.
    pub async fn open(store: ObjectStoreHandle, head: Arc<Head>) -> Result<Self, StorageError> {
        Self::open_shared(store, head, None).await
    }

    /// [`Storage::open`] for a process sharing the tables with others
    /// (`None`: the sole writer).
    pub async fn open_shared(
        store: ObjectStoreHandle,
        head: Arc<Head>,
        sharing: Option<Sharing>,
    ) -> Result<Self, StorageError> {
        let mut state = ReadState::default();
        let mut tables = HashMap::new();
        let mut log_tables = HashMap::new();
        let mut exemplar_tables = HashMap::new();
        let mut histogram_tables = HashMap::new();
        for tenant in list_tenants(&store).await? {
            for signal in Signal::ALL {
                let Some(mut table) = MetricsTable::open_signal(&store, &tenant, signal).await?
                else {
                    continue;
                };
                if let Some(sharing) = &sharing {
                    table.set_wal_app_id(&sharing.wal_app_id);
                }
                if let Some(seq) = table.committed_wal_seq().await? {
                    state.committed_mut(signal).insert(tenant.clone(), seq);
                }
                state
                    .files_mut(signal)
                    .insert(tenant.clone(), table.files()?.into());
                let opened = match signal {
                    Signal::Metrics => &mut tables,
                    Signal::Logs => &mut log_tables,
                    Signal::Exemplars => &mut exemplar_tables,
                    Signal::Histograms => &mut histogram_tables,
                };
                opened.insert(tenant.clone(), Arc::new(tokio::sync::Mutex::new(table)));
            }
        }
        info!(url = %store.url(), tenants = tables.len(), "object store opened");
        Ok(Self {
            store,
            head,
            logs: Arc::new(LogHead::new()),
            cut: tokio::sync::RwLock::new(()),
            applied: AtomicU64::new(0),
            state: RwLock::new(state),
            tables: Mutex::new(tables),
            log_tables: Mutex::new(log_tables),
            exemplar_tables: Mutex::new(exemplar_tables),
            histogram_tables: Mutex::new(histogram_tables),
            flushing: tokio::sync::Mutex::new(()),
            last_cut: Mutex::new(Instant::now()),
            failpoint: FailPoint::from_env(),
            compaction: Mutex::new((1, None)),
            compaction_lags: RwLock::new(HashMap::new()),
            compaction_failing: Mutex::new(Default::default()),
            day_file_zstd: std::sync::atomic::AtomicI32::new(
                crate::writer::DEFAULT_DAY_FILE_ZSTD_LEVEL,
            ),
            day_file_page_rows: std::sync::atomic::AtomicUsize::new(
                crate::writer::DEFAULT_DAY_FILE_PAGE_ROWS,
            ),
            log_flush_bytes: AtomicU64::new(0),
            flush_wanted: tokio::sync::Notify::new(),
            flushed: tokio::sync::Notify::new(),
            flush_failing: std::sync::atomic::AtomicBool::new(false),
            sharing,
            events: tokio::sync::broadcast::channel(HEAD_EVENTS_BUFFER).0,
            mirrors: RwLock::new(BTreeMap::new()),
            exemplars: Arc::new(ExemplarStore::new()),
            exemplar_bounds: RwLock::new(Arc::new(|_: &TenantId| DEFAULT_EXEMPLAR_BOUNDS)),
            histograms: Arc::new(HistogramStore::new()),
        })
    }

    /// Tells subscribed queriers (none: nothing is done).
    fn announce(&self, event: impl FnOnce() -> HeadEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event());
        }
    }

    /// Subscribes a querier to this head: flushes first, so every record
    /// at or below the returned position is in the tables; the receiver
    /// then gets every event, of which those at or below that position are
    /// to be skipped (they are in the tables). Fails when the flush fails.
    pub async fn subscribe(
        &self,
        wal: &dyn Wal,
    ) -> Result<(WalSeq, tokio::sync::broadcast::Receiver<HeadEvent>), StorageError> {
        let rx = {
            // No record is between its WAL append and its event.
            let _cut = self.cut.write().await;
            self.events.subscribe()
        };
        let report = self.flush(wal).await?;
        Ok((report.cut, rx))
    }

    /// Whether this process compacts and applies retention to `tenant`.
    pub(crate) fn owns(&self, tenant: &TenantId) -> bool {
        self.sharing.as_ref().is_none_or(|s| (s.owns)(tenant))
    }

    /// The WAL application id this process's flushes record and its
    /// replay skips by.
    pub fn wal_app_id(&self) -> &str {
        self.sharing
            .as_ref()
            .map_or(crate::WAL_APP_ID, |s| s.wal_app_id.as_str())
    }

    /// `tenant`'s table of `signal` as this process holds it, opened (under
    /// this process's WAL application id) if another process created it
    /// since; `None` while it does not exist.
    pub(super) async fn shared_table(
        &self,
        tenant: &TenantId,
        signal: Signal,
    ) -> Result<Option<Arc<tokio::sync::Mutex<MetricsTable>>>, StorageError> {
        if let Some(t) = self.tables_of(signal).lock().get(tenant) {
            return Ok(Some(Arc::clone(t)));
        }
        let Some(mut table) = MetricsTable::open_signal(&self.store, tenant, signal).await? else {
            return Ok(None);
        };
        table.set_wal_app_id(self.wal_app_id());
        Ok(Some(Arc::clone(
            self.tables_of(signal)
                .lock()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(table))),
        )))
    }

    /// Re-reads `tenant`'s table of `signal` and publishes it to queries
    /// (when it may be: [`Storage::publish_shared`]). Under the table's
    /// lock, so a flush of this process is published whole, before or
    /// after. `false` when absent or not published.
    pub async fn refresh_table(
        &self,
        tenant: &TenantId,
        signal: Signal,
    ) -> Result<bool, StorageError> {
        let Some(table) = self.shared_table(tenant, signal).await? else {
            return Ok(false);
        };
        let mut table = table.lock().await;
        table.refresh().await?;
        self.publish_shared(tenant, &table).await
    }

    /// Re-reads every table from the store (opening those of tenants that
    /// appeared since): what other processes committed (other ingesters'
    /// flushes, compactors' merges and retention) becomes visible. A table
    /// that fails is skipped (its previous files stay published) and the
    /// first error returned after the others were read.
    pub async fn refresh_tables(&self) -> Result<(), StorageError> {
        self.refresh_tables_of(|_| true).await
    }

    /// [`Storage::refresh_tables`] for the tenants `which` takes (a
    /// compactor: those it owns).
    pub(super) async fn refresh_tables_of(
        &self,
        which: impl Fn(&TenantId) -> bool,
    ) -> Result<(), StorageError> {
        let mut first_error = None;
        for tenant in list_tenants(&self.store).await? {
            if !which(&tenant) {
                continue;
            }
            for signal in Signal::ALL {
                if let Err(e) = self.refresh_table(&tenant, signal).await {
                    tracing::warn!(%tenant, table = signal.as_str(), error = %e, "table not re-read; its previous files stay in use");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Re-reads the tables every `interval` until `stop` turns true (a
    /// process sharing its tables: other processes' commits become
    /// visible to its queries within an interval).
    pub async fn run_refresh(
        self: Arc<Self>,
        interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        every(interval, stop, || async {
            if let Err(error) = self.refresh_tables().await {
                tracing::warn!(%error, "re-reading the tables failed; the next pass retries");
            }
        })
        .await;
    }

    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    pub fn store(&self) -> &ObjectStoreHandle {
        &self.store
    }

    /// Replay: applies a WAL record unless a flush already committed it.
    /// Returns what was applied (`None`: skipped).
    pub fn replay(
        &self,
        seq: WalSeq,
        batch: &WriteBatch,
    ) -> Result<Option<AppendStats>, StorageError> {
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        let committed = self.state.read().committed.get(&batch.tenant).copied();
        if committed.is_some_and(|c| seq <= c) {
            return Ok(None);
        }
        Ok(Some(self.head.append(batch)?))
    }

    /// Makes `batch` durable in the WAL, then applies it to the head.
    pub async fn write(
        &self,
        wal: &dyn Wal,
        batch: Arc<WriteBatch>,
    ) -> Result<AppendStats, StorageError> {
        // Refused whole before the WAL: nothing of it is stored.
        if let Some((series, ts_ms)) = batch.out_of_range() {
            return Err(StorageError::TimestampOutOfRange {
                series: {
                    let pairs: Vec<String> = series
                        .labels()
                        .take(12)
                        .map(|(n, v)| format!("{n}={v:?}"))
                        .collect();
                    format!("{{{}}}", pairs.join(", "))
                },
                ts_ms,
            });
        }
        let _cut = self.cut.read().await;
        let seq = wal.append(Arc::clone(&batch)).await?;
        let stats = self.head.append(&batch)?;
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        self.announce(|| HeadEvent::Samples(seq, batch));
        Ok(stats)
    }

    /// Heads and files of `tenant`, consistent with each other.
    pub fn view(&self, tenant: &TenantId) -> TenantView {
        let state = self.state.read();
        let mut heads: Vec<_> = self.head.tenant(tenant).into_iter().collect();
        for f in state.frozen.iter().rev() {
            if let Some(h) = f.heads.get(tenant) {
                heads.push(Arc::clone(h));
            }
        }
        for m in self.mirrors.read().values() {
            m.heads(tenant, &mut heads);
        }
        TenantView {
            heads,
            files: state
                .files
                .get(tenant)
                .cloned()
                .unwrap_or_else(|| Arc::from([])),
            table_root: self
                .store
                .path(&TablePath::metrics(tenant.clone()).relative()),
            store: self.store.clone(),
            not_before_ms: i64::MIN,
        }
    }

    /// The newest sample time `tenant` has stored outside its live head:
    /// in its files and in heads being flushed. A file's samples count as
    /// of when it was written at the latest, and a flushing head's as of
    /// `now_ms`, so one sample dated far ahead does not stand for the
    /// future. `None` when nothing is. Created-timestamp injection takes a
    /// start at or before this as stored already.
    pub fn stored_through_ms(&self, tenant: &TenantId, now_ms: i64) -> Option<i64> {
        let state = self.state.read();
        let files = state.files.get(tenant).into_iter().flat_map(|f| f.iter());
        let from_files = files
            .filter(|f| f.stats.rows > 0)
            .map(|f| f.stats.max_ts_ms.min(f.written_ms.max(f.stats.min_ts_ms)))
            .max();
        let from_frozen = state
            .frozen
            .iter()
            .filter_map(|f| f.heads.get(tenant)?.time_range())
            .map(|(_, hi)| hi.min(now_ms))
            .max();
        from_files.max(from_frozen)
    }

    /// `tenant`'s table as it was at a version or a time: its files only
    /// (what the head held then was not in the table yet).
    pub async fn view_as_of(
        &self,
        tenant: &TenantId,
        at: AsOf,
    ) -> Result<TenantView, StorageError> {
        let Some(mut table) = MetricsTable::open(&self.store, tenant).await? else {
            return Err(StorageError::NotFound {
                what: format!("tenant {tenant} has no table yet"),
            });
        };
        match at {
            AsOf::Version(v) => {
                let latest = table.version().unwrap_or(0);
                if v > latest {
                    return Err(StorageError::NotFound {
                        what: format!(
                            "table version {v} of tenant {tenant} (the latest is {latest})"
                        ),
                    });
                }
                table.load_version(v).await?
            }
            AsOf::Time(t) => table.load_as_of(t).await?,
        }
        Ok(TenantView {
            heads: Vec::new(),
            files: table.files()?.into(),
            table_root: table.root().clone(),
            store: self.store.clone(),
            not_before_ms: i64::MIN,
        })
    }

    /// Tenants with a table, committed positions included: for ops views.
    pub fn committed(&self) -> HashMap<TenantId, WalSeq> {
        self.state.read().committed.clone()
    }

    /// Every tenant holding data: files or heads, metrics or logs.
    pub fn tenants(&self) -> std::collections::BTreeSet<TenantId> {
        let mut out: std::collections::BTreeSet<TenantId> =
            self.head.tenants().into_iter().collect();
        out.extend(self.logs.tenants());
        let state = self.state.read();
        out.extend(state.files.keys().cloned());
        out.extend(state.log_files.keys().cloned());
        for f in &state.frozen {
            out.extend(f.heads.keys().cloned());
            out.extend(f.logs.keys().cloned());
        }
        for m in self.mirrors.read().values() {
            m.tenants(&mut out);
        }
        out
    }

    /// (tenant, live files, bytes, rows) of every table, for `/metrics`.
    pub fn table_stats(&self) -> Vec<(TenantId, usize, u64, u64)> {
        let state = self.state.read();
        let mut v: Vec<_> = state
            .files
            .iter()
            .map(|(t, files)| {
                (
                    t.clone(),
                    files.len(),
                    files.iter().map(|f| f.size).sum(),
                    files.iter().map(|f| f.stats.rows).sum(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Cuts waiting to be committed (non-zero while the store is failing).
    pub fn pending_cuts(&self) -> usize {
        self.state.read().frozen.len()
    }
}

/// Runs `pass` every `interval` until `stop` turns true (a pass under way
/// finishes first).
async fn every<F, Fut>(
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        pass().await;
    }
}

/// Tenants that have a directory under `tenants/`.
pub(crate) async fn list_tenants(store: &ObjectStoreHandle) -> Result<Vec<TenantId>, StorageError> {
    let prefix = store.path(TENANTS);
    let listing = store.store().list_with_delimiter(Some(&prefix)).await?;
    let base = store.base().as_ref();
    let mut tenants: Vec<TenantId> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| {
            let key = p.as_ref().strip_prefix(base)?.trim_start_matches('/');
            TablePath::parse_tenant(key)
        })
        .collect();
    tenants.sort();
    Ok(tenants)
}
