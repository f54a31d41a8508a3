//! Strata's write-ahead log.
//!
//! Second stage of the pipeline: ingest hands a validated
//! [`WriteBatch`](strata_types::WriteBatch) to the WAL, and the write is
//! acknowledged only once its record is on disk and fsynced. The promises:
//!
//! * **Durability.** [`Wal::append`] resolves only after the record and every
//!   record before it have been written and `fdatasync`ed. Concurrent appends
//!   share one fsync (group commit, see [`SegmentedWal`]).
//! * **Order.** Records get consecutive [`WalSeq`] numbers; replay yields them
//!   in that order.
//! * **Recovery.** A torn or corrupt tail is truncated at the last valid
//!   record and logged; it never stops startup. An I/O error while reading is
//!   an error, not silent truncation.
//! * **Checkpoints.** [`Wal::remove_segments_before`] deletes segments whose
//!   records are all covered by a flush.
//!
//! On-disk layout (pinned by golden-bytes tests in `segment/tests.rs` and
//! `record/tests.rs`): see [`segment`] and [`record`].

mod error;
mod memory;
pub mod record;
pub mod segment;
mod writer;

pub use error::WalError;
pub use memory::MemoryWal;
pub use record::{RecordError, SegmentDecoder, SegmentEncoder, WalRecord};
pub use writer::{ReplaySummary, SegmentedWal, WalConfig, WalStats};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use strata_types::{ExemplarBatch, HistogramBatch, LogBatch, WriteBatch};

/// Position of a record in the log. Consecutive, starting at 1 (0: before
/// every record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSeq(pub u64);

impl std::fmt::Display for WalSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Resolves when an appended record is durable.
pub type AppendFuture = Pin<Box<dyn Future<Output = Result<WalSeq, WalError>> + Send>>;

/// The seam between ingest and the log. Held as `Arc<dyn Wal>` so tests can
/// plug in [`MemoryWal`].
pub trait Wal: Send + Sync + std::fmt::Debug {
    /// Appends one batch as a record; the future resolves after it is
    /// fsynced.
    fn append(&self, batch: Arc<WriteBatch>) -> AppendFuture;

    /// Appends one batch of log entries as a record; the future resolves
    /// after it is fsynced. Shares the log, its order and its fsyncs with
    /// samples.
    fn append_logs(&self, batch: Arc<LogBatch>) -> AppendFuture;

    /// Appends one batch of exemplars as a record; the future resolves
    /// after it is fsynced.
    fn append_exemplars(&self, batch: Arc<ExemplarBatch>) -> AppendFuture;

    /// Appends one batch of native histograms as a record; the future
    /// resolves after it is fsynced.
    fn append_histograms(&self, batch: Arc<HistogramBatch>) -> AppendFuture;

    /// Deletes every closed segment whose records all have a sequence number
    /// below `seq`. Returns how many segments were removed.
    fn remove_segments_before(&self, seq: WalSeq) -> Result<usize, WalError>;

    /// Counters for `/metrics` and system tables.
    fn stats(&self) -> WalStats;

    /// Stops accepting appends, completes the ones in flight and syncs.
    fn shutdown(&self);
}
