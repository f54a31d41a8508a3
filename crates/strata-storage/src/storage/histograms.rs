//! The storage's side of native histograms: writes and replay into the
//! histogram store, and the histograms table's files (docs/DESIGN.md,
//! "Native histograms"). Flushing them is in `flush.rs` with the other
//! parts of a cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::path::Path;
use strata_head::HistogramRow;
use strata_types::{HistogramBatch, Labels, TenantId};
use strata_wal::{Wal, WalSeq};

use super::{HeadEvent, Storage};
use crate::paths::{Signal, TablePath};
use crate::{DataFile, ObjectStoreHandle, StorageError};

/// A query's read of native histograms ([`Storage::select_histograms`]).
pub struct HistogramRead {
    /// Samples not in the table yet, oldest first.
    pub held: Vec<HistogramRow>,
    pub files: Arc<[DataFile]>,
    pub table_root: Path,
    pub store: ObjectStoreHandle,
}

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
        self.announce(|| HeadEvent::Histograms(seq, batch));
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

    /// What a query of `tenant`'s native histograms reads: the samples
    /// in `[start_ms, end_ms]` of the series `keep` selects that are held
    /// (pending, or cut and not yet committed; oldest first), and the
    /// table's files then. Taken under the state's lock, as the cut takes
    /// pending samples and the commit swaps a cut for its files: every
    /// sample is in one of the two, at least.
    pub fn select_histograms(
        &self,
        tenant: &TenantId,
        keep: &dyn Fn(&Labels) -> bool,
        start_ms: i64,
        end_ms: i64,
    ) -> HistogramRead {
        let state = self.state.read();
        let mut held = Vec::new();
        super::frozen::cut_histograms(&state.frozen, tenant, keep, (start_ms, end_ms), &mut held);
        held.extend(self.histograms.select_of(tenant, keep, start_ms, end_ms));
        // The ingesters' heads this querier mirrors (under the same lock:
        // a version published drops the mirrored cuts it holds).
        for m in self.mirrors.read().values() {
            m.histograms(tenant, keep, start_ms, end_ms, &mut held);
        }
        let files = state
            .histogram_files
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        drop(state);
        HistogramRead {
            held,
            files,
            table_root: self
                .store
                .path(&TablePath::of(tenant.clone(), Signal::Histograms).relative()),
            store: self.store.clone(),
        }
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
