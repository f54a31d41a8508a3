//! The storage's side of logs: writes and replay into the log head, the
//! back-pressure that keeps the lines held bounded, and what a log query
//! reads. Flushing them is in `flush.rs` with the other parts of a cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_head::{LogAppendStats, LogHead};
use strata_types::{LogBatch, TenantId};
use strata_wal::{Wal, WalSeq};

use super::{HeadEvent, LogView, Storage};
use crate::StorageError;
use crate::paths::TablePath;

/// Longest a log write waits for a running flush to make room (well
/// inside Promtail's and Alloy's 10 s push timeout): past it the write
/// goes on, the WAL keeping it safe, as before the wait existed.
const LOG_ROOM_WAIT: Duration = Duration::from_secs(5);

impl Storage {
    /// The log head.
    pub fn logs(&self) -> &Arc<LogHead> {
        &self.logs
    }

    /// Replay of a log record: applied unless a flush already committed it.
    /// Returns what was applied (`None`: skipped).
    pub fn replay_logs(&self, seq: WalSeq, batch: &LogBatch) -> Option<LogAppendStats> {
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        let committed = self.state.read().log_committed.get(&batch.tenant).copied();
        if committed.is_some_and(|c| seq <= c) {
            return None;
        }
        Some(self.logs.append(batch))
    }

    /// Makes a log batch durable in the WAL, then applies it to the log
    /// head.
    pub async fn write_logs(
        &self,
        wal: &dyn Wal,
        batch: Arc<LogBatch>,
    ) -> Result<LogAppendStats, StorageError> {
        self.room_for_logs().await;
        let _cut = self.cut.read().await;
        let seq = wal.append_logs(Arc::clone(&batch)).await?;
        let stats = self.logs.append(&batch);
        self.applied.fetch_max(seq.0, Ordering::AcqRel);
        self.announce(|| HeadEvent::Logs(seq, batch));
        Ok(stats)
    }

    /// Back-pressure on log writes, so the lines held in memory stay under
    /// one and a half flush bounds however fast senders push: a head past
    /// its bound asks the flusher to cut it now, and while a cut is being
    /// written a write that finds the new head half full waits for that
    /// flush to end (at most [`LOG_ROOM_WAIT`]).
    async fn room_for_logs(&self) {
        let bound = self.log_flush_bytes.load(Ordering::Relaxed);
        if bound == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + LOG_ROOM_WAIT;
        loop {
            let held = self.logs.bytes_appended();
            if held >= bound {
                self.flush_wanted.notify_one();
            }
            if held < bound / 2 {
                return;
            }
            // Listening before looking at the flush: one that ends in
            // between still wakes this write.
            let flushed = self.flushed.notified();
            tokio::pin!(flushed);
            flushed.as_mut().enable();
            // No flush under way (a full head is cut now), or the last one
            // failed (the store is down: the WAL holds what comes): in it
            // goes.
            if self.state.read().frozen.is_empty() || self.flush_failing.load(Ordering::Relaxed) {
                return;
            }
            if tokio::time::timeout_at(deadline, flushed).await.is_err() {
                return;
            }
        }
    }

    /// Log heads and files of `tenant`, consistent with each other.
    pub fn log_view(&self, tenant: &TenantId) -> LogView {
        let state = self.state.read();
        let mut heads: Vec<_> = self.logs.tenant(tenant).into_iter().collect();
        for f in state.frozen.iter().rev() {
            if let Some(h) = f.logs.get(tenant) {
                heads.push(Arc::clone(h));
            }
        }
        for m in self.mirrors.read().values() {
            m.log_heads(tenant, &mut heads);
        }
        LogView {
            heads,
            files: state
                .log_files
                .get(tenant)
                .cloned()
                .unwrap_or_else(|| Arc::from([])),
            table_root: self.store.path(&TablePath::logs(tenant.clone()).relative()),
            store: self.store.clone(),
            not_before_ms: i64::MIN,
        }
    }
}
