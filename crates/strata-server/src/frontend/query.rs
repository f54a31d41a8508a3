//! Admission of every query, whatever its language and protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strata_types::{ErrorKind, TenantId};

use crate::AppState;
use crate::error::{ApiError, Shape};

/// A running query's concurrency slot and scheduler turn, held until it is
/// dropped — after the last result is sent, however the results stream —
/// when the query's time and samples are recorded in the tenant's usage.
pub struct Admitted {
    state: Arc<AppState>,
    tenant: TenantId,
    api: &'static str,
    started: Instant,
    samples: AtomicU64,
    _slot: crate::limits::QuerySlot,
    permit: crate::scheduler::Permit,
}

impl Admitted {
    /// Whether the tenant had other queries running or waiting when this
    /// one was admitted: such a query computes at low priority.
    pub fn heavy(&self) -> bool {
        self.permit.heavy()
    }

    /// Counts samples the query read, for the tenant's usage.
    pub fn read_samples(&self, n: u64) {
        self.samples.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.state.record_query(
            &self.tenant,
            self.api,
            self.started.elapsed().as_secs_f64(),
            self.samples.load(Ordering::Relaxed),
        );
    }
}

/// The `api` of the ruler's queries.
pub const INTERNAL_RULES: &str = "rules";
/// The `api` of the analytics loop's queries.
pub const INTERNAL_ANALYTICS: &str = "analytics";

/// Admits one query of `tenant` through `api` (`"promql"`, `"sql"`,
/// `"postgres"`…): its concurrency slot (429 over the tenant's limit;
/// [`INTERNAL_RULES`] and [`INTERNAL_ANALYTICS`] count against
/// `ruler_max_concurrent_queries` instead),
/// then its turn in the fair scheduler, waiting at most `wait` (a slot
/// held by stuck queries answers later queries with a timeout, it does not
/// hang them; a client that leaves gives up its place in line).
pub async fn admit(
    state: &Arc<AppState>,
    tenant: &TenantId,
    api: &'static str,
    shape: Shape,
    wait: Duration,
) -> Result<Admitted, ApiError> {
    let internal = matches!(api, INTERNAL_RULES | INTERNAL_ANALYTICS);
    let slot = state
        .limits
        .start_query(tenant, internal)
        .map_err(|r| state.refused(tenant, r, shape))?;
    let permit = tokio::time::timeout(wait, state.scheduler.acquire(tenant))
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::Timeout,
                format!("query timed out waiting for a query slot ({wait:?})"),
                shape,
            )
        })?;
    Ok(Admitted {
        state: Arc::clone(state),
        tenant: tenant.clone(),
        api,
        started: Instant::now(),
        samples: AtomicU64::new(0),
        _slot: slot,
        permit,
    })
}

impl AppState {
    /// [`admit`] waiting at most the server's query timeout
    /// (`promql.timeout`, which bounds every language's queries).
    pub async fn admit(
        self: &Arc<Self>,
        tenant: &TenantId,
        api: &'static str,
        shape: Shape,
    ) -> Result<Admitted, ApiError> {
        admit(self, tenant, api, shape, self.config.promql.timeout).await
    }
}
