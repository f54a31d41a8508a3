//! Compaction and retention, driven for every tenant: one pass on demand
//! (`strata compact`, `strata retention`, tests) or in the background
//! every interval. The merges themselves are `compact.rs`,
//! `logs_compact.rs` and `retention.rs`; this is their schedule and their
//! commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path;
use strata_types::TenantId;
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use super::{CompactReport, Storage, StorageConfig, every};
use crate::compact;
use crate::paths::{FileLevel, Signal};
use crate::table::{compact_operation, retention_operation};
use crate::{DataFile, MetricsTable, RetentionConfig, RetentionReport, StorageError};

/// One merge to do, with what committing it needs.
struct Planned {
    tenant: TenantId,
    table: Arc<tokio::sync::Mutex<MetricsTable>>,
    root: Path,
    signal: Signal,
    job: compact::CompactionJob,
    started: Instant,
}

/// What a merge task gives back: the file it wrote, and its counts.
type Merged = Result<(DataFile, compact::MergeStats), StorageError>;

/// What waits for compaction (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompactionBacklog {
    /// Files that due merges would fold.
    pub files: usize,
    /// Their rows.
    pub rows: u64,
    /// How long the oldest due hour merge has waited.
    pub hour_lag: Duration,
}

/// Aborts a merge task when what waits for it is dropped (the compactor
/// stopping): a dropped `JoinHandle` would let it run on unobserved.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn log_compacted(report: &CompactReport) {
    info!(
        jobs = report.jobs,
        files_in = report.files_in,
        rows_in = report.rows_in,
        rows_out = report.rows_out,
        bytes_in = report.bytes_in,
        bytes_out = report.bytes_out,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "compacted"
    );
}

impl Storage {
    /// How many merges run at once (each uses up to a core), and on which
    /// runtime (the server's lower-priority one, so ingest and queries
    /// come first); `None` is the caller's. One merge at a time on the
    /// caller's runtime until set.
    pub fn set_compaction(&self, workers: usize, runtime: Option<tokio::runtime::Handle>) {
        *self.compaction.lock() = (workers.max(1), runtime);
    }

    /// The zstd level of day files' values (1-22; default 17: the
    /// smallest files, about 0.9 µs of a core per row to write). Lower
    /// levels write day files faster for more bytes at rest.
    pub fn set_day_file_zstd_level(&self, level: i32) {
        self.day_file_zstd
            .store(level.clamp(1, 22), std::sync::atomic::Ordering::Relaxed);
    }

