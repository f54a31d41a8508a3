//! The two phases: fetch every selector's series once, then evaluate step
//! by step in memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use super::{
    EngineConfig, ErrorKind, FloatHistogram, HistogramPoint, Labels, METRIC_NAME, MatchOp, Matcher,
    PromError, QueryOutput, Sample, Series, Source, Value, is_stale, matches_all,
};

mod fold;
mod parts;
mod precompute;
mod prepare;
mod subgrid;

use super::memo::{AddrMap, AddrSet, Memo, addr, ptr};
pub(crate) use super::value::{Eval, Points, RSeries, Samp, Val, Window};
use precompute::{Grouping, Pre};
pub(crate) use prepare::prepare;
use subgrid::SubGrid;

/// A worker's part of a range query: its series and warnings.
type Part = Result<(Vec<Series>, Vec<String>), PromError>;

/// A fetched series: every sample (for instant selectors, where a stale
/// marker ends the series) and the samples without stale markers (what
/// range selectors see), shared by every step's window.
struct FetchedSeries {
    labels: Arc<Labels>,
    /// Every sample, staleness markers included.
    all: Arc<Vec<(i64, f64)>>,
    /// Without staleness markers (the same samples when there are none).
    live: Arc<Vec<(i64, f64)>>,
    /// Native-histogram samples (none for most series), stale markers (a
    /// histogram whose sum is the stale NaN) included.
    hist: Arc<Vec<HistogramPoint>>,
    /// Without stale markers (what range selectors see).
    hist_live: Arc<Vec<HistogramPoint>>,
}

type Fetched = Vec<FetchedSeries>;

pub(crate) struct Ev {
    data: Arc<HashMap<usize, Fetched>>,
    pre: RefCell<AddrMap<usize, Pre>>,
    /// Tables of calls and aggregations whose selection was read in parts
    /// (by the address of the call, or of the aggregated selector): every
    /// step of the query, computed while fetching.
    parted: Arc<AddrMap<usize, Pre>>,
    /// Column aggregations over a selection read in parts, by the
    /// aggregation's address: folded while fetching.
    folded: Arc<AddrMap<usize, fold::Folded>>,
    /// The selectors read in parts: their points are not held.
    parted_selectors: Arc<AddrSet<usize>>,
    /// The selectors with native-histogram samples: evaluated step by
    /// step (the step tables hold floats).
    hist_selectors: Arc<AddrSet<usize>>,
    /// Per aggregation node over a precomputed call: its grouping.
    groupings: RefCell<AddrMap<usize, Grouping>>,
    /// Per subquery node: its expression at the steps of its grid that
    /// the next windows may still need.
    subs: RefCell<AddrMap<usize, SubGrid>>,
    /// Cells (series × steps) the step tables of this evaluator may still
    /// take: one bound for all of them, a subquery's grid tables included
    /// (a call past it is evaluated step by step).
    pre_cells: std::cell::Cell<usize>,
    pub memo: Memo,
    pub lookback: i64,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    sub_step: i64,
    /// Most points a subquery window may hold (the query's sample limit).
    max_samples: usize,
    cancel: Cancel,
    pub warnings: RefCell<Vec<String>>,
}

pub(crate) fn ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ms(&d),
        Err(e) => -ms(&e.duration()),
    }
}

/// A selector's matchers, its name included; one list per `or` branch.
fn selector_matchers(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
    let name = vs
        .name
        .as_ref()
        .map(|n| Matcher::new(MatchOp::Equal, METRIC_NAME, n));
    let groups: Vec<Vec<Matcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![vs.matchers.matchers.clone()]
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .map(|g| {
                let mut g = g.clone();
                g.extend(vs.matchers.matchers.iter().cloned());
                g
            })
            .collect()
    };
    groups
        .into_iter()
        .map(|mut g| {
            if let Some(n) = &name {
                g.push(n.clone());
            }
            g
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Need<'a> {
    vs: &'a VectorSelector,
    key: usize,
    lo: i64,
    hi: i64,
}

struct Planner<'a> {
    cfg: &'a EngineConfig,
    start: i64,
    end: i64,
    needs: Vec<Need<'a>>,
    /// Subqueries around the node walked.
    in_subquery: usize,
    /// Selectors only reduced step by step at the query's own steps (by a
    /// window-function call, or by a column aggregation), by key: they can
    /// be read in parts.
    reducers: HashMap<usize, Reducer<'a>>,
    /// Column aggregations over a reduced selection's table, by the table's
    /// key (the call's address, or the selector's): the table can be
    /// folded by them as it is read.
    folds: HashMap<usize, &'a promql_parser::parser::AggregateExpr>,
}

