//! LogQL's view of a tenant: a [`LogSource`] over its log heads and its
//! logs table's files.
//!
//! Heads are selected through their stream index; files are read with
//! the same scan SQL's `logs` table uses (time pruning by file and row
//! group statistics), their streams matched once per stream id.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, MapArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use async_trait::async_trait;
use datafusion::prelude::{SessionContext, col, lit};
use futures::TryStreamExt;
use strata_head::Matcher;
use strata_query_lang::logql::{
    EvalError, LineFilter, LogSource, MatchOp, Part, SourceEntry, SourceStream, StreamMatcher,
    Visit,
};
use strata_storage::{LogView, map_row};

use crate::line_index_cache::LineIndexCache;
use crate::logs::LogsTable;

/// A stream's labels, entries and line bytes in a time range.
pub type StreamStats = (Vec<(String, String)>, u64, u64);

/// What a scan of the data files reads of each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Stream ids and labels: which streams have rows.
    Streams,
    /// Whole entries.
    Entries,
    /// Entries without their lines (times and metadata: a count).
    Times,
}

/// What a scan of files hands a run of one stream's rows to: the stream
/// id, its labels and the entries.
type RunSink<'s> = dyn FnMut(u64, &[(String, String)], Vec<SourceEntry>) + Send + 's;

/// A tenant's logs for LogQL.
pub struct LogQlSource {
    view: LogView,
    ctx: SessionContext,
    line_index: Arc<LineIndexCache>,
}

impl LogQlSource {
    pub(crate) fn new(view: LogView, ctx: SessionContext, line_index: Arc<LineIndexCache>) -> Self {
        Self {
            view,
            ctx,
            line_index,
        }
    }

    /// SQL's `logs` table over `view`, with the line indexes.
    fn table(&self, view: LogView) -> Arc<LogsTable> {
        Arc::new(LogsTable::new(view).with_line_index(Arc::clone(&self.line_index)))
    }