    /// Rows per data page of day files written from now on (clamped to
    /// 1024..=1048576; default 1048576: the fewest bytes). Smaller pages
    /// answer reads of a few series over past days faster, for more
    /// bytes at rest.
    pub fn set_day_file_page_rows(&self, rows: usize) {
        self.day_file_page_rows.store(
            rows.clamp(1024, crate::writer::DEFAULT_DAY_FILE_PAGE_ROWS),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn compaction_settings(&self) -> (usize, Option<tokio::runtime::Handle>) {
        self.compaction.lock().clone()
    }

    /// Runs every compaction due at `now_ms` for every tenant. Each job is
    /// one commit; a failed job leaves the table as it was.
    pub async fn compact(
        &self,
        now_ms: i64,
        delay: Duration,
    ) -> Result<CompactReport, StorageError> {
        self.compact_with_progress(now_ms, delay, &|_, _| {}).await
    }

    /// [`Storage::compact`], calling `progress(jobs done, of)` as each job
    /// commits (for the CLI's progress bar).
    ///
    /// Every tenant's jobs are planned first, then merged up to
    /// [`Storage::set_compaction`]'s `workers` at a time, each a task on the
    /// maintenance runtime (a merge is CPU work: it gets a thread of its
    /// own); commits happen here, one at a time, under their table's lock.
    #[instrument(skip_all)]
    pub async fn compact_with_progress(
        &self,
        now_ms: i64,
        delay: Duration,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<CompactReport, StorageError> {
        let started = Instant::now();
        let mut report = CompactReport::default();
        let planned = self.plan_compactions(now_ms, delay).await?;
        let total = planned.len();
        progress(0, total);
        let (workers, runtime) = self.compaction_settings();
        let runtime = runtime.unwrap_or_else(tokio::runtime::Handle::current);
        let mut merges = futures::stream::iter(planned.into_iter().map(|p| {
            let merged = self.spawn_merge(&runtime, &p);
            async move { (p, merged.await) }
        }))
        .buffer_unordered(workers.max(1));
        let mut done = 0;
        while let Some((p, merged)) = merges.next().await {
            let merged = merged.map_err(|e| StorageError::Corrupt {
                message: format!("a compaction merge of tenant {} stopped: {e}", p.tenant),
            })?;
            self.commit_merge(p, merged?, &mut report).await?;
            done += 1;
            progress(done, total);
        }
        report.elapsed = started.elapsed();
        if report.jobs > 0 {
            log_compacted(&report);
        }
        Ok(report)
    }

    /// Every tenant's due merges, planned without holding a table during
    /// the merges (flushes of its tenant commit meanwhile; the lock is
    /// taken again for each commit).
    async fn plan_compactions(
        &self,
        now_ms: i64,
        delay: Duration,
    ) -> Result<Vec<Planned>, StorageError> {
        let mut tables: Vec<(TenantId, Arc<tokio::sync::Mutex<MetricsTable>>)> = self
            .tables
            .lock()
            .iter()
            .map(|(t, table)| (t.clone(), Arc::clone(table)))
            .collect();
        for others in [
            &self.log_tables,
            &self.exemplar_tables,
            &self.histogram_tables,
        ] {
            tables.extend(
                others
                    .lock()
                    .iter()
                    .map(|(t, table)| (t.clone(), Arc::clone(table))),
            );
        }
        let mut planned = Vec::new();
        for (tenant, table) in tables {
            if !self.owns(&tenant) {
                continue;
            }
            let t = table.lock().await;
            for job in compact::plan(&t.files()?, now_ms, delay.as_millis() as i64) {
                planned.push(Planned {
                    tenant: tenant.clone(),
                    table: Arc::clone(&table),
                    root: t.root().clone(),
                    signal: t.signal(),
                    job,
                    started: Instant::now(),
                });
            }
        }
        Ok(planned)
    }

    /// Starts `p`'s merge as a task on `runtime`.
    fn spawn_merge(
        &self,
        runtime: &tokio::runtime::Handle,
        p: &Planned,
    ) -> tokio::task::JoinHandle<Merged> {
        let store = Arc::clone(self.store.store());
        let (root, signal, job) = (p.root.clone(), p.signal, p.job.clone());
        let day = crate::writer::ValueLayout {
            zstd: self
                .day_file_zstd
                .load(std::sync::atomic::Ordering::Relaxed),
            page_rows: self
                .day_file_page_rows
                .load(std::sync::atomic::Ordering::Relaxed),
        };
        runtime.spawn(async move {
            match signal {
                Signal::Metrics => compact::merge(&store, &root, &job, day).await,
                Signal::Logs => {
                    crate::logs_compact::merge_logs(&store, &root, &job, day.zstd).await
                }
                Signal::Exemplars => crate::exemplar_files::merge(&store, &root, &job).await,
                Signal::Histograms => crate::histogram_files::merge(&store, &root, &job).await,
            }
        })
    }

    /// Commits a finished merge (inputs removed, output added, one Delta
    /// commit) and adds it to `report`; a merge whose inputs changed
    /// meanwhile is dropped.
    async fn commit_merge(
        &self,
        p: Planned,
        (file, stats): (DataFile, compact::MergeStats),
        report: &mut CompactReport,
    ) -> Result<(), StorageError> {
        let Planned {
            tenant, table, job, ..
        } = p;
        let mut table = table.lock().await;
        if self.sharing.is_some() {
            // Another compactor may have merged (or retention removed)
            // the inputs since they were planned.
            table.refresh().await?;
        }
        let live = table.files()?;
        if !job.inputs.iter().all(|f| live.contains(f)) {
            // Retention (or another compactor) changed the window
            // meanwhile: drop the merged file, vacuum deletes it.
            warn!(%tenant, day = %job.day, "compaction inputs changed; merge discarded");
            return Ok(());
        }
        table
            .commit(
                std::slice::from_ref(&file),
                &job.inputs,
                None,
                compact_operation(),
            )
            .await?;
        report.jobs += 1;
        report.files_in += job.inputs.len();
        report.rows_in += stats.rows_in;
        report.rows_out += stats.rows_out;
        report.bytes_in += job.inputs.iter().map(|f| f.size).sum::<u64>();
        report.bytes_out += file.size;
        self.publish_files(&tenant, &table)
    }

    /// Files waiting for compaction at `now_ms`, over all tenants.
    pub fn compaction_backlog(&self, now_ms: i64, delay: Duration) -> usize {
        self.compaction_backlog_of(now_ms, delay).files
    }

    /// What waits for compaction at `now_ms`, over all tenants.
    pub fn compaction_backlog_of(&self, now_ms: i64, delay: Duration) -> CompactionBacklog {
        let state = self.state.read();
        let mut backlog = CompactionBacklog::default();
        for files in state
            .files
            .values()
            .chain(state.log_files.values())
            .chain(state.exemplar_files.values())
            .chain(state.histogram_files.values())
        {
            for job in compact::plan(files, now_ms, delay.as_millis() as i64) {
                backlog.files += job.inputs.len();
                backlog.rows += job.inputs.iter().map(|f| f.stats.rows).sum::<u64>();
                if let Some(lag) = job.hour_lag_ms(now_ms) {
                    backlog.hour_lag = backlog.hour_lag.max(ms(lag));
                }
            }
        }
        backlog
    }

    /// Recomputes how late each table's hour merges are at `now_ms` (what
    /// [`Storage::compaction_lag`] answers until the next refresh); the
    /// background compactor calls it every pass and after every commit.
    pub fn refresh_compaction_lag(&self, now_ms: i64, delay: Duration) {
        let mut lags = HashMap::new();
        {
            let state = self.state.read();
            let mut failing = self.compaction_failing.lock();
            // Forget files no table holds any more.
            failing.retain(|id| {
                state
                    .files
                    .values()
                    .chain(state.log_files.values())
                    .chain(state.exemplar_files.values())
                    .chain(state.histogram_files.values())
                    .any(|files| files.iter().any(|f| f.path.id == *id))
            });
            for (signal, tables) in [
                (Signal::Metrics, &state.files),
                (Signal::Logs, &state.log_files),
                (Signal::Exemplars, &state.exemplar_files),
                (Signal::Histograms, &state.histogram_files),
            ] {
                for (tenant, files) in tables {
                    let lag = compact::plan(files, now_ms, delay.as_millis() as i64)
                        .iter()
                        .filter(|job| !job.inputs.iter().any(|f| failing.contains(&f.path.id)))
                        .filter_map(|job| job.hour_lag_ms(now_ms))
                        .max();
                    if let Some(lag) = lag.filter(|&l| l > 0) {
                        lags.insert((tenant.clone(), signal), ms(lag));
                    }
                }
            }
        }
        *self.compaction_lags.write() = lags;
    }

    /// How long the oldest due hour merge of `tenant`'s `signal` table had
    /// waited at the last refresh (`None`: none was waiting). Writes are
    /// refused while it is over the configured bound: the flush files
    /// those merges would fold accumulate otherwise, and every query reads
    /// them all. A merge that fails is not "behind" but broken: refusing
    /// writes would not mend it, so merges holding a file whose last merge
    /// failed count no lag (the failure is logged and counted in
    /// `strata_compactions_total{result="error"}`).
    pub fn compaction_lag(&self, tenant: &TenantId, signal: Signal) -> Option<Duration> {
        self.compaction_lags
            .read()
            .get(&(tenant.clone(), signal))
            .copied()
    }

    /// Runs compactions in the background until `stop` resolves: every
    /// interval (and whenever a merge finishes) the due merges are planned
    /// and started on free workers ([`compact::pick`]: hour merges first, a
    /// worker kept from day merges), each committed as it finishes, so a
    /// day merge running for hours holds back no hour merge. Merges still
    /// running at the stop are abandoned (nothing of theirs is committed;
    /// vacuum deletes what they wrote).
    pub async fn run_compactor(
        self: Arc<Self>,
        config: StorageConfig,
        observe: impl Fn(&Result<CompactReport, StorageError>) + Send,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let (workers, runtime) = self.compaction_settings();
        let runtime = runtime.unwrap_or_else(tokio::runtime::Handle::current);
        let delay = config.compaction_delay;
        let mut running: JoinSet<(Planned, Result<Merged, tokio::task::JoinError>)> =
            JoinSet::new();
        let mut busy: HashSet<Uuid> = HashSet::new();
        // Inputs of merges that failed since the last tick: retried at the
        // next one, not as soon as another merge finishes.
        let mut failed: HashSet<Uuid> = HashSet::new();
        let mut running_days = 0;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + config.compaction_interval,
            config.compaction_interval,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    failed.clear();
                    // Others commit to the tables (ingesters' flushes,
                    // other compactors): plan on their latest files. A
                    // merge planned on stale files fails its commit as a
                    // conflict and is retried after the next re-read.
                    if self.sharing.is_some()
                        && let Err(error) = self.refresh_tables_of(|t| self.owns(t)).await
                    {
                        warn!(%error, "re-reading the tables before compaction failed");
                    }
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    let (p, merged) = match done {
                        Ok(done) => done,
                        Err(join) => {
                            // The wrapper below cannot panic; a cancelled
                            // task only happens at shutdown.
                            warn!(error = %join, "a compaction task ended abnormally");
                            continue;
                        }
                    };
                    for f in &p.job.inputs {
                        busy.remove(&f.path.id);
                    }
                    running_days -= usize::from(p.job.level == FileLevel::Day);
                    let started = p.started;
                    let tenant = p.tenant.clone();
                    let inputs: Vec<Uuid> = p.job.inputs.iter().map(|f| f.path.id).collect();
                    let mut report = CompactReport::default();
                    let result = match merged {
                        Ok(Ok(merged)) => self.commit_merge(p, merged, &mut report).await,
                        Ok(Err(e)) => Err(e),
                        Err(join) => Err(StorageError::Corrupt {
                            message: format!("a compaction merge of tenant {tenant} stopped: {join}"),
                        }),
                    };
                    report.elapsed = started.elapsed();
                    match &result {
                        Ok(()) => {
                            if report.jobs > 0 {
                                log_compacted(&report);
                            }
                            let mut failing = self.compaction_failing.lock();
                            for id in &inputs {
                                failing.remove(id);
                            }
                        }
                        Err(error) => {
                            warn!(%tenant, %error,
                                "compaction failed; the table is unchanged and the next pass retries");
                            self.compaction_failing.lock().extend(inputs.iter().copied());
                            failed.extend(inputs);
                        }
                    }
                    observe(&result.map(|()| report));
                }
                _ = stop.changed() => {
                    running.abort_all();
                    return;
                }
            }
            let now = chrono::Utc::now().timestamp_millis();
            self.refresh_compaction_lag(now, delay);
            let planned = match self.plan_compactions(now, delay).await {
                Ok(planned) => planned,
                Err(error) => {
                    warn!(%error, "compaction planning failed; the next pass retries");
                    observe(&Err(error));
                    continue;
                }
            };
            let jobs: Vec<compact::CompactionJob> = planned.iter().map(|p| p.job.clone()).collect();
            let picked = compact::pick(
                &jobs,
                |f| busy.contains(&f.path.id) || failed.contains(&f.path.id),
                running.len(),
                running_days,
                workers,
            );
            let mut planned: Vec<Option<Planned>> = planned.into_iter().map(Some).collect();
            for i in picked {
                let Some(p) = planned.get_mut(i).and_then(Option::take) else {
                    continue;
                };
                busy.extend(p.job.inputs.iter().map(|f| f.path.id));
                running_days += usize::from(p.job.level == FileLevel::Day);
                let merge = self.spawn_merge(&runtime, &p);
                let abort = AbortOnDrop(merge.abort_handle());
                running.spawn(async move {
                    let _abort = abort;
                    (p, merge.await)
                });
            }
        }
    }

