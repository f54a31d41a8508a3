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

mod text;

use text::{Cursor, FIRST_CHUNK, TEXT_CHUNK, Text};

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

    /// Every tenant with a log head, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.tenants.ids()
    }

    /// Entries appended since the last freeze.
    pub fn entries_appended(&self) -> u64 {
        self.tenants.sum(TenantLogs::entries)
    }

    /// Line and metadata bytes appended since the last freeze.
    pub fn bytes_appended(&self) -> u64 {
        self.tenants.sum(TenantLogs::bytes)
    }

    /// Bytes of line text held for them (full chunks packed).
    pub fn text_bytes_held(&self) -> u64 {
        self.tenants.sum(TenantLogs::text_bytes_held)
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

/// What a read keeps of a stream's lines: `keep` decides line by line;
/// `needs`, when given, decides from what a chunk may contain whether any
/// of its lines can pass (it is called with `may_hold(s)`: whether the
/// chunk may contain the bytes `s`, false only when it surely does not),
/// so a packed chunk that cannot is not unpacked.
#[derive(Clone, Copy)]
pub struct LineFilter<'a> {
    pub keep: &'a dyn Fn(&str) -> bool,
    pub needs: Option<&'a ChunkNeeds<'a>>,
    /// Whether the entries read carry their lines (false: times and
    /// metadata only, all a count needs; nothing is unpacked or copied
    /// but what `keep` and the ordering of equal times read).
    pub with_lines: bool,
}

/// Given "may the chunk contain these bytes", whether a line of it may
/// pass ([`LineFilter::needs`]).
pub type ChunkNeeds<'a> = dyn Fn(&dyn Fn(&[u8]) -> bool) -> bool + 'a;

impl<'a> LineFilter<'a> {
    /// A filter deciding line by line only; the entries carry their lines.
    pub fn by(keep: &'a dyn Fn(&str) -> bool) -> Self {
        Self {
            keep,
            needs: None,
            with_lines: true,
        }
    }
}

/// One entry's structured metadata, as pushed.
type Metadata = Box<[(String, String)]>;

/// One stream's entries, column by column in arrival order: times, where
/// each line lies in the text chunks, and the metadata of the entries
/// that have any.
#[derive(Debug)]
struct StreamBuf {
    labels: Labels,
    times: Vec<i64>,
    /// Entry `i`'s line is `chunks[c][from..to]` for `lines[i] = (c, from, to)`.
    lines: Vec<(u32, u32, u32)>,
    chunks: Vec<Text>,
    /// (entry, metadata) for entries with metadata, by entry.
    metadata: Vec<(u32, Metadata)>,
    /// Whether entries arrived in time order (almost always): a time
    /// range is then found by binary search, not by a pass over all.
    in_order: bool,
}

