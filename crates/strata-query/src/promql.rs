//! PromQL's [`Source`] over a tenant's heads and files.
//!
//! Heads answer through their postings: matchers select series, their
//! labels and samples come out directly. Files are read through the same
//! `samples` table SQL uses (restricted to the files), so file, row-group
//! and page pruning on time and metric are shared; only `series_id`,
//! `timestamp` and `value` are read per sample. Labels of file series come
//! from the heads when the series is still active, else from the
//! [`LabelCache`], else one row per series from the file
//! ([`crate::series_labels`]); every matcher is then checked on them with
//! Prometheus' rules (a missing label is "").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::regexp_like;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;
use strata_head::Matcher as HeadMatcher;
use strata_query_lang::promql::{
    ErrorKind, Labels, METRIC_NAME, MatchOp, Matcher, PromError, Series, Source, matches_all,
};
use strata_storage::TenantView;
use strata_types::TenantId;

use crate::series_labels::{FileSeriesCache, LabelCache, read_labels};
use crate::{QueryError, SamplesTable};

/// One tenant's data as PromQL sees it.
pub struct PromSource {
    tenant: TenantId,
    view: TenantView,
    /// A session whose `samples` table holds the files only.
    files: SessionContext,
    labels: Arc<LabelCache>,
    file_series: Arc<FileSeriesCache>,
}

impl std::fmt::Debug for PromSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromSource")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str) -> PromError {
    PromError::new(ErrorKind::Internal, format!("samples scan: {what}"))
}

fn prom_error(e: QueryError) -> PromError {
    let kind = match e.kind() {
        strata_types::ErrorKind::Unavailable => ErrorKind::Unavailable,
        strata_types::ErrorKind::BadInput => ErrorKind::BadData,
        _ => ErrorKind::Internal,
    };
    PromError::new(kind, e.to_string())
}

fn df_error(e: datafusion::error::DataFusionError) -> PromError {
    prom_error(e.into())
}

/// A PromQL matcher as the head's index takes it.
fn head_matcher(m: &Matcher) -> Result<HeadMatcher, PromError> {
    Ok(match &m.op {
        MatchOp::Equal => HeadMatcher::equal(&m.name, &m.value),
        MatchOp::NotEqual => HeadMatcher::not_equal(&m.name, &m.value),
        MatchOp::Re(_) => {
            HeadMatcher::regex(&m.name, &m.value).map_err(|e| PromError::bad_data(e.to_string()))?
        }
        MatchOp::NotRe(_) => HeadMatcher::not_regex(&m.name, &m.value)
            .map_err(|e| PromError::bad_data(e.to_string()))?,
    })
}

/// What the file scan can apply itself: the metric name.
fn metric_filter(m: &Matcher) -> Option<Expr> {
    if m.name != METRIC_NAME {
        return None;
    }
    match &m.op {
        MatchOp::Equal => Some(col("metric").eq(lit(m.value.clone()))),
        MatchOp::Re(re) => Some(regexp_like(
            col("metric"),
            lit(re.as_str().to_owned()),
            None,
        )),
        _ => None,
    }
}

struct Found {
    labels: Option<Arc<Labels>>,
    points: Vec<(i64, f64)>,
}

impl PromSource {
    pub(crate) fn new(
        tenant: &TenantId,
        view: TenantView,
        files: SessionContext,
        labels: Arc<LabelCache>,
        file_series: Arc<FileSeriesCache>,
    ) -> Self {
        Self {
            tenant: tenant.clone(),
            view,
            files,
            labels,
            file_series,
        }
    }

    /// `files` holds a `samples` table over the view's files only.
    pub(crate) fn files_table(view: &TenantView) -> SamplesTable {
        SamplesTable::new(TenantView {
            heads: Vec::new(),
            ..view.clone()
        })
    }

