//! LogQL evaluation over streams fetched from a [`LogSource`].
//!
//! Log queries select streams, run each entry through the pipeline and
//! return the newest (or oldest) `limit` entries grouped by their final
//! label set (stream labels, structured metadata, parsed labels).
//! Metric queries evaluate at each step `t` over the window
//! `(t - range - offset, t - offset]`, as Loki does; a series exists at a
//! step only where its window holds an entry.

use std::collections::HashMap;

use super::ast::*;
use super::fold::RangeQuery;
pub use super::model::{
    Direction, Options, OutStream, Series, Value, check_entries, format_labels, raw_line_filters,
};
use super::ops::{aggregate, binary, label_replace};
use super::pipeline::{Labels, process};
use super::range::range_agg;
pub use super::source::{EvalError, LogSource, SourceEntry, SourceStream};

/// The streams a log query reads, within the entry bound.
async fn select(
    source: &dyn LogSource,
    expr: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    opts: &Options,
) -> Result<Vec<SourceStream>, EvalError> {
    let streams = source
        .select(
            &expr.matchers,
            &raw_line_filters(&expr.pipeline),
            start_ns,
            end_ns,
        )
        .await?;
    check_entries(streams.iter().map(|s| s.entries.len()).sum(), opts)?;
    Ok(streams)
}

/// Evaluates a log query over `[start_ns, end_ns)`: the first `limit`
/// entries in `direction` (all with `limit` 0), grouped by final labels.
/// With a limit, only what the answer can come from is read (see
/// [`super::limited`]).
pub async fn eval_log(
    source: &dyn LogSource,
    expr: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    limit: usize,
    direction: Direction,
    opts: &Options,
) -> Result<Vec<OutStream>, EvalError> {
    let mut rows: Vec<(i64, Labels, String)> = Vec::new();
    if limit == 0 {
        for s in select(source, expr, start_ns, end_ns, opts).await? {
            for e in &s.entries {
                if e.timestamp_ns >= start_ns
                    && e.timestamp_ns < end_ns
                    && let Some((labels, line)) = process(&expr.pipeline, &s.labels, e)
                {
                    rows.push((e.timestamp_ns, labels, line));
                }
            }
        }
    } else {
        let parts = source.parts(start_ns, end_ns);
        let keep =
            |stream: &[(String, String)], e: &SourceEntry| process(&expr.pipeline, stream, e);
        rows = super::limited::rows(
            source, expr, &parts, start_ns, end_ns, limit, direction, opts, keep,
        )
        .await?
        .into_iter()
        .map(|(ts, (labels, line))| (ts, labels, line))
        .collect();
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

/// The newest `limit` entries in `[start_ns, end_ns)` that pass a log
/// query's pipeline, as stored (the line unchanged, structured metadata
/// apart), each with its stream's labels: what Logs Drilldown's field and
/// pattern detection read.
pub async fn sample_entries(
    source: &dyn LogSource,
    expr: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    limit: usize,
    opts: &Options,
) -> Result<Vec<(Labels, SourceEntry)>, EvalError> {
    let parts = source.parts(start_ns, end_ns);
    let keep = |stream: &[(String, String)], e: &SourceEntry| {
        process(&expr.pipeline, stream, e)
            .is_some()
            .then(|| (stream.iter().cloned().collect::<Labels>(), e.clone()))
    };
    let mut rows = super::limited::rows(
        source,
        expr,
        &parts,
        start_ns,
        end_ns,
        limit.max(1),
        Direction::Backward,
        opts,
        keep,
    )
    .await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.truncate(limit);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
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
    let value = eval(source, expr, &steps, opts).await?;
    if let Value::Series(s) = &value
        && opts.max_series > 0
        && s.len() > opts.max_series
    {
        return Err(EvalError::TooManySeries {
            limit: opts.max_series,
        });
    }
    Ok(value)
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
                unwrap,
                param,
                grouping,
            } => {
                let q = RangeQuery {
                    func: *func,
                    log,
                    range: *range,
                    offset: *offset,
                    unwrap: unwrap.as_ref(),
                    param: *param,
                    grouping: grouping.as_ref(),
                };
                range_agg(source, &q, steps, opts).await
            }
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
                matching,
                lhs,
                rhs,
            } => {
                let l = eval(source, lhs, steps, opts).await?;
                let r = eval(source, rhs, steps, opts).await?;
                binary(*op, *bool_modifier, matching, l, r)
            }
            MetricExpr::LabelReplace {
                inner,
                dst,
                replacement,
                src,
                regex,
            } => match eval(source, inner, steps, opts).await? {
                Value::Series(series) => Ok(Value::Series(label_replace(
                    series,
                    dst,
                    replacement,
                    src,
                    regex,
                ))),
                Value::Scalar(_) => Err(EvalError::Invalid(
                    "label_replace needs a vector, not a scalar".into(),
                )),
            },
        }
    })
}
