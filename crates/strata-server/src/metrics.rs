//! The server's own `/metrics`, in the OpenMetrics text format Prometheus
//! scrapes.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strata_head::Head;
use strata_storage::{CompactReport, FlushReport, RetentionReport, Storage, StorageError};
use strata_wal::Wal;

type Labels = Vec<(&'static str, String)>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub samples_ingested: Family<Labels, Counter>,
    pub ingest_skipped: Family<Labels, Counter>,
    /// Samples of HA replicas that were not elected, by tenant and cluster.
    pub ha_deduped: Family<Labels, Counter>,
    /// Zero samples added at a series' created (start) timestamp, by tenant.
    pub created_zeros: Family<Labels, Counter>,
    /// The ruler's work, by tenant (notifications also by result).
    pub rule_group_iterations: Family<Labels, Counter>,
    pub rule_group_iterations_missed: Family<Labels, Counter>,
    pub rule_evaluation_failures: Family<Labels, Counter>,
    pub rule_write_failures: Family<Labels, Counter>,
    pub rule_file_errors: Family<Labels, Counter>,
    pub rule_notifications: Family<Labels, Counter>,
    /// Requests refused by a per-tenant limit, by tenant and limit.
    pub rejected: Family<Labels, Counter>,
    /// Usage by tenant: request bytes ingested, queries (by api), their
    /// seconds and the samples PromQL loaded.
    pub ingested_bytes: Family<Labels, Counter>,
    pub log_entries_ingested: Family<Labels, Counter>,
    pub log_bytes_ingested: Family<Labels, Counter>,
    pub queries: Family<Labels, Counter>,
    pub query_seconds: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub query_samples: Family<Labels, Counter>,
    pub http_requests: Family<Labels, Counter>,
    pub http_duration: Family<Labels, Histogram>,
    pub wal_fsync: Histogram,
    head_series: Family<Labels, Gauge>,
    head_samples: Family<Labels, Gauge>,
    head_sample_bytes: Family<Labels, Gauge>,
    head_log_bytes: Family<Labels, Gauge>,
    head_log_text_bytes: Family<Labels, Gauge>,
    exemplars_held: Family<Labels, Gauge>,
    histograms_pending: Gauge,
    mirrored_ingesters: Gauge,
    pub flushes: Family<Labels, Counter>,
    pub flush_duration: Histogram,
    pub flushed_samples: Counter,
    pub flushed_bytes: Counter,
    flush_pending_cuts: Gauge,
    limit_ingesters: Gauge,
    pub compactions: Family<Labels, Counter>,
    pub retention_runs: Family<Labels, Counter>,
    pub retention_removed_files: Counter,
    pub vacuum_deleted_files: Counter,
    pub compacted_files: Counter,
    line_index_blocks: Family<Labels, Counter>,
    compaction_backlog: Gauge,
    compaction_backlog_rows: Gauge,
    compaction_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    table_files: Family<Labels, Gauge>,
    table_bytes: Family<Labels, Gauge>,
    table_samples: Family<Labels, Gauge>,
    wal_segments: Gauge,
    wal_bytes: Gauge,
    wal_records: Gauge,
    wal_fsyncs: Gauge,
    ready: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 100µs .. ~52s
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("strata");
        let samples_ingested = Family::<Labels, Counter>::default();
        registry.register(
            "ingested_samples",
            "Samples acknowledged (durable in the WAL), by tenant",
            samples_ingested.clone(),
        );
        let ingest_skipped = Family::<Labels, Counter>::default();
        registry.register(
            "ingest_skipped",
            "Items received but not stored: exemplars and histograms (not stored yet), metadata past its per-tenant bounds; by kind",
            ingest_skipped.clone(),
        );
        let ha_deduped = Family::<Labels, Counter>::default();
        registry.register(
            "ha_deduped_samples",
            "Samples written by an HA replica that was not elected, so not stored; by tenant and cluster",
            ha_deduped.clone(),
        );
        let created_zeros = Family::<Labels, Counter>::default();
        registry.register(
            "created_timestamp_zeros",
            "Zero samples added at cumulative series' created (start) timestamps, as Prometheus' created-timestamp zero ingestion does; by tenant",
            created_zeros.clone(),
        );
        let rule_family = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let rule_group_iterations = rule_family(
            &mut registry,
            "rule_group_iterations",
            "Rule group evaluations, by tenant",
        );
        let rule_group_iterations_missed = rule_family(
            &mut registry,
            "rule_group_iterations_missed",
            "Rule group evaluations skipped because the previous one overran its interval, by tenant",
        );
        let rule_evaluation_failures = rule_family(
            &mut registry,
            "rule_evaluation_failures",
            "Rule evaluations that failed (query error, limit, clashing labels), by tenant",
        );
        let rule_write_failures = rule_family(
            &mut registry,
            "rule_write_failures",
            "Rule group outputs that could not be written (limits, WAL), by tenant",
        );
        let rule_file_errors = rule_family(
            &mut registry,
            "rule_file_errors",
            "Rule files refused when (re)loaded (their previous groups kept), by tenant",
        );
        let rule_notifications = rule_family(
            &mut registry,
            "rule_notifications",
            "Alerts posted to Alertmanager, by tenant and result (sent, refused, unreachable)",
        );
        let rejected = Family::<Labels, Counter>::default();
        registry.register(
            "rejected",
            "Requests refused by a per-tenant limit, by tenant and reason (the limit's name)",
            rejected.clone(),
        );
        let ingested_bytes = Family::<Labels, Counter>::default();
        registry.register(
            "ingested_bytes",
            "Write request bytes accepted (as received, compressed), by tenant",
            ingested_bytes.clone(),
        );
        let log_entries_ingested = Family::<Labels, Counter>::default();
        registry.register(
            "ingested_log_entries",
            "Log entries acknowledged (durable in the WAL), by tenant",
            log_entries_ingested.clone(),
        );
        let log_bytes_ingested = Family::<Labels, Counter>::default();
        registry.register(
            "ingested_log_bytes",
            "Log line and structured-metadata bytes acknowledged, by tenant",
            log_bytes_ingested.clone(),
        );
        let queries = Family::<Labels, Counter>::default();
        registry.register(
            "queries",
            "Queries answered, by tenant and api",
            queries.clone(),
        );
        let query_seconds = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "query_seconds",
            "Wall time spent answering queries, by tenant",
            query_seconds.clone(),
        );
        let query_samples = Family::<Labels, Counter>::default();
        registry.register(
            "query_samples",
            "Samples PromQL queries loaded, by tenant",
            query_samples.clone(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status code",
            http_requests.clone(),
        );
        let http_duration =
            Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status code",
            http_duration.clone(),
        );
        let wal_fsync = latency_histogram();
        registry.register(
            "wal_fsync_duration_seconds",
            "Latency of each WAL group-commit fsync",
            wal_fsync.clone(),
        );
        let head_series = Family::<Labels, Gauge>::default();
        registry.register(
            "head_series",
            "Series in the head, by tenant",
            head_series.clone(),
        );
        let head_samples = Family::<Labels, Gauge>::default();
        registry.register(
            "head_samples",
            "Samples in the head, by tenant",
            head_samples.clone(),
        );
        let head_sample_bytes = Family::<Labels, Gauge>::default();
        registry.register(
            "head_sample_bytes",
            "Heap bytes holding head samples (compressed), by tenant",
            head_sample_bytes.clone(),
        );
        let head_log_bytes = Family::<Labels, Gauge>::default();
        registry.register(
            "head_log_bytes",
            "Log line and metadata bytes in the head (as sent), by tenant",
            head_log_bytes.clone(),
        );
        let head_log_text_bytes = Family::<Labels, Gauge>::default();
        registry.register(
            "head_log_text_bytes",
            "Heap bytes holding the head's log lines (full chunks LZ4-packed), by tenant",
            head_log_text_bytes.clone(),
        );
        let exemplars_held = Family::<Labels, Gauge>::default();
        registry.register(
            "exemplars_held",
            "Exemplars held in memory (recent ones; every one is also in the WAL or the exemplars table), by tenant",
            exemplars_held.clone(),
        );
        let histograms_pending = Gauge::default();
        registry.register(
            "histograms_pending",
            "Native-histogram samples held for the next flush (every one is also in the WAL), all tenants",
            histograms_pending.clone(),
        );
        let wal_segments = Gauge::default();
        registry.register(
            "wal_segments",
            "WAL segment files on disk",
            wal_segments.clone(),
        );
        let wal_bytes = Gauge::default();
        registry.register("wal_bytes", "Bytes in WAL segment files", wal_bytes.clone());
        let wal_records = Gauge::default();
        registry.register(
            "wal_records_appended",
            "WAL records appended since start",
            wal_records.clone(),
        );
        let wal_fsyncs = Gauge::default();
        registry.register(
            "wal_fsyncs",
            "WAL group commits since start",
            wal_fsyncs.clone(),
        );
        let ready = Gauge::default();
        registry.register("ready", "1 once WAL replay has finished", ready.clone());
        let build = Family::<Labels, Gauge>::default();
        registry.register("build_info", "Build information", build.clone());
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        let flushes = Family::<Labels, Counter>::default();
        registry.register(
            "flushes",
            "Head flushes to the object store, by result (ok, error)",
            flushes.clone(),
        );
        let flush_duration = latency_histogram();
        registry.register(
            "flush_duration_seconds",
            "Time to write and commit one flush",
            flush_duration.clone(),
        );
        let flushed_samples = Counter::default();
        registry.register(
            "flushed_samples",
            "Samples written to data files by flushes",
            flushed_samples.clone(),
        );
        let flushed_bytes = Counter::default();
        registry.register(
            "flushed_bytes",
            "Bytes of data files written by flushes",
            flushed_bytes.clone(),
        );
        let flush_pending_cuts = Gauge::default();
        registry.register(
            "flush_pending_cuts",
            "Frozen heads waiting for their commit (non-zero while the object store fails)",
            flush_pending_cuts.clone(),
        );
        let mirrored_ingesters = Gauge::default();
        registry.register(
            "mirrored_ingesters",
            "Ingesters whose heads this querier mirrors (subscribed and caught up)",
            mirrored_ingesters.clone(),
        );
        let limit_ingesters = Gauge::default();
        registry.register(
            "limit_ingesters",
            "Ingesters the tenants' rate limits are split across: this one and the peers it hears from",
            limit_ingesters.clone(),
        );
        let table_files = Family::<Labels, Gauge>::default();
        registry.register(
            "table_files",
            "Live data files in the tenant's metrics table",
            table_files.clone(),
        );
        let table_bytes = Family::<Labels, Gauge>::default();
        registry.register(
            "table_bytes",
            "Bytes of live data files in the tenant's metrics table",
            table_bytes.clone(),
        );
        let table_samples = Family::<Labels, Gauge>::default();
        registry.register(
            "table_samples",
            "Samples in live data files of the tenant's metrics table",
            table_samples.clone(),
        );
        let compactions = Family::<Labels, Counter>::default();
        registry.register(
            "compactions",
            "Compaction merges (and failed plannings), by result (ok, error)",
            compactions.clone(),
        );
        let compacted_files = Counter::default();
        registry.register(
            "compacted_files",
            "Data files merged away by compaction",
            compacted_files.clone(),
        );
        let line_index_blocks = Family::<Labels, Counter>::default();
        registry.register(
            "logs_line_index_blocks",
            "Blocks of log rows needle searches read and skipped by the files' line indexes, by outcome (read, skipped)",
            line_index_blocks.clone(),
        );
        let compaction_backlog = Gauge::default();
        registry.register(
            "compaction_backlog_files",
            "Data files due for compaction now, over all tenants",
            compaction_backlog.clone(),
        );
        let compaction_backlog_rows = Gauge::default();
        registry.register(
            "compaction_backlog_rows",
            "Rows (samples, log entries) in data files due for compaction now, over all tenants",
            compaction_backlog_rows.clone(),
        );
        let compaction_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "compaction_lag_seconds",
            "How long the oldest due hour merge has waited, over all tenants (writes are refused past storage.max_compaction_lag)",
            compaction_lag_seconds.clone(),
        );
        let retention_runs = Family::<Labels, Counter>::default();
        registry.register(
            "retention_runs",
            "Retention and vacuum passes, by result (ok, error)",
            retention_runs.clone(),
        );
        let retention_removed_files = Counter::default();
        registry.register(
            "retention_removed_files",
            "Data files removed from tables by retention",
            retention_removed_files.clone(),
        );
        let vacuum_deleted_files = Counter::default();
        registry.register(
            "vacuum_deleted_files",
            "Data files physically deleted by vacuum",
            vacuum_deleted_files.clone(),
        );
        Arc::new(Self {
            retention_runs,
            retention_removed_files,
            vacuum_deleted_files,
            compactions,
            compacted_files,
            line_index_blocks,
            compaction_backlog,
            compaction_backlog_rows,
            compaction_lag_seconds,
            flushes,
            flush_duration,
            flushed_samples,
            flushed_bytes,
            flush_pending_cuts,
            limit_ingesters,
            table_files,
            table_bytes,
            table_samples,
            registry,
            samples_ingested,
            ingest_skipped,
            ha_deduped,
            rule_group_iterations,
            rule_group_iterations_missed,
            rule_evaluation_failures,
            rule_write_failures,
            rule_file_errors,
            rule_notifications,
            created_zeros,
            rejected,
            ingested_bytes,
            log_entries_ingested,
            log_bytes_ingested,
            queries,
            query_seconds,
            query_samples,
            http_requests,
            http_duration,
            wal_fsync,
            head_series,
            head_samples,
            head_sample_bytes,
            head_log_bytes,
            head_log_text_bytes,
            exemplars_held,
            histograms_pending,
            mirrored_ingesters,
            wal_segments,
            wal_bytes,
            wal_records,
            wal_fsyncs,
            ready,
        })
    }

    pub fn observe_fsync(&self, d: Duration) {
        self.wal_fsync.observe(d.as_secs_f64());
    }

    pub fn set_ready(&self) {
        self.ready.set(1);
    }

    /// Records one flush's outcome.
    pub fn observe_flush(&self, result: &Result<FlushReport, StorageError>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.flushes
            .get_or_create(&vec![("result", outcome.to_owned())])
            .inc();
        if let Ok(r) = result {
            self.flush_duration.observe(r.elapsed.as_secs_f64());
            self.flushed_samples.inc_by(r.rows);
            self.flushed_bytes.inc_by(r.bytes);
        }
    }

    /// Records one retention pass's outcome.
    pub fn observe_retention(&self, result: &Result<RetentionReport, StorageError>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.retention_runs
            .get_or_create(&vec![("result", outcome.to_owned())])
            .inc();
        if let Ok(r) = result {
            self.retention_removed_files.inc_by(r.files_removed as u64);
            self.vacuum_deleted_files.inc_by(r.files_deleted as u64);
        }
    }

    /// Records one compaction merge's outcome.
    pub fn observe_compaction(&self, result: &Result<CompactReport, StorageError>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.compactions
            .get_or_create(&vec![("result", outcome.to_owned())])
            .inc();
        if let Ok(r) = result {
            self.compacted_files.inc_by(r.files_in as u64);
        }
    }

    /// Sets the count of ingesters the rate limits are split across.
    pub fn set_limit_ingesters(&self, n: usize) {
        self.limit_ingesters.set(n as i64);
    }

    /// Sets the line index counters to the query engine's.
    pub fn set_line_index_blocks(&self, read: u64, skipped: u64) {
        for (outcome, n) in [("read", read), ("skipped", skipped)] {
            self.line_index_blocks
                .get_or_create(&vec![("outcome", outcome.to_owned())])
                .inner()
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Refreshes the gauges read from the head, tables and WAL, then encodes.
    pub fn render(
        &self,
        storage: &Storage,
        wal: Option<&dyn Wal>,
        compaction_delay: Duration,
    ) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let backlog = storage.compaction_backlog_of(now, compaction_delay);
        self.compaction_backlog.set(backlog.files as i64);
        self.compaction_backlog_rows
            .set(i64::try_from(backlog.rows).unwrap_or(i64::MAX));
        self.compaction_lag_seconds
            .set(backlog.hour_lag.as_secs_f64());
        let head: &Head = storage.head();
        // Tenants whose head was just flushed must not keep stale values.
        self.head_series.clear();
        self.head_samples.clear();
        self.head_sample_bytes.clear();
        self.head_log_bytes.clear();
        self.head_log_text_bytes.clear();
        self.exemplars_held.clear();
        for tenant in storage.exemplars().tenants() {
            let held = storage.exemplars().held(&tenant);
            self.exemplars_held
                .get_or_create(&vec![("tenant", tenant.to_string())])
                .set(i64::try_from(held).unwrap_or(i64::MAX));
        }
        self.histograms_pending
            .set(i64::try_from(storage.histograms_pending()).unwrap_or(i64::MAX));
        self.mirrored_ingesters
            .set(i64::try_from(storage.mirrored()).unwrap_or(i64::MAX));
        for (tenant, files, bytes, rows) in storage.table_stats() {
            let labels = vec![("tenant", tenant.to_string())];
            self.table_files.get_or_create(&labels).set(files as i64);
            self.table_bytes.get_or_create(&labels).set(bytes as i64);
            self.table_samples.get_or_create(&labels).set(rows as i64);
        }
        self.flush_pending_cuts.set(storage.pending_cuts() as i64);
        for tenant in head.tenants() {
            if let Some(t) = head.tenant(&tenant) {
                let labels = vec![("tenant", tenant.to_string())];
                self.head_series
                    .get_or_create(&labels)
                    .set(t.series_count() as i64);
                let samples = t.sample_stats();
                self.head_samples
                    .get_or_create(&labels)
                    .set(samples.samples as i64);
                self.head_sample_bytes
                    .get_or_create(&labels)
                    .set(samples.bytes as i64);
            }
        }
        let logs = storage.logs();
        for tenant in logs.tenants() {
            if let Some(t) = logs.tenant(&tenant) {
                let labels = vec![("tenant", tenant.to_string())];
                self.head_log_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(t.bytes()).unwrap_or(i64::MAX));
                self.head_log_text_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(t.text_bytes_held()).unwrap_or(i64::MAX));
            }
        }
        if let Some(wal) = wal {
            let s = wal.stats();
            self.wal_segments.set(s.segments as i64);
            self.wal_bytes.set(s.bytes as i64);
            self.wal_records.set(s.records_appended as i64);
            self.wal_fsyncs.set(s.fsyncs as i64);
        }
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
