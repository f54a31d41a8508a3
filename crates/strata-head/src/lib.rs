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
mod exemplars;
mod histograms;
mod logs;
mod matcher;
mod postings;
mod series;
mod tenant;
mod tenants;

pub use error::HeadError;
pub use exemplars::{ExemplarBounds, ExemplarStats, ExemplarStore, PendingExemplar};
pub use histograms::{HistogramRow, HistogramStore};
pub use logs::{
    ChunkNeeds, LineFilter, LogAppendStats, LogHead, LogStreamSnapshot, TenantLogs, sort_dedup,
};
pub use matcher::{MatchOp, Matcher};
pub use postings::LabelIndex;
pub use series::{SeriesPoints, SeriesSnapshot};
pub use tenant::{AppendStats, HeadSeriesRef, MetricLabels, SampleStats, TenantHead};

use std::sync::Arc;

use strata_types::{TenantId, WriteBatch};
use tenants::{TenantPart, Tenants};

/// All tenants' heads.
#[derive(Debug, Default)]
pub struct Head {
    tenants: Tenants<TenantHead>,
}

impl Head {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a durable batch to its tenant's head.
    pub fn append(&self, batch: &WriteBatch) -> Result<AppendStats, HeadError> {
        self.tenants.get_or_create(&batch.tenant).append(batch)
    }

    /// The head of `tenant`, if it has ever written anything.
    pub fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantHead>> {
        self.tenants.get(tenant)
    }

    /// Takes every tenant's head out for flushing, leaving an empty head
    /// behind. The caller keeps the returned heads readable until their
    /// data is committed to storage.
    pub fn freeze(&self) -> Vec<Arc<TenantHead>> {
        self.tenants.take_all()
    }

    /// Takes `tenant`'s head out for flushing (see [`Head::freeze`]); the
    /// other tenants' stay.
    pub fn freeze_tenant(&self, tenant: &TenantId) -> Option<Arc<TenantHead>> {
        self.tenants.take(tenant)
    }

    /// Samples appended to the head since the last [`Head::freeze`].
    pub fn samples_appended(&self) -> u64 {
        self.tenants.sum(TenantHead::samples_appended)
    }

    /// Every tenant with data in the head, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.ids()
    }
}

impl TenantPart for TenantHead {
    fn new_for(tenant: TenantId) -> Self {
        TenantHead::new(tenant)
    }

    fn tenant_id(&self) -> &TenantId {
        self.tenant()
    }
}
