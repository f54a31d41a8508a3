//! LogQL evaluation over streams fetched from a [`LogSource`].
//!
//! Log queries select streams, run each entry through the pipeline and
//! return the newest (or oldest) `limit` entries grouped by their final
//! label set (stream labels, structured metadata, parsed labels).
//! Metric queries evaluate at each step `t` over the window
//! `(t - range - offset, t - offset]`, as Loki does; a series exists at a
//! step only where its window holds an entry.

use std::collections::{BTreeMap, HashMap};

use super::ast::*;
use super::pipeline::{Labels, process};
pub use super::source::{EvalError, LogSource, SourceEntry, SourceStream};

/// The line filters of a pipeline that see the line as stored: those
/// before any `line_format`.
pub fn raw_line_filters(pipeline: &[Stage]) -> Vec<LineFilter> {
    pipeline
        .iter()
        .take_while(|s| !matches!(s, Stage::LineFormat(_)))
        .filter_map(|s| match s {
            Stage::Line(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

impl LineFilter {
    /// Whether `line` passes.
    pub fn passes(&self, line: &str) -> bool {
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => line.contains(self.value.as_str()),
            (MatchOp::NotEqual, _) => !line.contains(self.value.as_str()),
            (MatchOp::Regex, Some(r)) => r.is_match(line),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(line),
            (_, None) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A stream of a log query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutStream {
    pub labels: Labels,
    /// (timestamp ns, line), in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// A series of a metric query's answer: points at steps (ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A metric query's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Vec<Series>),
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most entries a query may read (0: unlimited).
    pub max_entries: usize,
}

fn check_entries(n: usize, opts: &Options) -> Result<(), EvalError> {
    if opts.max_entries > 0 && n > opts.max_entries {
        return Err(EvalError::TooManyEntries {
            limit: opts.max_entries,
        });
    }
    Ok(())
}

/// Evaluates a log query over `[start_ns, end_ns)`.
pub async fn eval_log(
    source: &dyn LogSource,
    expr: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    limit: usize,
    direction: Direction,
    opts: &Options,
) -> Result<Vec<OutStream>, EvalError> {
    let streams = source
        .select(
            &expr.matchers,
            &raw_line_filters(&expr.pipeline),
            start_ns,
            end_ns,
        )
        .await?;
    check_entries(streams.iter().map(|s| s.entries.len()).sum(), opts)?;
    let mut rows: Vec<(i64, Labels, String)> = Vec::new();
    for s in &streams {
        for e in &s.entries {
            if e.timestamp_ns < start_ns || e.timestamp_ns >= end_ns {
                continue;
            }
            if let Some((labels, line)) = process(&expr.pipeline, &s.labels, e) {
                rows.push((e.timestamp_ns, labels, line));
            }
        }
    }
    match direction {
        Direction::Forward => rows.sort_by_key(|r| r.0),
        Direction::Backward => rows.sort_by_key(|r| std::cmp::Reverse(r.0)),
    }
    if limit > 0 {
        rows.truncate(limit);
    }
    let mut out: Vec<OutStream> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (ts, labels, line) in rows {
        let i = *index.entry(labels.clone()).or_insert_with(|| {
            out.push(OutStream {
                labels,
                entries: Vec::new(),
            });
            out.len() - 1
        });
        out[i].entries.push((ts, line));
    }
    Ok(out)
}

/// Evaluates a metric query at every step from `start_ns` to `end_ns`
/// (inclusive).
pub async fn eval_metric(
    source: &dyn LogSource,
    expr: &MetricExpr,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    opts: &Options,
) -> Result<Value, EvalError> {
    if step_ns <= 0 {
        return Err(EvalError::Invalid("step must be positive".into()));
    }
    let steps: Vec<i64> = (0..)
        .map(|i| start_ns.saturating_add(step_ns.saturating_mul(i)))
        .take_while(|t| *t <= end_ns)
        .take(11_001)
        .collect();
    if steps.len() > 11_000 {
        return Err(EvalError::Invalid(
            "exceeded maximum resolution of 11,000 points per series; increase the step".into(),
        ));
    }
    eval(source, expr, &steps, opts).await
}

fn eval<'a>(
    source: &'a dyn LogSource,
    expr: &'a MetricExpr,
    steps: &'a [i64],
    opts: &'a Options,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, EvalError>> + Send + 'a>> {
    Box::pin(async move {
        match expr {
            MetricExpr::Number(n) => Ok(Value::Scalar(*n)),
            MetricExpr::Vector(v) => Ok(Value::Series(vec![Series {
                labels: Labels::new(),
                points: steps.iter().map(|t| (*t, *v)).collect(),
            }])),
            MetricExpr::Range {
                func,
                log,
                range,
                offset,
            } => range_agg(source, *func, log, *range, *offset, steps, opts).await,
            MetricExpr::Aggregate {
                op,
                grouping,
                param,
                inner,
            } => {
                let Value::Series(series) = eval(source, inner, steps, opts).await? else {
                    return Err(EvalError::Invalid(
                        "aggregations need a vector, not a scalar".into(),
                    ));
                };
                Ok(Value::Series(aggregate(
                    *op,
                    grouping.as_ref(),
                    *param,
                    series,
                )))
            }
            MetricExpr::Binary {
                op,
                bool_modifier,
                lhs,
                rhs,
            } => {
                let l = eval(source, lhs, steps, opts).await?;
                let r = eval(source, rhs, steps, opts).await?;
                Ok(binary(*op, *bool_modifier, l, r))
            }
        }
    })
}

async fn range_agg(
    source: &dyn LogSource,
    func: RangeFn,
    log: &LogExpr,
    range: std::time::Duration,
    offset: std::time::Duration,
    steps: &[i64],
    opts: &Options,
) -> Result<Value, EvalError> {
    let range_ns = i64::try_from(range.as_nanos()).unwrap_or(i64::MAX);
    let offset_ns = i64::try_from(offset.as_nanos()).unwrap_or(i64::MAX);
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Ok(Value::Series(Vec::new()));
    };
    // Windows are (t - range, t]: fetch [first - range + 1, last + 1).
    let from = first
        .saturating_sub(offset_ns)
        .saturating_sub(range_ns)
        .saturating_add(1);
    let to = last.saturating_sub(offset_ns).saturating_add(1);
    let streams = source
        .select(&log.matchers, &raw_line_filters(&log.pipeline), from, to)
        .await?;
    check_entries(streams.iter().map(|s| s.entries.len()).sum(), opts)?;
    // Final label set → (timestamp, line bytes), sorted by time.
    let mut groups: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    for s in &streams {
        for e in &s.entries {
            if e.timestamp_ns < from || e.timestamp_ns >= to {
                continue;
            }
            if let Some((labels, line)) = process(&log.pipeline, &s.labels, e) {
                groups
                    .entry(labels)
                    .or_default()
                    .push((e.timestamp_ns, line.len() as u64));
            }
        }
    }
    let secs = range.as_secs_f64();
    let mut out = Vec::with_capacity(groups.len());
    for (labels, mut entries) in groups {
        entries.sort_by_key(|e| e.0);
        // Prefix sums of bytes, for windows by binary search.
        let mut prefix = Vec::with_capacity(entries.len() + 1);
        prefix.push(0u64);
        for (_, b) in &entries {
            prefix.push(prefix.last().copied().unwrap_or(0) + b);
        }
        let mut points = Vec::new();
        for &t in steps {
            let hi_t = t.saturating_sub(offset_ns);
            let lo_t = hi_t.saturating_sub(range_ns);
            let lo = entries.partition_point(|e| e.0 <= lo_t);
            let hi = entries.partition_point(|e| e.0 <= hi_t);
            if hi <= lo {
                continue;
            }
            let count = (hi - lo) as f64;
            let bytes = (prefix[hi] - prefix[lo]) as f64;
            let v = match func {
                RangeFn::CountOverTime => count,
                RangeFn::Rate => count / secs,
                RangeFn::BytesOverTime => bytes,
                RangeFn::BytesRate => bytes / secs,
            };
            points.push((t, v));
        }
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    Ok(Value::Series(out))
}

fn group_key(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Labels::new(),
        Some(Grouping::By(names)) => labels
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(Grouping::Without(names)) => labels
            .iter()
            .filter(|(k, _)| !names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn aggregate(
    op: AggOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    series: Vec<Series>,
) -> Vec<Series> {
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        let k = param.unwrap_or(1.0).max(1.0) as usize;
        // Per group and step, keep the k largest (smallest) series.
        let mut keep: Vec<Vec<(i64, f64)>> = vec![Vec::new(); series.len()];
        let mut by_step: BTreeMap<(Labels, i64), Vec<(usize, f64)>> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let g = group_key(&s.labels, grouping);
            for &(t, v) in &s.points {
                by_step.entry((g.clone(), t)).or_default().push((i, v));
            }
        }
        for ((_, t), mut vs) in by_step {
            vs.sort_by(|a, b| {
                let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                if op == AggOp::Topk { o.reverse() } else { o }
            });
            for (i, v) in vs.into_iter().take(k) {
                keep[i].push((t, v));
            }
        }
        return series
            .into_iter()
            .zip(keep)
            .filter(|(_, p)| !p.is_empty())
            .map(|(s, mut points)| {
                points.sort_by_key(|p| p.0);
                Series {
                    labels: s.labels,
                    points,
                }
            })
            .collect();
    }
    // group → step → (sum, count, min, max)
    type Acc = BTreeMap<i64, (f64, f64, f64, f64)>;
    let mut acc: BTreeMap<Labels, Acc> = BTreeMap::new();
    for s in &series {
        let g = group_key(&s.labels, grouping);
        let steps = acc.entry(g).or_default();
        for &(t, v) in &s.points {
            let e = steps
                .entry(t)
                .or_insert((0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
            e.0 += v;
            e.1 += 1.0;
            e.2 = e.2.min(v);
            e.3 = e.3.max(v);
        }
    }
    acc.into_iter()
        .map(|(labels, steps)| Series {
            labels,
            points: steps
                .into_iter()
                .map(|(t, (sum, n, min, max))| {
                    let v = match op {
                        AggOp::Sum => sum,
                        AggOp::Avg => sum / n,
                        AggOp::Min => min,
                        AggOp::Max => max,
                        AggOp::Count => n,
                        AggOp::Topk | AggOp::Bottomk => unreachable_value(),
                    };
                    (t, v)
                })
                .collect(),
        })
        .collect()
}

/// Handled above; NaN rather than a panic if that ever changes.
fn unreachable_value() -> f64 {
    f64::NAN
}

fn binary(op: BinOp, bool_modifier: bool, l: Value, r: Value) -> Value {
    let cmp = op.is_comparison();
    let combine = |a: f64, b: f64, keep: f64| -> Option<f64> {
        let v = op.apply(a, b);
        if cmp && !bool_modifier {
            (v != 0.0).then_some(keep)
        } else {
            Some(v)
        }
    };
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(op.apply(a, b)),
        (Value::Series(s), Value::Scalar(b)) => Value::Series(
            s.into_iter()
                .map(|s| Series {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, a)| combine(a, b, a).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        ),
        (Value::Scalar(a), Value::Series(s)) => Value::Series(
            s.into_iter()
                .map(|s| Series {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, b)| combine(a, b, b).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        ),
        (Value::Series(ls), Value::Series(rs)) => {
            let right: HashMap<&Labels, HashMap<i64, f64>> = rs
                .iter()
                .map(|s| (&s.labels, s.points.iter().copied().collect()))
                .collect();
            Value::Series(
                ls.into_iter()
                    .filter_map(|s| {
                        let r = right.get(&s.labels)?;
                        let points: Vec<(i64, f64)> = s
                            .points
                            .iter()
                            .filter_map(|&(t, a)| {
                                let b = *r.get(&t)?;
                                combine(a, b, a).map(|v| (t, v))
                            })
                            .collect();
                        (!points.is_empty()).then_some(Series {
                            labels: s.labels,
                            points,
                        })
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::parse;

    /// Streams in memory; equality matchers only.
    struct Memory(Vec<SourceStream>);

    #[async_trait::async_trait]
    impl LogSource for Memory {
        async fn select(
            &self,
            matchers: &[StreamMatcher],
            _line_filters: &[LineFilter],
            start_ns: i64,
            end_ns: i64,
        ) -> Result<Vec<SourceStream>, EvalError> {
            Ok(self
                .0
                .iter()
                .filter(|s| {
                    matchers.iter().all(|m| {
                        let v = s
                            .labels
                            .iter()
                            .find(|(k, _)| *k == m.name)
                            .map_or("", |(_, v)| v);
                        v == m.value
                    })
                })
                .map(|s| SourceStream {
                    labels: s.labels.clone(),
                    entries: s
                        .entries
                        .iter()
                        .filter(|e| e.timestamp_ns >= start_ns && e.timestamp_ns < end_ns)
                        .cloned()
                        .collect(),
                })
                .collect())
        }
    }

    const S: i64 = 1_000_000_000;

    fn source() -> Memory {
        let stream = |level: &str, times: &[i64]| SourceStream {
            labels: vec![
                ("job".into(), "odoo".into()),
                ("level".into(), level.into()),
            ],
            entries: times
                .iter()
                .map(|t| SourceEntry {
                    timestamp_ns: t * S,
                    line: format!("{level} at {t}"),
                    metadata: Vec::new(),
                })
                .collect(),
        };
        Memory(vec![
            stream("info", &[1, 2, 3, 61, 62]),
            stream("error", &[30, 90]),
        ])
    }

    fn opts() -> Options {
        Options { max_entries: 0 }
    }

    async fn metric(q: &str, start: i64, end: i64, step: i64) -> Value {
        let crate::logql::Query::Metric(e) = parse(q).unwrap() else {
            panic!()
        };
        eval_metric(&source(), &e, start * S, end * S, step * S, &opts())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn counts_per_window_and_aggregates() {
        let Value::Series(s) = metric(
            r#"sum by (level) (count_over_time({job="odoo"}[60s]))"#,
            60,
            120,
            60,
        )
        .await
        else {
            panic!()
        };
        let by: HashMap<String, Vec<(i64, f64)>> = s
            .into_iter()
            .map(|s| (s.labels["level"].clone(), s.points))
            .collect();
        // (0, 60]: info 1,2,3; error 30. (60, 120]: info 61,62; error 90.
        assert_eq!(by["info"], vec![(60 * S, 3.0), (120 * S, 2.0)]);
        assert_eq!(by["error"], vec![(60 * S, 1.0), (120 * S, 1.0)]);
        let Value::Series(s) =
            metric(r#"topk(1, count_over_time({job="odoo"}[60s]))"#, 60, 60, 60).await
        else {
            panic!()
        };
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].labels["level"], "info");
        let Value::Series(s) = metric("vector(1)+vector(1)", 5, 5, 1).await else {
            panic!()
        };
        assert_eq!(s[0].points, vec![(5 * S, 2.0)]);
        let Value::Series(s) = metric(
            r#"rate({job="odoo", level="info"}[60s]) > 0.04"#,
            60,
            120,
            60,
        )
        .await
        else {
            panic!()
        };
        assert_eq!(s[0].points, vec![(60 * S, 0.05)]);
    }

    #[tokio::test]
    async fn log_queries_take_the_newest_first_by_default() {
        let crate::logql::Query::Log(e) = parse(r#"{job="odoo"} |= "at""#).unwrap() else {
            panic!()
        };
        let out = eval_log(&source(), &e, 0, 100 * S, 3, Direction::Backward, &opts())
            .await
            .unwrap();
        let all: Vec<i64> = out
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.0 / S))
            .collect();
        assert_eq!(all.len(), 3);
        assert!(all.contains(&90) && all.contains(&62) && all.contains(&61));
        let limited = eval_log(
            &source(),
            &e,
            0,
            100 * S,
            0,
            Direction::Forward,
            &Options { max_entries: 3 },
        )
        .await;
        assert!(matches!(limited, Err(EvalError::TooManyEntries { .. })));
    }
}
