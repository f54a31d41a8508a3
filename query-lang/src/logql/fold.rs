//! How a range aggregation reads: its range is cut at the source's part
//! edges (heads, files); where one part alone holds entries it is
//! scanned once, a stream's run at a time; where parts overlap (a head
//! and the file flushed before it, two flush files), their entries are
//! read together in time slices ([`super::slices`]) so the source merges
//! an entry stored in both. Either way each run of entries is folded
//! into the answer's cells (or samples) and dropped: a query holds a run
//! or a slice, whatever its range holds.

use std::collections::BTreeMap;

use super::ast::*;
use super::cells::{Cells, Grid};
use super::labels::{ERROR_DETAILS, ERROR_LABEL, Labels};
use super::model::{Options, check_entries, raw_line_filters};
use super::pipeline::{label_filter, process};
use super::slices::{SLICE_ENTRIES, Slicer};
use super::source::{EvalError, LogSource, Part, SourceEntry};

/// A range aggregation's parts, as parsed.
pub(super) struct RangeQuery<'a> {
    pub func: RangeFn,
    pub log: &'a LogExpr,
    pub range: std::time::Duration,
    pub offset: std::time::Duration,
    pub unwrap: Option<&'a Unwrap>,
    pub param: Option<f64>,
    pub grouping: Option<&'a Grouping>,
}

/// What a range aggregation has folded in so far.
pub(super) struct Fold<'a> {
    q: &'a RangeQuery<'a>,
    grid: &'a Grid,
    opts: &'a Options,
    /// Whether windows merge from cells (else every value is kept).
    merged: bool,
    /// Whether the pipeline keeps entries' labels and lines.
    plain: bool,
    bytes: bool,
    /// Whether anything reads an entry's line (a plain count does not).
    reads_lines: bool,
    line_stages: Vec<&'a LineFilter>,
    /// Final label set → its cells, or its (timestamp, value) samples for
    /// the functions that need every value of a window.
    pub cells: BTreeMap<Labels, Cells>,
    pub samples: BTreeMap<Labels, Vec<(i64, f64)>>,
    held: usize,
}

impl<'a> Fold<'a> {
    pub(super) fn new(q: &'a RangeQuery<'a>, grid: &'a Grid, opts: &'a Options) -> Self {
        let merged = matches!(
            q.func,
            RangeFn::CountOverTime
                | RangeFn::Rate
                | RangeFn::BytesOverTime
                | RangeFn::BytesRate
                | RangeFn::SumOverTime
                | RangeFn::MinOverTime
                | RangeFn::MaxOverTime
                | RangeFn::AbsentOverTime
        );
        // Counting a stream's entries through a pipeline that keeps
        // their labels and lines: the stream's labels once, not a label
        // set per entry.
        let plain = merged && q.unwrap.is_none() && keeps_labels(&q.log.pipeline);
        let bytes = matches!(q.func, RangeFn::BytesOverTime | RangeFn::BytesRate);
        let line_stages: Vec<&LineFilter> = q
            .log
            .pipeline
            .iter()
            .filter_map(|s| match s {
                Stage::Line(f) => Some(f),
                _ => None,
            })
            .collect();
        Self {
            q,
            grid,
            opts,
            merged,
            plain,
            bytes,
            reads_lines: !(plain && line_stages.is_empty() && !bytes),
            line_stages,
            cells: BTreeMap::new(),
            samples: BTreeMap::new(),
            held: 0,
        }
    }

    /// Reads `[from, to)` from `source` and folds it in.
    pub(super) async fn read(
        &mut self,
        source: &dyn LogSource,
        from: i64,
        to: i64,
    ) -> Result<(), EvalError> {
        let q = self.q;
        let matchers = &q.log.matchers;
        let filters = raw_line_filters(&q.log.pipeline);
        // A part scan may leave lines out when nothing reads them
        // (overlapping parts still read them: an entry stored twice is
        // told by its line).
        let lines = self.reads_lines;
        let parts = source.parts(from, to);
        for (lo, hi, holders) in plan(&parts, from, to) {
            if let [one] = holders[..] {
                let mut failed = None;
                let mut visit = |labels: &[(String, String)], entries: &[SourceEntry]| {
                    if failed.is_none()
                        && let Err(e) = self.stream(labels, entries, lo, hi)
                    {
                        failed = Some(e);
                    }
                };
                source
                    .scan_part(parts[one].id, matchers, &filters, lines, lo, hi, &mut visit)
                    .await?;
                if let Some(e) = failed {
                    return Err(e);
                }
                continue;
            }
            let shared: Vec<Part> = holders.iter().map(|&i| parts[i]).collect();
            let ids: Vec<usize> = shared.iter().map(|p| p.id).collect();
            let mut slices = Slicer::new(shared, lo, hi, SLICE_ENTRIES);
            while let Some((a, b)) = slices.next_slice() {
                let streams = source.select_parts(&ids, matchers, &filters, a, b).await?;
                let read: usize = streams.iter().map(|s| s.entries.len()).sum();
                check_entries(read, self.opts)?;
                slices.found(a, b, read);
                for s in &streams {
                    self.stream(&s.labels, &s.entries, a, b)?;
                }
            }
        }
        Ok(())
    }

