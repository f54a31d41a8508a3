//! PromQL with Prometheus' semantics.
//!
//! A query runs in two phases. **Fetch**: every selector's time span is
//! worked out from the query range and the `offset`, `@`, range and
//! subquery windows above it, and its series are read once from the
//! [`Source`] (asynchronously; for the server, a scan of head and files).
//! **Evaluate**: the expression is evaluated step by step over those series
//! in memory, as Prometheus' engine does: a selector at time `t` takes each
//! series' newest sample in `(t - lookback, t]` (3.x windows are left-open),
//! a range selector the samples in `(t - range, t]`, stale markers never
//! count. Metric names are dropped late (Prometheus' "delayed name
//! removal"): operations mark a sample, the name goes when the result is
//! returned, and only then may two results collide.

mod aggregate;
mod binary;
mod eval;
pub(crate) mod functions;
pub mod histogram;
mod kahan;
mod labels;
mod memo;
mod memory;
mod par;
mod value;

use std::time::Duration;

use async_trait::async_trait;
pub use eval::{Cancel, Prepared};
pub use functions::bucket_quantile;
pub use histogram::{FloatHistogram, ResetHint};
pub use labels::{Labels, METRIC_NAME};
/// A map for keys that are already well spread (addresses, series ids):
/// a multiply-rotate hash instead of SipHash.
pub use memo::AddrMap as FastMap;
pub use memory::MemorySource;
pub use par::par_map;
pub use promql_parser::label::{MatchOp, Matcher};

/// The NaN Prometheus writes as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// What kind of failure, as Prometheus' HTTP API names it (`errorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The query does not parse or is not valid (HTTP 400).
    BadData,
    /// Evaluation failed (HTTP 422).
    Execution,
    /// A limit was hit: samples, points (HTTP 422).
    TooLarge,
    /// The query took longer than allowed (HTTP 503).
    Timeout,
    /// The client went away (HTTP 499).
    Canceled,
    /// Storage could not be read (HTTP 503).
    Unavailable,
    /// A bug (HTTP 500).
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PromError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PromError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PromError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadData, message)
    }

    pub fn execution(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Execution, message)
    }
}

/// A native-histogram sample: its time and the histogram.
pub type HistogramPoint = (i64, std::sync::Arc<FloatHistogram>);

/// One series and its samples, oldest first: float samples, and native
/// histogram samples (a series may change from one to the other).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
    pub histograms: Vec<HistogramPoint>,
}

/// A series' points as a source holds them until a query reads them: in
/// hand, or written on demand ([`Points::write`]), so a query that reduces
/// each series as it reads it writes them into one buffer it reuses
/// instead of a fresh allocation per series.
pub enum Points {
    Held(Vec<(i64, f64)>),
    Deferred(Box<dyn DeferredPoints>),
}

/// Points a source writes when they are read.
pub trait DeferredPoints: Send + Sync {
    /// How many points `write` gives at most (a sample two sources hold
    /// may be counted twice).
    fn at_most(&self) -> usize;
    /// The points, oldest first, each timestamp once, into `out` (which
    /// is cleared first).
    fn write(&self, out: &mut Vec<(i64, f64)>);
}

