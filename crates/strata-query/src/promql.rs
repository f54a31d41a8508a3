//! PromQL's [`Source`] over a tenant's heads and files: selectors become
//! scans of the same `samples` table SQL reads, so label and time pruning
//! (head postings, file ranges, row-group statistics, bloom filters) are
//! shared.
//!
//! Equality matchers (the metric name and non-empty label values) and the
//! time range are pushed into the scan; every matcher is then checked on
//! each series' labels with Prometheus' rules (a missing label is "").

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, MapArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::functions::core::expr_ext::FieldAccessor;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;
use strata_query_lang::promql::{
    ErrorKind, Labels, METRIC_NAME, MatchOp, Matcher, PromError, Series, Source, matches_all,
};
use strata_types::TenantId;

use crate::{QueryEngine, QueryError};

/// One tenant's data as PromQL sees it.
pub struct PromSource {
    ctx: SessionContext,
}

impl PromSource {
    pub fn new(engine: &QueryEngine, tenant: &TenantId) -> Result<Self, PromError> {
        Ok(Self {
            ctx: engine.session(tenant).map_err(prom_error)?,
        })
    }

    /// Rows of `samples` in `[start_ms, end_ms]` that the pushed-down part
    /// of `matchers` admits, with the given columns.
    async fn scan(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>, PromError> {
        let ts = |ms: i64| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(ms.saturating_mul(1000)),
                Some("UTC".into()),
            ))
        };
        let mut filter = col("timestamp")
            .gt_eq(ts(start_ms))
            .and(col("timestamp").lt_eq(ts(end_ms)));
        for m in matchers {
            if let Some(e) = pushdown(m) {
                filter = filter.and(e);
            }
        }
        let df = self
            .ctx
            .table("samples")
            .await
            .map_err(|e| prom_error(e.into()))?
            .filter(filter)
            .and_then(|df| df.select_columns(columns))
            .map_err(|e| prom_error(e.into()))?;
        df.collect().await.map_err(|e| prom_error(e.into()))
    }

    /// Label sets of the series matching `matchers` with a sample in the
    /// range.
    pub async fn series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, PromError> {
        let batches = self
            .scan(
                matchers,
                start_ms,
                end_ms,
                &["metric", "labels", "series_id"],
            )
            .await?;
        let mut seen: HashMap<i64, Option<Labels>> = HashMap::new();
        for b in &batches {
            let (metric, labels, ids) = columns(b)?;
            for row in 0..b.num_rows() {
                let id = ids.value(row);
                seen.entry(id).or_insert_with(|| {
                    let l = row_labels(metric.value(row), labels, row);
                    matches_all(&l, matchers).then_some(l)
                });
            }
        }
        let mut out: Vec<Labels> = seen.into_values().flatten().collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

type Columns<'a> = (
    &'a arrow::array::StringArray,
    &'a MapArray,
    &'a arrow::array::PrimitiveArray<Int64Type>,
);

fn columns(b: &RecordBatch) -> Result<Columns<'_>, PromError> {
    let internal =
        |what: &str| PromError::new(ErrorKind::Internal, format!("samples scan: {what}"));
    let metric = b
        .column_by_name("metric")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| internal("metric column"))?;
    let labels = b
        .column_by_name("labels")
        .and_then(|c| c.as_map_opt())
        .ok_or_else(|| internal("labels column"))?;
    let ids = b
        .column_by_name("series_id")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| internal("series_id column"))?;
    Ok((metric, labels, ids))
}

fn row_labels(metric: &str, labels: &MapArray, row: usize) -> Labels {
    let entries = labels.value(row);
    let mut pairs = Vec::with_capacity(entries.len() + 1);
    pairs.push((METRIC_NAME.to_owned(), metric.to_owned()));
    if let (Some(k), Some(v)) = (
        entries.column(0).as_string_opt::<i32>(),
        entries.column(1).as_string_opt::<i32>(),
    ) {
        for i in 0..entries.len() {
            pairs.push((k.value(i).to_owned(), v.value(i).to_owned()));
        }
    }
    Labels::new(pairs)
}

/// The part of a matcher the scan can apply exactly.
fn pushdown(m: &Matcher) -> Option<Expr> {
    match &m.op {
        MatchOp::Equal if m.name == METRIC_NAME => Some(col("metric").eq(lit(m.value.clone()))),
        MatchOp::Equal if !m.value.is_empty() => {
            Some(col("labels").field(m.name.clone()).eq(lit(m.value.clone())))
        }
        _ => None,
    }
}

fn prom_error(e: QueryError) -> PromError {
    let kind = match e.kind() {
        strata_types::ErrorKind::Unavailable => ErrorKind::Unavailable,
        strata_types::ErrorKind::BadInput => ErrorKind::BadData,
        _ => ErrorKind::Internal,
    };
    PromError::new(kind, e.to_string())
}

#[async_trait]
impl Source for PromSource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        let batches = self
            .scan(
                matchers,
                start_ms,
                end_ms,
                &["metric", "labels", "series_id", "timestamp", "value"],
            )
            .await?;
        // Series by id; labels parsed once per series.
        let mut by_id: HashMap<i64, Option<Series>> = HashMap::new();
        for b in &batches {
            let (metric, labels, ids) = columns(b)?;
            let ts = b
                .column_by_name("timestamp")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(|| PromError::new(ErrorKind::Internal, "samples scan: timestamp"))?;
            let values = b
                .column_by_name("value")
                .and_then(|c| c.as_primitive_opt::<Float64Type>())
                .ok_or_else(|| PromError::new(ErrorKind::Internal, "samples scan: value"))?;
            for row in 0..b.num_rows() {
                let entry = by_id.entry(ids.value(row)).or_insert_with(|| {
                    let l = row_labels(metric.value(row), labels, row);
                    matches_all(&l, matchers).then(|| Series {
                        labels: l,
                        points: Vec::new(),
                    })
                });
                if let Some(s) = entry {
                    s.points
                        .push((ts.value(row).div_euclid(1000), values.value(row)));
                }
            }
        }
        let mut out: Vec<Series> = by_id.into_values().flatten().collect();
        for s in &mut out {
            // Head and files are merged in scan order; a sample written
            // twice (before compaction dedups it) counts once.
            s.points.sort_by_key(|p| p.0);
            s.points.dedup_by_key(|p| p.0);
        }
        Ok(out)
    }
}

/// Shared with the HTTP layer: a source per request.
pub fn source(engine: &QueryEngine, tenant: &TenantId) -> Result<Arc<PromSource>, PromError> {
    PromSource::new(engine, tenant).map(Arc::new)
}
