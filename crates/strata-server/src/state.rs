//! Shared server state.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use strata_head::Head;
use strata_query::QueryEngine;
use strata_storage::Storage;
use strata_wal::{SegmentedWal, Wal, WalConfig, WalError, WalRecord};
use tracing::{info, warn};

use crate::ServeError;
use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub config: ServerConfig,
    pub storage: Arc<Storage>,
    /// The storage's head (a shortcut).
    pub head: Arc<Head>,
    pub query: QueryEngine,
    pub metrics: Arc<Metrics>,
    /// Tokens → tenant and roles (pass-through when auth is off).
    pub auth: crate::auth::Authenticator,
    /// Per-tenant limits and the state enforcing them.
    pub limits: Arc<crate::limits::Limits>,
    /// Query slots shared fairly between tenants.
    pub scheduler: Arc<crate::scheduler::FairScheduler>,
    /// Decoded log push bytes in flight, bounded.
    pub decoded: crate::decoded::DecodedBytes,
    wal: OnceLock<Arc<dyn Wal>>,
    /// Metric metadata per tenant (`/api/v1/metadata`).
    pub metadata: Arc<crate::metadata::MetadataStore>,
    /// The replica elected per tenant and HA cluster.
    pub ha: crate::ha::HaTracker,
    /// Every running rule group's last evaluated state (`/api/v1/rules`).
    pub rules: Arc<crate::ruler::Snapshots>,
    /// One log line per kind of skipped item, so the log says it once.
    pub(crate) skipped_logged: [AtomicBool; 2],
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ready", &self.wal.get().is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(config: ServerConfig, storage: Arc<Storage>) -> Arc<Self> {
        let auth = if config.auth.enabled {
            crate::auth::Authenticator::new(true, config.auth.tokens.clone(), config.auth.tokens_file.clone())
                .unwrap_or_else(|reason| {
                    // Validated at start; a file broken since then locks
                    // every API until it is fixed, rather than opening them.
                    tracing::error!(%reason, "auth tokens unreadable: refusing every request until fixed");
                    crate::auth::Authenticator::locked()
                })
        } else {
            crate::auth::Authenticator::disabled()
        };
        let limits = crate::limits::Limits::new(
            config.limits.tenant_defaults.clone(),
            config.limits.overrides_file.clone(),
        )
        .unwrap_or_else(|reason| {
            // Validated at start: a file broken since then leaves the defaults.
            tracing::error!(%reason, "limit overrides unreadable: using the defaults");
            crate::limits::Limits::with_defaults(config.limits.tenant_defaults.clone())
        });
        // Ingesters of a cluster count series over every ingester.
        let limits = if config.node.shares_limits() {
            let window =
                i64::try_from(config.limits.active_series_window.as_secs()).unwrap_or(i64::MAX);
            limits.shared((window / 4).clamp(1, 60))
        } else {
            limits
        };
        let limits = Arc::new(limits);
        let lookback = Arc::clone(&limits);
        let bounds = Arc::clone(&limits);
        storage.set_exemplar_bounds(Arc::new(move |t: &strata_types::TenantId| {
            let l = bounds.of(t);
            strata_head::ExemplarBounds {
                per_series: l.max_exemplars_per_series,
                total: l.max_exemplars,
            }
        }));
        let specs = config
            .slo
            .file
            .clone()
            .map(|f| (f, config.slo.evaluation_interval));
        let sql_memory = (
            usize::try_from(config.sql.max_memory.0).unwrap_or(usize::MAX),
            usize::try_from(config.sql.max_query_memory.0).unwrap_or(usize::MAX),
        );
        let query_timeout = config.promql.timeout;
        let config_window = config.limits.active_series_window;
        let metadata = Arc::new(crate::metadata::MetadataStore::new(config_window));
        let decoded = crate::decoded::DecodedBytes::new(
            config.limits.max_decoded_in_flight.0,
            config.limits.max_decoded_in_flight_per_tenant.0,
            config.limits.decoded_wait,
        );
        Arc::new(Self {
            auth,
            limits,
            decoded,
            scheduler: crate::scheduler::FairScheduler::new(
                config
                    .promql
                    .query_slots
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            ),
            config,
            query: QueryEngine::new(Arc::clone(&storage))
                .with_lookback_limit(move |tenant| Some(lookback.of(tenant).max_query_lookback))
                .with_memory_limits(sql_memory.0, sql_memory.1)
                .with_timeout(query_timeout)
                .with_session_extension(Arc::new(crate::sql_analytics::AnalyticsTables { specs }))
                .with_descriptions(Arc::clone(&metadata) as _),
            head: Arc::clone(storage.head()),
            storage,
            metrics: Metrics::new(),
            metadata,
            ha: crate::ha::HaTracker::new(),
            rules: Arc::default(),
            wal: OnceLock::new(),
            skipped_logged: Default::default(),
        })
    }

    /// State with an already-open WAL (tests plug in `MemoryWal`).
    pub fn with_wal(config: ServerConfig, storage: Arc<Storage>, wal: Arc<dyn Wal>) -> Arc<Self> {
        let state = Self::new(config, storage);
        let _ = state.wal.set(wal);
        state.metrics.set_ready();
        state
    }

    /// The tenant a request acts for, if its credentials allow `role`.
    pub fn tenant_for(
        &self,
        headers: &axum::http::HeaderMap,
        role: crate::auth::Role,
        shape: crate::error::Shape,
    ) -> Result<strata_types::TenantId, crate::error::ApiError> {
        let tenant =
            self.auth
                .authorize(headers, role, self.config.tenancy.require_tenant, shape)?;
        // The request's span (routes.rs `track`) names its tenant from here on.
        tracing::Span::current().record("tenant", tenant.as_str());
        Ok(tenant)
    }

    /// The PromQL engine under the server's limits, and `tenant`'s sample
    /// limit when one is given; `lookback`: the selector lookback.
    pub fn promql_engine(
        &self,
        tenant: Option<&strata_types::TenantId>,
        lookback: std::time::Duration,
    ) -> strata_query_lang::promql::Engine {
        let cfg = &self.config.promql;
        strata_query_lang::promql::Engine::new(strata_query_lang::promql::EngineConfig {
            lookback,
            max_samples: tenant.map_or(cfg.max_samples, |t| self.max_query_samples(t)),
            max_points: cfg.max_points,
            ..strata_query_lang::promql::EngineConfig::default()
        })
    }

    /// Most samples one PromQL query (or remote read) of `tenant` may
    /// load: `promql.max_samples`, lowered by the tenant's
    /// `max_query_samples` when that is set.
    pub fn max_query_samples(&self, tenant: &strata_types::TenantId) -> usize {
        let server = self.config.promql.max_samples;
        match self.limits.of(tenant).max_query_samples {
            0 => server,
            t => server.min(t),
        }
    }

    /// Counts a limit's refusal and turns it into the request's error.
    pub fn refused(
        &self,
        tenant: &strata_types::TenantId,
        r: crate::limits::Refusal,
        shape: crate::error::Shape,
    ) -> crate::error::ApiError {
        self.metrics
            .rejected
            .get_or_create(&vec![
                ("tenant", tenant.to_string()),
                ("reason", r.reason.to_owned()),
            ])
            .inc();
        self.query.usage().rejected(tenant, r.reason);
        crate::error::ApiError::new(r.kind, r.message, shape)
    }

    /// Flow control: refuses `tenant`'s writes of `signal` while one of
    /// its hour merges has waited longer than `storage.max_compaction_lag`
    /// (503; senders retry, and their queues hold the data meanwhile).
    pub fn check_compaction_lag(
        &self,
        tenant: &strata_types::TenantId,
        signal: strata_storage::Signal,
        shape: crate::error::Shape,
    ) -> Result<(), crate::error::ApiError> {
        let max = self.config.storage.max_compaction_lag;
        match self.storage.compaction_lag(tenant, signal) {
            Some(lag) if !max.is_zero() && lag > max => {
                let round = |d: std::time::Duration| {
                    humantime::format_duration(std::time::Duration::from_secs(d.as_secs()))
                };
                let refusal = crate::limits::Refusal {
                    kind: strata_types::ErrorKind::Unavailable,
                    reason: "compaction_lag",
                    message: format!(
                        "tenant {tenant}'s {} compaction is {} behind (over storage.max_compaction_lag, {}): writes are refused until it catches up; retry later",
                        signal.as_str(),
                        round(lag),
                        round(max)
                    ),
                };
                Err(self.refused(tenant, refusal, shape).retry_after(10))
            }
            _ => Ok(()),
        }
    }

    /// Records a tenant's write in its usage.
    pub fn record_ingest(&self, tenant: &strata_types::TenantId, samples: u64, bytes: u64) {
        self.query.usage().ingested(tenant, samples, bytes);
        let t = vec![("tenant", tenant.to_string())];
        self.metrics
            .samples_ingested
            .get_or_create(&t)
            .inc_by(samples);
        self.metrics.ingested_bytes.get_or_create(&t).inc_by(bytes);
    }

    /// Records a tenant's log write in its usage and `/metrics`.
    pub fn record_log_ingest(
        &self,
        tenant: &strata_types::TenantId,
        entries: u64,
        bytes: u64,
        request_bytes: u64,
    ) {
        self.query
            .usage()
            .logs_ingested(tenant, entries, bytes, request_bytes);
        let t = vec![("tenant", tenant.to_string())];
        self.metrics
            .log_entries_ingested
            .get_or_create(&t)
            .inc_by(entries);
        self.metrics
            .log_bytes_ingested
            .get_or_create(&t)
            .inc_by(bytes);
        self.metrics
            .ingested_bytes
            .get_or_create(&t)
            .inc_by(request_bytes);
    }

    /// Records a tenant's query in its usage.
    pub fn record_query(
        &self,
        tenant: &strata_types::TenantId,
        api: &str,
        seconds: f64,
        samples: u64,
    ) {
        self.query.usage().queried(tenant, seconds, samples);
        let t = vec![("tenant", tenant.to_string())];
        self.metrics
            .queries
            .get_or_create(&vec![
                ("tenant", tenant.to_string()),
                ("api", api.to_owned()),
            ])
            .inc();
        self.metrics.query_seconds.get_or_create(&t).inc_by(seconds);
        self.metrics.query_samples.get_or_create(&t).inc_by(samples);
    }

    /// The WAL once replay has finished; `None` while starting.
    pub fn wal(&self) -> Option<&Arc<dyn Wal>> {
        self.wal.get()
    }

    /// Opens the WAL under the data dir, replaying it into the head.
    pub(crate) fn open_wal(&self) -> Result<(), WalError> {
        let started = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let config = WalConfig::new(self.config.data_dir.join("wal"))
            .with_segment_bytes(self.config.wal.segment_size.0)
            .with_fsync_observer(Arc::new(move |d| metrics.observe_fsync(d)));
        let mut samples = 0u64;
        let mut log_entries = 0u64;
        let mut exemplars = 0u64;
        let mut histograms = 0u64;
        let mut skipped = 0u64;
        let (wal, summary) = SegmentedWal::open(config, |seq, record| match record {
            WalRecord::Samples(batch) => match self.storage.replay(seq, &batch) {
                Ok(Some(stats)) => samples += stats.samples,
                Ok(None) => skipped += 1,
                Err(error) => warn!(%seq, %error, "WAL record not applied to the head"),
            },
            WalRecord::Logs(batch) => match self.storage.replay_logs(seq, &batch) {
                Some(stats) => log_entries += stats.entries,
                None => skipped += 1,
            },
            WalRecord::Exemplars(batch) => {
                exemplars += self.storage.replay_exemplars(seq, &batch).accepted;
            }
            WalRecord::Histograms(batch) => {
                histograms += self.storage.replay_histograms(seq, &batch) as u64;
            }
            _ => warn!(%seq, "skipping WAL record of a kind this build does not apply"),
        })?;
        info!(
            records = summary.records,
            samples,
            log_entries,
            exemplars,
            histograms,
            already_in_tables = skipped,
            segments = summary.segments,
            truncated_bytes = summary.truncated_bytes,
            undecodable_records = summary.undecodable_records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "replay finished; ready"
        );
        let _ = self.wal.set(Arc::new(wal));
        self.metrics.set_ready();
        Ok(())
    }

    /// Flushes the head (when the WAL is open), then closes the WAL. A
    /// failed flush loses nothing: the WAL still holds the data.
    pub(crate) async fn shutdown(&self) {
        if let Some(wal) = self.wal.get() {
            let result = self.storage.flush(wal.as_ref()).await;
            if let Err(error) = &result {
                warn!(%error, "flush at shutdown failed; the WAL keeps the data for the next start");
            }
            self.metrics.observe_flush(&result);
            wal.shutdown();
        }
    }

    /// Keeps the metric metadata of a tenant's accepted write, within the
    /// tenant's bounds (what they drop is counted).
    pub(crate) fn record_metadata(
        &self,
        tenant: &strata_types::TenantId,
        metadata: &[strata_ingest::MetricMetadata],
    ) {
        if metadata.is_empty() {
            return;
        }
        let limits = self.limits.of(tenant);
        let dropped = self.metadata.record(
            tenant,
            metadata,
            chrono::Utc::now().timestamp(),
            crate::metadata::Bounds {
                metrics: limits.max_metadata_metrics,
                per_metric: limits.max_metadata_per_metric,
                text_len: limits.max_label_value_length,
            },
        );
        if dropped > 0 {
            self.metrics
                .ingest_skipped
                .get_or_create(&vec![("kind", "metadata".to_owned())])
                .inc_by(dropped);
        }
    }

    pub(crate) fn log_skipped_once(&self, kind: usize, what: &str, count: u64) {
        if count > 0 && !self.skipped_logged[kind].swap(true, Ordering::Relaxed) {
            warn!(
                kind = what,
                count,
                "remote write carried {what}, which Strata does not store yet; \
                 they are skipped (counted in strata_ingest_skipped_total, logged once)"
            );
        }
    }
}

/// Takes an exclusive lock on `<data_dir>/LOCK` so two servers never share a
/// WAL. The lock is released when the returned file is dropped or the
/// process dies.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, ServeError> {
    std::fs::create_dir_all(dir).map_err(|source| ServeError::DataDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join("LOCK");
    let file = File::create(&path).map_err(|source| ServeError::DataDir {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ServeError::DataDir { path, source }),
    }
}