    /// Removes day partitions past each tenant's retention period (one
    /// commit per tenant), then vacuums files out of the table for longer
    /// than the grace period. Tenants under legal hold are left alone.
    #[instrument(skip_all)]
    pub async fn apply_retention(
        &self,
        now_ms: i64,
        config: &RetentionConfig,
    ) -> Result<RetentionReport, StorageError> {
        let mut report = RetentionReport::default();
        // Exemplars past a tenant's period leave the store this process
        // holds (the store is not in the tables).
        for tenant in self.exemplars().tenants() {
            if let Some(period) = config.period_for(tenant.as_str())
                && !config.legal_hold(tenant.as_str())
            {
                let before = now_ms.saturating_sub(period.as_millis() as i64);
                self.exemplars().drop_before(&tenant, before);
            }
        }
        if self.sharing.is_some() {
            // Others commit to the tables: decide on their latest files.
            self.refresh_tables_of(|t| self.owns(t)).await?;
        }
        let mut tenants: Vec<TenantId> = self.tables.lock().keys().cloned().collect();
        tenants.extend(self.log_tables.lock().keys().cloned());
        tenants.extend(self.exemplar_tables.lock().keys().cloned());
        tenants.extend(self.histogram_tables.lock().keys().cloned());
        tenants.sort();
        tenants.dedup();
        tenants.retain(|t| self.owns(t));
        for tenant in tenants {
            if config.legal_hold(tenant.as_str()) {
                report.tenants_held += 1;
                continue;
            }
            // The same period for both signals: audit keeps metrics and
            // logs alike.
            let tables = [
                self.tables.lock().get(&tenant).cloned(),
                self.log_tables.lock().get(&tenant).cloned(),
                self.exemplar_tables.lock().get(&tenant).cloned(),
                self.histogram_tables.lock().get(&tenant).cloned(),
            ];
            for table in tables.into_iter().flatten() {
                let mut table = table.lock().await;
                if let Some(period) = config.period_for(tenant.as_str()) {
                    let keep_from =
                        crate::paths::day_of_ms(now_ms.saturating_sub(period.as_millis() as i64));
                    let expired: Vec<DataFile> = table
                        .files()?
                        .into_iter()
                        .filter(|f| f.path.day < keep_from)
                        .collect();
                    if !expired.is_empty() {
                        let cutoff = keep_from.format("%Y-%m-%d").to_string();
                        table
                            .commit(&[], &expired, None, retention_operation(&cutoff))
                            .await?;
                        report.files_removed += expired.len();
                        report.rows_removed += expired.iter().map(|f| f.stats.rows).sum::<u64>();
                        self.publish_files(&tenant, &table)?;
                        info!(%tenant, table = table.signal().as_str(), files = expired.len(), before = %cutoff, "retention removed day partitions");
                    }
                }
                let deleted = table.vacuum(config.vacuum_grace, false).await?;
                report.files_deleted += deleted.len();
            }
        }
        Ok(report)
    }

    /// Runs retention and vacuum in the background until `stop` resolves.
    pub async fn run_retention(
        self: Arc<Self>,
        config: RetentionConfig,
        observe: impl Fn(&Result<RetentionReport, StorageError>) + Send,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        every(config.interval, stop, || async {
            let result = self
                .apply_retention(chrono::Utc::now().timestamp_millis(), &config)
                .await;
            if let Err(error) = &result {
                warn!(%error, "retention failed; the next pass retries");
            }
            observe(&result);
        })
        .await;
    }
}
