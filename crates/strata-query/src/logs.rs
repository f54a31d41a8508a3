//! SQL's `logs` table: one row per log entry of the tenant, from the log
//! heads and the logs table's files as one table.
//!
//! Columns: `stream_id` (the stream's label hash), `labels` (the stream's
//! labels, `labels['job']`), `timestamp` (nanoseconds, UTC), `line`, and
//! `metadata` (structured metadata: `metadata['trace_id']`). Filters on
//! `labels[..]` select streams in the heads; filters on `timestamp` prune
//! heads, files (by their logged time range) and row groups (by Parquet
//! statistics on `timestamp_ns`); what filters on `line` need a line to
//! contain ([`crate::line_needs`]) rules out blocks of rows by the files'
//! line indexes; other filters, line filters included, reach the Parquet
//! scan through DataFusion's filter pushdown.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, MapBuilder, MapFieldNames, RecordBatch, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::union::UnionExec;
use strata_head::{LogStreamSnapshot, Matcher, TenantLogs};
use strata_storage::schema_names::{MAP_ENTRIES, MAP_KEY, MAP_VALUE};
use strata_storage::{DataFile, LogView, logs, logs_schema};

use crate::line_index_cache::LineIndexCache;
use crate::samples::{Pushdown, STORE_URL};

const BATCH_ROWS: usize = 4096;

fn string_map(name: &str) -> Field {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, DataType::Utf8, false),
        Field::new(MAP_VALUE, DataType::Utf8, false),
    ]);
    Field::new(
        name,
        DataType::Map(
            Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
            false,
        ),
        false,
    )
}

