//! `system` tables: what Strata holds and does for the tenant asking, one
//! in-memory snapshot per session. Each shows the session's tenant only.
//!
//! * `system.metrics` — each metric: label names, series in memory, series
//!   summed over data files, files holding it; its type, help and unit as
//!   senders described it ([`MetricDescriptions`]).
//! * `system.files` — each live data file: path (from the store's base),
//!   day, level, bytes, rows, series, time range, when written, SHA-256.
//! * `system.wal` — the write path: last WAL position in files, series and
//!   samples in memory, heads waiting for their commit.
//! * `system.queries` — queries running now.
//! * `system.tenants` — the tenant itself: series in memory, stored files,
//!   bytes and samples, and the time span its files cover.
//! * `system.usage` — ingest and query counters since start.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use strata_storage::{Storage, TenantView};
use strata_types::TenantId;

use crate::catalog::MetricInfo;

/// What senders said of a tenant's metrics (remote-write and OTLP
/// metadata, kept by the server): `system.metrics` shows it.
pub trait MetricDescriptions: Send + Sync + std::fmt::Debug {
    /// `tenant`'s described metrics by name, each with its latest
    /// description.
    fn describe(&self, tenant: &TenantId) -> BTreeMap<String, MetricDescription>;
}

/// A metric's type (`counter`, `gauge`, `histogram`, …), help and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDescription {
    pub kind: &'static str,
    pub help: String,
    pub unit: String,
}

/// Inputs of one session's `system` schema.
pub(crate) struct SystemInputs<'a> {
    pub tenant: &'a TenantId,
    pub storage: &'a Storage,
    pub view: &'a TenantView,
    pub metrics: &'a BTreeMap<String, MetricInfo>,
    pub descriptions: BTreeMap<String, MetricDescription>,
    pub usage: RecordBatch,
    pub queries: RecordBatch,
}

pub(crate) fn schema(inputs: SystemInputs<'_>) -> Result<Arc<MemorySchemaProvider>> {
    let system = Arc::new(MemorySchemaProvider::new());
    for (name, batch) in [
        ("usage", inputs.usage.clone()),
        ("queries", inputs.queries.clone()),
        ("metrics", metrics(inputs.metrics, &inputs.descriptions)?),
        ("files", files(inputs.view)?),
        ("wal", wal(&inputs)?),
        ("tenants", tenants(&inputs)?),
    ] {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        system.register_table(name.into(), Arc::new(table))?;
    }
    Ok(system)
}

fn u64_field(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}

fn utc_ms(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        nullable,
    )
}

/// A stored metric's description: its own, or its family's (a
/// histogram's or summary's `_bucket`/`_sum`/`_count` series, a counter
/// described without `_total`, as OpenMetrics names families).
fn description<'a>(
    descriptions: &'a BTreeMap<String, MetricDescription>,
    metric: &str,
) -> Option<&'a MetricDescription> {
    descriptions.get(metric).or_else(|| {
        ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| descriptions.get(metric.strip_suffix(suffix)?))
    })
}

fn metrics(
    metrics: &BTreeMap<String, MetricInfo>,
    descriptions: &BTreeMap<String, MetricDescription>,
) -> Result<RecordBatch> {
    let mut labels = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    for info in metrics.values() {
        for l in &info.labels {
            labels.values().append_value(l);
        }
        labels.append(true);
    }
    let labels = labels.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("labels", labels.data_type().clone(), false),
        u64_field("active_series"),
        u64_field("file_series"),
        u64_field("files"),
        Field::new("type", DataType::Utf8, true),
        Field::new("help", DataType::Utf8, true),
        Field::new("unit", DataType::Utf8, true),
    ]));
    let col = |f: fn(&MetricInfo) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(metrics.values().map(f)))
    };
    let described: Vec<Option<&MetricDescription>> = metrics
        .keys()
        .map(|m| description(descriptions, m))
        .collect();
    let text = |f: fn(&MetricDescription) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter(described.iter().map(|d| d.map(f))))
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(metrics.keys())),
            Arc::new(labels),
            col(|m| m.active_series),
            col(|m| m.file_series),
            col(|m| m.files),
            text(|d| d.kind),
            text(|d| &d.help),
            text(|d| &d.unit),
        ],
    )?)
}

