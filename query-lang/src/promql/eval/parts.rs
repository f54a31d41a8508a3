//! Reduced selections read in parts (one when small): each part of a
//! selection is reduced to its rows of a step table, series by series
//! through one reused buffer, on threads of its own while the next is
//! fetched, so the selection's points are never all held at once.

use std::sync::Arc;

use super::super::Points;
use super::super::functions::WindowFn;
use super::super::par::par_chunks;
use super::fold::{Fold, Folded};
use super::precompute::{self, CallRow, CallSteps, PRE_CELLS, Pre, PreBuilder, SelectorRow};
use super::{
    ErrorKind, Ev, Labels, Matcher, Need, PromError, Reducer, Source, addr, is_stale, matches_all,
    offset_ms, too_many_samples,
};

/// How one part's series become their rows of a step table.
pub(super) enum Rows {
    Call(WindowFn<'static>, CallSteps),
    Selector(SelectorRow),
}

/// Below this much weight (points and steps) a part is reduced on one
/// thread.
const REDUCE_PARALLEL_WEIGHT: usize = 1 << 16;

/// One series of a part: its labels and points (held, or written when
/// the series is reduced).
type PartRow = (Arc<Labels>, Points);

/// Each table's rows of `series` (in label order) that satisfy its
/// `keep`, with their groups when the table is folded, and the points
/// read. Each series' points are read once, into a buffer reused from
/// series to series.
fn reduce(tables: &[Table], series: &[PartRow]) -> (Vec<PreBuilder>, usize) {
    let mut out: Vec<PreBuilder> = tables
        .iter()
        .map(|t| {
            let kept = series
                .iter()
                .filter(|(labels, _)| matches_all(labels, &t.keep))
                .count();
            PreBuilder::new(t.rows.steps(), kept)
        })
        .collect();
    let mut calls: Vec<Option<CallRow<'_>>> = tables
        .iter()
        .map(|t| match &t.rows {
            Rows::Call(f, at) => Some(CallRow::new(f, *at)),
            Rows::Selector(_) => None,
        })
        .collect();
    let (mut buf, mut live) = (Vec::new(), Vec::new());
    let mut read = 0usize;
    for (labels, points) in series {
        let keeps: Vec<bool> = tables
            .iter()
            .map(|t| matches_all(labels, &t.keep))
            .collect();
        if !keeps.contains(&true) {
            read += points.len();
            continue;
        }
        let all = points.read(&mut buf);
        read += all.len();
        // Range selectors skip staleness markers (most series have none).
        let calls_keep = tables
            .iter()
            .zip(&keeps)
            .any(|(t, &k)| k && matches!(t.rows, Rows::Call(..)));
        let pts: &[(i64, f64)] = if calls_keep && all.iter().any(|p| is_stale(p.1)) {
            live.clear();
            live.extend(all.iter().copied().filter(|p| !is_stale(p.1)));
            &live
        } else {
            all
        };
        for (((t, out), call), keep) in tables.iter().zip(&mut out).zip(&mut calls).zip(&keeps) {
            if !keep {
                continue;
            }
            match (&t.rows, call) {
                (Rows::Call(..), Some(row)) => {
                    out.push(Arc::clone(labels), |put| row.fill(pts, put));
                }
                (Rows::Selector(at), _) => {
                    out.push(Arc::clone(labels), |put| at.fill(all, put));
                }
                (Rows::Call(..), None) => {}
            }
        }
    }
    for (t, out) in tables.iter().zip(&mut out) {
        if let Some(f) = &t.fold {
            out.group_rows(|l| f.group(l));
        }
    }
    (out, read)
}

impl Rows {
    fn steps(&self) -> usize {
        match self {
            Rows::Call(_, at) => at.steps(),
            Rows::Selector(at) => at.steps,
        }
    }
}

/// One table read from a selection in parts: how a series becomes its row,
/// whether `__name__` is dropped, the matchers a series must satisfy to
/// have a row (for a selection the read one contains, its own matchers;
/// none for the read selection), and the aggregation that folds it, if
/// one does.
pub(super) struct Table {
    pub(super) rows: Rows,
    pub(super) drop_name: bool,
    pub(super) keep: Vec<Matcher>,
    pub(super) fold: Option<Fold>,
}

/// A table read in parts: every step of the call or selector, or of the
/// aggregation folding it.
pub(super) enum Built {
    Table(Pre),
    Folded(Folded),
}

/// How a call or column aggregation reduces its selection: the table's key
/// (the call's address, or the selector's for a column aggregation),
/// whether `__name__` is dropped, and the rows of one series.
pub(super) fn table_rows(
    ev: &Ev,
    need: &Need<'_>,
    reducer: Reducer<'_>,
    steps: usize,
) -> Result<(usize, bool, Rows), PromError> {
    let (from, step) = (ev.start, if steps > 1 { ev.step } else { 1 });
    Ok(match reducer {
        Reducer::Call(c) => {
            let m = precompute::window_selector(c).ok_or_else(|| {
                PromError::new(
                    ErrorKind::Internal,
                    "a call read in parts has no range selector",
                )
            })?;
            let (_, keep_name, f) = super::super::functions::window_fn(ev, c, from)?;
            (
                addr(c),
                !keep_name,
                Rows::Call(f, CallSteps::new(c, m, from, step, steps)),
            )
        }
        Reducer::Column => (
            need.key,
            false,
            Rows::Selector(SelectorRow {
                from,
                step,
                steps,
                offset: offset_ms(&need.vs.offset),
                lookback: ev.lookback,
            }),
        ),
    })
}

/// Reads a selection in `parts` parts, each reduced to its rows of each of
/// `tables` (of the query's step table, `from`, `step`) on a thread of its
/// own while the next is fetched. Answers the tables (or their folds), in
/// order, and the points read; `None` when a table grew past
/// [`PRE_CELLS`] (the estimate of its series was low): the selection is
/// then read whole and evaluated step by step.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_in_parts(
    source: &dyn Source,
    need: &Need<'_>,
    matchers: &[Matcher],
    tables: Vec<Table>,
    (from, step, steps): (i64, i64, usize),
    parts: usize,
    room: usize,
) -> Result<Option<(Vec<Built>, usize)>, PromError> {
    let internal = |what: &str| PromError::new(ErrorKind::Internal, what.to_string());
    let tables = Arc::new(tables);
    let mut points = 0usize;
    // Each part's (or run of a part's) rows of each table.
    let mut built: Vec<Vec<PreBuilder>> = Vec::with_capacity(parts);
    type Runs = Result<Vec<(Vec<PreBuilder>, usize)>, PromError>;
    let mut pending: Option<futures::channel::oneshot::Receiver<Runs>> = None;
    let worker_gone = || internal("a query worker stopped before answering");
    for part in 0..=parts {
        // Part `part` is fetched while the one before is reduced.
        let fetch = async {
            if part < parts {
                source
                    .select_deferred(matchers, need.lo, need.hi, part, parts)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let (series, done) = match pending.take() {
            Some(rx) => {
                let (series, done) = futures::join!(fetch, rx);
                (series?, Some(done.map_err(|_| worker_gone())??))
            }
            None => (fetch.await?, None),
        };
        for (rows, read) in done.into_iter().flatten() {
            built.push(rows);
            points += read;
        }
        // Counted as each part is reduced (a sample two sources hold is
        // read once), so the answer's count is the whole read's.
        if points > room {
            return Err(too_many_samples());
        }
        // The read selection's table is the largest.
        let held = (0..tables.len())
            .map(|t| {
                built
                    .iter()
                    .filter_map(|part| part.get(t))
                    .map(PreBuilder::series)
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0);
        if held.saturating_mul(steps) > PRE_CELLS {
            return Ok(None);
        }
        let Some(series) = series else {
            break;
        };
        let (tx, rx) = futures::channel::oneshot::channel();
        let tables = Arc::clone(&tables);
        std::thread::Builder::new()
            .name("strata-promql-part".into())
            .spawn(move || {
                let mut series: Vec<PartRow> = series
                    .into_iter()
                    .map(|s| (Arc::new(s.labels), s.points))
                    .collect();
                series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                // A part is reduced in runs of consecutive series on every
                // core (a window function's work over 64k points outweighs
                // starting a thread): each run's rows are in label order,
                // and the runs are merged in label order with the other
                // parts'. Each series weighs its points and its steps.
                let steps = tables.first().map_or(1, |t| t.rows.steps());
                let runs = par_chunks(
                    series,
                    |s| s.1.len() + steps,
                    REDUCE_PARALLEL_WEIGHT,
                    |run| reduce(&tables, &run),
                );
                // The receiver is gone when the query was dropped.
                let _ = tx.send(runs);
            })
            .map_err(|e| internal(&format!("cannot start a query worker: {e}")))?;
        pending = Some(rx);
    }
    // Each table's rows, part by part.
    let mut by_table: Vec<Vec<PreBuilder>> = tables.iter().map(|_| Vec::new()).collect();
    for part in built {
        for (t, rows) in by_table.iter_mut().zip(part) {
            t.push(rows);
        }
    }
    let pres = by_table
        .into_iter()
        .zip(tables.iter())
        .map(|(rows, t)| match &t.fold {
            Some(f) => Built::Folded(Folded::new(&rows, (from, step, steps), f.op, t.drop_name)),
            None => Built::Table(PreBuilder::finish(rows, from, step, steps, t.drop_name)),
        })
        .collect();
    Ok(Some((pres, points)))
}
