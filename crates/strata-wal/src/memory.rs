//! An in-memory [`Wal`] for tests of the stages above.

use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::{ExemplarBatch, HistogramBatch, LogBatch, WriteBatch};

use crate::{AppendFuture, Wal, WalError, WalSeq, WalStats};

/// Keeps records in a `Vec`. Durable only as long as the process.
#[derive(Debug, Default)]
pub struct MemoryWal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Vec<(WalSeq, Arc<WriteBatch>)>,
    logs: Vec<(WalSeq, Arc<LogBatch>)>,
    exemplars: Vec<(WalSeq, Arc<ExemplarBatch>)>,
    histograms: Vec<(WalSeq, Arc<HistogramBatch>)>,
    /// Last position handed out; positions never repeat, even after every
    /// record was removed.
    last: u64,
}

impl MemoryWal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every log record still held, in order.
    pub fn log_records(&self) -> Vec<(WalSeq, Arc<LogBatch>)> {
        self.inner.lock().logs.clone()
    }

    /// Every exemplar record still held, in order.
    pub fn exemplar_records(&self) -> Vec<(WalSeq, Arc<ExemplarBatch>)> {
        self.inner.lock().exemplars.clone()
    }

    /// Every native-histogram record still held, in order.
    pub fn histogram_records(&self) -> Vec<(WalSeq, Arc<HistogramBatch>)> {
        self.inner.lock().histograms.clone()
    }

    /// Every sample record still held, in order.
    pub fn records(&self) -> Vec<(WalSeq, Arc<WriteBatch>)> {
        self.inner.lock().records.clone()
    }
}

impl Wal for MemoryWal {
    fn append(&self, batch: Arc<WriteBatch>) -> AppendFuture {
        let mut inner = self.inner.lock();
        inner.last += 1;
        let seq = WalSeq(inner.last);
        inner.records.push((seq, batch));
        Box::pin(async move { Ok(seq) })
    }

    fn append_logs(&self, batch: Arc<LogBatch>) -> AppendFuture {
        let mut inner = self.inner.lock();
        inner.last += 1;
        let seq = WalSeq(inner.last);
        inner.logs.push((seq, batch));
        Box::pin(async move { Ok(seq) })
    }

    fn append_exemplars(&self, batch: Arc<ExemplarBatch>) -> AppendFuture {
        let mut inner = self.inner.lock();
        inner.last += 1;
        let seq = WalSeq(inner.last);
        inner.exemplars.push((seq, batch));
        Box::pin(async move { Ok(seq) })
    }

    fn append_histograms(&self, batch: Arc<HistogramBatch>) -> AppendFuture {
        let mut inner = self.inner.lock();
        inner.last += 1;
        let seq = WalSeq(inner.last);
        inner.histograms.push((seq, batch));
        Box::pin(async move { Ok(seq) })
    }

    fn remove_segments_before(&self, seq: WalSeq) -> Result<usize, WalError> {
        let inner = &mut *self.inner.lock();
        let held =
            |i: &Inner| i.records.len() + i.logs.len() + i.exemplars.len() + i.histograms.len();
        let before = held(inner);
        inner.records.retain(|(s, _)| *s >= seq);
        inner.logs.retain(|(s, _)| *s >= seq);
        inner.exemplars.retain(|(s, _)| *s >= seq);
        inner.histograms.retain(|(s, _)| *s >= seq);
        Ok(before - held(inner))
    }

    fn stats(&self) -> WalStats {
        let inner = self.inner.lock();
        WalStats {
            last_seq: (inner.last > 0).then_some(WalSeq(inner.last)),
            segments: 1,
            bytes: 0,
            ..WalStats::default()
        }
    }

    fn shutdown(&self) {}
}
