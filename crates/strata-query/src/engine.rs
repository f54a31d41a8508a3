//! Tenant-scoped SQL sessions.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use strata_storage::Storage;
use strata_types::TenantId;
use tracing::instrument;

use crate::catalog::MetricSchema;
use crate::running::RunningQueries;
use crate::samples::STORE_URL;
use crate::time_travel::{By, SamplesAsOf};
use crate::{QueryError, SamplesTable};

/// Runs SQL for one tenant at a time over its heads and files.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    storage: Arc<Storage>,
    /// Series labels PromQL has looked up (shared by all queries).
    labels: Arc<crate::series_labels::LabelCache>,
    /// Per-tenant usage since start (`system.usage`).
    usage: Arc<crate::usage::Usage>,
    /// Series ids of the data files PromQL lookups have seen.
    file_series: Arc<crate::series_labels::FileSeriesCache>,
    /// Metrics and label names of the data files SQL sessions have seen.
    catalogs: Arc<crate::catalog::CatalogCache>,
    /// Queries under way (`system.queries`).
    running: Arc<RunningQueries>,
    /// Parallelism of one query; `None`: one per CPU.
    target_partitions: Option<usize>,
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
    pub fn new(storage: Arc<Storage>) -> Self {
        Self {
            storage,
            labels: Arc::default(),
            file_series: Arc::default(),
            catalogs: Arc::default(),
            running: Arc::default(),
            usage: Arc::default(),
            target_partitions: None,
        }
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
        let ctx = SessionContext::new_with_config(config);
        let view = self.storage.view(tenant);
        let url = url::Url::parse(STORE_URL)
            .map_err(|e| datafusion::error::DataFusionError::Internal(format!("store url: {e}")))?;
        ctx.register_object_store(&url, Arc::clone(view.store.store()));
        Ok((ctx, view))
    }

    /// A session that sees only `tenant`'s tables: `samples`, `series`,
    /// one table per metric (also under `metrics`), `system.*` and the
    /// time-travel functions.
    pub async fn session(&self, tenant: &TenantId) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("strata", "public");
        let (ctx, view) = self.base_session(config, tenant)?;
        let samples = Arc::new(SamplesTable::new(view.clone()));
        let metrics = Arc::new(
            crate::catalog::tenant_catalog(&view, &self.catalogs, &self.file_series).await?,
        );
        let builtins: BTreeMap<String, Arc<dyn TableProvider>> = [
            (
                "samples".to_owned(),
                Arc::clone(&samples) as Arc<dyn TableProvider>,
            ),
            ("series".to_owned(), crate::catalog::series_view(&samples)?),
        ]
        .into_iter()
        .collect();
        let system = crate::system::schema(crate::system::SystemInputs {
            tenant,
            storage: &self.storage,
            view: &view,
            metrics: &metrics,
            usage: self.usage.batch(tenant, &self.storage)?,
            queries: self.running.batch(tenant)?,
        })?;
        let catalog = ctx.catalog("strata").ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("no strata catalog".into())
        })?;
        catalog.register_schema(
            "public",
            Arc::new(MetricSchema::new(
                Arc::clone(&samples),
                Arc::clone(&metrics),
                builtins,
            )),
        )?;
        catalog.register_schema(
            "metrics",
            Arc::new(MetricSchema::new(samples, metrics, BTreeMap::new())),
        )?;
        catalog.register_schema("system", system)?;
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
                }),
            );
        }
        Ok(ctx)
    }

    /// PromQL's view of `tenant`: heads through their index, files
    /// through a `samples` table over the files alone.
    pub fn promql_source(
        &self,
        tenant: &TenantId,
    ) -> Result<crate::promql::PromSource, QueryError> {
        let (ctx, view) = self.base_session(SessionConfig::new(), tenant)?;
        ctx.register_table(
            "samples",
            Arc::new(crate::promql::PromSource::files_table(&view)),
        )?;
        Ok(crate::promql::PromSource::new(
            tenant,
            view,
            ctx,
            Arc::clone(&self.labels),
            Arc::clone(&self.file_series),
        ))
    }

    /// Plans and runs one read-only statement for `tenant`.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sql(&self, tenant: &TenantId, sql: &str) -> Result<QueryOutput, QueryError> {
        if sql.trim().is_empty() {
            return Err(QueryError::Empty);
        }
        let _running = self.running.start(tenant, "sql", sql);
        let ctx = self.session(tenant).await?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await?;
        let schema = Arc::clone(df.schema().inner());
        let batches = df.collect().await?;
        Ok(QueryOutput { schema, batches })
    }
}

#[cfg(test)]
mod tests;