    /// Folds in a run of one stream's entries (those in `[lo, hi)`).
    fn stream(
        &mut self,
        labels: &[(String, String)],
        entries: &[SourceEntry],
        lo: i64,
        hi: i64,
    ) -> Result<(), EvalError> {
        let q = self.q;
        let plain = self.plain
            && !labels
                .iter()
                .any(|(k, _)| k == ERROR_LABEL || k == ERROR_DETAILS);
        let mut own = Cells::default();
        for e in entries {
            if e.timestamp_ns < lo || e.timestamp_ns >= hi {
                continue;
            }
            if plain && e.metadata.is_empty() {
                if self.line_stages.iter().all(|f| f.passes(&e.line)) {
                    let v = if self.bytes { e.line.len() as f64 } else { 1.0 };
                    if let Some(c) = self.grid.cell(e.timestamp_ns) {
                        own.add(c, v);
                    }
                }
                continue;
            }
            let Some((labels, line)) = process(&q.log.pipeline, labels, e) else {
                continue;
            };
            let (labels, v) = match q.unwrap {
                None if self.bytes => (labels, line.len() as f64),
                None => (labels, 1.0),
                Some(u) => match extract(u, labels, q.grouping) {
                    Some(x) => x,
                    None => continue,
                },
            };
            if self.merged {
                if let Some(c) = self.grid.cell(e.timestamp_ns) {
                    self.cells.entry(labels).or_default().add(c, v);
                }
            } else {
                self.held += 1;
                check_entries(self.held, self.opts)?;
                self.samples
                    .entry(labels)
                    .or_default()
                    .push((e.timestamp_ns, v));
            }
        }
        if !own.is_empty() {
            let labels: Labels = labels.iter().cloned().collect();
            self.cells.entry(labels).or_default().merge(&own);
        }
        Ok(())
    }
}

/// An entry's unwrapped value and its series' labels, or `None` when a
/// filter after `unwrap` drops it (Loki's `labelSampleExtractor`).
fn extract(u: &Unwrap, mut labels: Labels, grouping: Option<&Grouping>) -> Option<(Labels, f64)> {
    let raw = labels.get(&u.label).cloned().unwrap_or_default();
    let v = if raw.is_empty() {
        labels.insert(ERROR_LABEL.into(), "SampleExtractionErr".into());
        labels.insert(
            ERROR_DETAILS.into(),
            format!("label {:?} is absent or empty", u.label),
        );
        0.0
    } else {
        let parsed = match u.conversion {
            Conversion::Float => raw.trim().parse::<f64>().ok(),
            Conversion::Duration => super::units::parse_go_duration(raw.trim()),
            Conversion::Bytes => super::units::parse_humanized_bytes(raw.trim()),
        };
        parsed.unwrap_or_else(|| {
            labels.insert(ERROR_LABEL.into(), "SampleExtractionErr".into());
            labels.insert(
                ERROR_DETAILS.into(),
                format!("cannot convert {raw:?} of label {} to a number", u.label),
            );
            0.0
        })
    };
    for f in &u.post_filters {
        if !label_filter(f, &mut labels) {
            return None;
        }
    }
    if labels.contains_key(ERROR_LABEL) {
        return Some((labels, v));
    }
    match grouping {
        Some(Grouping::By(names)) => labels.retain(|k, _| names.contains(k)),
        Some(Grouping::Without(names)) => {
            labels.retain(|k, _| !names.contains(k) && *k != u.label);
        }
        None => {
            labels.remove(&u.label);
        }
    }
    Some((labels, v))
}

/// `[from, to)` cut at every part's edges, runs with the same parts
/// joined: each stretch with the parts (indexes into `parts`) holding
/// entries there. Stretches no part holds are left out.
fn plan(parts: &[Part], from: i64, to: i64) -> Vec<(i64, i64, Vec<usize>)> {
    let mut cuts = vec![from, to];
    for p in parts {
        for x in [p.min_ns, p.max_ns.saturating_add(1)] {
            if x > from && x < to {
                cuts.push(x);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(i64, i64, Vec<usize>)> = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let holders: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].min_ns <= a && parts[i].max_ns >= b - 1)
            .collect();
        if holders.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1 == a && last.2 == holders => last.1 = b,
            _ => out.push((a, b, holders)),
        }
    }
    out
}

/// Whether `pipeline` leaves an entry's labels as its stream's and
/// metadata's, and its line as stored: line filters, and drops of the
/// error labels (Grafana's `| drop __error__`), which only parsers and
/// templates set.
fn keeps_labels(pipeline: &[Stage]) -> bool {
    pipeline.iter().all(|s| match s {
        Stage::Line(_) => true,
        Stage::Drop(names) => names
            .iter()
            .all(|n| n.matcher.is_none() && (n.name == ERROR_LABEL || n.name == ERROR_DETAILS)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: usize, min_ns: i64, max_ns: i64) -> Part {
        Part {
            id,
            min_ns,
            max_ns,
            rows: 10,
        }
    }

    #[test]
    fn the_range_is_cut_where_parts_begin_and_end() {
        // Files [0, 99] and [90, 199], a head [150, 400], a gap, a file
        // [500, 600].
        let parts = [
            part(0, 0, 99),
            part(1, 90, 199),
            part(2, 150, 400),
            part(3, 500, 600),
        ];
        assert_eq!(
            plan(&parts, 10, 550),
            [
                (10, 90, vec![0]),
                (90, 100, vec![0, 1]),
                (100, 150, vec![1]),
                (150, 200, vec![1, 2]),
                (200, 401, vec![2]),
                (500, 550, vec![3]),
            ]
        );
        // One part over all time (a source without parts).
        let all = [part(0, i64::MIN, i64::MAX)];
        assert_eq!(plan(&all, 5, 50), [(5, 50, vec![0])]);
        assert!(plan(&[], 5, 50).is_empty());
    }
}