/// What reduces a selection at each step of the query.
#[derive(Clone, Copy)]
enum Reducer<'a> {
    Call(&'a promql_parser::parser::Call),
    Column,
}

impl<'a> Planner<'a> {
    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    fn shift(&self, lo: i64, hi: i64, at: &Option<AtModifier>, off: &Option<Offset>) -> (i64, i64) {
        let o = offset_ms(off);
        match self.at_ms(at) {
            Some(a) => (a - o, a - o),
            None => (lo - o, hi - o),
        }
    }

    fn walk(&mut self, e: &'a Expr, lo: i64, hi: i64) {
        match e {
            Expr::VectorSelector(vs) => {
                let (l, h) = self.shift(lo, hi, &vs.at, &vs.offset);
                let back = ms(&self.cfg.lookback);
                self.needs.push(Need {
                    vs,
                    key: addr(vs),
                    lo: l - back,
                    hi: h,
                });
            }
            Expr::MatrixSelector(m) => {
                let (l, h) = self.shift(lo, hi, &m.vs.at, &m.vs.offset);
                self.needs.push(Need {
                    vs: &m.vs,
                    key: addr(&m.vs),
                    lo: l - ms(&m.range),
                    hi: h,
                });
            }
            Expr::Subquery(sq) => {
                let (l, h) = self.shift(lo, hi, &sq.at, &sq.offset);
                self.in_subquery += 1;
                self.walk(&sq.expr, l - ms(&sq.range), h);
                self.in_subquery -= 1;
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.walk(p, lo, hi);
                }
                if self.in_subquery == 0
                    && let Some(vs) = precompute::column_selector(a)
                {
                    self.reducers.insert(addr(vs), Reducer::Column);
                    self.folds.insert(addr(vs), a);
                }
                if self.in_subquery == 0
                    && let Some(c) = precompute::column_call(a)
                {
                    self.folds.insert(addr(c), a);
                }
                self.walk(&a.expr, lo, hi);
            }
            Expr::Unary(u) => self.walk(&u.expr, lo, hi),
            Expr::Binary(b) => {
                self.walk(&b.lhs, lo, hi);
                self.walk(&b.rhs, lo, hi);
            }
            Expr::Paren(p) => self.walk(&p.expr, lo, hi),
            Expr::Call(c) => {
                if self.in_subquery == 0
                    && let Some(m) = precompute::window_selector(c)
                {
                    self.reducers.insert(addr(&m.vs), Reducer::Call(c));
                }
                for a in &c.args.args {
                    self.walk(a, lo, hi);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
}

/// A query whose series are fetched: evaluation is CPU work only, to be
/// run where blocking is fine.
pub struct Prepared {
    // Selectors are keyed by their address in this tree: it is boxed so
    // that moving `Prepared` does not move them.
    expr: Box<Expr>,
    ev: Ev,
    instant: bool,
    loaded: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("expr", &self.expr.to_string())
            .finish_non_exhaustive()
    }
}

/// Stops an evaluation: the client went away or the deadline passed.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<std::sync::atomic::AtomicBool>,
    deadline: Option<std::time::Instant>,
}

impl Cancel {
    pub fn new(deadline: Option<std::time::Instant>) -> Self {
        Cancel {
            flag: Arc::default(),
            deadline,
        }
    }

    pub fn cancel(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn check(&self) -> Result<(), PromError> {
        if self.flag.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PromError::new(ErrorKind::Canceled, "query was canceled"));
        }
        if self
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(PromError::new(
                ErrorKind::Timeout,
                "query timed out in expression evaluation",
            ));
        }
        Ok(())
    }
}