impl StreamBuf {
    fn new(labels: Labels) -> Self {
        Self {
            labels,
            times: Vec::new(),
            lines: Vec::new(),
            chunks: Vec::new(),
            metadata: Vec::new(),
            in_order: true,
        }
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    /// Appends `e`; the bytes of text this added to what is held (a
    /// chunk started, less what packing the full one saved).
    fn push(&mut self, e: &LogEntry) -> isize {
        let line = e.line.as_str();
        let mut grew = 0isize;
        let room = match self.chunks.last() {
            Some(Text::Plain(c)) => Some(c.capacity() - c.len()),
            _ => None,
        };
        if room.is_none_or(|r| r < line.len()) {
            let last = self.chunks.pop();
            let size = match &last {
                Some(Text::Plain(c)) => (c.capacity() * 2).min(TEXT_CHUNK),
                _ => FIRST_CHUNK,
            };
            if let Some(last) = last {
                let before = last.held() as isize;
                let sealed = last.seal();
                grew += sealed.held() as isize - before;
                self.chunks.push(sealed);
            }
            let chunk = String::with_capacity(size.max(line.len()));
            grew += chunk.capacity() as isize;
            self.chunks.push(Text::Plain(chunk));
        }
        let c = self.chunks.len() - 1;
        let Some(Text::Plain(chunk)) = self.chunks.last_mut() else {
            // Pushed just above when the last was not an open chunk.
            return grew;
        };
        let from = chunk.len();
        chunk.push_str(line);
        // A chunk holds at most max(TEXT_CHUNK, one line) bytes, and a
        // line is at most the push body limit: offsets fit u32.
        self.lines.push((c as u32, from as u32, chunk.len() as u32));
        if !e.metadata.is_empty() {
            self.metadata.push((
                self.times.len() as u32,
                e.metadata.clone().into_boxed_slice(),
            ));
        }
        if self.times.last().is_some_and(|&t| t > e.timestamp_ns) {
            self.in_order = false;
        }
        self.times.push(e.timestamp_ns);
        grew
    }

    /// This stream as a cursor tells it apart (its address, never
    /// followed).
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Line `i`, read through `cursor`.
    fn line<'a>(&'a self, cursor: &'a mut Cursor, i: usize) -> &'a str {
        cursor.line(self.key(), &self.chunks, self.lines[i])
    }

    fn line_len(&self, i: usize) -> usize {
        let (_, from, to) = self.lines[i];
        (to - from) as usize
    }

    fn metadata_of(&self, i: usize) -> &[(String, String)] {
        match self
            .metadata
            .binary_search_by_key(&(i as u32), |(at, _)| *at)
        {
            Ok(at) => &self.metadata[at].1,
            Err(_) => &[],
        }
    }

    /// The entries in `[start_ns, end_ns)` that `filter` keeps (all with
    /// `None`), sorted by time then line, one of each equal pair: their
    /// positions.
    fn sorted(
        &self,
        start_ns: i64,
        end_ns: i64,
        filter: Option<LineFilter<'_>>,
        cursor: &mut Cursor,
    ) -> Vec<u32> {
        let (from, to) = if self.in_order {
            (
                self.times.partition_point(|&t| t < start_ns),
                self.times.partition_point(|&t| t < end_ns),
            )
        } else {
            (0, self.len())
        };
        // The chunk last asked of `filter.needs`, and its answer.
        let mut chunk: Option<(u32, bool)> = None;
        let mut at: Vec<u32> = (from as u32..to as u32)
            .filter(|&i| {
                let t = self.times[i as usize];
                if t < start_ns || t >= end_ns {
                    return false;
                }
                let Some(filter) = filter else {
                    return true;
                };
                if let Some(needs) = filter.needs {
                    let c = self.lines[i as usize].0;
                    let pass = match chunk {
                        Some((asked, pass)) if asked == c => pass,
                        _ => {
                            let pass = cursor.may_pass(self.key(), &self.chunks, c, needs);
                            chunk = Some((c, pass));
                            pass
                        }
                    };
                    if !pass {
                        return false;
                    }
                }
                (filter.keep)(self.line(cursor, i as usize))
            })
            .collect();
        // Arrival order is almost always time order: the stable sort
        // finds the run in one pass. Where times tie, lines decide (so
        // equal entries meet) and an entry equal to the one before it
        // goes.
        at.sort_by_key(|&i| self.times[i as usize]);
        let mut out = Vec::with_capacity(at.len());
        let mut run = 0;
        while run < at.len() {
            let t = self.times[at[run] as usize];
            let end = run + at[run..].partition_point(|&i| self.times[i as usize] == t);
            if end - run == 1 {
                out.push(at[run]);
            } else {
                let mut tied: Vec<(String, u32)> = at[run..end]
                    .iter()
                    .map(|&i| (self.line(cursor, i as usize).to_owned(), i))
                    .collect();
                tied.sort();
                tied.dedup_by(|b, a| a.0 == b.0);
                out.extend(tied.into_iter().map(|(_, i)| i));
            }
            run = end;
        }
        out
    }

    fn entry(&self, i: u32, cursor: &mut Cursor, with_line: bool) -> LogEntry {
        let i = i as usize;
        LogEntry {
            timestamp_ns: self.times[i],
            line: if with_line {
                self.line(cursor, i).to_owned()
            } else {
                String::new()
            },
            metadata: self.metadata_of(i).to_vec(),
        }
    }

    /// A snapshot of the entries at `at` (from [`Self::sorted`]), with
    /// their lines or without.
    fn snapshot(
        &self,
        id: u64,
        at: Vec<u32>,
        cursor: &mut Cursor,
        with_lines: bool,
    ) -> LogStreamSnapshot {
        LogStreamSnapshot {
            stream_id: id,
            labels: self.labels.clone(),
            entries: at
                .into_iter()
                .map(|i| self.entry(i, cursor, with_lines))
                .collect(),
        }
    }
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
    /// Bytes of line text held (packed chunks at their packed size).
    held: std::sync::atomic::AtomicI64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl TenantLogs {
    fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            streams: RwLock::new(HashMap::new()),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            held: std::sync::atomic::AtomicI64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
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

    /// Bytes of line text held in memory: what [`Self::bytes`] counts of
    /// lines, with full chunks packed, plus the open chunks' spare room.
    pub fn text_bytes_held(&self) -> u64 {
        self.held.load(Ordering::Relaxed).max(0) as u64
    }

    /// Streams held.
    pub fn stream_count(&self) -> usize {
        self.streams.read().len()
    }

    fn append(&self, batch: &LogBatch) -> LogAppendStats {
        let mut stats = LogAppendStats::default();
        let mut held = 0isize;
        let mut streams = self.streams.write();
        for s in &batch.streams {
            let id = s.stream_id().0;
            let buf = streams.entry(id).or_insert_with(|| {
                stats.new_streams += 1;
                StreamBuf::new(s.labels.clone())
            });
            for e in &s.entries {
                stats.entries += 1;
                stats.bytes += e.bytes() as u64;
                let sortable = (e.timestamp_ns as u64) ^ (1 << 63);
                self.min_ns.fetch_min(sortable, Ordering::Relaxed);
                self.max_ns.fetch_max(sortable, Ordering::Relaxed);
                held += buf.push(e);
            }
        }
        self.held.fetch_add(held as i64, Ordering::Relaxed);
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
        self.select_where(matchers, start_ns, end_ns, LineFilter::by(&|_| true))
    }

    /// [`Self::select`], keeping only entries whose line `filter` keeps
    /// (checked before an entry is copied out). Each stream is a snapshot
    /// of its own ([`Self::for_each_stream`]).
    pub fn select_where(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        filter: LineFilter<'_>,
    ) -> Vec<LogStreamSnapshot> {
        let mut out = Vec::new();
        self.for_each_stream(matchers, start_ns, end_ns, filter, &mut |s| out.push(s));
        out.sort_by_key(|s| s.stream_id as i64);
        out
    }

    /// [`Self::select_where`] one stream at a time: `visit` sees each
    /// matching stream's entries in range (sorted, deduplicated, those
    /// `filter` keeps) as it is copied out, holding the head's lock only
    /// while one stream is copied. What is read is at most one stream.
    pub fn for_each_stream(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        filter: LineFilter<'_>,
        visit: &mut dyn FnMut(LogStreamSnapshot),
    ) {
        let ids: Vec<u64> = self
            .streams
            .read()
            .iter()
            .filter(|(_, s)| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut cursor = Cursor::default();
        for id in ids {
            let snapshot = {
                let streams = self.streams.read();
                let Some(s) = streams.get(&id) else { continue };
                cursor.forget();
                let at = s.sorted(start_ns, end_ns, Some(filter), &mut cursor);
                if at.is_empty() {
                    continue;
                }
                s.snapshot(id, at, &mut cursor, filter.with_lines)
            };
            visit(snapshot);
        }
    }

    /// Every stream's id, in the order files hold them (as the signed
    /// integer they store).
    pub fn stream_ids_in_file_order(&self) -> Vec<u64> {
        let mut ids = self.stream_ids();
        ids.sort_by_key(|&id| id as i64);
        ids
    }

    /// One stream's entries in `[start_ns, end_ns)` as readers see them
    /// (`None`: no such stream or no entry there): a flush copies the
    /// head out one stream at a time.
    pub fn stream(&self, id: u64, start_ns: i64, end_ns: i64) -> Option<LogStreamSnapshot> {
        let streams = self.streams.read();
        let s = streams.get(&id)?;
        let mut cursor = Cursor::default();
        let at = s.sorted(start_ns, end_ns, None, &mut cursor);
        (!at.is_empty()).then(|| s.snapshot(id, at, &mut cursor, true))
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
        let mut cursor = Cursor::default();
        streams
            .iter()
            .filter(|(_, s)| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .filter_map(|(id, s)| {
                // Counted as readers see them: an entry sent twice once.
                cursor.forget();
                let seen = s.sorted(start_ns, end_ns, None, &mut cursor);
                let n = seen.len() as u64;
                let bytes = seen.iter().map(|&i| s.line_len(i as usize) as u64).sum();
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

    /// Latest entry time held (ns), if any.
    pub fn max_timestamp_ns(&self) -> Option<i64> {
        self.min_timestamp_ns()?;
        Some((self.max_ns.load(Ordering::Relaxed) ^ (1 << 63)) as i64)
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

    /// Full chunks are packed: the head holds a fraction of the text it
    /// was given, and every read (filters, ties of equal times across
    /// chunks, duplicates, late entries, the flush's copy) sees the lines
    /// as sent.
    #[test]
    fn packed_chunks_hold_less_and_read_back_as_sent() {
        let head = LogHead::new();
        let t = TenantId::try_new("acme").unwrap();
        let odoo = labels(&[("job", "odoo")]);
        // 20,000 lines of an Odoo log, ten per timestamp, each sent twice
        // in a later push, and a few arriving late.
        let line = |i: i64| {
            format!(
                "2026-12-07 10:{:02}:{:02},{:03} {} INFO odoo.addons.stock: picking WH/OUT/{:05} validated by user {}",
                (i / 600) % 60,
                (i / 10) % 60,
                i % 1000,
                4000 + i % 7,
                i,
                i % 13
            )
        };
        let sent: Vec<LogEntry> = (0..20_000i64).map(|i| entry(i / 10, &line(i))).collect();
        for (n, chunk) in sent.chunks(1_000).enumerate() {
            let mut b = LogBatch::new(t.clone());
            b.push(odoo.clone(), chunk.to_vec());
            if n % 4 == 1 {
                b.push(odoo.clone(), sent[(n - 1) * 1_000..n * 1_000].to_vec());
            }
            head.append(&b);
        }
        let mut b = LogBatch::new(t.clone());
        b.push(odoo.clone(), vec![entry(5, "late"), entry(1_000, "late")]);
        head.append(&b);
        let logs = head.tenant(&t).unwrap();
        let raw: usize = sent.iter().map(|e| e.line.len()).sum();
        assert!(
            logs.text_bytes_held() < raw as u64 / 2,
            "{} bytes held for {raw}",
            logs.text_bytes_held()
        );
        let mut want = sent.clone();
        want.push(entry(5, "late"));
        want.push(entry(1_000, "late"));
        sort_dedup(&mut want);
        let got = logs.select(&[], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].entries.len(), want.len());
        assert!(got[0].entries == want, "every line as sent, in order");
        let id = logs.stream_ids_in_file_order()[0];
        assert!(logs.stream(id, i64::MIN, i64::MAX).unwrap().entries == want);
        let wanted = |e: &LogEntry| e.line.contains("WH/OUT/12") || e.line == "late";
        let keep = |l: &str| l.contains("WH/OUT/12") || l == "late";
        let kept = logs.select_where(&[], 0, 1_500, LineFilter::by(&keep));
        let expect: Vec<LogEntry> = want
            .iter()
            .filter(|e| e.timestamp_ns < 1_500 && wanted(e))
            .cloned()
            .collect();
        assert!(kept[0].entries == expect);
        // A filter that says which chunks may hold its needle reads the
        // same lines, twice (the second time from the chunks' substrings).
        let needle = "WH/OUT/12345";
        let keep = |l: &str| l.contains(needle);
        let needs = |may_hold: &dyn Fn(&[u8]) -> bool| may_hold(needle.as_bytes());
        let filter = LineFilter {
            keep: &keep,
            needs: Some(&needs),
            with_lines: true,
        };
        let expect: Vec<LogEntry> = want.iter().filter(|e| keep(&e.line)).cloned().collect();
        assert_eq!(expect.len(), 1);
        for _ in 0..2 {
            let got = logs.select_where(&[], i64::MIN, i64::MAX, filter);
            assert!(got[0].entries == expect);
        }
        // A count reads times and metadata only.
        let counted = logs.select_where(
            &[],
            i64::MIN,
            i64::MAX,
            LineFilter {
                with_lines: false,
                ..LineFilter::by(&|_| true)
            },
        );
        assert_eq!(counted[0].entries.len(), want.len());
        assert!(counted[0].entries.iter().all(|e| e.line.is_empty()));
        let times: Vec<i64> = counted[0].entries.iter().map(|e| e.timestamp_ns).collect();
        let want_times: Vec<i64> = want.iter().map(|e| e.timestamp_ns).collect();
        assert_eq!(times, want_times);
        let absent = |l: &str| l.contains("no such text");
        let needs_absent = |may_hold: &dyn Fn(&[u8]) -> bool| may_hold(b"no such text");
        let none = logs.select_where(
            &[],
            i64::MIN,
            i64::MAX,
            LineFilter {
                keep: &absent,
                needs: Some(&needs_absent),
                with_lines: true,
            },
        );
        assert!(none.is_empty());
        // `needs` alone decides for packed chunks: told that none can hold
        // a passing line, a read keeping every line gets the lines of the
        // chunks not packed (the open one) and nothing else.
        let every = |_: &str| true;
        let no_chunk = |_: &dyn Fn(&[u8]) -> bool| false;
        let open_only = logs.select_where(
            &[],
            i64::MIN,
            i64::MAX,
            LineFilter {
                keep: &every,
                needs: Some(&no_chunk),
                with_lines: true,
            },
        );
        let n = open_only.first().map_or(0, |s| s.entries.len());
        assert!(n > 0 && n < want.len() / 10, "{n} of {}", want.len());
        let stats = logs.stats(&[], 100, 200);
        let in_range: Vec<&LogEntry> = want
            .iter()
            .filter(|e| (100..200).contains(&e.timestamp_ns))
            .collect();
        assert_eq!(stats[0].2, in_range.len() as u64);
        assert_eq!(
            stats[0].3,
            in_range.iter().map(|e| e.line.len() as u64).sum::<u64>()
        );
    }

    /// Lines packed into shared text chunks come back whole, with their
    /// own metadata, whatever their length and order of arrival.
    #[test]
    fn packed_lines_come_back_whole_with_their_metadata() {
        let head = LogHead::new();
        let t = TenantId::try_new("acme").unwrap();
        let long = "x".repeat(3 * TEXT_CHUNK / 2);
        let mut sent: Vec<LogEntry> = (0..2_000i64)
            .map(|i| LogEntry {
                timestamp_ns: (i * 7919) % 2_000,
                line: if i == 700 {
                    long.clone()
                } else {
                    format!("line {i} {}", "y".repeat((i % 300) as usize))
                },
                metadata: if i % 3 == 0 {
                    vec![("trace_id".into(), format!("t{i}"))]
                } else {
                    Vec::new()
                },
            })
            .collect();
        for chunk in sent.chunks(128) {
            let mut b = LogBatch::new(t.clone());
            b.push(labels(&[("job", "odoo")]), chunk.to_vec());
            head.append(&b);
        }
        let logs = head.tenant(&t).unwrap();
        let got = logs.select(&[], i64::MIN, i64::MAX);
        sort_dedup(&mut sent);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].entries, sent);
        let id = logs.stream_ids_in_file_order()[0];
        assert_eq!(logs.stream(id, i64::MIN, i64::MAX).unwrap().entries, sent);
        assert_eq!(
            logs.stream(id, 100, 102).unwrap().entries,
            sent[100..102].to_vec()
        );
        assert!(logs.stream(id, 5_000, 6_000).is_none());
        let kept = logs.select_where(
            &[],
            i64::MIN,
            i64::MAX,
            LineFilter::by(&|l| l.starts_with("line 12")),
        );
        assert!(
            kept[0]
                .entries
                .iter()
                .all(|e| e.line.starts_with("line 12"))
        );
        assert_eq!(kept[0].entries.len(), 111);
        // Entries in time order are found by time; one arriving late
        // is still found.
        let api = labels(&[("job", "api")]);
        let entry = |t: i64| LogEntry {
            timestamp_ns: t,
            line: format!("at {t}"),
            metadata: Vec::new(),
        };
        let mut b = LogBatch::new(t.clone());
        b.push(api.clone(), (0..100).map(|i| entry(i * 10)).collect());
        head.append(&b);
        let times = |lo, hi| -> Vec<i64> {
            let m = [Matcher::equal("job", "api")];
            let got = logs.select(&m, lo, hi);
            got.iter()
                .flat_map(|s| s.entries.iter().map(|e| e.timestamp_ns))
                .collect()
        };
        assert_eq!(times(95, 130), [100, 110, 120]);
        let mut b = LogBatch::new(t.clone());
        b.push(api, vec![entry(105)]);
        head.append(&b);
        assert_eq!(times(95, 130), [100, 105, 110, 120]);
    }
}
