//! A metric's table: the `samples` rows of one metric, each label a column.
//!
//! A row's labels are those of its series, so the label columns are not
//! read from the `labels` map of every row (a scan that materialises every
//! key and value of every sample to keep two of them): the scan reads
//! `series_id` and the sample columns, and each label column is the
//! series' value looked up by id — from the heads' postings and the data
//! files' indexes ([`FileIndex`](crate::series_labels::FileIndex), built
//! once per file and shared with PromQL), for the files the query's time
//! range reaches.
//!
//! Filters on `timestamp` and `value` go into the scan (with the metric
//! name, they prune files, row groups and pages); filters on label columns
//! apply to the looked-up values.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TableProviderFilterPushDown, Volatility, col, lit,
};
use datafusion::physical_plan::ExecutionPlan;
use strata_head::{Matcher, TenantHead};
use strata_storage::TenantView;
use strata_types::{METRIC_NAME_LABEL, SeriesId};

use crate::file_index_cache::FileIndexCache;
use crate::samples::Pushdown;

/// Columns every metric table ends with; a label of the same name is
/// renamed `label_<name>`.
const SAMPLE_COLUMNS: [&str; 2] = ["timestamp", "value"];

/// The column a label becomes in its metric's table.
pub(crate) fn label_column(label: &str) -> String {
    if SAMPLE_COLUMNS.contains(&label) {
        format!("label_{label}")
    } else {
        label.to_owned()
    }
}

/// The most series a label filter narrows a scan to by listing their
/// ids; past it the scan reads the metric's rows and the filter drops them.
const MAX_LISTED_SERIES: usize = 10_000;

/// Where a metric table finds its series' labels: the session's view (its
/// heads and files) and the engine's file indexes.
#[derive(Debug, Clone)]
pub(crate) struct SeriesLabelSource {
    pub(crate) view: TenantView,
    pub(crate) file_index: Arc<FileIndexCache>,
}

/// One metric's table.
#[derive(Debug)]
pub(crate) struct MetricTable {
    samples: Arc<dyn TableProvider>,
    metric: String,
    /// Label names, in column order.
    labels: Vec<String>,
    schema: SchemaRef,
    source: Arc<SeriesLabelSource>,
}

impl MetricTable {
    pub(crate) fn new(
        samples: Arc<dyn TableProvider>,
        metric: &str,
        labels: impl IntoIterator<Item = String>,
        source: Arc<SeriesLabelSource>,
    ) -> Result<Self> {
        let labels: Vec<String> = labels.into_iter().collect();
        let sample_schema = samples.schema();
        let mut fields: Vec<Field> = labels
            .iter()
            .map(|l| Field::new(label_column(l), DataType::Utf8, true))
            .collect();
        for c in SAMPLE_COLUMNS {
            fields.push(sample_schema.field_with_name(c)?.clone());
        }
        Ok(Self {
            samples,
            metric: metric.to_owned(),
            labels,
            schema: Arc::new(Schema::new(fields)),
            source,
        })
    }

    /// The series the filters on label columns alone allow, evaluated
    /// once per series on the looked-up values: a `series_id` filter for
    /// the scan (the heads select those series, files prune row groups and
    /// pages by them). `None` when no filter narrows, or when too many
    /// series pass for a list to help. The label filters still apply above
    /// the scan; a series the head creates after this lookup is left out
    /// of a filtered scan, as if the query had run first.
    fn series_allowed(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        wanted: &[&str],
        slots: &Slots,
        columns: &[ArrayRef],
    ) -> Result<Option<Expr>> {
        let names: Vec<String> = wanted.iter().map(|l| label_column(l)).collect();
        let on_labels: Vec<Expr> = filters
            .iter()
            .filter(|f| {
                let refs = f.column_refs();
                self.on_labels(f) && refs.iter().all(|c| names.contains(&c.name))
            })
            .map(unqualified)
            .collect::<Result<_>>()?;
        if on_labels.is_empty() {
            return Ok(None);
        }
        let schema = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns.to_vec())?;
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let mut keep = BooleanArray::from(vec![true; batch.num_rows()]);
        for f in &on_labels {
            // A filter that cannot be evaluated here only narrows nothing:
            // it still applies above the scan, with its own error.
            let Ok(v) = state
                .create_physical_expr(f.clone(), &df_schema)
                .and_then(|e| e.evaluate(&batch))
                .and_then(|v| v.into_array(batch.num_rows()))
            else {
                return Ok(None);
            };
            let Some(v) = v.as_boolean_opt() else {
                return Ok(None);
            };
            keep = arrow::compute::and_kleene(&keep, v)?;
        }
        let ids: Vec<i64> = slots
            .ids
            .iter()
            .zip(keep.iter())
            .filter(|(_, k)| *k == Some(true))
            .map(|(id, _)| *id)
            .collect();
        Ok(match ids.len() {
            0 => Some(lit(false)),
            n if n <= MAX_LISTED_SERIES => {
                Some(col("series_id").in_list(ids.into_iter().map(lit).collect(), false))
            }
            _ => None,
        })
    }

    /// Whether `e` reads label columns and nothing else, and gives the
    /// same answer for every row of a series (no volatile function).
    fn on_labels(&self, e: &Expr) -> bool {
        let refs = e.column_refs();
        !refs.is_empty()
            && !e.is_volatile()
            && refs.iter().all(|c| {
                self.labels
                    .iter()
                    .any(|l| label_column(l) == c.name.as_str())
            })
    }

    /// Whether `e` reads only the sample columns (the scan can apply it).
    fn on_samples(e: &Expr) -> bool {
        e.column_refs()
            .iter()
            .all(|c| SAMPLE_COLUMNS.contains(&c.name.as_str()))
    }
}

