//! The `samples` table: every float sample of a tenant.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, MapBuilder, MapFieldNames, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::union::UnionExec;
use strata_head::{HeadSeriesRef, MatchOp, Matcher, SeriesSnapshot, TenantHead};
use strata_storage::{DataFile, TenantView, col, metrics_schema};
use strata_types::METRIC_NAME_LABEL;

use crate::file_index_cache::FileIndexCache;

const BATCH_ROWS: usize = 8192;

use col::{LABELS, METRIC, SERIES_ID, TIMESTAMP, VALUE};

/// Where a query session finds the tenant's data files: the store's root
/// is registered under this URL.
pub(crate) const STORE_URL: &str = "strata://store";

/// Schema of the `samples` table: the data files' schema.
pub fn samples_schema() -> SchemaRef {
    metrics_schema()
}

/// `samples` over one tenant's heads and files.
#[derive(Debug)]
pub struct SamplesTable {
    view: TenantView,
    /// The engine's file indexes: a scan naming its series (`series_id`
    /// filters, as metric tables' label filters become) reads only their
    /// rows of each file. Time travel's views go without (their files
    /// are not the table's live ones the cache keeps).
    file_index: Option<Arc<FileIndexCache>>,
}

impl SamplesTable {
    pub fn new(view: TenantView) -> Self {
        Self {
            view,
            file_index: None,
        }
    }

    /// With the engine's file indexes.
    pub(crate) fn with_file_index(mut self, cache: Arc<FileIndexCache>) -> Self {
        self.file_index = Some(cache);
        self
    }

    /// Each file's rows of the series in `ids`, by its relative path
    /// (the files `keep` selects, their indexes built as label lookups
    /// build them), and those files that hold any.
    async fn row_selections<'v>(
        &'v self,
        cache: &FileIndexCache,
        keep: impl Fn(&DataFile) -> bool,
        ids: &HashSet<i64>,
    ) -> Result<(Vec<&'v DataFile>, HashMap<String, RowSelection>)> {
        let mut files = Vec::new();
        let mut selections = HashMap::new();
        for (f, ix) in cache.indexes_of(&self.view, keep).await? {
            let selection = ix.row_selection(ids);
            if selection.selects_any() {
                selections.insert(f.path.relative(), selection);
                files.push(f);
            }
        }
        Ok((files, selections))
    }
}

/// `samples` as a query may see it: all of it, or with a lookback limit
/// a view that drops older rows (DataFusion inlines the view, so the
/// bound also prunes files and row groups; the scan itself floors its
/// head reads at the same time).
pub(crate) fn within_lookback(
    samples: Arc<SamplesTable>,
    not_before_ms: i64,
) -> Result<Arc<dyn TableProvider>> {
    if not_before_ms == i64::MIN {
        return Ok(samples);
    }
    let source = datafusion::datasource::provider_as_source(samples as Arc<dyn TableProvider>);
    let floor = datafusion::logical_expr::lit(ScalarValue::TimestampMicrosecond(
        Some(not_before_ms.saturating_mul(1000)),
        Some("UTC".into()),
    ));
    let plan = datafusion::logical_expr::LogicalPlanBuilder::scan("samples", source, None)?
        .filter(datafusion::logical_expr::col("timestamp").gt_eq(floor))?
        .build()?;
    Ok(Arc::new(datafusion::datasource::ViewTable::new(plan, None)))
}

/// What a scan can use from the query's filters: label matchers and an
/// inclusive time range in nanoseconds (the precision of the finest
/// literal; samples' milliseconds are a rounding of it).
#[derive(Debug, Default)]
pub(crate) struct Pushdown {
    pub(crate) matchers: Vec<Matcher>,
    /// The series ids a `series_id` equality or `IN` list allows.
    pub(crate) series_ids: Option<HashSet<i64>>,
    pub(crate) min_ns: Option<i64>,
    pub(crate) max_ns: Option<i64>,
}

impl Pushdown {
    /// The least whole millisecond at or after the range's start.
    pub(crate) fn min_ms(&self) -> Option<i64> {
        self.min_ns
            .map(|ns| ns.div_euclid(1_000_000) + i64::from(ns.rem_euclid(1_000_000) != 0))
    }

