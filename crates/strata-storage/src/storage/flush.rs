//! The flush: the head cut at a WAL position (frozen), each tenant's cut
//! written as a data file and committed to its table, the files published
//! to queries, and the cut dropped once every tenant's commit is in; on
//! demand (`flush`, `flush_one`) or by the background flusher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_types::TenantId;
use strata_wal::{Wal, WalSeq};
use tracing::{info, instrument, warn};

use super::{
    FailPoint, FlushReport, Frozen, FrozenHead, HeadEvent, Storage, StorageConfig, pending_parts,
};

/// Commits of a flush to a table other processes commit to, before the
/// flush fails (and is retried whole by the flusher).
const SHARED_COMMIT_ATTEMPTS: usize = 5;

/// Pending exemplars (all tenants) at which the flusher writes them to
/// the exemplars tables without waiting for the next flush: what the
/// exemplar stores hold aside stays bounded (each an exemplar and a
/// reference to its series' labels, which the store shares) however many
/// exemplars a flush interval brings.
pub const EXEMPLAR_FLUSH_ROWS: usize = 100_000;
use crate::logs_writer::write_logs;
use crate::paths::Signal;
use crate::table::write_operation;
use crate::writer::write_head;
use crate::{MetricsTable, StorageError};

impl Storage {
    /// Whether a flush is due: the head is over its sample bound, or has
    /// held data for the flush interval, or an earlier flush is unfinished.
    pub fn flush_due(&self, config: &StorageConfig) -> bool {
        if !self.state.read().frozen.is_empty() {
            return true;
        }
        let samples = self.head.samples_appended();
        let log_bytes = self.logs.bytes_appended();
        let held = samples > 0
            || self.logs.entries_appended() > 0
            || self.exemplars.has_pending()
            || self.histograms.has_pending();
        // A histogram weighs as many samples as it has buckets, plus one.
        samples.saturating_add(self.histograms.pending_weight() as u64) >= config.flush_max_samples
            || log_bytes >= config.flush_max_log_bytes
            || (held && self.last_cut.lock().elapsed() >= config.flush_interval)
    }

    /// Flushes everything in the head now (and finishes earlier cuts).
    #[instrument(skip_all)]
    pub async fn flush(&self, wal: &dyn Wal) -> Result<FlushReport, StorageError> {
        let result = self.flush_once(wal).await;
        // Log writers waiting for room look again, whatever the outcome.
        self.flushed.notify_waiters();
        result
    }

    async fn flush_once(&self, wal: &dyn Wal) -> Result<FlushReport, StorageError> {
        let _one = self.flushing.lock().await;
        let started = Instant::now();
        // Everything at or below `cut` is in the frozen heads or the files;
        // later writes go to the new head and must stay in the WAL.
        let cut = self.cut_head().await;
        let mut report = FlushReport {
            cut,
            ..FlushReport::default()
        };
        let failed = self.write_cuts(|_, _| true, &mut report).await;
        if let Some(e) = failed {
            // The WAL keeps every record from the first cut not done.
            return Err(e);
        }
        // Every cut is committed: every record up to `cut` is in files.
        report.wal_segments_removed = wal.remove_segments_before(WalSeq(cut.0 + 1))?;
        if self.failpoint == Some(FailPoint::WalTruncated) {
            std::process::abort();
        }
        report.elapsed = started.elapsed();
        if report.files > 0 || report.wal_segments_removed > 0 {
            info!(
                tenants = report.tenants,
                files = report.files,
                rows = report.rows,
                bytes = report.bytes,
                wal_segments_removed = report.wal_segments_removed,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "flushed"
            );
        }
        Ok(report)
    }

