//! Series labels for PromQL without decoding the `labels` column row by
//! row: PromQL needs a series' labels once, while a scan of `labels`
//! materialises every key and value of every sample (most of a query's
//! time before this existed).
//!
//! [`read_labels`] reads a file's `series_id` column (delta-packed, cheap),
//! finds the first row of each wanted series and reads `metric` and
//! `labels` for those rows only (a row selection: the other rows' pages are
//! skipped, their values never built). [`LabelCache`] keeps what was read:
//! a series id is a hash of its labels, so an entry never goes stale.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection,
};
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use datafusion::parquet::file::metadata::PageIndexPolicy;
use datafusion::parquet::file::statistics::Statistics;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;
use strata_query_lang::promql::{Labels, METRIC_NAME};
use strata_types::TenantId;

// Leaf columns of the data files (see strata-storage's writer).
const LEAF_METRIC: usize = 0;
const LEAF_LABEL_KEY: usize = 1;
const LEAF_LABEL_VALUE: usize = 2;
const LEAF_SERIES_ID: usize = 3;

/// Labels of series already looked up, per tenant.
#[derive(Debug, Default)]
pub struct LabelCache {
    map: Mutex<HashMap<(TenantId, i64), Arc<Labels>>>,
}

/// Entries kept before the cache starts over (about 0.5 GB of labels at
/// the workload's ~250 bytes a series).
const CACHE_ENTRIES: usize = 2_000_000;

impl LabelCache {
    pub fn get(&self, tenant: &TenantId, id: i64) -> Option<Arc<Labels>> {
        self.map.lock().get(&(tenant.clone(), id)).cloned()
    }

    pub fn insert(&self, tenant: &TenantId, id: i64, labels: Arc<Labels>) {
        let mut map = self.map.lock();
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert((tenant.clone(), id), labels);
    }
}

/// The distinct series ids of data files, by path. Files are immutable (a
/// path is never rewritten), so entries never go stale; label and series
/// lookups then need no scan of a file they have seen.
#[derive(Debug, Default)]
pub struct FileSeriesCache {
    map: Mutex<HashMap<String, Arc<[i64]>>>,
}

/// Files remembered before the cache starts over.
const FILE_ENTRIES: usize = 100_000;

impl FileSeriesCache {
    /// `path`'s series ids, read (the `series_id` column only) on a miss.
    pub(crate) async fn series(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
    ) -> Result<Arc<[i64]>, datafusion::error::DataFusionError> {
        if let Some(ids) = self.map.lock().get(path.as_ref()) {
            return Ok(Arc::clone(ids));
        }
        #[allow(deprecated)]
        let reader = ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let mask = ProjectionMask::leaves(builder.parquet_schema(), [LEAF_SERIES_ID]);
        let batches: Vec<_> = builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()?
            .try_collect()
            .await?;
        let mut ids: Vec<i64> = Vec::new();
        for b in &batches {
            for id in b.column(0).as_primitive::<Int64Type>().values() {
                if ids.last() != Some(id) {
                    ids.push(*id);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let ids: Arc<[i64]> = ids.into();
        let mut map = self.map.lock();
        if map.len() >= FILE_ENTRIES {
            map.clear();
        }
        map.insert(path.to_string(), Arc::clone(&ids));
        Ok(ids)
    }
}

/// Labels of those `ids` that `path` holds, reading one row per series.
pub(crate) async fn read_labels(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    ids: &HashSet<i64>,
) -> Result<Vec<(i64, Labels)>, datafusion::error::DataFusionError> {
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(Vec::new());
    };
    #[allow(deprecated)]
    let mut reader = ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
    let meta = ArrowReaderMetadata::load_async(
        &mut reader,
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
    )
    .await?;
    let row_groups: Vec<usize> = meta
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, rg)| match rg.column(LEAF_SERIES_ID).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => *min <= hi && *max >= lo,
                _ => true,
            },
            _ => true,
        })
        .map(|(i, _)| i)
        .collect();
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }

    // Pass 1: the first row of each wanted series.
    let schema = meta.parquet_schema().clone();
    let ids_stream =
        ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), meta.clone())
            .with_projection(ProjectionMask::leaves(&schema, [LEAF_SERIES_ID]))
            .with_row_groups(row_groups.clone())
            .with_batch_size(65_536)
            .build()?;
    let batches: Vec<_> = ids_stream.try_collect().await?;
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut position = 0usize;
    let mut previous = None;
    for b in &batches {
        let col = b.column(0).as_primitive::<Int64Type>();
        for (i, id) in col.values().iter().enumerate() {
            if previous != Some(*id) {
                previous = Some(*id);
                if ids.contains(id) && seen.insert(*id) {
                    rows.push(position + i);
                }
            }
        }
        position += b.num_rows();
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }

    // Pass 2: metric and labels of those rows only.
    let selection = RowSelection::from_consecutive_ranges(rows.iter().map(|&r| r..r + 1), position);
    let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_projection(ProjectionMask::leaves(
            &schema,
            [
                LEAF_METRIC,
                LEAF_LABEL_KEY,
                LEAF_LABEL_VALUE,
                LEAF_SERIES_ID,
            ],
        ))
        .with_row_groups(row_groups)
        .with_row_selection(selection)
        .build()?;
    let batches: Vec<_> = stream.try_collect().await?;
    let mut out = Vec::with_capacity(rows.len());
    for b in &batches {
        let internal =
            |what: &str| datafusion::error::DataFusionError::Internal(format!("{path}: {what}"));
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
        for row in 0..b.num_rows() {
            out.push((ids.value(row), map_labels(metric.value(row), labels, row)));
        }
    }
    Ok(out)
}

/// A row's labels, `__name__` from the metric column.
pub(crate) fn map_labels(metric: &str, labels: &arrow::array::MapArray, row: usize) -> Labels {
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
