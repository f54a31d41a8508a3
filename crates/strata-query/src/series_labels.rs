//! Series labels for PromQL without decoding the `labels` column row by
//! row: PromQL needs a series' labels once, while a scan of `labels`
//! materialises every key and value of every sample (most of a query's
//! time before this existed).
//!
//! [`read_labels`] reads a file's `series_id` column (delta-packed, cheap),
//! finds the first row of each wanted series and reads `metric` and
//! `labels` for those rows only (a row selection: the other rows' pages are
//! skipped, their values never built). A [`FileIndex`] does the same for
//! every series of a file once, and keeps their labels, postings and row
//! runs for PromQL and the label APIs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
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
use strata_storage::{SeriesIndex, SeriesIndexLocation};

// Leaf columns of the data files (see strata-storage's writer).
const LEAF_METRIC: usize = 0;
const LEAF_LABEL_KEY: usize = 1;
const LEAF_LABEL_VALUE: usize = 2;
const LEAF_SERIES_ID: usize = 3;
const LEAF_TIMESTAMP: usize = 4;
const LEAF_VALUE: usize = 5;

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
        let mut stream = builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()?;
        let mut ids: Vec<i64> = Vec::new();
        while let Some(b) = stream.try_next().await? {
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
        batch_labels(b, path, |id, labels| out.push((id, labels)))?;
    }
    Ok(out)
}

/// Each row's series id and labels of a batch of `metric`, `labels` and
/// `series_id`.
fn batch_labels(
    b: &arrow::array::RecordBatch,
    path: &Path,
    mut each: impl FnMut(i64, Labels),
) -> Result<(), datafusion::error::DataFusionError> {
    let (metric, labels, ids) = label_columns(b, path)?;
    for row in 0..b.num_rows() {
        each(ids.value(row), map_labels(metric.value(row), labels, row));
    }
    Ok(())
}

/// A batch's metric, labels and series id columns.
fn label_columns<'a>(
    b: &'a arrow::array::RecordBatch,
    path: &Path,
) -> Result<
    (
        &'a arrow::array::StringArray,
        &'a arrow::array::MapArray,
        &'a arrow::array::Int64Array,
    ),
    datafusion::error::DataFusionError,
> {
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
    Ok((metric, labels, ids))
}