    /// Steps 2–4 for the parts of every uncommitted cut that `which` takes
    /// (by tenant and signal), oldest cut first, then forgets the cuts
    /// done. Each tenant's part stands alone: one that fails is logged and
    /// retried by a later flush, every other is still committed; a tenant
    /// whose part of a signal failed in one cut is not written in later
    /// cuts (its committed position must not pass the records it has not
    /// written). The first failure, if any.
    async fn write_cuts(
        &self,
        which: impl Fn(&TenantId, Signal) -> bool,
        report: &mut FlushReport,
    ) -> Option<StorageError> {
        let cuts: Vec<_> = {
            let state = self.state.read();
            state.frozen.iter().map(|f| (f.seq, f.parts())).collect()
        };
        let mut failed: Vec<(TenantId, Signal)> = Vec::new();
        let mut first = None;
        for (seq, parts) in cuts {
            for (tenant, part) in parts {
                let head = part.head();
                let signal = head.signal();
                if !which(&tenant, signal) || failed.contains(&(tenant.clone(), signal)) {
                    continue;
                }
                if let Err(e) = self.flush_tenant(seq, &tenant, head, report).await {
                    warn!(tenant = %tenant, table = signal.as_str(), error = %e, "flush of a tenant's table failed; its data stays in the WAL (and the head), other tenants go on");
                    first.get_or_insert(StorageError::TenantFlush {
                        tenant: tenant.clone(),
                        signal: signal.as_str(),
                        source: Box::new(e),
                    });
                    failed.push((tenant, signal));
                }
            }
        }
        self.drop_committed_cuts();
        first
    }

    /// Adds `f` to the uncommitted cuts unless it holds nothing.
    fn push_cut(&self, f: Frozen) {
        if !f.is_done() {
            self.state.write().frozen.push(f);
        }
    }

    /// [`Storage::push_cut`], the pending native histograms (of `tenant`,
    /// or every tenant's) taken into the cut under the state's lock: a
    /// query's [`Storage::select_histograms`] finds them pending or cut,
    /// never in neither.
    fn push_cut_taking_histograms(&self, mut f: Frozen, tenant: Option<&TenantId>) {
        let mut state = self.state.write();
        f.histograms = pending_parts(match tenant {
            Some(t) => vec![(t.clone(), self.histograms.take_pending_of(t))],
            None => self.histograms.take_pending(),
        });
        if !f.is_done() {
            state.frozen.push(f);
        }
    }

