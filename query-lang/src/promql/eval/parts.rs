//! Large selections read in parts: each part of a selection is reduced
//! to its rows of a step table on a thread of its own while the next is
//! fetched, so the selection's points are never all held at once.

use std::sync::Arc;

use super::super::functions::WindowFn;
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

/// One series of a part: its labels and points.
type PartRow = (Arc<Labels>, Vec<(i64, f64)>);

/// One part's series in label order, shared by every table read from it.
type PartSeries = Vec<PartRow>;

impl Rows {
    /// The rows of the part's series that satisfy `keep`, in label order,
    /// with their groups when the table is folded.
    fn reduce(&self, series: &PartSeries, keep: &[Matcher], fold: Option<&Fold>) -> PreBuilder {
        let steps = match self {
            Rows::Call(_, at) => at.steps(),
            Rows::Selector(at) => at.steps,
        };
        let chosen: Vec<&PartRow> = series
            .iter()
            .filter(|(labels, _)| matches_all(labels, keep))
            .collect();
        let mut out = PreBuilder::new(steps, chosen.len());
        match self {
            Rows::Call(f, at) => {
                let mut row = CallRow::new(f, *at);
                let mut live = Vec::new();
                for (labels, points) in chosen {
                    // Range selectors skip staleness markers (most series
                    // have none).
                    let pts: &[(i64, f64)] = if points.iter().any(|p| is_stale(p.1)) {
                        live.clear();
                        live.extend(points.iter().copied().filter(|p| !is_stale(p.1)));
                        &live
                    } else {
                        points
                    };
                    out.push(Arc::clone(labels), |put| row.fill(pts, put));
                }
            }
            Rows::Selector(at) => {
                for (labels, points) in chosen {
                    out.push(Arc::clone(labels), |put| at.fill(points, put));
                }
            }
        }
        if let Some(f) = fold {
            out.group_rows(|l| f.group(l));
        }
        out
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
    let mut built: Vec<Vec<PreBuilder>> = Vec::with_capacity(parts);
    let mut pending: Option<futures::channel::oneshot::Receiver<Vec<PreBuilder>>> = None;
    let worker_gone = || internal("a query worker stopped before answering");
    for part in 0..=parts {
        // Part `part` is fetched while the one before is reduced.
        let fetch = async {
            if part < parts {
                source
                    .select_part(matchers, need.lo, need.hi, part, parts)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let (series, done) = match pending.take() {
            Some(rx) => {
                let (series, done) = futures::join!(fetch, rx);
                (series?, Some(done.map_err(|_| worker_gone())?))
            }
            None => (fetch.await?, None),
        };
        built.extend(done);
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
        points += series.iter().map(|s| s.points.len()).sum::<usize>();
        if points > room {
            return Err(too_many_samples());
        }
        let (tx, rx) = futures::channel::oneshot::channel();
        let tables = Arc::clone(&tables);
        std::thread::Builder::new()
            .name("strata-promql-part".into())
            .spawn(move || {
                let mut series: PartSeries = series
                    .into_iter()
                    .map(|s| (Arc::new(s.labels), s.points))
                    .collect();
                series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let rows = tables
                    .iter()
                    .map(|t| t.rows.reduce(&series, &t.keep, t.fold.as_ref()));
                // The receiver is gone when the query was dropped.
                let _ = tx.send(rows.collect());
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
