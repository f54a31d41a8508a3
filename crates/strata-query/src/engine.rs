//! Tenant-scoped SQL sessions.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use futures::TryStreamExt;
use strata_storage::Storage;
use strata_types::TenantId;
use tracing::instrument;

use crate::catalog::MetricSchema;
use crate::running::{QueryGuard, RunningQueries};
use crate::samples::STORE_URL;
use crate::time_travel::{By, SamplesAsOf};
use crate::{QueryError, SamplesTable};

/// Something a higher layer adds to each tenant's SQL session when it is
/// built (table functions, say), so this crate need not depend on it.
pub trait SessionExtension: std::fmt::Debug + Send + Sync {
    fn register(&self, engine: &QueryEngine, tenant: &TenantId, ctx: &SessionContext);
}

/// Runs SQL for one tenant at a time over its heads and files.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    storage: Arc<Storage>,
    /// Per-tenant usage since start (`system.usage`).
    usage: Arc<crate::usage::Usage>,
    /// Series ids of the data files PromQL lookups have seen.
    file_series: Arc<crate::series_labels::FileSeriesCache>,
    /// Label indexes of the data files label lookups have seen.
    file_index: Arc<crate::file_index_cache::FileIndexCache>,
    /// Line indexes of the logs files needle searches have read.
    line_index: Arc<crate::line_index_cache::LineIndexCache>,
    /// Metrics and label names of the data files SQL sessions have seen.
    catalogs: Arc<crate::catalog::CatalogCache>,
    /// Queries under way (`system.queries`).
    running: Arc<RunningQueries>,
    /// Parallelism of one query; `None`: one per CPU.
    target_partitions: Option<usize>,
    /// How far back a tenant's queries may read (`None`: no limit).
    lookback: Option<LookbackLimit>,
    /// What higher layers add to every tenant's SQL session (the
    /// analytics table functions, from strata-server).
    extensions: Vec<Arc<dyn SessionExtension>>,
    /// Memory SQL queries may reserve, each and together (`None`: no bound).
    memory: Option<Arc<crate::memory::MemoryBudget>>,
    /// Senders' descriptions of metrics, for `system.metrics`.
    descriptions: Option<Arc<dyn crate::system::MetricDescriptions>>,
    /// Longest a statement may take, planning and running (`None`: no
    /// bound).
    timeout: Option<std::time::Duration>,
}

type LookbackFn = dyn Fn(&TenantId) -> Option<std::time::Duration> + Send + Sync;

/// A tenant's query lookback limit, looked up per query (limits reload).
#[derive(Clone)]
struct LookbackLimit(Arc<LookbackFn>);

impl std::fmt::Debug for LookbackLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookbackLimit")
    }
}