/// A row's labels, `__name__` from the metric column.
pub(crate) fn map_labels(metric: &str, labels: &arrow::array::MapArray, row: usize) -> Labels {
    Labels::new(
        row_pairs(metric, labels, row)
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// A row's label pairs as stored, borrowed from the batch: `__name__` from
/// the metric column, then the map's entries.
fn row_pairs<'a>(
    metric: &'a str,
    labels: &'a arrow::array::MapArray,
    row: usize,
) -> Vec<(&'a str, &'a str)> {
    let offsets = labels.value_offsets();
    let (lo, hi) = match (offsets.get(row), offsets.get(row + 1)) {
        (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
        _ => (0, 0),
    };
    let mut pairs = Vec::with_capacity(hi.saturating_sub(lo) + 1);
    pairs.push((METRIC_NAME, metric));
    if let (Some(k), Some(v)) = (
        labels.keys().as_string_opt::<i32>(),
        labels.values().as_string_opt::<i32>(),
    ) {
        pairs.extend((lo..hi).map(|i| (k.value(i), v.value(i))));
    }
    pairs
}

/// The series of one data file, indexed as the head indexes its own:
/// label names, values and matchers are answered from postings, and the
/// rows of each series are known, so a query reads only the rows of the
/// series it selects. Built once per file (its `series_id` column, then
/// one row of labels per series) and kept: files are immutable.
#[derive(Debug)]
pub struct FileIndex {
    /// Series id of each position in `labels`.
    pub ids: Vec<i64>,
    /// Each position's labels (as symbol pairs, their strings shared) and
    /// postings; PromQL's label sets are made from it for the series a
    /// query reads (held once: a second copy per series cost ~180 bytes).
    pub labels: strata_head::LabelIndex,
    /// Runs of rows: (position, first row, rows), in row order.
    runs: Vec<(u32, usize, usize)>,
    /// Each position's runs: `run_of[pos_runs[p]..pos_runs[p + 1]]` are
    /// indexes into `runs` (a read of a few series finds their rows
    /// without a pass over every run of the file).
    pos_runs: Vec<u32>,
    run_of: Vec<u32>,
    rows: usize,
    meta: ArrowReaderMetadata,
}

impl FileIndex {
    pub(crate) async fn build(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
    ) -> Result<Self, datafusion::error::DataFusionError> {
        #[allow(deprecated)]
        let mut reader =
            ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
        let meta = ArrowReaderMetadata::load_async(
            &mut reader,
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
        )
        .await?;
        if let Some(index) = Self::from_series_index(store, path, &meta).await {
            return Ok(index);
        }
        Self::from_columns(reader, meta, path).await
    }

    /// The index from the file's `series_id` column and a `labels` row
    /// per series (files written without a series index).
    #[allow(deprecated)]
    pub(crate) async fn from_columns(
        reader: ParquetObjectReader,
        meta: ArrowReaderMetadata,
        path: &Path,
    ) -> Result<Self, datafusion::error::DataFusionError> {
        let schema = meta.parquet_schema().clone();
        // The column streams batch by batch: collected, a flush file's
        // 48M ids would be held at once (~400 MB a query never gives back).
        let mut ids_stream =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), meta.clone())
                .with_projection(ProjectionMask::leaves(&schema, [LEAF_SERIES_ID]))
                .with_batch_size(65_536)
                .build()?;
        let mut positions: HashMap<i64, u32> = HashMap::new();
        let mut ids: Vec<i64> = Vec::new();
        let mut first_rows: Vec<usize> = Vec::new();
        let mut runs: Vec<(u32, usize, usize)> = Vec::new();
        let mut row = 0usize;
        while let Some(b) = ids_stream.try_next().await? {
            for id in b.column(0).as_primitive::<Int64Type>().values() {
                match runs.last_mut() {
                    Some((pos, _, len)) if ids[*pos as usize] == *id => *len += 1,
                    _ => {
                        let pos = *positions.entry(*id).or_insert_with(|| {
                            ids.push(*id);
                            first_rows.push(row);
                            (ids.len() - 1) as u32
                        });
                        runs.push((pos, row, 1));
                    }
                }
                row += 1;
            }
        }
        // Labels: one row per series, the first, read in file order: the
        // order positions were given in, so each row's labels go straight
        // into the index (borrowed from the batch, no copy per series).
        let mut labels = strata_head::LabelIndex::new();
        if !first_rows.is_empty() {
            let selection =
                RowSelection::from_consecutive_ranges(first_rows.iter().map(|&r| r..r + 1), row);
            let mut label_rows =
                ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta.clone())
                    .with_projection(ProjectionMask::leaves(
                        &schema,
                        [
                            LEAF_METRIC,
                            LEAF_LABEL_KEY,
                            LEAF_LABEL_VALUE,
                            LEAF_SERIES_ID,
                        ],
                    ))
                    .with_row_selection(selection)
                    .build()?;
            while let Some(b) = label_rows.try_next().await? {
                let (metric, map, row_ids) = label_columns(&b, path)?;
                for r in 0..b.num_rows() {
                    if positions.get(&row_ids.value(r)).map(|p| *p as usize) != Some(labels.len()) {
                        return Err(datafusion::error::DataFusionError::Internal(format!(
                            "{path}: series labels out of file order"
                        )));
                    }
                    let mut pairs = row_pairs(metric.value(r), map, r);
                    Labels::canonicalize(&mut pairs);
                    labels.add(pairs);
                }
            }
        }
        if labels.len() != ids.len() {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "{path}: labels for {} of {} series",
                labels.len(),
                ids.len()
            )));
        }
        let (pos_runs, run_of) = runs_by_position(&runs, ids.len());
        Ok(Self {
            ids,
            labels,
            runs,
            pos_runs,
            run_of,
            rows: row,
            meta,
        })
    }

    /// The index from the series index the writer stored in the file
    /// (`None`: the file has none, or it does not read back, which is
    /// logged; the caller then indexes the file's columns).
    pub(crate) async fn from_series_index(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        meta: &ArrowReaderMetadata,
    ) -> Option<Self> {
        let at = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == SeriesIndex::KEY)?
            .value
            .as_deref()
            .and_then(SeriesIndexLocation::from_footer)?;
        let end = at.offset.checked_add(at.len)?;
        let read = async {
            let bytes =
                object_store::ObjectStoreExt::get_range(store.as_ref(), path, at.offset..end)
                    .await
                    .map_err(strata_storage::StorageError::from)?;
            SeriesIndex::decode(&bytes, at)
        };
        let decoded = match read.await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%path, error = %e, "series index unreadable; indexing the file's columns");
                return None;
            }
        };
        let file_rows = meta.metadata().file_metadata().num_rows();
        if i64::try_from(decoded.rows).ok() != Some(file_rows) {
            tracing::warn!(%path, index_rows = decoded.rows, file_rows, "series index does not cover the file; indexing the file's columns");
            return None;
        }
        let mut labels = strata_head::LabelIndex::new();
        labels.extend_numbered(
            decoded.strings(),
            (0..decoded.ids.len()).map(|i| decoded.pairs_of(i)),
        );
        let mut runs = Vec::with_capacity(decoded.runs.len());
        let mut row = 0usize;
        for &(pos, n) in &decoded.runs {
            let n = n as usize;
            runs.push((pos, row, n));
            row += n;
        }
        let (pos_runs, run_of) = runs_by_position(&runs, decoded.ids.len());
        Some(Self {
            ids: decoded.ids,
            labels,
            runs,
            pos_runs,
            run_of,
            rows: row,
            meta: meta.clone(),
        })
    }

    /// Everything the index holds, as plain values (tests compare two).
    #[cfg(test)]
    #[allow(clippy::type_complexity)]
    pub(crate) fn summary(
        &self,
    ) -> (
        Vec<(i64, Vec<(String, String)>)>,
        Vec<(u32, usize, usize)>,
        usize,
        Vec<(String, Vec<(String, Vec<u32>)>)>,
    ) {
        let series = (0..self.ids.len())
            .map(|p| {
                let labels = self
                    .labels
                    .labels(p as u32)
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                (self.ids[p], labels)
            })
            .collect();
        let values = self
            .labels
            .label_names(None)
            .into_iter()
            .map(|n| {
                // Each value with the positions its postings select.
                let mut v: Vec<(String, Vec<u32>)> = self
                    .labels
                    .label_values(&n, None)
                    .iter()
                    .map(|v| {
                        let m = strata_head::Matcher::equal(n.to_string(), v.to_string());
                        (v.to_string(), self.labels.select(&[m]).iter().collect())
                    })
                    .collect();
                v.sort();
                (n.to_string(), v)
            })
            .collect::<Vec<_>>();
        let mut values = values;
        values.sort();
        (series, self.runs.clone(), self.rows, values)
    }

    /// The rows of the series whose ids are in `ids`, as a selection over
    /// the whole file (a SQL scan naming its series reads only those rows:
    /// files in label order hold a selector's series together, but their
    /// pages' `series_id` statistics cannot tell which).
    pub(crate) fn row_selection(&self, ids: &std::collections::HashSet<i64>) -> RowSelection {
        let positions: roaring::RoaringBitmap = self
            .ids
            .iter()
            .enumerate()
            .filter(|(_, id)| ids.contains(id))
            .map(|(p, _)| p as u32)
            .collect();
        self.selection(self.runs_of(&positions).into_iter())
    }

    /// The rows of `runs` (in row order; empty ones skipped) as a
    /// selection over the whole file.
    fn selection<'a>(&self, runs: impl Iterator<Item = &'a (u32, usize, usize)>) -> RowSelection {
        RowSelection::from_consecutive_ranges(
            runs.filter(|r| r.2 > 0)
                .map(|(_, first, len)| *first..first + len),
            self.rows,
        )
    }

    /// The runs of the series at `positions`, in row order.
    fn runs_of(&self, positions: &roaring::RoaringBitmap) -> Vec<&(u32, usize, usize)> {
        let mut runs: Vec<&(u32, usize, usize)> = Vec::new();
        for pos in positions {
            let p = pos as usize;
            let (Some(&a), Some(&b)) = (self.pos_runs.get(p), self.pos_runs.get(p + 1)) else {
                continue;
            };
            for &ri in self.run_of.get(a as usize..b as usize).unwrap_or(&[]) {
                runs.extend(self.runs.get(ri as usize));
            }
        }
        runs.sort_unstable_by_key(|r| r.1);
        runs
    }

    /// Samples in `[start_ms, end_ms]` of the series at `positions`
    /// (sorted), reading only their rows: `(position, points)`, an entry
    /// for every position. `cover`: how much of the file's time span the
    /// range covers. All of it: every row read is kept and each series'
    /// points are allocated once, at their size. Under half (an instant
    /// query's lookback, the last hour of a day file): the timestamps are
    /// read first and each series' rows cut to the range
    /// ([`FileIndex::narrow`]), then only those rows' values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn read_points(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        positions: &roaring::RoaringBitmap,
        start_ms: i64,
        end_ms: i64,
        cover: Cover,
    ) -> Result<Vec<(u32, Vec<Piece>)>, datafusion::error::DataFusionError> {
        let (lo_us, hi_us) = (start_ms.saturating_mul(1000), end_ms.saturating_mul(1000));
        let mut runs: Vec<(u32, usize, usize)> =
            self.runs_of(positions).into_iter().copied().collect();
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        // With the rows cut, each run's timestamps (in microseconds) are
        // known: only values are read.
        let mut known: Option<Vec<ScalarBuffer<i64>>> = None;
        if cover == Cover::Little
            && let Some(cut) = self.narrow(store, path, size, &runs, lo_us, hi_us).await?
        {
            runs = cut
                .iter()
                .map(|(p, first, ts)| (*p, *first, ts.len()))
                .collect();
            known = Some(cut.into_iter().map(|(_, _, ts)| ts.into()).collect());
        }
        // Rows outside the range are dropped, unless every row is in it or
        // the cut kept only those.
        let keep_all = cover == Cover::Whole || known.is_some();
        let leaves: &[usize] = if known.is_some() {
            &[LEAF_VALUE]
        } else {
            &[LEAF_TIMESTAMP, LEAF_VALUE]
        };
        let mut stream = self.rows_of(store, path, size, &runs, leaves)?;
        let mut out: Vec<(u32, Vec<Piece>)> = Vec::with_capacity(runs.len());
        let mut run = 0usize;
        let mut left = runs[0].2;
        out.push((runs[0].0, Vec::new()));
        while let Some(b) = stream.try_next().await? {
            let v = b
                .column(b.num_columns() - 1)
                .as_primitive::<Float64Type>()
                .values();
            let t = known.is_none().then(|| {
                b.column(0)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
            });
            let mut i = 0;
            while i < b.num_rows() {
                while left == 0 {
                    run += 1;
                    let Some(r) = runs.get(run) else {
                        return Ok(out);
                    };
                    left = r.2;
                    if out.last().is_none_or(|(p, _)| *p != r.0) {
                        out.push((r.0, Vec::new()));
                    }
                }
                // The rest of the run in this batch, at once: slices of the
                // decoded columns, not copies.
                let take = left.min(b.num_rows() - i);
                let ts_us = match (t, &known) {
                    (Some(t), _) => t.slice(i, take),
                    (None, Some(known)) => {
                        let at = runs[run].2 - left;
                        match known.get(run) {
                            Some(ts) if at + take <= ts.len() => ts.slice(at, take),
                            _ => ScalarBuffer::from(Vec::new()),
                        }
                    }
                    (None, None) => ScalarBuffer::from(Vec::new()),
                };
                let mut piece = Piece {
                    values: v.slice(i, ts_us.len().min(take)),
                    ts_us,
                };
                if !keep_all {
                    piece = in_range(piece, lo_us, hi_us);
                }
                if let Some((_, pieces)) = out.last_mut()
                    && !piece.values.is_empty()
                {
                    pieces.push(piece);
                }
                left -= take;
                i += take;
            }
        }
        // Runs left with no rows (cut to nothing) still answer.
        for r in runs.iter().skip(run + 1) {
            if out.last().is_none_or(|(p, _)| *p != r.0) {
                out.push((r.0, Vec::new()));
            }
        }
        Ok(out)
    }

    /// The rows of `runs` (in row order; empty ones skipped), `leaves`
    /// of them, in batches.
    #[allow(deprecated)]
    fn rows_of(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        runs: &[(u32, usize, usize)],
        leaves: &[usize],
    ) -> Result<
        datafusion::parquet::arrow::async_reader::ParquetRecordBatchStream<ParquetObjectReader>,
        datafusion::error::DataFusionError,
    > {
        let reader = ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
        let selection = self.selection(runs.iter());
        let schema = self.meta.parquet_schema();
        Ok(
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, self.meta.clone())
                .with_projection(ProjectionMask::leaves(schema, leaves.iter().copied()))
                .with_row_selection(selection)
                .with_batch_size(65_536)
                .build()?,
        )
    }

    /// `runs` (in row order) cut to their rows in `[lo_us, hi_us]`, each
    /// with those rows' timestamps, read from the timestamp column alone
    /// (delta-packed, cheap beside the values' byte-stream-split); a run
    /// with none keeps its place with no rows. `None` when a run's
    /// timestamps are not in order (files are written sorted by series and
    /// time; such a file is read the ordinary way).
    async fn narrow(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        runs: &[(u32, usize, usize)],
        lo_us: i64,
        hi_us: i64,
    ) -> Result<Option<Vec<(u32, usize, Vec<i64>)>>, datafusion::error::DataFusionError> {
        let mut stream = self.rows_of(store, path, size, runs, &[LEAF_TIMESTAMP])?;
        // Each run's first row in the range (from its start) and the
        // timestamps from there; the last one seen, to check the order.
        let mut cut: Vec<(u32, usize, Vec<i64>)> = runs
            .iter()
            .map(|&(p, first, _)| (p, first, Vec::new()))
            .collect();
        let (mut run, mut at, mut last) = (0usize, 0usize, i64::MIN);
        while let Some(b) = stream.try_next().await? {
            let t = b
                .column(0)
                .as_primitive::<TimestampMicrosecondType>()
                .values();
            let mut i = 0;
            while i < t.len() {
                while runs.get(run).is_some_and(|r| at >= r.2) {
                    run += 1;
                    at = 0;
                    last = i64::MIN;
                }
                let (Some(r), Some(c)) = (runs.get(run), cut.get_mut(run)) else {
                    break;
                };
                let take = (r.2 - at).min(t.len() - i);
                for (j, &ts) in t[i..i + take].iter().enumerate() {
                    if ts < last {
                        return Ok(None);
                    }
                    last = ts;
                    if (lo_us..=hi_us).contains(&ts) {
                        if c.2.is_empty() {
                            c.1 = r.1 + at + j;
                        }
                        c.2.push(ts);
                    }
                }
                at += take;
                i += take;
            }
        }
        Ok(Some(cut))
    }
}

