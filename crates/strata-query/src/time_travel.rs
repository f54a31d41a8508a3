//! Time travel: `samples_at_version(v)` and `samples_as_of('<RFC 3339>')`
//! read the tenant's table as it was at a Delta version or a time, for
//! audits ("what did we hold on 1 March?"). They read committed files only;
//! what sat in the head then was not in the table yet.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use strata_storage::{AsOf, Storage};
use strata_types::TenantId;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::SamplesTable;

#[derive(Debug, Clone, Copy)]
pub(crate) enum By {
    Version,
    Time,
}

/// One of the two table functions, bound to a tenant.
#[derive(Debug)]
pub(crate) struct SamplesAsOf {
    pub storage: Arc<Storage>,
    pub tenant: TenantId,
    pub by: By,
    /// The tenant's lookback limit applies to time travel too.
    pub not_before_ms: i64,
}

impl SamplesAsOf {
    fn point(&self, args: &[Expr]) -> Result<AsOf> {
        let name = match self.by {
            By::Version => "samples_at_version",
            By::Time => "samples_as_of",
        };
        let [Expr::Literal(value, _)] = args else {
            return plan_err!("{name} takes one literal argument");
        };
        match (self.by, value) {
            (By::Version, ScalarValue::Int64(Some(v))) if *v >= 0 => Ok(AsOf::Version(*v as u64)),
            (By::Version, _) => plan_err!("{name} takes a table version, a whole number >= 0"),
            (
                By::Time,
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => DateTime::parse_from_rfc3339(s)
                .map(|t| AsOf::Time(t.with_timezone(&Utc)))
                .or_else(|e| plan_err!("{name}: {s:?} is not an RFC 3339 time: {e}")),
            (By::Time, _) => plan_err!("{name} takes an RFC 3339 time string"),
        }
    }
}

impl TableFunctionImpl for SamplesAsOf {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let at = self.point(args.exprs())?;
        // Planning is synchronous, loading a table version is not: run it
        // on this worker with the runtime's permission to block.
        let handle = Handle::try_current()
            .map_err(|e| DataFusionError::Execution(format!("time travel needs a runtime: {e}")))?;
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(DataFusionError::Execution(
                "time travel needs the multi-threaded runtime".into(),
            ));
        }
        let view = tokio::task::block_in_place(|| {
            handle.block_on(self.storage.view_as_of(&self.tenant, at))
        })
        .map_err(|e| match e.kind() {
            strata_types::ErrorKind::NotFound | strata_types::ErrorKind::BadInput => {
                DataFusionError::Plan(e.to_string())
            }
            _ => DataFusionError::External(Box::new(e)),
        })?;
        crate::samples::within_lookback(Arc::new(SamplesTable::new(view)), self.not_before_ms)
    }
}
