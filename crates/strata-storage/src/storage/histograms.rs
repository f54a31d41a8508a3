//! The storage's side of native histograms: writes and replay into the
//! histogram store, and the histograms table's files (docs/DESIGN.md,
//! "Native histograms"). Flushing them is in `flush.rs` with the other
//! parts of a cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::path::Path;
use strata_types::{HistogramBatch, TenantId};
use strata_wal::{Wal, WalSeq};

use super::Storage;
use crate::paths::{Signal, TablePath};
use crate::{DataFile, ObjectStoreHandle, StorageError};

impl Storage {
    /// Makes native histograms durable in the WAL, then holds them for the
    /// next flush; returns how many samples.
    pub async fn write_histograms(
        &self,
        wal: &dyn Wal,
        batch: Arc<HistogramBatch>,
    ) -> Result<usize, StorageError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let _cut = self.cut.read().await;
        let seq = wal.append_histograms(Arc::clone(&batch)).await?;
        let n = self.histograms.append(&batch);
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        Ok(n)
    }

    /// Replay of a histogram record: held for the next flush unless a
    /// flush already committed it to the table. Returns the samples held.
    pub fn replay_histograms(&self, seq: WalSeq, batch: &HistogramBatch) -> usize {
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        let committed = self
            .state
            .read()
            .histogram_committed
            .get(&batch.tenant)
            .copied();
        if committed.is_some_and(|c| seq <= c) {
            return 0;
        }
        self.histograms.append(batch)
    }

    /// Native-histogram samples waiting for the next flush, all tenants.
    pub fn histograms_pending(&self) -> usize {
        self.histograms.pending_count()
    }

    /// The histograms table of `tenant`: its files and where they are.
    pub fn histogram_files(&self, tenant: &TenantId) -> (Arc<[DataFile]>, Path, ObjectStoreHandle) {
        let files = self
            .state
            .read()
            .histogram_files
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        let root = self
            .store
            .path(&TablePath::of(tenant.clone(), Signal::Histograms).relative());
        (files, root, self.store.clone())
    }
}