/// Consecutive rows of one series in a file, as decoded.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    /// Timestamps in microseconds.
    pub(crate) ts_us: ScalarBuffer<i64>,
    /// As many values.
    pub(crate) values: ScalarBuffer<f64>,
}

/// `piece`'s rows with timestamps in `[lo_us, hi_us]`: a slice when its
/// timestamps are in order (files are written so), else picked one by one.
fn in_range(piece: Piece, lo_us: i64, hi_us: i64) -> Piece {
    let ts = &piece.ts_us;
    if ts.is_sorted() {
        let from = ts.partition_point(|&t| t < lo_us);
        let to = ts.partition_point(|&t| t <= hi_us);
        return Piece {
            ts_us: piece.ts_us.slice(from, to.saturating_sub(from)),
            values: piece.values.slice(from, to.saturating_sub(from)),
        };
    }
    let (ts_us, values): (Vec<i64>, Vec<f64>) = ts
        .iter()
        .zip(piece.values.iter())
        .filter(|(t, _)| (lo_us..=hi_us).contains(*t))
        .unzip();
    Piece {
        ts_us: ts_us.into(),
        values: values.into(),
    }
}

/// How much of a file's time span a read's range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    Whole,
    /// Half or more.
    Most,
    /// Under half.
    Little,
}

