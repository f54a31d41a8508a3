//! Strata's in-memory head: the recent data of every tenant.
//!
//! Third stage of the pipeline, after the WAL: a durable
//! [`WriteBatch`](strata_types::WriteBatch) is applied to the head and from
//! then on queries see it. Per tenant the head keeps
//!
//! * a **series index**: a stable [`SeriesId`](strata_types::SeriesId) per
//!   label set, with hash collisions detected (never silently merged);
//! * **postings**: a roaring bitmap per label pair, answering `=`, `!=`, `=~`
//!   and `!~` matchers with Prometheus' semantics (a matcher that matches the
//!   empty string also matches series without the label);
//! * **sample buffers** per series, in timestamp order. Out-of-order samples
//!   are accepted; a second sample at the same timestamp replaces the first
//!   (last write wins).
//!
//! Tenants never share a structure: every lookup starts from a
//! [`TenantId`](strata_types::TenantId).

mod chunk;
mod error;
mod logs;
mod matcher;
mod postings;
mod series;
mod tenant;

pub use error::HeadError;
pub use logs::{LogAppendStats, LogHead, LogStreamSnapshot, TenantLogs, sort_dedup};
pub use matcher::{MatchOp, Matcher};
pub use postings::LabelIndex;
pub use series::{SeriesPoints, SeriesSnapshot};
pub use tenant::{AppendStats, HeadSeriesRef, MetricLabels, SampleStats, TenantHead};

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use strata_types::{TenantId, WriteBatch};

/// All tenants' heads.
#[derive(Debug, Default)]
pub struct Head {
    tenants: RwLock<HashMap<TenantId, Arc<TenantHead>>>,
}

impl Head {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a durable batch to its tenant's head.
    pub fn append(&self, batch: &WriteBatch) -> Result<AppendStats, HeadError> {
        self.tenant_or_create(&batch.tenant).append(batch)
    }

    /// The head of `tenant`, if it has ever written anything.
    pub fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantHead>> {
        self.tenants.read().get(tenant).cloned()
    }

    fn tenant_or_create(&self, tenant: &TenantId) -> Arc<TenantHead> {
        if let Some(t) = self.tenants.read().get(tenant) {
            return Arc::clone(t);
        }
        Arc::clone(
            self.tenants
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(TenantHead::new(tenant.clone()))),
        )
    }

    /// Takes every tenant's head out for flushing, leaving an empty head
    /// behind. The caller keeps the returned heads readable until their
    /// data is committed to storage.
    pub fn freeze(&self) -> Vec<Arc<TenantHead>> {
        let mut taken: Vec<_> = std::mem::take(&mut *self.tenants.write())
            .into_values()
            .collect();
        taken.sort_by(|a, b| a.tenant().cmp(b.tenant()));
        taken
    }

    /// Takes `tenant`'s head out for flushing (see [`Head::freeze`]); the
    /// other tenants' stay.
    pub fn freeze_tenant(&self, tenant: &TenantId) -> Option<Arc<TenantHead>> {
        self.tenants.write().remove(tenant)
    }

    /// Samples appended to the head since the last [`Head::freeze`].
    pub fn samples_appended(&self) -> u64 {
        self.tenants
            .read()
            .values()
            .map(|t| t.samples_appended())
            .sum()
    }

    /// Every tenant with data in the head, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut v: Vec<_> = self.tenants.read().keys().cloned().collect();
        v.sort();
        v
    }
}