fn too_many_samples() -> PromError {
    PromError::new(
        ErrorKind::TooLarge,
        "query processing would load too many samples into memory in query execution",
    )
}

impl Prepared {
    /// Evaluates; `cancel` is checked at every step.
    pub fn evaluate(mut self, cancel: &Cancel) -> Result<QueryOutput, PromError> {
        self.ev.cancel = cancel.clone();
        self.ev.cancel.check()?;
        let (ev, expr) = (&self.ev, &*self.expr);
        let (start, end, step) = (ev.start, ev.end, ev.step);
        let value = if self.instant {
            ev.precompute(expr, (start, start, 1), false)?;
            match ev.eval(expr, start)? {
                Val::Scalar(v) => Value::Scalar { t: start, v },
                Val::Str(s) => Value::String { t: start, s },
                Val::Vector(v) => Value::Vector(
                    finish_vector(v)?
                        .into_iter()
                        .map(|(labels, v, h)| Sample {
                            h,
                            labels,
                            t: start,
                            v,
                        })
                        .collect(),
                ),
                Val::Matrix(m) => Value::Matrix(finish_matrix(m)?),
            }
        } else {
            let steps = usize::try_from((end - start) / step + 1).unwrap_or(usize::MAX);
            let series: usize = ev.data.values().map(Vec::len).sum::<usize>()
                + ev.parted.values().map(Pre::series).sum::<usize>()
                + ev.folded.values().map(fold::Folded::groups).sum::<usize>();
            // Both halves of the range at once when there is enough work:
            // steps are independent, each worker has its own memo.
            let workers = if steps >= 16 && steps.saturating_mul(series.max(1)) >= PARALLEL_WORK {
                std::thread::available_parallelism()
                    .map_or(1, usize::from)
                    .clamp(1, 4)
                    .min(steps / 8)
            } else {
                1
            };
            let mut series = if workers <= 1 {
                range_steps(ev, expr, start, end, step)?
            } else {
                let per = (steps.div_ceil(workers)) as i64;
                let chunks: Vec<(i64, i64)> = (0..workers as i64)
                    .map(|i| {
                        (
                            start + i * per * step,
                            (start + ((i + 1) * per - 1) * step).min(end),
                        )
                    })
                    .filter(|(from, to)| from <= to)
                    .collect();
                let results: Vec<Part> = std::thread::scope(|scope| {
                    let handles: Vec<_> = chunks
                        .iter()
                        .map(|&(from, to)| {
                            let fork = ev.fork();
                            std::thread::Builder::new()
                                .name("strata-promql".into())
                                .stack_size(16 << 20)
                                .spawn_scoped(scope, move || {
                                    let out = range_steps(&fork, expr, from, to, step)?;
                                    Ok((out, fork.warnings.into_inner()))
                                })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| match h {
                            Ok(h) => h.join().unwrap_or_else(|_| {
                                Err(PromError::new(ErrorKind::Internal, "query worker panicked"))
                            }),
                            Err(e) => Err(PromError::new(
                                ErrorKind::Internal,
                                format!("cannot start a query worker: {e}"),
                            )),
                        })
                        .collect()
                });
                // Chunks are in time order: a series' points append.
                let mut merged: HashMap<Labels, (Points, Vec<HistogramPoint>)> = HashMap::new();
                for r in results {
                    let (part, warnings) = r?;
                    for w in warnings {
                        if !ev.warnings.borrow().contains(&w) {
                            ev.warn(w);
                        }
                    }
                    for s in part {
                        let m = merged.entry(s.labels).or_default();
                        m.0.extend(s.points);
                        m.1.extend(s.histograms);
                    }
                }
                merged
                    .into_iter()
                    .map(|(labels, (points, histograms))| Series {
                        labels,
                        points,
                        histograms,
                    })
                    .collect()
            };
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(series)
        };
        Ok(QueryOutput {
            value,
            warnings: self.ev.warnings.into_inner(),
            infos: Vec::new(),
            samples_loaded: self.loaded,
        })
    }
}

/// Series × steps past which a range query is split over the cores.
const PARALLEL_WORK: usize = 50_000;

/// Steps `from..=to` of a range query, each series' points in time order.
fn range_steps(
    ev: &Ev,
    expr: &Expr,
    from: i64,
    to: i64,
    step: i64,
) -> Result<Vec<Series>, PromError> {
    ev.precompute(expr, (from, to, step), true)?;
    if let Some(series) = ev.read_off(expr, from, to, step)? {
        return Ok(series);
    }
    // Series by their final (interned) labels' address.
    type Out = (Arc<Labels>, Points, Vec<HistogramPoint>);
    let mut out: AddrMap<usize, Out> = AddrMap::default();
    let mut t = from;
    while t <= to {
        ev.cancel.check()?;
        match ev.eval(expr, t)? {
            Val::Scalar(v) => {
                let l = ev.memo.intern(Labels::empty());
                out.entry(ptr(&l))
                    .or_insert_with(|| (l, Vec::new(), Vec::new()))
                    .1
                    .push((t, v));
            }
            Val::Vector(v) => {
                for (labels, v, h) in finish_vector_interned(ev, v)? {
                    let o = out
                        .entry(ptr(&labels))
                        .or_insert_with(|| (labels, Vec::new(), Vec::new()));
                    match h {
                        Some(h) => o.2.push((t, h)),
                        None => o.1.push((t, v)),
                    }
                }
            }
            Val::Str(_) | Val::Matrix(_) => {
                return Err(PromError::bad_data(
                    "invalid expression type for range query, must be Scalar or instant Vector",
                ));
            }
        }
        t += step;
    }
    // The memo holds the other reference: drop it before unwrapping.
    drop(ev.pre.take());
    drop(ev.groupings.take());
    drop(ev.memo.derived.take());
    drop(ev.memo.interned.take());
    Ok(out
        .into_values()
        .map(|(labels, points, histograms)| Series {
            labels: Arc::unwrap_or_clone(labels),
            points,
            histograms,
        })
        .collect())
}

fn final_labels(labels: &Labels, drop_name: bool) -> Labels {
    if drop_name {
        labels.without_name()
    } else {
        labels.clone()
    }
}

const DUPLICATE: &str = "vector cannot contain metrics with the same labelset";

/// A finished sample: its labels, its float, its histogram.
type Finished<L> = (L, f64, Option<Arc<FloatHistogram>>);

fn finish_vector(v: Vec<Samp>) -> Result<Vec<Finished<Labels>>, PromError> {
    let out: Vec<Finished<Labels>> = v
        .into_iter()
        .map(|s| (final_labels(&s.labels, s.drop_name), s.v, s.h))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (l, _, _) in &out {
        if !seen.insert(l) {
            return Err(PromError::execution(DUPLICATE));
        }
    }
    Ok(out)
}

/// [`finish_vector`] for the steps of a range query: final labels derived
/// once per series, duplicates found by address.
fn finish_vector_interned(ev: &Ev, v: Vec<Samp>) -> Result<Vec<Finished<Arc<Labels>>>, PromError> {
    let mut seen: AddrSet<usize> = AddrSet::default();
    let mut out = Vec::with_capacity(v.len());
    for s in v {
        let l = ev.memo.derive(0, u8::from(s.drop_name), &s.labels, |l| {
            final_labels(l, s.drop_name)
        });
        if !seen.insert(ptr(&l)) {
            return Err(PromError::execution(DUPLICATE));
        }
        out.push((l, s.v, s.h));
    }
    Ok(out)
}

fn finish_matrix(m: Vec<RSeries>) -> Result<Vec<Series>, PromError> {
    let mut out: Vec<Series> = m
        .into_iter()
        .map(|s| Series {
            labels: final_labels(&s.labels, s.drop_name),
            points: s.points().to_vec(),
            histograms: s.histograms().to_vec(),
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    if out.windows(2).any(|w| w[0].labels == w[1].labels) {
        return Err(PromError::execution(DUPLICATE));
    }
    Ok(out)
}

impl Ev {
    /// Another evaluator over the same fetched data (for another worker):
    /// its own memo and warnings.
    fn fork(&self) -> Ev {
        Ev {
            data: Arc::clone(&self.data),
            lookback: self.lookback,
            start: self.start,
            end: self.end,
            step: self.step,
            sub_step: self.sub_step,
            max_samples: self.max_samples,
            pre: RefCell::default(),
            parted: Arc::clone(&self.parted),
            folded: Arc::clone(&self.folded),
            parted_selectors: Arc::clone(&self.parted_selectors),
            hist_selectors: Arc::clone(&self.hist_selectors),
            groupings: RefCell::default(),
            subs: RefCell::default(),
            pre_cells: std::cell::Cell::new(precompute::cells_bound()),
            memo: Memo::default(),
            cancel: self.cancel.clone(),
            warnings: RefCell::new(Vec::new()),
        }
    }

    fn ref_time(&self, t: i64, at: &Option<AtModifier>, off: &Option<Offset>) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(st)) => system_time_ms(st),
        };
        base - offset_ms(off)
    }

