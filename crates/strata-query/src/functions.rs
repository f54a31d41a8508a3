//! SQL functions for monitoring data, registered in every session.
//!
//! * `counter_increase(value, timestamp)` — aggregate: how much a counter
//!   grew over the rows of a group, in timestamp order, counting a drop as
//!   a reset (the counter restarted from zero, so the new value is all
//!   growth). No extrapolation to the window's edges: PromQL's `increase`
//!   does that.
//! * `counter_rate(value, timestamp)` — aggregate: `counter_increase` per
//!   second between the group's first and last sample; NULL with fewer
//!   than two samples.
//! * `histogram_quantile(q, le, value)` — aggregate over Prometheus
//!   classic-histogram bucket rows (`le` the bucket's upper bound as text
//!   or number, `value` its cumulative count): the q-quantile by linear
//!   interpolation within the bucket, as PromQL computes it. Rows with the
//!   same `le` are summed first, so grouping by time alone aggregates
//!   across series the way `sum by (le)` does.
//!
//! Gap filling and percentiles over raw values use DataFusion's own
//! `generate_series`, `last_value(..) IGNORE NULLS OVER (..)`,
//! `percentile_cont`, `approx_percentile_cont` and `median`
//! (docs/SQL.md has the recipes).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, ColumnarValue, ScalarUDF, Volatility, create_udaf, create_udf,
};
use datafusion::prelude::SessionContext;
use strata_query_lang::promql::bucket_quantile;

/// Registers the functions on `ctx`.
pub(crate) fn register(ctx: &SessionContext, tenant: &str) {
    for udaf in [
        counter("counter_increase", false),
        counter("counter_rate", true),
        histogram_quantile(),
    ] {
        ctx.register_udaf(udaf);
    }
    // Timestamps are UTC: truncated by arithmetic, not per-row zone math.
    ctx.register_udf(crate::date_trunc::udf());
    // What Postgres clients (Grafana's query builder, DBeaver, psql
    // scripts) call to find their bearings.
    ctx.register_udf(constant("current_database", tenant));
    ctx.register_udf(constant("current_schema", "public"));
    ctx.register_udf(create_udf(
        "quote_ident",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let quote = |s: Option<&str>| s.map(quote_ident);
            Ok(match &args[0] {
                ColumnarValue::Scalar(v) => {
                    let s = match v {
                        ScalarValue::Utf8(s) => s.as_deref(),
                        _ => None,
                    };
                    ColumnarValue::Scalar(ScalarValue::Utf8(quote(s)))
                }
                ColumnarValue::Array(a) => {
                    let a = a.as_string::<i32>();
                    ColumnarValue::Array(Arc::new(
                        a.iter().map(quote).collect::<arrow::array::StringArray>(),
                    ))
                }
            })
        }),
    ));
}

/// A function of no arguments answering `value`.
fn constant(name: &str, value: &str) -> ScalarUDF {
    let value = value.to_owned();
    create_udf(
        name,
        Vec::new(),
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                value.clone(),
            ))))
        }),
    )
}

/// Postgres' words that must be quoted to be used as identifiers.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

/// `quote_ident` as Postgres does it: unchanged when it is a plain
/// lower-case identifier and not reserved, else double-quoted with inner
/// quotes doubled.
fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED.contains(&s);
    if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

fn counter(name: &str, per_second: bool) -> AggregateUDF {
    create_udaf(
        name,
        vec![DataType::Float64, timestamp_type()],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(move |_| {
            Ok(Box::new(Counter {
                samples: Vec::new(),
                per_second,
            }))
        }),
        Arc::new(vec![list_of(DataType::Int64), list_of(DataType::Float64)]),
    )
}

/// The samples of one group (timestamp µs, value).
#[derive(Debug)]
struct Counter {
    samples: Vec<(i64, f64)>,
    per_second: bool,
}