    /// Series ids, labels (when the head knows them) and samples in range.
    async fn collect(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        with_samples: bool,
    ) -> Result<HashMap<i64, Found>, PromError> {
        // The tenant's lookback limit: nothing older is read.
        let start_ms = start_ms.max(self.view.not_before_ms);
        let mut found: HashMap<i64, Found> = HashMap::new();
        let head_matchers: Vec<HeadMatcher> = matchers
            .iter()
            .map(head_matcher)
            .collect::<Result<_, _>>()?;
        for head in &self.view.heads {
            for s in head.query(&head_matchers, start_ms, end_ms) {
                let id = s.id.0 as i64;
                let e = found.entry(id).or_insert_with(|| Found {
                    labels: None,
                    points: Vec::new(),
                });
                // Head labels come with the series; only labels read from
                // files go to the cache (no lock per head series per query).
                if e.labels.is_none() {
                    e.labels = Some(Arc::new(Labels::new(
                        s.labels
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_string()))
                            .collect(),
                    )));
                }
                if with_samples {
                    e.points
                        .extend(s.samples.iter().map(|x| (x.timestamp_ms, x.value)));
                }
            }
        }
        let overlapping = self
            .view
            .files
            .iter()
            .any(|f| f.stats.overlaps(start_ms, end_ms));
        if !overlapping {
            return Ok(found);
        }
        if !with_samples {
            // Which series a file holds is all a lookup needs (the time
            // range is approximate for these APIs, as in Prometheus).
            let metric = matchers.iter().find_map(|m| {
                (m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
                    .then_some(m.value.as_str())
            });
            for file in self.view.files.iter() {
                if !file.stats.overlaps(start_ms, end_ms)
                    || metric.is_some_and(|m| {
                        !file.stats.min_metric.is_empty()
                            && (m < file.stats.min_metric.as_str()
                                || m > file.stats.max_metric.as_str())
                    })
                {
                    continue;
                }
                let path = file.path.under(&self.view.table_root);
                let ids = self
                    .file_series
                    .series(self.view.store.store(), &path, file.size)
                    .await
                    .map_err(df_error)?;
                for id in ids.iter() {
                    found.entry(*id).or_insert_with(|| Found {
                        labels: None,
                        points: Vec::new(),
                    });
                }
            }
            self.resolve_labels(&mut found, start_ms, end_ms).await?;
            return Ok(found);
        }
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
            if let Some(e) = metric_filter(m) {
                filter = filter.and(e);
            }
        }
        let columns: &[&str] = &["series_id", "timestamp", "value"];
        let df = self
            .files
            .table("samples")
            .await
            .map_err(df_error)?
            .filter(filter)
            .and_then(|df| df.select_columns(columns))
            .map_err(df_error)?;
        let batches: Vec<RecordBatch> = df.collect().await.map_err(df_error)?;
        let mut from_files: HashSet<i64> = HashSet::new();
        for b in &batches {
            let ids = b
                .column_by_name("series_id")
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| internal("series_id"))?;
            let t = b
                .column_by_name("timestamp")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(|| internal("timestamp"))?;
            let v = b
                .column_by_name("value")
                .and_then(|c| c.as_primitive_opt::<Float64Type>())
                .ok_or_else(|| internal("value"))?;
            let mut current: Option<(i64, &mut Found)> = None;
            for row in 0..b.num_rows() {
                let id = ids.value(row);
                // Rows come in series runs: look the entry up once a run.
                if current.as_ref().is_none_or(|(cid, _)| *cid != id) {
                    from_files.insert(id);
                    let e = found.entry(id).or_insert_with(|| Found {
                        labels: None,
                        points: Vec::new(),
                    });
                    current = Some((id, e));
                }
                if let Some((_, e)) = current.as_mut() {
                    e.points.push((t.value(row).div_euclid(1000), v.value(row)));
                }
            }
        }
        for id in from_files {
            found.entry(id).or_insert_with(|| Found {
                labels: None,
                points: Vec::new(),
            });
        }
        self.resolve_labels(&mut found, start_ms, end_ms).await?;
        Ok(found)
    }

    /// Fills in labels the heads did not give: cache, then the files.
    async fn resolve_labels(
        &self,
        found: &mut HashMap<i64, Found>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(), PromError> {
        let mut missing: HashSet<i64> = HashSet::new();
        for (id, f) in found.iter_mut() {
            if f.labels.is_none() {
                match self.labels.get(&self.tenant, *id) {
                    Some(l) => f.labels = Some(l),
                    None => {
                        missing.insert(*id);
                    }
                }
            }
        }
        for file in self.view.files.iter() {
            if missing.is_empty() {
                break;
            }
            if !file.stats.overlaps(start_ms, end_ms)
                || file.stats.max_series_id < missing.iter().copied().min().unwrap_or(i64::MAX)
                || file.stats.min_series_id > missing.iter().copied().max().unwrap_or(i64::MIN)
            {
                continue;
            }
            let path = file.path.under(&self.view.table_root);
            let read = read_labels(self.view.store.store(), &path, file.size, &missing)
                .await
                .map_err(df_error)?;
            for (id, labels) in read {
                let labels = Arc::new(labels);
                self.labels.insert(&self.tenant, id, Arc::clone(&labels));
                if let Some(f) = found.get_mut(&id) {
                    f.labels = Some(labels);
                }
                missing.remove(&id);
            }
        }
        Ok(())
    }

    /// Label sets of the series matching `matchers` with a sample in the
    /// range.
    pub async fn series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, PromError> {
        let found = self.collect(matchers, start_ms, end_ms, false).await?;
        let mut out: Vec<Labels> = found
            .into_values()
            .filter_map(|f| f.labels)
            .filter(|l| matches_all(l, matchers))
            .map(|l| (*l).clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[async_trait]
impl Source for PromSource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        let found = self.collect(matchers, start_ms, end_ms, true).await?;
        let mut out = Vec::with_capacity(found.len());
        for f in found.into_values() {
            let Some(labels) = f.labels else {
                continue;
            };
            if !matches_all(&labels, matchers) || f.points.is_empty() {
                continue;
            }
            let mut points = f.points;
            // Heads and files are merged in scan order; a sample written
            // twice (before compaction dedups it) counts once.
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            out.push(Series {
                labels: Arc::unwrap_or_clone(labels),
                points,
            });
        }
        Ok(out)
    }
}
