//! SQL over native histograms: the tenant's `histograms` table (what is
//! held — pending and being flushed — and the histograms table's files,
//! each series and time once, the one written last), with the columns the
//! files hold, and functions of a row's histogram:
//!
//! * `hist_quantile(q, h)`: the value at quantile `q`, as PromQL's
//!   `histogram_quantile` computes it for a native histogram;
//! * `hist_fraction(lower, upper, h)`: the share of observations between
//!   the two, as `histogram_fraction`;
//! * `hist_buckets(h)`: the populated buckets, a list of
//!   `{lower, upper, count}` (`unnest` it for a bucket table);
//!
//! where `h` is `histogram(schema, zero_threshold, zero_count, count, sum,
//! positive_buckets, positive_counts, negative_buckets, negative_counts,
//! custom_values)`: the row's columns by name, as the table names them
//! (`SELECT timestamp, hist_quantile(0.99, histogram(schema,
//! zero_threshold, …)) FROM histograms`). The table is read whole at each
//! scan (no per-series index for its files yet).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, ListBuilder, StructBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Float64Type, Int32Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use strata_query_lang::promql::histogram::FloatHistogram;
use strata_storage::{HistogramRead, Storage, histogram_files};
use strata_types::TenantId;

/// The `histograms` table of one tenant.
#[derive(Debug)]
pub struct HistogramsTable {
    storage: Arc<Storage>,
    tenant: TenantId,
    /// Rows before this time are out of the query's reach (the tenant's
    /// lookback limit).
    not_before_ms: i64,
}

impl HistogramsTable {
    pub fn new(storage: Arc<Storage>, tenant: TenantId, not_before_ms: i64) -> Self {
        Self {
            storage,
            tenant,
            not_before_ms,
        }
    }
}

