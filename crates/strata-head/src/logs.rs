//! The log head: recent log entries of every tenant, by stream.
//!
//! A stream is kept as its labels and its entries in arrival order;
//! readers get them sorted by time, with Loki's deduplication (an entry
//! with the same timestamp and line as another of its stream is the same
//! entry sent twice). Stream selection uses the same [`Matcher`]s as
//! series selection (a matcher that matches the empty string also matches
//! streams without the label).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use strata_types::{Labels, LogBatch, LogEntry, TenantId};

use crate::Matcher;
use crate::tenants::{TenantPart, Tenants};

/// What one append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogAppendStats {
    pub entries: u64,
    pub bytes: u64,
    pub new_streams: u64,
}

/// All tenants' log heads.
#[derive(Debug, Default)]
pub struct LogHead {
    tenants: Tenants<TenantLogs>,
}

impl LogHead {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a durable batch to its tenant's log head.
    pub fn append(&self, batch: &LogBatch) -> LogAppendStats {
        self.tenants.get_or_create(&batch.tenant).append(batch)
    }

    /// The log head of `tenant`, if it has written logs since the last
    /// freeze.
    pub fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantLogs>> {
        self.tenants.get(tenant)
    }

    /// Takes every tenant's log head out for flushing (see
    /// [`crate::Head::freeze`]).
    pub fn freeze(&self) -> Vec<Arc<TenantLogs>> {
        self.tenants.take_all()
    }

    /// Takes `tenant`'s log head out for flushing; the others stay.
    pub fn freeze_tenant(&self, tenant: &TenantId) -> Option<Arc<TenantLogs>> {
        self.tenants.take(tenant)
    }

    /// Entries appended since the last freeze.
    pub fn entries_appended(&self) -> u64 {
        self.tenants.sum(TenantLogs::entries)
    }

    /// Line and metadata bytes appended since the last freeze.
    pub fn bytes_appended(&self) -> u64 {
        self.tenants.sum(TenantLogs::bytes)
    }
}

impl TenantPart for TenantLogs {
    fn new_for(tenant: TenantId) -> Self {
        TenantLogs::new(tenant)
    }

    fn tenant_id(&self) -> &TenantId {
        self.tenant()
    }
}

#[derive(Debug)]
struct StreamBuf {
    labels: Labels,
    entries: Vec<LogEntry>,
}

/// One stream's entries as a reader sees them: sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStreamSnapshot {
    pub stream_id: u64,
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

/// One tenant's log head.
#[derive(Debug)]
pub struct TenantLogs {
    tenant: TenantId,
    streams: RwLock<HashMap<u64, StreamBuf>>,
    entries: AtomicU64,
    bytes: AtomicU64,
    min_ns: AtomicU64,
}

impl TenantLogs {
    fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            streams: RwLock::new(HashMap::new()),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Streams held.
    pub fn stream_count(&self) -> usize {
        self.streams.read().len()
    }

    fn append(&self, batch: &LogBatch) -> LogAppendStats {
        let mut stats = LogAppendStats::default();
        let mut streams = self.streams.write();
        for s in &batch.streams {
            let id = s.stream_id().0;
            let buf = streams.entry(id).or_insert_with(|| {
                stats.new_streams += 1;
                StreamBuf {
                    labels: s.labels.clone(),
                    entries: Vec::new(),
                }
            });
            for e in &s.entries {
                stats.entries += 1;
                stats.bytes += e.bytes() as u64;
                let sortable = (e.timestamp_ns as u64) ^ (1 << 63);
                self.min_ns.fetch_min(sortable, Ordering::Relaxed);
            }
            buf.entries.extend(s.entries.iter().cloned());
        }
        self.entries.fetch_add(stats.entries, Ordering::Relaxed);
        self.bytes.fetch_add(stats.bytes, Ordering::Relaxed);
        stats
    }

