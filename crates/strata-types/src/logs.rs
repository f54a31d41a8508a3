//! The unit of log ingest: one tenant's accepted streams and entries.
//!
//! A stream is a label set (Loki's stream selector labels); its entries
//! are lines with a nanosecond timestamp and structured metadata (Loki's
//! name for per-line key/value pairs: OTLP's severity, trace and span ids
//! and attributes land there). The stream id is the same 64-bit hash of
//! the sorted labels a metric series uses.

use crate::{Labels, SeriesId, TenantId};

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Unix nanoseconds.
    pub timestamp_ns: i64,
    pub line: String,
    /// Structured metadata, sorted by name, names unique.
    pub metadata: Vec<(String, String)>,
}

impl LogEntry {
    /// Bytes the entry carries (line and metadata): what log byte limits
    /// and usage count.
    pub fn bytes(&self) -> usize {
        self.line.len()
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// One stream and its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

impl LogStream {
    pub fn stream_id(&self) -> SeriesId {
        self.labels.series_id()
    }
}

/// A validated batch of log streams for one tenant: what a log write
/// endpoint hands to the WAL and then to the head.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    pub tenant: TenantId,
    pub streams: Vec<LogStream>,
}

impl LogBatch {
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            streams: Vec::new(),
        }
    }

    /// Entries in the batch.
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    /// Line and metadata bytes in the batch.
    pub fn bytes(&self) -> usize {
        self.streams
            .iter()
            .flat_map(|s| &s.entries)
            .map(LogEntry::bytes)
            .sum()
    }

    /// Adds `entries` to the stream `labels`, merging with an earlier
    /// stream of the same labels in this batch.
    pub fn push(&mut self, labels: Labels, entries: Vec<LogEntry>) {
        if entries.is_empty() {
            return;
        }
        match self.streams.iter_mut().find(|s| s.labels == labels) {
            Some(s) => s.entries.extend(entries),
            None => self.streams.push(LogStream { labels, entries }),
        }
    }
}