impl Points {
    /// How many points, at most.
    pub fn len(&self) -> usize {
        match self {
            Points::Held(p) => p.len(),
            Points::Deferred(d) => d.at_most(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points: held ones as they are, deferred ones written into `buf`.
    pub fn read<'a>(&'a self, buf: &'a mut Vec<(i64, f64)>) -> &'a [(i64, f64)] {
        match self {
            Points::Held(p) => p,
            Points::Deferred(d) => {
                d.write(buf);
                buf
            }
        }
    }
}

/// A series of [`Source::select_deferred`]: its labels and its points,
/// held or deferred.
pub struct DeferredSeries {
    pub labels: Labels,
    pub points: Points,
}

/// One sample of an instant vector: a float, or a native histogram
/// (`h`, and then `v` is 0).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<std::sync::Arc<FloatHistogram>>,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

/// The answer and the annotations raised on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// Samples the query loaded from its source.
    pub samples_loaded: u64,
}

/// Where series come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Every series matching all `matchers` (a missing label matches as
    /// ""), with its samples in `[start_ms, end_ms]`. Series without a
    /// sample in the span may be left out.
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError>;

    /// About how many series [`Source::select`] would answer, from
    /// indexes alone (no sample read); `None` when unknown. A query reads
    /// a large selection part by part ([`Source::select_part`]).
    async fn series_estimate(
        &self,
        _matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Option<u64>, PromError> {
        Ok(None)
    }

    /// Part `part` (of `parts`) of what [`Source::select`] answers: every
    /// series in exactly one part, the same one whatever the time range.
    async fn select_part(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        _parts: usize,
    ) -> Result<Vec<Series>, PromError> {
        if part == 0 {
            self.select(matchers, start_ms, end_ms).await
        } else {
            Ok(Vec::new())
        }
    }

    /// Every native-histogram series matching all `matchers`, with its
    /// histogram samples in `[start_ms, end_ms]` (in `histograms`; its
    /// float samples, if any, come from [`Source::select`]). A query reads
    /// the histograms of every selection first: one that has some is read
    /// whole and evaluated step by step.
    async fn select_histograms(
        &self,
        _matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        Ok(Vec::new())
    }

    /// What [`Source::select_part`] answers, with points a source may
    /// write only when the query reads them (a query reading a selection
    /// in parts reduces each series as it reads it).
    async fn select_deferred(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<DeferredSeries>, PromError> {
        let series = self
            .select_part(matchers, start_ms, end_ms, part, parts)
            .await?;
        Ok(series
            .into_iter()
            .map(|s| DeferredSeries {
                labels: s.labels,
                points: Points::Held(s.points),
            })
            .collect())
    }
}

/// Whether a label set satisfies every matcher.
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.is_match(labels.value(&m.name)))
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far back a selector looks for a sample (Prometheus: 5m).
    pub lookback: Duration,
    /// Step of a subquery written without one (`[5m:]`).
    pub default_subquery_step: Duration,
    /// Most samples one query may load.
    pub max_samples: usize,
    /// Most points a range query may return per series.
    pub max_points: usize,
    /// Series per part when a selection that a window function or a
    /// `sum`/`count`/`min`/`max`/`group` reduces at each step is read in
    /// parts (as many parts as the source's bound of its series needs,
    /// one at least; 0: such selections are read whole).
    pub part_series: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback: Duration::from_secs(300),
            default_subquery_step: Duration::from_secs(60),
            max_samples: 50_000_000,
            max_points: 11_000,
            part_series: 8192,
        }
    }
}