    /// The streams whose labels satisfy every matcher, with their entries
    /// in `[start_ns, end_ns)` sorted by time and deduplicated. Streams
    /// with no entry in range are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<LogStreamSnapshot> {
        self.select_where(matchers, start_ns, end_ns, &|_| true)
    }

    /// [`Self::select`], keeping only entries `keep` accepts (checked
    /// before an entry is copied out).
    pub fn select_where(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        keep: &dyn Fn(&LogEntry) -> bool,
    ) -> Vec<LogStreamSnapshot> {
        let streams = self.streams.read();
        let mut out: Vec<LogStreamSnapshot> = streams
            .iter()
            .filter(|(_, s)| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .filter_map(|(id, s)| {
                let mut entries: Vec<LogEntry> = s
                    .entries
                    .iter()
                    .filter(|e| e.timestamp_ns >= start_ns && e.timestamp_ns < end_ns && keep(e))
                    .cloned()
                    .collect();
                if entries.is_empty() {
                    return None;
                }
                sort_dedup(&mut entries);
                Some(LogStreamSnapshot {
                    stream_id: *id,
                    labels: s.labels.clone(),
                    entries,
                })
            })
            .collect();
        out.sort_by_key(|s| s.stream_id as i64);
        out
    }

    /// Per matching stream with entries in `[start_ns, end_ns)`: its id,
    /// labels, entry count and line bytes (nothing copied but labels).
    pub fn stats(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<(u64, Labels, u64, u64)> {
        let streams = self.streams.read();
        streams
            .iter()
            .filter(|(_, s)| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .filter_map(|(id, s)| {
                // Counted as readers see them: an entry sent twice once.
                let mut seen: Vec<(i64, &str)> = s
                    .entries
                    .iter()
                    .filter(|e| e.timestamp_ns >= start_ns && e.timestamp_ns < end_ns)
                    .map(|e| (e.timestamp_ns, e.line.as_str()))
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                let n = seen.len() as u64;
                let bytes = seen.iter().map(|(_, l)| l.len() as u64).sum();
                (n > 0).then(|| (*id, s.labels.clone(), n, bytes))
            })
            .collect()
    }

    /// Every stream's id.
    pub fn stream_ids(&self) -> Vec<u64> {
        self.streams.read().keys().copied().collect()
    }

    /// Every stream's labels, whatever its entries' times.
    pub fn stream_labels(&self) -> Vec<Labels> {
        self.streams
            .read()
            .values()
            .map(|s| s.labels.clone())
            .collect()
    }

    /// Earliest entry time held (ns), if any.
    pub fn min_timestamp_ns(&self) -> Option<i64> {
        let v = self.min_ns.load(Ordering::Relaxed);
        (v != u64::MAX).then_some((v ^ (1 << 63)) as i64)
    }
}

/// Sorts entries by time (then line, so equal ones meet) and drops an
/// entry equal in time and line to the one before it.
pub fn sort_dedup(entries: &mut Vec<LogEntry>) {
    entries.sort_by(|a, b| {
        a.timestamp_ns
            .cmp(&b.timestamp_ns)
            .then_with(|| a.line.cmp(&b.line))
    });
    entries.dedup_by(|b, a| a.timestamp_ns == b.timestamp_ns && a.line == b.line);
}

#[cfg(test)]
mod tests {
    use strata_types::Label;

    use super::*;

    fn entry(ts: i64, line: &str) -> LogEntry {
        LogEntry {
            timestamp_ns: ts,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::try_stream_from_unsorted(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
            .unwrap()
    }

    #[test]
    fn selects_streams_by_matchers_and_time_sorted_without_duplicates() {
        let head = LogHead::new();
        let t = TenantId::try_new("acme").unwrap();
        let mut b = LogBatch::new(t.clone());
        b.push(
            labels(&[("job", "odoo"), ("level", "error")]),
            vec![
                entry(30, "c"),
                entry(10, "a"),
                entry(10, "a"),
                entry(20, "b"),
            ],
        );
        b.push(labels(&[("job", "redis")]), vec![entry(15, "x")]);
        let stats = head.append(&b);
        assert_eq!(stats.entries, 5);
        assert_eq!(stats.new_streams, 2);
        let logs = head.tenant(&t).unwrap();
        assert_eq!(logs.min_timestamp_ns(), Some(10));

        let odoo = logs.select(&[Matcher::equal("job", "odoo")], 0, 30);
        assert_eq!(odoo.len(), 1);
        assert_eq!(odoo[0].entries, vec![entry(10, "a"), entry(20, "b")]);
        // An empty-matching matcher also selects streams without the label.
        let no_level = logs.select(&[Matcher::equal("level", "")], 0, 100);
        assert_eq!(no_level.len(), 1);
        assert_eq!(no_level[0].labels.get("job"), Some("redis"));
        assert!(logs.select(&[], 100, 200).is_empty());

        assert_eq!(head.freeze().len(), 1);
        assert!(head.tenant(&t).is_none());
        assert_eq!(head.entries_appended(), 0);
    }
}
