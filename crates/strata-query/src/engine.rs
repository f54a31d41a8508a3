//! Tenant-scoped SQL sessions.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use strata_head::Head;
use strata_types::TenantId;
use tracing::instrument;

use crate::{QueryError, SamplesTable};

/// Runs SQL for one tenant at a time over the shared head.
#[derive(Debug, Clone)]
pub struct QueryEngine {
    head: Arc<Head>,
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
    pub fn new(head: Arc<Head>) -> Self {
        Self { head }
    }

    /// A session that sees only `tenant`'s tables.
    pub fn session(&self, tenant: &TenantId) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("strata", "public");
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table(
            "samples",
            Arc::new(SamplesTable::new(self.head.tenant(tenant))),
        )?;
        Ok(ctx)
    }

    /// Plans and runs one read-only statement for `tenant`.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sql(&self, tenant: &TenantId, sql: &str) -> Result<QueryOutput, QueryError> {
        if sql.trim().is_empty() {
            return Err(QueryError::Empty);
        }
        let ctx = self.session(tenant)?;
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