    /// A selector read in parts holds no points: only its table answers.
    fn held(&self, vs: &VectorSelector) -> Result<Option<&Fetched>, PromError> {
        if self.parted_selectors.contains(&addr(vs)) {
            return Err(PromError::new(
                ErrorKind::Internal,
                "a selector read in parts was evaluated outside its step table",
            ));
        }
        Ok(self.data.get(&addr(vs)))
    }

    fn select(&self, vs: &VectorSelector, t: i64) -> Result<Vec<Samp>, PromError> {
        let r = self.ref_time(t, &vs.at, &vs.offset);
        let Some(data) = self.held(vs)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(data.len());
        for f in data {
            let (labels, pts) = (&f.labels, &f.all);
            let i = pts.partition_point(|p| p.0 <= r);
            let float = (i > 0).then(|| pts[i - 1]);
            // The newer of the float and the histogram sample wins.
            let j = f.hist.partition_point(|p| p.0 <= r);
            if j > 0 && float.is_none_or(|(ts, _)| f.hist[j - 1].0 > ts) {
                let (ts, h) = &f.hist[j - 1];
                // A stale marker ends the series, as a float one does.
                if *ts > r - self.lookback && !is_stale(h.sum) {
                    out.push(Samp {
                        h: Some(Arc::clone(h)),
                        labels: labels.clone(),
                        t: *ts,
                        v: 0.0,
                        drop_name: false,
                    });
                }
                continue;
            }
            let Some((ts, v)) = float else {
                continue;
            };
            if ts <= r - self.lookback || is_stale(v) {
                continue;
            }
            out.push(Samp {
                h: None,
                labels: labels.clone(),
                t: ts,
                v,
                drop_name: false,
            });
        }
        Ok(out)
    }