impl Cover {
    /// The cover of `[start_ms, end_ms]` over a file holding
    /// `[min_ms, max_ms]`.
    pub(crate) fn of(start_ms: i64, end_ms: i64, min_ms: i64, max_ms: i64) -> Self {
        if start_ms <= min_ms && max_ms <= end_ms {
            return Cover::Whole;
        }
        let inside = end_ms.min(max_ms).saturating_sub(start_ms.max(min_ms));
        if inside.saturating_mul(2) < max_ms.saturating_sub(min_ms) {
            Cover::Little
        } else {
            Cover::Most
        }
    }
}

/// Each position's runs of rows (`runs` in row order, `(position, first
/// row, rows)`, positions below `series`): offsets by position into the run
/// indexes, and the run indexes grouped by position (in row order within
/// one). A file written in series order has one run a series; a series
/// split across runs keeps all of them.
fn runs_by_position(runs: &[(u32, usize, usize)], series: usize) -> (Vec<u32>, Vec<u32>) {
    let mut run_of: Vec<u32> = (0..runs.len() as u32).collect();
    // Stable: a position's runs stay in row order.
    run_of.sort_by_key(|&ri| runs.get(ri as usize).map_or(u32::MAX, |r| r.0));
    let mut pos_runs = Vec::with_capacity(series + 1);
    let mut at = 0usize;
    for p in 0..=series as u32 {
        while run_of
            .get(at)
            .and_then(|&ri| runs.get(ri as usize))
            .is_some_and(|r| r.0 < p)
        {
            at += 1;
        }
        pos_runs.push(at as u32);
    }
    (pos_runs, run_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read over most of a file keeps each piece's rows in the range,
    /// both ends included, whether or not its timestamps are in order.
    #[test]
    fn pieces_keep_the_rows_in_range() {
        let piece = |ts: &[i64]| Piece {
            ts_us: ts.to_vec().into(),
            values: ts.iter().map(|&t| t as f64).collect(),
        };
        let rows = |p: Piece| -> Vec<(i64, f64)> {
            p.ts_us
                .iter()
                .copied()
                .zip(p.values.iter().copied())
                .collect()
        };
        let sorted = piece(&[10, 20, 30, 40, 50]);
        assert_eq!(
            rows(in_range(sorted.clone(), 20, 40)),
            vec![(20, 20.0), (30, 30.0), (40, 40.0)]
        );
        assert!(rows(in_range(sorted.clone(), 60, 70)).is_empty());
        assert!(rows(in_range(sorted, 40, 20)).is_empty());
        assert_eq!(
            rows(in_range(piece(&[30, 10, 20, 50]), 15, 30)),
            vec![(30, 30.0), (20, 20.0)]
        );
    }

    #[test]
    fn each_position_finds_its_runs_in_row_order() {
        // Position 1 split in two runs (a file not in series order);
        // position 3 has none.
        let runs = [(0, 0, 10), (1, 10, 5), (2, 15, 7), (1, 22, 3), (4, 25, 1)];
        let (pos_runs, run_of) = runs_by_position(&runs, 5);
        let of = |p: usize| -> Vec<(u32, usize, usize)> {
            run_of[pos_runs[p] as usize..pos_runs[p + 1] as usize]
                .iter()
                .map(|&ri| runs[ri as usize])
                .collect()
        };
        assert_eq!(of(0), vec![(0, 0, 10)]);
        assert_eq!(of(1), vec![(1, 10, 5), (1, 22, 3)]);
        assert_eq!(of(2), vec![(2, 15, 7)]);
        assert!(of(3).is_empty());
        assert_eq!(of(4), vec![(4, 25, 1)]);
        assert_eq!(pos_runs.len(), 6);
    }
}