fn storage_error(e: strata_storage::StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for HistogramsTable {
    fn schema(&self) -> SchemaRef {
        strata_storage::histograms_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (start, end) = (self.not_before_ms, i64::MAX);
        let HistogramRead {
            held,
            files,
            table_root,
            store,
        } = self
            .storage
            .select_histograms(&self.tenant, &|_| true, start, end);
        // Files first, then what is held (newer): the last of a series and
        // time wins.
        let mut rows = Vec::new();
        for f in files.iter().filter(|f| f.stats.max_ts_ms >= start) {
            let read = histogram_files::read_file(store.store(), &table_root, f)
                .await
                .map_err(storage_error)?;
            rows.extend(read.into_iter().filter(|(_, s)| s.timestamp_ms >= start));
        }
        rows.extend(held);
        histogram_files::sort_last_wins(&mut rows);
        let (batch, _) = histogram_files::batch_of(&rows).map_err(storage_error)?;
        let table = MemTable::try_new(self.schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

/// The functions over native histograms, to register in a session.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Histogram::new()),
        ScalarUDF::new_from_impl(HistQuantile::new("hist_quantile", 1)),
        ScalarUDF::new_from_impl(HistQuantile::new("hist_fraction", 2)),
        ScalarUDF::new_from_impl(HistBuckets::new()),
    ]
}

/// The struct `histogram(...)` builds: the table's histogram columns, of
/// the table's own types.
fn histogram_fields() -> Fields {
    use strata_storage::histograms as h;
    let schema = strata_storage::histograms_schema();
    Fields::from(
        [
            h::SCHEMA,
            h::ZERO_THRESHOLD,
            h::ZERO_COUNT,
            h::COUNT,
            h::SUM,
            h::POSITIVE_BUCKETS,
            h::POSITIVE_COUNTS,
            h::NEGATIVE_BUCKETS,
            h::NEGATIVE_COUNTS,
            h::CUSTOM_VALUES,
        ]
        .iter()
        .filter_map(|n| schema.field_with_name(n).ok().cloned())
        .collect::<Vec<_>>(),
    )
}

fn arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<ArrayRef>> {
    args.iter().map(|a| a.to_array(rows)).collect()
}

/// `histogram(schema, zero_threshold, zero_count, count, sum,
/// positive_buckets, positive_counts, negative_buckets, negative_counts,
/// custom_values)`: one value of the ten columns.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Histogram {
    signature: Signature,
}

impl Histogram {
    fn new() -> Self {
        let fields = histogram_fields();
        Self {
            signature: Signature::exact(
                fields.iter().map(|f| f.data_type().clone()).collect(),
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for Histogram {
    fn name(&self) -> &str {
        "histogram"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(histogram_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = arrays(&args.args, args.number_rows)?;
        let s = arrow::array::StructArray::try_new(histogram_fields(), columns, None)?;
        Ok(ColumnarValue::Array(Arc::new(s)))
    }
}

/// Row `i` of a `histogram(...)` struct array as PromQL's histogram.
fn histogram_at(s: &arrow::array::StructArray, i: usize) -> Result<FloatHistogram> {
    let bad = || DataFusionError::Execution("not a histogram(...) value".into());
    let f64_at = |c: usize| -> Result<f64> {
        Ok(s.column(c)
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(bad)?
            .value(i))
    };
    let ints = |c: usize| -> Result<Vec<i32>> {
        let l = s.column(c).as_list_opt::<i32>().ok_or_else(bad)?.value(i);
        Ok(l.as_primitive_opt::<Int32Type>()
            .ok_or_else(bad)?
            .values()
            .to_vec())
    };
    let floats = |c: usize| -> Result<Vec<f64>> {
        let l = s.column(c).as_list_opt::<i32>().ok_or_else(bad)?.value(i);
        Ok(l.as_primitive_opt::<Float64Type>()
            .ok_or_else(bad)?
            .values()
            .to_vec())
    };
    let schema = s
        .column(0)
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(bad)?
        .value(i);
    Ok(FloatHistogram {
        schema,
        zero_threshold: f64_at(1)?,
        zero_count: f64_at(2)?,
        count: f64_at(3)?,
        sum: f64_at(4)?,
        positive: ints(5)?.into_iter().zip(floats(6)?).collect(),
        negative: ints(7)?.into_iter().zip(floats(8)?).collect(),
        custom_values: floats(9)?.into(),
        ..FloatHistogram::default()
    })
}

/// `hist_quantile(q, h)` (one leading float) and `hist_fraction(lower,
/// upper, h)` (two).
#[derive(Debug, PartialEq, Eq, Hash)]
struct HistQuantile {
    name: &'static str,
    floats: usize,
    signature: Signature,
}

impl HistQuantile {
    fn new(name: &'static str, floats: usize) -> Self {
        let mut args = vec![DataType::Float64; floats];
        args.push(DataType::Struct(histogram_fields()));
        Self {
            name,
            floats,
            signature: Signature::exact(args, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HistQuantile {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = arrays(&args.args, rows)?;
        let bad = || DataFusionError::Execution(format!("{}: bad arguments", self.name));
        let params: Vec<&Float64Array> = columns[..self.floats]
            .iter()
            .map(|c| c.as_primitive_opt::<Float64Type>().ok_or_else(bad))
            .collect::<Result<_>>()?;
        let h = columns[self.floats].as_struct_opt().ok_or_else(bad)?;
        let mut out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            if h.is_null(i) || params.iter().any(|p| p.is_null(i)) {
                out.append_null();
                continue;
            }
            let hist = histogram_at(h, i)?;
            out.append_value(match params.as_slice() {
                [q] => hist.quantile(q.value(i)),
                [lo, hi] => hist.fraction(lo.value(i), hi.value(i)),
                _ => return Err(bad()),
            });
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `hist_buckets(h)`: the populated buckets, lowest first, as a list of
/// `{lower, upper, count}`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct HistBuckets {
    signature: Signature,
}

impl HistBuckets {
    fn new() -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Struct(histogram_fields())],
                Volatility::Immutable,
            ),
        }
    }
}

fn bucket_fields() -> Fields {
    Fields::from(vec![
        Field::new("lower", DataType::Float64, false),
        Field::new("upper", DataType::Float64, false),
        Field::new("count", DataType::Float64, false),
    ])
}

impl ScalarUDFImpl for HistBuckets {
    fn name(&self) -> &str {
        "hist_buckets"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(bucket_fields()),
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = arrays(&args.args, rows)?;
        let h = columns[0]
            .as_struct_opt()
            .ok_or_else(|| DataFusionError::Execution("hist_buckets: not a histogram".into()))?;
        let mut out = ListBuilder::new(StructBuilder::from_fields(bucket_fields(), 0));
        for i in 0..rows {
            if h.is_null(i) {
                out.append_null();
                continue;
            }
            for b in histogram_at(h, i)?
                .buckets()
                .into_iter()
                .filter(|b| b.count != 0.0)
            {
                let s = out.values();
                for (k, v) in [b.lower, b.upper, b.count].into_iter().enumerate() {
                    s.field_builder::<Float64Builder>(k)
                        .ok_or_else(|| DataFusionError::Internal("bucket builder".into()))?
                        .append_value(v);
                }
                s.append(true);
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
