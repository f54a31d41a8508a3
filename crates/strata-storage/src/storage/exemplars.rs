//! The storage's side of exemplars: the store's bounds, writes and
//! replay into it, and what a query reads beside it (docs/DESIGN.md,
//! "Wire compatibility"). Flushing them is in `flush.rs` with the other
//! parts of a cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::path::Path;
use strata_head::{ExemplarStats, ExemplarStore};
use strata_types::{ExemplarBatch, TenantId};
use strata_wal::{Wal, WalSeq};

use super::{ExemplarBoundsFn, HeadEvent, Storage};
use crate::paths::{Signal, TablePath};
use crate::{DataFile, ObjectStoreHandle, StorageError};

impl Storage {
    /// Sets how many exemplars each tenant keeps (its limits).
    pub fn set_exemplar_bounds(&self, bounds: ExemplarBoundsFn) {
        *self.exemplar_bounds.write() = bounds;
    }

    /// Every tenant's exemplars.
    pub fn exemplars(&self) -> &Arc<ExemplarStore> {
        &self.exemplars
    }

    /// Applies exemplars mirrored from an ingester (which writes them to
    /// the table itself) under the tenant's bounds.
    pub fn apply_exemplars(&self, batch: &ExemplarBatch) -> ExemplarStats {
        let bounds = (self.exemplar_bounds.read())(&batch.tenant);
        self.exemplars.append(batch, bounds, false)
    }

    /// Replay of an exemplar record: applied to the store, and pending for
    /// the next flush unless a flush already committed it to the table.
    pub fn replay_exemplars(&self, seq: WalSeq, batch: &ExemplarBatch) -> ExemplarStats {
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        let committed = self
            .state
            .read()
            .exemplar_committed
            .get(&batch.tenant)
            .copied();
        let bounds = (self.exemplar_bounds.read())(&batch.tenant);
        self.exemplars
            .append(batch, bounds, committed.is_none_or(|c| seq > c))
    }

    /// Makes exemplars durable in the WAL, then applies them to the store
    /// (nothing is written for a tenant that keeps none).
    pub async fn write_exemplars(
        &self,
        wal: &dyn Wal,
        batch: Arc<ExemplarBatch>,
    ) -> Result<ExemplarStats, StorageError> {
        let bounds = (self.exemplar_bounds.read())(&batch.tenant);
        if bounds.total == 0 || bounds.per_series == 0 {
            return Ok(ExemplarStats {
                dropped: batch.exemplar_count() as u64,
                ..ExemplarStats::default()
            });
        }
        let _cut = self.cut.read().await;
        let seq = wal.append_exemplars(Arc::clone(&batch)).await?;
        let stats = self.exemplars.append(&batch, bounds, true);
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        self.announce(|| HeadEvent::Exemplars(seq, batch));
        Ok(stats)
    }

    /// What an exemplar query of `tenant` reads beside the store: the
    /// exemplars table's files and where they are.
    pub fn exemplar_files(&self, tenant: &TenantId) -> (Arc<[DataFile]>, Path, ObjectStoreHandle) {
        let files = self
            .state
            .read()
            .exemplar_files
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        let root = self
            .store
            .path(&TablePath::of(tenant.clone(), Signal::Exemplars).relative());
        (files, root, self.store.clone())
    }
}