    /// The greatest whole millisecond at or before the range's end.
    pub(crate) fn max_ms(&self) -> Option<i64> {
        self.max_ns.map(|ns| ns.div_euclid(1_000_000))
    }

    pub(crate) fn from_filters(filters: &[Expr]) -> Self {
        let mut p = Self::default();
        for f in filters {
            p.add(f);
        }
        p
    }

    /// Records what `expr` implies; returns whether anything was used.
    pub(crate) fn add(&mut self, expr: &Expr) -> bool {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => {
                    let l = self.add(left);
                    let r = self.add(right);
                    l || r
                }
                _ => self.add_comparison(left, *op, right),
            },
            Expr::Like(like)
                if !like.negated && !like.case_insensitive && like.escape_char.is_none() =>
            {
                let (Some(label), Some(pattern)) = (label_of(&like.expr), literal(&like.pattern))
                else {
                    return false;
                };
                match Matcher::regex(label, &like_to_regex(&pattern)) {
                    Ok(m) => {
                        self.matchers.push(m);
                        true
                    }
                    Err(_) => false,
                }
            }
            Expr::InList(list) if !list.negated && is_column(&list.expr, "series_id") => {
                let Some(ids) = list.list.iter().map(series_id).collect::<Option<_>>() else {
                    return false;
                };
                self.allow_series(ids);
                true
            }
            Expr::InList(list) if !list.negated => {
                let Some(label) = label_of(&list.expr) else {
                    return false;
                };
                let Some(values) = list.list.iter().map(literal).collect::<Option<Vec<_>>>() else {
                    return false;
                };
                let alternation: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
                match Matcher::regex(label, &alternation.join("|")) {
                    Ok(m) => {
                        self.matchers.push(m);
                        true
                    }
                    Err(_) => false,
                }
            }
            // A Prometheus label is never empty: absent reads as "".
            Expr::IsNotNull(e) => match label_of(e) {
                Some(label) => {
                    self.matchers.push(Matcher::not_equal(label, ""));
                    true
                }
                None => false,
            },
            Expr::IsNull(e) => match label_of(e) {
                Some(label) => {
                    self.matchers.push(Matcher::equal(label, ""));
                    true
                }
                None => false,
            },
            Expr::Between(b) if !b.negated => {
                let (Some(lo), Some(hi)) = (timestamp_ns(&b.low), timestamp_ns(&b.high)) else {
                    return false;
                };
                if !is_column(&b.expr, "timestamp") {
                    return false;
                }
                self.raise_min(lo);
                self.lower_max(hi);
                true
            }
            _ => false,
        }
    }

    fn add_comparison(&mut self, left: &Expr, op: Operator, right: &Expr) -> bool {
        // Normalise to `column op literal`.
        let (col, op, lit) = if matches!(right, Expr::Literal(..)) {
            (left, op, right)
        } else if let Some(swapped) = op.swap() {
            (right, swapped, left)
        } else {
            return false;
        };
        if is_column(col, "series_id") && op == Operator::Eq {
            let Some(id) = series_id(lit) else {
                return false;
            };
            self.allow_series(HashSet::from([id]));
            return true;
        }
        if is_column(col, "timestamp") {
            let Some(t) = timestamp_ns(lit) else {
                return false;
            };
            match op {
                Operator::Eq => {
                    self.raise_min(t);
                    self.lower_max(t);
                }
                Operator::Gt => self.raise_min(t.saturating_add(1)),
                Operator::GtEq => self.raise_min(t),
                Operator::Lt => self.lower_max(t.saturating_sub(1)),
                Operator::LtEq => self.lower_max(t),
                _ => return false,
            }
            return true;
        }
        let Some(value) = literal(lit) else {
            return false;
        };
        let Some(label) = label_of(col) else {
            return false;
        };
        match op {
            Operator::Eq => self.matchers.push(Matcher::equal(label, value)),
            Operator::NotEq => self.matchers.push(Matcher::not_equal(label, value)),
            _ => return false,
        }
        true
    }

    /// The metric an equality filter names, if any.
    fn metric(&self) -> Option<&str> {
        self.matchers.iter().find_map(|m| match &m.op {
            MatchOp::Equal(v) if m.name == METRIC_NAME_LABEL => Some(v.as_str()),
            _ => None,
        })
    }

    fn allow_series(&mut self, ids: HashSet<i64>) {
        self.series_ids = Some(match self.series_ids.take() {
            Some(have) => have.intersection(&ids).copied().collect(),
            None => ids,
        });
    }

    fn raise_min(&mut self, t: i64) {
        self.min_ns = Some(self.min_ns.map_or(t, |m| m.max(t)));
    }

    fn lower_max(&mut self, t: i64) {
        self.max_ns = Some(self.max_ns.map_or(t, |m| m.min(t)));
    }
}