    /// Flushes `tenant`'s heads now (every signal, with any earlier cut of
    /// theirs not yet committed), and nobody else's. The WAL is not
    /// truncated: the other tenants' records there are not in files yet;
    /// the next full flush truncates past them all.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn flush_one(&self, tenant: &TenantId) -> Result<FlushReport, StorageError> {
        let _one = self.flushing.lock().await;
        let started = Instant::now();
        {
            let _cut = self.cut.write().await;
            let mut f = Frozen::at(WalSeq(self.applied.load(Ordering::Acquire)));
            f.heads
                .extend(self.head.freeze_tenant(tenant).map(|h| (tenant.clone(), h)));
            f.logs
                .extend(self.logs.freeze_tenant(tenant).map(|h| (tenant.clone(), h)));
            f.exemplars = pending_parts(vec![(
                tenant.clone(),
                self.exemplars.take_pending_of(tenant),
            )]);
            let seq = f.seq;
            self.push_cut_taking_histograms(f, Some(tenant));
            self.announce(|| HeadEvent::Cut {
                seq,
                tenant: Some(tenant.clone()),
            });
        }
        let mut report = FlushReport::default();
        if let Some(e) = self.write_cuts(|t, _| t == tenant, &mut report).await {
            return Err(e);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Writes every tenant's pending exemplars to its exemplars table now,
    /// without cutting the heads: a cut of exemplars only, at the current
    /// WAL position, committed as the exemplar part of any cut is (with
    /// earlier cuts' exemplar parts not yet committed). The WAL is not
    /// truncated: the next full flush does that.
    #[instrument(skip_all)]
    pub async fn flush_exemplars(&self) -> Result<FlushReport, StorageError> {
        let _one = self.flushing.lock().await;
        let started = Instant::now();
        {
            let _cut = self.cut.write().await;
            let mut f = Frozen::at(WalSeq(self.applied.load(Ordering::Acquire)));
            f.exemplars = pending_parts(self.exemplars.take_pending());
            self.push_cut(f);
        }
        let mut report = FlushReport::default();
        if let Some(e) = self
            .write_cuts(|_, s| s == Signal::Exemplars, &mut report)
            .await
        {
            return Err(e);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Forgets the oldest cuts once every head in them is committed.
    fn drop_committed_cuts(&self) {
        let mut state = self.state.write();
        while state.frozen.first().is_some_and(Frozen::is_done) {
            state.frozen.remove(0);
        }
    }

    /// Freezes the head at the current WAL position (step 1) and returns
    /// that position.
    async fn cut_head(&self) -> WalSeq {
        let _cut = self.cut.write().await;
        let mut f = Frozen::at(WalSeq(self.applied.load(Ordering::Acquire)));
        f.heads = self
            .head
            .freeze()
            .into_iter()
            .map(|h| (h.tenant().clone(), h))
            .collect();
        f.logs = self
            .logs
            .freeze()
            .into_iter()
            .map(|h| (h.tenant().clone(), h))
            .collect();
        // Under the cut's lock no write is between its WAL append and its
        // apply: what is pending is exactly what the records up to `seq`
        // stored.
        f.exemplars = pending_parts(self.exemplars.take_pending());
        *self.last_cut.lock() = Instant::now();
        let seq = f.seq;
        self.push_cut_taking_histograms(f, None);
        self.announce(|| HeadEvent::Cut { seq, tenant: None });
        seq
    }

    pub(super) fn tables_of(
        &self,
        signal: Signal,
    ) -> &Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<MetricsTable>>>> {
        match signal {
            Signal::Metrics => &self.tables,
            Signal::Logs => &self.log_tables,
            Signal::Exemplars => &self.exemplar_tables,
            Signal::Histograms => &self.histogram_tables,
        }
    }

    /// `tenant`'s table of `signal`, opened (or created) once.
    async fn table(
        &self,
        tenant: &TenantId,
        signal: Signal,
    ) -> Result<Arc<tokio::sync::Mutex<MetricsTable>>, StorageError> {
        if let Some(t) = self.tables_of(signal).lock().get(tenant) {
            return Ok(Arc::clone(t));
        }
        let mut table = MetricsTable::open_or_create_signal(&self.store, tenant, signal).await?;
        table.set_wal_app_id(self.wal_app_id());
        Ok(Arc::clone(
            self.tables_of(signal)
                .lock()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(table))),
        ))
    }

    /// Steps 2–4 for one tenant's frozen head of one signal: each signal
    /// has its own table and WAL position, under the same protocol.
    #[instrument(skip_all, fields(tenant = %tenant, seq = %seq))]
    async fn flush_tenant(
        &self,
        seq: WalSeq,
        tenant: &TenantId,
        head: FrozenHead<'_>,
        report: &mut FlushReport,
    ) -> Result<(), StorageError> {
        let signal = head.signal();
        let table = self.table(tenant, signal).await?;
        let mut table = table.lock().await;
        let files = match head {
            FrozenHead::Samples(h) => {
                // A day whose stored files are in series-id order (written
                // before label order) keeps it: a day merges in one order.
                // The published files (what queries see, kept as the
                // table's log changes) answer without reading the log:
                // id-ordered files only ever leave by retention.
                let id_days = self
                    .state
                    .read()
                    .files
                    .get(tenant)
                    .into_iter()
                    .flat_map(|files| files.iter())
                    .filter(|f| f.series_order == crate::SeriesOrder::Id)
                    .map(|f| f.path.day)
                    .collect();
                write_head(h, self.store.store(), table.root(), &id_days).await?
            }
            FrozenHead::Logs(l) => write_logs(l, self.store.store(), table.root()).await?,
            FrozenHead::Exemplars(rows) => {
                crate::exemplar_files::write_exemplars(
                    rows.to_vec(),
                    self.store.store(),
                    table.root(),
                    crate::FileLevel::Flush,
                )
                .await?
            }
            FrozenHead::Histograms(rows) => {
                crate::histogram_files::write_histograms(
                    rows.to_vec(),
                    self.store.store(),
                    table.root(),
                    crate::FileLevel::Flush,
                )
                .await?
            }
        };
        if self.failpoint == Some(FailPoint::Uploaded) {
            std::process::abort();
        }
        let committed = match self.sharing {
            None => {
                table
                    .commit(&files, &[], Some(seq), write_operation())
                    .await
            }
            Some(_) => {
                table
                    .commit_append_shared(
                        &files,
                        Some(seq),
                        write_operation(),
                        SHARED_COMMIT_ATTEMPTS,
                    )
                    .await
            }
        };
        if let Err(e) = committed {
            // Not in the log: the next try writes them again, so these
            // would only be orphans (vacuum would find them; best effort
            // now).
            for f in &files {
                let _ = object_store::ObjectStoreExt::delete(
                    self.store.store().as_ref(),
                    &f.path.under(table.root()),
                )
                .await;
            }
            return Err(e);
        }
        if self.failpoint == Some(FailPoint::Committed) {
            std::process::abort();
        }
        let live = table.files()?;
        let rows = files.iter().map(|f| f.stats.rows).sum::<u64>();
        match signal {
            Signal::Metrics => {
                report.tenants += 1;
                report.rows += rows;
            }
            Signal::Logs => report.log_rows += rows,
            Signal::Exemplars => report.exemplar_rows += rows,
            Signal::Histograms => report.histogram_rows += rows,
        }
        report.files += files.len();
        report.bytes += files.iter().map(|f| f.size).sum::<u64>();
        let mut state = self.state.write();
        if let Some(v) = table.version() {
            state.published.insert((tenant.clone(), signal), v);
        }
        state.files_mut(signal).insert(tenant.clone(), live.into());
        state.committed_mut(signal).insert(tenant.clone(), seq);
        for f in state.frozen.iter_mut().filter(|f| f.seq == seq) {
            f.remove(tenant, signal);
        }
        drop(state);
        self.announce(|| HeadEvent::Committed {
            tenant: tenant.clone(),
            signal,
            seq,
        });
        Ok(())
    }

    /// Makes `table`'s live files the ones queries of `tenant` read.
    pub(super) fn publish_files(
        &self,
        tenant: &TenantId,
        table: &MetricsTable,
    ) -> Result<(), StorageError> {
        let live = table.files()?;
        let mut state = self.state.write();
        if let Some(v) = table.version() {
            state.published.insert((tenant.clone(), table.signal()), v);
        }
        state
            .files_mut(table.signal())
            .insert(tenant.clone(), live.into());
        Ok(())
    }

    /// Runs flushes in the background until `stop` resolves: when due, and
    /// after a failure again with backoff (the WAL keeps the data safe
    /// meanwhile). `observe` sees every outcome, for metrics.
    pub async fn run_flusher(
        self: Arc<Self>,
        wal: Arc<dyn Wal>,
        config: StorageConfig,
        observe: impl Fn(&Result<FlushReport, StorageError>) + Send,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let tick = Duration::from_secs(1);
        let mut backoff = Duration::ZERO;
        // Log writers wait for this flusher's flushes (`room_for_logs`).
        self.log_flush_bytes
            .store(config.flush_max_log_bytes, Ordering::Relaxed);
        loop {
            let wait = tick.max(backoff);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A log head past its bound is cut at once (not after a
                // failure: the backoff stands).
                _ = self.flush_wanted.notified(), if backoff.is_zero() => {}
                _ = stop.changed() => {
                    self.log_flush_bytes.store(0, Ordering::Relaxed);
                    return;
                }
            }
            if *stop.borrow() {
                self.log_flush_bytes.store(0, Ordering::Relaxed);
                return;
            }
            if !self.flush_due(&config) {
                if self.exemplars.pending_count() >= EXEMPLAR_FLUSH_ROWS
                    && let Err(error) = self.flush_exemplars().await
                {
                    warn!(%error, "writing pending exemplars failed; the next flush retries");
                }
                continue;
            }
            let result = self.flush(wal.as_ref()).await;
            self.flush_failing.store(result.is_err(), Ordering::Relaxed);
            observe(&result);
            match result {
                Ok(_) => backoff = Duration::ZERO,
                Err(error) => {
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                    warn!(%error, retry_in_s = backoff.as_secs(), "flush failed; data stays in the head and the WAL");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;
    use std::time::Duration;

    use strata_head::Head;
    use strata_types::{LogBatch, SeriesSamples, WriteBatch};
    use strata_wal::MemoryWal;

    use super::*;
    use crate::{DataFile, ObjectStoreConfig, ObjectStoreHandle, SeriesOrder};

    const DAY_MS: i64 = 86_400_000;
    const T0: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z

    fn batch(tenant: &TenantId, ts: i64, value: f64) -> Arc<WriteBatch> {
        Arc::new(WriteBatch::from_series(
            tenant.clone(),
            (0..50)
                .map(|i| {
                    let instance = format!("10.0.0.{i}:8080");
                    let job = if i % 2 == 0 { "api" } else { "db" };
                    let pairs = [("__name__", "up"), ("instance", &instance), ("job", job)];
                    SeriesSamples::try_from_pairs(&pairs, &[(ts, value)]).unwrap()
                })
                .collect(),
        ))
    }

    /// Every file of the tenant's table.
    async fn files_of(storage: &Storage, tenant: &TenantId) -> Vec<DataFile> {
        let table = storage.table(tenant, Signal::Metrics).await.unwrap();
        let table = table.lock().await;
        table.files().unwrap()
    }

    /// Files written before label order stay readable and mergeable: a day
    /// that has them keeps series-id order through later flushes and its
    /// merge (files of one day merge in one order), while other days are
    /// written in label order.
    #[tokio::test]
    async fn a_day_stored_in_series_id_order_keeps_it_through_flushes_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::try_new("acme").unwrap();
        let old_day = crate::paths::day_of_ms(T0);
        {
            let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
            let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
            // A file of the first day as Strata wrote it before label order.
            let head = Head::new();
            head.append(&batch(&tenant, T0, 1.0)).unwrap();
            let th = head.tenant(&tenant).unwrap();
            let table = storage.table(&tenant, Signal::Metrics).await.unwrap();
            let mut table = table.lock().await;
            let files = write_head(
                &th,
                storage.store.store(),
                table.root(),
                &BTreeSet::from([old_day]),
            )
            .await
            .unwrap();
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].series_order, SeriesOrder::Id);
            table
                .commit(&files, &[], None, write_operation())
                .await
                .unwrap();
        }
        let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
        let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
        let wal = MemoryWal::new();
        // More of the first day (rewriting its sample), and the next day.
        for (ts, v) in [(T0, 2.0), (T0 + 60_000, 3.0), (T0 + DAY_MS, 4.0)] {
            storage.write(&wal, batch(&tenant, ts, v)).await.unwrap();
            storage.flush(&wal).await.unwrap();
        }
        let orders = |files: &[DataFile]| -> Vec<(chrono::NaiveDate, SeriesOrder)> {
            let mut v: Vec<_> = files.iter().map(|f| (f.path.day, f.series_order)).collect();
            v.sort_by_key(|x| (x.0, x.1 == SeriesOrder::Labels));
            v
        };
        let next_day = crate::paths::day_of_ms(T0 + DAY_MS);
        assert_eq!(
            orders(&files_of(&storage, &tenant).await),
            [
                (old_day, SeriesOrder::Id),
                (old_day, SeriesOrder::Id),
                (old_day, SeriesOrder::Id),
                (next_day, SeriesOrder::Labels),
            ]
        );
        storage
            .compact(T0 + 3 * DAY_MS, Duration::from_secs(600))
            .await
            .unwrap();
        let files = files_of(&storage, &tenant).await;
        assert_eq!(
            orders(&files),
            [(old_day, SeriesOrder::Id), (next_day, SeriesOrder::Labels)]
        );
        // The merged day holds each series once, in series-id order, the
        // newest write winning.
        let old = files.iter().find(|f| f.path.day == old_day).unwrap();
        assert_eq!((old.stats.rows, old.stats.series), (100, 50));
        let path = dir
            .path()
            .join("objects/tenants/acme/metrics")
            .join(old.path.relative());
        let mut rows = Vec::new();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for b in reader {
            let b = b.unwrap();
            use arrow::array::AsArray;
            let id = b
                .column(crate::col::SERIES_ID)
                .as_primitive::<arrow::datatypes::Int64Type>();
            let ts = b
                .column(crate::col::TIMESTAMP)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            let v = b
                .column(crate::col::VALUE)
                .as_primitive::<arrow::datatypes::Float64Type>();
            for i in 0..b.num_rows() {
                rows.push((id.value(i), ts.value(i), v.value(i)));
            }
        }
        assert!(rows.is_sorted_by_key(|r| (r.0, r.1)));
        let at_t0: Vec<f64> = rows
            .iter()
            .filter(|r| r.1 == T0 * 1000)
            .map(|r| r.2)
            .collect();
        assert_eq!(at_t0, vec![2.0; 50]);
        assert_eq!(storage.view(&tenant).files.len(), 2);
    }

    fn lines(tenant: &TenantId, n: usize) -> Arc<LogBatch> {
        let mut b = LogBatch::new(tenant.clone());
        let labels = strata_types::Labels::from_validated_stream(vec![strata_types::Label::new(
            "job", "wms",
        )]);
        let entries = (0..n)
            .map(|i| strata_types::LogEntry {
                timestamp_ns: T0 * 1_000_000 + i as i64,
                line: format!("line {i:0100}"),
                metadata: Vec::new(),
            })
            .collect();
        b.push(labels, entries);
        Arc::new(b)
    }

    /// A log head half full while the last cut is still being written:
    /// the next log write waits for that flush, then goes in (the lines
    /// in memory stay under one and a half bounds however fast senders
    /// push).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_log_head_waits_for_the_running_flush() {
        let storage = Arc::new(
            Storage::open(
                ObjectStoreHandle::in_memory().unwrap(),
                Arc::new(Head::new()),
            )
            .await
            .unwrap(),
        );
        let wal: Arc<MemoryWal> = Arc::new(MemoryWal::new());
        let tenant = TenantId::try_new("acme").unwrap();
        storage.log_flush_bytes.store(10_000, Ordering::Relaxed);
        // Past the bound with nothing being flushed: no wait.
        storage
            .write_logs(wal.as_ref(), lines(&tenant, 200))
            .await
            .unwrap();
        // A cut under way (taken, not yet written) and a full head again.
        storage.cut_head().await;
        storage
            .write_logs(wal.as_ref(), lines(&tenant, 200))
            .await
            .unwrap();
        let waiting = {
            let (storage, wal, tenant) = (Arc::clone(&storage), Arc::clone(&wal), tenant.clone());
            tokio::spawn(async move { storage.write_logs(wal.as_ref(), lines(&tenant, 1)).await })
        };
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "a write went in while the head was full and a flush ran"
        );
        // The flush writes the cut and the full head; the write goes in.
        storage.flush(wal.as_ref()).await.unwrap();
        let stats = waiting.await.unwrap().unwrap();
        assert_eq!(stats.entries, 1);
        storage.flush(wal.as_ref()).await.unwrap();
        let table = storage.table(&tenant, Signal::Logs).await.unwrap();
        let rows: u64 = table
            .lock()
            .await
            .files()
            .unwrap()
            .iter()
            .map(|f| f.stats.rows)
            .sum();
        assert_eq!(rows, 401, "every entry written once");
    }

