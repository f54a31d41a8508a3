//! An in-memory [`Wal`] for tests of the stages above.

use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::WriteBatch;

use crate::{AppendFuture, Wal, WalError, WalSeq, WalStats};

/// Keeps records in a `Vec`. Durable only as long as the process.
#[derive(Debug, Default)]
pub struct MemoryWal {
    records: Mutex<Vec<(WalSeq, Arc<WriteBatch>)>>,
}

impl MemoryWal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record still held, in order.
    pub fn records(&self) -> Vec<(WalSeq, Arc<WriteBatch>)> {
        self.records.lock().clone()
    }
}

impl Wal for MemoryWal {
    fn append(&self, batch: Arc<WriteBatch>) -> AppendFuture {
        let mut records = self.records.lock();
        let seq = WalSeq(records.last().map_or(1, |(s, _)| s.0 + 1));
        records.push((seq, batch));
        Box::pin(async move { Ok(seq) })
    }

    fn remove_segments_before(&self, seq: WalSeq) -> Result<usize, WalError> {
        let mut records = self.records.lock();
        let before = records.len();
        records.retain(|(s, _)| *s >= seq);
        Ok(before - records.len())
    }

    fn stats(&self) -> WalStats {
        let records = self.records.lock();
        WalStats {
            last_seq: records.last().map(|(s, _)| *s),
            segments: 1,
            bytes: 0,
            ..WalStats::default()
        }
    }

    fn shutdown(&self) {}
}
