//! Large selections read in parts: each part of a selection is reduced
//! to its rows of a step table on a thread of its own while the next is
//! fetched, so the selection's points are never all held at once.

use std::sync::Arc;

use super::super::functions::WindowFn;
use super::precompute::{self, CallRow, CallSteps, PRE_CELLS, Pre, PreBuilder, SelectorRow};
use super::{
    ErrorKind, Ev, Matcher, Need, PromError, Reducer, Series, Source, addr, is_stale, offset_ms,
    too_many_samples,
};

/// How one part's series become their rows of a step table.
pub(super) enum Rows {
    Call(WindowFn<'static>, CallSteps),
    Selector(SelectorRow),
}

impl Rows {
    /// The part's rows, its series in label order.
    fn reduce(&self, mut series: Vec<Series>) -> PreBuilder {
        let steps = match self {
            Rows::Call(_, at) => at.steps(),
            Rows::Selector(at) => at.steps,
        };
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        let mut out = PreBuilder::new(steps, series.len());
        match self {
            Rows::Call(f, at) => {
                let mut row = CallRow::new(f, *at);
                for s in series {
                    // Range selectors skip staleness markers.
                    let mut points = s.points;
                    points.retain(|p| !is_stale(p.1));
                    out.push(Arc::new(s.labels), |put| row.fill(&points, put));
                }
            }
            Rows::Selector(at) => {
                for s in series {
                    out.push(Arc::new(s.labels), |put| at.fill(&s.points, put));
                }
            }
        }
        out
    }
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

/// Reads a selection in `parts` parts, each reduced to its `rows` of the
/// query's step table (`from`, `step`) on a thread of its own while the
/// next is fetched. Answers the table and the points read; `None` when
/// the table grew past [`PRE_CELLS`] (the estimate of its series was low):
/// the selection is then read whole and evaluated step by step.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_in_parts(
    source: &dyn Source,
    need: &Need<'_>,
    matchers: &[Matcher],
    rows: Rows,
    drop_name: bool,
    (from, step, steps): (i64, i64, usize),
    parts: usize,
    room: usize,
) -> Result<Option<(Pre, usize)>, PromError> {
    let internal = |what: &str| PromError::new(ErrorKind::Internal, what.to_string());
    let rows = Arc::new(rows);
    let mut points = 0usize;
    let mut built: Vec<PreBuilder> = Vec::with_capacity(parts);
    let mut pending: Option<futures::channel::oneshot::Receiver<PreBuilder>> = None;
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
        let held: usize = built.iter().map(PreBuilder::series).sum();
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
        let rows = Arc::clone(&rows);
        std::thread::Builder::new()
            .name("strata-promql-part".into())
            .spawn(move || {
                // The receiver is gone when the query was dropped.
                let _ = tx.send(rows.reduce(series));
            })
            .map_err(|e| internal(&format!("cannot start a query worker: {e}")))?;
        pending = Some(rx);
    }
    Ok(Some((
        PreBuilder::finish(built, from, step, steps, drop_name),
        points,
    )))
}