    /// The label names (and, with `name`, that label's values) of the
    /// streams with entries in `[start_ns, end_ns)`, sorted.
    pub async fn label_values(
        &self,
        name: Option<&str>,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, EvalError> {
        let streams = self.streams(matchers, &[], start_ns, end_ns, false).await?;
        let mut out: Vec<String> = streams
            .iter()
            .flat_map(|s| s.labels.iter())
            .filter_map(|(k, v)| match name {
                None => Some(k.clone()),
                Some(n) if n == k => Some(v.clone()),
                Some(_) => None,
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The streams of the log heads (as written at `now_ms`) and of the
    /// log files written since `since_ms` (as written when the file was),
    /// as (id, "", ms).
    pub async fn stream_ids_since(
        &self,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(u64, Arc<str>, i64)>, EvalError> {
        let none: Arc<str> = Arc::from("");
        let mut out: Vec<(u64, Arc<str>, i64)> = Vec::new();
        for head in &self.view.heads {
            out.extend(
                head.stream_ids()
                    .into_iter()
                    .map(|id| (id, Arc::clone(&none), now_ms)),
            );
        }
        for file in self.view.files.iter().filter(|f| f.written_ms >= since_ms) {
            let mut one = self.view.clone();
            one.heads = Vec::new();
            one.files = Arc::from(vec![file.clone()]);
            one.not_before_ms = i64::MIN;
            let batches = self
                .ctx
                .read_table(self.table(one))
                .map_err(df_err)?
                .select(vec![col("stream_id")])
                .map_err(df_err)?
                .distinct()
                .map_err(df_err)?
                .collect()
                .await
                .map_err(df_err)?;
            for b in &batches {
                let ids = b.column(0);
                let ids = ids
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| EvalError::Source("stream_id is not an Int64 column".into()))?;
                out.extend(
                    ids.iter()
                        .flatten()
                        .map(|id| (id as u64, Arc::clone(&none), file.written_ms.min(now_ms))),
                );
            }
        }
        Ok(out)
    }

    /// `start_ns` raised to the tenant's lookback floor.
    fn floor(&self, start_ns: i64) -> i64 {
        start_ns.max(self.view.not_before_ms.saturating_mul(1_000_000))
    }

    /// Whether any data file may hold entries in `[start_ns, end_ns)`.
    fn files_hold(&self, start_ns: i64, end_ns: i64) -> bool {
        self.view.files.iter().any(|f| {
            f.stats.rows > 0 && f.stats.min_ts_ns < end_ns && f.stats.max_ts_ns >= start_ns
        })
    }

    /// The data files' entries in `[start_ns, end_ns)`, as SQL's `logs`
    /// reads them (heads left out: they are read through their index).
    fn files_frame(
        &self,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<datafusion::dataframe::DataFrame, EvalError> {
        let mut files_only = self.view.clone();
        files_only.heads = Vec::new();
        let ts = |ns: i64| {
            lit(datafusion::common::ScalarValue::TimestampNanosecond(
                Some(ns),
                Some("UTC".into()),
            ))
        };
        self.ctx
            .read_table(self.table(files_only))
            .map_err(df_err)?
            .filter(
                col("timestamp")
                    .gt_eq(ts(start_ns))
                    .and(col("timestamp").lt(ts(end_ns))),
            )
            .map_err(df_err)
    }

    /// Per stream with entries in `[start_ns, end_ns)`: its labels, entry
    /// count and line bytes — without copying lines (Grafana asks this
    /// before every query, `index/stats` and `index/volume`).
    pub async fn stream_stats(
        &self,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<StreamStats>, EvalError> {
        let matchers = head_matchers(matchers)?;
        let start_ns = self.floor(start_ns);
        let mut by_id: HashMap<u64, StreamStats> = HashMap::new();
        if start_ns >= end_ns {
            return Ok(Vec::new());
        }
        for head in &self.view.heads {
            for (id, labels, n, bytes) in head.stats(&matchers, start_ns, end_ns) {
                let e = by_id
                    .entry(id)
                    .or_insert_with(|| (label_pairs(&labels), 0, 0));
                e.1 += n;
                e.2 += bytes;
            }
        }
        if self.files_hold(start_ns, end_ns) {
            let df = self
                .files_frame(start_ns, end_ns)?
                .select(vec![
                    col("stream_id"),
                    col("labels"),
                    datafusion::functions::expr_fn::octet_length(col("line")),
                ])
                .map_err(df_err)?;
            let mut stream = df.execute_stream().await.map_err(df_err)?;
            let mut matched: HashMap<u64, bool> = HashMap::new();
            while let Some(batch) = stream.try_next().await.map_err(df_err)? {
                let ids = batch.column(0).as_primitive::<Int64Type>();
                let labels = batch.column(1).as_map();
                let lens =
                    arrow::compute::cast(batch.column(2), &arrow::datatypes::DataType::Int64)
                        .map_err(|e| EvalError::Source(e.to_string()))?;
                let lens = lens.as_primitive::<Int64Type>();
                for row in 0..batch.num_rows() {
                    let id = ids.value(row) as u64;
                    let ok = *matched.entry(id).or_insert_with(|| {
                        matching_labels(labels, row, &matchers)
                            .map(|pairs| by_id.entry(id).or_insert((pairs, 0, 0)))
                            .is_some()
                    });
                    if ok && let Some(e) = by_id.get_mut(&id) {
                        e.1 += 1;
                        e.2 += u64::try_from(lens.value(row)).unwrap_or(0);
                    }
                }
            }
        }
        let mut out: Vec<_> = by_id.into_values().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Streams (labels only when `entries` is false) with entries in
    /// `[start_ns, end_ns)` whose lines pass `line_filters`.
    pub async fn streams(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
        entries: bool,
    ) -> Result<Vec<SourceStream>, EvalError> {
        let matchers = head_matchers(matchers)?;
        let start_ns = self.floor(start_ns);
        let mut by_id: HashMap<u64, SourceStream> = HashMap::new();
        if start_ns >= end_ns {
            return Ok(Vec::new());
        }
        let test = head_line_test(line_filters);
        let needs =
            |may_hold: &dyn Fn(&[u8]) -> bool| test.as_ref().is_none_or(|t| t.may_pass(may_hold));
        let keep = |line: &str| line_filters.iter().all(|f| f.passes(line));
        let filter = strata_head::LineFilter {
            keep: &keep,
            needs: test.is_some().then_some(&needs as _),
            with_lines: entries,
        };
        for head in &self.view.heads {
            for s in head.select_where(&matchers, start_ns, end_ns, filter) {
                let stream = by_id.entry(s.stream_id).or_insert_with(|| SourceStream {
                    labels: label_pairs(&s.labels),
                    entries: Vec::new(),
                });
                if entries {
                    stream
                        .entries
                        .extend(s.entries.into_iter().map(source_entry));
                }
            }
        }
        if self.files_hold(start_ns, end_ns) {
            self.read_files(
                &matchers,
                line_filters,
                start_ns,
                end_ns,
                entries,
                &mut by_id,
            )
            .await?;
        }
        let mut out: Vec<SourceStream> = by_id.into_values().collect();
        for s in &mut out {
            s.entries.sort_by(|a, b| {
                a.timestamp_ns
                    .cmp(&b.timestamp_ns)
                    .then_with(|| a.line.cmp(&b.line))
            });
            s.entries
                .dedup_by(|b, a| a.timestamp_ns == b.timestamp_ns && a.line == b.line);
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    async fn read_files(
        &self,
        matchers: &[Matcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
        entries: bool,
        by_id: &mut HashMap<u64, SourceStream>,
    ) -> Result<(), EvalError> {
        let mut sink = |id: u64, labels: &[(String, String)], run: Vec<SourceEntry>| {
            by_id
                .entry(id)
                .or_insert_with(|| SourceStream {
                    labels: labels.to_vec(),
                    entries: Vec::new(),
                })
                .entries
                .extend(run);
        };
        let read = if entries {
            Read::Entries
        } else {
            Read::Streams
        };
        self.scan_files(matchers, line_filters, start_ns, end_ns, read, &mut sink)
            .await
    }

    /// The data files' entries in `[start_ns, end_ns)` of the streams
    /// matching `matchers` whose lines pass `line_filters`, handed to
    /// `sink` a run of one stream's rows at a time (stream id, labels,
    /// entries — none when `entries` is false), batch by batch: a scan
    /// holds one batch.
    async fn scan_files(
        &self,
        matchers: &[Matcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
        read: Read,
        sink: &mut RunSink<'_>,
    ) -> Result<(), EvalError> {
        let mut df = self.files_frame(start_ns, end_ns)?;
        // Line filters run in the Parquet scan: only matching rows'
        // other columns are decoded.
        for f in line_filters {
            df = df.filter(line_filter_expr(f)).map_err(df_err)?;
        }
        df = match read {
            Read::Entries => {
                df.select_columns(&["stream_id", "labels", "timestamp", "line", "metadata"])
            }
            // The line column is neither decoded nor copied.
            Read::Times => df.select_columns(&["stream_id", "labels", "timestamp", "metadata"]),
            Read::Streams => df.select_columns(&["stream_id", "labels"]),
        }
        .map_err(df_err)?;
        let mut stream = df.execute_stream().await.map_err(df_err)?;
        // Stream id → its labels if it matches (read once per id).
        let mut matched: HashMap<u64, Option<Vec<(String, String)>>> = HashMap::new();
        while let Some(batch) = stream.try_next().await.map_err(df_err)? {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let labels = batch.column(1).as_map();
            let mut row = 0;
            while row < batch.num_rows() {
                // Files are sorted by stream: a run of one id.
                let id = ids.value(row);
                let mut end = row + 1;
                while end < batch.num_rows() && ids.value(end) == id {
                    end += 1;
                }
                let pairs = matched
                    .entry(id as u64)
                    .or_insert_with(|| matching_labels(labels, row, matchers));
                if let Some(pairs) = pairs {
                    let run = match read {
                        Read::Entries => {
                            let ts = batch.column(2).as_primitive::<TimestampNanosecondType>();
                            let line = batch.column(3).as_string::<i32>();
                            let meta = batch.column(4).as_map();
                            (row..end)
                                .map(|r| SourceEntry {
                                    timestamp_ns: ts.value(r),
                                    line: line.value(r).to_owned(),
                                    metadata: map_row(meta, r),
                                })
                                .collect()
                        }
                        Read::Times => {
                            let ts = batch.column(2).as_primitive::<TimestampNanosecondType>();
                            let meta = batch.column(3).as_map();
                            (row..end)
                                .map(|r| SourceEntry {
                                    timestamp_ns: ts.value(r),
                                    line: String::new(),
                                    metadata: map_row(meta, r),
                                })
                                .collect()
                        }
                        Read::Streams => Vec::new(),
                    };
                    sink(id as u64, pairs, run);
                }
                row = end;
            }
        }
        Ok(())
    }

    /// A source over some of this one's parts (by [`Part::id`]).
    fn part_view(&self, parts: &[usize]) -> Result<LogQlSource, EvalError> {
        let mut view = self.view.clone();
        view.heads = Vec::new();
        let mut files = Vec::new();
        for &id in parts {
            match self.part_of(id) {
                Some(PartOf::Head(h)) => view.heads.push(Arc::clone(&self.view.heads[h])),
                Some(PartOf::File(f)) => files.push(self.view.files[f].clone()),
                None => {
                    return Err(EvalError::Source(format!(
                        "no part {id} in the tenant's logs"
                    )));
                }
            }
        }
        view.files = Arc::from(files);
        Ok(LogQlSource::new(
            view,
            self.ctx.clone(),
            Arc::clone(&self.line_index),
        ))
    }
}

/// A head stream's labels as a source hands them out.
fn label_pairs(labels: &strata_types::Labels) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn source_entry(e: strata_types::LogEntry) -> SourceEntry {
    SourceEntry {
        timestamp_ns: e.timestamp_ns,
        line: e.line,
        metadata: e.metadata,
    }
}

fn df_err(e: datafusion::error::DataFusionError) -> EvalError {
    EvalError::Source(e.to_string())
}

/// The stream's labels at `row` when they satisfy every matcher.
fn matching_labels(
    labels: &MapArray,
    row: usize,
    matchers: &[Matcher],
) -> Option<Vec<(String, String)>> {
    let pairs = map_row(labels, row);
    matchers
        .iter()
        .all(|m| {
            m.matches(
                pairs
                    .iter()
                    .find(|(k, _)| *k == m.name)
                    .map_or("", |(_, v)| v),
            )
        })
        .then_some(pairs)
}

/// What the line filters require a line to contain, for the log head's
/// packed chunks (`None`: nothing they can rule out).
fn head_line_test(line_filters: &[LineFilter]) -> Option<strata_storage::LineTest> {
    let exprs: Vec<_> = line_filters.iter().map(line_filter_expr).collect();
    crate::line_needs::need_of(&exprs).map(|need| strata_storage::LineTest::new(&need))
}

/// A LogQL line filter as a DataFusion predicate on `line`: `|=` is
/// `LIKE '%s%'` (with `%`, `_` and `\` escaped), `|~` the unanchored
/// regex match `~`.
fn line_filter_expr(f: &LineFilter) -> datafusion::prelude::Expr {
    use datafusion::logical_expr::{BinaryExpr, Like, Operator};
    use datafusion::prelude::Expr;
    let like = |negated| {
        let mut pattern = String::with_capacity(f.value.len() + 2);
        pattern.push('%');
        for c in f.value.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Expr::Like(Like::new(
            negated,
            Box::new(col("line")),
            Box::new(lit(pattern)),
            Some('\\'),
            false,
        ))
    };
    let regex = |op| {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col("line")),
            op,
            Box::new(lit(f.value.clone())),
        ))
    };
    match f.op {
        MatchOp::Equal => like(false),
        MatchOp::NotEqual => like(true),
        MatchOp::Regex => regex(Operator::RegexMatch),
        MatchOp::NotRegex => regex(Operator::RegexNotMatch),
    }
}

fn head_matchers(matchers: &[StreamMatcher]) -> Result<Vec<Matcher>, EvalError> {
    matchers
        .iter()
        .map(|m| {
            let bad = |e: strata_head::HeadError| EvalError::Invalid(e.to_string());
            Ok(match m.op {
                MatchOp::Equal => Matcher::equal(&m.name, &m.value),
                MatchOp::NotEqual => Matcher::not_equal(&m.name, &m.value),
                MatchOp::Regex => Matcher::regex(&m.name, &m.value).map_err(bad)?,
                MatchOp::NotRegex => Matcher::not_regex(&m.name, &m.value).map_err(bad)?,
            })
        })
        .collect()
}

/// A part of a tenant's logs: a head or a data file (by index).
#[derive(Debug, Clone, Copy)]
enum PartOf {
    Head(usize),
    File(usize),
}

impl LogQlSource {
    /// The head or file a part id names.
    fn part_of(&self, id: usize) -> Option<PartOf> {
        let heads = self.view.heads.len();
        if id < heads {
            Some(PartOf::Head(id))
        } else {
            (id - heads < self.view.files.len()).then(|| PartOf::File(id - heads))
        }
    }

    /// The heads holding entries and the files whose entries may lie in
    /// `[start_ns, end_ns)`, with their time extents (a head's as of
    /// now: entries it takes while a query runs may be left out of it, as
    /// if they had come after). A part's id is its place
    /// among all heads, then all files ([`Self::part_of`]).
    fn part_list(&self, start_ns: i64, end_ns: i64) -> Vec<Part> {
        let start_ns = self.floor(start_ns);
        let mut out = Vec::new();
        for (i, h) in self.view.heads.iter().enumerate() {
            if let (Some(min_ns), Some(max_ns)) = (h.min_timestamp_ns(), h.max_timestamp_ns()) {
                out.push(Part {
                    id: i,
                    min_ns,
                    max_ns,
                    rows: h.entries(),
                });
            }
        }
        for (i, f) in self.view.files.iter().enumerate() {
            if f.stats.rows > 0 && f.stats.min_ts_ns < end_ns && f.stats.max_ts_ns >= start_ns {
                out.push(Part {
                    id: self.view.heads.len() + i,
                    min_ns: f.stats.min_ts_ns,
                    max_ns: f.stats.max_ts_ns,
                    rows: f.stats.rows,
                });
            }
        }
        out
    }
}

#[async_trait]
impl LogSource for LogQlSource {
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        self.streams(matchers, line_filters, start_ns, end_ns, true)
            .await
    }

    fn parts(&self, start_ns: i64, end_ns: i64) -> Vec<Part> {
        self.part_list(start_ns, end_ns)
    }

    async fn select_parts(
        &self,
        parts: &[usize],
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        self.part_view(parts)?
            .streams(matchers, line_filters, start_ns, end_ns, true)
            .await
    }

    async fn scan_part(
        &self,
        part: usize,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        lines: bool,
        start_ns: i64,
        end_ns: i64,
        visit: &mut Visit<'_>,
    ) -> Result<(), EvalError> {
        let matchers = head_matchers(matchers)?;
        let start_ns = self.floor(start_ns);
        if start_ns >= end_ns {
            return Ok(());
        }
        match self.part_of(part) {
            Some(PartOf::Head(h)) => {
                let test = head_line_test(line_filters);
                let needs = |may_hold: &dyn Fn(&[u8]) -> bool| {
                    test.as_ref().is_none_or(|t| t.may_pass(may_hold))
                };
                let keep = |line: &str| line_filters.iter().all(|f| f.passes(line));
                let filter = strata_head::LineFilter {
                    keep: &keep,
                    needs: test.is_some().then_some(&needs as _),
                    with_lines: lines,
                };
                self.view.heads[h].for_each_stream(&matchers, start_ns, end_ns, filter, &mut |s| {
                    let entries: Vec<SourceEntry> =
                        s.entries.into_iter().map(source_entry).collect();
                    visit(&label_pairs(&s.labels), &entries);
                });
                Ok(())
            }
            Some(PartOf::File(_)) => {
                let one = self.part_view(&[part])?;
                let mut sink = |_: u64, labels: &[(String, String)], run: Vec<SourceEntry>| {
                    visit(labels, &run);
                };
                let read = if lines { Read::Entries } else { Read::Times };
                one.scan_files(&matchers, line_filters, start_ns, end_ns, read, &mut sink)
                    .await
            }
            None => Err(EvalError::Source(format!(
                "no part {part} in the tenant's logs"
            ))),
        }
    }
}