    fn matrix(&self, m: &MatrixSelector, t: i64) -> Result<Window, PromError> {
        let end = self.ref_time(t, &m.vs.at, &m.vs.offset);
        let start = end - ms(&m.range);
        let mut series = Vec::new();
        if let Some(data) = self.held(&m.vs)? {
            for f in data {
                let pts = &f.live;
                let lo = pts.partition_point(|p| p.0 <= start);
                let hi = pts.partition_point(|p| p.0 <= end);
                let hist = &f.hist_live;
                let hlo = hist.partition_point(|p| p.0 <= start);
                let hhi = hist.partition_point(|p| p.0 <= end);
                if hlo < hhi {
                    series.push(RSeries::shared_mixed(
                        Arc::clone(&f.labels),
                        pts,
                        lo..hi,
                        hist,
                        hlo..hhi,
                    ));
                } else if lo < hi {
                    series.push(RSeries::shared(Arc::clone(&f.labels), pts, lo..hi));
                }
            }
        }
        Ok(Window { series, start, end })
    }

    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Window, PromError> {
        let end = self.ref_time(t, &sq.at, &sq.offset);
        let step = self.sub_step_of(sq);
        let start = end - ms(&sq.range);
        let ts = grid_after(start, step);
        // Every step is a point of at least one series: refuse before
        // evaluating a window that cannot fit (`[10y:1ms]`).
        let steps = if ts <= end {
            u64::try_from((end - ts) / step).map_or(u64::MAX, |n| n.saturating_add(1))
        } else {
            0
        };
        let too_many = || {
            PromError::new(
                ErrorKind::TooLarge,
                "query processing would load too many samples into memory in subquery evaluation",
            )
        };
        if steps > self.max_samples as u64 {
            return Err(too_many());
        }
        // Steps already kept for the last window are not evaluated again.
        let key = addr(sq);
        let mut next = self
            .subs
            .borrow_mut()
            .entry(key)
            .or_default()
            .advance(ts, step);
        let mut points = self.subs.borrow().get(&key).map_or(0, |g| g.samples(end));
        if points > self.max_samples {
            return Err(too_many());
        }
        while next <= end {
            self.cancel.check()?;
            // Evaluated with no borrow held: a nested subquery keeps its own.
            let value = self.eval(&sq.expr, next)?;
            let mut subs = self.subs.borrow_mut();
            let grid = subs.entry(key).or_default();
            match value {
                Val::Scalar(v) => grid.push_scalar(next, v),
                Val::Vector(v) => {
                    points += v.len();
                    if points > self.max_samples {
                        return Err(too_many());
                    }
                    grid.push_vector(next, v);
                }
                Val::Str(_) | Val::Matrix(_) => {
                    return Err(PromError::bad_data(
                        "subquery is only allowed on instant vector",
                    ));
                }
            }
            next += step;
        }
        let series = self
            .subs
            .borrow()
            .get(&key)
            .map_or_else(Vec::new, |g| g.window(end));
        Ok(Window { series, start, end })
    }
}