/// The label an expression reads: `metric` is `__name__`, `labels['x']`
/// is `x`.
fn label_of(e: &Expr) -> Option<String> {
    if is_column(e, "metric") {
        Some(METRIC_NAME_LABEL.to_owned())
    } else {
        label_key(e)
    }
}

/// A SQL `LIKE` pattern (`%` any run, `_` one character, `\` escapes) as
/// an anchored-by-the-matcher regular expression.
fn like_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str("(?s:.*)"),
            '_' => out.push_str("(?s:.)"),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(&next.to_string()));
                } else {
                    out.push_str(&regex::escape("\\"));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

/// A `series_id` literal.
fn series_id(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        _ => None,
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == name,
        Expr::Cast(c) => is_column(&c.expr, name),
        _ => false,
    }
}

/// `labels['key']` as DataFusion plans it: `get_field(labels, 'key')`.
fn label_key(e: &Expr) -> Option<String> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if f.func.name() != "get_field" {
        return None;
    }
    match f.args.as_slice() {
        [map, key] if is_column(map, "labels") => {
            let key = literal(key)?;
            // `__name__` lives in the metric column, not in the map.
            (key != METRIC_NAME_LABEL).then_some(key)
        }
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _) => Some(s.clone()),
        _ => None,
    }
}

/// A timestamp literal in nanoseconds (saturating far outside the
/// representable range, which keeps a bound inclusive).
fn timestamp_ns(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => Some(s.saturating_mul(1_000_000_000)),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Some(ms.saturating_mul(1_000_000)),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(us.saturating_mul(1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(*ns),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for SamplesTable {
    fn schema(&self) -> SchemaRef {
        samples_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: the scan narrows by what it understands and DataFusion
        // still applies every filter, so correctness never rests on it.
        Ok(filters
            .iter()
            .map(|f| {
                if Pushdown::default().add(f) {
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
        let full = samples_schema();
        let columns: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let schema = Arc::new(full.project(&columns)?);
        let pushdown = Pushdown::from_filters(filters);
        // The tenant's lookback limit is a floor no filter can lower.
        let (min_ms, max_ms) = (
            pushdown
                .min_ms()
                .unwrap_or(i64::MIN)
                .max(self.view.not_before_ms),
            pushdown.max_ms().unwrap_or(i64::MAX),
        );
        // With filters the limit applies after them, so it cannot cut the scan.
        let row_limit = if filters.is_empty() { limit } else { None };
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !self.view.heads.is_empty() {
            let partitions: Vec<Arc<dyn PartitionStream>> = self
                .view
                .heads
                .iter()
                .map(|head| -> Arc<dyn PartitionStream> {
                    Arc::new(HeadPartition {
                        head: Arc::clone(head),
                        matchers: pushdown.matchers.clone(),
                        series_ids: pushdown.series_ids.clone().map(Arc::new),
                        min_ms,
                        max_ms,
                        columns: columns.clone(),
                        schema: Arc::clone(&schema),
                        limit: row_limit,
                    })
                })
                .collect();
            inputs.push(Arc::new(StreamingTableExec::try_new(
                Arc::clone(&schema),
                partitions,
                None,
                Vec::new(),
                false,
                row_limit,
            )?));
        }
        let metric = pushdown.metric();
        let keep = |f: &DataFile| {
            f.stats.overlaps(min_ms, max_ms) && metric.is_none_or(|m| may_hold_metric(f, m))
        };
        let (files, selections) = match (&pushdown.series_ids, &self.file_index) {
            (Some(ids), Some(cache)) => self.row_selections(cache, keep, ids).await?,
            _ => (
                self.view.files.iter().filter(|f| keep(f)).collect(),
                HashMap::new(),
            ),
        };
        if !files.is_empty() {
            inputs.push(self.files_exec(state, &files, &selections, &columns, row_limit)?);
        }
        if inputs.is_empty() {
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        UnionExec::try_new(inputs)
    }
}

/// Whether a file's metric range can hold `metric`. Files whose metric
/// statistics were too long to log carry empty bounds: kept.
pub(crate) fn may_hold_metric(f: &DataFile, metric: &str) -> bool {
    let s = &f.stats;
    s.min_metric.is_empty()
        || s.max_metric.is_empty()
        || (s.min_metric.as_str() <= metric && metric <= s.max_metric.as_str())
}

/// Whether a file may hold samples in `[start_ms, end_ms]`, of `metric`
/// when one is named.
pub(crate) fn may_hold(f: &DataFile, start_ms: i64, end_ms: i64, metric: Option<&str>) -> bool {
    f.stats.overlaps(start_ms, end_ms) && metric.is_none_or(|m| may_hold_metric(f, m))
}

impl SamplesTable {
    /// A Parquet scan of the files left after pruning by their logged
    /// statistics; row groups and pages are pruned further by the
    /// pushed-down predicate, series ids also by bloom filter.
    fn files_exec(
        &self,
        state: &dyn Session,
        files: &[&DataFile],
        selections: &HashMap<String, RowSelection>,
        columns: &[usize],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The query's filters reach the Parquet scan through DataFusion's
        // physical filter pushdown (the filters stay above it: Inexact).
        let source = ParquetSource::new(samples_schema())
            .with_enable_page_index(true)
            .with_bloom_filter_on_read(true);
        let groups = file_groups(
            files,
            &self.view.table_root,
            self.view.store.base(),
            state.config().target_partitions(),
            selections,
        );
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(source))
                .with_file_groups(groups)
                .with_projection_indices(Some(columns.to_vec()))?
                .with_limit(limit)
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// Data files spread over as many groups as the session has partitions,
/// largest first, each to the lightest group (ties in file order). Paths
/// are from the store's base, as sessions register it (`STORE_URL`): the
/// server's own directories never show in a plan. A file with a row
/// selection (by its relative path) reads only those rows.
pub(crate) fn file_groups(
    files: &[&DataFile],
    table_root: &object_store::path::Path,
    base: &object_store::path::Path,
    partitions: usize,
    selections: &HashMap<String, RowSelection>,
) -> Vec<FileGroup> {
    let table_root = from_base(table_root, base);
    let mut sorted: Vec<&&DataFile> = files.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |f: &DataFile| (f.path.day, f.path.level, f.path.id);
        b.size.cmp(&a.size).then(key(a).cmp(&key(b)))
    });
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> =
        vec![(0, Vec::new()); partitions.clamp(1, files.len().max(1))];
    for f in sorted {
        let Some(g) = groups.iter_mut().min_by_key(|g| g.0) else {
            break;
        };
        g.0 += f.size;
        let mut file = PartitionedFile::new(f.path.under(&table_root).to_string(), f.size);
        if let Some(selection) = selections.get(&f.path.relative()) {
            file = file.with_extension(ParquetRowSelection::new(selection.clone()));
        }
        g.1.push(file);
    }
    groups.into_iter().map(|(_, g)| FileGroup::new(g)).collect()
}

/// One scan of the head: selects matching series when executed, then reads
/// and converts them a few at a time, so memory stays at about one batch
/// however much the head holds, and a dropped query stops reading.
#[derive(Debug)]
struct HeadPartition {
    head: Arc<TenantHead>,
    matchers: Vec<Matcher>,
    /// The only series ids a filter allows, if it names them.
    series_ids: Option<Arc<HashSet<i64>>>,
    min_ms: i64,
    max_ms: i64,
    /// Projected column indexes of the full schema.
    columns: Vec<usize>,
    schema: SchemaRef,
    limit: Option<usize>,
}

impl PartitionStream for HeadPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let refs = match &self.series_ids {
            Some(ids) => self
                .head
                .select_series_where(&self.matchers, |id| ids.contains(&(id.0 as i64))),
            None => self.head.select_series(&self.matchers),
        };
        let batches = HeadBatches {
            head: Arc::clone(&self.head),
            refs,
            next: 0,
            min_ms: self.min_ms,
            max_ms: self.max_ms,
            columns: self.columns.clone(),
            schema: Arc::clone(&self.schema),
            left: self.limit.unwrap_or(usize::MAX),
            builders: Builders::new(),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}

/// Series read per lock of the head.
const SERIES_PER_READ: usize = 256;

struct HeadBatches {
    head: Arc<TenantHead>,
    refs: Vec<HeadSeriesRef>,
    next: usize,
    min_ms: i64,
    max_ms: i64,
    columns: Vec<usize>,
    schema: SchemaRef,
    /// Rows still allowed by a pushed-down limit.
    left: usize,
    builders: Builders,
}

impl Iterator for HeadBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let head = &self.head;
        while self.builders.rows < BATCH_ROWS && self.left > 0 && self.next < self.refs.len() {
            let end = (self.next + SERIES_PER_READ).min(self.refs.len());
            let chunk = head.read_series(&self.refs[self.next..end], self.min_ms, self.max_ms);
            self.next = end;
            for s in &chunk {
                for smp in &s.samples {
                    if self.left == 0 {
                        break;
                    }
                    self.builders
                        .push(s, smp.timestamp_ms, smp.value, &self.columns);
                    self.left -= 1;
                }
            }
        }
        (self.builders.rows > 0).then(|| self.builders.finish(&self.columns, &self.schema))
    }
}

struct Builders {
    rows: usize,
    metric: StringBuilder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    series_id: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    value: Float64Builder,
}

impl Builders {
    fn new() -> Self {
        let names = MapFieldNames {
            entry: strata_storage::schema_names::MAP_ENTRIES.into(),
            key: strata_storage::schema_names::MAP_KEY.into(),
            value: strata_storage::schema_names::MAP_VALUE.into(),
        };
        Self {
            rows: 0,
            metric: StringBuilder::new(),
            labels: MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
                .with_values_field(Arc::new(Field::new(
                    strata_storage::schema_names::MAP_VALUE,
                    DataType::Utf8,
                    false,
                ))),
            series_id: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            value: Float64Builder::new(),
        }
    }

    fn push(&mut self, s: &SeriesSnapshot, ts: i64, value: f64, columns: &[usize]) {
        self.rows += 1;
        for &c in columns {
            match c {
                METRIC => self
                    .metric
                    .append_value(s.label(METRIC_NAME_LABEL).unwrap_or_default()),
                LABELS => {
                    for (n, v) in &s.labels {
                        if &**n != METRIC_NAME_LABEL {
                            self.labels.keys().append_value(n);
                            self.labels.values().append_value(v);
                        }
                    }
                    // Appending a map entry only fails on mismatched key and
                    // value counts, which the loop above rules out.
                    let _ = self.labels.append(true);
                }
                SERIES_ID => self.series_id.append_value(s.id.0 as i64),
                TIMESTAMP => self.timestamp.append_value(ts.saturating_mul(1000)),
                VALUE => self.value.append_value(value),
                _ => {}
            }
        }
    }

    fn finish(&mut self, columns: &[usize], schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|&c| -> ArrayRef {
                match c {
                    METRIC => Arc::new(self.metric.finish()),
                    LABELS => Arc::new(self.labels.finish()),
                    SERIES_ID => Arc::new(self.series_id.finish()),
                    TIMESTAMP => Arc::new(self.timestamp.finish()),
                    _ => Arc::new(self.value.finish()),
                }
            })
            .collect();
        // The row count matters when no column is projected (`count(*)`).
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            arrays,
            &options,
        )?)
    }
}

/// `path` (from the store root) from the store's base.
pub(crate) fn from_base(
    path: &object_store::path::Path,
    base: &object_store::path::Path,
) -> object_store::path::Path {
    match path.prefix_match(base) {
        Some(parts) => parts.collect(),
        None => path.clone(),
    }
}