/// `e` with its columns unqualified: the scan's relation is `samples`,
/// not the metric's table.
fn unqualified(e: &Expr) -> Result<Expr> {
    e.clone()
        .transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            e => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
}

#[async_trait]
impl TableProvider for MetricTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters on the sample columns are applied by the scan, exactly;
        // those on labels alone narrow it to the series they allow and
        // apply above it, on the looked-up values.
        Ok(filters
            .iter()
            .map(|f| {
                if Self::on_samples(f) {
                    TableProviderFilterPushDown::Exact
                } else if self.on_labels(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let sample_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| Self::on_samples(f))
            .map(unqualified)
            .collect::<Result<_>>()?;
        let wanted: Vec<&str> = columns
            .iter()
            .filter_map(|&i| self.labels.get(i).map(String::as_str))
            .collect();
        let mut series_filter: Option<Expr> = None;
        let lookups = if wanted.is_empty() {
            Vec::new()
        } else {
            let range = Pushdown::from_filters(&sample_filters);
            let slots = self
                .source
                .slots(&self.metric, &wanted, range.min_ms(), range.max_ms())
                .await?;
            let columns = slots.columns();
            series_filter = self.series_allowed(state, filters, &wanted, &slots, &columns)?;
            slots.into_lookups(columns, &wanted, &self.source.view.heads)
        };
        let mut lookups = lookups.into_iter();
        let mut exprs: Vec<Expr> = Vec::with_capacity(columns.len());
        for &i in &columns {
            let name = self.schema.field(i).name();
            if i < self.labels.len() {
                let udf = lookups.next().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal(format!(
                        "no lookup for label column {name}"
                    ))
                })?;
                exprs.push(
                    ScalarUDF::new_from_impl(udf)
                        .call(vec![col("series_id")])
                        .alias(name),
                );
            } else {
                exprs.push(col(name.as_str()));
            }
        }
        let mut plan = LogicalPlanBuilder::scan(
            "samples",
            provider_as_source(Arc::clone(&self.samples)),
            None,
        )?
        .filter(col("metric").eq(lit(self.metric.as_str())))?;
        for f in sample_filters.into_iter().chain(series_filter) {
            plan = plan.filter(f)?;
        }
        let mut plan = plan.project(exprs)?;
        if let Some(n) = limit {
            plan = plan.limit(0, Some(n))?;
        }
        state.create_physical_plan(&plan.build()?).await
    }
}

/// The series of one metric with the values of some of their labels: a
/// slot per series, each label's values by slot.
struct Slots {
    by_id: HashMap<i64, u32>,
    /// Each slot's series id.
    ids: Vec<i64>,
    /// Per label, per slot.
    values: Vec<Vec<Option<Arc<str>>>>,
}

impl Slots {
    /// Each label's values by slot, as arrays.
    fn columns(&self) -> Vec<ArrayRef> {
        self.values
            .iter()
            .map(|values| {
                let a: StringArray = values.iter().map(|v| v.as_deref()).collect();
                Arc::new(a) as ArrayRef
            })
            .collect()
    }

    /// One lookup function per label, sharing the slots.
    fn into_lookups(
        self,
        columns: Vec<ArrayRef>,
        names: &[&str],
        heads: &[Arc<TenantHead>],
    ) -> Vec<SeriesLabel> {
        let by_id = Arc::new(self.by_id);
        columns
            .into_iter()
            .zip(names)
            .map(|(values, name)| SeriesLabel {
                name: (*name).to_owned(),
                by_id: Arc::clone(&by_id),
                values,
                heads: heads.to_vec(),
                signature: Signature::exact(vec![DataType::Int64], Volatility::Stable),
            })
            .collect()
    }
}