impl Ev {
    /// A subquery's step: its own, or the default.
    fn sub_step_of(&self, sq: &SubqueryExpr) -> i64 {
        sq.step
            .as_ref()
            .map(ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.sub_step)
    }
}

/// The first step after `start` on the grid of `step` (Go's truncating
/// division, as Prometheus computes it).
fn grid_after(start: i64, step: i64) -> i64 {
    let ts = step * (start / step);
    if ts <= start { ts + step } else { ts }
}

impl Eval for Ev {
    fn eval(&self, e: &Expr, t: i64) -> Result<Val, PromError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(v) => Ok(Val::Vector(
                    v.into_iter()
                        .map(|s| Samp {
                            v: -s.v,
                            h: s.h.map(|h| {
                                let mut h = Arc::unwrap_or_clone(h);
                                h.mul(-1.0);
                                Arc::new(h)
                            }),
                            t,
                            drop_name: true,
                            ..s
                        })
                        .collect(),
                )),
                _ => Err(PromError::bad_data(
                    "unary expression only allowed on expressions of type scalar or instant vector",
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select(vs, t)?)),
            Expr::MatrixSelector(m) => Ok(Val::Matrix(self.matrix(m, t)?.series)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, t)?.series)),
            Expr::Call(c) => super::functions::call(self, c, t),
            Expr::Aggregate(a) => super::aggregate::aggregate(self, a, t),
            Expr::Binary(b) => super::binary::binary(self, b, t),
            Expr::Extension(_) => Err(PromError::bad_data("unsupported expression")),
        }
    }

    /// A range-vector argument: a range selector or a subquery.
    fn window(&self, e: &Expr, t: i64) -> Result<Window, PromError> {
        match e {
            Expr::MatrixSelector(m) => self.matrix(m, t),
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Paren(p) => self.window(&p.expr, t),
            _ => Err(PromError::bad_data("expected a range vector")),
        }
    }

    fn warn(&self, msg: impl Into<String>) {
        self.warnings.borrow_mut().push(msg.into());
    }

    fn memo(&self) -> &Memo {
        &self.memo
    }

    fn precomputed(&self, c: &promql_parser::parser::Call, t: i64) -> Option<Vec<Samp>> {
        self.precomputed_at(c, t)
    }

    fn precomputed_column<R>(
        &self,
        key: usize,
        t: i64,
        node: usize,
        group: impl Fn(&Labels) -> Labels,
        f: impl FnOnce(&super::value::Column<'_>) -> R,
    ) -> Option<R> {
        self.precomputed_column_at(key, t, node, group, f)
    }

    fn folded(&self, node: usize, t: i64) -> Option<Vec<Samp>> {
        self.folded_at(node, t)
    }
}