    /// A logs day file, the form kept for years, compresses its lines at
    /// the storage's day level; the flush files it replaces stay cheap.
    #[tokio::test]
    async fn log_day_files_take_the_day_zstd_level() {
        let tenant = TenantId::try_new("acme").unwrap();
        let mut sizes = Vec::new();
        for level in [1, 17] {
            let storage = Storage::open(
                ObjectStoreHandle::in_memory().unwrap(),
                Arc::new(Head::new()),
            )
            .await
            .unwrap();
            storage.set_day_file_zstd_level(level);
            let wal = MemoryWal::new();
            // Access-log-like lines: repetitive, as logs are.
            let mut b = LogBatch::new(tenant.clone());
            let entries = (0..20_000u64)
                .map(|i| {
                    let x = i.wrapping_mul(2_654_435_761) % 100_003;
                    strata_types::LogEntry {
                        timestamp_ns: T0 * 1_000_000 + i as i64 * 1_000_000,
                        line: format!(
                            "10.0.{}.{} - - \"GET /web/dataset/call_kw/stock.picking/{} HTTP/1.1\" {} {} {}ms",
                            x % 7,
                            x % 251,
                            x,
                            [200, 200, 200, 404, 500][(x % 5) as usize],
                            x % 9_000,
                            x % 977
                        ),
                        metadata: Vec::new(),
                    }
                })
                .collect();
            b.push(
                strata_types::Labels::from_validated_stream(vec![strata_types::Label::new(
                    "job", "traefik",
                )]),
                entries,
            );
            storage.write_logs(&wal, Arc::new(b)).await.unwrap();
            storage.flush(&wal).await.unwrap();
            storage
                .compact(T0 + 3 * DAY_MS, Duration::from_secs(600))
                .await
                .unwrap();
            let table = storage.table(&tenant, Signal::Logs).await.unwrap();
            let files = table.lock().await.files().unwrap();
            assert_eq!(files.len(), 1, "{files:?}");
            assert_eq!(files[0].path.level, crate::FileLevel::Day);
            assert_eq!(files[0].stats.rows, 20_000);
            sizes.push(files[0].size);
        }
        assert!(
            sizes[1] * 10 < sizes[0] * 9,
            "level 17 stores at least 10% less than level 1: {sizes:?}"
        );
    }
}