/// The `logs` table's columns.
pub fn logs_table_schema() -> SchemaRef {
    static SCHEMA: std::sync::LazyLock<SchemaRef> = std::sync::LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("stream_id", DataType::Int64, false),
            string_map("labels"),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("line", DataType::Utf8, false),
            string_map("metadata"),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// A tenant's logs, heads and files.
#[derive(Debug)]
pub struct LogsTable {
    view: LogView,
    /// The files' line indexes (`None`: every file is read whole).
    line_index: Option<Arc<LineIndexCache>>,
}

impl LogsTable {
    pub fn new(view: LogView) -> Self {
        Self {
            view,
            line_index: None,
        }
    }

    /// Needle searches skip what the files' line indexes rule out.
    pub(crate) fn with_line_index(mut self, cache: Arc<LineIndexCache>) -> Self {
        self.line_index = Some(cache);
        self
    }
}

#[async_trait]
impl TableProvider for LogsTable {
    fn schema(&self) -> SchemaRef {
        logs_table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: the scan narrows by what it understands; DataFusion
        // still applies every filter.
        Ok(filters
            .iter()
            .map(|f| {
                if Pushdown::default().add(f)
                    || crate::line_needs::need_of(&[(*f).clone()]).is_some()
                {
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
        let full = logs_table_schema();
        let columns: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let schema = Arc::new(full.project(&columns)?);
        let pushdown = Pushdown::from_filters(filters);
        // The lookback limit is a floor no filter can lower.
        let floor = self.view.not_before_ms.saturating_mul(1_000_000);
        let min_ns = pushdown.min_ns.unwrap_or(i64::MIN).max(floor);
        let max_ns = pushdown.max_ns.unwrap_or(i64::MAX);
        let row_limit = if filters.is_empty() { limit } else { None };
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !self.view.heads.is_empty() && min_ns <= max_ns {
            // Line filters tested in the head, before lines are copied.
            let lines = crate::line_needs::need_of(filters)
                .map(|need| Arc::new(strata_storage::LineTest::new(&need)));
            let partitions: Vec<Arc<dyn PartitionStream>> = self
                .view
                .heads
                .iter()
                .map(|head| -> Arc<dyn PartitionStream> {
                    Arc::new(HeadLogs {
                        head: Arc::clone(head),
                        matchers: pushdown.matchers.clone(),
                        lines: lines.clone(),
                        min_ns,
                        max_ns,
                        columns: columns.clone(),
                        schema: Arc::clone(&schema),
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
        let files: Vec<&DataFile> = self
            .view
            .files
            .iter()
            .filter(|f| {
                f.stats.rows > 0 && f.stats.min_ts_ns <= max_ns && f.stats.max_ts_ns >= min_ns
            })
            .collect();
        let (files, selections) = self.narrow_by_lines(files, filters).await;
        if !files.is_empty() && min_ns <= max_ns {
            inputs.push(self.files_exec(
                state,
                &files,
                &selections,
                &columns,
                min_ns,
                max_ns,
                row_limit,
            )?);
        }
        if inputs.is_empty() {
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        UnionExec::try_new(inputs)
    }
}

impl LogsTable {
    /// `files` less those whose line index rules every block out, and the
    /// rows to read of those it rules some out of (by path relative to
    /// the table).
    async fn narrow_by_lines<'f>(
        &self,
        files: Vec<&'f DataFile>,
        filters: &[Expr],
    ) -> (Vec<&'f DataFile>, HashMap<String, RowSelection>) {
        let mut selections = HashMap::new();
        let (Some(cache), Some(need)) = (&self.line_index, crate::line_needs::need_of(filters))
        else {
            return (files, selections);
        };
        if files.is_empty() || !need.can_prune() {
            return (files, selections);
        }
        let indexes = cache
            .indexes(self.view.store.store(), &self.view.table_root, &files)
            .await;
        let mut kept = Vec::with_capacity(files.len());
        for (file, index) in files.into_iter().zip(indexes) {
            let Some(index) = index else {
                kept.push(file);
                continue;
            };
            let ranges = index.ranges(&need);
            let read: u64 = ranges
                .iter()
                .map(|&(from, to)| (to - from).div_ceil(strata_storage::LINE_INDEX_BLOCK_ROWS))
                .sum();
            cache.count(read, index.blocks().saturating_sub(read));
            match ranges.as_slice() {
                [] => continue,
                [(0, to)] if *to == index.rows => {}
                _ => {
                    let selection = RowSelection::from_consecutive_ranges(
                        ranges.iter().map(|&(from, to)| from as usize..to as usize),
                        index.rows as usize,
                    );
                    selections.insert(file.path.relative(), selection);
                }
            }
            kept.push(file);
        }
        (kept, selections)
    }

    /// A Parquet scan of the files, their `timestamp_ns` turned into the
    /// table's `timestamp`; row groups outside `[min_ns, max_ns]` are
    /// skipped by statistics, streams by the `stream_id` bloom filter
    /// when a query names one.
    #[allow(clippy::too_many_arguments)]
    fn files_exec(
        &self,
        state: &dyn Session,
        files: &[&DataFile],
        selections: &HashMap<String, RowSelection>,
        columns: &[usize],
        min_ns: i64,
        max_ns: i64,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let file_schema = logs_schema();
        let ts = logs::col::TIMESTAMP_NS;
        let ts_col: Arc<dyn PhysicalExpr> = Arc::new(Column::new(logs::TIMESTAMP_NS, ts));
        let bound = |op, v: i64| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(
                Arc::clone(&ts_col),
                op,
                Arc::new(Literal::new(ScalarValue::Int64(Some(v)))),
            ))
        };
        let predicate: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            bound(datafusion::logical_expr::Operator::GtEq, min_ns),
            datafusion::logical_expr::Operator::And,
            bound(datafusion::logical_expr::Operator::LtEq, max_ns),
        ));
        // Filters pushed into the scan (line filters above all) are
        // evaluated on the columns they name first: other columns are
        // decoded only for the rows that pass.
        let mut source = ParquetSource::new(Arc::clone(&file_schema))
            .with_enable_page_index(true)
            .with_bloom_filter_on_read(true)
            .with_pushdown_filters(true)
            .with_reorder_filters(true);
        if min_ns > i64::MIN || max_ns < i64::MAX {
            source = source.with_predicate(predicate);
        }
        let groups = crate::samples::file_groups(
            files,
            &self.view.table_root,
            self.view.store.base(),
            state.config().target_partitions(),
            selections,
        );
        // Table column i is file column i (the timestamp differs in type
        // only).
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(source))
                .with_file_groups(groups)
                .with_projection_indices(Some(columns.to_vec()))?
                .with_limit(limit)
                .build();
        let scan = DataSourceExec::from_data_source(config);
        let table = logs_table_schema();
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let field = table.field(c);
                let column: Arc<dyn PhysicalExpr> =
                    Arc::new(Column::new(file_schema.field(c).name(), i));
                let expr: Arc<dyn PhysicalExpr> = if c == ts {
                    Arc::new(CastExpr::new(column, field.data_type().clone(), None))
                } else {
                    column
                };
                (expr, field.name().clone())
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
    }
}

/// One log head, read when executed.
#[derive(Debug)]
struct HeadLogs {
    head: Arc<TenantLogs>,
    matchers: Vec<Matcher>,
    /// What a line must hold to pass the scan's line filters.
    lines: Option<Arc<strata_storage::LineTest>>,
    min_ns: i64,
    /// Inclusive.
    max_ns: i64,
    columns: Vec<usize>,
    schema: SchemaRef,
}

impl PartitionStream for HeadLogs {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let lines = self.lines.clone();
        let keep = |line: &str| lines.as_ref().is_none_or(|t| t.holds(line.as_bytes()));
        let needs =
            |may_hold: &dyn Fn(&[u8]) -> bool| lines.as_ref().is_none_or(|t| t.may_pass(may_hold));
        let streams = self.head.select_where(
            &self.matchers,
            self.min_ns,
            self.max_ns.saturating_add(1),
            strata_head::LineFilter {
                keep: &keep,
                needs: lines.is_some().then_some(&needs as _),
                with_lines: true,
            },
        );
        let batches = to_batches(streams, self.columns.clone(), Arc::clone(&self.schema));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames {
        entry: MAP_ENTRIES.into(),
        key: MAP_KEY.into(),
        value: MAP_VALUE.into(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
        .with_values_field(Arc::new(Field::new(MAP_VALUE, DataType::Utf8, false)))
}

/// Head streams as batches of at most [`BATCH_ROWS`] rows, lazily.
fn to_batches(
    streams: Vec<LogStreamSnapshot>,
    columns: Vec<usize>,
    schema: SchemaRef,
) -> impl Iterator<Item = Result<RecordBatch>> + Send {
    let rows: Vec<(usize, usize)> = streams
        .iter()
        .enumerate()
        .flat_map(|(s, st)| (0..st.entries.len()).map(move |e| (s, e)))
        .collect();
    let chunks: Vec<Vec<(usize, usize)>> = rows.chunks(BATCH_ROWS).map(<[_]>::to_vec).collect();
    chunks.into_iter().map(move |chunk| {
        // Only the projected columns are built.
        let wants = |c: usize| columns.contains(&c);
        let mut id = Int64Builder::new();
        let mut labels = map_builder();
        let mut ts = TimestampNanosecondBuilder::new().with_timezone("UTC");
        let mut line = StringBuilder::new();
        let mut meta = map_builder();
        for &(s, e) in &chunk {
            let st = &streams[s];
            let entry = &st.entries[e];
            if wants(0) {
                id.append_value(st.stream_id as i64);
            }
            if wants(1) {
                for l in st.labels.iter() {
                    labels.keys().append_value(&l.name);
                    labels.values().append_value(&l.value);
                }
                labels.append(true)?;
            }
            if wants(2) {
                ts.append_value(entry.timestamp_ns);
            }
            if wants(3) {
                line.append_value(&entry.line);
            }
            if wants(4) {
                for (k, v) in &entry.metadata {
                    meta.keys().append_value(k);
                    meta.values().append_value(v);
                }
                meta.append(true)?;
            }
        }
        let all: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(labels.finish()),
            Arc::new(ts.finish()),
            Arc::new(line.finish()),
            Arc::new(meta.finish()),
        ];
        let arrays: Vec<ArrayRef> = columns.iter().map(|&c| Arc::clone(&all[c])).collect();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(chunk.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&schema),
            arrays,
            &options,
        )?)
    })
}