/// A finished query's schema and rows.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl QueryEngine {
    /// Keeps the label indexes of new data files built ahead of queries:
    /// every `every`, the files of each queried tenant (one with a file
    /// index held) that hold data of the last `window` and have no index
    /// yet (a flush's or a compaction's) are indexed, one at a time, so
    /// the first query after a flush does not build them on its own time.
    /// Ends when `stop` turns true.
    pub async fn warm_file_indexes(
        self,
        window: std::time::Duration,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let since = chrono::Utc::now().timestamp_millis()
                - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            for (tenant, ..) in self.storage.table_stats() {
                let view = self.storage.view(&tenant);
                let built = self
                    .file_index
                    .warm(&view, |f| f.stats.max_ts_ms >= since)
                    .await;
                if built > 0 {
                    tracing::debug!(%tenant, files = built, "file indexes built ahead of queries");
                }
            }
        }
    }

    pub fn new(storage: Arc<Storage>) -> Self {
        Self {
            storage,
            file_series: Arc::default(),
            file_index: Arc::default(),
            line_index: Arc::default(),
            catalogs: Arc::default(),
            running: Arc::default(),
            usage: Arc::default(),
            target_partitions: None,
            lookback: None,
            extensions: Vec::new(),
            memory: None,
            descriptions: None,
            timeout: None,
        }
    }

    /// Where `system.metrics` finds each metric's type, help and unit.
    pub fn with_descriptions(
        mut self,
        descriptions: Arc<dyn crate::system::MetricDescriptions>,
    ) -> Self {
        self.descriptions = Some(descriptions);
        self
    }

    /// Bounds the memory each SQL query, and all together, may reserve:
    /// past it a query spills or fails with "resources exhausted".
    pub fn with_memory_limits(mut self, total: usize, per_query: usize) -> Self {
        self.memory = Some(crate::memory::MemoryBudget::new(total, per_query));
        self
    }

    /// Bounds how long a statement may take, from planning to its last
    /// batch; past it the query is stopped and answers a timeout.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Bytes SQL queries hold now (0 without a memory bound).
    pub fn memory_used(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.used())
    }

    /// Adds `ext` to every tenant's SQL session.
    pub fn with_session_extension(mut self, ext: Arc<dyn SessionExtension>) -> Self {
        self.extensions.push(ext);
        self
    }

    /// Limits how far back each tenant's queries read: samples older than
    /// `limit(tenant)` before now are out of reach of SQL (every table and
    /// time travel) and PromQL alike.
    pub fn with_lookback_limit(
        mut self,
        limit: impl Fn(&TenantId) -> Option<std::time::Duration> + Send + Sync + 'static,
    ) -> Self {
        self.lookback = Some(LookbackLimit(Arc::new(limit)));
        self
    }

    /// The earliest sample time `tenant` may read now.
    fn not_before_ms(&self, tenant: &TenantId) -> i64 {
        self.lookback
            .as_ref()
            .and_then(|f| (f.0)(tenant))
            .filter(|d| !d.is_zero())
            .map_or(i64::MIN, |d| {
                chrono::Utc::now()
                    .timestamp_millis()
                    .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            })
    }

    /// Where ingest and queries record per-tenant usage.
    pub fn usage(&self) -> &Arc<crate::usage::Usage> {
        &self.usage
    }

    /// Queries under way: front ends register theirs here.
    pub fn running(&self) -> &Arc<RunningQueries> {
        &self.running
    }

    /// Runs each query on `n` partitions instead of one per CPU.
    pub fn with_target_partitions(mut self, n: usize) -> Self {
        self.target_partitions = Some(n.max(1));
        self
    }

    /// A session with this engine's parallelism, the tenant's current view
    /// and the store it reads registered.
    fn base_session(
        &self,
        config: SessionConfig,
        tenant: &TenantId,
    ) -> Result<(SessionContext, strata_storage::TenantView), QueryError> {
        let config = match self.target_partitions {
            Some(n) => config.with_target_partitions(n),
            None => config,
        };
        let ctx = match &self.memory {
            Some(budget) => {
                use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
                // No spilling: a query past its memory bound fails with a
                // clear error instead of filling the disk under the WAL.
                let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                    .with_memory_pool(Arc::new(budget.pool()))
                    .with_disk_manager_builder(
                        DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                    )
                    .build_arc()?;
                SessionContext::new_with_config_rt(config, runtime)
            }
            None => SessionContext::new_with_config(config),
        };
        let mut view = self.storage.view(tenant);
        view.not_before_ms = self.not_before_ms(tenant);
        let url = url::Url::parse(STORE_URL)
            .map_err(|e| datafusion::error::DataFusionError::Internal(format!("store url: {e}")))?;
        // Rooted at the store's base: plans (EXPLAIN) show paths from there.
        let base = view.store.base().clone();
        let store: Arc<dyn object_store::ObjectStore> = if base.as_ref().is_empty() {
            Arc::clone(view.store.store())
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                Arc::clone(view.store.store()),
                base,
            ))
        };
        ctx.register_object_store(&url, store);
        Ok((ctx, view))
    }

    /// A session that sees only `tenant`'s tables: `samples`, `series`,
    /// one table per metric (also under `metrics`), `system.*` and the
    /// time-travel functions.
    pub async fn session(&self, tenant: &TenantId) -> Result<SessionContext, QueryError> {
        self.session_with(tenant, true).await
    }

    /// [`Self::session`]; `files`: whether metric tables also take their
    /// columns from the data files' catalogs (else from the heads only).
    async fn session_with(
        &self,
        tenant: &TenantId,
        files: bool,
    ) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("strata", "public");
        let (ctx, view) = self.base_session(config, tenant)?;
        let samples = crate::samples::within_lookback(
            Arc::new(SamplesTable::new(view.clone()).with_file_index(Arc::clone(&self.file_index))),
            view.not_before_ms,
        )?;
        let metrics = Arc::new(
            crate::catalog::tenant_catalog(&view, &self.catalogs, &self.file_series, files).await,
        );
        let builtins: BTreeMap<String, Arc<dyn TableProvider>> = [
            (
                "samples".to_owned(),
                Arc::clone(&samples) as Arc<dyn TableProvider>,
            ),
            ("series".to_owned(), crate::catalog::series_view(&samples)?),
            (
                "histograms".to_owned(),
                Arc::new(crate::histograms::HistogramsTable::new(
                    Arc::clone(&self.storage),
                    tenant.clone(),
                    view.not_before_ms,
                )) as Arc<dyn TableProvider>,
            ),
            ("logs".to_owned(), {
                let mut logs = self.storage.log_view(tenant);
                logs.not_before_ms = view.not_before_ms;
                Arc::new(
                    crate::logs::LogsTable::new(logs).with_line_index(Arc::clone(&self.line_index)),
                ) as Arc<dyn TableProvider>
            }),
        ]
        .into_iter()
        .collect();
        let system = crate::system::schema(crate::system::SystemInputs {
            tenant,
            storage: &self.storage,
            view: &view,
            metrics: &metrics,
            descriptions: self
                .descriptions
                .as_ref()
                .map(|d| d.describe(tenant))
                .unwrap_or_default(),
            usage: self.usage.batch(tenant, &self.storage)?,
            queries: self.running.batch(tenant)?,
        })?;
        let catalog = ctx.catalog("strata").ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("no strata catalog".into())
        })?;
        let labels = Arc::new(crate::metric_table::SeriesLabelSource {
            view: view.clone(),
            file_index: Arc::clone(&self.file_index),
        });
        let public: Arc<dyn SchemaProvider> = Arc::new(MetricSchema::new(
            Arc::clone(&samples),
            Arc::clone(&metrics),
            builtins,
            Arc::clone(&labels),
        ));
        let by_metric: Arc<dyn SchemaProvider> =
            Arc::new(MetricSchema::new(samples, metrics, BTreeMap::new(), labels));
        catalog.register_schema("public", Arc::clone(&public))?;
        catalog.register_schema("metrics", Arc::clone(&by_metric))?;
        let system: Arc<dyn SchemaProvider> = system;
        catalog.register_schema("system", Arc::clone(&system))?;
        // information_schema's tables are the same whatever the catalog
        // holds; describing them from an empty one keeps pg_catalog from
        // holding the session's catalog (a cycle).
        let information_schema: Arc<dyn SchemaProvider> = Arc::new(
            datafusion::catalog::information_schema::InformationSchemaProvider::new(Arc::new(
                datafusion::catalog::MemoryCatalogProviderList::new(),
            )),
        );
        crate::postgres::catalog::register(
            &ctx,
            "strata",
            tenant.as_str(),
            vec![
                ("public".to_owned(), public),
                ("metrics".to_owned(), by_metric),
                ("system".to_owned(), system),
                ("information_schema".to_owned(), information_schema),
            ],
        )?;
        crate::functions::register(&ctx, tenant.as_str());
        for f in crate::histograms::functions() {
            ctx.register_udf(f);
        }
        for (name, by) in [
            ("samples_at_version", By::Version),
            ("samples_as_of", By::Time),
        ] {
            ctx.register_udtf(
                name,
                Arc::new(SamplesAsOf {
                    storage: Arc::clone(&self.storage),
                    tenant: tenant.clone(),
                    by,
                    not_before_ms: view.not_before_ms,
                }),
            );
        }
        for ext in &self.extensions {
            ext.register(self, tenant, &ctx);
        }
        Ok(ctx)
    }

    /// PromQL's view of `tenant`: heads through their index, files
    /// through a `samples` table over the files alone.
    pub fn promql_source(
        &self,
        tenant: &TenantId,
    ) -> Result<crate::promql::PromSource, QueryError> {
        let mut view = self.storage.view(tenant);
        view.not_before_ms = self.not_before_ms(tenant);
        Ok(crate::promql::PromSource::new(
            tenant,
            view,
            Arc::clone(&self.file_index),
            Some(Arc::clone(&self.storage)),
        ))
    }

    /// The series `tenant` wrote at or after `since_ms` (wall-clock ms):
    /// those of its heads, and those of the files written since (from
    /// their indexes, which queries share). Each with its metric name and
    /// when it was last written, at the latest: now for heads, the file's
    /// newest write for files. What a series limit counts once a flush or
    /// a restart emptied the head.
    pub async fn series_written_since(
        &self,
        tenant: &TenantId,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(u64, Arc<str>, i64)>, QueryError> {
        let view = self.storage.view(tenant);
        let mut out: Vec<(u64, Arc<str>, i64)> = Vec::new();
        for head in &view.heads {
            out.extend(
                head.series_metrics()
                    .into_iter()
                    .map(|(id, metric)| (id.0, metric, now_ms)),
            );
        }
        let none: Arc<str> = Arc::from("");
        let files = self
            .file_index
            .indexes_of(&view, |f| f.written_ms >= since_ms)
            .await
            .map_err(QueryError::from)?;
        for (file, ix) in files {
            for (pos, id) in ix.ids.iter().enumerate() {
                // The index's own string: shared, not copied.
                let metric = u32::try_from(pos)
                    .ok()
                    .and_then(|pos| ix.labels.label(pos, strata_query_lang::promql::METRIC_NAME))
                    .unwrap_or(&none);
                out.push((*id as u64, Arc::clone(metric), file.written_ms.min(now_ms)));
            }
        }
        Ok(out)
    }

    /// The log streams of `tenant` written since `since_ms`, as (id, "",
    /// last written ms), for the stream limit: the log heads' streams
    /// (written now) and those of log files written since then.
    pub async fn streams_written_since(
        &self,
        tenant: &TenantId,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(u64, Arc<str>, i64)>, QueryError> {
        let source = self.logql_source(tenant)?;
        source
            .stream_ids_since(since_ms, now_ms)
            .await
            .map_err(|e| QueryError::LogSource(e.to_string()))
    }

    /// Blocks of log rows needle searches read and skipped by the files'
    /// line indexes, since start.
    pub fn line_index_blocks(&self) -> (u64, u64) {
        self.line_index.blocks()
    }

    /// LogQL's view of `tenant`: log heads and files.
    pub fn logql_source(&self, tenant: &TenantId) -> Result<crate::logql::LogQlSource, QueryError> {
        let (ctx, metrics) = self.base_session(SessionConfig::new(), tenant)?;
        let mut view = self.storage.log_view(tenant);
        view.not_before_ms = metrics.not_before_ms;
        Ok(crate::logql::LogQlSource::new(
            view,
            ctx,
            Arc::clone(&self.line_index),
        ))
    }

    /// Plans one read-only statement for `tenant` over the data as it is
    /// now. The query counts as running (`system.queries`, under
    /// `protocol`) until the plan, or the stream it turns into, is dropped.
    #[instrument(skip_all, fields(tenant = %tenant, protocol))]
    pub async fn plan(
        &self,
        tenant: &TenantId,
        sql: &str,
        protocol: &'static str,
    ) -> Result<Planned, QueryError> {
        if sql.trim().trim_end_matches(';').trim().is_empty() {
            return Err(QueryError::Empty);
        }
        strata_query_lang::nesting::check(sql, strata_query_lang::nesting::Syntax::Sql)?;
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        match deadline {
            Some(at) => tokio::time::timeout_at(at, self.plan_inner(tenant, sql, protocol))
                .await
                .map_err(|_| QueryError::Timeout(self.timeout.unwrap_or_default()))?,
            None => self.plan_inner(tenant, sql, protocol).await,
        }
        .map(|mut planned| {
            planned.deadline = deadline.map(|at| (at, self.timeout.unwrap_or_default()));
            planned
        })
    }

    async fn plan_inner(
        &self,
        tenant: &TenantId,
        sql: &str,
        protocol: &'static str,
    ) -> Result<Planned, QueryError> {
        let guard = self.running.start(tenant, protocol, sql);
        let files = crate::catalog::needs_file_catalogs(sql);
        let ctx = self.session_with(tenant, files).await?;
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(sql, &dialect)?;
        crate::postgres::catalog::rewrite(&mut statement, protocol == "postgres");
        let plan = state.statement_to_plan(statement).await?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)?;
        Ok(Planned {
            ctx,
            plan,
            guard,
            deadline: None,
        })
    }

    /// Plans and runs one read-only statement for `tenant`.
    pub async fn sql(&self, tenant: &TenantId, sql: &str) -> Result<QueryOutput, QueryError> {
        let stream = self
            .plan(tenant, sql, "sql")
            .await?
            .execute(Vec::new())
            .await?;
        let schema = stream.schema();
        let batches = stream.try_collect().await?;
        Ok(QueryOutput { schema, batches })
    }
}