impl Accumulator for Counter {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [v, t] = values else {
            return exec_err!("counter functions take (value, timestamp)");
        };
        let v = v.as_primitive::<Float64Type>();
        // Same layout as Int64: microseconds since the epoch.
        let t = arrow::compute::cast(t, &DataType::Int64)?;
        let t = t.as_primitive::<Int64Type>();
        for i in 0..v.len() {
            if v.is_valid(i) && t.is_valid(i) {
                self.samples.push((t.value(i), v.value(i)));
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [ts, vs] = states else {
            return exec_err!("counter state has two lists");
        };
        let (ts, vs): (&ListArray, &ListArray) = (ts.as_list(), vs.as_list());
        for row in 0..ts.len() {
            if ts.is_null(row) {
                continue;
            }
            let t = ts.value(row);
            let v = vs.value(row);
            let (t, v) = (
                t.as_primitive::<Int64Type>(),
                v.as_primitive::<Float64Type>(),
            );
            self.samples
                .extend(t.values().iter().copied().zip(v.values().iter().copied()));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let t = Int64Array::from_iter_values(self.samples.iter().map(|s| s.0));
        let v = Float64Array::from_iter_values(self.samples.iter().map(|s| s.1));
        Ok(vec![
            ScalarValue::List(Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                [Some(
                    t.values().iter().map(|x| Some(*x)).collect::<Vec<_>>(),
                )],
            ))),
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    v.values().iter().map(|x| Some(*x)).collect::<Vec<_>>(),
                )]),
            )),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.samples.sort_unstable_by_key(|s| s.0);
        // A sample written twice at one timestamp counts once (the last).
        self.samples.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 = later.1;
                true
            } else {
                false
            }
        });
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return Ok(ScalarValue::Float64(None));
        };
        let increase: f64 = self
            .samples
            .windows(2)
            .map(|w| {
                if w[1].1 >= w[0].1 {
                    w[1].1 - w[0].1
                } else {
                    w[1].1
                }
            })
            .sum();
        if !self.per_second {
            return Ok(ScalarValue::Float64(Some(increase)));
        }
        let seconds = (last.0 - first.0) as f64 / 1e6;
        Ok(ScalarValue::Float64(
            (self.samples.len() >= 2 && seconds > 0.0).then(|| increase / seconds),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.samples.capacity() * 16
    }
}

fn histogram_quantile() -> AggregateUDF {
    create_udaf(
        "histogram_quantile",
        vec![DataType::Float64, DataType::Utf8, DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Buckets::default()))),
        Arc::new(vec![
            DataType::Float64,
            list_of(DataType::Float64),
            list_of(DataType::Float64),
        ]),
    )
}

/// One group's quantile and buckets (upper bound, cumulative count).
#[derive(Debug, Default)]
struct Buckets {
    q: Option<f64>,
    buckets: Vec<(f64, f64)>,
}

/// A bucket bound as Prometheus writes it ("0.5", "+Inf", "1e+06").
fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

impl Accumulator for Buckets {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [q, le, count] = values else {
            return exec_err!("histogram_quantile takes (q, le, count)");
        };
        let q = q.as_primitive::<Float64Type>();
        let le = arrow::compute::cast(le, &DataType::Utf8)?;
        let le = le.as_string::<i32>();
        let count = count.as_primitive::<Float64Type>();
        for i in 0..le.len() {
            if q.is_valid(i) {
                self.q = Some(q.value(i));
            }
            if le.is_null(i) || count.is_null(i) {
                continue;
            }
            let Some(bound) = parse_le(le.value(i)) else {
                return exec_err!("histogram_quantile: le {:?} is not a number", le.value(i));
            };
            self.buckets.push((bound, count.value(i)));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [q, les, counts] = states else {
            return exec_err!("histogram_quantile state has three fields");
        };
        let q = q.as_primitive::<Float64Type>();
        let (les, counts): (&ListArray, &ListArray) = (les.as_list(), counts.as_list());
        for row in 0..les.len() {
            if q.is_valid(row) {
                self.q = Some(q.value(row));
            }
            if les.is_null(row) {
                continue;
            }
            let l = les.value(row);
            let c = counts.value(row);
            let (l, c) = (
                l.as_primitive::<Float64Type>(),
                c.as_primitive::<Float64Type>(),
            );
            self.buckets
                .extend(l.values().iter().copied().zip(c.values().iter().copied()));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |f: fn(&(f64, f64)) -> f64| {
            ScalarValue::List(Arc::new(
                ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
                    self.buckets.iter().map(|b| Some(f(b))).collect::<Vec<_>>(),
                )]),
            ))
        };
        Ok(vec![
            ScalarValue::Float64(self.q),
            list(|b| b.0),
            list(|b| b.1),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(q) = self.q else {
            return Ok(ScalarValue::Float64(None));
        };
        if self.buckets.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        // PromQL's own: counts of the same bound add up (several series,
        // one group), then linear interpolation within the bucket.
        Ok(ScalarValue::Float64(Some(bucket_quantile(
            q,
            std::mem::take(&mut self.buckets),
        ))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.buckets.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_ident_matches_postgres() {
        assert_eq!(quote_ident("http_requests_total"), "http_requests_total");
        assert_eq!(quote_ident("Code"), "\"Code\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1x"), "\"1x\"");
        assert_eq!(quote_ident("timestamp"), "timestamp");
    }

    #[test]
    fn bucket_quantile_matches_prometheus() {
        // le: 0.1 → 10, 0.5 → 30, 1 → 40, +Inf → 40
        let b = || vec![(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)];
        assert!((bucket_quantile(0.5, b()) - 0.3).abs() < 1e-12);
        assert!((bucket_quantile(0.25, b()) - 0.1).abs() < 1e-12);
        assert!((bucket_quantile(0.1, b()) - 0.04).abs() < 1e-12);
        assert_eq!(bucket_quantile(1.0, b()), 1.0);
        assert_eq!(bucket_quantile(2.0, b()), f64::INFINITY);
        assert!(bucket_quantile(0.5, vec![(1.0, 3.0)]).is_nan());
    }
}