impl SeriesLabelSource {
    /// The series of `metric` in the heads and in the files with data in
    /// `[min_ms, max_ms]`, with their values of `names`.
    async fn slots(
        &self,
        metric: &str,
        names: &[&str],
        min_ms: Option<i64>,
        max_ms: Option<i64>,
    ) -> Result<Slots> {
        let mut slots = Slots {
            by_id: HashMap::new(),
            ids: Vec::new(),
            values: vec![Vec::new(); names.len()],
        };
        let mut add = |id: i64, values: &mut dyn Iterator<Item = Option<Arc<str>>>| {
            if slots.by_id.contains_key(&id) {
                return;
            }
            let slot = slots.by_id.len() as u32;
            slots.by_id.insert(id, slot);
            slots.ids.push(id);
            for (column, v) in slots.values.iter_mut().zip(values) {
                column.push(v);
            }
        };
        let matcher = [Matcher::equal(METRIC_NAME_LABEL, metric)];
        for head in &self.view.heads {
            for (id, values) in head.series_label_values(&matcher, names) {
                add(id.0 as i64, &mut values.into_iter());
            }
        }
        let (min_ms, max_ms) = (
            min_ms.unwrap_or(i64::MIN).max(self.view.not_before_ms),
            max_ms.unwrap_or(i64::MAX),
        );
        let files = self
            .file_index
            .indexes_of(&self.view, |f| {
                crate::samples::may_hold(f, min_ms, max_ms, Some(metric))
            })
            .await?;
        for (_, ix) in files {
            for pos in ix.labels.select(&matcher).iter() {
                let Some(&id) = ix.ids.get(pos as usize) else {
                    continue;
                };
                add(
                    id,
                    &mut names.iter().map(|n| ix.labels.label(pos, n).cloned()),
                );
            }
        }
        Ok(slots)
    }
}

/// `series_label(series_id)`: one label's value of each row's series
/// (null where the series lacks it). A series the slots do not hold —
/// one the head created after the query was planned — is looked up in
/// the heads; a row of another metric (a filter may evaluate this before
/// the metric's) gets null.
#[derive(Debug)]
struct SeriesLabel {
    name: String,
    by_id: Arc<HashMap<i64, u32>>,
    values: ArrayRef,
    heads: Vec<Arc<TenantHead>>,
    signature: Signature,
}

impl PartialEq for SeriesLabel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.by_id, &other.by_id)
    }
}

impl Eq for SeriesLabel {}

impl std::hash::Hash for SeriesLabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        Arc::as_ptr(&self.by_id).hash(state);
    }
}

impl SeriesLabel {
    fn in_heads(&self, id: i64) -> Option<Arc<str>> {
        self.heads
            .iter()
            .find_map(|h| h.series_label(SeriesId(id as u64), &self.name))
    }
}

impl ScalarUDFImpl for SeriesLabel {
    fn name(&self) -> &str {
        "series_label"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [ids] = args.args.as_slice() else {
            return Err(datafusion::error::DataFusionError::Internal(
                "series_label takes one argument".into(),
            ));
        };
        let ids = ids.to_array(args.number_rows)?;
        let ids = ids.as_primitive::<Int64Type>();
        // Rows come in runs of one series: one hash lookup per run.
        let mut slots: Vec<Option<u32>> = Vec::with_capacity(ids.len());
        let mut last: Option<(i64, Option<u32>)> = None;
        let mut missed = false;
        for (i, id) in ids.values().iter().enumerate() {
            let slot = match last {
                Some((l, s)) if l == *id => s,
                _ => {
                    let s = self.by_id.get(id).copied();
                    last = Some((*id, s));
                    s
                }
            };
            missed |= slot.is_none() && ids.is_valid(i);
            slots.push(slot);
        }
        if !missed {
            let indices = UInt32Array::from(slots);
            return Ok(ColumnarValue::Array(arrow::compute::take(
                &self.values,
                &indices,
                None,
            )?));
        }
        let values = self.values.as_string::<i32>();
        let mut from_heads: HashMap<i64, Option<Arc<str>>> = HashMap::new();
        let mut out = StringBuilder::with_capacity(ids.len(), 16 * ids.len());
        for (i, slot) in slots.into_iter().enumerate() {
            match slot {
                Some(s) if values.is_valid(s as usize) => {
                    out.append_value(values.value(s as usize))
                }
                Some(_) => out.append_null(),
                None if ids.is_null(i) => out.append_null(),
                None => {
                    let id = ids.value(i);
                    let v = from_heads.entry(id).or_insert_with(|| self.in_heads(id));
                    out.append_option(v.as_deref());
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
