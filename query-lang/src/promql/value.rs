//! What the evaluator passes between its operators (samples, range
//! windows, values) and the evaluator as the operators see it
//! ([`Eval`]): functions, aggregations and binary operators depend on
//! this module, never on the evaluator's own.

use std::sync::Arc;

use promql_parser::parser::{Call, Expr};

use super::memo::Memo;
use super::{FloatHistogram, HistogramPoint, Labels, PromError};

/// Points by series.
pub(crate) type Points = Vec<(i64, f64)>;

/// A sample during evaluation. `t` is the sample's own timestamp for
/// selector output (what `timestamp()` returns) and the evaluation time
/// otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Samp {
    pub labels: Arc<Labels>,
    pub t: i64,
    pub v: f64,
    /// A native-histogram sample (then `v` is 0).
    pub h: Option<Arc<FloatHistogram>>,
    /// The metric name goes when the result is returned.
    pub drop_name: bool,
}

impl Samp {
    /// A float sample.
    pub fn float(labels: Arc<Labels>, t: i64, v: f64, drop_name: bool) -> Self {
        Samp {
            labels,
            t,
            v,
            h: None,
            drop_name,
        }
    }
}

/// No native-histogram samples.
pub(crate) fn no_histograms() -> Arc<Vec<HistogramPoint>> {
    static EMPTY: std::sync::OnceLock<Arc<Vec<HistogramPoint>>> = std::sync::OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::new(Vec::new())))
}

/// A range-vector series: a window of shared points (no copy per step).
#[derive(Debug, Clone)]
pub(crate) struct RSeries {
    pub labels: Arc<Labels>,
    pts: Arc<Vec<(i64, f64)>>,
    range: std::ops::Range<usize>,
    hist: Arc<Vec<HistogramPoint>>,
    hrange: std::ops::Range<usize>,
    pub drop_name: bool,
}

impl RSeries {
    pub fn new(labels: Arc<Labels>, points: Vec<(i64, f64)>, drop_name: bool) -> Self {
        let range = 0..points.len();
        RSeries {
            labels,
            pts: Arc::new(points),
            range,
            hist: no_histograms(),
            hrange: 0..0,
            drop_name,
        }
    }

    /// A series of floats and native histograms (a subquery's).
    pub fn with_histograms(
        labels: Arc<Labels>,
        points: Vec<(i64, f64)>,
        hist: Vec<HistogramPoint>,
        drop_name: bool,
    ) -> Self {
        let (range, hrange) = (0..points.len(), 0..hist.len());
        RSeries {
            labels,
            pts: Arc::new(points),
            range,
            hist: Arc::new(hist),
            hrange,
            drop_name,
        }
    }

    /// A window of a series with native-histogram samples: `range` of its
    /// floats and `hrange` of its histograms.
    pub fn shared_mixed(
        labels: Arc<Labels>,
        pts: &Arc<Vec<(i64, f64)>>,
        range: std::ops::Range<usize>,
        hist: &Arc<Vec<HistogramPoint>>,
        hrange: std::ops::Range<usize>,
    ) -> Self {
        RSeries {
            labels,
            pts: Arc::clone(pts),
            range,
            hist: Arc::clone(hist),
            hrange,
            drop_name: false,
        }
    }

    /// The window's native-histogram samples.
    pub fn histograms(&self) -> &[HistogramPoint] {
        &self.hist[self.hrange.clone()]
    }

    /// The points `range` of a series' shared points (no copy).
    pub fn shared(
        labels: Arc<Labels>,
        pts: &Arc<Vec<(i64, f64)>>,
        range: std::ops::Range<usize>,
    ) -> Self {
        RSeries {
            labels,
            pts: Arc::clone(pts),
            range,
            hist: no_histograms(),
            hrange: 0..0,
            drop_name: false,
        }
    }

    pub fn points(&self) -> &[(i64, f64)] {
        &self.pts[self.range.clone()]
    }
}

/// A range vector argument and the window it covers: `(start, end]`.
pub(crate) struct Window {
    pub series: Vec<RSeries>,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Samp>),
    Matrix(Vec<RSeries>),
}

/// One step of a precomputed call, as an aggregation over it sees it.
pub(crate) struct Column<'a> {
    /// Step-major values and presence bits of the whole table.
    pub(crate) values: &'a [f64],
    pub(crate) present: &'a [u64],
    /// Series in the table.
    pub(crate) series: usize,
    /// This step.
    pub(crate) k: usize,
    /// The group of each input series.
    pub group_of: &'a [usize],
    /// Each group's labels, interned.
    pub groups: &'a [Arc<Labels>],
    pub drop_name: bool,
}

impl Column<'_> {
    /// (series, value) of the series present at this step, in order.
    pub fn values(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        let base = self.k * self.series;
        (0..self.series).filter_map(move |i| {
            let cell = base + i;
            (self.present[cell / 64] & (1 << (cell % 64)) != 0).then(|| (i, self.values[cell]))
        })
    }
}

/// The evaluator as functions, aggregations and binary operators call it:
/// they evaluate their arguments through it, recursively.
pub(crate) trait Eval {
    /// `e` at time `t`.
    fn eval(&self, e: &Expr, t: i64) -> Result<Val, PromError>;

    /// A range-vector argument: a range selector or a subquery.
    fn window(&self, e: &Expr, t: i64) -> Result<Window, PromError>;

    /// Adds a warning to the query's answer.
    fn warn(&self, msg: impl Into<String>);

    /// The query's label-set memo.
    fn memo(&self) -> &Memo;

    /// The call's value at `t` when it was computed for every step at once.
    fn precomputed(&self, c: &Call, t: i64) -> Option<Vec<Samp>>;

    /// The answer at `t` of a column aggregation (node `node`) folded
    /// while its selection was read in parts.
    fn folded(&self, node: usize, t: i64) -> Option<Vec<Samp>>;

    /// For an aggregation (node `node`) over a precomputed call or
    /// selector (`key`: its node's address): `f` of its column at `t`, with
    /// each input series' group (`group` of its labels, found once per
    /// query).
    fn precomputed_column<R>(
        &self,
        key: usize,
        t: i64,
        node: usize,
        group: impl Fn(&Labels) -> Labels,
        f: impl FnOnce(&Column<'_>) -> R,
    ) -> Option<R>;

    /// Evaluates an expression that must be a scalar.
    fn scalar(&self, e: &Expr, t: i64) -> Result<f64, PromError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(PromError::bad_data("expected a scalar")),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    fn vector(&self, e: &Expr, t: i64) -> Result<Vec<Samp>, PromError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            _ => Err(PromError::bad_data("expected an instant vector")),
        }
    }
}