/// Parses and evaluates PromQL.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine { config }
    }

    /// Evaluates `query` at `t_ms`.
    pub async fn instant(
        &self,
        source: &dyn Source,
        query: &str,
        t_ms: i64,
    ) -> Result<QueryOutput, PromError> {
        self.prepare_instant(source, query, t_ms)
            .await?
            .evaluate(&Cancel::default())
    }

    /// Evaluates a parsed expression at `t_ms`.
    pub async fn instant_expr(
        &self,
        source: &dyn Source,
        expr: &promql_parser::parser::Expr,
        t_ms: i64,
    ) -> Result<QueryOutput, PromError> {
        self.prepare_instant_expr(source, expr, t_ms)
            .await?
            .evaluate(&Cancel::default())
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`.
    pub async fn range(
        &self,
        source: &dyn Source,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, PromError> {
        self.prepare_range(source, query, start_ms, end_ms, step_ms)
            .await?
            .evaluate(&Cancel::default())
    }

    /// Parses `query` and fetches its series for an instant evaluation.
    pub async fn prepare_instant(
        &self,
        source: &dyn Source,
        query: &str,
        t_ms: i64,
    ) -> Result<Prepared, PromError> {
        let expr = Box::new(parse(query)?);
        eval::prepare(&self.config, source, expr, t_ms, t_ms, 0, true).await
    }

    /// Fetches the series of a parsed expression for an instant evaluation
    /// (rules, parsed once when loaded).
    pub async fn prepare_instant_expr(
        &self,
        source: &dyn Source,
        expr: &promql_parser::parser::Expr,
        t_ms: i64,
    ) -> Result<Prepared, PromError> {
        eval::prepare(
            &self.config,
            source,
            Box::new(expr.clone()),
            t_ms,
            t_ms,
            0,
            true,
        )
        .await
    }

    /// Parses `query` and fetches its series for a range evaluation.
    pub async fn prepare_range(
        &self,
        source: &dyn Source,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Prepared, PromError> {
        if step_ms <= 0 {
            return Err(PromError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end_ms < start_ms {
            return Err(PromError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        let points = (end_ms - start_ms) / step_ms + 1;
        if points as u64 > self.config.max_points as u64 {
            return Err(PromError::bad_data(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.config.max_points
            )));
        }
        let expr = Box::new(parse(query)?);
        use promql_parser::parser::value::ValueType;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                return Err(PromError::bad_data(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(other)
                )));
            }
        }
        eval::prepare(&self.config, source, expr, start_ms, end_ms, step_ms, false).await
    }
}

/// Parses a query, mapping the parser's message to a `bad_data` error.
pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, PromError> {
    parse_expr(query).map_err(|e| PromError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// Parses PromQL after the [`crate::nesting`] check: every PromQL text
/// from a user (queries, `match[]`, specs) is parsed here.
pub fn parse_expr(query: &str) -> Result<promql_parser::parser::Expr, String> {
    crate::nesting::check(query, crate::nesting::Syntax::PromQl).map_err(|e| e.to_string())?;
    promql_parser::parser::parse(query)
}

/// A Prometheus duration (`5m`, `1h30m`) in milliseconds.
/// Float seconds (`15`, `0.5`) are accepted as Prometheus does; the
/// parser's own float branch panics on a number too large or NaN (found by
/// `fuzz/fuzz_targets/promql.rs`), so floats are handled here.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = secs * 1000.0;
        if !ms.is_finite() || ms < 0.0 || ms >= i64::MAX as f64 {
            return Err(format!("not a valid duration: {s}"));
        }
        if ms == 0.0 {
            return Err("duration must be greater than 0".into());
        }
        return Ok(ms.round() as i64);
    }
    promql_parser::util::parse_duration(s).map(|d| eval::ms(&d))
}

/// The expression pretty-printed, as `/api/v1/format_query` answers.
pub fn format_query(query: &str) -> Result<String, PromError> {
    Ok(parse(query)?.prettify())
}

pub(crate) fn type_name(t: promql_parser::parser::value::ValueType) -> &'static str {
    use promql_parser::parser::value::ValueType;
    match t {
        ValueType::Vector => "vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Prometheus 3 accepts any non-empty UTF-8 label name; invalid UTF-8
/// reaches us as U+FFFD.
pub fn is_valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{fffd}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `promql` fuzz target: the parser's float branch
    /// panicked on these, and `/api/v1/capacity?horizon=` and SQL
    /// `capacity(...)` pass user text straight to this function.
    #[test]
    fn durations_out_of_range_are_errors_not_panics() {
        for s in [
            "5555555555555555555555555555555555555",
            "NaN",
            "inf",
            "-1",
            "1e300",
            "0",
        ] {
            assert!(parse_duration_ms(s).is_err(), "{s}");
        }
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert!(parse_expr("rate(x[5555555555555555555555555555555s])").is_err());
        assert!(parse_expr("x offset 99999999999999999999999999y").is_err());
        // A duration written as a bare number of seconds.
        assert!(parse_expr("x offset 23333333333333333333333333333333333").is_err());
        assert!(parse_expr("rate(x[1e50])").is_err());
        assert!(parse_expr("x offset 90").is_ok());
    }
}
