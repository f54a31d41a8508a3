//! Compaction and retention, driven for every tenant: one pass on demand
//! (`strata compact`, `strata retention`, tests) or in the background
//! every interval. The merges themselves are `compact.rs`,
//! `logs_compact.rs` and `retention.rs`; this is their schedule and their
//! commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path;
use strata_types::TenantId;
use tracing::{info, instrument, warn};

use super::{CompactReport, Storage, StorageConfig, every};
use crate::compact;
use crate::paths::Signal;
use crate::table::{compact_operation, retention_operation};
use crate::{DataFile, MetricsTable, RetentionConfig, RetentionReport, StorageError};

/// One merge to do, with what committing it needs.
struct Planned {
    tenant: TenantId,
    table: Arc<tokio::sync::Mutex<MetricsTable>>,
    root: Path,
    signal: Signal,
    job: compact::CompactionJob,
}

impl Storage {
    /// How many merges run at once (each uses up to a core), and on which
    /// runtime (the server's lower-priority one, so ingest and queries
    /// come first); `None` is the caller's. One merge at a time on the
    /// caller's runtime until set.
    pub fn set_compaction(&self, workers: usize, runtime: Option<tokio::runtime::Handle>) {
        *self.compaction.lock() = (workers.max(1), runtime);
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
        let mut tables: Vec<(TenantId, Arc<tokio::sync::Mutex<MetricsTable>>)> = self
            .tables
            .lock()
            .iter()
            .map(|(t, table)| (t.clone(), Arc::clone(table)))
            .collect();
        tables.extend(
            self.log_tables
                .lock()
                .iter()
                .map(|(t, table)| (t.clone(), Arc::clone(table))),
        );
        // Plan without holding a table during the merges, so flushes of
        // its tenant commit meanwhile; the lock is taken for each commit.
        let mut planned = Vec::new();
        for (tenant, table) in tables {
            let t = table.lock().await;
            for job in compact::plan(&t.files()?, now_ms, delay.as_millis() as i64) {
                planned.push(Planned {
                    tenant: tenant.clone(),
                    table: Arc::clone(&table),
                    root: t.root().clone(),
                    signal: t.signal(),
                    job,
                });
            }
        }
        let total = planned.len();
        progress(0, total);
        let (workers, runtime) = self.compaction_settings();
        let runtime = runtime.unwrap_or_else(tokio::runtime::Handle::current);
        let store = Arc::clone(self.store.store());
        let mut merges = futures::stream::iter(planned.into_iter().map(|p| {
            let store = Arc::clone(&store);
            let (root, signal, job) = (p.root.clone(), p.signal, p.job.clone());
            let merged = runtime.spawn(async move {
                match signal {
                    Signal::Metrics => compact::merge(&store, &root, &job).await,
                    Signal::Logs => crate::logs_compact::merge_logs(&store, &root, &job).await,
                }
            });
            async move { (p, merged.await) }
        }))
        .buffer_unordered(workers.max(1));
        let mut done = 0;
        while let Some((p, merged)) = merges.next().await {
            let (file, stats) = merged.map_err(|e| StorageError::Corrupt {
                message: format!("a compaction merge of tenant {} stopped: {e}", p.tenant),
            })??;
            let Planned {
                tenant, table, job, ..
            } = p;
            let mut table = table.lock().await;
            let live = table.files()?;
            if !job.inputs.iter().all(|f| live.contains(f)) {
                // Retention (or another compactor) changed the window
                // meanwhile: drop the merged file, vacuum deletes it.
                warn!(%tenant, day = %job.day, "compaction inputs changed; merge discarded");
                continue;
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
            self.publish_files(&tenant, &table)?;
            done += 1;
            progress(done, total);
        }
        report.elapsed = started.elapsed();
        if report.jobs > 0 {
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
        Ok(report)
    }

    /// Files waiting for compaction at `now_ms`, over all tenants.
    pub fn compaction_backlog(&self, now_ms: i64, delay: Duration) -> usize {
        self.compaction_backlog_of(now_ms, delay).0
    }

    /// Files and rows waiting for compaction at `now_ms`, over all tenants.
    pub fn compaction_backlog_of(&self, now_ms: i64, delay: Duration) -> (usize, u64) {
        let state = self.state.read();
        let mut backlog = (0, 0);
        for files in state.files.values().chain(state.log_files.values()) {
            for job in compact::plan(files, now_ms, delay.as_millis() as i64) {
                backlog.0 += job.inputs.len();
                backlog.1 += job.inputs.iter().map(|f| f.stats.rows).sum::<u64>();
            }
        }
        backlog
    }

    /// Runs compactions in the background until `stop` resolves.
    pub async fn run_compactor(
        self: Arc<Self>,
        config: StorageConfig,
        observe: impl Fn(&Result<CompactReport, StorageError>) + Send,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        every(config.compaction_interval, stop, || async {
            let now = chrono::Utc::now().timestamp_millis();
            let result = self.compact(now, config.compaction_delay).await;
            if let Err(error) = &result {
                warn!(%error, "compaction failed; the table is unchanged and the next pass retries");
            }
            observe(&result);
        })
        .await;
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
        let mut tenants: Vec<TenantId> = self.tables.lock().keys().cloned().collect();
        tenants.extend(self.log_tables.lock().keys().cloned());
        tenants.sort();
        tenants.dedup();
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