fn files(view: &TenantView) -> Result<RecordBatch> {
    let files = &view.files;
    let schema = Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("level", DataType::Utf8, false),
        u64_field("size_bytes"),
        u64_field("rows"),
        u64_field("series"),
        utc_ms("min_time", false),
        utc_ms("max_time", false),
        utc_ms("written", false),
        Field::new("sha256", DataType::Utf8, true),
    ]));
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let ms = |f: fn(&strata_storage::DataFile) -> i64| -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from_iter_values(files.iter().map(f)).with_timezone("UTC"),
        )
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(files.iter().map(|f| {
                crate::samples::from_base(&f.path.under(&view.table_root), view.store.base())
                    .to_string()
            }))),
            Arc::new(Date32Array::from_iter_values(
                files.iter().map(|f| (f.path.day - epoch).num_days() as i32),
            )),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.path.level.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.size))),
            Arc::new(UInt64Array::from_iter_values(
                files.iter().map(|f| f.stats.rows),
            )),
            Arc::new(UInt64Array::from_iter_values(
                files.iter().map(|f| f.stats.series),
            )),
            ms(|f| f.stats.min_ts_ms),
            ms(|f| f.stats.max_ts_ms),
            ms(|f| f.written_ms),
            Arc::new(StringArray::from_iter(
                files.iter().map(|f| f.sha256.as_deref()),
            )),
        ],
    )?)
}

fn wal(inputs: &SystemInputs<'_>) -> Result<RecordBatch> {
    let committed = inputs.storage.committed().get(inputs.tenant).map(|s| s.0);
    let heads = &inputs.view.heads;
    let active = heads.first().filter(|h| {
        inputs
            .storage
            .head()
            .tenant(inputs.tenant)
            .is_some_and(|a| Arc::ptr_eq(&a, h))
    });
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant", DataType::Utf8, false),
        Field::new("committed_wal_position", DataType::UInt64, true),
        u64_field("head_series"),
        u64_field("head_samples_appended"),
        u64_field("heads_awaiting_commit"),
    ]));
    let frozen = heads.len() - usize::from(active.is_some());
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![inputs.tenant.as_str()])),
            Arc::new(UInt64Array::from(vec![committed])),
            Arc::new(UInt64Array::from(vec![
                heads.iter().map(|h| h.series_count() as u64).sum::<u64>(),
            ])),
            Arc::new(UInt64Array::from(vec![
                heads.iter().map(|h| h.samples_appended()).sum::<u64>(),
            ])),
            Arc::new(UInt64Array::from(vec![frozen as u64])),
        ],
    )?)
}

fn tenants(inputs: &SystemInputs<'_>) -> Result<RecordBatch> {
    let files = &inputs.view.files;
    let head_series = inputs
        .storage
        .head()
        .tenant(inputs.tenant)
        .map_or(0, |h| h.series_count() as u64);
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant", DataType::Utf8, false),
        u64_field("active_series"),
        u64_field("stored_files"),
        u64_field("stored_bytes"),
        u64_field("stored_samples"),
        utc_ms("oldest_stored", true),
        utc_ms("newest_stored", true),
    ]));
    let ms = |v: Option<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(vec![v]).with_timezone("UTC"))
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![inputs.tenant.as_str()])),
            Arc::new(UInt64Array::from(vec![head_series])),
            Arc::new(UInt64Array::from(vec![files.len() as u64])),
            Arc::new(UInt64Array::from(vec![
                files.iter().map(|f| f.size).sum::<u64>(),
            ])),
            Arc::new(UInt64Array::from(vec![
                files.iter().map(|f| f.stats.rows).sum::<u64>(),
            ])),
            ms(files.iter().map(|f| f.stats.min_ts_ms).min()),
            ms(files.iter().map(|f| f.stats.max_ts_ms).max()),
        ],
    )?)
}