/// A statement planned for one tenant, not yet run.
pub struct Planned {
    ctx: SessionContext,
    plan: LogicalPlan,
    guard: QueryGuard,
    /// When the statement must be done, and the timeout that set it.
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Planned {
    /// The result's columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(self.plan.schema().inner())
    }

    /// Types of `$1`, `$2`, … in order; `None` where the statement does
    /// not imply one.
    pub fn parameter_types(&self) -> Result<Vec<Option<DataType>>, QueryError> {
        let types = self.plan.get_parameter_types()?;
        let mut numbered: Vec<(usize, Option<DataType>)> = Vec::with_capacity(types.len());
        for (name, t) in types {
            let n = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "parameter {name}: only positional parameters ($1, $2, ...) are supported"
                    ))
                })?;
            numbered.push((n, t));
        }
        let count = numbered.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let mut out = vec![None; count];
        for (n, t) in numbered {
            out[n - 1] = t;
        }
        Ok(out)
    }

    /// Runs the statement with `params` bound to `$1`, `$2`, …
    pub async fn execute(self, params: Vec<ScalarValue>) -> Result<QueryStream, QueryError> {
        let plan = if params.is_empty() {
            self.plan
        } else {
            self.plan.with_param_values(params)?
        };
        let ctx = self.ctx;
        let start = async move {
            let df = ctx.execute_logical_plan(plan).await?;
            Ok::<_, QueryError>(df.execute_stream().await?)
        };
        let inner = match self.deadline {
            Some((at, timeout)) => tokio::time::timeout_at(at, start)
                .await
                .map_err(|_| QueryError::Timeout(timeout))??,
            None => start.await?,
        };
        Ok(QueryStream {
            schema: inner.schema(),
            inner: Some(inner),
            deadline: self
                .deadline
                .map(|(at, timeout)| (Box::pin(tokio::time::sleep_until(at)), timeout)),
            _guard: self.guard,
        })
    }
}

/// A running statement's results, batch by batch; the query stays in
/// `system.queries` until this is dropped.
pub struct QueryStream {
    /// `None` once the deadline passed: the plan is dropped (its tasks
    /// stop) and the stream ends after the timeout error.
    inner: Option<SendableRecordBatchStream>,
    deadline: Option<(std::pin::Pin<Box<tokio::time::Sleep>>, std::time::Duration)>,
    schema: SchemaRef,
    _guard: QueryGuard,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream").finish_non_exhaustive()
    }
}

impl QueryStream {
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl futures::Stream for QueryStream {
    type Item = Result<RecordBatch, QueryError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        if let Some((sleep, timeout)) = this.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let timeout = *timeout;
            this.inner = None;
            return std::task::Poll::Ready(Some(Err(QueryError::Timeout(timeout))));
        }
        inner
            .as_mut()
            .poll_next(cx)
            .map(|o| o.map(|r| r.map_err(QueryError::from)))
    }
}

#[cfg(test)]
mod tests;
